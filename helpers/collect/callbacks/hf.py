"""Hugging Face ``transformers.Trainer`` callback that sends :mod:`helpers.marks` marks.

::

    from helpers.collect.callbacks.hf import ProfileCallback

    trainer = Trainer(model=model, args=args, train_dataset=train, eval_dataset=val,
                      callbacks=[ProfileCallback()])
    trainer.train()

and run the script under the profiler: ``python -m helpers profile -- python train.py``.
Without a profiler the callback does nothing.

What it sends (docs/own-training.md#3-framework-callbacks):

* ``epoch_start`` at each epoch's first step; at its end, ``eval_start`` when the Trainer
  evaluates then (``eval_strategy="epoch"``), ``eval_end`` with the evaluation metrics, and
  ``epoch_end`` after them (so an epoch spans training and its evaluation, as in the raw format),
  with the last logged training metrics (``loss``, ``learning_rate``, ...) and the evaluation's
  (``eval_loss``, ``eval_accuracy``, ... and ``val_accuracy``/``val_f1`` for the analysis). When
  the epoch's training loss is logged at its end, ``epoch_end`` waits for that log. An
  evaluation at other times (``eval_strategy="steps"``, ``trainer.evaluate()``) is one
  ``evaluate`` event at its end with the metrics: the Trainer has no hook where it begins.
* metadata at ``on_train_begin``: ``framework`` (``transformers``), ``framework_version``,
  ``torch_version``, ``model_class``, ``params``, ``params_trainable``, ``epochs_planned``,
  ``max_steps``, ``batch_size`` (samples per step on all processes: per-device batch x
  processes), ``gradient_accumulation_steps``, ``train_size``, ``images_per_epoch`` (samples per
  epoch), ``device``, ``seed``, ``learning_rate``; ``val_size`` at the first evaluation; forward
  FLOPs of the first training batch (:class:`helpers.collect.callbacks.FlopCount`); and at
  ``on_train_end``: ``epochs_trained``, ``accuracy``/``f1`` where the last evaluation has them,
  ``final_metrics``, ``global_step`` and ``hf_total_flos`` (the Trainer's own estimate,
  6 x parameters x tokens, forward and backward).
"""

from __future__ import annotations

import math
from typing import Any

try:
    import transformers
    from transformers import TrainerCallback
except ImportError as _err:  # optional extra
    from helpers.collect.callbacks import missing_extra

    raise missing_extra("helpers.collect.callbacks.hf", "hf", _err) from _err

from helpers import marks
from helpers.collect.callbacks import (
    FlopCount,
    count_first_forward,
    final_metadata,
    numeric,
    parameter_counts,
    planned_epochs,
    with_standard_names,
)

#: Logged keys that are not metrics of the epoch.
_NOT_METRICS = ("epoch", "total_flos")


def _dataset_size(dataloader: Any) -> int | None:
    dataset = getattr(dataloader, "dataset", None)
    try:
        return len(dataset) if dataset is not None else None
    except TypeError:  # an iterable dataset has no length
        return None


