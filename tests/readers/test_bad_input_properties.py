"""Property-based hostile input (hypothesis): random mutations of bytes, cells and lines of
small real files against every reader, and the bounds and counter rules underneath
(docs/raw-format.md#plausibility-bounds).

Each property asserts the promise: the reader ends in :class:`InputFormatError` naming the file
(and a line where one exists) or returns with what it left out recorded; what it returns is
within the plausibility bounds; and the energy of the untouched run (rows) is unchanged.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers.core import bounds, datasets, energy
from helpers.core.errors import InputFormatError
from helpers.readers import codecarbon, project, project_merge, samples_csv, seaa2023

ROOT = Path(__file__).resolve().parents[2]
H100 = ROOT / "data_inputs" / "gpu-h100" / "raw" / "h100"
GPU_LOG = Path("raw") / "local-v2" / "mobilenet_v2" / "gpu-power-20230221T090112.csv"
CONTROL_LOG = Path("raw") / "local-v2" / "mobilenet_v2" / "gpu-power-20230221T093210.csv"
SETTINGS = settings(max_examples=30, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])
#: The same, fewer examples: for properties that read two run folders per example.
HEAVY = settings(SETTINGS, max_examples=12)
#: Cell values a hostile user tries.
NASTY = ["", " ", "nan", "NaN", "inf", "-inf", "-1", "-0", "0", "1e308", "1e6", "150", "1e-320",
         "0x10", "1,5", '"', "\xff", "\x00", "\r", "2099-01-01T00:00:00", "2099/01/01 00:00:00",
         "1999-12-31 23:59:59", "03/04/2026", "9999-12-31T23:59:59", "12 W", "50 %", "[N/A]",
         "99999999999999999999", "1.5", "abc", "ü"]


def _text(value: str) -> bytes:
    return value.encode("utf-8", errors="surrogateescape") if value != "\xff" else b"\xff"


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().split(b"\n")


# -- mutations --------------------------------------------------------------------------------
@st.composite
def line_edits(draw: st.DrawFn, first: int, last: int, fields: int) -> list[tuple]:
    """1-4 edits of lines ``first``..``last`` (1-based): replace a cell with a nasty value,
    repeat, delete or swap a line, or insert a byte into it."""
    line = st.integers(first, last)
    edit = st.one_of(
        st.tuples(st.just("cell"), line, st.integers(0, fields - 1), st.sampled_from(NASTY)),
        st.tuples(st.just("repeat"), line), st.tuples(st.just("delete"), line),
        st.tuples(st.just("swap"), line, line),
        st.tuples(st.just("byte"), line, st.integers(0, 200), st.integers(0, 255)))
    return draw(st.lists(edit, min_size=1, max_size=4))


def apply_edits(path: Path, edits: list[tuple]) -> None:
    lines = _lines(path)
    for op, *args in edits:
        i = args[0] - 1
        if i >= len(lines) - 1:
            continue
        if op == "cell":
            cells = lines[i].split(b",")
            cells[args[1] % len(cells)] = _text(args[2])
            lines[i] = b",".join(cells)
        elif op == "repeat":
            lines.insert(i, lines[i])
        elif op == "delete":
            del lines[i]
        elif op == "swap":
            j = args[1] - 1
            if j < len(lines) - 1:
                lines[i], lines[j] = lines[j], lines[i]
        else:
            pos = min(args[1], len(lines[i]))
            lines[i] = lines[i][:pos] + bytes([args[2]]) + lines[i][pos:]
    path.write_bytes(b"\n".join(lines))


# -- SEAA 2023 --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def seaa_copy(tmp_path_factory: pytest.TempPathFactory, seaa2023_root: Path) -> Path:
    """The mutated GPU log's first 80 lines and an untouched control run."""
    base = tmp_path_factory.mktemp("seaa")
    cpu = [p.with_name(p.name.replace("gpu-power", "cpu-mem-usage")) for p in (GPU_LOG,
                                                                             CONTROL_LOG)]
    for rel in (GPU_LOG, CONTROL_LOG, *cpu):
        dest = base / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(seaa2023_root / rel, dest)
    head = _lines(base / GPU_LOG)[:80]
    (base / GPU_LOG).write_bytes(b"\n".join(head) + b"\n")
    return base


