"""Dataset registry: where each dataset's raw inputs live and which notebooks process it.

A dataset is a folder: given by name (``data_inputs/<name>/``), or by a path (notebook 02's
``data_dir`` parameter, or the environment variable ``<NAME>_DIR``: :func:`data_dir_env`).
What kind of data it holds (published SEAA 2023 logs, the project's run folders, CodeCarbon
CSVs, a tidy samples CSV with its mapping file) is detected from the files
(:mod:`helpers.readers.detect`, docs/own-data.md), not from the name.

Nothing here touches the file system at import. Locations are resolved when asked for, from
parameters first and environment variables second.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from helpers.core.raw_format import METADATA_FILE, SAMPLES_FILE

#: Environment variable naming the folder that holds the published SEAA 2023 data
#: (the one containing ``raw/``, ``interim/`` and ``processed/``).
SEAA2023_ENV = "SEAA2023_DIR"
#: Where ``make data`` / ``make figures`` put a download of that folder, relative to the project
#: root (looked at first when no location is given).
SEAA2023_DOWNLOADED = Path("data_inputs") / "downloads" / "seaa2023"
#: Default location of that folder, relative to the project root (the shared checkout).
SEAA2023_DEFAULT = Path("..") / "shared" / "data" / "seaa2023"
#: Environment variable overriding the project root (defaults to the repository checkout).
PROJECT_ROOT_ENV = "DLE_PROJECT_ROOT"
#: Environment variable naming the folder of the published EE-Training CSV.
EE_TRAINING_ENV = "EE_TRAINING_DIR"
#: ``raw_format`` of a dataset whose kind is detected from its files when it is merged.
DETECT = "detect"


@dataclass(frozen=True)
class DatasetConfig:
    """One dataset the pipeline can process.

    Attributes:
        name: short name, used in output folders (``data_outputs/<name>/``, ``figures/<name>/``).
        raw_format: the kind of its files: ``"seaa2023"`` (published nvidia-smi/psutil logs),
            ``"project"`` (our sampler's format, docs/raw-format.md), ``"codecarbon"``,
            ``"samples"`` (a tidy samples CSV with a mapping file), or :data:`DETECT` (a folder
            that does not exist yet or holds nothing recognisable: notebook 02 says why). For
            an unregistered name it is what :func:`helpers.readers.detect.detect` finds.
        notebooks: notebook stems run in order by ``make figures``.
        description: one line for reports.
        parameters: per-notebook papermill parameters overriding the notebooks' defaults.
        data_env: environment variable naming its folder (None: :func:`data_dir_env`).
        default_dirs: folders looked in, relative to the project root, after
            ``data_inputs/<name>/`` (the first that exists is used).
        timezone: timezone of time stamps without an offset in CodeCarbon and samples CSVs
            (a mapping file's ``timezone`` wins).
    """

    name: str
    raw_format: str
    notebooks: tuple[str, ...]
    description: str
    parameters: dict[str, dict] = field(default_factory=dict)
    data_env: str | None = None
    default_dirs: tuple[Path, ...] = ()
    timezone: str = "UTC"


ANALYSIS_NOTEBOOKS = ("02-merge", "03-clean", "04-trade-offs", "05-power-behaviour",
                      "06-estimator-fitting")

DATASETS: dict[str, DatasetConfig] = {
    "seaa2023": DatasetConfig(
        name="seaa2023",
        raw_format="seaa2023",
        notebooks=ANALYSIS_NOTEBOOKS,
        description="SEAA 2023 published raw logs (RTX 3090 'cloud', RTX 3070 'local-v2')",
        data_env=SEAA2023_ENV,
    ),
    "collected": DatasetConfig(
        name="collected",
        raw_format="project",
        notebooks=("01-collect", *ANALYSIS_NOTEBOOKS),
        description="runs collected on this machine by notebook 01 (default grid)",
    ),
    "gpu-h100": DatasetConfig(
        name="gpu-h100",
        raw_format="project",
        notebooks=ANALYSIS_NOTEBOOKS,
        description="10 runs collected by notebook 01 on an NVIDIA H100 80GB (committed raw data; "
                    "docs/gpu-measurements.md)",
    ),
    "ee-training": DatasetConfig(
        name="ee-training",
        raw_format="codecarbon",
        notebooks=ANALYSIS_NOTEBOOKS,
        description="EE-Training: one CodeCarbon row per training run of a timm image "
                    "classifier on one RTX 3090 (CIFAR-10/100); per-run energies, no samples",
        data_env=EE_TRAINING_ENV,
        default_dirs=(Path("..") / "shared" / "data" / "ee-training",),
        # CodeCarbon writes local time without an offset; the runs were tracked in Germany
        # (country_name)
        timezone="Europe/Berlin",
    ),
}


def project_root() -> Path:
    """Return the repository root (``$DLE_PROJECT_ROOT`` or the folder above ``helpers/``)."""
    env = os.environ.get(PROJECT_ROOT_ENV)
    return Path(env).resolve() if env else Path(__file__).resolve().parents[2]


def relative_to_project(path: str | os.PathLike[str]) -> str:
    """``path`` as a POSIX path relative to the project root when it lies inside the project
    (what outputs print and record, so that they read the same on every machine), else the
    absolute path."""
    p = Path(path)
    p = (p if p.is_absolute() else Path.cwd() / p).resolve()
    root = project_root()
    return p.relative_to(root).as_posix() if p.is_relative_to(root) else str(p)


class Seaa2023NotFoundError(FileNotFoundError):
    """No location was given and no local copy of the published SEAA 2023 data was found in
    the default places (``looked_in``); the caller may download it (``helpers.core.fetch``)."""

    def __init__(self, looked_in: tuple[Path, ...]) -> None:
        self.looked_in = looked_in
        places = ", ".join(str(p) for p in looked_in)
        super().__init__(
            f"SEAA 2023 data not found (looked in {places}): set ${SEAA2023_ENV} to a copy "
            "(the folder holding raw/, interim/ and processed/), or run `make data` to download it"
        )


def seaa2023_default_dirs() -> tuple[Path, ...]:
    """The places searched when no location is given: the download folder, then the shared
    copy beside the project."""
    return (project_root() / SEAA2023_DOWNLOADED, (project_root() / SEAA2023_DEFAULT).resolve())


def seaa2023_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """Resolve the published SEAA 2023 folder: ``path``, else ``$SEAA2023_DIR``, else the first
    of :func:`seaa2023_default_dirs` holding ``raw/``. Relative paths are taken from the project
    root. A given ``path`` or ``$SEAA2023_DIR`` without ``raw/`` raises ``FileNotFoundError``
    naming it; nothing given and nothing found raises :class:`Seaa2023NotFoundError`."""
    for given, source in ((path, "given"), (os.environ.get(SEAA2023_ENV), f"${SEAA2023_ENV}")):
        if given is None or str(given) == "":
            continue
        p = Path(given).expanduser()
        p = p if p.is_absolute() else project_root() / p
        if not (p / "raw").is_dir():
            raise FileNotFoundError(
                f"SEAA 2023 data folder {p.resolve()} ({source}) has no raw/ subfolder")
        return p.resolve()
    defaults = seaa2023_default_dirs()
    for p in defaults:
        if (p / "raw").is_dir():
            return p.resolve()
    raise Seaa2023NotFoundError(defaults)


def needs_seaa2023(dataset: str) -> bool:
    """True when ``dataset``'s notebooks read the published SEAA 2023 folder (the registered
    ``seaa2023`` dataset, whose data is downloaded when absent)."""
    return dataset in DATASETS and DATASETS[dataset].raw_format == "seaa2023"


def data_dir_env(dataset: str) -> str:
    """The environment variable naming ``dataset``'s folder: the registered one
    (``SEAA2023_DIR``, ``EE_TRAINING_DIR``), else the name upper-cased with other characters
    than letters and digits as ``_``, followed by ``_DIR`` (``my-runs`` -> ``MY_RUNS_DIR``)."""
    cfg = DATASETS.get(dataset)
    if cfg is not None and cfg.data_env:
        return cfg.data_env
    return re.sub(r"[^A-Za-z0-9]", "_", dataset).upper() + "_DIR"


def _from_root(path: str | os.PathLike[str]) -> Path:
    p = Path(path).expanduser()
    return (p if p.is_absolute() else project_root() / p).resolve()


def input_candidates(dataset: str) -> tuple[Path, ...]:
    """The folders looked in for ``dataset`` when no location is given: ``data_inputs/<name>/``
    and the registered ``default_dirs``."""
    cfg = DATASETS.get(dataset)
    extra = cfg.default_dirs if cfg is not None else ()
    return (project_root() / "data_inputs" / dataset, *(_from_root(p) for p in extra))


def input_dir(dataset: str, data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The folder (or file) holding ``dataset``'s inputs: ``data_dir``, else
    ``$<NAME>_DIR`` (:func:`data_dir_env`), else the first existing of
    :func:`input_candidates`. Relative paths are taken from the project root. A given path that
    does not exist raises ``FileNotFoundError`` naming it and where it came from; nothing found
    raises ``FileNotFoundError`` naming the places looked in and the variable to set."""
    env = data_dir_env(dataset)
    for given, source in ((data_dir, "data_dir"), (os.environ.get(env), f"${env}")):
        if given is None or str(given) == "":
            continue
        p = _from_root(given)
        if not p.exists():
            raise FileNotFoundError(f"dataset {dataset!r}: {p} ({source}) does not exist")
        return p
    candidates = input_candidates(dataset)
    for p in candidates:
        if p.exists():
            return p
    places = ", ".join(str(p) for p in candidates)
    raise FileNotFoundError(f"dataset {dataset!r} not found (looked in {places}): put it in "
                            f"data_inputs/{dataset}/, or set ${env} or notebook 02's data_dir "
                            "to its folder")


def output_dir(dataset: str, kind: str) -> Path:
    """``data_outputs/<dataset>/<kind>`` where kind is interim, processed, reports or executed.
    Not created here; writers create parents."""
    if kind not in {"interim", "processed", "reports", "executed"}:
        raise ValueError(f"unknown output kind {kind!r}")
    return project_root() / "data_outputs" / dataset / kind


def figures_dir(dataset: str) -> Path:
    """``figures/<dataset>``; not created here."""
    return project_root() / "figures" / dataset


def holds_project_runs(folder: Path) -> bool:
    """True when ``folder`` or its ``raw/`` holds a run folder of the project's format
    (``<env>/<arch>/<NNN>/``, 3 or more digits, with ``metadata.json`` or ``samples.csv``)."""
    for root in (folder / "raw", folder):
        for name in (METADATA_FILE, SAMPLES_FILE):
            if any(p.parent.name.isdigit() and len(p.parent.name) >= 3
                   for p in root.glob(f"*/*/*/{name}")):
                return True
    return False


def detected_kind(dataset: str) -> str:
    """The kind of an unregistered dataset, from its folder (:func:`input_dir`):
    ``"project"`` where the folder does not exist yet (notebook 01 writes that format), is
    empty, or holds project run folders; else :data:`DETECT`: notebook 02 detects the kind
    (:func:`helpers.readers.detect.detect`) or says why the folder is not recognised."""
    try:
        folder = input_dir(dataset)
    except FileNotFoundError:
        return "project"
    if folder.is_dir() and (not any(folder.iterdir()) or holds_project_runs(folder)):
        return "project"
    return DETECT


def default_datasets() -> tuple[list[str], list[str]]:
    """The registered datasets ``make figures`` runs when none is named, and a note per dataset
    left out: those whose notebooks collect or download their own inputs (``collected``,
    ``seaa2023``) always, the others when their folder is found (:func:`input_dir`)."""
    chosen, notes = [], []
    for name, cfg in DATASETS.items():
        if needs_seaa2023(name) or "01-collect" in cfg.notebooks:
            chosen.append(name)
            continue
        try:
            input_dir(name)
        except FileNotFoundError as exc:
            notes.append(f"{name} skipped: {exc}")
            continue
        chosen.append(name)
    return chosen, notes


def get(dataset: str) -> DatasetConfig:
    """Return the config of a registered dataset, or one for an unregistered name, whose kind
    is detected from its folder (:func:`detected_kind`; ``data_inputs/<dataset>/``, or
    ``$<NAME>_DIR``). Its notebooks run with their defaults, which derive the analysis
    parameters from the data (:mod:`helpers.analysis.parameters`); register a ``DatasetConfig``
    with ``parameters`` to override them."""
    if dataset in DATASETS:
        return DATASETS[dataset]
    kind = detected_kind(dataset)
    return DatasetConfig(
        name=dataset, raw_format=kind, notebooks=ANALYSIS_NOTEBOOKS,
        description=f"{kind} dataset {dataset}",
    )
