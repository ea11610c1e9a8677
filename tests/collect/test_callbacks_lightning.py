"""PyTorch Lightning callback: marks for the epochs Lightning ran (validation inside them, the
sanity check left out) and run metadata, received by the profiler's receiver from a tiny real
training run on the CPU."""

from __future__ import annotations

import importlib
import sys

import pytest

pytest.importorskip("pytorch_lightning")
import pytorch_lightning as pl  # noqa: E402
import torch  # noqa: E402
from profiled import only_run, run_profiler  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from helpers import marks  # noqa: E402
from helpers.collect.callbacks.lightning import ProfileCallback  # noqa: E402
from helpers.readers.project import read_run  # noqa: E402

TRAIN, VAL, BATCH = 40, 16, 8
#: A researcher's Lightning script with the callback (the profiled command of the end-to-end
#: test).
SCRIPT = """
import pytorch_lightning as pl
import torch
from torch import nn

from helpers.collect.callbacks.lightning import ProfileCallback


class Classifier(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_acc", (self(x).argmax(-1) == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def loader(n, seed):
    x = torch.randn(n, 8, generator=torch.Generator().manual_seed(seed))
    return torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, (x[:, 0] > 0).long()), batch_size=8)


torch.manual_seed(0)
model = Classifier()
trainer = pl.Trainer(max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                     enable_progress_bar=False, enable_model_summary=False,
                     callbacks=[ProfileCallback()])
trainer.fit(model, loader(40, 0), loader(16, 1))
print("params", sum(p.numel() for p in model.parameters()))
"""


class Classifier(pl.LightningModule):
    """A two-layer perceptron; ``training_step`` calls ``self.net`` (not ``self``)."""

    def __init__(self, stop_after: int | None = None) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
        self.stop_after = stop_after

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.cross_entropy(self.net(x), y)
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        out = self.net(x)
        self.log("val_loss", nn.functional.cross_entropy(out, y))
        self.log("val_acc", (out.argmax(-1) == y).float().mean())

    def on_train_epoch_end(self) -> None:
        if self.stop_after is not None and self.current_epoch == self.stop_after:
            self.trainer.should_stop = True  # as early stopping does

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _loader(n: int, seed: int) -> torch.utils.data.DataLoader:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=gen)
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, (x[:, 0] > 0).long()),
                                       batch_size=BATCH)


def _fit(tmp_path, epochs: int, callback: ProfileCallback, **module) -> Classifier:
    torch.manual_seed(0)
    model = Classifier(**module)
    trainer = pl.Trainer(max_epochs=epochs, accelerator="cpu", logger=False,
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path,
                         callbacks=[callback])
    trainer.fit(model, _loader(TRAIN, 0), _loader(VAL, 1))
    return model


def test_epochs_validation_and_metadata_reach_the_profiler(tmp_path, received) -> None:
    model = _fit(tmp_path, 2, ProfileCallback())
    received.stop()
    per_epoch = ["epoch_start", "eval_start", "eval_end", "epoch_end"]
    assert received.names() == [(n, e) for e in (0, 1) for n in per_epoch]  # no sanity check
    ends = received.info("epoch_end")
    assert all({"train_loss", "val_loss", "val_acc", "val_accuracy"} <= set(i) for i in ends)
    assert ends[0]["val_accuracy"] == ends[0]["val_acc"]
    assert received.info("eval_end")[1]["val_loss"] == ends[1]["val_loss"]
    meta = received.metadata
    assert meta["params"] == sum(p.numel() for p in model.parameters())
    assert meta["framework"] == "pytorch_lightning"
    assert meta["epochs_planned"] == 2 and meta["epochs_trained"] == 2
    assert (meta["train_size"], meta["images_per_epoch"], meta["val_size"]) == (TRAIN, TRAIN, VAL)
    assert meta["batch_size"] == BATCH
    assert meta["accuracy"] == ends[-1]["val_acc"]
    with FlopCounterMode(display=False) as counter:  # one batch through the network
        model.net(torch.zeros(BATCH, 8))
    assert counter.get_total_flops() > 0
    assert meta["flops_per_forward"] == counter.get_total_flops()
    assert meta["gflops_per_image"] == pytest.approx(counter.get_total_flops() / BATCH / 1e9)


def test_early_stop_sends_only_the_epochs_run(tmp_path, received) -> None:
    _fit(tmp_path, 5, ProfileCallback(count_flops=False), stop_after=1)
    received.stop()
    assert [e for n, e in received.names() if n == "epoch_end"] == [0, 1]
    assert [e for n, e in received.names() if n == "epoch_start"] == [0, 1]
    meta = received.metadata
    assert meta["epochs_planned"] == 5 and meta["epochs_trained"] == 2
    assert "flops_method" not in meta


class ManualWithoutBackward(Classifier):
    """Manual optimisation that calls ``loss.backward()`` itself (not ``manual_backward``)."""

    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False

    def training_step(self, batch, batch_idx):
        x, y = batch
        self.optimizers().zero_grad()
        nn.functional.cross_entropy(self.net(x), y).backward()
        self.optimizers().step()


def test_flops_that_cannot_be_told_apart_are_unmeasured_not_zero(tmp_path, received) -> None:
    trainer = pl.Trainer(max_epochs=1, accelerator="cpu", logger=False,
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path,
                         callbacks=[ProfileCallback()])
    trainer.fit(ManualWithoutBackward(), _loader(TRAIN, 0), _loader(VAL, 1))
    received.stop()
    meta = received.metadata
    assert meta["flops_method"] == ("unmeasured: no backward pass seen in the first training "
                                    "batch")
    assert not {"flops_per_forward", "gflops_per_image"} & set(meta)
    assert meta["epochs_trained"] == 1


def test_nothing_is_sent_without_a_profiler(tmp_path, received, monkeypatch) -> None:
    monkeypatch.delenv(marks.ENV_VAR)
    _fit(tmp_path, 1, ProfileCallback())
    received.stop()
    assert received.events == [] and received.metadata == {}


def test_missing_extra_names_the_install_command(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "pytorch_lightning", None)
    monkeypatch.delitem(sys.modules, "helpers.collect.callbacks.lightning")
    with pytest.raises(ImportError, match=r"pip install -e '\.\[lightning\]'"):
        importlib.import_module("helpers.collect.callbacks.lightning")


@pytest.mark.slow
def test_a_lightning_script_under_the_profiler_gives_a_run_folder_with_its_epochs(tmp_path):
    (tmp_path / "train_pl.py").write_text(SCRIPT)
    done = run_profiler(tmp_path, "--fake-gpus", "1", "--quiet", "--", sys.executable,
                        "train_pl.py", timeout=120)
    assert done.returncode == 0, done.stderr
    run = read_run(only_run(tmp_path))
    events = run.events[run.events["event"].isin(["epoch_start", "eval_start", "epoch_end"])]
    assert list(zip(events["event"], events["epoch"], strict=True)) == [
        (n, e) for e in (0, 1) for n in ("epoch_start", "eval_start", "epoch_end")]
    ends = run.events.loc[run.events["event"] == "epoch_end", "info"]
    assert all(0 <= info["val_accuracy"] <= 1 for info in ends)
    meta = run.metadata
    assert (meta["status"], meta["framework"], meta["epochs_trained"]) == (
        "ok", "pytorch_lightning", 2)
    assert f"params {meta['params']}" in done.stdout
    assert meta["gflops_per_image"] > 0 and meta["images_per_epoch"] == TRAIN
    assert meta["accuracy"] == ends.iloc[-1]["val_accuracy"]
    assert meta["profile"]["marks"]["refused_metadata_keys"] == []
