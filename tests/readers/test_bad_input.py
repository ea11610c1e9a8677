"""Hostile input against the readers (docs/raw-format.md#plausibility-bounds).

Each named case mutates a copy of small real files in ``tmp_path`` (published SEAA 2023 logs,
two run folders of ``data_inputs/gpu-h100/raw``, rows of the published EE-Training CodeCarbon
file, and a tidy samples CSV made from those run folders) and asserts the promise itself:

* the reader ends in :class:`InputFormatError` naming the broken file (and a line where one
  exists), or
* it records a skip naming that file, with a reason (and a line where one exists), or reads the
  file as it is (``clean``: a byte-order mark, CRLF, a blank line);
* and the energies of the runs (rows) the mutation did not touch are unchanged, while the
  touched run's is unmeasured (NaN) or within the case's tolerance of the original, never a
  silently wrong number.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers.core import datasets, energy
from helpers.core.errors import InputFormatError
from helpers.readers import codecarbon, detect, project_merge, samples_csv, seaa2023

ROOT = Path(__file__).resolve().parents[2]
H100_RAW = ROOT / "data_inputs" / "gpu-h100" / "raw" / "h100"

# -- the small real files ---------------------------------------------------------------------
#: SEAA 2023 runs copied: (environment, architecture, stamp). A (418 lines, raw nvidia-smi
#: header) is the one mutated; B is the control.
SEAA_RUNS = {"A": ("local-v2", "mobilenet_v2", "20230221T090112"),
             "B": ("local-v2", "mobilenet_v2", "20230221T093210")}
SEAA_A = "local-v2/mobilenet_v2/000"
#: Project run folders copied: A is mutated, B is the control.
PROJECT_RUNS = {"A": "resnet50/000", "B": "vgg16/000"}
#: Runs made into the tidy samples CSV, as jobs a (mutated) and b: ones without two samples
#: in one millisecond (which a ms-stamped log cannot tell apart: a recorded repeat).
TIDY_RUNS = {"a": "efficientnet_b0/000", "b": "vgg16/000"}
PROJECT_A = "h100/resnet50/000"
#: Rows of the EE-Training file copied (1-based data rows); the third is mutated.
EE_ROWS = 6
CC_A_LINE = 4
TIDY_MAPPING = """kind: samples
environment: lab
architecture: net
on_bad_row: {on_bad}
columns: {{timestamp: time, power: power_W, run_id: job, utilisation: util_pct,
          energy_counter: energy_J, power_limit: limit_W}}
events:
  file: events.csv
  columns: {{run_id: job, timestamp: time, event: name, epoch: epoch}}
"""


def _ee_training() -> Path:
    return datasets.input_dir("ee-training") / "training_energy.csv"


def _tidy(dest: Path) -> None:
    """A tidy samples CSV (and events file) of two project runs (jobs a and b)."""
    samples, events = [], []
    for job, run in TIDY_RUNS.items():
        s = pd.read_csv(H100_RAW / run / "samples.csv")
        e = pd.read_csv(H100_RAW / run / "events.csv")
        iso = pd.to_datetime(s["timestamp_ms"], unit="ms").dt.strftime("%Y-%m-%dT%H:%M:%S.%f")
        samples.append(pd.DataFrame({"job": job, "time": iso.str[:-3],
                                     "power_W": s["gpu_power_w"], "util_pct": s["gpu_usage_pct"],
                                     "energy_J": s["gpu_energy_counter_j"],
                                     "limit_W": s["gpu_power_limit_w"]}))
        ev_iso = pd.to_datetime(e["timestamp_ms"], unit="ms").dt.strftime("%Y-%m-%dT%H:%M:%S.%f")
        events.append(pd.DataFrame({"job": job, "time": ev_iso.str[:-3], "name": e["event"],
                                    "epoch": e["epoch"].astype("Int64")}))
    dest.mkdir(parents=True)
    pd.concat(samples).to_csv(dest / "power.csv", index=False)
    pd.concat(events).to_csv(dest / "events.csv", index=False)
    (dest / "dl-energy-mapping.yaml").write_text(TIDY_MAPPING.format(on_bad="skip"))


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory, seaa2023_root: Path) -> dict[str, Path]:
    """Untouched copies of the small real files, one folder per reader."""
    base = tmp_path_factory.mktemp("pristine")
    for env, arch, stamp in SEAA_RUNS.values():
        folder = base / "seaa2023" / "raw" / env / arch
        folder.mkdir(parents=True, exist_ok=True)
        for prefix in ("gpu-power", "cpu-mem-usage"):
            name = f"{prefix}-{stamp}.csv"
            shutil.copyfile(seaa2023_root / "raw" / env / arch / name, folder / name)
    for run in PROJECT_RUNS.values():
        shutil.copytree(H100_RAW / run, base / "project" / "raw" / "h100" / run)
    cc = base / "codecarbon"
    cc.mkdir()
    lines = _ee_training().read_bytes().split(b"\n")
    (cc / "emissions.csv").write_bytes(b"\n".join(lines[:EE_ROWS + 1]) + b"\n")
    _tidy(base / "samples")
    return {kind: base / kind for kind in ("seaa2023", "project", "codecarbon", "samples")}


# -- reading and the energies of each run ------------------------------------------------------
@dataclass
class Read:
    """What a reader gave: energy (J) per run, and the skips (file, line, column, reason)."""

    energies: dict[str, float]
    skips: pd.DataFrame


def _gpu_energy(t_s: np.ndarray, power_w: np.ndarray, counter_j: np.ndarray) -> float:
    return energy.gpu_energy_j([(t_s, power_w, counter_j)], "none")[0]


def _per_run(profiling: pd.DataFrame, key: str = "run_id") -> dict[str, float]:
    out = {}
    for run, g in profiling.groupby(key):
        counter = (g["gpu_energy_counter_j"].to_numpy(float) if "gpu_energy_counter_j" in g
                   else np.full(len(g), np.nan))
        out[str(run)] = _gpu_energy(g["timestamp"].to_numpy(float) / 1000.0,
                                    g["gpu_power_draw"].to_numpy(float), counter)
    return out


def read_seaa2023(root: Path, strict: bool = False, workers: int = 1) -> Read:
    logs = seaa2023.read_logs(root / "raw", strict=strict, workers=workers)
    out = {}
    for run in logs.runs["run_id"]:
        g = logs.gpu[logs.gpu["run_id"] == run]
        t = g["time_utc"].astype("int64").to_numpy() / 1000.0
        out[run] = energy.trapezoid_energy_j(t, g["gpu_power_draw"].to_numpy(float))
    return Read(out, logs.skips)


def read_project(root: Path, strict: bool = False) -> Read:
    merged = project_merge.merge_project(root / "raw", "bad-input", strict=strict)
    return Read(_per_run(merged.profiling), merged.skips)


def read_codecarbon(root: Path, strict: bool = True, tz: str = "UTC") -> Read:
    files = sorted(root.glob("*.csv")) + sorted(root.glob("*/*.csv"))
    res = codecarbon.read_codecarbon(files, "bad-input", tz=tz, strict=strict)
    energies = dict(zip(res.runs["codecarbon_run_id"].astype(str), res.runs["energy_j"],
                        strict=True))
    return Read(energies, res.skipped.rename(columns={"source_file": "file"}))


def read_samples(root: Path, strict: bool = False) -> Read:
    found = detect.detect(root)
    out = samples_csv.read_samples(list(found.files), found.mapping, found.mapping_file,
                                   "bad-input")
    source = dict(zip(out.run_index["run_id"], out.run_index["source_run_id"], strict=True))
    energies = {source[run]: e for run, e in _per_run(out.profiling).items()}
    return Read(energies, out.skips)


READERS: dict[str, Callable[..., Read]] = {
    "seaa2023": read_seaa2023, "project": read_project, "codecarbon": read_codecarbon,
    "samples": read_samples}
#: The run each kind's mutations touch.
AFFECTED = {"seaa2023": SEAA_A, "project": PROJECT_A, "samples": "a"}


@pytest.fixture(scope="module")
def baseline(pristine: dict[str, Path]) -> dict[str, Read]:
    """What each reader gives on the untouched files (no skip but the published torn lines)."""
    return {kind: READERS[kind](path) for kind, path in pristine.items()}


# -- the cases ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """One hostile mutation. ``mutate(root)`` breaks the copy under ``root`` and returns the
    file (or folder) it broke. ``expect``: 'error' (InputFormatError), 'skip' (recorded skip)
    or 'clean' (read as is, nothing recorded). ``line``: the error or skip names a line.
    ``tolerance``: how far the touched run's energy may move (relative); NaN always passes.
    ``options``: keyword arguments of the reader (strict, workers)."""

    name: str
    kind: str
    mutate: Callable[[Path], Path]
    expect: str
    line: bool = True
    tolerance: float = 0.02
    options: tuple[tuple[str, object], ...] = ()
    touched: str | None = None


CASES: list[Case] = []


def case(kind: str, expect: str, **kw) -> Callable[[Callable[[Path], Path]], Callable]:
    """Register the decorated mutation as a named case."""
    def register(fn: Callable[[Path], Path]) -> Callable[[Path], Path]:
        opts = tuple(sorted(kw.pop("options", {}).items()))
        CASES.append(Case(f"{kind}:{fn.__name__}", kind, fn, expect, options=opts, **kw))
        return fn
    return register


def variants(kind: str, expect: str, values: dict[str, object], **kw
             ) -> Callable[[Callable[[Path, object], Path]], Callable]:
    """Register one case per value of a parametrised mutation ``fn(root, value)``."""
    def register(fn: Callable[[Path, object], Path]) -> Callable:
        for label, value in values.items():
            def mutate(root: Path, value: object = value) -> Path:
                return fn(root, value)
            opts = tuple(sorted(kw.get("options", {}).items()))
            rest = {k: v for k, v in kw.items() if k != "options"}
            CASES.append(Case(f"{kind}:{fn.__name__}[{label}]", kind, mutate, expect,
                              options=opts, **rest))
        return fn
    return register


# -- editing helpers ---------------------------------------------------------------------------
def lines_of(path: Path) -> list[bytes]:
    """The lines of a file without their newlines (a final newline gives a last '')."""
    return path.read_bytes().split(b"\n")


def write_lines(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines))
    return path


def edit(path: Path, fn: Callable[[list[bytes]], None]) -> Path:
    """Apply ``fn`` to the file's lines in place and write them back."""
    lines = lines_of(path)
    fn(lines)
    return write_lines(path, lines)


