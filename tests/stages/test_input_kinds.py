"""Any dataset in: the registry finds a dataset's folder by name, variable or parameter; the
merge stage detects its kind; CodeCarbon rows and tidy samples CSVs go through the merge and
clean stages to runs.parquet (outputs under a temporary project root)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from helpers.core import datasets
from helpers.core.errors import InputFormatError
from helpers.stages import stage02_merge, stage03_clean

CC_HEADER = ("timestamp,project_name,run_id,duration,emissions,cpu_power,gpu_power,ram_power,"
             "cpu_energy,gpu_energy,ram_energy,energy_consumed,gpu_count,gpu_model,model,"
             "dataset,epochs,batch_size,eval_top1,forward_flops,params,SAM")
#: (run_id, end stamp, duration s, cpu kWh, gpu kWh, ram kWh, total kWh, model)
CC_RUNS = [("r1", "2024-05-01T12:00:00", 3600, 0.1, 0.5, 0.05, 0.65, "resnet50"),
           ("r2", "2024-05-01T14:00:00", 1800, 0.05, 0.25, 0.02, 0.32, "resnet50"),
           ("r3", "2024-05-01T16:00:00", 1200, 0.04, 0.125, 0.01, 0.175, "resnet18")]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project root (outputs and data_inputs/ go there)."""
    root = tmp_path / "project"
    (root / "data_inputs").mkdir(parents=True)
    monkeypatch.setenv(datasets.PROJECT_ROOT_ENV, str(root))
    return root


