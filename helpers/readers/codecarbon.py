"""Reader for CodeCarbon ``emissions.csv`` files (docs/methods.md#raw-formats) into the per-run
schema; every column of the files is either mapped or listed as ignored (``columns``).

CodeCarbon writes one row per tracked run: ``timestamp`` (when the row was written, i.e. the end
of tracking; ISO text, usually without a timezone), ``duration`` (s), ``emissions`` (kg CO2e),
``cpu_power``/``gpu_power``/``ram_power`` (W, the last power reading), ``cpu_energy``/
``gpu_energy``/``ram_energy``/``energy_consumed`` (kWh), hardware columns (``cpu_count``,
``cpu_model``, ``gpu_count``, ``gpu_model`` such as ``"1 x NVIDIA GeForce RTX 3090"``,
``ram_total_size`` GB), location columns and ``pue``. Extra columns written by the user may follow
(model/architecture, dataset, epochs, batch size, input size, accuracy/top-1, F1, FLOPs,
parameters, train size, environment); they are recognised by the aliases in ``EXTRA_ALIASES``
(case-insensitive) and converted by the rules in :data:`UNIT_RULES`:

* FLOPs (``gflops``, ``forward_flops``, ``flops``, ...) -> ``gflops`` (GFLOPs per image, as the
  file gives them: at the run's input size); ``training_flops`` -> ``training_gflops``. Values of
  1e5 or more are FLOPs and divided by 1e9; smaller ones are GFLOPs already.
* ``params`` -> parameter count: a column named ``*_m`` or whose values are all below 1e4 is in
  millions (x 1e6).
* ``accuracy``, ``eval_top1``/``top1``/``top-1`` -> ``accuracy``, ``eval_top5`` ->
  ``top5_accuracy``, ``f1``: fractions 0-1; a column with a value above 1 is in % (/ 100).

The conversion used for each column is in the column report. The file's own values are kept:
its ``dataset`` column stays ``dataset`` (and is copied to ``image_dataset``, the pipeline's
name for the data trained on); the registry name goes to ``registry_dataset``. A file's
``energy_window``, ``*_energy_method``, ``status`` and ``return_code`` are kept too.

Mapping to ``RUN_COLUMNS`` (energies converted kWh -> J, 3.6e6 J/kWh):

* ``gpu_energy_j`` = ``gpu_energy`` where it is > 0 (method ``'codecarbon'``); a GPU-less row
  (no ``gpu_model``/``gpu_count`` 0) or a 0 kWh GPU energy gets NaN and ``'unmeasured: ...'``.
* ``energy_j`` = GPU energy where a GPU ran and was measured; CPU energy for GPU-less rows
  (``energy_source`` ``'gpu:codecarbon'`` / ``'cpu:codecarbon'``); NaN with an
  ``'unmeasured: ...'`` source when a GPU is listed but its energy is 0 (no silent substitution
  of CPU energy for a GPU run). ``total_energy_j`` = ``energy_consumed``.
* Window (docs/methods.md#energy-windows): the energies and ``duration_s`` cover what the tracker
  measured, ``energy_window`` = :data:`TRACKER_WINDOW` (or the file's ``energy_window``). With
  nothing else known, the training window is that window: ``training_energy_j`` =
  ``energy_j``, ``training_duration_s`` = ``duration_s``, ``training_window`` =
  ``energy_window``.
* ``carbon_intensity_g_per_kwh`` = emissions / energy_consumed (what CodeCarbon used);
  ``emissions_g`` = ``energy_kwh`` x that intensity (the schema's definition, for ``energy_j``).
* ``start_utc`` = timestamp - duration; naive stamps are read in ``tz`` (default UTC).
* ``gpu_power_mean_w`` = GPU energy / duration (CodeCarbon's ``gpu_power`` is the last reading).
* ``environment``: an ``environment`` extra column, else the ``environment`` argument, else the
  hardware (GPU model, or CPU model for GPU-less rows). ``architecture``: a model/architecture
  extra column, else ``project_name``. ``run`` numbers runs within (environment, architecture)
  by start time; ``run_id`` is ``'<environment>/<architecture>/<run:03d>'``.
* Unknown quantities (sample counts, power spread, power limit) are NaN.

Bad input, per case (docs/raw-format.md#plausibility-bounds):

* a folder or unreadable file where a file should be, a header that lacks a required column, a
  line that is not UTF-8, a row with the wrong number of fields, a numeric cell holding text or
  ``inf``, a stamp that is not ISO 8601 (``03/04/2026`` could be March or April: refused), or a
  negative value -> ``InputFormatError`` naming file, line and column (the file is corrupt;
  guessing would hide it). With ``strict=False`` each becomes a recorded skip instead (the row,
  or the whole file for a file-level problem) and the other rows and files are read;
* the last line has no newline (a write cut short: a number in it may be truncated, e.g. a
  train size of 5376 read as 53) -> skipped and recorded; CodeCarbon ends every row with one;
* a required cell is empty or NaN (a tracker that did not finish), the duration is 0, the end
  of tracking is outside :func:`helpers.core.bounds.stamps_in_range` or the start it implies
  is before 2000, or a component's mean power (energy / duration) is above its ceiling
  (:data:`helpers.core.bounds.GPU_POWER_CEILING_W` per GPU,
  :data:`helpers.core.bounds.CPU_POWER_CEILING_W`) -> the row is skipped and recorded with its
  reason;
* a utilisation outside 0-100 %, or an accuracy/F1 above 1 after the percent rule -> that value
  is NaN, recorded (the row is kept);
* the same CodeCarbon ``run_id`` on several rows, in one file (repeated flushes in append mode,
  cumulative) or in several files -> the row written last (latest ``timestamp``; on a tie, the
  one read last) is kept and the others are recorded as skipped. A file named twice is read
  once.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.core import bounds, units
from helpers.core.errors import InputFormatError
from helpers.core.schema import RUN_COLUMNS
from helpers.core.units import J_PER_KWH, MS_PER_S
from helpers.readers import rawfile
from helpers.readers.merge import SKIP_COLUMNS, MergeOutputs, empty_events, empty_profiling

#: Columns every CodeCarbon emissions.csv has (since v2).
REQUIRED_COLUMNS = ("timestamp", "duration", "emissions", "cpu_energy", "gpu_energy",
                    "ram_energy", "energy_consumed")
#: Numeric CodeCarbon columns read when present (empty -> NaN): column -> what it becomes.
OPTIONAL_NUMERIC = {
    "cpu_count": "cpu_count", "gpu_count": "gpu_count",
    "ram_total_size": "ram_total_gb (GB)", "pue": "pue",
    "gpu_utilization_percent": "gpu_usage_mean (% -> fraction)",
    "cpu_utilization_percent": "cpu_usage_mean_pct (%)",
    "ram_used_gb": "ram_used_mean_mb (GB x 1024)",
}
#: What the required and descriptive CodeCarbon columns become.
USED_COLUMNS = {
    "timestamp": "start_utc (timestamp - duration; end of tracking)",
    "duration": "duration_s, training_duration_s",
    "emissions": "carbon_intensity_g_per_kwh (emissions / energy_consumed)",
    "cpu_energy": "cpu_energy_j (kWh -> J)",
    "gpu_energy": "gpu_energy_j, energy_j (kWh -> J)",
    "ram_energy": "ram_energy_j (kWh -> J)",
    "energy_consumed": "total_energy_j (kWh -> J)",
    "gpu_model": "gpu_name (count prefix removed); environment where none is given",
    "cpu_model": "cpu_model; environment of GPU-less rows where none is given",
    "country_iso_code": "country_iso_code", "region": "region",
    "run_id": "codecarbon_run_id (duplicates: the last written is kept)",
    "project_name": "project_name; architecture where no model column is given",
    "experiment_id": "experiment_id", "experiment_name": "experiment_name",
    "tracking_mode": "tracking_mode", "codecarbon_version": "codecarbon_version",
}
#: Why some CodeCarbon columns are left out.
IGNORED_REASONS = {
    "cpu_power": "CodeCarbon's last CPU power reading (W); mean power = energy / duration",
    "gpu_power": "CodeCarbon's last GPU power reading (W); gpu_power_mean_w = energy / duration",
    "ram_power": "CodeCarbon's last RAM power reading (W)",
    "emissions_rate": "emissions / duration (kg/s); follows from the columns used",
}
#: Extra per-run columns: output name -> accepted header names (case-insensitive, first wins).
EXTRA_ALIASES: dict[str, tuple[str, ...]] = {
    "environment": ("environment", "training environment", "train_strategy"),
    "architecture": ("architecture", "model", "model_name", "arch"),
    "dataset": ("dataset", "image_dataset", "dataset_name"),
    "epochs": ("epochs", "trained epochs", "trained_epochs", "epochs_trained", "n_epochs",
               "num_epochs"),
    "batch_size": ("batch_size", "batch size", "bs"),
    "input_size_px": ("input_size_px", "input_size", "img_size", "image_size", "resolution"),
    "train_size": ("train_size", "training size", "training_size", "n_train", "train_samples"),
    "accuracy": ("accuracy", "acc", "eval_top1", "top1", "top-1", "top1_acc", "val_accuracy",
                 "test_accuracy", "eval_acc"),
    "top5_accuracy": ("eval_top5", "top5", "top-5", "top5_acc"),
    "f1": ("f1", "f1-score", "f1_score", "macro_f1"),
    "gflops": ("gflops", "forward_flops", "forward_gflops", "gflops_per_image", "flops"),
    "training_gflops": ("training_flops", "training_gflops", "train_flops"),
    "params": ("params", "parameters", "n_params", "num_params", "params_m"),
    "learning_rate": ("lr", "learning_rate"),
    "source_run": ("run",),
    "status": ("status",),
    "return_code": ("return_code",),
    "energy_window": ("energy_window",),
    "gpu_energy_method": ("gpu_energy_method",),
    "cpu_energy_method": ("cpu_energy_method",),
    "ram_energy_method": ("ram_energy_method",),
    "device": ("device",),
}
_TEXT_EXTRAS = {"environment", "architecture", "dataset", "status", "energy_window",
                "gpu_energy_method", "cpu_energy_method", "ram_energy_method", "device"}
#: Unit rule of each numeric extra, as stated in the column report.
UNIT_RULES = {
    "gflops": "GFLOPs per image; values >= 1e5 are FLOPs (/ 1e9)",
    "training_gflops": "GFLOPs per image (training step); values >= 1e5 are FLOPs (/ 1e9)",
    "params": "parameter count; a '*_m' column or values all < 1e4 are millions (x 1e6)",
    "accuracy": "fraction 0-1; a column with a value > 1 is in % (/ 100)",
    "top5_accuracy": "fraction 0-1; a column with a value > 1 is in % (/ 100)",
    "f1": "fraction 0-1; a column with a value > 1 is in % (/ 100)",
}
#: Window of the energies of a CodeCarbon row without an ``energy_window`` column.
TRACKER_WINDOW = "codecarbon tracker (whole run)"
#: Extra output columns beside RUN_COLUMNS.
EXTRA_OUTPUT = ("energy_window", "device_power_mean_w", "image_dataset", "registry_dataset",
                "input_size_px", "training_gflops", "top5_accuracy", "learning_rate", "device",
                "pue", "gpu_count", "cpu_count", "cpu_model", "ram_total_gb",
                "country_iso_code", "region", "codecarbon_run_id", "project_name",
                "experiment_id", "experiment_name", "tracking_mode", "codecarbon_version",
                "source_run", "source_file", "source_line")
#: Columns of ``CodeCarbonRuns.skipped``.
SKIPPED_COLUMNS = ["source_file", "line", "column", "reason", "rows"]
#: Columns of the column report.
COLUMN_REPORT_COLUMNS = ["column", "used_as", "note", "files"]


@dataclass
class CodeCarbonRuns:
    """Runs read from CodeCarbon files, the rows left out, and what became of each column.

    Attributes:
        runs: RUN_COLUMNS (in order) followed by ``EXTRA_OUTPUT``.
        skipped: ``source_file``, ``line``, ``column``, ``reason``, ``rows`` (1: a row left
            out; 0: a value set to NaN) for every skip.
        columns: one row per column of the files: ``column``, ``used_as`` (the output column,
            or ``'ignored'``), ``note`` (unit conversion, or why it is ignored), ``files``
            (how many files have it).
    """

    runs: pd.DataFrame
    skipped: pd.DataFrame
    columns: pd.DataFrame

    @property
    def ignored_columns(self) -> list[str]:
        """Columns of the files that nothing reads."""
        return self.columns.loc[self.columns["used_as"] == "ignored", "column"].tolist()


@dataclass
class _File:
    """One parsed file: rows (numbers parsed), skips, the extra columns found and their
    scale factors."""

    path: Path
    header: list[str]
    rows: list[dict]
    skips: list[tuple]
    extras: dict[str, str | None]
    scales: dict[str, tuple[float, str]]


_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")
#: ISO 8601 date-time as CodeCarbon writes it (date, optional time, optional offset).
_ISO_STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?"
                        r"(Z|[+-]\d{2}(:?\d{2})?)?$")
#: Mean power ceilings (W) of the energy columns (per GPU for gpu_energy).
_POWER_CEILINGS = {"gpu_energy": bounds.GPU_POWER_CEILING_W,
                   "cpu_energy": bounds.CPU_POWER_CEILING_W}


def _number(text: str, path: Path, line: int, column: str) -> float:
    """Parse a numeric cell; empty or NaN -> NaN; text, inf or negative -> InputFormatError."""
    text = text.strip()
    if text == "" or text.lower() in {"nan", "none"}:
        return math.nan
    if not _NUMBER.match(text):
        raise InputFormatError(path, f"non-numeric value {text!r}", line=line, column=column)
    value = float(text)
    if not math.isfinite(value):
        raise InputFormatError(path, f"value {text!r} is not finite", line=line, column=column)
    if value < 0 and column not in {"longitude", "latitude"}:
        raise InputFormatError(path, f"negative value {value}", line=line, column=column)
    return value


def _end_time(text: str, tz: str, path: Path, line: int) -> pd.Timestamp:
    """The end of tracking in UTC; only ISO 8601 is read (day-first and month-first dates
    cannot be told apart)."""
    text = text.strip()
    stamp = pd.NaT
    if _ISO_STAMP.match(text):
        try:
            stamp = pd.Timestamp(text)
        except (ValueError, TypeError, OverflowError):
            stamp = pd.NaT
    if pd.isna(stamp):
        raise InputFormatError(path, f"timestamp {text!r} is not an ISO 8601 date-time "
                               "(YYYY-MM-DDTHH:MM:SS)", line=line, column="timestamp")
    try:
        return stamp.tz_localize(tz) if stamp.tzinfo is None else stamp.tz_convert("UTC")
    except (ValueError, OverflowError):  # e.g. a local time that does not exist in tz
        raise InputFormatError(path, f"timestamp {text!r} does not exist in {tz}", line=line,
                               column="timestamp") from None


def _gpu_name(model: str) -> str:
    """``'1 x NVIDIA GeForce RTX 3090'`` -> ``'NVIDIA GeForce RTX 3090'``; empty -> 'none'."""
    model = re.sub(r"^\s*\d+\s*x\s+", "", model or "").strip()
    return model or "none"


def _extra_columns(header: list[str]) -> dict[str, str | None]:
    """Output name -> the header column it is read from (None where absent)."""
    lower = {h.lower(): h for h in header}
    taken: set[str] = set()
    out: dict[str, str | None] = {}
    for name, aliases in EXTRA_ALIASES.items():
        col = next((lower[a] for a in aliases if a in lower and lower[a] not in taken), None)
        out[name] = col
        if col:
            taken.add(col)
    return out


def _physical_rows(path: Path, strict: bool
                   ) -> tuple[list[str], list[tuple[int, list[str]]], bool, list[tuple]]:
    """Header, (line, fields) of each non-blank row, whether the file ends in a newline, and
    skips. A line that is not text (not UTF-8, a NUL byte) or holds a stray carriage return
    raises naming its line and column (``strict``), or is left out with a recorded skip; in
    the header it always raises."""
    raw = rawfile.read_bytes(path)
    first = raw.split(b"\n", 1)[0].decode("utf-8", errors="replace")
    names = [h.strip() for h in next(csv.reader([first]), [])]
    skips: list[tuple] = []
    bad = {b.line: (b.error(), rawfile.field_name(names, b.field))
           for b in rawfile.bad_text_lines(raw)}
    for line in rawfile.stray_cr_lines(raw):  # csv would take it for a line break
        bad.setdefault(line, ("carriage return inside a line", None))
    for line, (reason, column) in sorted(bad.items()):
        if strict or line == 1:
            raise InputFormatError(path, reason, line=line, column=column)
        skips.append((str(path), line, column, f"{reason}: row left out"))
    text = rawfile.blank_lines(raw, sorted(bad)).decode("utf-8")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            raise InputFormatError(path, "empty file (no header)", line=1)
        rows = []
        for fields in reader:
            if fields and any(f.strip() for f in fields):
                rows.append((reader.line_num, fields))
    except csv.Error as err:
        raise InputFormatError(path, f"unreadable CSV: {err}", line=reader.line_num) from None
    return [h.strip() for h in header], rows, text.endswith(("\n", "\r")), skips


def _parse_row(path: Path, line: int, fields: list[str], header: list[str], numeric: list[str],
               tz: str) -> dict | tuple:
    """A row dict with numbers parsed, or a (file, line, column, reason) skip; raises
    InputFormatError for corrupt cells."""
    if len(fields) != len(header):
        raise InputFormatError(path, f"{len(fields)} fields, header has {len(header)}",
                               line=line)
    raw = dict(zip(header, fields, strict=True))
    row = {"source_line": line, "raw": raw}
    for col in numeric:
        row[col] = _number(raw[col], path, line, col)
    empty = [c for c in REQUIRED_COLUMNS
             if not raw[c].strip() or (c != "timestamp" and math.isnan(row[c]))]
    if empty:
        return (str(path), line, empty[0],
                f"empty required value in {empty[0]!r} (tracker did not finish?)")
    if row["duration"] == 0:
        return (str(path), line, "duration", "zero duration")
    row["end_utc"] = _end_time(raw["timestamp"], tz, path, line)
    return _implausible(path, line, row)


def _implausible(path: Path, line: int, row: dict) -> dict | tuple:
    """The row, or a skip when its end of tracking, the start it implies or a mean power is
    implausible. Utilisations outside 0-100 % become NaN (recorded in ``row['notes']``)."""
    end_ms = row["end_utc"].timestamp() * MS_PER_S
    if not bounds.stamps_in_range(np.array([end_ms]))[0]:
        return (str(path), line, "timestamp", f"timestamp {row['end_utc']} outside "
                f"{bounds.stamp_range_text()}")
    if not bounds.stamps_in_range(np.array([end_ms - row["duration"] * MS_PER_S]))[0]:
        return (str(path), line, "duration", f"duration {row['duration']:g} s puts the start "
                f"of tracking outside {bounds.stamp_range_text()}")
    gpus = row.get("gpu_count", math.nan)
    for column, ceiling in _POWER_CEILINGS.items():
        count = max(gpus, 1.0) if column == "gpu_energy" and math.isfinite(gpus) else 1.0
        power = row[column] * J_PER_KWH / row["duration"]
        if power > ceiling * count:
            return (str(path), line, column, f"{column} {row[column]:g} kWh in "
                    f"{row['duration']:g} s is a mean {power:g} W, above "
                    f"{ceiling * count:g} W")
    row["notes"] = []
    for column in ("gpu_utilization_percent", "cpu_utilization_percent"):
        if column in row and bounds.outside(np.array([row[column]]),
                                            *bounds.UTILISATION_RANGE_PCT)[0]:
            row["notes"].append((str(path), line, column, f"{column} {row[column]:g} % outside "
                                 f"{bounds.range_text(*bounds.UTILISATION_RANGE_PCT, '%')}: "
                                 "set to NaN", 0))
            row[column] = math.nan
    return row


def _read_file(path: Path, tz: str, strict: bool) -> _File:
    """Parse one file. A last line without a newline is a torn write: skipped with a record.
    A corrupt row raises (``strict``) or is a recorded skip."""
    header, physical, ends_in_newline, skips = _physical_rows(path, strict)
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise InputFormatError(path, f"header lacks required column(s) {missing}", line=1,
                               column=missing[0])
    extras = _extra_columns(header)
    numeric = [*REQUIRED_COLUMNS[1:], *(c for c in OPTIONAL_NUMERIC if c in header),
               *(col for name, col in extras.items() if col and name not in _TEXT_EXTRAS)]
    rows = []
    if physical and not ends_in_newline:
        line, _ = physical.pop()
        skips.append((str(path), line, None, "torn last line (no newline at the end of the "
                      "file: a write cut short, a value may be truncated), left out"))
    for line, fields in physical:
        try:
            parsed = _parse_row(path, line, fields, header, numeric, tz)
        except InputFormatError as err:
            if strict:
                raise
            skips.append((str(path), line, err.column, err.reason))
            continue
        if isinstance(parsed, tuple):
            skips.append(parsed)
        else:
            skips.extend(parsed.pop("notes"))
            rows.append(parsed)
    scales = {name: _unit_scale(name, col, [r[col] for r in rows])
              for name, col in extras.items() if col and name in UNIT_RULES}
    skips.extend(_fractions_above_one(path, rows, extras, scales))
    return _File(path, header, rows, skips, extras, scales)


def _fractions_above_one(path: Path, rows: list[dict], extras: dict[str, str | None],
                         scales: dict[str, tuple[float, str]]) -> list[tuple]:
    """Accuracy, top-5 accuracy and F1 above 1 after the percent rule become NaN (recorded)."""
    notes = []
    for name in ("accuracy", "top5_accuracy", "f1"):
        col = extras.get(name)
        if col is None:
            continue
        scale = scales[name][0]
        for row in rows:
            if row[col] * scale > 1:
                notes.append((str(path), row["source_line"], col, f"{col} {row[col]:g} is above "
                              f"1 as a fraction ({scales[name][1]}): set to NaN", 0))
                row[col] = math.nan
    return notes


def _unit_scale(name: str, column: str, values: list[float]) -> tuple[float, str]:
    """(factor to the output unit, what was decided) for a numeric extra column."""
    finite = [v for v in values if math.isfinite(v)]
    top = max(finite) if finite else math.nan
    if name in ("gflops", "training_gflops"):
        if top >= 1e5:
            return 1e-9, "FLOPs -> GFLOPs (/ 1e9)"
        return 1.0, "GFLOPs (values < 1e5)"
    if name == "params":
        if column.lower().endswith("_m") or top < 1e4:
            return 1e6, "millions -> count (x 1e6)"
        return 1.0, "count"
    if top > 1:
        return 0.01, "% -> fraction (/ 100)"
    return 1.0, "fraction (values <= 1)"


def _extra(row: dict, file: _File, name: str):
    col = file.extras[name]
    if col is None:
        return None if name in _TEXT_EXTRAS else math.nan
    if name in _TEXT_EXTRAS:
        return row["raw"][col].strip() or None
    return row[col] * file.scales.get(name, (1.0, ""))[0]


def _text(raw: dict, column: str) -> str | None:
    return (raw.get(column) or "").strip() or None


def _energies(row: dict, has_gpu: bool) -> dict:
    """Component energies (J), the run's energy_j and their method tags."""
    kwh = J_PER_KWH
    gpu_j = row["gpu_energy"] * kwh
    if has_gpu and gpu_j > 0:
        gpu_e, gpu_m, energy, source = gpu_j, "codecarbon", gpu_j, "gpu:codecarbon"
    elif has_gpu:
        gpu_e, gpu_m = math.nan, "unmeasured: CodeCarbon recorded 0 kWh for the GPU"
        energy, source = math.nan, "unmeasured: GPU listed but its energy is 0 kWh"
    else:
        gpu_e, gpu_m = math.nan, "unmeasured: no GPU in the CodeCarbon row"
        energy, source = row["cpu_energy"] * kwh, "cpu:codecarbon"
    return {"gpu_energy_j": gpu_e, "gpu_energy_method": gpu_m,
            "cpu_energy_j": row["cpu_energy"] * kwh, "cpu_energy_method": "codecarbon",
            "ram_energy_j": row["ram_energy"] * kwh, "ram_energy_method": "codecarbon",
            "energy_j": energy, "energy_source": source,
            "total_energy_j": row["energy_consumed"] * kwh}