def set_cell(path: Path, line: int, field: int, value: str, sep: bytes = b",") -> Path:
    """Replace field ``field`` (0-based) of 1-based ``line``; keeps a ", " separator's space."""
    def change(lines: list[bytes]) -> None:
        cells = lines[line - 1].split(sep)
        lead = b" " if cells[field].startswith(b" ") else b""
        cells[field] = lead + value.encode("latin-1")
        lines[line - 1] = sep.join(cells)
    return edit(path, change)


def seaa(root: Path, run: str = "A", prefix: str = "gpu-power") -> Path:
    env, arch, stamp = SEAA_RUNS[run]
    return root / "raw" / env / arch / f"{prefix}-{stamp}.csv"


def run_file(root: Path, name: str, run: str = "A") -> Path:
    return root / "raw" / "h100" / PROJECT_RUNS[run] / name


def col(path: Path, name: str) -> int:
    header = next(csv.reader(io.StringIO(lines_of(path)[0].decode())))
    return [h.strip() for h in header].index(name)


#: seaa2023 GPU log (raw nvidia-smi variant) field positions.
STAMP, NAME, USAGE, MEM_USAGE, TOTAL, USED, POWER, LIMIT, TEMP = range(9)
MID = 200  # a line in the middle of the mutated GPU log (418 lines)
LAST_SEAA = 418


# ============================================================================================
# SEAA 2023 published logs
# ============================================================================================
@variants("seaa2023", "skip", {
    "2099_last_line": (LAST_SEAA, "2099/02/21 09:08:09.000"),
    "2099_mid_file": (MID, "2099/02/21 09:04:30.000"),
    "1999_first_line": (2, "1999/02/21 09:01:12.174"),
    "2300_mid_file": (MID, "2300/02/21 09:04:30.000"),
    "9999_mid_file": (MID, "9999/12/31 23:59:59.000"),
    "0001_mid_file": (MID, "0001/01/01 00:00:00.000"),
    "month_13": (MID, "2023/13/21 09:04:30.000"),
    "feb_29_2023": (MID, "2023/02/29 09:04:30.000"),
    "hour_25": (MID, "2023/02/21 25:04:30.000"),
    "empty_stamp": (MID, ""),
    "text_stamp": (MID, "yesterday"),
    "epoch_seconds": (MID, "1676970270"),
    "month_first_date": (MID, "02/21/2023 09:04:30.000"),
    "one_hour_back": (MID, "2023/02/21 08:04:30.000"),
    "one_day_ahead_mid": (MID, "2023/02/22 09:04:30.000"),
    "two_hours_ahead_last": (LAST_SEAA, "2023/02/21 11:08:09.000"),
    "two_hours_back_first": (2, "2023/02/21 07:01:12.174"),
    "dst_gap_local_time": (MID, "2023/03/26 02:30:00.000"),
})
def gpu_stamp(root: Path, where: tuple[int, str]) -> Path:
    return set_cell(seaa(root), where[0], STAMP, where[1])


@variants("seaa2023", "skip", {
    "negative": "-50.00 W", "one_megawatt": "1000000.00 W", "inf": "inf W", "nan": "nan W",
    "text": "lots W", "three_times_limit": "720.00 W", "kilowatt_unit": "0.05 kW",
    "comma_decimal": "50,17 W", "hex": "0x20 W", "empty": "",
})
def gpu_power(root: Path, value: str) -> Path:
    return set_cell(seaa(root), MID, POWER, value)


