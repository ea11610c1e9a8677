"""Which datasets `make figures` runs when none is named (datasets.default_datasets)."""

from __future__ import annotations

from helpers.core import datasets


def test_a_dataset_without_its_folder_is_left_out_with_a_note(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(datasets.EE_TRAINING_ENV, str(tmp_path / "absent"))
    chosen, notes = datasets.default_datasets()
    assert "ee-training" not in chosen
    assert any(n.startswith("ee-training skipped") and "absent" in n for n in notes)
    # the published data is downloaded and the collected runs are made: never left out
    assert {"seaa2023", "collected"} <= set(chosen)


def test_a_dataset_whose_folder_exists_is_run(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(datasets.EE_TRAINING_ENV, str(tmp_path))
    chosen, notes = datasets.default_datasets()
    assert "ee-training" in chosen and not any("ee-training" in n for n in notes)
    assert chosen == [n for n in datasets.DATASETS if n in chosen]  # registry order
