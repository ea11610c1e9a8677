"""``strict`` of the merge stage (helpers.stages.stage02_merge.merge_found) means the same for
every kind of input: True, the first bad row raises InputFormatError naming the file and line;
False, it is a recorded skip naming them and the rest is read; None keeps each reader's own
default (skips for the published logs and run folders, errors for CodeCarbon files and for a
samples mapping without ``on_bad_row``)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers.core import datasets
from helpers.core.errors import InputFormatError
from helpers.readers import detect
from helpers.stages import stage02_merge

ROOT = Path(__file__).resolve().parents[2]
H100_RUNS = ROOT / "data_inputs" / "gpu-h100" / "raw" / "h100"
SEAA_RUN = ("local-v2", "mobilenet_v2", "20230221T090112")
#: The physical line made bad in each kind's file.
BAD_LINE = 4


def _break_cell(path: Path, line: int, field: int) -> Path:
    """Replace field ``field`` (0-based, comma-separated) of 1-based ``line`` by text."""
    lines = path.read_bytes().split(b"\n")
    cells = lines[line - 1].split(b",")
    cells[field] = b" x" if cells[field].startswith(b" ") else b"x"
    lines[line - 1] = b",".join(cells)
    path.write_bytes(b"\n".join(lines))
    return path


def _seaa2023(base: Path, seaa2023_root: Path) -> tuple[Path, Path]:
    env, arch, stamp = SEAA_RUN
    folder = base / "raw" / env / arch
    folder.mkdir(parents=True)
    for prefix in ("gpu-power", "cpu-mem-usage"):
        shutil.copyfile(seaa2023_root / "raw" / env / arch / f"{prefix}-{stamp}.csv",
                        folder / f"{prefix}-{stamp}.csv")
    bad = _break_cell(folder / f"gpu-power-{stamp}.csv", BAD_LINE, 6)  # power.draw
    return base / "raw", bad


def _project(base: Path, _: Path) -> tuple[Path, Path]:
    for arch in ("resnet50", "vgg16"):  # vgg16: a good run beside the broken one
        shutil.copytree(H100_RUNS / arch / "000", base / "raw" / "h100" / arch / "000")
    run = base / "raw" / "h100" / "resnet50" / "000"
    return base / "raw", _break_cell(run / "samples.csv", BAD_LINE, 4)  # gpu_power_w


def _codecarbon(base: Path, _: Path) -> tuple[Path, Path]:
    lines = (datasets.input_dir("ee-training") / "training_energy.csv").read_bytes().split(b"\n")
    base.mkdir()
    path = base / "emissions.csv"
    path.write_bytes(b"\n".join(lines[:6]) + b"\n")
    return base, _break_cell(path, BAD_LINE, 9)  # duration


def _samples(base: Path, _: Path) -> tuple[Path, Path]:
    base.mkdir()
    rows = [f"{job},2026-01-01T00:00:{s:02d},{100 + s}" for job in "ab" for s in range(6)]
    path = base / "power.csv"
    path.write_text("job,time,power_W\n" + "\n".join(rows) + "\n")
    (base / "dl-energy-mapping.yaml").write_text(
        "kind: samples\nenvironment: lab\narchitecture: net\n"
        "columns: {timestamp: time, power: power_W, run_id: job}\n")
    return base, _break_cell(path, BAD_LINE, 2)


KINDS: dict[str, Callable[[Path, Path], tuple[Path, Path]]] = {
    "seaa2023": _seaa2023, "project": _project, "codecarbon": _codecarbon, "samples": _samples}
#: What each reader does with a bad row by default (strict=None).
DEFAULT_RAISES = {"seaa2023": False, "project": False, "codecarbon": True, "samples": True}


def _merge(kind: str, tmp_path: Path, seaa2023_root: Path, strict: bool | None
           ) -> tuple[Path, Callable[[], stage02_merge.MergeOutputs]]:
    folder, bad = KINDS[kind](tmp_path / kind, seaa2023_root)
    found = detect.detect(folder)
    assert found.kind == kind
    return bad, lambda: stage02_merge.merge_found(found, f"strict-{kind}", strict=strict)


def _raises_naming(run: Callable[[], object], bad: Path) -> None:
    with pytest.raises(InputFormatError) as caught:
        run()
    assert Path(caught.value.path).name == bad.name
    assert caught.value.line == BAD_LINE


def _skips_naming(run: Callable[[], stage02_merge.MergeOutputs], bad: Path) -> None:
    skips = run().skips
    named = skips[skips["file"].astype(str).str.endswith(bad.name)]
    assert BAD_LINE in named["line"].tolist()
    assert named["reason"].str.len().gt(0).all()


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("strict", [True, False, None])
def test_strict_means_the_same_for_every_reader(kind: str, strict: bool | None, tmp_path: Path,
                                                seaa2023_root: Path) -> None:
    bad, run = _merge(kind, tmp_path, seaa2023_root, strict)
    raises = DEFAULT_RAISES[kind] if strict is None else strict
    if raises:
        _raises_naming(run, bad)
    else:
        _skips_naming(run, bad)