@variants("seaa2023", "skip", {
    "usage_150": (USAGE, "150 %"), "usage_negative": (USAGE, "-5 %"),
    "memory_usage_150": (MEM_USAGE, "150 %"), "limit_1e6": (LIMIT, "1000000.00 W"),
    "limit_negative": (LIMIT, "-240.00 W"), "temperature_500": (TEMP, "500"),
    "memory_used_negative": (USED, "-7348 MiB"), "total_memory_inf": (TOTAL, "inf MiB"),
})
def gpu_value(root: Path, where: tuple[int, str]) -> Path:
    return set_cell(seaa(root), MID, where[0], where[1])


@variants("seaa2023", "skip", {
    "in_power": (POWER, b"\xff"), "in_name": (NAME, b"\xe9"), "in_stamp": (STAMP, b"\x80"),
    "truncated_utf8": (TEMP, b"\xc3"),
})
def gpu_non_utf8(root: Path, where: tuple[int, bytes]) -> Path:
    def change(lines: list[bytes]) -> None:
        cells = lines[MID - 1].split(b",")
        cells[where[0]] += where[1]
        lines[MID - 1] = b",".join(cells)
    return edit(seaa(root), change)


def with_bom(path: Path) -> Path:
    """``path`` with a UTF-8 byte-order mark put in front."""
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    return path


def with_crlf(path: Path) -> Path:
    """``path`` with Windows line ends."""
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    return path

@case("seaa2023", "skip")
def gpu_non_utf8_in_header(root: Path) -> Path:
    return edit(seaa(root), lambda lines: lines.__setitem__(0, lines[0] + b"\xff"))


@case("seaa2023", "clean")
def gpu_byte_order_mark(root: Path) -> Path:
    return with_bom(seaa(root))


@case("seaa2023", "clean")
def gpu_crlf_line_ends(root: Path) -> Path:
    return with_crlf(seaa(root))


@case("seaa2023", "clean")
def gpu_blank_line(root: Path) -> Path:
    return edit(seaa(root), lambda lines: lines.insert(MID, b""))


@case("seaa2023", "skip")
def gpu_stray_carriage_return(root: Path) -> Path:
    return edit(seaa(root), lambda lines: lines.__setitem__(
        MID - 1, lines[MID - 1].replace(b", ", b",\r", 1)))


@case("seaa2023", "skip")
def gpu_nul_byte(root: Path) -> Path:
    return set_cell(seaa(root), MID, POWER, "23.\x0019 W")


@case("seaa2023", "clean")  # the logs never quote: a '"' is text of its field
def gpu_stray_quote(root: Path) -> Path:
    return set_cell(seaa(root), MID, NAME, '"NVIDIA GeForce RTX 3070')


@case("seaa2023", "skip")
def gpu_too_few_fields(root: Path) -> Path:
    return edit(seaa(root), lambda lines: lines.__setitem__(
        MID - 1, b",".join(lines[MID - 1].split(b",")[:5])))


@case("seaa2023", "skip")
def gpu_too_many_fields(root: Path) -> Path:
    return edit(seaa(root), lambda lines: lines.__setitem__(MID - 1, lines[MID - 1] + b", 7"))


@case("seaa2023", "skip")
def gpu_torn_last_line(root: Path) -> Path:
    path = seaa(root)
    path.write_bytes(path.read_bytes()[:-30])
    return path


@case("seaa2023", "skip")
def gpu_number_cut_on_last_line(root: Path) -> Path:
    path = seaa(root)
    path.write_bytes(path.read_bytes()[:-2])  # "..., 51\n" -> "..., 5": no newline left
    return path


@case("seaa2023", "skip")
def gpu_repeated_line(root: Path) -> Path:
    return edit(seaa(root), lambda lines: lines.insert(MID, lines[MID - 1]))


@case("seaa2023", "skip")
def gpu_repeated_stamp_other_value(root: Path) -> Path:
    def change(lines: list[bytes]) -> None:
        cells = lines[MID - 1].split(b",")
        cells[POWER] = b" 200.00 W"
        lines.insert(MID, b",".join(cells))
    return edit(seaa(root), change)


@case("seaa2023", "skip")
def gpu_lines_swapped(root: Path) -> Path:
    def change(lines: list[bytes]) -> None:
        lines[MID - 1], lines[MID] = lines[MID], lines[MID - 1]
    return edit(seaa(root), change)


@case("seaa2023", "skip", tolerance=np.inf)
def gpu_every_line_twice(root: Path) -> Path:
    def change(lines: list[bytes]) -> None:
        body = [ln for ln in lines[1:] if ln]
        lines[1:] = [x for ln in body for x in (ln, ln)] + [b""]
    return edit(seaa(root), change)


@case("seaa2023", "skip", tolerance=np.inf)
def gpu_lines_reversed(root: Path) -> Path:
    def change(lines: list[bytes]) -> None:
        lines[1:] = [ln for ln in lines[1:] if ln][::-1] + [b""]
    return edit(seaa(root), change)


@variants("seaa2023", "skip", {
    "empty": b"", "blank_lines": b"\n \n", "header_only": None, "unknown_header": b"a,b\n1,2\n",
    "binary": b"\x00\x01\xff\xfe\n\x00\n", "no_header": b"2023/02/21 09:01:12.174, x\n",
}, line=False)
def gpu_file(root: Path, content: bytes | None) -> Path:
    path = seaa(root)
    path.write_bytes(lines_of(path)[0] + b"\n" if content is None else content)
    return path


@case("seaa2023", "skip", line=False)
def gpu_file_is_a_folder(root: Path) -> Path:
    path = seaa(root)
    path.unlink()
    path.mkdir()
    return path


@case("seaa2023", "skip", line=False)
def gpu_file_is_a_dangling_link(root: Path) -> Path:
    path = seaa(root)
    path.unlink()
    path.symlink_to(path.parent / "nowhere.csv")
    return path


@case("seaa2023", "skip", line=False)
def gpu_file_missing(root: Path) -> Path:
    path = seaa(root)
    path.unlink()
    return path


@variants("seaa2023", "skip", {
    "usage_150": (1, "150.0"), "usage_negative": (1, "-3.0"), "memory_negative": (2, "-1.0"),
    "memory_inf": (2, "inf"), "temperature_minus_100": (3, "-100"), "stamp_2099": (0,
                                                                             "2099-02-21T09:03:00"),
    "stamp_text": (0, "soon"), "value_text": (1, "busy"),
})
def cpu_value(root: Path, where: tuple[int, str]) -> Path:
    return set_cell(seaa(root, prefix="cpu-mem-usage"), MID, where[0], where[1])


@case("seaa2023", "skip")
def cpu_non_utf8(root: Path) -> Path:
    return set_cell(seaa(root, prefix="cpu-mem-usage"), MID, 1, "5.\xff")


@case("seaa2023", "skip", line=False)
def cpu_file_is_a_folder(root: Path) -> Path:
    path = seaa(root, prefix="cpu-mem-usage")
    path.unlink()
    path.mkdir()
    return path


