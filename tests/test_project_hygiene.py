"""Project hygiene: pinned environments agree, notebooks are committed clean and parameterised,
and what the repository says to its users holds no build-machine paths, no issue numbers and no
links to headings of docs/methods.md that do not exist."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _pyproject_pins() -> dict[str, str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    extras = data["project"]["optional-dependencies"]
    deps = data["project"]["dependencies"] + [d for group in extras.values() for d in group]
    pins = {}
    for dep in deps:
        if dep.startswith(data["project"]["name"] + "["):
            continue  # the dev extra includes the other extras by name
        name, _, version = dep.partition("==")
        assert version, f"pyproject dependency {dep!r} is not pinned with =="
        pins[name.lower()] = version
    return pins


def _environment_pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "environment.yml").read_text().splitlines():
        m = re.match(r"^\s*-\s+([A-Za-z0-9_.\-]+)==([^\s#]+)", line)
        if m:
            pins[m.group(1).lower()] = m.group(2)
    return pins


def test_environment_yml_agrees_with_pyproject() -> None:
    assert _environment_pins() == _pyproject_pins()


def test_six_numbered_notebooks_exist() -> None:
    stems = [p.stem for p in NOTEBOOKS]
    assert stems == ["01-collect", "02-merge", "03-clean", "04-trade-offs",
                     "05-power-behaviour", "06-estimator-fitting"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_committed_without_outputs_and_with_parameters(path: Path) -> None:
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not c.get("outputs") and not c.get("execution_count") for c in code), \
        f"{path.name} holds outputs: strip them"
    tagged = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path.name} needs exactly one cell tagged 'parameters'"
    assert "dataset" in "".join(tagged[0]["source"])
    assert nb["metadata"]["kernelspec"]["name"] == "python3"


# -- what the repository says to its users ------------------------------------------------------
def _repository_files() -> list[Path]:
    """Files in the repository (committed, or new and not ignored), without the virtual env."""
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    names = sorted(set(out.splitlines()))
    return [ROOT / n for n in names if not n.startswith(".venv/") and (ROOT / n).is_file()]


def _text(path: Path) -> str | None:
    """The file as UTF-8 text; None for binary files (images, Parquet, ...)."""
    data = path.read_bytes()
    if b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _offences(pattern: re.Pattern[str]) -> list[str]:
    hits = []
    for path in _repository_files():
        text = _text(path)
        if text is None:
            continue
        for n, line in enumerate(text.splitlines(), 1):
            m = pattern.search(line)
            if m:
                hits.append(f"{path.relative_to(ROOT)}:{n}: {m.group(0)}")
    return hits


#: An absolute path on the machine that built or ran something: the work tree, root's or a
#: user's home, a named temporary folder. Paths made at test time (pytest's ``tmp_path``) are
#: never literals, so they do not match.
BUILD_PATH = re.compile(r"(?<![\w./~-])(?:/(?:work|root)/|/home/[\w.-]+/|/tmp/[\w.-]+)")


def test_build_path_pattern() -> None:
    assert BUILD_PATH.search('raw_root: "' + "/wo" + 'rk/main/data"')
    assert BUILD_PATH.search("pip install --target " + "/t" + "mp/site")
    assert BUILD_PATH.search("/ho" + "me/alice/project")
    assert not BUILD_PATH.search("https://example.org/work/x and data_inputs/tmp/x")
    assert not BUILD_PATH.search("read /proc/stat and ~/" + "tmp/x")


def test_no_build_machine_paths() -> None:
    hits = _offences(BUILD_PATH)
    assert not hits, "absolute build-machine paths:\n" + "\n".join(hits)


ISSUE_REF = re.compile(r"\bissues?\s+#?\d+", re.IGNORECASE)


def test_no_issue_references() -> None:
    hits = _offences(ISSUE_REF)
    assert not hits, "references to issue numbers:\n" + "\n".join(hits)


def _anchor(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_methods_links_point_at_existing_headings() -> None:
    methods = ROOT / "docs" / "methods.md"
    anchors = {_anchor(h) for h in re.findall(r"(?m)^#{1,6} (.+)$", methods.read_text())}
    link = re.compile(r"(?:docs/methods\.md|\]\(methods\.md|\]\()#([\w-]+)")
    checked, bad = 0, []
    for path in _repository_files():
        text = _text(path)
        if text is None:
            continue
        for n, line in enumerate(text.splitlines(), 1):
            for m in link.finditer(line):
                if m.group(0).startswith("](#") and path != methods:
                    continue  # an in-page link of another document
                checked += 1
                if m.group(1) not in anchors:
                    bad.append(f"{path.relative_to(ROOT)}:{n}: #{m.group(1)}")
    assert checked > 10
    assert not bad, "links to docs/methods.md headings that do not exist:\n" + "\n".join(bad)


def test_methods_has_the_fixed_headings() -> None:
    headings = re.findall(r"(?m)^## (.+)$", (ROOT / "docs" / "methods.md").read_text())
    assert [_anchor(h) for h in headings] == [
        "raw-formats", "merge", "energy-windows", "energy", "cleaning", "trade-offs",
        "power-behaviour", "estimators", "gpu-measurement", "published-numbers", "sources"]


#: A dotted reference to the package in prose: ``helpers.core.energy.trapezoid_energy_j``.
PACKAGE_REF = re.compile(r"\bhelpers(?:\.[A-Za-z_]\w*)+")


def _resolves(ref: str) -> bool:
    """Whether ``ref`` names an importable module, optionally followed by attributes."""
    parts = ref.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            if not hasattr(obj, name):
                return False
            obj = getattr(obj, name)
        return True
    return False


def test_package_references_in_documents_resolve() -> None:
    """Every ``helpers.x.y`` named in a Markdown file exists, so that the documents follow the
    code when it moves."""
    stale = []
    for path in _repository_files():
        if path.suffix != ".md":
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for m in PACKAGE_REF.finditer(line):
                if not _resolves(m.group(0).rstrip(".")):
                    stale.append(f"{path.relative_to(ROOT)}:{n}: {m.group(0)}")
    assert not stale, stale