def _window(energy: dict, duration: float, gpu_power_w: float, gpu_usage: float,
            window: str) -> dict:
    """The training-window columns of a row whose tracked window is all that is known."""
    power = energy["energy_j"] / duration
    return {"energy_window": window, "training_window": window,
            "training_energy_scope": "epochs" if "epoch" in window else "whole run",
            "training_energy_j": energy["energy_j"], "training_duration_s": duration,
            "training_energy_source": energy["energy_source"],
            "training_start_s": 0.0, "training_end_s": duration,
            "device_power_mean_w": power, "training_device_power_mean_w": power,
            "training_gpu_power_mean_w": gpu_power_w, "training_gpu_usage_mean": gpu_usage,
            "training_gpu_memory_usage_mean": math.nan, "pre_epoch_energy_j": math.nan}


def _run_record(row: dict, file: _File, registry: str, environment: str | None) -> dict:
    raw = row["raw"]
    gpu_name = _gpu_name(raw.get("gpu_model", ""))
    gpu_count = row.get("gpu_count", math.nan)
    has_gpu = gpu_name != "none" and not (gpu_count == 0)
    energy = _energies(row, has_gpu)
    for name in ("gpu_energy_method", "cpu_energy_method", "ram_energy_method"):
        energy[name] = _extra(row, file, name) or energy[name]
    duration = row["duration"]
    total_kwh = row["energy_consumed"]
    intensity = row["emissions"] * 1e3 / total_kwh if total_kwh > 0 else math.nan
    epochs, train_size = _extra(row, file, "epochs"), _extra(row, file, "train_size")
    images = epochs * train_size
    env = (_extra(row, file, "environment") or environment
           or (gpu_name if has_gpu else _text(raw, "cpu_model") or "unknown"))
    arch = _extra(row, file, "architecture") or _text(raw, "project_name") or "unknown"
    gpu_power = energy["gpu_energy_j"] / duration
    gpu_usage = row.get("gpu_utilization_percent", math.nan) / 100
    return_code = _extra(row, file, "return_code")
    record = {
        "dataset": _extra(row, file, "dataset"), "image_dataset": _extra(row, file, "dataset"),
        "registry_dataset": registry,
        "environment": env, "environment_name": env, "architecture": arch,
        "gpu_name": gpu_name if has_gpu else "none",
        "start_utc": row["end_utc"] - pd.Timedelta(seconds=duration), "duration_s": duration,
        **energy,
        "energy_kwh": energy["energy_j"] / J_PER_KWH,
        "emissions_g": energy["energy_j"] / J_PER_KWH * intensity,
        "carbon_intensity_g_per_kwh": intensity,
        "gpu_power_mean_w": gpu_power, "gpu_usage_mean": gpu_usage,
        "cpu_usage_mean_pct": row.get("cpu_utilization_percent", math.nan),
        "ram_used_mean_mb": row.get("ram_used_gb", math.nan) * units.MIB_PER_GIB,
        **_window(energy, duration, gpu_power, gpu_usage,
                  _extra(row, file, "energy_window") or TRACKER_WINDOW),
        "images_seen": images,
        "energy_per_image_j": energy["energy_j"] / images if images > 0 else math.nan,
        "time_per_image_s": duration / images if images > 0 else math.nan,
        "status": _extra(row, file, "status") or "ok",
        "return_code": pd.NA if math.isnan(return_code) else int(return_code),
        "ram_total_gb": row.get("ram_total_size", math.nan),
        "codecarbon_run_id": _text(raw, "run_id"),
        "source_file": str(file.path), "source_line": row["source_line"],
    }
    for name in ("batch_size", "gflops", "params", "train_size", "epochs", "accuracy", "f1",
                 "input_size_px", "training_gflops", "top5_accuracy", "learning_rate",
                 "source_run", "device"):
        record[name] = _extra(row, file, name)
    for col in ("pue", "gpu_count", "cpu_count"):
        record[col] = row.get(col, math.nan)
    for col in ("cpu_model", "country_iso_code", "region", "project_name", "experiment_id",
                "experiment_name", "tracking_mode", "codecarbon_version"):
        record[col] = _text(raw, col)
    return record