def _codecarbon(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = [f"{stamp},exp,{rid},{dur},0.2,47.5,300,3,{cpu},{gpu},{ram},{tot},1,"
            f"1 x NVIDIA A100,{model},cifar10,30,64,91.5,4.1,25.6,-1.2"
            for rid, stamp, dur, cpu, gpu, ram, tot, model in CC_RUNS]
    path = folder / "emissions.csv"
    path.write_text("\n".join([CC_HEADER, *rows]) + "\n")
    return path


def test_codecarbon_through_merge_and_clean(project: Path) -> None:
    _codecarbon(project / "data_inputs" / "my-cc")
    assert datasets.get("my-cc").raw_format == datasets.DETECT
    merged, section = stage02_merge.merge_and_write("my-cc")
    assert "kind codecarbon" in section.notes[0]
    assert "4 ignored (cpu_power, gpu_power, ram_power, SAM)" in "\n".join(section.notes)
    interim = datasets.output_dir("my-cc", "interim")
    columns = pd.read_csv(interim / "source_columns.csv").set_index("column")
    assert columns.loc["SAM", "used_as"] == "ignored"
    assert columns.loc["eval_top1", "used_as"] == "accuracy"
    assert merged.profiling.empty
    assert "no samples" in stage02_merge.unmatched_samples(merged).notes[0]

    cleaned, _ = stage03_clean.clean_and_write("my-cc")
    runs = pd.read_parquet(datasets.output_dir("my-cc", "processed") / "runs.parquet")
    runs = runs.set_index("codecarbon_run_id").loc[["r1", "r2", "r3"]]
    for col, kwh in (("gpu_energy_j", 4), ("cpu_energy_j", 3), ("ram_energy_j", 5),
                     ("total_energy_j", 6), ("energy_j", 4), ("training_energy_j", 4)):
        assert runs[col].tolist() == pytest.approx([r[kwh] * 3.6e6 for r in CC_RUNS]), col
    assert runs["training_duration_s"].tolist() == [r[2] for r in CC_RUNS]
    assert (runs["training_window"] == "codecarbon tracker (whole run)").all()
    assert (runs["cpu_energy_method"] == "codecarbon").all()
    assert (runs["dataset"] == "my-cc").all() and (runs["image_dataset"] == "cifar10").all()
    assert runs["accuracy"].tolist() == pytest.approx([0.915] * 3)
    assert runs["params"].tolist() == pytest.approx([25.6e6] * 3)


POWER_CSV = """job,time,power_mW,energy_mJ
a,2024-05-01T10:00:00.000,100000,0
a,2024-05-01T10:00:01.000,200000,150000
a,2024-05-01T10:00:02.000,200000,350000
b,2024-05-01T11:00:00.000,50000,1000
b,2024-05-01T11:00:02.000,50000,101000
"""


def test_samples_csv_through_merge_and_clean(project: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "elsewhere"  # given by the dataset's environment variable
    folder.mkdir()
    (folder / "power.csv").write_text(POWER_CSV)
    (folder / "dl-energy-mapping.yaml").write_text(
        "columns: {timestamp: time, power: power_mW, run_id: job, energy_counter: energy_mJ}\n"
        "units: {power: mW, energy_counter: mJ}\narchitecture: resnet18\n")
    monkeypatch.setenv("OTHER_PROFILER_DIR", str(folder))
    assert datasets.input_dir("other-profiler") == folder.resolve()
    merged, section = stage02_merge.merge_and_write("other-profiler")
    assert "kind samples" in section.notes[0]
    assert len(merged.profiling) == 5
    cleaned, _ = stage03_clean.clean_and_write("other-profiler")
    runs = pd.read_parquet(datasets.output_dir("other-profiler", "processed") / "runs.parquet")
    assert runs["energy_j"].tolist() == pytest.approx([350.0, 100.0])  # counter differences
    assert runs["energy_source"].str.startswith("gpu:").all()
    assert runs["gpu_energy_trapezoid_j"].tolist() == pytest.approx([350.0, 100.0])


def test_folder_by_name_variable_or_parameter(project: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    assert datasets.data_dir_env("my-runs.v2") == "MY_RUNS_V2_DIR"
    assert datasets.data_dir_env("ee-training") == "EE_TRAINING_DIR"
    named = project / "data_inputs" / "mine"
    _codecarbon(named)
    assert datasets.input_dir("mine") == named
    other = _codecarbon(tmp_path / "other").parent
    monkeypatch.setenv("MINE_DIR", str(other))
    assert datasets.input_dir("mine") == other.resolve()
    assert datasets.input_dir("mine", data_dir=str(named)) == named.resolve()
    with pytest.raises(FileNotFoundError, match=r"\(data_dir\) does not exist"):
        datasets.input_dir("mine", data_dir=str(tmp_path / "absent"))
    monkeypatch.delenv("MINE_DIR")
    with pytest.raises(FileNotFoundError, match="NOPE_DIR"):
        datasets.input_dir("nope")


def test_kinds_of_unregistered_names(project: Path) -> None:
    fresh = datasets.get("new-grid")  # nothing yet: notebook 01 writes the project format
    assert fresh.raw_format == "project"
    assert fresh.parameters == {}  # analysis parameters are derived from the data
    run = project / "data_inputs" / "old-grid" / "raw" / "cpu" / "mlp" / "000"
    run.mkdir(parents=True)
    (run / "metadata.json").write_text("{}")
    assert datasets.get("old-grid").raw_format == "project"
    _codecarbon(project / "data_inputs" / "cc")
    assert datasets.get("cc").parameters == {}
    assert not datasets.needs_seaa2023("cc") and datasets.needs_seaa2023("seaa2023")


def test_unrecognisable_or_mismatched_folder_stops_the_merge(
        project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    junk = project / "data_inputs" / "junk"
    junk.mkdir()
    (junk / "readme.txt").write_text("hello")
    with pytest.raises(InputFormatError, match="not a dataset the pipeline recognises") as err:
        stage02_merge.merge_dataset("junk")
    assert err.value.path == junk
    run = tmp_path / "runs" / "raw" / "cpu" / "mlp" / "000"
    run.mkdir(parents=True)
    (run / "metadata.json").write_text("{}")
    monkeypatch.setenv("EE_TRAINING_DIR", str(tmp_path / "runs"))
    with pytest.raises(InputFormatError, match="registered as 'codecarbon' but holds 'project'"):
        stage02_merge.merge_dataset("ee-training")


def _ee_training_dir() -> Path | None:
    """The EE-Training folder where the registry finds it (before the project root moves)."""
    try:
        return datasets.input_dir("ee-training")
    except FileNotFoundError:
        return None


EE_TRAINING = _ee_training_dir()


@pytest.mark.skipif(EE_TRAINING is None, reason="EE-Training CSV not present")
def test_registered_ee_training_merges(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EE_TRAINING_DIR", str(EE_TRAINING))
    merged = stage02_merge.merge_dataset("ee-training")
    assert len(merged.run_index) == 198 and merged.profiling.empty
    assert merged.run_index["gflops"].notna().all()
    assert "throughput" in merged.source_columns.query("used_as == 'ignored'")["column"].tolist()