class ProfileCallback(TrainerCallback):
    """Sends epoch and evaluation marks and run metadata to the profiler (module docstring).

    Args:
        count_flops: count the forward FLOPs of the first training batch (one forward pass
            under ``FlopCounterMode``; no extra computation).
    """

    def __init__(self, count_flops: bool = True) -> None:
        self.count_flops = count_flops
        self._active = False
        self._next_epoch = 0
        self._epoch: int | None = None
        self._pending: int | None = None  # epoch whose epoch_end waits for 'eval' or 'log'
        self._waits_for: str | None = None
        self._logs: dict[str, float] = {}
        self._eval: dict[str, float] = {}
        self._epochs_done = 0
        self._val_size_sent = False
        self._remove_hooks: Any = None

    # -- training ------------------------------------------------------------------------
    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None,
                       train_dataloader: Any = None, **kwargs: Any) -> None:
        self._active = marks.active()
        if not self._active:
            return
        self._next_epoch = int(math.floor((state.epoch or 0.0) + 1e-6))
        self._epoch = self._pending = self._waits_for = None
        self._logs, self._eval, self._epochs_done = {}, {}, 0
        marks.metadata(**self._run_metadata(args, state, model, train_dataloader))
        if self.count_flops and model is not None:
            counter = FlopCount(marks.metadata, "first training forward")
            self._remove_hooks = count_first_forward(model, counter)

    def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not self._active:
            return
        self._flush()
        self._epoch = self._next_epoch
        self._next_epoch += 1
        marks.epoch_start(self._epoch)

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not self._active or self._epoch is None:
            return
        self._pending = self._epoch
        # DefaultFlowCallback (first in the list) has set what follows this epoch's end
        self._waits_for = ("eval" if control.should_evaluate else
                           "log" if control.should_log else None)
        if self._waits_for == "eval":
            marks.eval_start(self._epoch)
        elif self._waits_for is None:
            self._flush()

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None,
               **kwargs: Any) -> None:
        if not self._active:
            return
        values = numeric(logs, skip=_NOT_METRICS)
        if not any(k.startswith("eval_") for k in values):
            self._logs.update(values)
        if self._pending is not None and self._waits_for == "log" and "loss" in values:
            self._flush()

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: Any = None,
                    eval_dataloader: Any = None, **kwargs: Any) -> None:
        if not self._active:
            return
        values = numeric(metrics, skip=_NOT_METRICS)
        self._eval = values
        if not self._val_size_sent:
            self._val_size_sent = True
            size = _dataset_size(eval_dataloader)
            if size is not None:
                marks.metadata(val_size=size)
        if self._pending is not None and self._waits_for == "eval":
            marks.eval_end(self._pending, **values)
            self._flush()
        else:
            marks.mark("evaluate", epoch=self._epoch, **with_standard_names(values))

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not self._active:
            return
        self._flush()
        if self._remove_hooks is not None:
            self._remove_hooks()
            self._remove_hooks = None
        final = {**self._logs, **self._eval}
        marks.metadata(**final_metadata(final, self._epochs_done),
                       global_step=int(state.global_step),
                       hf_total_flos=float(state.total_flos or 0.0))

    # -- helpers -------------------------------------------------------------------------
    def _flush(self) -> None:
        """Send the pending ``epoch_end`` with the epoch's training and evaluation metrics."""
        if self._pending is None:
            return
        epoch, self._pending, self._waits_for = self._pending, None, None
        metrics = {k: v for k, v in self._logs.items() if k != "train_loss"}
        marks.epoch_end(epoch, **with_standard_names({**metrics, **self._eval}))
        self._epochs_done += 1

    @staticmethod
    def _run_metadata(args: Any, state: Any, model: Any, train_dataloader: Any
                      ) -> dict[str, Any]:
        import torch

        world = max(1, int(getattr(args, "world_size", 1) or 1))
        batch = int(args.train_batch_size) * world
        meta: dict[str, Any] = {
            "framework": "transformers", "framework_version": transformers.__version__,
            "torch_version": torch.__version__, "batch_size": batch,
            "gradient_accumulation_steps": int(args.gradient_accumulation_steps),
            "device": str(args.device), "seed": int(args.seed),
            "learning_rate": float(args.learning_rate),
        }
        epochs = planned_epochs(getattr(state, "num_train_epochs", None))
        if epochs is not None:
            meta["epochs_planned"] = epochs
        if getattr(state, "max_steps", 0) and state.max_steps > 0:
            meta["max_steps"] = int(state.max_steps)
        if model is not None:
            meta["model_class"] = type(model).__name__
            meta.update(parameter_counts(model))
        size = _dataset_size(train_dataloader)
        if size is not None:
            meta["train_size"] = size
            meta["images_per_epoch"] = (size // batch) * batch if args.dataloader_drop_last \
                else size
        return meta
