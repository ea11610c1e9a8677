"""Dataset registry: where each dataset's raw inputs live and which notebooks process it.

Nothing here touches the file system at import. Locations are resolved when asked for, from
parameters first and environment variables second.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

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


@dataclass(frozen=True)
class DatasetConfig:
    """One dataset the pipeline can process.

    Attributes:
        name: short name, used in output folders (``data_outputs/<name>/``, ``figures/<name>/``).
        raw_format: ``"seaa2023"`` (published nvidia-smi/psutil logs) or ``"project"`` (our
            sampler's format, see ``data_inputs/README.md``).
        notebooks: notebook stems run in order by ``make figures``.
        description: one line for reports.
        parameters: per-notebook papermill parameters overriding the notebooks' defaults.
    """

    name: str
    raw_format: str
    notebooks: tuple[str, ...]
    description: str
    parameters: dict[str, dict] = field(default_factory=dict)


ANALYSIS_NOTEBOOKS = ("02-merge", "03-clean", "04-trade-offs", "05-power-behaviour",
                      "06-estimator-fitting")

#: Parameters for datasets of short runs (tens of seconds, few epochs, few repetitions): keep
#: every run, and look at time scales of seconds rather than the minutes of the published runs.
SHORT_RUN_PARAMETERS: dict[str, dict] = {
    "03-clean": {"min_epochs": 1, "contamination": 0},
    "05-power-behaviour": {"estimate_starts_s": [0, 2, 4, 6, 8],
                           "estimate_windows_s": [2, 4, 8],
                           "sensitivity_windows": [5, 10, 20]},
    "06-estimator-fitting": {"stabilisation_s": [0, 2, 4, 6, 8]},
}

DATASETS: dict[str, DatasetConfig] = {
    "seaa2023": DatasetConfig(
        name="seaa2023",
        raw_format="seaa2023",
        notebooks=ANALYSIS_NOTEBOOKS,
        description="SEAA 2023 published raw logs (RTX 3090 'cloud', RTX 3070 'local-v2')",
    ),
    "collected": DatasetConfig(
        name="collected",
        raw_format="project",
        notebooks=("01-collect", *ANALYSIS_NOTEBOOKS),
        description="runs collected on this machine by notebook 01 (default grid)",
        # the default CPU grid makes ~20 s runs of 20 short epochs
        parameters=SHORT_RUN_PARAMETERS,
    ),
    "gpu-h100": DatasetConfig(
        name="gpu-h100",
        raw_format="project",
        notebooks=ANALYSIS_NOTEBOOKS,
        description="10 runs collected by notebook 01 on an NVIDIA H100 80GB (committed raw data; "
                    "docs/gpu-measurements.md)",
        # ~30 s runs of 8 epochs of ~3 s, two per architecture
        parameters=SHORT_RUN_PARAMETERS,
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
    """True when ``dataset``'s notebooks read the published SEAA 2023 folder."""
    return get(dataset).raw_format == "seaa2023"


def raw_dir(dataset: str) -> Path:
    """Folder with the raw files of ``dataset``: the published folder's ``raw/`` for seaa2023,
    ``data_inputs/<dataset>/raw`` for datasets in the project's own format."""
    cfg = get(dataset)
    if cfg.raw_format == "seaa2023":
        return seaa2023_dir() / "raw"
    return project_root() / "data_inputs" / dataset / "raw"


def output_dir(dataset: str, kind: str) -> Path:
    """``data_outputs/<dataset>/<kind>`` where kind is interim, processed, reports or executed.
    Not created here; writers create parents."""
    if kind not in {"interim", "processed", "reports", "executed"}:
        raise ValueError(f"unknown output kind {kind!r}")
    return project_root() / "data_outputs" / dataset / kind


def figures_dir(dataset: str) -> Path:
    """``figures/<dataset>``; not created here."""
    return project_root() / "figures" / dataset


def get(dataset: str) -> DatasetConfig:
    """Return the config of a registered dataset, or a config for an unregistered folder under
    ``data_inputs/<dataset>/raw`` in the project's format (your own runs from notebook 01), run
    through notebooks 02-06 with :data:`SHORT_RUN_PARAMETERS` (register a ``DatasetConfig`` for
    runs of minutes)."""
    if dataset in DATASETS:
        return DATASETS[dataset]
    return DatasetConfig(
        name=dataset, raw_format="project", notebooks=ANALYSIS_NOTEBOOKS,
        description=f"project-format dataset data_inputs/{dataset}",
        parameters=SHORT_RUN_PARAMETERS,
    )