@case("seaa2023", "skip")
def cpu_torn_last_line(root: Path) -> Path:
    path = seaa(root, prefix="cpu-mem-usage")
    path.write_bytes(path.read_bytes()[:-10])
    return path


@case("seaa2023", "error", options={"strict": True})
def strict_gpu_non_utf8(root: Path) -> Path:
    return set_cell(seaa(root), MID, POWER, "23.\xff W")


@case("seaa2023", "error", options={"strict": True, "workers": 2})
def strict_gpu_2099_in_a_worker(root: Path) -> Path:
    return set_cell(seaa(root), MID, STAMP, "2099/02/21 09:04:30.000")


@case("seaa2023", "error", line=False, options={"strict": True, "workers": 2})
def strict_gpu_folder_in_a_worker(root: Path) -> Path:
    path = seaa(root)
    path.unlink()
    path.mkdir()
    return path


@case("seaa2023", "skip", options={"workers": 2})
def gpu_non_utf8_with_workers(root: Path) -> Path:
    return set_cell(seaa(root), MID, POWER, "23.\xff W")


# ============================================================================================
# Project run folders
# ============================================================================================
S_TS, S_MONO, S_INDEX = 0, 1, 2
S_COLS = ("timestamp_ms,monotonic_s,gpu_index,gpu_name,gpu_power_w,gpu_power_source,"
          "gpu_power_instant_w,gpu_power_avg_w,gpu_energy_counter_j,gpu_usage_pct,"
          "gpu_memory_usage_pct,gpu_memory_used_mb,gpu_memory_total_mb,gpu_temperature_c,"
          "gpu_sm_clock_mhz,gpu_power_limit_w,cpu_usage_pct,process_cpu_pct,process_rss_mb,"
          "system_ram_used_mb,cpu_energy_counter_j,cpu_power_estimate_w,gap_reason").split(",")
S_MID = 150


def _s(name: str) -> int:
    return S_COLS.index(name)


def counter_lines(path: Path) -> list[int]:
    """1-based lines of samples.csv with an energy-counter reading."""
    idx = _s("gpu_energy_counter_j")
    return [i for i, ln in enumerate(lines_of(path)[1:], start=2)
            if ln and ln.split(b",")[idx]]


def shift_counter(root: Path, first: int, by: float, only: int | None = None) -> Path:
    """Add ``by`` J to the counter readings from the ``first``-th on (``only``: that many)."""
    path = run_file(root, "samples.csv")
    idx = _s("gpu_energy_counter_j")
    targets = counter_lines(path)[first:][:only]

    def change(lines: list[bytes]) -> None:
        for line in targets:
            cells = lines[line - 1].split(b",")
            cells[idx] = repr(float(cells[idx]) + by).encode()
            lines[line - 1] = b",".join(cells)
    return edit(path, change)


@variants("project", "skip", {
    "2099": "4077955200000", "2300": "10413792000000", "1999": "915148800000",
    "plus_one_hour": None,
})
def samples_stamp(root: Path, value: str | None) -> Path:
    path = run_file(root, "samples.csv")
    if value is None:
        value = str(int(lines_of(path)[S_MID - 1].split(b",")[S_TS]) + 3_600_000)
    return set_cell(path, S_MID, S_TS, value)


