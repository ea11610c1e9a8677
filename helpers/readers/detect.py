"""Which kind of dataset a folder (or file) holds, from what is on disk (docs/own-data.md).

Kinds, looked for in this order:

* a **mapping file** beside the data (``dl-energy-mapping.yaml``, ``.yml`` or ``.json``): its
  ``kind`` says which reader to use (``samples`` for a tidy samples CSV described by its
  ``columns``; ``codecarbon``, ``project`` or ``seaa2023`` to state a kind and settings such as
  ``timezone``); without ``kind`` a mapping with ``columns`` is ``samples``;
* ``seaa2023``: published SEAA 2023 logs, ``raw/<env>/<arch>/gpu-power-<stamp>.csv`` with
  ``cpu-mem-usage-<stamp>.csv`` (the folder holding ``raw/``, or ``raw/`` itself);
* ``project``: the project's run folders ``<env>/<arch>/<NNN>/`` with ``samples.csv``,
  ``events.csv`` and ``metadata.json`` (docs/raw-format.md), under the folder or its ``raw/``;
* ``codecarbon``: CSV files whose header has CodeCarbon's columns
  (:data:`helpers.readers.codecarbon.REQUIRED_COLUMNS`): the file given, or every such CSV
  under the folder (other CSVs are listed in ``ignored_files``).

A folder that is none of these raises :class:`InputFormatError` naming the folder, what was
looked for and the CSV headers found.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from helpers.core.errors import InputFormatError
from helpers.readers import codecarbon, project

#: Names of the mapping file, looked for beside the data in this order.
MAPPING_FILES = ("dl-energy-mapping.yaml", "dl-energy-mapping.yml", "dl-energy-mapping.json")
#: The kinds a dataset can be.
KINDS = ("seaa2023", "project", "codecarbon", "samples")
#: What detection looks for, in the error message of an unrecognised folder.
LOOKED_FOR = (
    f"a mapping file ({', '.join(MAPPING_FILES)}); "
    "published SEAA 2023 logs (raw/<env>/<arch>/gpu-power-*.csv and cpu-mem-usage-*.csv); "
    "project run folders (<env>/<arch>/<NNN>/ with samples.csv, events.csv, metadata.json, "
    "under the folder or its raw/); "
    f"CodeCarbon CSVs (header with {', '.join(codecarbon.REQUIRED_COLUMNS)})"
)


@dataclass
class DetectedInput:
    """A dataset found on disk.

    Attributes:
        kind: one of :data:`KINDS`.
        path: the folder or file that was given.
        root: what the kind's reader takes: the ``raw/`` folder (seaa2023), the folder holding
            ``<env>/<arch>/<NNN>/`` (project), the folder of the files (codecarbon, samples).
        files: the data files (codecarbon, samples); empty for the folder kinds.
        mapping: the parsed mapping file ({} without one).
        mapping_file: its path, or None.
        ignored_files: CSV files under the folder that are not part of the dataset.
        evidence: one line saying what was found.
    """

    kind: str
    path: Path
    root: Path
    files: tuple[Path, ...] = ()
    mapping: dict[str, Any] = field(default_factory=dict)
    mapping_file: Path | None = None
    ignored_files: tuple[Path, ...] = ()
    evidence: str = ""


def read_mapping(path: str | Path) -> dict[str, Any]:
    """Parse a mapping file (YAML for ``.yaml``/``.yml``, else JSON) into a dict; malformed ->
    :class:`InputFormatError` naming the file (and line where the parser knows it)."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix in {".yaml", ".yml"}:
        import yaml  # installed with papermill

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            raise InputFormatError(path, f"invalid YAML: {err}",
                                   line=None if mark is None else mark.line + 1) from err
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise InputFormatError(path, f"invalid JSON: {err.msg}", line=err.lineno) from err
    if not isinstance(data, dict):
        raise InputFormatError(path, "the mapping must be a key: value object at top level")
    kind = data.get("kind")
    if kind is not None and kind not in KINDS:
        raise InputFormatError(path, f"kind {kind!r} is not one of {', '.join(KINDS)}",
                               column="kind")
    return data


def find_mapping(folder: Path) -> Path | None:
    """The first of :data:`MAPPING_FILES` in ``folder``, or None."""
    return next((folder / n for n in MAPPING_FILES if (folder / n).is_file()), None)


def csv_header(path: Path) -> list[str]:
    """The stripped header fields of a CSV file ([] for an empty or unreadable one)."""
    try:
        with path.open(newline="", encoding="utf-8-sig", errors="replace") as fh:
            return [h.strip() for h in next(csv.reader(fh), [])]
    except OSError:
        return []


def is_codecarbon_header(header: list[str]) -> bool:
    """True when ``header`` has every CodeCarbon column the reader needs."""
    return all(c in header for c in codecarbon.REQUIRED_COLUMNS)


def _csv_files(folder: Path) -> list[Path]:
    """CSV files under ``folder`` (any depth, hidden folders left out), sorted."""
    return sorted(p for p in folder.rglob("*.csv")
                  if p.is_file() and not any(part.startswith(".")
                                             for part in p.relative_to(folder).parts))


