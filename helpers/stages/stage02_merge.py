"""Stage of notebook 02 (merge): read one dataset's raw logs, join GPU with CPU/RAM samples, and
write the interim tables (docs/methods.md#merge).

The dataset's folder (:func:`helpers.core.datasets.input_dir`) is read by the reader of the kind
detected on disk (:func:`helpers.readers.detect.detect`; docs/own-data.md): published SEAA 2023
logs, the project's run folders, CodeCarbon CSVs (per-run energies, no samples), or a tidy
samples CSV described by its mapping file.

Interim outputs (``data_outputs/<dataset>/interim/``): ``profiling.parquet`` (samples in the
DL Training Profiling Dataset schema + extras; empty for CodeCarbon), ``run_index.parquet`` (one
row per discovered run: identity, status, training metadata, and for CodeCarbon the per-run
energies), ``events.parquet`` (phase events), ``skips.csv`` (every recorded skip with file,
line, column, reason), ``match_counts.csv``, and for CodeCarbon ``source_columns.csv`` (what
became of each column of the files, the ignored ones included).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from helpers.core import datasets
from helpers.core.errors import InputFormatError
from helpers.readers import codecarbon, detect, merge, project_merge, samples_csv, seaa2023
from helpers.readers.merge import EVENT_COLUMNS, MergeOutputs
from helpers.stages import common
from helpers.stages.common import Section, wrote


def merge_seaa2023(raw_dir: Path, tolerance_s: float = merge.DEFAULT_TOLERANCE_S,
                   tz: str = seaa2023.DEFAULT_TZ, metrics_path: Path | None = None,
                   dataset: str = "seaa2023", workers: int = 2,
                   strict: bool = False) -> MergeOutputs:
    """Read the published logs (``workers`` reader threads; ``strict``: the first bad row or
    file raises :class:`InputFormatError` instead of a recorded skip), join GPU with CPU/RAM
    samples (nearest within ``tolerance_s`` seconds), attach model metrics."""
    logs = seaa2023.read_logs(raw_dir, tz=tz, strict=strict, workers=workers)
    merged = merge.merge_nearest(logs.gpu, logs.cpu, tolerance_s)
    samples = merge.attach_run_columns(merged.samples, logs.runs,
                                       ["environment", "architecture", "run"])
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


def locate(dataset: str, data_dir: str | None = None) -> detect.DetectedInput:
    """Find ``dataset``'s folder (``data_dir``, ``$<NAME>_DIR``, ``data_inputs/<name>/``, the
    registered places; the published SEAA 2023 data as :func:`datasets.seaa2023_dir` finds it)
    and detect its kind. A registered dataset whose files are of another kind than registered
    raises :class:`InputFormatError`."""
    cfg = datasets.get(dataset)
    if datasets.needs_seaa2023(dataset):
        folder = datasets.seaa2023_dir(data_dir)
    else:
        folder = datasets.input_dir(dataset, data_dir)
    found = detect.detect(folder)
    if dataset in datasets.DATASETS and found.kind != cfg.raw_format:
        raise InputFormatError(folder, f"dataset {dataset!r} is registered as "
                               f"{cfg.raw_format!r} but holds {found.kind!r} data "
                               f"({found.evidence})")
    return found


def _timezone(found: detect.DetectedInput, cfg: datasets.DatasetConfig) -> str:
    """Timezone of naive stamps of a CodeCarbon or samples source: the mapping file's, else the
    registered dataset's, else UTC."""
    return found.mapping.get("timezone") or cfg.timezone


