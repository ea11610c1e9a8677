"""Stage of notebook 02 (merge): read one dataset's raw logs, join GPU with CPU/RAM samples, and
write the interim tables (docs/methods.md#merge).

Interim outputs (``data_outputs/<dataset>/interim/``): ``profiling.parquet`` (samples in the
DL Training Profiling Dataset schema + extras), ``run_index.parquet`` (one row per discovered
run: identity, status, training metadata), ``events.parquet`` (phase events, project format),
``skips.csv`` (every recorded skip with file, line, column, reason), ``match_counts.csv``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from helpers.core import datasets
from helpers.readers import merge, project_merge, seaa2023
from helpers.readers.merge import EVENT_COLUMNS, MergeOutputs
from helpers.stages import common
from helpers.stages.common import Section, wrote


def merge_seaa2023(raw_dir: Path, tolerance_s: float = merge.DEFAULT_TOLERANCE_S,
                   tz: str = seaa2023.DEFAULT_TZ, metrics_path: Path | None = None,
                   dataset: str = "seaa2023", workers: int = 2) -> MergeOutputs:
    """Read the published logs, join GPU with CPU/RAM samples (nearest within ``tolerance_s``
    seconds), attach model metrics."""
    logs = seaa2023.read_logs(raw_dir, tz=tz, workers=workers)
    merged = merge.merge_nearest(logs.gpu, logs.cpu, tolerance_s)
    ident = logs.runs[["run_id", "environment", "architecture", "run"]]
    samples = merged.samples.merge(ident, on="run_id", how="left", validate="many_to_one")
    samples = merge.add_elapsed(samples)
    profiling = merge.to_profiling_schema(samples, dataset)
    index = logs.runs.drop(columns=["gpu_file", "cpu_file"]).copy()
    index["environment_name"] = index["environment"].map(seaa2023.ENVIRONMENT_NAMES)
    index["status"] = "ok"
    index["return_code"] = 0
    problems = logs.skips[logs.skips["line"].isna() | (logs.skips["line"] == 1)]
    joined = problems.groupby("run_id")["reason"].agg("; ".join)
    # (Series.map + fillna("") warns, and will fail, when no run has a problem: float NaN column)
    index["read_problem"] = [joined.get(run_id, "") for run_id in index["run_id"]]
    if metrics_path is not None:
        metrics = seaa2023.read_model_metrics(metrics_path)
        index = index.merge(metrics, on=["environment", "architecture", "run"], how="left",
                            validate="one_to_one")
    events = pd.DataFrame(columns=EVENT_COLUMNS)
    return MergeOutputs(profiling, index, events, logs.skips, merged.match_counts)


def merge_dataset(dataset: str, tolerance_s: float = merge.DEFAULT_TOLERANCE_S,
                  tz: str = seaa2023.DEFAULT_TZ, data_dir: str | None = None) -> MergeOutputs:
    """Run the merge stage for a registered dataset (dispatch on its raw format)."""
    cfg = datasets.get(dataset)
    if cfg.raw_format == "seaa2023":
        root = datasets.seaa2023_dir(data_dir)
        return merge_seaa2023(root / "raw", tolerance_s, tz,
                              root / "interim" / "model_metrics.gzip", dataset)
    raw = Path(data_dir) if data_dir else datasets.raw_dir(dataset)
    return project_merge.merge_project(raw, dataset, tolerance_s)


def read_interim(dataset: str) -> MergeOutputs:
    """Load the merge stage's outputs of ``dataset``."""
    d = datasets.output_dir(dataset, "interim")
    missing = [f for f in ("profiling.parquet", "run_index.parquet", "events.parquet")
               if not (d / f).exists()]
    if missing:
        raise FileNotFoundError(f"{d} lacks {', '.join(missing)}: run notebook 02-merge first")
    return MergeOutputs(
        pd.read_parquet(d / "profiling.parquet"), pd.read_parquet(d / "run_index.parquet"),
        pd.read_parquet(d / "events.parquet"), pd.read_csv(d / "skips.csv"),
        pd.read_csv(d / "match_counts.csv"),
    )


# --------------------------------------------------------------------------------------------
# Notebook sections
# --------------------------------------------------------------------------------------------

def setup_display() -> None:
    """Figure style and pandas display options of notebook 02."""
    common.setup_display()


def merge_and_write(dataset: str, tolerance_s: float = merge.DEFAULT_TOLERANCE_S,
                    tz: str = seaa2023.DEFAULT_TZ, data_dir: str | None = None
                    ) -> tuple[MergeOutputs, Section]:
    """Merge ``dataset`` (:func:`merge_dataset`) and write the interim tables; the section
    counts runs and GPU samples and lists the written files."""
    merged = merge_dataset(dataset, tolerance_s=tolerance_s, tz=tz, data_dir=data_dir)
    paths = merged.write(dataset)
    notes = [f"{len(merged.run_index)} runs, {len(merged.profiling):,} GPU samples",
             *wrote(paths)]
    return merged, Section(notes)


def unmatched_samples(merged: MergeOutputs, top: int = 10) -> Section:
    """GPU samples without a CPU/RAM partner within the tolerance: the total share, and the
    ``top`` runs with the most unmatched samples."""
    counts = merged.match_counts
    unmatched, total = counts["unmatched"].sum(), counts["gpu_samples"].sum()
    note = f"unmatched GPU samples: {unmatched:,} of {total:,} ({unmatched / total:.2%})"
    table = counts.sort_values("unmatched", ascending=False).head(top)
    return Section([note], {"runs with the most unmatched samples": table})


def skip_summary(merged: MergeOutputs) -> Section:
    """Recorded skips (bad or torn lines, missing files): records and rows per reason."""
    skips = merged.skips
    table = skips.groupby("reason", dropna=False).agg(records=("reason", "size"),
                                                      rows=("rows", "sum"))
    return Section([f"{len(skips)} skip records"], {"skips by reason": table})


def profiling_preview(merged: MergeOutputs, rows: int = 5) -> Section:
    """The first ``rows`` rows of the profiling table (dataset-card schema first, extras
    after)."""
    return Section(tables={"profiling": merged.profiling.head(rows)})
