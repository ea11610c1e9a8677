"""Framework callbacks that send :mod:`helpers.marks` phase marks and run metadata.

* :class:`helpers.collect.callbacks.hf.ProfileCallback`: Hugging Face ``transformers.Trainer``
  (extra ``hf``: ``pip install -e '.[hf]'``);
* :class:`helpers.collect.callbacks.lightning.ProfileCallback`: PyTorch Lightning ``Trainer``
  (extra ``lightning``: ``pip install -e '.[lightning]'``).

Both do nothing unless a profiler runs the process (``python -m helpers profile -- ...`` sets
:data:`helpers.marks.ENV_VAR`); then they send ``epoch_start``/``eval_start``/``eval_end``/
``epoch_end`` for the epochs the framework runs (with its logged metrics in the events' info),
and metadata: framework and version, parameter count, forward FLOPs per sample (counted on the
first training batch), epochs planned and trained, samples per epoch, batch size and the final
metrics (docs/own-training.md#3-framework-callbacks). This module holds what both share; it
imports neither framework.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

#: Metric names (first match wins) read as the validation accuracy and macro-F1 (fractions 0-1),
#: sent as ``val_accuracy``/``val_f1`` in ``epoch_end`` and as ``accuracy``/``f1`` at the end.
ACCURACY_KEYS: tuple[str, ...] = ("val_accuracy", "eval_accuracy", "val_acc", "eval_acc",
                                  "accuracy", "acc")
F1_KEYS: tuple[str, ...] = ("val_f1", "eval_f1", "val_f1_macro", "eval_f1_macro", "f1")
#: Batch keys searched first for the tensor whose first dimension counts the samples.
SAMPLE_KEYS: tuple[str, ...] = ("input_ids", "pixel_values", "input_values", "inputs_embeds",
                                "input_features")


def missing_extra(module: str, extra: str, err: ImportError) -> ImportError:
    """The ImportError raised when an optional framework is not installed."""
    return ImportError(f"{module} needs the optional extra '{extra}', which is not installed "
                       f"({err}); install it with: pip install -e '.[{extra}]'")


def parameter_counts(model: nn.Module) -> dict[str, int]:
    """``params`` (all parameters, tied weights once) and ``params_trainable``."""
    params = list(model.parameters())
    return {"params": sum(p.numel() for p in params),
            "params_trainable": sum(p.numel() for p in params if p.requires_grad)}


def numeric(metrics: Mapping[str, Any] | None, skip: Iterable[str] = ()) -> dict[str, float]:
    """The finite scalar entries of ``metrics`` as floats (tensors and numpy scalars included),
    without the keys in ``skip``."""
    out: dict[str, float] = {}
    skipped = set(skip)
    for key, value in (metrics or {}).items():
        if key in skipped or isinstance(value, bool):
            continue
        if getattr(value, "ndim", 0) != 0 and getattr(value, "numel", lambda: 0)() != 1:
            continue
        try:
            number = float(value)
        except (TypeError, ValueError, RuntimeError):
            continue
        if math.isfinite(number):
            out[str(key)] = number
    return out


def _fraction(metrics: Mapping[str, float], keys: tuple[str, ...]) -> float | None:
    for key in keys:
        value = metrics.get(key)
        if value is not None and 0.0 <= value <= 1.0:
            return value
    return None


def with_standard_names(metrics: dict[str, float]) -> dict[str, float]:
    """``metrics`` plus ``val_accuracy``/``val_f1`` (the names the analysis reads in
    ``epoch_end``) where one of :data:`ACCURACY_KEYS`/:data:`F1_KEYS` holds a fraction."""
    out = dict(metrics)
    for name, keys in (("val_accuracy", ACCURACY_KEYS), ("val_f1", F1_KEYS)):
        value = _fraction(metrics, keys)
        if value is not None:
            out[name] = value
    return out


def final_metadata(metrics: dict[str, float], epochs_trained: int) -> dict[str, Any]:
    """Run metadata at the end of training: ``epochs_trained``, ``accuracy``/``f1`` (fractions,
    where the last metrics hold them) and ``final_metrics`` (all of them)."""
    out: dict[str, Any] = {"epochs_trained": epochs_trained, "final_metrics": metrics}
    for name, keys in (("accuracy", ACCURACY_KEYS), ("f1", F1_KEYS)):
        value = _fraction(metrics, keys)
        if value is not None:
            out[name] = value
    return out


def samples_in(batch: Any, depth: int = 0) -> int | None:
    """Samples in a batch: the first dimension of its first tensor (:data:`SAMPLE_KEYS` first in
    a mapping; lists, tuples and mappings searched in order); None where there is none."""
    if hasattr(batch, "shape") and hasattr(batch, "numel"):
        return int(batch.shape[0]) if len(batch.shape) > 0 else None
    if depth > 3:
        return None
    if isinstance(batch, Mapping):
        ordered = [batch[k] for k in SAMPLE_KEYS if k in batch] + list(batch.values())
    elif isinstance(batch, list | tuple):
        ordered = list(batch)
    else:
        return None
    for item in ordered:
        found = samples_in(item, depth + 1)
        if found is not None:
            return found
    return None


class FlopCount:
    """Forward FLOPs of one batch: ``torch.utils.flop_counter.FlopCounterMode`` between
    :meth:`start` and :meth:`stop` (matrix products and convolutions; multiply-add = 2 FLOPs),
    as in the training driver (helpers.collect.training). The result goes to ``send`` as
    metadata: ``flops_per_forward`` (the batch), ``flops_per_image`` and ``gflops_per_image``
    (per sample, whatever a sample is) and ``flops_method``; or only ``flops_method`` saying
    why nothing was counted."""

    def __init__(self, send: Callable[..., None], where: str) -> None:
        self._send = send
        self._where = where
        self._mode: Any = None
        self._samples: int | None = None
        self.done = False

    @property
    def counting(self) -> bool:
        """Whether the counter is running."""
        return self._mode is not None

    def start(self, samples: int | None) -> None:
        """Start counting a batch of ``samples`` (once; later calls do nothing)."""
        if self.done or self._mode is not None:
            return
        if not samples:
            self._finish(None, "unmeasured: no tensor with a batch dimension in the batch")
            return
        from torch.utils.flop_counter import FlopCounterMode

        mode = FlopCounterMode(display=False)
        try:
            mode.__enter__()
        except Exception as err:  # e.g. under another dispatch mode: record why, train on
            self._finish(None, f"unmeasured: FlopCounterMode failed: {type(err).__name__}: {err}")
            return
        self._mode, self._samples = mode, samples

    def stop(self) -> None:
        """Stop counting and send the result."""
        mode, self._mode = self._mode, None
        if mode is None:
            return
        mode.__exit__(None, None, None)
        flops = int(mode.get_total_flops())
        if flops <= 0:
            self._finish(None, "unmeasured: FlopCounterMode counted no matmul or convolution "
                               f"in {self._where} (ran in another thread or compiled?)")
            return
        self._finish(flops, f"torch.utils.flop_counter.FlopCounterMode, {self._where}, "
                            f"batch of {self._samples}")

    def abandon(self, reason: str) -> None:
        """Stop without a result (the counted span was not a forward pass) and say why."""
        mode, self._mode = self._mode, None
        if mode is not None:
            mode.__exit__(None, None, None)
        if not self.done:
            self._finish(None, f"unmeasured: {reason}")

    def _finish(self, flops: int | None, method: str) -> None:
        self.done = True
        if flops is None or not self._samples:
            self._send(flops_method=method)
            return
        per_sample = flops / self._samples
        self._send(flops_per_forward=flops, flops_per_image=per_sample,
                   gflops_per_image=per_sample / 1e9, flops_method=method)


def count_first_forward(module: nn.Module, counter: FlopCount) -> Callable[[], None]:
    """Count the FLOPs of ``module``'s next forward call with ``counter`` (hooks removed after
    it). Returns a function that removes the hooks (and stops a count left running)."""
    handles: list[Any] = []

    def remove() -> None:
        for handle in handles:
            handle.remove()
        handles.clear()
        if counter.counting:
            counter.abandon("the forward pass did not return")

    def before(_module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        counter.start(samples_in(kwargs) or samples_in(args))

    def after(_module: Any, _args: Any, _kwargs: Any, _output: Any) -> None:
        counter.stop()
        remove()

    handles.append(module.register_forward_pre_hook(before, with_kwargs=True))
    handles.append(module.register_forward_hook(after, with_kwargs=True))
    return remove


def planned_epochs(value: float | int | None) -> int | None:
    """An epoch count worth recording (frameworks use -1, None or sys.maxsize for 'no limit')."""
    if value is None or not math.isfinite(float(value)) or not 0 < value < 1e6:
        return None
    return int(math.ceil(value))
