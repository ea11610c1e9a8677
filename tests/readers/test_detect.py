"""Dataset kind detection (helpers.readers.detect) on folders of the shapes strangers bring."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers.core.errors import InputFormatError
from helpers.readers import detect

CC_HEADER = ("timestamp,project_name,run_id,duration,emissions,cpu_energy,gpu_energy,"
             "ram_energy,energy_consumed,gpu_model")
CC_ROW = "2024-05-01T12:00:00,p,r1,3600,0.2,0.1,0.5,0.05,0.65,1 x NVIDIA A100"


def _cc(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{CC_HEADER}\n{CC_ROW}\n")
    return path


def test_seaa2023_logs(tmp_path: Path) -> None:
    folder = tmp_path / "raw" / "cloud" / "vgg16"
    folder.mkdir(parents=True)
    (folder / "gpu-power-20230101T000000.csv").write_text("timestamp\n")
    (folder / "cpu-mem-usage-20230101T000000.csv").write_text("timestamp\n")
    for given in (tmp_path, tmp_path / "raw"):
        found = detect.detect(given)
        assert (found.kind, found.root) == ("seaa2023", tmp_path / "raw")


def test_project_runs_win_over_their_emissions_csv(tmp_path: Path) -> None:
    run = tmp_path / "raw" / "a100" / "resnet50" / "000"
    run.mkdir(parents=True)
    (run / "metadata.json").write_text("{}")
    _cc(tmp_path / "raw" / "emissions.csv")  # the grid writes one beside the runs
    found = detect.detect(tmp_path)
    assert (found.kind, found.root) == ("project", tmp_path / "raw")
    assert detect.detect(tmp_path / "raw").kind == "project"


def test_codecarbon_file_folder_and_nested(tmp_path: Path) -> None:
    one = _cc(tmp_path / "emissions.csv")
    two = _cc(tmp_path / "machine-b" / "emissions.csv")
    (tmp_path / "notes.csv").write_text("a,b\n1,2\n")
    found = detect.detect(tmp_path)
    assert found.kind == "codecarbon"
    assert found.files == (one, two)
    assert found.ignored_files == (tmp_path / "notes.csv",)
    single = detect.detect(one)
    assert (single.kind, single.files) == ("codecarbon", (one,))


def test_samples_csv_with_yaml_or_json_mapping(tmp_path: Path) -> None:
    (tmp_path / "power.csv").write_text("t,p\n0,1\n")
    (tmp_path / "phases.csv").write_text("t,name\n0,epoch_start\n")
    mapping = {"columns": {"timestamp": "t", "power": "p"},
               "events": {"file": "phases.csv", "columns": {"timestamp": "t", "event": "name"}}}
    (tmp_path / "dl-energy-mapping.json").write_text(json.dumps(mapping))
    found = detect.detect(tmp_path)
    assert (found.kind, found.files) == ("samples", (tmp_path / "power.csv",))
    assert found.mapping_file == tmp_path / "dl-energy-mapping.json"
    (tmp_path / "dl-energy-mapping.json").unlink()
    (tmp_path / "dl-energy-mapping.yaml").write_text(
        "kind: samples\nfiles: power.csv\ncolumns: {timestamp: t, power: p}\n")
    found = detect.detect(tmp_path)
    assert found.kind == "samples" and found.mapping["columns"]["power"] == "p"


def test_mapping_states_kind_and_settings(tmp_path: Path) -> None:
    _cc(tmp_path / "emissions.csv")
    (tmp_path / "dl-energy-mapping.yaml").write_text("kind: codecarbon\ntimezone: Asia/Tokyo\n")
    found = detect.detect(tmp_path)
    assert found.kind == "codecarbon" and found.mapping["timezone"] == "Asia/Tokyo"
    (tmp_path / "dl-energy-mapping.yaml").write_text("kind: project\n")
    with pytest.raises(InputFormatError, match="kind 'project' stated") as err:
        detect.detect(tmp_path)
    assert err.value.path.name == "dl-energy-mapping.yaml"


def test_malformed_mapping_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "dl-energy-mapping.yaml").write_text("kind: samples\ncolumns: [unclosed\n")
    with pytest.raises(InputFormatError, match="invalid YAML") as err:
        detect.detect(tmp_path)
    assert err.value.line is not None
    (tmp_path / "dl-energy-mapping.yaml").write_text("kind: nvidia\n")
    with pytest.raises(InputFormatError, match="'nvidia' is not one of"):
        detect.detect(tmp_path)


def test_unrecognisable_folder_says_what_was_looked_for(tmp_path: Path) -> None:
    (tmp_path / "log.csv").write_text("time,watts\n0,100\n")
    with pytest.raises(InputFormatError) as err:
        detect.detect(tmp_path)
    message = str(err.value)
    assert str(tmp_path) in message
    assert "CodeCarbon" in message and "dl-energy-mapping" in message
    assert "log.csv: time,watts" in message  # what it found instead
    with pytest.raises(FileNotFoundError, match="does not exist"):
        detect.detect(tmp_path / "absent")
