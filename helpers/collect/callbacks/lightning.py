"""PyTorch Lightning callback that sends :mod:`helpers.marks` marks.

::

    from helpers.collect.callbacks.lightning import ProfileCallback

    trainer = pl.Trainer(max_epochs=10, callbacks=[ProfileCallback()])
    trainer.fit(model, train_loader, val_loader)

and run the script under the profiler: ``python -m helpers profile -- python train.py``.
Without a profiler the callback does nothing. It is a ``pytorch_lightning.Callback`` (the
``pytorch-lightning`` package, extra ``lightning``); a ``lightning.pytorch`` Trainer needs a
callback of that package instead.

What it sends (docs/own-training.md#3-framework-callbacks):

* ``epoch_start`` at ``on_train_epoch_start``; ``eval_start``/``eval_end`` around each
  validation run inside training (Lightning validates before the training epoch ends, so an
  epoch spans training and validation, as in the raw format; the sanity check before training
  sends nothing); ``epoch_end`` at ``on_train_epoch_end``. ``eval_end`` and ``epoch_end`` carry
  ``trainer.callback_metrics`` (what the module logged with ``self.log``), with
  ``val_accuracy``/``val_f1`` for the analysis where a metric named in
  :data:`helpers.collect.callbacks.ACCURACY_KEYS`/``F1_KEYS`` holds a fraction.
* metadata at ``on_train_start``: ``framework`` (``pytorch_lightning``), ``framework_version``,
  ``torch_version``, ``model_class``, ``params``, ``params_trainable``, ``epochs_planned``,
  ``max_steps``, ``batch_size`` (samples per step on all processes), ``accumulate_grad_batches``,
  ``train_size``, ``images_per_epoch`` (samples per epoch), ``device``, ``precision``,
  ``world_size``; ``val_size`` at the first validation; forward FLOPs of the first training
  batch, counted from ``on_train_batch_start`` to ``on_before_backward`` (the forward pass and
  the loss); at ``on_train_end``: ``epochs_trained``, ``accuracy``/``f1`` where the last metrics
  have them and ``final_metrics``.
"""

from __future__ import annotations

from typing import Any

try:
    import pytorch_lightning as pl
except ImportError as _err:  # optional extra
    from helpers.collect.callbacks import missing_extra

    raise missing_extra("helpers.collect.callbacks.lightning", "lightning", _err) from _err

from helpers import marks
from helpers.collect.callbacks import (
    FlopCount,
    final_metadata,
    numeric,
    parameter_counts,
    planned_epochs,
    samples_in,
    with_standard_names,
)


def _loaders(value: Any) -> list[Any]:
    """Lightning's dataloader attribute (one loader, a list, a dict or a CombinedLoader) as a
    list of loaders."""
    if value is None:
        return []
    value = getattr(value, "iterables", value)  # CombinedLoader
    if isinstance(value, dict):
        return list(value.values())
    return list(value) if isinstance(value, list | tuple) else [value]


def _size(loader: Any) -> int | None:
    try:
        return len(loader.dataset)
    except (AttributeError, TypeError):
        return None


class ProfileCallback(pl.Callback):
    """Sends epoch and validation marks and run metadata to the profiler (module docstring).

    Args:
        count_flops: count the forward FLOPs of the first training batch (under
            ``FlopCounterMode``; no extra computation).
    """

    def __init__(self, count_flops: bool = True) -> None:
        self.count_flops = count_flops
        self._active = False
        self._epochs_done = 0
        self._val_size_sent = False
        self._flops: FlopCount | None = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._active = marks.active()
        if not self._active:
            return
        self._epochs_done, self._val_size_sent = 0, False
        self._flops = (FlopCount(marks.metadata, "first training batch, forward and loss")
                       if self.count_flops else None)
        marks.metadata(**self._run_metadata(trainer, pl_module))

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._active:
            marks.epoch_start(trainer.current_epoch)

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                             batch: Any, batch_idx: int) -> None:
        if self._active and self._flops is not None and not self._flops.done:
            self._flops.start(samples_in(batch))

    def on_before_backward(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           loss: Any) -> None:
        if self._flops is not None and self._flops.counting:
            self._flops.stop()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        if self._flops is not None and self._flops.counting:
            self._flops.abandon("no backward pass seen in the first training batch")

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._active and not trainer.sanity_checking:
            marks.eval_start(trainer.current_epoch)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._active or trainer.sanity_checking:
            return
        marks.eval_end(trainer.current_epoch,
                       **with_standard_names(numeric(trainer.callback_metrics)))
        if not self._val_size_sent:  # the validation loaders exist once validation ran
            self._val_size_sent = True
            sizes = [_size(v) for v in _loaders(trainer.val_dataloaders)]
            if sizes and None not in sizes:
                marks.metadata(val_size=sum(sizes))

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._active:
            return
        marks.epoch_end(trainer.current_epoch,
                        **with_standard_names(numeric(trainer.callback_metrics)))
        self._epochs_done += 1

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._active:
            return
        if self._flops is not None and self._flops.counting:
            self._flops.abandon("training ended inside the first batch")
        marks.metadata(**final_metadata(numeric(trainer.callback_metrics), self._epochs_done))

    @staticmethod
    def _run_metadata(trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, Any]:
        import torch

        world = max(1, int(trainer.world_size))
        meta: dict[str, Any] = {
            "framework": "pytorch_lightning", "framework_version": pl.__version__,
            "torch_version": torch.__version__, "model_class": type(pl_module).__name__,
            **parameter_counts(pl_module),
            "accumulate_grad_batches": int(trainer.accumulate_grad_batches),
            "device": str(pl_module.device), "precision": str(trainer.precision),
            "world_size": world,
        }
        epochs = planned_epochs(trainer.max_epochs)
        if epochs is not None:
            meta["epochs_planned"] = epochs
        if trainer.max_steps and trainer.max_steps > 0:
            meta["max_steps"] = int(trainer.max_steps)
        train = _loaders(trainer.train_dataloader)
        if len(train) == 1 and getattr(train[0], "batch_size", None):
            loader = train[0]
            batch = int(loader.batch_size) * world
            meta["batch_size"] = batch
            size = _size(loader)
            if size is not None:
                meta["train_size"] = size
                full = len(loader)
                batches = int(min(trainer.num_training_batches, full))
                whole_epoch = batches == full and world == 1 and not loader.drop_last
                meta["images_per_epoch"] = size if whole_epoch else batches * batch
        return meta