def _drop_duplicates(records: list[dict], skips: list[tuple]) -> list[dict]:
    """One record per CodeCarbon run_id, in one file or across files: the latest end of
    tracking (on a tie, the one read last); the others are recorded as skipped."""
    best: dict[object, int] = {}
    for i, rec in enumerate(records):
        key = rec["codecarbon_run_id"]
        if key is None:
            best[("row", i)] = i
            continue
        prev = best.get(key)
        if prev is None or _end(records[i]) >= _end(records[prev]):
            best[key] = i
    kept = set(best.values())
    for i, rec in enumerate(records):
        if i not in kept:
            winner = records[best[rec["codecarbon_run_id"]]]
            where = ("line" if winner["source_file"] == rec["source_file"]
                     else f"{winner['source_file']}, line")
            skips.append((rec["source_file"], rec["source_line"], "run_id",
                          f"duplicate run_id {rec['codecarbon_run_id']!r}: superseded by "
                          f"{where} {winner['source_line']} (written later)"))
    return [rec for i, rec in enumerate(records) if i in kept]


def _end(record: dict) -> pd.Timestamp:
    return record["start_utc"] + pd.Timedelta(seconds=record["duration_s"])


def _column_report(files: list[_File]) -> pd.DataFrame:
    """What became of every column of the files (see :class:`CodeCarbonRuns`)."""
    rows: dict[tuple[str, str, str], int] = {}
    for f in files:
        by_column = {col: name for name, col in f.extras.items() if col}
        for col in f.header:
            if col in by_column:
                name = by_column[col]
                used, note = name, f.scales.get(name, (1.0, ""))[1]
                if name == "dataset":
                    used = "dataset, image_dataset (kept as in the file)"
            elif col in USED_COLUMNS or col in OPTIONAL_NUMERIC:
                used, note = USED_COLUMNS.get(col) or OPTIONAL_NUMERIC[col], ""
            else:
                used = "ignored"
                note = IGNORED_REASONS.get(col, "not read by the pipeline")
            key = (col, used, note)
            rows[key] = rows.get(key, 0) + 1
    return pd.DataFrame([(*k, n) for k, n in rows.items()], columns=COLUMN_REPORT_COLUMNS)


