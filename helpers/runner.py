"""Run the notebooks of each dataset in order with papermill (``make figures``).

``python -m helpers.runner seaa2023 collected`` executes each dataset's notebooks, saving the
executed copies under ``data_outputs/<dataset>/executed/``, printing one line per notebook with
its wall time. While a notebook runs, what it writes to stderr (progress bars such as notebook
01's bar over runs, warnings) is shown as it comes, each line prefixed with
``[<dataset>/<notebook>]``; ``--verbose`` shows its printed output (stdout) too. On failure it
stops and prints the notebook, the failing cell and the error, and exits non-zero. A figure index
(``figures/README.md``) lists every figure with the notebook and dataset that made it.

Before the first notebook, a dataset that needs the published SEAA 2023 data gets it: the local
copy if there is one, else a download of the published archive
(:func:`helpers.core.fetch.ensure_local_copy`); if that fails the runner stops with one message
naming the URL and how to point at a local copy (``SEAA2023_DIR=/path/to/seaa2023``).
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import TextIO

import nbformat
import papermill as pm
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync
from papermill.exceptions import PapermillExecutionError

from helpers.core import datasets, fetch, io


class IpcKernelManager(AsyncKernelManager):
    """Kernel manager whose kernel talks over local IPC sockets instead of TCP: nothing listens
    on a network port, and the kernel does not warn about unencrypted TCP on every notebook. The
    socket files live in a private temporary folder (not in the notebook's working directory),
    removed with the kernel's other resources.

    :meth:`stop` shuts the kernel down, without the interrupt jupyter_client otherwise sends
    first (SIGINT to the kernel's process group) when ``interrupt=False``. The runner uses that
    once a notebook has finished: the kernel is idle, and the signal could only land in the
    kernel still answering papermill's closing ``kernel_info`` request (ipykernel then logs
    "KeyboardInterrupt caught in kernel") or in processes the notebook left running.
    """

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("transport", "ipc")
        super().__init__(**kwargs)
        self.interrupt_on_shutdown = True
        self.clients: list[AsyncKernelClient] = []
        self._ipc_dir: Path | None = None

    async def start_kernel(self, **kwargs) -> None:
        """Start the kernel, its IPC sockets in a new temporary folder."""
        if self.transport == "ipc" and self._ipc_dir is None:
            self._ipc_dir = Path(tempfile.mkdtemp(prefix="kernel-ipc-"))
            self.ip = str(self._ipc_dir / "kernel")
        await super().start_kernel(**kwargs)

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)
        if not restart and self._ipc_dir is not None:
            shutil.rmtree(self._ipc_dir, ignore_errors=True)
            self._ipc_dir = None

    def client(self, **kwargs) -> AsyncKernelClient:
        """A client of this kernel; remembered so that :meth:`stop` closes its channels."""
        kc = super().client(**kwargs)
        self.clients.append(kc)
        return kc

    async def _async_interrupt_kernel(self) -> None:
        if self.shutting_down and not self.interrupt_on_shutdown:
            return
        await super()._async_interrupt_kernel()

    async def stop(self, interrupt: bool = True) -> None:
        """Shut the kernel down (interrupting it first if ``interrupt``: a cell may still be
        running, with child processes to stop), remove its files and close its clients."""
        self.interrupt_on_shutdown = interrupt
        try:
            if await self.is_alive():
                await self.shutdown_kernel()
            else:
                await self._async_cleanup_resources()
        finally:
            for kc in self.clients:
                kc.stop_channels()
            self.clients.clear()


class PrefixedStream:
    """File-like sink for a notebook's streamed output: writes to ``stream`` with ``prefix`` at
    the start of every line. Text after a carriage return is written as it is: that is a
    progress bar redrawing its line, sized to the terminal's width (a prefix would wrap it)."""

    _BREAK = re.compile(r"(\r\n|\n|\r)")

    def __init__(self, stream: TextIO, prefix: str) -> None:
        self.stream = stream
        self.prefix = prefix
        self.at_line_start = True

    def write(self, text: str) -> int:
        """Write ``text`` (any number of lines or partial lines); returns its length."""
        out = []
        for piece in self._BREAK.split(text):
            if self._BREAK.fullmatch(piece):
                out.append(piece)
                self.at_line_start = piece != "\r"
            elif piece:
                out.append(self.prefix + piece if self.at_line_start else piece)
                self.at_line_start = False
        self.stream.write("".join(out))
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def end_line(self) -> None:
        """Finish a partial last line, so that the next report starts on its own line."""
        if not self.at_line_start:
            self.stream.write("\n")
            self.at_line_start = True
        self.stream.flush()


def notebook_path(stem: str) -> Path:
    """``notebooks/<stem>.ipynb`` in the project."""
    return datasets.project_root() / "notebooks" / f"{stem}.ipynb"


#: Code run in a shared kernel before each notebook: every name the previous notebook defined is
#: removed (imported modules stay loaded, which is what saves the time).
RESET_NAMESPACE = "%reset -f\nimport gc\ngc.collect()"


class SharedKernel:
    """One kernel for several notebooks run one after another (``with SharedKernel() as k:
    run_notebook(..., kernel=k)``): before each notebook its namespace is reset
    (:data:`RESET_NAMESPACE`), so a notebook cannot use what an earlier one defined, while the
    modules it imports stay loaded; the kernel is shut down when the block ends. Saves the start
    and imports of a kernel per notebook (about 2 s each); the default remains one kernel per
    notebook, which also releases each notebook's memory."""

    def __init__(self) -> None:
        self.km = IpcKernelManager(kernel_name="python3")
        self.used = False
        self.finished = True

    def __enter__(self) -> SharedKernel:
        return self

    def __exit__(self, *exc) -> None:
        if self.km.has_kernel:
            run_sync(self.km.stop)(interrupt=not self.finished)

    def reset(self) -> None:
        """Clear the namespace left by the previous notebook (no-op before the first)."""
        if not self.used:
            self.used = True
            return
        kc = self.km.client()
        kc.start_channels()
        try:
            reply = run_sync(kc.execute_interactive)(RESET_NAMESPACE, timeout=60,
                                                     store_history=False,
                                                     output_hook=lambda msg: None)
        finally:
            kc.stop_channels()
            self.km.clients.remove(kc)
        if reply["content"]["status"] != "ok":
            raise RuntimeError(f"resetting the shared kernel failed: {reply['content']}")


def run_notebook(stem: str, dataset: str, parameters: dict | None = None,
                 verbose: bool = False, kernel: SharedKernel | None = None) -> Path:
    """Execute one notebook for ``dataset``; returns the executed copy's path.

    The notebook's stderr (and with ``verbose`` its stdout) is copied to this process's stderr
    (stdout) as it arrives, each line prefixed with ``[<dataset>/<stem>] ``. The executed copy's
    papermill metadata records the notebook paths relative to the project root. Without
    ``kernel`` the notebook gets its own kernel, shut down here: without an interrupt once the
    notebook has finished (every cell ran, or one raised), with one if execution was cut short
    (Ctrl-C, a dead kernel). With a :class:`SharedKernel` it runs in that kernel, after a reset
    of its namespace.
    """
    out = datasets.output_dir(dataset, "executed") / f"{stem}.ipynb"
    out.parent.mkdir(parents=True, exist_ok=True)
    params = {"dataset": dataset, **(parameters or {})}
    prefix = f"[{dataset}/{stem}] "
    err = PrefixedStream(sys.stderr, prefix)
    std = PrefixedStream(sys.stdout, prefix) if verbose else None
    cwd = datasets.project_root() / "notebooks"
    if kernel is not None:
        kernel.reset()
    km = kernel.km if kernel is not None else IpcKernelManager(kernel_name="python3")
    finished = False
    try:
        pm.execute_notebook(
            str(notebook_path(stem)), str(out), parameters=params, progress_bar=False,
            cwd=str(cwd), kernel_name="python3", km=km, stdout_file=std, stderr_file=err,
        )
        finished = True
    except PapermillExecutionError:
        finished = True  # a cell raised; the kernel is idle
        raise
    finally:
        if kernel is not None:
            kernel.finished = finished
        else:
            run_sync(km.stop)(interrupt=not finished)
        for sink in (std, err):
            if sink is not None:
                sink.end_line()
        if out.exists():
            relative_papermill_paths(out)
    return out


def relative_papermill_paths(executed: Path) -> None:
    """Rewrite ``metadata.papermill.input_path``/``output_path`` of an executed notebook to
    paths relative to the project root (papermill records the absolute paths it was given)."""
    nb = nbformat.read(executed, as_version=nbformat.NO_CONVERT)
    meta = nb.metadata.get("papermill", {})
    root = datasets.project_root()
    changed = False
    for key in ("input_path", "output_path"):
        path = Path(meta.get(key) or "")
        if path.is_absolute() and path.is_relative_to(root):
            meta[key] = path.relative_to(root).as_posix()
            changed = True
    if changed:
        nbformat.write(nb, executed)


def _failure_message(stem: str, dataset: str, exc: PapermillExecutionError) -> str:
    return (f"FAILED {dataset}/{stem}: cell {exc.exec_count} raised {exc.ename}: {exc.evalue}\n"
            f"  executed copy with the traceback: "
            f"{datasets.output_dir(dataset, 'executed') / (stem + '.ipynb')}")


def figure_index() -> str:
    """Markdown table of every figure under ``figures/``: file (with its saved formats),
    notebook, dataset."""
    root = datasets.project_root() / "figures"
    rows = ["# Figure index", "", "Generated by `make figures`; one row per figure.",
            "", "| figure | notebook | dataset |", "|---|---|---|"]
    saved: dict[Path, list[str]] = {}
    for path in sorted(root.glob("*/[0-9][0-9]-*.*")):
        saved.setdefault(path.with_suffix(""), []).append(path.suffix)
    for stem, exts in sorted(saved.items()):
        nb = next((p.stem for p in sorted((root.parent / "notebooks").glob("*.ipynb"))
                   if p.stem[:2] == stem.name[:2]), "?")
        rows.append(f"| `{stem.parent.name}/{stem.name}` ({', '.join(sorted(exts))}) | `{nb}` | "
                    f"`{stem.parent.name}` |")
    return "\n".join(rows) + "\n"


def ensure_inputs(names: list[str]) -> bool:
    """Make sure the published SEAA 2023 data is there if a named dataset needs it (download it
    when there is no local copy); prints one message and returns False when it cannot be had."""
    if not any(datasets.needs_seaa2023(name) for name in names):
        return True
    try:
        root = fetch.ensure_local_copy()
    except fetch.VerificationError as exc:
        print(f"FAILED: the downloaded SEAA 2023 data does not match the manifest: {exc}",
              file=sys.stderr, flush=True)
        return False
    except (OSError, ValueError) as exc:  # DownloadError, a $SEAA2023_DIR without raw/, hash
        others = [name for name in names if not datasets.needs_seaa2023(name)]
        hint = (f"\nor run the other datasets only: make figures DATASETS=\"{' '.join(others)}\""
                if others else "")
        print(f"FAILED: {exc}{hint}", file=sys.stderr, flush=True)
        return False
    print(f"SEAA 2023 data: {root}", flush=True)
    return True


def run_all(names: list[str], verbose: bool = False) -> int:
    """Run every notebook of every named dataset; returns a process exit code."""
    total = time.perf_counter()
    missing = [str(notebook_path(stem)) for name in names for stem in datasets.get(name).notebooks
               if not notebook_path(stem).exists()]
    if missing:
        print(f"FAILED: notebooks not found: {', '.join(sorted(set(missing)))}", file=sys.stderr)
        return 1
    if not ensure_inputs(names):
        return 1
    for name in names:
        cfg = datasets.get(name)
        for stem in cfg.notebooks:
            start = time.perf_counter()
            try:
                run_notebook(stem, name, cfg.parameters.get(stem), verbose)
            except PapermillExecutionError as exc:
                print(_failure_message(stem, name, exc), file=sys.stderr, flush=True)
                return 1
            print(f"[{name}] {stem:<22} {time.perf_counter() - start:7.1f} s", flush=True)
    io.write_text(figure_index(), datasets.project_root() / "figures" / "README.md")
    print(f"all notebooks done in {time.perf_counter() - total:.1f} s; "
          f"figure index: figures/README.md", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="*",
                        help="datasets to run (default: every registered one whose inputs are "
                             "there, see helpers.core.datasets.default_datasets)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="also show what the notebooks print (stdout) as they run")
    args = parser.parse_args(argv)
    names = args.datasets
    if not names:
        names, notes = datasets.default_datasets()
        for note in notes:
            print(f"note: {note}", flush=True)
    return run_all(names, args.verbose)


if __name__ == "__main__":
    raise SystemExit(main())
