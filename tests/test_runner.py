"""helpers.runner: notebooks run on a kernel over local IPC sockets, with papermill parameters;
their stderr streamed with a prefix; the kernel shut down without an interrupt once a notebook has
finished; the published data obtained (or a clear failure) before any notebook runs."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import papermill as pm
import pytest

from helpers import runner
from helpers.core import datasets, fetch

PROJECT = Path(runner.__file__).resolve().parents[1]


def test_kernel_runs_over_ipc_without_tcp_warning(tmp_path: Path,
                                                  capfd: pytest.CaptureFixture) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("print(x + 1)")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    src, out = tmp_path / "t.ipynb", tmp_path / "o.ipynb"
    nbformat.write(nb, src)
    pm.execute_notebook(str(src), str(out), parameters={"x": 41}, progress_bar=False,
                        kernel_name="python3", cwd=str(tmp_path),
                        kernel_manager_class=runner.IpcKernelManager)
    cells = json.loads(out.read_text())["cells"]
    assert "".join(cells[-1]["outputs"][0]["text"]) == "42\n"
    assert "without encryption" not in capfd.readouterr().err
    assert runner.IpcKernelManager().transport == "ipc"


def _notebook(path: Path, *sources: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("dataset = ''\nfolder = ''",
                                          metadata={"tags": ["parameters"]}),
                *(nbformat.v4.new_code_cell(src) for src in sources)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project root (``$DLE_PROJECT_ROOT``) for notebooks written by the test."""
    root = tmp_path / "project"
    (root / "notebooks").mkdir(parents=True)
    monkeypatch.setenv(datasets.PROJECT_ROOT_ENV, str(root))
    return root


#: A process left running in the kernel's process group (started in the background, so not the
#: kernel's child) that records a SIGINT in ``<folder>/sigint``.
SIGINT_WITNESS = '''
import pathlib, subprocess, sys, time
witness = """
import os, pathlib, signal, sys, time
folder = pathlib.Path(sys.argv[1])
signal.signal(signal.SIGINT, lambda *_: (folder.joinpath("sigint").write_text("x"), sys.exit(0)))
folder.joinpath("pid").write_text(str(os.getpid()))
time.sleep(60)
"""
subprocess.run(["sh", "-c", '"$0" -c "$1" "$2" &', sys.executable, witness, folder], check=True)
while not pathlib.Path(folder, "pid").exists():
    time.sleep(0.02)
'''
#: Makes the kernel linger in its handler after answering papermill's closing kernel_info
#: request, as on a busy machine: a SIGINT arriving then is logged "KeyboardInterrupt caught in
#: kernel".
SLOW_KERNEL_INFO = '''
import time
kernel = get_ipython().kernel
original = kernel.shell_handlers["kernel_info_request"]
async def slow_kernel_info(*args):
    await original(*args)
    time.sleep(1)
kernel.shell_handlers["kernel_info_request"] = slow_kernel_info
'''


@pytest.fixture
def witness(tmp_path: Path) -> Path:
    """Folder of the SIGINT witness; the witness process is killed at the end."""
    folder = tmp_path / "witness"
    folder.mkdir()
    yield folder
    try:
        os.kill(int((folder / "pid").read_text()), signal.SIGKILL)
    except (FileNotFoundError, ProcessLookupError):
        pass


def _got_sigint(folder: Path) -> bool:
    time.sleep(0.5)  # a signal sent at shutdown has had time to arrive
    return (folder / "sigint").exists()


def test_finished_notebook_kernel_is_shut_down_without_interrupt(
        project: Path, witness: Path, capfd: pytest.CaptureFixture) -> None:
    _notebook(project / "notebooks" / "nb.ipynb", SIGINT_WITNESS, SLOW_KERNEL_INFO,
              "import sys; print('step 1/2', file=sys.stderr); print('step 2/2', file=sys.stderr)")

    out = runner.run_notebook("nb", "demo", {"folder": str(witness)})

    assert not _got_sigint(witness)
    err = capfd.readouterr().err
    assert "KeyboardInterrupt" not in err
    assert "[demo/nb] step 1/2\n[demo/nb] step 2/2\n" in err  # streamed as it ran, prefixed
    meta = json.loads(out.read_text())["metadata"]["papermill"]
    assert meta["input_path"] == "notebooks/nb.ipynb"
    assert meta["output_path"] == "data_outputs/demo/executed/nb.ipynb"
    assert [p.name for p in (project / "notebooks").iterdir()] == ["nb.ipynb"]  # no IPC files


def test_failed_cell_also_ends_without_interrupt(project: Path, witness: Path) -> None:
    _notebook(project / "notebooks" / "nb.ipynb", SIGINT_WITNESS, "raise ValueError('boom')")

    with pytest.raises(pm.PapermillExecutionError, match="boom"):
        runner.run_notebook("nb", "demo", {"folder": str(witness)})
    assert not _got_sigint(witness)


