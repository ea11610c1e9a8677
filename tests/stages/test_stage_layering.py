"""Layering of the package: each notebook uses exactly one stage module, the analysis notebooks
(02-06) never load the measurement stack (torch, NVML, helpers.collect), and every module of
``helpers/`` imports only from its own layer or the layers below it."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "helpers"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))

#: Layer -> the layers its modules may import from (``helpers.runner`` is its own entry).
ALLOWED: dict[str, set[str]] = {
    "core": {"core"},
    "readers": {"core", "readers"},
    "analysis": {"core", "readers", "analysis"},
    "estimate": {"core", "readers", "analysis", "estimate"},
    "collect": {"core", "readers", "analysis", "estimate", "collect", "marks"},
    "plots": {"core", "readers", "analysis", "estimate", "plots"},
    "stages": {"core", "readers", "analysis", "estimate", "collect", "plots", "stages"},
    "runner": {"core", "stages"},
    "marks": {"core"},
    "__main__": {"collect"},
}
#: Third-party modules of the measurement stack (only helpers/collect may import them).
MEASUREMENT_MODULES = {"torch", "torchvision", "pynvml", "psutil"}
#: Stage modules of the analysis notebooks 02-06.
ANALYSIS_STAGES = ["stage02_merge", "stage03_clean", "stage04_tradeoffs",
                   "stage05_power_behaviour", "stage06_estimators"]


def imported_modules(tree: ast.AST, package: str = "") -> list[str]:
    """Every module an AST imports, anywhere in it (functions included): ``import a.b`` gives
    ``a.b``; ``from a import b`` gives ``a.b`` (``b`` may be a module) and relative imports are
    resolved against ``package``."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            out += [f"{base}.{alias.name}" for alias in node.names]
    return out


def helpers_modules(modules: list[str]) -> set[str]:
    """The ``helpers`` modules among ``modules`` (``from helpers.stages import x`` names
    ``helpers.stages.x``; a name that is not a module file names its parent module)."""
    out = set()
    for name in modules:
        if name != "helpers" and not name.startswith("helpers."):
            continue
        parts = name.split(".")
        path = ROOT.joinpath(*parts)
        if not (path.with_suffix(".py").exists() or (path / "__init__.py").exists()):
            parts = parts[:-1]
        out.add(".".join(parts))
    return out


def layer_of(module: str) -> str | None:
    """The layer of a ``helpers`` module: ``helpers.<layer>...``, ``runner`` for
    ``helpers.runner``, None for the package root ``helpers`` (its version string)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def notebook_code(path: Path) -> ast.Module:
    nb = nbformat.read(path, as_version=4)
    return ast.parse("\n".join(c.source for c in nb.cells if c.cell_type == "code"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_imports_exactly_its_stage_module(path: Path) -> None:
    used = helpers_modules(imported_modules(notebook_code(path)))
    assert len(used) == 1, f"{path.name} imports {sorted(used)}: it must import one stage module"
    (module,) = used
    number = path.stem[:2]
    assert module.startswith(f"helpers.stages.stage{number}_"), \
        f"{path.name} imports {module}, not helpers.stages.stage{number}_*"
    assert (ROOT.joinpath(*module.split(".")).with_suffix(".py")).exists()


def test_every_notebook_has_a_stage_module() -> None:
    stages = sorted(p.stem[5:7] for p in (PACKAGE / "stages").glob("stage[0-9][0-9]_*.py"))
    assert stages == sorted(p.stem[:2] for p in NOTEBOOKS)


def test_analysis_stages_do_not_load_the_measurement_stack() -> None:
    """Importing the stage modules of notebooks 02-06 in a fresh interpreter loads neither
    torch nor NVML nor any helpers.collect module (psutil may come from joblib, third-party)."""
    code = (
        "import json, sys\n"
        + "".join(f"import helpers.stages.{m}\n" for m in ANALYSIS_STAGES)
        + "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
          "('torch', 'torchvision', 'pynvml') or m.startswith('helpers.collect'))))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


def _package_modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or
                  p.parent != PACKAGE)


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _imports_of(path: Path) -> list[str]:
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    return imported_modules(ast.parse(path.read_text()), package)


@pytest.mark.parametrize("path", _package_modules(),
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_imports_only_from_allowed_layers(path: Path) -> None:
    layer = layer_of(_module_name(path))
    assert layer in ALLOWED, f"{path}: no layer rule for {layer!r}"
    targets = {m: layer_of(m) for m in helpers_modules(_imports_of(path))}
    bad = sorted(m for m, target in targets.items()
                 if target is not None and target not in ALLOWED[layer])
    assert not bad, f"helpers/{layer} may import only {sorted(ALLOWED[layer])}; " \
                    f"{path.relative_to(ROOT)} imports {bad}"


@pytest.mark.parametrize("path", [p for p in _package_modules()
                                  if layer_of(_module_name(p)) != "collect"],
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_only_collect_imports_the_measurement_stack(path: Path) -> None:
    direct = {m.split(".")[0] for m in _imports_of(path)} & MEASUREMENT_MODULES
    assert not direct, f"{path.relative_to(ROOT)} imports {sorted(direct)}"


def test_layer_scan_sees_imports_inside_functions() -> None:
    tree = ast.parse("def f():\n    from helpers.collect import grid\n"
                     "import helpers.core.io\nfrom helpers.stages import stage02_merge as s\n"
                     "from helpers import __version__\n")
    found = helpers_modules(imported_modules(tree))
    assert found == {"helpers.collect.grid", "helpers.core.io", "helpers.stages.stage02_merge",
                     "helpers"}
    assert {layer_of(m) for m in found} == {"collect", "core", "stages", None}