@case("project", "skip")
def samples_stamps_in_seconds(root: Path) -> Path:
    def change(lines: list[bytes]) -> None:
        for i in range(1, len(lines)):
            if lines[i]:
                cells = lines[i].split(b",")
                cells[S_TS] = str(int(cells[S_TS]) // 1000).encode()
                lines[i] = b",".join(cells)
    return edit(run_file(root, "samples.csv"), change)


@case("project", "skip", tolerance=0.05)  # the run loses its last sample
def samples_last_row_two_hours_later(root: Path) -> Path:
    def change(lines: list[bytes]) -> None:
        cells = lines[-2].split(b",")
        cells[S_TS] = str(int(cells[S_TS]) + 7_200_000).encode()
        cells[S_MONO] = f"{float(cells[S_MONO]) + 7200:.6f}".encode()
        lines[-2] = b",".join(cells)
    return edit(run_file(root, "samples.csv"), change)


@case("project", "skip")
def samples_rows_swapped(root: Path) -> Path:
    def change(lines: list[bytes]) -> None:
        lines[S_MID - 1], lines[S_MID + 5] = lines[S_MID + 5], lines[S_MID - 1]
    return edit(run_file(root, "samples.csv"), change)


@case("project", "skip")
def samples_repeated_row(root: Path) -> Path:
    return edit(run_file(root, "samples.csv"), lambda lines: lines.insert(S_MID,
                                                                          lines[S_MID - 1]))


@case("project", "skip")
def samples_repeated_instant_other_power(root: Path) -> Path:
    def change(lines: list[bytes]) -> None:
        cells = lines[S_MID - 1].split(b",")
        cells[_s("gpu_power_w")] = b"650.5"
        lines.insert(S_MID, b",".join(cells))
    return edit(run_file(root, "samples.csv"), change)


@case("project", "skip", tolerance=0.25)
def counter_reset(root: Path) -> Path:
    return shift_counter(root, 10, -60000.0)


@case("project", "skip", tolerance=0.25)
def counter_driver_reload_to_zero(root: Path) -> Path:
    path = run_file(root, "samples.csv")
    first = float(lines_of(path)[counter_lines(path)[10] - 1].split(b",")[
        _s("gpu_energy_counter_j")])
    return shift_counter(root, 10, 5.0 - first)


@case("project", "skip", tolerance=0.25)
def counter_wraps_32_bit_mj(root: Path) -> Path:
    """A 32-bit millijoule counter passing its end between two readings: shifted so that it
    wraps 100 J after the tenth reading, then taken modulo its range."""
    path = run_file(root, "samples.csv")
    idx, wrap = _s("gpu_energy_counter_j"), 2.0**32 / 1000.0
    tenth = float(lines_of(path)[counter_lines(path)[10] - 1].split(b",")[idx])

    def change(lines: list[bytes]) -> None:
        for line in counter_lines(path):
            cells = lines[line - 1].split(b",")
            cells[idx] = repr((float(cells[idx]) + wrap - tenth - 100.0) % wrap).encode()
            lines[line - 1] = b",".join(cells)
    return edit(path, change)


@case("project", "skip", tolerance=0.05)
def counter_negative_from_the_middle_on(root: Path) -> Path:
    return shift_counter(root, 10, -1e7)


@variants("project", "skip", {"high": 5000.0, "low": -5000.0, "huge": 1e12})
def counter_glitch(root: Path, by: float) -> Path:
    return shift_counter(root, 10, by, only=1)


@case("project", "skip")
def counter_two_readings_glitch_high(root: Path) -> Path:
    return shift_counter(root, 10, 3000.0, only=2)


@variants("project", "skip", {
    "negative": ("gpu_energy_counter_j", "-5.0"), "counter_inf": ("gpu_energy_counter_j",
                                                                   "inf"),
    "power_negative": ("gpu_power_w", "-120.0"), "power_1e6": ("gpu_power_w", "1000000.0"),
    "power_inf": ("gpu_power_w", "inf"), "power_minus_inf": ("gpu_power_w", "-inf"),
    "instant_1e6": ("gpu_power_instant_w", "1e6"), "usage_150": ("gpu_usage_pct", "150"),
    "memory_usage_negative": ("gpu_memory_usage_pct", "-1"),
    "cpu_usage_250": ("cpu_usage_pct", "250"), "process_cpu_1e6": ("process_cpu_pct", "1e6"),
    "rss_negative": ("process_rss_mb", "-5"), "temperature_1000": ("gpu_temperature_c", "1000"),
    "limit_zero": ("gpu_power_limit_w", "0.5"), "limit_1e9": ("gpu_power_limit_w", "1e9"),
    "cpu_estimate_1e5": ("cpu_power_estimate_w", "1e5"),
})
def samples_value(root: Path, where: tuple[str, str]) -> Path:
    path = run_file(root, "samples.csv")
    line = S_MID if where[0] != "gpu_energy_counter_j" else counter_lines(path)[10]
    return set_cell(path, line, _s(where[0]), where[1])


# A run folder the reader rejects is left out with a recorded skip (the merge is not strict).
@variants("project", "skip", {
    "too_few_fields": lambda ln: b",".join(ln.split(b",")[:-1]),
    "too_many_fields": lambda ln: ln + b",x",
    "non_utf8": lambda ln: ln.replace(b"NVIDIA", b"NVID\xffIA"),
    "stray_carriage_return": lambda ln: ln.replace(b",", b"\r", 1),
    "quoted_newline": lambda ln: ln.replace(b"NVIDIA H100 80GB HBM3", b'"NVIDIA\nH100"', 1),
})
def samples_row(root: Path, fn: Callable[[bytes], bytes]) -> Path:
    return edit(run_file(root, "samples.csv"),
                lambda lines: lines.__setitem__(S_MID - 1, fn(lines[S_MID - 1])))


@variants("project", "skip", {
    "non_numeric": ("gpu_power_w", "312.5 W"), "fraction_in_gpu_index": ("gpu_index", "0.5"),
    "huge_integer_stamp": ("timestamp_ms", "99999999999999999999"),
    "fraction_in_stamp": ("timestamp_ms", "1795385470000.5"),
    "missing_stamp": ("timestamp_ms", ""), "missing_monotonic": ("monotonic_s", ""),
    "monotonic_inf": ("monotonic_s", "inf"), "monotonic_text": ("monotonic_s", "soon"),
})
def samples_cell_rejected(root: Path, where: tuple[str, str]) -> Path:
    return set_cell(run_file(root, "samples.csv"), S_MID, _s(where[0]), where[1])


@case("project", "error", options={"strict": True})
def strict_samples_too_few_fields(root: Path) -> Path:
    return samples_row(root, lambda ln: b",".join(ln.split(b",")[:-1]))


@case("project", "error", options={"strict": True})
def strict_samples_non_numeric(root: Path) -> Path:
    return set_cell(run_file(root, "samples.csv"), S_MID, _s("gpu_power_w"), "many watts")


@case("project", "skip")
def samples_blank_line(root: Path) -> Path:
    return edit(run_file(root, "samples.csv"), lambda lines: lines.insert(S_MID, b""))


@case("project", "clean")
def samples_byte_order_mark(root: Path) -> Path:
    return with_bom(run_file(root, "samples.csv"))


@case("project", "clean")
def samples_crlf_line_ends(root: Path) -> Path:
    return with_crlf(run_file(root, "samples.csv"))


@case("project", "skip", tolerance=0.05)  # the run loses its last sample
def samples_torn_last_line(root: Path) -> Path:
    path = run_file(root, "samples.csv")
    path.write_bytes(path.read_bytes()[:-40])
    return path


@variants("project", "skip", {
    "samples_folder": "samples.csv", "events_folder": "events.csv",
    "metadata_folder": "metadata.json",
}, line=False)
def file_is_a_folder(root: Path, name: str) -> Path:
    path = run_file(root, name)
    path.unlink()
    path.mkdir()
    return path


@variants("project", "skip", {
    "samples_empty": ("samples.csv", b""), "events_empty": ("events.csv", b""),
    "metadata_empty": ("metadata.json", b""),
    "samples_unknown_header": ("samples.csv", b"time,power\n1,2\n"),
    "metadata_not_json": ("metadata.json", b"{oops\n"),
    "metadata_list": ("metadata.json", b"[1, 2]\n"),
    "metadata_version_2": ("metadata.json", b'{"raw_format_version": 2}\n'),
    "metadata_non_utf8": ("metadata.json", b'{"raw_format_version": 1, "x": "\xff"}\n'),
    "metadata_deep_nesting": ("metadata.json", b"[" * 100000 + b"]" * 100000),
}, line=False)
def file_content(root: Path, what: tuple[str, bytes]) -> Path:
    path = run_file(root, what[0])
    path.write_bytes(what[1])
    return path


@case("project", "skip", line=False)
def samples_file_missing(root: Path) -> Path:
    path = run_file(root, "samples.csv")
    path.unlink()
    return path


E_FIRST_EPOCH_START = 6  # line of epoch_start 0 in events.csv


def event_line(root: Path, event: str, epoch: str = "") -> int:
    for i, ln in enumerate(lines_of(run_file(root, "events.csv")), start=1):
        cells = ln.split(b",")
        if len(cells) > 3 and cells[2] == event.encode() and cells[3] == epoch.encode():
            return i
    raise LookupError(event)


@case("project", "skip")
def events_epoch_start_twice(root: Path) -> Path:
    line = event_line(root, "epoch_start", "0")
    return edit(run_file(root, "events.csv"), lambda lines: lines.insert(line, lines[line - 1]))


@case("project", "skip")
def events_epoch_start_again_later(root: Path) -> Path:
    start, end = event_line(root, "epoch_start", "0"), event_line(root, "eval_start", "0")

    def change(lines: list[bytes]) -> None:
        ts, mono, rest = lines[end - 1].split(b",", 2)
        cells = lines[start - 1].split(b",")
        lines.insert(end - 1, b",".join([str(int(ts) - 1).encode(),
                                         f"{float(mono) - 0.001:.6f}".encode(), *cells[2:]]))
    return edit(run_file(root, "events.csv"), change)


@variants("project", "skip", {"run_start": ("run_start", ""), "warmup": ("warmup_start", ""),
                              "eval_start": ("eval_start", "3")})
def events_repeated(root: Path, which: tuple[str, str]) -> Path:
    line = event_line(root, *which)
    return edit(run_file(root, "events.csv"), lambda lines: lines.insert(line, lines[line - 1]))


@variants("project", "skip", {"epoch_end": ("epoch_end", "3"),
                              "epoch_start": ("epoch_start", "4")})
def events_missing(root: Path, which: tuple[str, str]) -> Path:
    line = event_line(root, *which)
    return edit(run_file(root, "events.csv"), lambda lines: lines.pop(line - 1))


@case("project", "skip")
def events_epoch_ends_before_it_starts(root: Path) -> Path:
    start, end = event_line(root, "epoch_start", "2"), event_line(root, "epoch_end", "2")

    def change(lines: list[bytes]) -> None:
        a, b = lines[start - 1].split(b","), lines[end - 1].split(b",", 4)
        lines[start - 1] = b",".join([*a[:2], b"epoch_end", b"2", b"{}"])
        lines[end - 1] = b",".join([*b[:2], b"epoch_start", b"2", b"{}"])
    return edit(run_file(root, "events.csv"), change)


@variants("project", "skip", {
    "2099": lambda ts, mono: (b"4077955200000", mono),
    "clocks_disagree": lambda ts, mono: (str(int(ts) + 5000).encode(), mono),
})
def events_stamp(root: Path, fn: Callable[[bytes, bytes], tuple[bytes, bytes]]) -> Path:
    line = event_line(root, "eval_start", "3")

    def change(lines: list[bytes]) -> None:
        ts, mono, rest = lines[line - 1].split(b",", 2)
        lines[line - 1] = b",".join([*fn(ts, mono), rest])
    return edit(run_file(root, "events.csv"), change)


@variants("project", "skip", {
    "backwards": lambda lines, i: lines.insert(i + 3, lines[i - 1]),
    "info_not_json": lambda lines, i: lines.__setitem__(i - 1, lines[i - 1].rsplit(b",", 1)[0]
                                                        + b",[1 2]"),
    "non_utf8": lambda lines, i: lines.__setitem__(i - 1, lines[i - 1] + b"\xfe"),
    "too_few_fields": lambda lines, i: lines.__setitem__(i - 1, lines[i - 1].rsplit(b",", 1)[0]),
    "missing_event_name": lambda lines, i: lines.__setitem__(
        i - 1, b",".join([*lines[i - 1].split(b",")[:2], b"", *lines[i - 1].split(b",")[3:]])),
})
def events_row(root: Path, fn: Callable[[list[bytes], int], None]) -> Path:
    line = event_line(root, "epoch_start", "1")
    return edit(run_file(root, "events.csv"), lambda lines: fn(lines, line))


@variants("project", "skip", {
    "tdp_text": ("cpu_power", "tdp_w", "lots"), "tdp_1e9": ("cpu_power", "tdp_w", 1e9),
    "cores_negative": ("host", "logical_cores", -4), "cores_bool": ("host", "logical_cores",
                                                                    True),
    "accuracy_91": (None, "accuracy", 91.0), "f1_text": (None, "f1", "good"),
    "epochs_list": (None, "epochs_trained", [8]), "host_list": (None, "host", [1]),
    "dataset_dict": (None, "dataset", {"a": 1}), "status_number": (None, "status", 0),
    "batch_inf": (None, "batch_size", "Infinity"),
}, line=False, tolerance=0.0)
def metadata_value(root: Path, where: tuple[str | None, str, object]) -> Path:
    path = run_file(root, "metadata.json")
    meta = json.loads(path.read_text())
    parent = meta if where[0] is None else meta.setdefault(where[0], {})
    parent[where[1]] = where[2]
    text = json.dumps(meta).replace('"Infinity"', "Infinity")
    path.write_text(text)
    return path


# ============================================================================================
# CodeCarbon emissions.csv (rows of the published EE-Training file)
# ============================================================================================
def cc_file(root: Path) -> Path:
    return root / "emissions.csv"


def cc_set(root: Path, column: str, value: str, line: int = CC_A_LINE) -> Path:
    path = cc_file(root)
    return set_cell(path, line, col(path, column), value)


def cc_run_id(root: Path, line: int = CC_A_LINE) -> str:
    path = cc_file(root)
    return lines_of(path)[line - 1].split(b",")[col(path, "run_id")].decode()


@variants("codecarbon", "error", {
    "month_first": ("timestamp", "03/04/2025 11:39:38"),
    "text_date": ("timestamp", "April 17 2025"),
    "month_13": ("timestamp", "2025-13-17T11:39:38"),
    "duration_inf": ("duration", "inf"), "duration_negative": ("duration", "-5"),
    "duration_text": ("duration", "long"), "gpu_energy_negative": ("gpu_energy", "-0.1"),
    "gpu_energy_inf": ("gpu_energy", "Infinity"), "gpu_energy_text": ("gpu_energy", "0.1 kWh"),
    "cpu_energy_hex": ("cpu_energy", "0x1"), "epochs_text": ("epochs", "fifty"),
    "batch_negative": ("batch_size", "-128"),
}, touched="row")
def cc_cell_error(root: Path, where: tuple[str, str]) -> Path:
    return cc_set(root, *where)


@variants("codecarbon", "skip", {
    "year_2099": ("timestamp", "2099-04-17T11:39:38"),
    "year_9999": ("timestamp", "9999-04-17T11:39:38"),
    "year_1999": ("timestamp", "1999-04-17T11:39:38"),
    "duration_nan": ("duration", "nan"), "duration_zero": ("duration", "0"),
    "duration_empty": ("duration", ""), "duration_30_years": ("duration", "1e9"),
    "gpu_energy_1e6_kwh": ("gpu_energy", "1000000"), "cpu_energy_1e3_kwh": ("cpu_energy", "1000"),
    "energy_consumed_empty": ("energy_consumed", ""), "emissions_none": ("emissions", "None"),
}, touched="row")
def cc_cell_skip(root: Path, where: tuple[str, str]) -> Path:
    return cc_set(root, *where)


@case("codecarbon", "skip", tolerance=0.0)
def cc_accuracy_above_100_percent(root: Path) -> Path:
    return cc_set(root, "eval_top1", "150.0")


@case("codecarbon", "error", touched="row", options={"tz": "Europe/Madrid"})
def cc_local_time_that_does_not_exist(root: Path) -> Path:
    return cc_set(root, "timestamp", "2025-03-30T02:30:00")


@variants("codecarbon", "error", {
    "too_few_fields": lambda ln: ln.rsplit(b",", 3)[0],
    "too_many_fields": lambda ln: ln + b",1,2",
    "non_utf8": lambda ln: ln.replace(b"resnet18", b"resn\xe9t18", 1),
    "nul_byte": lambda ln: ln.replace(b"resnet18", b"resn\x00t18", 1),
}, touched="row")
def cc_row_error(root: Path, fn: Callable[[bytes], bytes]) -> Path:
    return edit(cc_file(root), lambda lines: lines.__setitem__(CC_A_LINE - 1,
                                                               fn(lines[CC_A_LINE - 1])))


@case("codecarbon", "skip", touched="row", options={"strict": False})
def cc_non_utf8_not_strict(root: Path) -> Path:
    return edit(cc_file(root), lambda lines: lines.__setitem__(
        CC_A_LINE - 1, lines[CC_A_LINE - 1].replace(b"resnet18", b"resn\xe9t18", 1)))


@case("codecarbon", "skip", touched="row", options={"strict": False})
def cc_text_energy_not_strict(root: Path) -> Path:
    return cc_set(root, "gpu_energy", "lots")


@case("codecarbon", "clean")
def cc_byte_order_mark(root: Path) -> Path:
    return with_bom(cc_file(root))


@case("codecarbon", "clean")
def cc_crlf_line_ends(root: Path) -> Path:
    return with_crlf(cc_file(root))


@case("codecarbon", "clean")
def cc_blank_line(root: Path) -> Path:
    return edit(cc_file(root), lambda lines: lines.insert(CC_A_LINE, b""))


@variants("codecarbon", "skip", {"in_last_field": 5, "mid_row": 300}, touched="last")
def cc_torn_last_line(root: Path, cut: int) -> Path:
    path = cc_file(root)
    path.write_bytes(path.read_bytes()[:-cut])
    return path


@case("codecarbon", "skip", touched="last")
def cc_train_size_cut_short(root: Path) -> Path:
    """The last column is a train size of 5376, cut to 53 by a torn write."""
    path = cc_file(root)
    lines = lines_of(path)
    lines[0] += b",train_size"
    for i in range(1, len(lines) - 1):
        lines[i] += b",5376"
    lines[-2] = lines[-2][:-2]
    path.write_bytes(b"\n".join(lines[:-1]))  # no newline after the cut
    return path


@case("codecarbon", "skip", tolerance=0.0)
def cc_run_id_twice_in_a_file(root: Path) -> Path:
    return edit(cc_file(root), lambda lines: lines.insert(CC_A_LINE, lines[CC_A_LINE - 1]))


@case("codecarbon", "skip", tolerance=0.0)
def cc_run_id_in_two_files(root: Path) -> Path:
    path = cc_file(root)
    lines = lines_of(path)
    other = root / "more" / "emissions.csv"
    other.parent.mkdir()
    other.write_bytes(lines[0] + b"\n" + lines[CC_A_LINE - 1] + b"\n")
    return path


@case("codecarbon", "clean")
def cc_same_file_named_twice(root: Path) -> Path:
    path = cc_file(root)
    (root / "more").mkdir()
    (root / "more" / "emissions.csv").symlink_to(path)
    return path


@variants("codecarbon", "error", {
    "empty": b"", "no_duration_column": None, "header_only_broken": b"timestamp,\xff\n",
}, line=True, touched="all")
def cc_file_content(root: Path, content: bytes | None) -> Path:
    path = cc_file(root)
    if content is None:
        lines = lines_of(path)
        lines[0] = lines[0].replace(b",duration,", b",dur,")
        content = b"\n".join(lines)
    path.write_bytes(content)
    return path


@case("codecarbon", "error", line=False, touched="all")
def cc_file_is_a_folder(root: Path) -> Path:
    path = cc_file(root)
    path.unlink()
    path.mkdir()
    return path


@case("codecarbon", "skip", line=False, touched="all", options={"strict": False})
def cc_file_is_a_folder_not_strict(root: Path) -> Path:
    return cc_file_is_a_folder(root)


# ============================================================================================
# Tidy samples CSV (another profiler's log, described by a mapping file)
# ============================================================================================
T_MID = 100  # a line of job a


def tidy(root: Path) -> Path:
    return root / "power.csv"


def tidy_set(root: Path, column: str, value: str, line: int = T_MID) -> Path:
    path = tidy(root)
    return set_cell(path, line, col(path, column), value)


def on_bad_error(root: Path) -> None:
    (root / "dl-energy-mapping.yaml").write_text(TIDY_MAPPING.format(on_bad="error"))


def tidy_counter_lines(root: Path) -> list[int]:
    path = tidy(root)
    idx, job = col(path, "energy_J"), col(path, "job")
    return [i for i, ln in enumerate(lines_of(path)[1:], start=2)
            if ln and ln.split(b",")[idx] and ln.split(b",")[job] == b"a"]


def tidy_shift_counter(root: Path, first: int, by: float, only: int | None = None) -> Path:
    path = tidy(root)
    idx = col(path, "energy_J")
    targets = tidy_counter_lines(root)[first:][:only]

    def change(lines: list[bytes]) -> None:
        for line in targets:
            cells = lines[line - 1].split(b",")
            cells[idx] = repr(float(cells[idx]) + by).encode()
            lines[line - 1] = b",".join(cells)
    return edit(path, change)


@variants("samples", "skip", {
    "2099": ("time", "2099-11-22T22:11:00.000"), "1999": ("time", "1999-11-22T22:11:00.000"),
    "month_13": ("time", "2026-13-22T22:11:00.000"), "text": ("time", "later"),
    "month_first": ("time", "11/22/2026 22:11:00"),
    "power_negative": ("power_W", "-5"), "power_unit_mw": ("power_W", "500 mW"),
    "power_text": ("power_W", "high"), "power_empty_stamp": ("time", ""),
})
def tidy_bad_row(root: Path, where: tuple[str, str]) -> Path:
    return tidy_set(root, *where)


@variants("samples", "error", {
    "2099": ("time", "2099-11-22T22:11:00.000"), "power_negative": ("power_W", "-5"),
    "power_text": ("power_W", "high"),
})
def tidy_bad_row_default_error(root: Path, where: tuple[str, str]) -> Path:
    on_bad_error(root)
    return tidy_set(root, *where)


@variants("samples", "skip", {
    "power_1e6": ("power_W", "1000000"), "power_inf": ("power_W", "inf"),
    "util_150": ("util_pct", "150"), "util_negative": ("util_pct", "-1"),
    "limit_1e9": ("limit_W", "1e9"), "counter_negative": ("energy_J", "-1"),
    "counter_inf": ("energy_J", "inf"),
})
def tidy_implausible(root: Path, where: tuple[str, str]) -> Path:
    line = T_MID if where[0] != "energy_J" else tidy_counter_lines(root)[10]
    return tidy_set(root, *where, line=line)


@case("samples", "skip", tolerance=0.25)
def tidy_counter_reset(root: Path) -> Path:
    return tidy_shift_counter(root, 10, -60000.0)


@variants("samples", "skip", {"high": 5000.0, "low": -5000.0})
def tidy_counter_glitch(root: Path, by: float) -> Path:
    return tidy_shift_counter(root, 10, by, only=1)


@case("samples", "skip")
def tidy_repeated_row(root: Path) -> Path:
    return edit(tidy(root), lambda lines: lines.insert(T_MID, lines[T_MID - 1]))


@case("samples", "skip")
def tidy_repeated_stamp_other_value(root: Path) -> Path:
    path = tidy(root)
    idx = col(path, "power_W")

    def change(lines: list[bytes]) -> None:
        cells = lines[T_MID - 1].split(b",")
        cells[idx] = b"650.0"
        lines.insert(T_MID, b",".join(cells))
    return edit(path, change)


@case("samples", "skip", tolerance=0.05)  # the run loses its last sample
def tidy_last_row_of_a_two_hours_later(root: Path) -> Path:
    path = tidy(root)
    last = max(i for i, ln in enumerate(lines_of(path)[1:], start=2) if ln.startswith(b"a,"))
    stamp = lines_of(path)[last - 1].split(b",")[1].decode()
    later = (pd.Timestamp(stamp) + pd.Timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
    return tidy_set(root, "time", later, line=last)


@case("samples", "clean")
def tidy_rows_shuffled(root: Path) -> Path:
    def change(lines: list[bytes]) -> None:
        body = [ln for ln in lines[1:] if ln]
        np.random.default_rng(0).shuffle(body)
        lines[1:] = [*body, b""]
    return edit(tidy(root), change)


@case("samples", "skip")
def tidy_non_utf8(root: Path) -> Path:
    return tidy_set(root, "power_W", "300.\xff")


@case("samples", "error")
def tidy_non_utf8_default_error(root: Path) -> Path:
    on_bad_error(root)
    return tidy_set(root, "power_W", "300.\xff")


@case("samples", "skip")
def tidy_stray_carriage_return(root: Path) -> Path:
    return tidy_set(root, "util_pct", "3\r0")


@case("samples", "clean")
def tidy_byte_order_mark(root: Path) -> Path:
    return with_bom(tidy(root))


@case("samples", "clean")
def tidy_crlf_line_ends(root: Path) -> Path:
    return with_crlf(tidy(root))


@case("samples", "skip", touched="b", tolerance=0.05)  # run b loses its last sample
def tidy_torn_last_line(root: Path) -> Path:
    path = tidy(root)
    path.write_bytes(path.read_bytes()[:-3])
    return path


@case("samples", "skip")
def tidy_too_few_fields(root: Path) -> Path:
    return edit(tidy(root), lambda lines: lines.__setitem__(
        T_MID - 1, lines[T_MID - 1].rsplit(b",", 2)[0]))


@case("samples", "skip")
def tidy_too_many_fields(root: Path) -> Path:
    return edit(tidy(root), lambda lines: lines.__setitem__(T_MID - 1, lines[T_MID - 1] + b",1"))


@variants("samples", "error", {"folder": None, "empty": b""}, line=False, touched="all")
def tidy_file(root: Path, content: bytes | None) -> Path:
    path = tidy(root)
    path.unlink()
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    return path


@case("samples", "skip")
def tidy_events_epoch_start_twice(root: Path) -> Path:
    path = root / "events.csv"
    return edit(path, lambda lines: lines.insert(6, lines[5]))


@case("samples", "skip")
def tidy_events_missing_epoch_end(root: Path) -> Path:
    path = root / "events.csv"
    line = next(i for i, ln in enumerate(lines_of(path), start=1)
                if ln.startswith(b"a,") and b",epoch_end,3" in ln)
    return edit(path, lambda lines: lines.pop(line - 1))


@case("samples", "skip")
def tidy_events_epoch_ends_before_it_starts(root: Path) -> Path:
    path = root / "events.csv"

    def change(lines: list[bytes]) -> None:
        s = next(i for i, ln in enumerate(lines) if ln.startswith(b"a,")
                 and b",epoch_start,2" in ln)
        e = next(i for i, ln in enumerate(lines) if ln.startswith(b"a,") and b",epoch_end,2" in ln)
        lines[s] = lines[s].replace(b"epoch_start", b"epoch_end")
        lines[e] = lines[e].replace(b"epoch_end", b"epoch_start")
    return edit(path, change)


@case("samples", "skip")
def tidy_events_stamp_2099(root: Path) -> Path:
    path = root / "events.csv"
    return set_cell(path, 8, 1, "2099-01-01T00:00:00.000")


@case("samples", "skip", tolerance=0.0)
def tidy_events_unknown_run(root: Path) -> Path:
    path = root / "events.csv"
    return edit(path, lambda lines: lines.insert(3, b"zz" + lines[2][1:]))


# -- the promise --------------------------------------------------------------------------------
def _names(path: str | Path | None, target: Path) -> bool:
    """Whether a reported file is the broken one (or the folder of the broken run)."""
    if path is None or (isinstance(path, float) and np.isnan(path)):
        return False
    p = Path(str(path))
    return p.name == target.name or p.name == target.parent.name or target.name in str(p)


def _copy(pristine: dict[str, Path], kind: str, tmp_path: Path) -> Path:
    root = tmp_path / kind
    shutil.copytree(pristine[kind], root, symlinks=True)
    return root


def _touched(case_: Case, base: Read, root: Path) -> set[str]:
    """The runs (rows) a case may change: the kind's affected run, the mutated CodeCarbon row,
    or all of them for a whole-file case."""
    if case_.touched == "all":
        return set(base.energies)
    if case_.kind != "codecarbon":
        return {AFFECTED[case_.kind]} | ({"b"} if case_.touched == "b" else set())
    if case_.touched == "last":
        return {list(base.energies)[-1]}
    return {cc_run_id(root)} if (root / "emissions.csv").is_file() else set(base.energies)


@pytest.mark.parametrize("case_", CASES, ids=[c.name for c in CASES])
def test_bad_input_keeps_the_promise(case_: Case, pristine: dict[str, Path],
                                     baseline: dict[str, Read], tmp_path: Path) -> None:
    root = _copy(pristine, case_.kind, tmp_path)
    base = baseline[case_.kind]
    touched = _touched(case_, base, root)
    target = case_.mutate(root)
    try:
        got = READERS[case_.kind](root, **dict(case_.options))
    except InputFormatError as err:
        assert case_.expect == "error", f"unexpected InputFormatError: {err}"
        assert _names(err.path, target), f"{err} does not name {target}"
        assert err.line is not None or not case_.line, f"{err} names no line"
        assert err.reason
        return
    assert case_.expect != "error", "expected an InputFormatError"
    new = got.skips
    if case_.expect == "clean":
        assert new.empty, f"nothing should be recorded:\n{new}"
    else:
        mine = new[[_names(f, target) for f in new["file"]]]
        assert len(mine), f"no skip recorded for {target.name}:\n{new}"
        assert mine["reason"].str.len().gt(0).all()
        if case_.line:
            assert mine["line"].notna().any(), f"no line recorded:\n{mine}"
    for run, before in base.energies.items():
        after = got.energies.get(run, np.nan)
        if run not in touched or case_.expect == "clean":
            assert after == pytest.approx(before, rel=1e-9), f"run {run} changed"
        elif not np.isnan(after):
            assert after == pytest.approx(before, rel=case_.tolerance), (
                f"run {run}: {after:.6g} J instead of {before:.6g} J")


def test_baseline_is_clean(baseline: dict[str, Read]) -> None:
    """The untouched copies read with no skip (the chosen SEAA 2023 logs have no torn line)."""
    for kind, read in baseline.items():
        assert read.skips.empty, f"{kind}:\n{read.skips}"
        assert len(read.energies) >= 2 and np.isfinite(list(read.energies.values())).all()


def test_case_count() -> None:
    """The table holds at least 150 named cases across the four readers."""
    kinds = pd.Series([c.kind for c in CASES]).value_counts()
    print(f"\n{len(CASES)} named bad-input cases: {kinds.to_dict()}")
    assert len(CASES) >= 150 and len({c.name for c in CASES}) == len(CASES)
    assert set(kinds.index) == set(READERS)
