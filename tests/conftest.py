"""Shared fixtures. Add fixtures freely; do not remove ones other tests use.

Real-data fixtures read the published SEAA 2023 folder from ``helpers.core.datasets.seaa2023_dir()``
and never copy it into the repository: subsets are symlink trees under pytest's tmp folders.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd
import pytest

from helpers.core.datasets import seaa2023_dir
from helpers.readers import seaa2023

#: Published per-run dataset (Parquet despite the extension), relative to the SEAA 2023 folder.
PUBLISHED_RUNS = Path("processed") / "dl-training-energy-consumption-dataset.gzip"
#: Model metrics (Parquet despite the extension), relative to the SEAA 2023 folder.
MODEL_METRICS = Path("interim") / "model_metrics.gzip"


def link_seaa2023_runs(src: Path, dest: Path, stamps: Iterable[tuple[str, str, str]]) -> Path:
    """Build ``dest/raw/<env>/<arch>/`` with symlinks to the GPU and CPU logs of the given
    (environment, architecture, stamp) runs of ``src``, plus ``dest/interim/model_metrics.gzip``.
    Returns ``dest`` (a folder ``seaa2023_dir``/``merge_seaa2023`` accept)."""
    for env, arch, stamp in stamps:
        folder = dest / "raw" / env / arch
        folder.mkdir(parents=True, exist_ok=True)
        for prefix in ("gpu-power", "cpu-mem-usage"):
            source = src / "raw" / env / arch / f"{prefix}-{stamp}.csv"
            if source.exists():
                (folder / source.name).symlink_to(source)
    (dest / "interim").mkdir(parents=True, exist_ok=True)
    (dest / MODEL_METRICS).symlink_to(src / MODEL_METRICS)
    return dest


@pytest.fixture(scope="session")
def link_seaa2023() -> Callable[[Path, Path, Iterable[tuple[str, str, str]]], Path]:
    """:func:`link_seaa2023_runs`, for tests that build their own subset."""
    return link_seaa2023_runs


@pytest.fixture(scope="session")
def seaa2023_root() -> Path:
    """The published SEAA 2023 folder (a missing folder fails the tests that need it)."""
    return seaa2023_dir()


@pytest.fixture(scope="session")
def seaa2023_index(seaa2023_root: Path) -> pd.DataFrame:
    """Every run of the published raw folder, numbered over all stamps (discover_runs)."""
    return seaa2023.discover_runs(seaa2023_root / "raw")


@pytest.fixture(scope="session")
def published_runs(seaa2023_root: Path) -> pd.DataFrame:
    """The authors' processed per-run table (369 runs, energy in MJ)."""
    return pd.read_parquet(seaa2023_root / PUBLISHED_RUNS)


@pytest.fixture(scope="session")
def seaa2023_subset(tmp_path_factory: pytest.TempPathFactory, seaa2023_root: Path,
                    seaa2023_index: pd.DataFrame) -> Path:
    """Runs 0 and 1 (first two stamps, so their numbers equal the full folder's) of
    mobilenet_v2 and resnet50 in both environments: 8 runs covering both GPU header variants and
    torn last lines."""
    first = seaa2023_index[seaa2023_index["architecture"].isin(["mobilenet_v2", "resnet50"])
                           & (seaa2023_index["run"] < 2)]
    stamps = first[["environment", "architecture", "stamp"]].itertuples(index=False)
    return link_seaa2023_runs(seaa2023_root, tmp_path_factory.mktemp("seaa2023_subset"), stamps)


@pytest.fixture(scope="session")
def seaa2023_processed_root(tmp_path_factory, seaa2023_root: Path) -> Path:
    """A temporary project root holding the merge + clean outputs of ALL published runs
    (``data_outputs/seaa2023/{interim,processed}``), built here from the shared raw logs so that
    downstream notebook tests never depend on an earlier ``make figures``. ~20 s, once."""
    import os

    from helpers.core import datasets
    from helpers.stages import stage02_merge, stage03_clean

    root = tmp_path_factory.mktemp("seaa2023_processed_root")
    previous = os.environ.get(datasets.PROJECT_ROOT_ENV)
    os.environ[datasets.PROJECT_ROOT_ENV] = str(root)
    try:
        merged = stage02_merge.merge_dataset("seaa2023", data_dir=str(seaa2023_root))
        merged.write("seaa2023")
        stage03_clean.clean_dataset(merged, "seaa2023").write("seaa2023")
    finally:
        if previous is None:
            del os.environ[datasets.PROJECT_ROOT_ENV]
        else:
            os.environ[datasets.PROJECT_ROOT_ENV] = previous
    return root