def seaa2023_raw(folder: Path) -> Path | None:
    """The ``raw/`` folder of published SEAA 2023 logs at ``folder`` (the folder holding
    ``raw/``, or ``raw/`` itself), or None."""
    for raw in (folder / "raw", folder):
        if raw.is_dir() and next(raw.glob("*/*/gpu-power-*.csv"), None) is not None:
            return raw
    return None


def project_root(folder: Path) -> Path | None:
    """The folder holding the project's run folders (``folder/raw`` or ``folder``), or None."""
    for root in (folder / "raw", folder):
        if root.is_dir() and project.discover_runs(root):
            return root
    return None


def _codecarbon(path: Path, folder: Path, files: list[Path]) -> DetectedInput | None:
    cc = [p for p in files if is_codecarbon_header(csv_header(p))]
    if not cc:
        return None
    others = tuple(p for p in files if p not in cc)
    return DetectedInput("codecarbon", path, folder, tuple(cc), ignored_files=others,
                         evidence=f"{len(cc)} CSV file(s) with CodeCarbon's header")


def _mapped_files(folder: Path, mapping: dict, mapping_file: Path) -> list[Path]:
    """Files the mapping's ``files`` (a glob or a list of globs, relative to its folder) names;
    every CSV beside it when absent."""
    patterns = mapping.get("files", "*.csv")
    patterns = [patterns] if isinstance(patterns, str) else list(patterns)
    matched = {p for pat in patterns for p in folder.glob(pat)}
    folders = sorted(p for p in matched if p.is_dir())
    if folders:
        raise InputFormatError(folders[0], "is a folder, not a file (matched by the mapping's "
                               f"files: {patterns})")
    files = sorted(p for p in matched if p.is_file())
    events = (mapping.get("events") or {}).get("file")
    runs_file = mapping.get("runs_file")
    skip = {folder / f for f in (events, runs_file) if f}
    files = [p for p in files if p not in skip]
    if not files:
        raise InputFormatError(mapping_file, f"no file in {folder} matches files: {patterns}",
                               column="files")
    return files


def _from_mapping(path: Path, folder: Path, mapping_file: Path) -> DetectedInput | None:
    mapping = read_mapping(mapping_file)
    kind = mapping.get("kind") or ("samples" if "columns" in mapping else None)
    if kind is None:
        return None  # settings only (e.g. timezone): the kind is detected
    if kind == "samples":
        if not isinstance(mapping.get("columns"), dict):
            raise InputFormatError(mapping_file, "kind samples needs a 'columns' mapping",
                                   column="columns")
        files = [path] if path.is_file() else _mapped_files(folder, mapping, mapping_file)
        return DetectedInput("samples", path, folder, tuple(files), mapping, mapping_file,
                             evidence=f"mapping file {mapping_file.name} (kind samples)")
    found = _detect_kind(path, folder, only=kind)
    if found is None:
        raise InputFormatError(mapping_file, f"kind {kind!r} stated, but {path} does not hold "
                               f"that kind ({LOOKED_FOR})", column="kind")
    found.mapping, found.mapping_file = mapping, mapping_file
    if kind == "codecarbon" and "files" in mapping:
        found.files = tuple(_mapped_files(folder, mapping, mapping_file))
    found.evidence += f"; kind stated in {mapping_file.name}"
    return found


def _detect_kind(path: Path, folder: Path, only: str | None = None) -> DetectedInput | None:
    if path.is_file():
        if only in (None, "codecarbon"):
            return _codecarbon(path, folder, [path])
        return None
    if only in (None, "seaa2023") and (raw := seaa2023_raw(folder)) is not None:
        return DetectedInput("seaa2023", path, raw,
                             evidence=f"SEAA 2023 logs under {raw.name}/<env>/<arch>/")
    if only in (None, "project") and (root := project_root(folder)) is not None:
        n = len(project.discover_runs(root))
        return DetectedInput("project", path, root, evidence=f"{n} project run folder(s)")
    if only in (None, "codecarbon"):
        return _codecarbon(path, folder, _csv_files(folder))
    return None


def _unrecognised(path: Path, folder: Path) -> InputFormatError:
    files = [path] if path.is_file() else _csv_files(folder)
    shown = "; ".join(f"{p.name}: {','.join(csv_header(p)[:6]) or '(empty)'}"
                      for p in files[:5])
    found = (f"found {len(files)} CSV file(s) ({shown}{'; ...' if len(files) > 5 else ''})"
             if files else "found no CSV file")
    return InputFormatError(path, f"not a dataset the pipeline recognises: looked for "
                            f"{LOOKED_FOR}; {found}")


def detect(path: str | Path) -> DetectedInput:
    """Detect the kind of dataset at ``path`` (a folder, or one CSV file); see the module
    docstring. ``FileNotFoundError`` when ``path`` does not exist; :class:`InputFormatError`
    when it is not recognised or its mapping file is malformed."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"dataset folder {path} does not exist")
    folder = path.parent if path.is_file() else path
    mapping_file = find_mapping(folder)
    if mapping_file is not None:
        found = _from_mapping(path, folder, mapping_file)
        if found is not None:
            return found
    found = _detect_kind(path, folder)
    if found is None:
        raise _unrecognised(path, folder)
    if mapping_file is not None:
        found.mapping, found.mapping_file = read_mapping(mapping_file), mapping_file
    return found
