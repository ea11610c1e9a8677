"""Reader for CodeCarbon ``emissions.csv`` files (docs/methods.md#raw-formats) into the per-run
schema.

CodeCarbon writes one row per tracked run: ``timestamp`` (when the row was written, i.e. the end
of tracking; ISO text, usually without a timezone), ``duration`` (s), ``emissions`` (kg CO2e),
``cpu_power``/``gpu_power``/``ram_power`` (W, the last power reading), ``cpu_energy``/
``gpu_energy``/``ram_energy``/``energy_consumed`` (kWh), hardware columns (``cpu_count``,
``cpu_model``, ``gpu_count``, ``gpu_model`` such as ``"1 x NVIDIA GeForce RTX 3090"``,
``ram_total_size`` GB), location columns and ``pue``. Extra columns written by the user may follow
(model/architecture, epochs, batch size, accuracy, F1, FLOPs/GFLOPs, parameters, train size,
environment); they are recognised by the aliases in ``EXTRA_ALIASES``.

Mapping to ``RUN_COLUMNS`` (energies converted kWh -> J, 3.6e6 J/kWh):

* ``gpu_energy_j`` = ``gpu_energy`` where it is > 0 (method ``'codecarbon'``); a GPU-less row
  (no ``gpu_model``/``gpu_count`` 0) or a 0 kWh GPU energy gets NaN and ``'unmeasured: ...'``.
* ``energy_j`` = GPU energy where a GPU ran and was measured; CPU energy for GPU-less rows
  (``energy_source`` ``'gpu:codecarbon'`` / ``'cpu:codecarbon'``); NaN with an
  ``'unmeasured: ...'`` source when a GPU is listed but its energy is 0 (no silent substitution
  of CPU energy for a GPU run). ``total_energy_j`` = ``energy_consumed``.
* ``carbon_intensity_g_per_kwh`` = emissions / energy_consumed (what CodeCarbon used);
  ``emissions_g`` = ``energy_kwh`` x that intensity (the schema's definition, for ``energy_j``).
* ``start_utc`` = timestamp - duration; naive stamps are read in ``tz`` (default UTC).
* ``gpu_power_mean_w`` = GPU energy / duration (CodeCarbon's ``gpu_power`` is the last reading).
* ``environment``: an ``environment`` extra column, else the ``environment`` argument, else the
  hardware (GPU model, or CPU model for GPU-less rows). ``architecture``: a model/architecture
  extra column, else ``project_name``. ``run`` numbers runs within (environment, architecture)
  by start time; ``run_id`` is ``'<environment>/<architecture>/<run:03d>'``.
* Unknown quantities (sample counts, power spread, power limit, status code) are NaN.

Bad input, per case:

* header lacks a required column, a row has the wrong number of fields, a numeric cell holds
  text, a stamp cannot be parsed, or a value is negative -> ``InputFormatError`` naming file,
  line and column (the file is corrupt; guessing would hide it);
* a required cell is empty (a tracker that did not finish), or the duration is 0 -> the row is
  skipped and recorded with its reason;
* the same CodeCarbon ``run_id`` on several rows (repeated flushes in append mode, cumulative)
  -> the last row is kept and the earlier ones are recorded as skipped.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from helpers.core import units
from helpers.core.errors import InputFormatError
from helpers.core.schema import RUN_COLUMNS
from helpers.core.units import J_PER_KWH

#: Columns every CodeCarbon emissions.csv has (since v2).
REQUIRED_COLUMNS = ("timestamp", "duration", "emissions", "cpu_energy", "gpu_energy",
                    "ram_energy", "energy_consumed")
#: Numeric CodeCarbon columns read when present (empty -> NaN).
OPTIONAL_NUMERIC = ("cpu_power", "gpu_power", "ram_power", "emissions_rate", "cpu_count",
                    "gpu_count", "ram_total_size", "pue", "gpu_utilization_percent",
                    "cpu_utilization_percent", "ram_used_gb")
#: Extra per-run columns: schema name -> accepted header names (case-insensitive).
EXTRA_ALIASES: dict[str, tuple[str, ...]] = {
    "environment": ("environment", "training environment", "train_strategy"),
    "architecture": ("architecture", "model", "model_name"),
    "epochs": ("epochs", "trained epochs", "trained_epochs", "n_epochs"),
    "batch_size": ("batch_size", "batch size"),
    "train_size": ("train_size", "training size", "training_size"),
    "accuracy": ("accuracy", "acc"),
    "f1": ("f1", "f1-score", "f1_score", "macro_f1"),
    "gflops": ("gflops",),
    "flops": ("flops",),
    "params": ("params", "parameters", "n_params"),
}
_TEXT_EXTRAS = {"environment", "architecture"}
#: Extra output columns beside RUN_COLUMNS.
EXTRA_OUTPUT = ("pue", "gpu_count", "cpu_count", "cpu_model", "ram_total_gb", "country_iso_code",
                "region", "codecarbon_run_id", "source_file", "source_line")


@dataclass
class CodeCarbonRuns:
    """Runs read from CodeCarbon files and the rows left out.

    Attributes:
        runs: RUN_COLUMNS (in order) followed by ``EXTRA_OUTPUT``.
        skipped: ``source_file``, ``line``, ``column``, ``reason`` for every row left out.
    """

    runs: pd.DataFrame
    skipped: pd.DataFrame


def _number(text: str, path: Path, line: int, column: str) -> float:
    """Parse a numeric cell; empty -> NaN; text or negative -> InputFormatError."""
    text = text.strip()
    if text == "" or text.lower() in {"nan", "none"}:
        return math.nan
    try:
        value = float(text)
    except ValueError:
        raise InputFormatError(path, f"non-numeric value {text!r}", line=line,
                               column=column) from None
    if value < 0 and column not in {"longitude", "latitude"}:
        raise InputFormatError(path, f"negative value {value}", line=line, column=column)
    return value


def _end_time(text: str, tz: str, path: Path, line: int) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(text.strip())
    except (ValueError, TypeError):
        stamp = pd.NaT
    if pd.isna(stamp):
        raise InputFormatError(path, f"unparsable timestamp {text!r}", line=line,
                               column="timestamp")
    return stamp.tz_localize(tz) if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _gpu_name(model: str) -> str:
    """``'1 x NVIDIA GeForce RTX 3090'`` -> ``'NVIDIA GeForce RTX 3090'``; empty -> 'none'."""
    model = re.sub(r"^\s*\d+\s*x\s+", "", model or "").strip()
    return model or "none"


def _read_rows(path: Path, tz: str) -> tuple[list[dict], list[tuple]]:
    """Parse the file into row dicts (numbers parsed) and (file, line, column, reason) skips."""
    rows, skips = [], []
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            raise InputFormatError(path, "empty file (no header)", line=1)
        header = [h.strip() for h in header]
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise InputFormatError(path, f"header lacks required column(s) {missing}", line=1,
                                   column=missing[0])
        lower = {h.lower(): h for h in header}
        extras = {name: next((lower[a] for a in aliases if a in lower), None)
                  for name, aliases in EXTRA_ALIASES.items()}
        numeric = [*REQUIRED_COLUMNS[1:], *(c for c in OPTIONAL_NUMERIC if c in header),
                   *(col for name, col in extras.items() if col and name not in _TEXT_EXTRAS)]
        for fields in reader:
            line = reader.line_num
            if not fields or all(not f.strip() for f in fields):
                continue
            if len(fields) != len(header):
                raise InputFormatError(path, f"{len(fields)} fields, header has {len(header)}",
                                       line=line)
            raw = dict(zip(header, fields, strict=True))
            row = {"source_line": line, "raw": raw, "extras": extras}
            for col in numeric:
                row[col] = _number(raw[col], path, line, col)
            empty = [c for c in REQUIRED_COLUMNS if not raw[c].strip()]
            if empty:
                skips.append((str(path), line, empty[0],
                              f"empty required value in {empty[0]!r} (tracker did not finish?)"))
                continue
            if row["duration"] == 0:
                skips.append((str(path), line, "duration", "zero duration"))
                continue
            row["end_utc"] = _end_time(raw["timestamp"], tz, path, line)
            rows.append(row)
    return rows, skips


def _extra(row: dict, name: str):
    col = row["extras"][name]
    if col is None:
        return math.nan if name not in _TEXT_EXTRAS else None
    if name in _TEXT_EXTRAS:
        return row["raw"][col].strip() or None
    return row[col]


def _run_record(row: dict, dataset: str, environment: str | None, path: Path) -> dict:
    raw = row["raw"]
    kwh = J_PER_KWH
    gpu_name = _gpu_name(raw.get("gpu_model", ""))
    gpu_count = row.get("gpu_count", math.nan)
    has_gpu = gpu_name != "none" and not (gpu_count == 0)
    gpu_j = row["gpu_energy"] * kwh
    cpu_j, ram_j = row["cpu_energy"] * kwh, row["ram_energy"] * kwh
    if has_gpu and gpu_j > 0:
        gpu_e, gpu_m, energy, source = gpu_j, "codecarbon", gpu_j, "gpu:codecarbon"
    elif has_gpu:
        gpu_e, gpu_m = math.nan, "unmeasured: CodeCarbon recorded 0 kWh for the GPU"
        energy, source = math.nan, "unmeasured: GPU listed but its energy is 0 kWh"
    else:
        gpu_e, gpu_m = math.nan, "unmeasured: no GPU in the CodeCarbon row"
        energy, source = cpu_j, "cpu:codecarbon"
    duration = row["duration"]
    total_kwh = row["energy_consumed"]
    intensity = row["emissions"] * 1e3 / total_kwh if total_kwh > 0 else math.nan
    gflops = _extra(row, "gflops")
    if math.isnan(gflops):
        gflops = _extra(row, "flops") / 1e9
    epochs, train_size = _extra(row, "epochs"), _extra(row, "train_size")
    images = epochs * train_size
    env = (_extra(row, "environment") or environment
           or (gpu_name if has_gpu else raw.get("cpu_model", "").strip() or "unknown"))
    arch = _extra(row, "architecture") or raw.get("project_name", "").strip() or "unknown"
    return {
        "dataset": dataset, "environment": env, "environment_name": env, "architecture": arch,
        "gpu_name": gpu_name if has_gpu else "none",
        "start_utc": row["end_utc"] - pd.Timedelta(seconds=duration), "duration_s": duration,
        "n_samples": math.nan, "sampling_period_s": math.nan,
        "gpu_energy_j": gpu_e, "gpu_energy_method": gpu_m, "gpu_energy_trapezoid_j": math.nan,
        "cpu_energy_j": cpu_j, "cpu_energy_method": "codecarbon",
        "ram_energy_j": ram_j, "ram_energy_method": "codecarbon",
        "energy_j": energy, "energy_source": source, "total_energy_j": total_kwh * kwh,
        "energy_kwh": energy / kwh, "emissions_g": energy / kwh * intensity,
        "carbon_intensity_g_per_kwh": intensity,
        "gpu_power_mean_w": gpu_e / duration, "gpu_power_std_w": math.nan,
        "gpu_power_max_w": math.nan, "gpu_power_limit_w": math.nan,
        "gpu_usage_mean": row.get("gpu_utilization_percent", math.nan) / 100,
        "gpu_memory_usage_mean": math.nan, "gpu_temperature_mean_c": math.nan,
        "cpu_usage_mean_pct": row.get("cpu_utilization_percent", math.nan),
        "ram_used_mean_mb": row.get("ram_used_gb", math.nan) * units.MIB_PER_GIB,
        "batch_size": _extra(row, "batch_size"), "gflops": gflops,
        "params": _extra(row, "params"), "train_size": train_size, "epochs": epochs,
        "images_seen": images, "accuracy": _extra(row, "accuracy"), "f1": _extra(row, "f1"),
        "energy_per_image_j": energy / images if images > 0 else math.nan,
        "time_per_image_s": duration / images if images > 0 else math.nan,
        "status": "ok", "return_code": pd.NA,
        "pue": row.get("pue", math.nan), "gpu_count": gpu_count,
        "cpu_count": row.get("cpu_count", math.nan),
        "cpu_model": raw.get("cpu_model", "").strip() or None,
        "ram_total_gb": row.get("ram_total_size", math.nan),
        "country_iso_code": raw.get("country_iso_code", "").strip() or None,
        "region": raw.get("region", "").strip() or None,
        "codecarbon_run_id": raw.get("run_id", "").strip() or None,
        "source_file": str(path), "source_line": row["source_line"],
    }


def _drop_duplicates(rows: list[dict], skips: list[tuple]) -> list[dict]:
    """Keep the last row of each CodeCarbon run_id (within a file); record the others."""
    last = {}
    for row in rows:
        key = row["codecarbon_run_id"]
        if key is not None and key in last:
            prev = last[key]
            skips.append((prev["source_file"], prev["source_line"], "run_id",
                          f"duplicate run_id {key!r}: superseded by line {row['source_line']}"))
        last[key if key is not None else id(row)] = row
    return list(last.values())


def read_codecarbon(paths: str | Path | list[str | Path], dataset: str,
                    environment: str | None = None, tz: str = "UTC") -> CodeCarbonRuns:
    """Read one or more CodeCarbon ``emissions.csv`` files into the per-run schema.

    Args:
        paths: file or files.
        dataset: value of the ``dataset`` column.
        environment: environment label when the file has no ``environment`` column (default:
            the hardware, see the module docstring).
        tz: timezone of naive ``timestamp`` values (CodeCarbon writes local time without an
            offset on most versions).

    Returns ``CodeCarbonRuns`` (runs and skipped rows). See the module docstring for the
    mapping and for how malformed input is handled.
    """
    paths = [paths] if isinstance(paths, str | Path) else paths
    records, skips = [], []
    for p in map(Path, paths):
        rows, file_skips = _read_rows(p, tz)
        skips.extend(file_skips)
        records.extend(_drop_duplicates(
            [_run_record(r, dataset, environment, p) for r in rows], skips))
    cols = [*RUN_COLUMNS, *EXTRA_OUTPUT]
    runs = pd.DataFrame(records, columns=[c for c in cols if c != "run_id" and c != "run"])
    if not runs.empty:
        runs = runs.sort_values(["environment", "architecture", "start_utc"], kind="stable")
        runs["run"] = runs.groupby(["environment", "architecture"]).cumcount().astype("int64")
        runs["run_id"] = (runs["environment"] + "/" + runs["architecture"] + "/"
                          + runs["run"].map("{:03d}".format))
    else:
        runs["run"] = pd.Series(dtype="int64")
        runs["run_id"] = pd.Series(dtype="str")
    runs["return_code"] = runs["return_code"].astype("Int64")
    runs["start_utc"] = pd.to_datetime(runs["start_utc"], utc=True)
    skipped = pd.DataFrame(skips, columns=["source_file", "line", "column", "reason"])
    return CodeCarbonRuns(runs[cols].reset_index(drop=True), skipped)