def test_cut_short_run_interrupts_the_kernel_process_group(
        project: Path, witness: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C or a dead kernel: the interrupt still reaches what the notebook started (e.g. the
    grid's training runs), so that they stop and record why."""
    _notebook(project / "notebooks" / "nb.ipynb", SIGINT_WITNESS)
    execute = pm.execute_notebook

    def cut_short(*args, **kwargs):
        execute(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(runner.pm, "execute_notebook", cut_short)
    with pytest.raises(KeyboardInterrupt):
        runner.run_notebook("nb", "demo", {"folder": str(witness)})
    assert _got_sigint(witness)


def test_prefixed_stream_prefixes_lines_but_not_progress_redraws() -> None:
    sink = io.StringIO()
    stream = runner.PrefixedStream(sink, "[d/nb] ")
    stream.write("warning: x\nsecond ")
    stream.write("half\r\n\rruns:  0%|   |\rruns: 50%|#  |")
    stream.write("\rruns: 100%|###|\n")
    stream.write("partial")
    stream.end_line()
    stream.end_line()
    assert sink.getvalue() == ("[d/nb] warning: x\n[d/nb] second half\r\n"
                               "\rruns:  0%|   |\rruns: 50%|#  |\rruns: 100%|###|\n"
                               "[d/nb] partial\n")


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/archive.zip"


@pytest.fixture
def fresh_machine(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A copy of the project's notebooks and manifest in a temporary root with no SEAA 2023
    data anywhere (no $SEAA2023_DIR, no data_inputs/downloads, no ../shared), and an
    environment whose download URL points at a closed local port (offline)."""
    root = tmp_path / "project"
    (root / "notebooks").mkdir(parents=True)
    for notebook in (PROJECT / "notebooks").glob("*.ipynb"):
        shutil.copy(notebook, root / "notebooks")
    (root / "data_inputs").mkdir()
    shutil.copy(PROJECT / fetch.SHIPPED_MANIFEST, root / fetch.SHIPPED_MANIFEST)
    env = {k: v for k, v in os.environ.items()
           if k not in (datasets.SEAA2023_ENV, fetch.HASH_ENV)}
    env.update({datasets.PROJECT_ROOT_ENV: str(root), fetch.URL_ENV: _closed_port_url()})
    return root, env


def test_offline_figures_fail_fast_naming_url_and_local_copy(fresh_machine) -> None:
    """What ``make figures`` runs, on a machine without the data and without internet."""
    root, env = fresh_machine
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "helpers.runner", "seaa2023"], env=env,
                          cwd=root, capture_output=True, text=True, timeout=120)
    elapsed_s = time.perf_counter() - start

    assert done.returncode != 0
    assert elapsed_s < 60
    url = env[fetch.URL_ENV]
    assert f"downloading {url}" in done.stdout
    assert url in done.stderr and "Connection refused" in done.stderr
    assert "SEAA2023_DIR=/path/to/seaa2023 make figures" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (root / "data_outputs").exists()  # no notebook ran


def test_datasets_without_published_data_need_no_download(fresh_machine, monkeypatch,
                                                          capsys) -> None:
    _, env = fresh_machine
    for key in (datasets.PROJECT_ROOT_ENV, fetch.URL_ENV):
        monkeypatch.setenv(key, env[key])
    monkeypatch.delenv(datasets.SEAA2023_ENV, raising=False)

    assert runner.ensure_inputs(["gpu-h100", "collected"])
    assert capsys.readouterr().out == ""
    assert not runner.ensure_inputs(["gpu-h100", "seaa2023"])
    err = capsys.readouterr().err
    assert env[fetch.URL_ENV] in err
    assert 'make figures DATASETS="gpu-h100"' in err


def test_shared_kernel_keeps_modules_but_not_names(project: Path) -> None:
    """Notebooks run one after another in a SharedKernel: the second sees the modules the first
    imported (same kernel process) but none of its names; the kernel is gone afterwards."""
    _notebook(project / "notebooks" / "a.ipynb",
              "import os, sys, json\nimport colorsys\nleft = 1\n"
              "print(json.dumps({'pid': os.getpid()}))")
    _notebook(project / "notebooks" / "b.ipynb",
              "import os, sys, json\nseen = {'colorsys': 'colorsys' in sys.modules, "
              "'left': 'left' in dir(), 'pid': os.getpid()}\nprint(json.dumps(seen))")
    _notebook(project / "notebooks" / "c.ipynb", "print(left)")
    outputs = []
    with runner.SharedKernel() as kernel:
        for stem in ("a", "b"):
            out = runner.run_notebook(stem, "d", kernel=kernel)
            text = json.loads(out.read_text())["cells"][-1]["outputs"][0]["text"]
            outputs.append(json.loads("".join(text)))
        with pytest.raises(pm.PapermillExecutionError, match="NameError"):
            runner.run_notebook("c", "d", kernel=kernel)
        km = kernel.km
    assert outputs[0]["pid"] == outputs[1]["pid"]
    assert outputs[1] == {"colorsys": True, "left": False, "pid": outputs[0]["pid"]}
    assert not km.has_kernel and km.clients == []
