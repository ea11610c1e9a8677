"""Hugging Face Trainer callback: marks for the epochs the Trainer ran, evaluation around them,
and run metadata (parameters, FLOPs, sizes, final metrics), received by the profiler's receiver
from a tiny real training run on the CPU (a randomly initialised BERT built from a config)."""

from __future__ import annotations

import importlib
import sys

import pytest

pytest.importorskip("transformers")
import torch  # noqa: E402
from profiled import only_run, run_profiler  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402
from transformers import (  # noqa: E402
    BertConfig,
    BertForSequenceClassification,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

from helpers import marks  # noqa: E402
from helpers.collect.callbacks.hf import ProfileCallback  # noqa: E402
from helpers.readers.project import read_run  # noqa: E402

TRAIN, VAL, BATCH, TOKENS = 32, 16, 8, 8
#: A researcher's Trainer script with the callback (the profiled command of the end-to-end test).
SCRIPT = """
import torch
from transformers import (BertConfig, BertForSequenceClassification, Trainer,
                          TrainingArguments)

from helpers.collect.callbacks.hf import ProfileCallback


class Tokens(torch.utils.data.Dataset):
    def __init__(self, n, seed):
        gen = torch.Generator().manual_seed(seed)
        self.x = torch.randint(0, 50, (n, 8), generator=gen)
        self.y = (self.x[:, 0] >= 25).long()

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"input_ids": self.x[i], "labels": self.y[i]}


torch.manual_seed(0)
model = BertForSequenceClassification(BertConfig(
    vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
    intermediate_size=32, max_position_embeddings=16, num_labels=2))
args = TrainingArguments(output_dir="out", num_train_epochs=2, per_device_train_batch_size=8,
                         eval_strategy="epoch", logging_strategy="epoch", save_strategy="no",
                         report_to=[], use_cpu=True, disable_tqdm=True)
Trainer(model=model, args=args, train_dataset=Tokens(32, 0), eval_dataset=Tokens(16, 1),
        callbacks=[ProfileCallback()]).train()
print("params", sum(p.numel() for p in model.parameters()))
"""


@pytest.fixture(autouse=True)
def _offline(monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


class Tokens(torch.utils.data.Dataset):
    """Synthetic token sequences; the label is whether the first token is in the upper half."""

    def __init__(self, n: int, seed: int) -> None:
        gen = torch.Generator().manual_seed(seed)
        self.x = torch.randint(0, 50, (n, TOKENS), generator=gen)
        self.y = (self.x[:, 0] >= 25).long()

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.x[i], "labels": self.y[i]}


def _model() -> BertForSequenceClassification:
    torch.manual_seed(0)
    return BertForSequenceClassification(BertConfig(
        vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=16, num_labels=2))


def _accuracy(pred) -> dict[str, float]:
    return {"accuracy": float((pred.predictions.argmax(-1) == pred.label_ids).mean())}


class StopAfter(TrainerCallback):
    """Stops training at the end of epoch ``epoch`` (as early stopping would)."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_end(self, args, state, control, **kwargs):
        if round(state.epoch) == self.epoch + 1:
            control.should_training_stop = True


def _train(tmp_path, epochs: int, callbacks: list, **args) -> Trainer:
    settings = {"eval_strategy": "epoch", "logging_strategy": "epoch", **args}
    trainer = Trainer(
        model=_model(), train_dataset=Tokens(TRAIN, 0), eval_dataset=Tokens(VAL, 1),
        compute_metrics=_accuracy, callbacks=callbacks,
        args=TrainingArguments(output_dir=str(tmp_path / "out"), num_train_epochs=epochs,
                               per_device_train_batch_size=BATCH,
                               per_device_eval_batch_size=BATCH, save_strategy="no",
                               report_to=[], use_cpu=True, disable_tqdm=True, **settings))
    trainer.train()
    return trainer


def test_epochs_evaluations_flops_and_metadata_reach_the_profiler(tmp_path, received) -> None:
    trainer = _train(tmp_path, 2, [ProfileCallback()])
    received.stop()
    per_epoch = ["epoch_start", "eval_start", "eval_end", "epoch_end"]
    assert received.names() == [(n, e) for e in (0, 1) for n in per_epoch]
    ends = received.info("epoch_end")
    assert all({"loss", "eval_loss", "eval_accuracy", "val_accuracy"} <= set(i) for i in ends)
    assert ends[-1]["val_accuracy"] == ends[-1]["eval_accuracy"]
    assert received.info("eval_end")[0]["eval_loss"] == ends[0]["eval_loss"]
    meta = received.metadata
    assert meta["params"] == sum(p.numel() for p in trainer.model.parameters())
    assert meta["framework"] == "transformers"
    assert meta["epochs_planned"] == 2 and meta["epochs_trained"] == 2
    assert (meta["train_size"], meta["images_per_epoch"], meta["val_size"]) == (TRAIN, TRAIN, VAL)
    assert meta["batch_size"] == BATCH
    assert meta["accuracy"] == ends[-1]["eval_accuracy"]
    assert meta["final_metrics"]["eval_loss"] == ends[-1]["eval_loss"]
    # FLOPs per sample: the forward FLOPs of one training batch, counted independently here
    batch = Tokens(BATCH, 0)[:]  # same shapes as a training batch
    trainer.model.train()  # as in training (on the CPU, attention then runs as matmuls)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        trainer.model(**batch)
    assert counter.get_total_flops() > 0
    assert meta["flops_per_forward"] == counter.get_total_flops()
    assert meta["flops_per_image"] == pytest.approx(counter.get_total_flops() / BATCH)
    assert meta["gflops_per_image"] == pytest.approx(meta["flops_per_image"] / 1e9)
    assert "batch of 8" in meta["flops_method"]


def test_early_stop_sends_the_epochs_run_and_no_eval_without_evaluation(tmp_path,
                                                                         received) -> None:
    _train(tmp_path, 4, [ProfileCallback(count_flops=False), StopAfter(1)],
           eval_strategy="no", logging_strategy="steps", logging_steps=2)
    received.stop()
    assert received.names() == [("epoch_start", 0), ("epoch_end", 0),
                                ("epoch_start", 1), ("epoch_end", 1)]
    assert "loss" in received.info("epoch_end")[0]
    meta = received.metadata
    assert meta["epochs_planned"] == 4 and meta["epochs_trained"] == 2
    assert "flops_method" not in meta and "accuracy" not in meta


def test_nothing_is_sent_without_a_profiler(tmp_path, received, monkeypatch) -> None:
    monkeypatch.delenv(marks.ENV_VAR)
    _train(tmp_path, 1, [ProfileCallback()])
    received.stop()
    assert received.events == [] and received.metadata == {}


def test_missing_extra_names_the_install_command(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)
    monkeypatch.delitem(sys.modules, "helpers.collect.callbacks.hf")
    with pytest.raises(ImportError, match=r"pip install -e '\.\[hf\]'"):
        importlib.import_module("helpers.collect.callbacks.hf")


@pytest.mark.slow
def test_a_trainer_script_under_the_profiler_gives_a_run_folder_with_its_epochs(tmp_path):
    (tmp_path / "train_hf.py").write_text(SCRIPT)
    done = run_profiler(tmp_path, "--fake-gpus", "1", "--quiet", "--", sys.executable,
                        "train_hf.py", timeout=120)
    assert done.returncode == 0, done.stderr
    run = read_run(only_run(tmp_path))
    events = run.events[run.events["event"].isin(["epoch_start", "eval_start", "epoch_end"])]
    assert list(zip(events["event"], events["epoch"], strict=True)) == [
        (n, e) for e in (0, 1) for n in ("epoch_start", "eval_start", "epoch_end")]
    meta = run.metadata
    assert (meta["status"], meta["framework"], meta["epochs_trained"]) == ("ok", "transformers", 2)
    assert f"params {meta['params']}" in done.stdout
    assert meta["gflops_per_image"] > 0 and meta["images_per_epoch"] == TRAIN
    assert meta["profile"]["marks"]["refused_metadata_keys"] == []