def _check_gpu_log(log: seaa2023.ParsedLog, n_lines: int) -> None:
    """Invariants of a parsed GPU log: increasing UTC stamps, real lines, values in bounds."""
    data = log.data
    t = data["time_utc"].astype("int64").to_numpy()
    assert (np.diff(t) > 0).all()
    assert bounds.stamps_in_range(t).all()
    assert data["line"].between(2, n_lines).all() and data["line"].is_unique
    for col, (low, high, _) in seaa2023.VALUE_BOUNDS.items():
        if col in data:
            scale = seaa2023.GPU_NUMERIC[col][1]
            assert not bounds.outside(data[col].to_numpy() / scale, low, high).any(), col
    power_top = bounds.max_power_w(data["gpu_max_power"].to_numpy(), bounds.GPU_POWER_CEILING_W)
    assert not bounds.outside(data["gpu_power_draw"].to_numpy(), 0.0, power_top).any()
    assert all(s.reason for s in log.skips)


@SETTINGS
@given(edits=line_edits(2, 79, 9))
def test_seaa2023_line_and_cell_mutations(seaa_copy: Path, tmp_path_factory, edits) -> None:
    path = tmp_path_factory.mktemp("m") / "gpu-power-20230221T090112.csv"
    shutil.copyfile(seaa_copy / GPU_LOG, path)
    apply_edits(path, edits)
    log = seaa2023.read_gpu_log(path)  # not strict: never raises
    _check_gpu_log(log, len(_lines(path)))
    try:
        strict = seaa2023.read_gpu_log(path, strict=True)
    except InputFormatError as err:
        assert err.path == path and log.skips
        assert err.line is not None or any(s.line is None for s in log.skips)
    else:
        assert not log.skips and strict.data.equals(log.data)


@SETTINGS
@given(data=st.binary(min_size=0, max_size=400), cut=st.integers(0, 6000))
def test_seaa2023_random_bytes_spliced_in(seaa_copy: Path, tmp_path_factory, data: bytes,
                                          cut: int) -> None:
    raw = (seaa_copy / GPU_LOG).read_bytes()
    path = tmp_path_factory.mktemp("b") / "gpu.csv"
    path.write_bytes(raw[:cut] + data + raw[cut:])
    log = seaa2023.read_gpu_log(path)
    _check_gpu_log(log, len(_lines(path)))


@SETTINGS
@given(edits=line_edits(2, 79, 9))
def test_seaa2023_control_run_energy_unchanged(seaa_copy: Path, tmp_path_factory,
                                               edits) -> None:
    root = tmp_path_factory.mktemp("r")
    shutil.copytree(seaa_copy, root, dirs_exist_ok=True)
    apply_edits(root / GPU_LOG, edits)
    logs = seaa2023.read_logs(root / "raw", workers=1)
    control = logs.gpu[logs.gpu["run_id"] == "local-v2/mobilenet_v2/001"]
    t = control["time_utc"].astype("int64").to_numpy() / 1000.0
    e = energy.trapezoid_energy_j(t, control["gpu_power_draw"].to_numpy())
    assert e == pytest.approx(_control_energy(seaa_copy), rel=1e-12)
    assert (logs.skips["run_id"] != "local-v2/mobilenet_v2/001").all()


def _control_energy(seaa_root: Path) -> float:
    log = seaa2023.read_gpu_log(seaa_root / CONTROL_LOG)
    t = log.data["time_utc"].astype("int64").to_numpy() / 1000.0
    return energy.trapezoid_energy_j(t, log.data["gpu_power_draw"].to_numpy())


# -- project run folders ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def project_copy(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, float]]:
    """Two run folders, and each run's energy as read untouched."""
    base = tmp_path_factory.mktemp("project")
    for run in ("resnet50/000", "vgg16/000"):
        shutil.copytree(H100 / run, base / "raw" / "h100" / run)
    profiling = project_merge.merge_project(base / "raw", "prop").profiling
    return base, {r: _run_energy(profiling, r) for r in ("h100/resnet50/000", "h100/vgg16/000")}


def _run_energy(profiling: pd.DataFrame, run_id: str) -> float:
    g = profiling[profiling["run_id"] == run_id]
    return energy.gpu_energy_j([(g["timestamp"].to_numpy(float) / 1000.0,
                                 g["gpu_power_draw"].to_numpy(float),
                                 g["gpu_energy_counter_j"].to_numpy(float))], "none")[0]