def _number_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """``run`` (by start time within (environment, architecture)) and ``run_id``."""
    if runs.empty:
        return runs.assign(run=pd.Series(dtype="int64"), run_id=pd.Series(dtype="str"))
    runs = runs.sort_values(["environment", "architecture", "start_utc"], kind="stable")
    runs["run"] = runs.groupby(["environment", "architecture"]).cumcount().astype("int64")
    runs["run_id"] = (runs["environment"] + "/" + runs["architecture"] + "/"
                      + runs["run"].map("{:03d}".format))
    return runs


def read_codecarbon(paths: str | Path | list[str | Path], dataset: str,
                    environment: str | None = None, tz: str = "UTC",
                    strict: bool = True) -> CodeCarbonRuns:
    """Read one or more CodeCarbon ``emissions.csv`` files into the per-run schema.

    Args:
        paths: file or files.
        dataset: the registry name of the dataset (column ``registry_dataset``; the files'
            own ``dataset`` column is kept).
        environment: environment label when the file has no ``environment`` column (default:
            the hardware, see the module docstring).
        tz: timezone of naive ``timestamp`` values (CodeCarbon writes local time without an
            offset on most versions).
        strict: raise :class:`InputFormatError` for a corrupt row or file (the default);
            ``False``: record it as skipped (a row: that run; a file: all its runs) and read
            the rest.

    Returns ``CodeCarbonRuns`` (runs, skipped rows, column report). See the module docstring
    for the mapping and for how malformed input is handled.
    """
    paths = [paths] if isinstance(paths, str | Path) else paths
    files, skips = [], []
    named: dict[Path, Path] = {}
    for p in paths:  # a file named twice (or through a link) is read once
        named.setdefault(Path(p).resolve(), Path(p))
    for path in named.values():
        try:
            files.append(_read_file(path, tz, strict))
        except InputFormatError as err:
            if strict:
                raise
            skips.append((str(err.path), err.line, err.column, f"file left out: {err.reason}"))
    skips += [s for f in files for s in f.skips]
    records = _drop_duplicates(
        [_run_record(r, f, dataset, environment) for f in files for r in f.rows], skips)
    cols = [*RUN_COLUMNS, *EXTRA_OUTPUT]
    runs = pd.DataFrame(records, columns=[c for c in cols if c not in {"run_id", "run"}])
    runs = _number_runs(runs)
    runs["return_code"] = runs["return_code"].astype("Int64")
    runs["start_utc"] = pd.to_datetime(runs["start_utc"], utc=True)
    skipped = pd.DataFrame([s if len(s) == len(SKIPPED_COLUMNS) else (*s, 1) for s in skips],
                           columns=SKIPPED_COLUMNS)
    return CodeCarbonRuns(runs[cols].reset_index(drop=True), skipped, _column_report(files))


def merge_outputs(result: CodeCarbonRuns) -> MergeOutputs:
    """The merge stage's outputs of CodeCarbon runs: no samples and no events; the run index
    holds each run's per-run values (energies, window, model metrics), which the clean stage
    keeps; skips in the interim layout; zero sample counts; the column report."""
    skipped = result.skipped
    skips = pd.DataFrame({"run_id": pd.Series([None] * len(skipped), dtype=object),
                          "file": skipped["source_file"], "line": skipped["line"],
                          "column": skipped["column"], "reason": skipped["reason"],
                          "rows": skipped["rows"]}, columns=SKIP_COLUMNS)
    counts = pd.DataFrame({"run_id": result.runs["run_id"], "gpu_samples": 0, "matched": 0,
                           "unmatched": 0}).astype({c: "int64" for c in
                                                    ("gpu_samples", "matched", "unmatched")})
    return MergeOutputs(empty_profiling(), result.runs.copy(), empty_events(), skips, counts,
                        result.columns)
