"""helpers.runner: notebooks run on a kernel over local IPC sockets, with papermill parameters."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import papermill as pm
import pytest

from helpers import runner


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