@HEAVY
@given(samples=line_edits(2, 300, 23), events=line_edits(2, 30, 5), touch_events=st.booleans())
def test_project_run_mutations(project_copy: tuple[Path, dict[str, float]], tmp_path_factory,
                               samples, events, touch_events: bool) -> None:
    source, before = project_copy
    root = tmp_path_factory.mktemp("p")
    shutil.copytree(source, root, dirs_exist_ok=True)
    run = root / "raw" / "h100" / "resnet50" / "000"
    apply_edits(run / "samples.csv", samples)
    if touch_events:
        apply_edits(run / "events.csv", events)
    try:
        read = project.read_run(run)
    except InputFormatError as err:
        assert err.path.parent == run and err.reason
    else:
        s = read.samples
        assert (np.diff(s["monotonic_s"].to_numpy()) >= 0).all()
        assert bounds.stamps_in_range(s["timestamp_ms"].to_numpy()).all()
        for col, (low, high, _) in project.VALUE_BOUNDS.items():
            assert not bounds.outside(s[col].to_numpy(), low, np.inf if col in
                                      project._POWER else high).any(), col
        assert all(k.reason and Path(k.file).parent == run for k in read.skips)
    merged = project_merge.merge_project(root / "raw", "prop")  # never raises: B is fine
    control = _run_energy(merged.profiling, "h100/vgg16/000")
    assert control == pytest.approx(before["h100/vgg16/000"], rel=1e-12)
    a = _run_energy(merged.profiling, "h100/resnet50/000")
    assert np.isnan(a) or 0 <= a <= 1.5 * before["h100/resnet50/000"]


# -- CodeCarbon --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cc_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cc") / "emissions.csv"
    lines = (datasets.input_dir("ee-training") / "training_energy.csv").read_bytes().split(b"\n")
    path.write_bytes(b"\n".join(lines[:9]) + b"\n")
    return path


@SETTINGS
@given(edits=line_edits(2, 9, 50))
def test_codecarbon_mutations(cc_copy: Path, tmp_path_factory, edits) -> None:
    path = tmp_path_factory.mktemp("c") / "emissions.csv"
    shutil.copyfile(cc_copy, path)
    apply_edits(path, edits)
    touched = {e[1] for e in edits} | {e[2] for e in edits if e[0] == "swap"}
    if any(e[0] in ("repeat", "delete") for e in edits):
        touched = set(range(2, 11))  # lines move: every row may be another
    base = codecarbon.read_codecarbon(cc_copy, "prop").runs.set_index("source_line")
    try:
        codecarbon.read_codecarbon(path, "prop")
    except InputFormatError as err:
        assert err.path == path and err.line is not None and err.reason
    res = codecarbon.read_codecarbon(path, "prop", strict=False)  # never raises
    assert res.skipped["reason"].str.len().gt(0).all()
    assert (res.runs["duration_s"] > 0).all()
    assert bounds.stamps_in_range(res.runs["start_utc"].astype("int64").to_numpy() // 10**6
                                  if len(res.runs) else np.array([])).all()
    got = res.runs.set_index("source_line")
    for line, row in base.iterrows():
        if line not in touched and line in got.index:
            assert got.loc[line, "energy_j"] == pytest.approx(row["energy_j"], rel=1e-12)


# -- tidy samples CSV ----------------------------------------------------------------------------
TIDY_MAPPING = """kind: samples
on_bad_row: skip
environment: lab
architecture: net
columns: {timestamp: time, power: power_W, run_id: job, energy_counter: energy_J,
          utilisation: util_pct}
"""


@pytest.fixture(scope="module")
def tidy_copy(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, float]]:
    """A tidy samples CSV of two runs (jobs a, b), and each job's energy as read untouched."""
    base = tmp_path_factory.mktemp("tidy")
    parts = []
    for job, run in (("a", "efficientnet_b0/000"), ("b", "vgg16/000")):
        s = pd.read_csv(H100 / run / "samples.csv")
        parts.append(pd.DataFrame({
            "job": job, "time": s["timestamp_ms"], "power_W": s["gpu_power_w"],
            "util_pct": s["gpu_usage_pct"], "energy_J": s["gpu_energy_counter_j"]}))
    pd.concat(parts).to_csv(base / "power.csv", index=False)
    (base / "dl-energy-mapping.yaml").write_text(TIDY_MAPPING + "units: {timestamp: ms}\n")
    return base, _tidy_energies(base)


