"""Reader of the committed architecture feature table (docs/methods.md#estimators).

``data_inputs/architecture-features.csv`` holds graph features per (architecture, input size,
source), made by ``python -m helpers.collect.architecture --refresh`` (the only place that needs
torch). This module reads the CSV only, and joins it to a run table:

* the source (model definitions) of a run: the dataset's training code where it is known
  (:data:`DATASET_SOURCES`: SEAA 2023 trained Keras models, EE-Training timm models), else
  torchvision (the collect stage's models), else timm;
* its input size: ``input_size_px`` where the run records it, else the dataset's documented
  input size (:data:`DATASET_INPUT_SIZE_PX`), else the model's default input size (what timm's
  and torchvision's reference training scripts use), each tagged in ``input_size_rule``.

A run whose (architecture, input size) the table lacks gets NaN features and the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.core import datasets

#: The committed table, relative to the project root.
TABLE_PATH = Path("data_inputs") / "architecture-features.csv"
#: Operator families of the table (``flops_per_sample_<family>``, ``bytes_per_sample_<family>``).
FAMILIES = ("conv", "conv_grouped", "matmul", "attention", "norm", "elementwise")
#: Key columns of the table.
KEY = ("architecture", "input_size_px", "source")
#: Numeric feature columns joined to runs.
FEATURE_COLUMNS = (
    "params", "param_tensors", "param_bytes",
    *(f"flops_per_sample_{f}" for f in FAMILIES), "flops_per_sample", "flops_per_sample_forward",
    *(f"bytes_per_sample_{f}" for f in FAMILIES), "bytes_per_sample", "bytes_per_sample_forward",
    "bytes_per_step_fixed", "activation_bytes_per_sample", "op_calls_per_step",
    "op_calls_forward",
)
#: Dataset -> source of its models (the training code the published runs used).
DATASET_SOURCES = {"seaa2023": "seaa2023-keras", "ee-training": "timm"}
#: Dataset -> input size (px) its training code documents, for runs that do not record one
#: (SEAA 2023: ``IMAGE_SIZE = (128, 128)`` in the published ``src/models/__init__.py``).
DATASET_INPUT_SIZE_PX = {"seaa2023": 128}
#: Source preference for datasets not in :data:`DATASET_SOURCES`.
DEFAULT_SOURCES = ("torchvision", "timm")


def table_path() -> Path:
    """The feature table: under the project root (``$DLE_PROJECT_ROOT`` may hold a refreshed
    one), else the copy committed beside the package."""
    own = datasets.project_root() / TABLE_PATH
    return own if own.exists() else Path(__file__).resolve().parents[2] / TABLE_PATH


def read_table(path: str | Path | None = None) -> pd.DataFrame:
    """The feature table (``path``, default :func:`table_path`)."""
    path = Path(path) if path is not None else table_path()
    table = pd.read_csv(path, keep_default_na=False, na_values=[""])
    missing = [c for c in (*KEY, *FEATURE_COLUMNS, "default_input_size_px") if c not in table]
    if missing:
        raise ValueError(f"{path}: missing columns {missing}")
    table["feature_note"] = table.get("feature_note", pd.Series(dtype=object)).fillna("")
    return table


@dataclass
class RunFeatures:
    """Architecture features of each run.

    Attributes:
        features: indexed like the runs: :data:`FEATURE_COLUMNS` (NaN where not found),
            ``feature_source``, ``feature_input_size_px``, ``input_size_rule``,
            ``feature_note``.
        reasons: run index -> why it has no features (only those runs).
    """

    features: pd.DataFrame
    reasons: pd.Series


def _sources(dataset: str) -> tuple[str, ...]:
    own = DATASET_SOURCES.get(dataset)
    return (own,) if own else DEFAULT_SOURCES


def _input_size(run: pd.Series, rows: pd.DataFrame) -> tuple[float, str]:
    """(input size px, rule) of one run given its candidate table rows."""
    recorded = run.get("input_size_px", np.nan)
    if pd.notna(recorded) and np.isfinite(float(recorded)):
        return float(recorded), "recorded"
    documented = DATASET_INPUT_SIZE_PX.get(str(run.get("dataset", "")))
    if documented is not None:
        return float(documented), "dataset's training code"
    if len(rows):
        return float(rows["default_input_size_px"].iloc[0]), "model's default input size"
    return np.nan, "unknown"


def run_features(runs: pd.DataFrame, table: pd.DataFrame | None = None) -> RunFeatures:
    """Join the feature table to ``runs`` (columns ``architecture``, optional ``dataset`` and
    ``input_size_px``); see the module docstring for the rules."""
    table = read_table() if table is None else table
    by_arch = {a: sub for a, sub in table.groupby("architecture", sort=False)}
    out = pd.DataFrame(np.nan, index=runs.index, columns=list(FEATURE_COLUMNS))
    meta = pd.DataFrame({"feature_source": None, "feature_input_size_px": np.nan,
                         "input_size_rule": None, "feature_note": ""}, index=runs.index)
    reasons = {}
    for idx, run in runs.iterrows():
        arch = str(run.get("architecture", ""))
        cands = by_arch.get(arch, table.iloc[:0])
        for source in _sources(str(run.get("dataset", ""))):
            rows = cands[cands["source"] == source]
            if len(rows):
                break
        else:
            reasons[idx] = (f"architecture {arch!r} not in the feature table "
                            f"({TABLE_PATH.as_posix()}; add it with python -m "
                            "helpers.collect.architecture)")
            continue
        size, rule = _input_size(run, rows)
        hit = rows[rows["input_size_px"] == size]
        if hit.empty:
            reasons[idx] = (f"{arch} ({source}) at {size:g} px not in the feature table "
                            f"(sizes there: {sorted(rows['input_size_px'].unique().tolist())})")
            continue
        row = hit.iloc[0]
        out.loc[idx] = row[list(FEATURE_COLUMNS)].to_numpy(float)
        meta.loc[idx] = (source, size, rule, row["feature_note"])
    return RunFeatures(pd.concat([out, meta], axis=1), pd.Series(reasons, dtype=object))