def merge_found(found: detect.DetectedInput, dataset: str,
                tolerance_s: float = merge.DEFAULT_TOLERANCE_S,
                tz: str = seaa2023.DEFAULT_TZ, strict: bool | None = None) -> MergeOutputs:
    """Read a detected dataset with the reader of its kind; ``tz`` is the timezone of the
    published SEAA 2023 logs (CodeCarbon and samples sources use :func:`_timezone`).

    ``strict`` means the same for every kind: True, the first bad row or file raises
    :class:`InputFormatError` naming file, line and column; False, each is a recorded skip
    (``interim/skips.csv``) and the rest is read. None (the default) keeps each reader's own
    default: skips for the published logs and run folders, errors for CodeCarbon files, and
    a samples mapping's ``on_bad_row`` (docs/raw-format.md#plausibility-bounds)."""
    cfg = datasets.get(dataset)
    if found.kind == "seaa2023":
        metrics = found.root.parent / "interim" / "model_metrics.gzip"
        return merge_seaa2023(found.root, tolerance_s, tz,
                              metrics if metrics.is_file() else None, dataset,
                              strict=bool(strict))
    if found.kind == "project":
        return project_merge.merge_project(found.root, dataset, tolerance_s,
                                           strict=bool(strict))
    if found.kind == "codecarbon":
        chosen = {} if strict is None else {"strict": strict}
        result = codecarbon.read_codecarbon(list(found.files), dataset,
                                            environment=found.mapping.get("environment"),
                                            tz=_timezone(found, cfg), **chosen)
        return codecarbon.merge_outputs(result)
    mapping = found.mapping if strict is None else {
        **found.mapping, "on_bad_row": "error" if strict else "skip"}
    return samples_csv.read_samples(list(found.files), mapping, found.mapping_file,
                                    dataset, _timezone(found, cfg))


def merge_dataset(dataset: str, tolerance_s: float = merge.DEFAULT_TOLERANCE_S,
                  tz: str = seaa2023.DEFAULT_TZ, data_dir: str | None = None,
                  strict: bool | None = None) -> MergeOutputs:
    """Run the merge stage for a dataset: locate its folder, detect its kind, read it
    (``strict``: see :func:`merge_found`)."""
    return merge_found(locate(dataset, data_dir), dataset, tolerance_s, tz, strict)


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
                    tz: str = seaa2023.DEFAULT_TZ, data_dir: str | None = None,
                    strict: bool | None = None) -> tuple[MergeOutputs, Section]:
    """Merge ``dataset`` (:func:`merge_dataset`) and write the interim tables; the section
    names the input and the kind detected (and the files under it left out), counts runs and
    GPU samples, lists the written files and, for CodeCarbon, what became of each column of the
    files (the ignored ones named)."""
    found = locate(dataset, data_dir)
    merged = merge_found(found, dataset, tolerance_s, tz, strict)
    paths = merged.write(dataset)
    notes = [f"input: {datasets.relative_to_project(found.path)} (kind {found.kind}: "
             f"{found.evidence})",
             *(f"not part of the dataset: {datasets.relative_to_project(p)} (not a "
               f"{found.kind} file)" for p in found.ignored_files),
             f"{len(merged.run_index)} runs, {len(merged.profiling):,} GPU samples",
             *wrote(paths)]
    tables = {}
    if merged.source_columns is not None:
        cols = merged.source_columns
        ignored = cols.loc[cols["used_as"] == "ignored", "column"].tolist()
        notes.append(f"source columns: {len(cols) - len(ignored)} read, {len(ignored)} ignored"
                     + (f" ({', '.join(ignored)})" if ignored else ""))
        tables["what became of each source column"] = cols
    if found.kind == "codecarbon":
        notes.append("per-run energies from CodeCarbon: no samples, so no sample-based "
                     "analysis (power behaviour, per-epoch energies) for this dataset")
    return merged, Section(notes, tables)


def unmatched_samples(merged: MergeOutputs, top: int = 10) -> Section:
    """GPU samples without a CPU/RAM partner within the tolerance: the total share, and the
    ``top`` runs with the most unmatched samples."""
    counts = merged.match_counts
    unmatched, total = counts["unmatched"].sum(), counts["gpu_samples"].sum()
    if total == 0:
        return Section(["no samples to match (a per-run source)"])
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