def _tidy_energies(root: Path) -> dict[str, float]:
    out = samples_csv.read_samples([root / "power.csv"], _mapping(root),
                                   root / "dl-energy-mapping.yaml", "prop")
    ids = dict(zip(out.run_index["run_id"], out.run_index["source_run_id"], strict=True))
    return {ids[r]: _run_energy(out.profiling, r) for r in out.run_index["run_id"]}


def _mapping(root: Path) -> dict:
    import yaml

    return yaml.safe_load((root / "dl-energy-mapping.yaml").read_text())


@HEAVY
@given(edits=line_edits(2, 320, 5))
def test_tidy_samples_mutations(tidy_copy: tuple[Path, dict[str, float]], tmp_path_factory,
                                edits) -> None:
    source, before = tidy_copy
    root = tmp_path_factory.mktemp("t")
    shutil.copytree(source, root, dirs_exist_ok=True)
    apply_edits(root / "power.csv", edits)  # lines 2..320 are job a's (321 rows)
    energies = _tidy_energies(root)
    assert energies["b"] == pytest.approx(before["b"], rel=1e-12)
    a = energies.get("a", np.nan)
    assert np.isnan(a) or 0 <= a <= 1.5 * before["a"]


# -- the rules underneath ------------------------------------------------------------------------
def _lis_length(t: list[float]) -> int:
    best = [1] * len(t)
    for i in range(len(t)):
        for j in range(i):
            if t[j] < t[i]:
                best[i] = max(best[i], best[j] + 1)
    return max(best, default=0)


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(st.lists(st.integers(0, 30), max_size=40))
def test_increasing_keep_drops_the_fewest_rows(values: list[int]) -> None:
    t = np.array(values, dtype=float)
    keep = bounds.increasing_keep(t)
    assert (np.diff(t[keep]) > 0).all()
    assert keep.sum() == _lis_length(values)


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(steps=st.lists(st.floats(0, 500, allow_subnormal=False), min_size=2, max_size=40),
       resets=st.lists(st.integers(1, 39), max_size=3),
       cuts=st.lists(st.floats(0, 1, allow_subnormal=False), min_size=1, max_size=4))
def test_counter_segments_add_up(steps: list[float], resets: list[int],
                                 cuts: list[float]) -> None:
    """A counter that resets to 0 now and then: the energy is the sum of the steps within
    segments (never an error), and windows cut anywhere add up to the whole."""
    t = np.arange(len(steps) + 1, dtype=float)
    c = np.concatenate([[1000.0], 1000.0 + np.cumsum(steps)])
    counted = np.concatenate([[0.0], steps])
    for r in sorted({r for r in resets if r < len(c)}):
        c[r:] -= c[r] - 1.0  # back to 1 J at reading r: its step is not counted
        counted[r] = 0.0
    total = energy.counter_energy_j(c, time_s=t)
    assert total == pytest.approx(counted.sum(), abs=1e-6)
    edges = np.sort(np.concatenate([[t[0], t[-1]], t[0] + np.array(cuts) * (t[-1] - t[0])]))
    parts = [energy.window_counter_j(t, c, a, b) for a, b in zip(edges[:-1], edges[1:],
                                                                 strict=True) if b > a]
    assert sum(parts) == pytest.approx(total, abs=1e-6)


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(n=st.integers(6, 40), at=st.integers(1, 38),
       jump=st.floats(2000, 1e9, allow_subnormal=False), up=st.booleans())
def test_a_counter_glitch_is_found(n: int, at: int, jump: float, up: bool) -> None:
    """One reading far off a steady counter (200 W, 1 s apart) is the only glitch found."""
    at = min(at, n - 2)
    t = np.arange(n, dtype=float)
    c = 5e4 + 200.0 * t
    c[at] = c[at] + jump if up else max(c[at] - jump, 0.0)
    glitch = bounds.counter_glitches(t, c)
    assert glitch.tolist() == [i == at for i in range(n)]
    assert energy.counter_energy_j(np.where(glitch, np.nan, c), time_s=t) == pytest.approx(
        200.0 * (n - 1))
