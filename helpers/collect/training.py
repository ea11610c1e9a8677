"""Training driver for the collect stage: models, data, metrics, FLOPs, and one measured run.

``train_run(spec, run_dir, sampler_kwargs)`` trains one model while
:class:`helpers.collect.sampler.Sampler`
records power and utilisation, and marks the phases the later stages cut the samples by::

    run_start (sampler) -> idle_start .. idle_end (idle baseline, model and data resident)
    -> warmup_start (a few un-applied batches) -> per epoch: epoch_start -> eval_start -> epoch_end
    -> run_end (sampler)

Models are torchvision architectures built by name with ``weights=None`` (never downloads).
Data is held as tensors on the training device at a small base resolution and each batch is
resized to ``input_size_px`` there (bilinear), so no loader process competes with the measurement:

* ``synthetic``: seeded, class-dependent smooth colour patterns plus Gaussian noise; learnable,
  so accuracy and F1 mean something (chance is ``1 / num_classes``).
* ``digits``: scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes, offline),
  grey levels copied to three channels.

FLOPs are counted with ``torch.utils.flop_counter.FlopCounterMode`` on a meta-device copy of the
model (no memory, no compute): one forward pass of one batch, and that divided by the batch size.
The counter counts a multiply-add as 2 FLOPs and counts matrix products and convolutions only
(no bias adds, activations or normalisation).

Live STEP forecast (``RunSpec.step_forecast``, on by default): each epoch's energy is the run's
energy so far (:meth:`helpers.collect.sampler.Sampler.energy_so_far_j`) at its ``epoch_end`` mark
minus that at its ``epoch_start`` mark, and feeds
:class:`helpers.estimate.forecaster.StepForecaster` for the
planned epochs. The target is the training window's energy (docs/methods.md#energy-windows):
the warm-up batches' energy (``warmup_start`` to the first ``epoch_start``) is added to the
forecast as observed. Once the stabilisation point is passed, every ``epoch_end`` event carries
the forecast of the run's training energy with its interval, one line per epoch is printed, e.g.
``epoch 7/20: STEP forecast 1.23 kJ [1.19, 1.27] (stable since epoch 4)`` (epochs counted from 1
in that line, from 0 everywhere else), and ``metadata.step_forecast`` records forecast against
actual at the end (:meth:`_LiveForecast.summary`).
"""

from __future__ import annotations

import math
import random
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def _vit(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Wrap a torchvision ViT builder so that it accepts the run's input size."""

    def build(num_classes: int, input_size_px: int) -> nn.Module:
        return builder(weights=None, num_classes=num_classes, image_size=input_size_px)

    return build


def _plain(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Wrap a torchvision builder whose classifier adapts to any input size."""

    def build(num_classes: int, input_size_px: int) -> nn.Module:
        del input_size_px  # adaptive pooling makes these size-agnostic
        return builder(weights=None, num_classes=num_classes)

    return build


tvm = torchvision.models
#: Architecture name -> ``build(num_classes, input_size_px)``. Add a torchvision model here.
ARCHITECTURES: dict[str, Callable[[int, int], nn.Module]] = {
    "mobilenet_v2": _plain(tvm.mobilenet_v2),
    "mobilenet_v3_small": _plain(tvm.mobilenet_v3_small),
    "mobilenet_v3_large": _plain(tvm.mobilenet_v3_large),
    "resnet18": _plain(tvm.resnet18),
    "resnet50": _plain(tvm.resnet50),
    "vgg16": _plain(tvm.vgg16),
    "vgg16_bn": _plain(tvm.vgg16_bn),
    "efficientnet_b0": _plain(tvm.efficientnet_b0),
    "squeezenet1_1": _plain(tvm.squeezenet1_1),
    "shufflenet_v2_x0_5": _plain(tvm.shufflenet_v2_x0_5),
    "vit_b_16": _vit(tvm.vit_b_16),
}

#: Default lowest BatchNorm momentum (see :func:`build_model`).
MIN_BN_MOMENTUM = 0.3
#: Base resolution (px) the synthetic images are generated at (smaller input sizes use theirs).
SYNTHETIC_BASE_PX = 32
#: Side (px) of the random colour grid each synthetic class pattern is smoothed from.
SYNTHETIC_PATTERN_PX = 4
#: Shares of the planned epochs after which ``metadata.step_forecast`` keeps the live forecast
#: (as notebook 06's ``forecaster_coverage``: round(share x N) epochs observed, >= 1).
FORECAST_CHECKPOINTS: dict[str, float] = {"pct20": 0.2, "pct50": 0.5}


@dataclass(frozen=True)
class RunSpec:
    """Everything one training run needs; JSON-serialisable (``asdict``) for the grid's child.

    Attributes:
        architecture: key of :data:`ARCHITECTURES`.
        environment: environment label (raw folder name, e.g. ``cpu-local``).
        run: run number within (environment, architecture), from 0.
        dataset: ``synthetic`` or ``digits`` (see :data:`DATASETS`).
        num_classes: classes of the synthetic data (digits always has 10).
        train_size: training images (one epoch sees ``train_size // batch_size`` full batches).
        val_size: validation images.
        input_size_px: side of the square images fed to the model (px).
        batch_size: images per training batch (and per evaluation batch).
        epochs: epochs planned (early stopping may end sooner).
        learning_rate: optimiser step size.
        optimizer: ``adam`` or ``sgd`` (momentum 0.9).
        early_stopping_patience: stop after this many epochs without a validation-loss
            improvement larger than ``early_stopping_min_delta``; ``None`` disables it.
        early_stopping_min_delta: minimal validation-loss decrease that counts as improvement.
        seed: seed of model initialisation and batch order.
        data_seed: seed of the synthetic data and the train/validation split.
        synthetic_noise_std: noise standard deviation of the synthetic images (pattern std is 1).
        bn_momentum_min: lowest BatchNorm momentum (see :func:`build_model`); ``None`` keeps
            torchvision's.
        device: ``auto`` (CUDA if available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``.
        num_threads: ``torch.set_num_threads`` value; ``None`` leaves torch's default.
        flush_denormal: ``torch.set_flush_denormal`` (CPU): flush subnormal floats to zero.
            Subnormal arithmetic is ~40 % slower on x86 and comes and goes as weights train,
            which made CPU epoch times (and energies) jump mid-run; on by default.
        idle_s: idle-baseline seconds (model and data loaded, nothing running).
        tail_s: recorded idle seconds after the last epoch (``tail_start`` to ``run_end``): the
            power decay after training, and a run window that ends in steady state.
        warmup_batches: forward+backward batches before epoch 0 whose updates are discarded.
        progress: show a tqdm bar over epochs (stderr).
        step_forecast: forecast the run's training energy during training with STEP (module
            docstring); ``False`` records no forecast.
        forecast_window: epochs whose energies must agree for the stabilisation point (>= 2).
        forecast_cv_tol: largest coefficient of variation of those epochs' energies.
        forecast_min_epoch: first epoch that can be the stabilisation point (epoch 0 holds
            one-off start-up work).
        forecast_confidence: coverage of the forecast interval (t prediction interval).
        forecast_systematic_rel: drift allowance added to the interval, as a fraction of the
            forecast energy still to come (notebook 06 uses 0.01).
    """

    architecture: str
    environment: str = "cpu-local"
    run: int = 0
    dataset: str = "synthetic"
    num_classes: int = 10
    train_size: int = 256
    val_size: int = 128
    input_size_px: int = 32
    batch_size: int = 32
    epochs: int = 20
    learning_rate: float = 1e-3
    optimizer: str = "adam"
    early_stopping_patience: int | None = None
    early_stopping_min_delta: float = 0.0
    seed: int = 0
    data_seed: int = 0
    synthetic_noise_std: float = 2.0
    bn_momentum_min: float | None = MIN_BN_MOMENTUM
    device: str = "auto"
    num_threads: int | None = None
    flush_denormal: bool = True
    idle_s: float = 2.0
    tail_s: float = 0.0
    warmup_batches: int = 2
    progress: bool = False
    step_forecast: bool = True
    forecast_window: int = 3
    forecast_cv_tol: float = 0.05
    forecast_min_epoch: int = 1
    forecast_confidence: float = 0.95
    forecast_systematic_rel: float = 0.01

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-serialisable)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSpec:
        """Build from :meth:`to_dict` output; unknown keys raise ``TypeError``."""
        return cls(**data)


@dataclass(frozen=True)
class ImageData:
    """A dataset held as tensors at base resolution (``x``: N x 3 x base_px x base_px)."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    num_classes: int
    base_px: int

    @property
    def train_size(self) -> int:
        """Training images."""
        return int(self.y_train.shape[0])

    @property
    def val_size(self) -> int:
        """Validation images."""
        return int(self.y_val.shape[0])


@dataclass(frozen=True)
class EpochResult:
    """Metrics of one epoch (losses are mean cross-entropy per image, nats)."""

    epoch: int
    train_loss: float
    val_loss: float
    val_accuracy: float
    val_f1: float
    duration_s: float


@dataclass
class RunResult:
    """Outcome of :func:`train_run` (also recorded in the run's ``metadata.json``)."""

    run_dir: Path
    status: str
    device: str
    epochs_planned: int
    epochs_trained: int
    stopped_early: bool
    accuracy: float
    f1: float
    flops_per_forward: int
    flops_per_image: float
    params: int
    training_duration_s: float
    epochs: list[EpochResult] = field(default_factory=list)


def build_model(architecture: str, num_classes: int, input_size_px: int,
                bn_momentum_min: float | None = MIN_BN_MOMENTUM) -> nn.Module:
    """Build an untrained torchvision model (``weights=None``) by name.

    BatchNorm momentum is raised to at least ``bn_momentum_min`` (``None``: torchvision's
    values). Short runs from scratch need it: the running statistics keep the huge activation
    variances of the first steps for a long time (torchvision's 0.1, and 0.01 in MobileNetV3 and
    EfficientNet, are tuned for long ImageNet schedules), and evaluation then predicts one class
    for a dozen epochs although training loss is near 0. Raises ``ValueError`` for an unknown
    name.
    """
    try:
        builder = ARCHITECTURES[architecture]
    except KeyError:
        raise ValueError(
            f"unknown architecture {architecture!r}; known: {', '.join(sorted(ARCHITECTURES))}"
        ) from None
    model = builder(num_classes, input_size_px)
    if bn_momentum_min is not None:
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.momentum is not None:
                module.momentum = max(module.momentum, bn_momentum_min)
    return model


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_flops(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """FLOPs of one forward pass of a batch of ``input_shape`` (N x C x H x W), counted by
    ``FlopCounterMode`` (multiply-add = 2 FLOPs; matmuls and convolutions only).

    The model runs in eval mode without gradients on whatever device its parameters are on; use
    :func:`count_model_flops` to count on a meta-device copy instead.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    x = torch.zeros(input_shape, device=device)
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


def count_model_flops(architecture: str, num_classes: int, input_size_px: int,
                      batch_size: int) -> int:
    """FLOPs of one forward pass of one batch of ``architecture``, counted on the meta device
    (no allocation, no compute)."""
    with torch.device("meta"):
        model = build_model(architecture, num_classes, input_size_px)
    return count_flops(model, (batch_size, 3, input_size_px, input_size_px))


def _synthetic(spec: RunSpec) -> ImageData:
    """Class-dependent smooth colour patterns plus noise (seeded by ``spec.data_seed``)."""
    gen = torch.Generator().manual_seed(spec.data_seed)
    base_px = min(spec.input_size_px, SYNTHETIC_BASE_PX)
    grid = torch.randn(spec.num_classes, 3, SYNTHETIC_PATTERN_PX, SYNTHETIC_PATTERN_PX,
                       generator=gen)
    patterns = F.interpolate(grid, size=(base_px, base_px), mode="bilinear",
                             align_corners=False)
    patterns = (patterns - patterns.mean()) / patterns.std()

    def draw(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.arange(n) % spec.num_classes
        y = y[torch.randperm(n, generator=gen)]
        noise = torch.randn(n, 3, base_px, base_px, generator=gen) * spec.synthetic_noise_std
        return patterns[y] + noise, y

    x_train, y_train = draw(spec.train_size)
    x_val, y_val = draw(spec.val_size)
    return ImageData("synthetic", x_train, y_train, x_val, y_val, spec.num_classes, base_px)


def _digits(spec: RunSpec) -> ImageData:
    """scikit-learn's 8x8 digits, shuffled by ``spec.data_seed`` and split train/validation."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    n = spec.train_size + spec.val_size
    if n > len(digits.target):
        raise ValueError(f"digits has {len(digits.target)} images; asked for {n} "
                         f"(train_size {spec.train_size} + val_size {spec.val_size})")
    order = np.random.default_rng(spec.data_seed).permutation(len(digits.target))[:n]
    images = torch.tensor(digits.images[order] / 16.0, dtype=torch.float32)
    x = images.unsqueeze(1).expand(-1, 3, -1, -1).contiguous()
    y = torch.tensor(digits.target[order], dtype=torch.long)
    tr = spec.train_size
    return ImageData("digits", x[:tr], y[:tr], x[tr:], y[tr:], 10, 8)


#: Dataset name -> loader. Add a dataset here (it must return base-resolution tensors).
DATASETS: dict[str, Callable[[RunSpec], ImageData]] = {
    "synthetic": _synthetic,
    "digits": _digits,
}


def load_data(spec: RunSpec) -> ImageData:
    """Load the run's dataset, standardised per channel with training-set statistics."""
    try:
        loader = DATASETS[spec.dataset]
    except KeyError:
        raise ValueError(
            f"unknown dataset {spec.dataset!r}; known: {', '.join(sorted(DATASETS))}"
        ) from None
    if spec.train_size < spec.batch_size:
        raise ValueError(f"train_size {spec.train_size} is smaller than batch_size "
                         f"{spec.batch_size}: an epoch would have no full batch")
    data = loader(spec)
    mean = data.x_train.mean(dim=(0, 2, 3), keepdim=True)
    std = data.x_train.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
    return ImageData(data.name, (data.x_train - mean) / std, data.y_train,
                     (data.x_val - mean) / std, data.y_val, data.num_classes, data.base_px)


def resolve_device(device: str) -> torch.device:
    """``auto`` -> ``cuda`` when available, else ``cpu``; other strings as given."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices); deterministic cuDNN."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> float:
    """Macro-averaged F1 over labels ``0 .. num_classes-1``; a class never present nor predicted
    counts as 0. Equals ``sklearn.metrics.f1_score(..., labels=range(num_classes),
    average="macro", zero_division=0)`` (tested), without importing scikit-learn (1.7 s per run
    process on a 2-core machine)."""
    classes = np.arange(num_classes)
    true = np.asarray(y_true)[:, None] == classes
    pred = np.asarray(y_pred)[:, None] == classes
    tp = (true & pred).sum(axis=0)
    denom = true.sum(axis=0) + pred.sum(axis=0)
    f1 = np.divide(2.0 * tp, denom, out=np.zeros(num_classes), where=denom > 0)
    return float(f1.mean())


def _resize(x: torch.Tensor, input_size_px: int) -> torch.Tensor:
    """Bilinear resize of a batch to ``input_size_px`` (no-op when already that size)."""
    if x.shape[-1] == input_size_px:
        return x
    return F.interpolate(x, size=(input_size_px, input_size_px), mode="bilinear",
                         align_corners=False)


def _make_optimizer(spec: RunSpec, model: nn.Module) -> torch.optim.Optimizer:
    if spec.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=spec.learning_rate)
    if spec.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=spec.learning_rate, momentum=0.9)
    raise ValueError(f"unknown optimizer {spec.optimizer!r}; use 'adam' or 'sgd'")


def _sync(device: torch.device) -> None:
    """Wait for queued GPU work so that a phase mark falls where the work really ends."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, data: ImageData,
                spec: RunSpec, generator: torch.Generator) -> float:
    """One pass over the full training batches in a seeded random order; mean loss per image."""
    model.train()
    x_all, y_all = data.x_train, data.y_train
    n_batches = data.train_size // spec.batch_size
    order = torch.randperm(data.train_size, generator=generator)[: n_batches * spec.batch_size]
    order = order.to(x_all.device)
    total = torch.zeros((), device=x_all.device)
    for b in range(n_batches):
        idx = order[b * spec.batch_size:(b + 1) * spec.batch_size]
        x = _resize(x_all[idx], spec.input_size_px)
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y_all[idx])
        loss.backward()
        optimizer.step()
        total += loss.detach()
    return float(total) / n_batches


@torch.no_grad()
def evaluate(model: nn.Module, data: ImageData, spec: RunSpec) -> tuple[float, float, float]:
    """Validation (loss per image, accuracy 0-1, macro-F1 0-1)."""
    model.eval()
    preds, loss_sum = [], torch.zeros((), device=data.x_val.device)
    for start in range(0, data.val_size, spec.batch_size):
        x = _resize(data.x_val[start:start + spec.batch_size], spec.input_size_px)
        logits = model(x)
        loss_sum += F.cross_entropy(logits, data.y_val[start:start + spec.batch_size],
                                    reduction="sum")
        preds.append(logits.argmax(dim=1))
    y_pred = torch.cat(preds).cpu().numpy()
    y_true = data.y_val.cpu().numpy()
    accuracy = float((y_pred == y_true).mean())
    return float(loss_sum) / data.val_size, accuracy, macro_f1(y_true, y_pred, data.num_classes)


def _warmup(model: nn.Module, data: ImageData, spec: RunSpec) -> None:
    """Forward+backward ``spec.warmup_batches`` batches, then discard gradients and restore the
    normalisation buffers, so that training starts from the initial model."""
    buffers = {name: buf.clone() for name, buf in model.named_buffers()}
    model.train()
    for b in range(spec.warmup_batches):
        start = (b * spec.batch_size) % max(1, data.train_size - spec.batch_size + 1)
        x = _resize(data.x_train[start:start + spec.batch_size], spec.input_size_px)
        F.cross_entropy(model(x), data.y_train[start:start + spec.batch_size]).backward()
    model.zero_grad(set_to_none=True)
    with torch.no_grad():
        for name, buf in model.named_buffers():
            buf.copy_(buffers[name])


class _EarlyStopping:
    """Patience on validation loss."""

    def __init__(self, patience: int | None, min_delta: float) -> None:
        self.patience, self.min_delta = patience, min_delta
        self.best, self.bad_epochs = math.inf, 0

    def should_stop(self, val_loss: float) -> bool:
        if val_loss < self.best - self.min_delta:
            self.best, self.bad_epochs = val_loss, 0
        else:
            self.bad_epochs += 1
        return self.patience is not None and self.bad_epochs >= self.patience


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return "cpu"


def run_metadata(spec: RunSpec, data: ImageData, device: torch.device, flops_per_forward: int,
                 params: int) -> dict[str, Any]:
    """Training metadata recorded before the run trains (units in the names)."""
    images_per_epoch = (data.train_size // spec.batch_size) * spec.batch_size
    return {
        "architecture": spec.architecture,
        "environment": spec.environment,
        "run": spec.run,
        "dataset": data.name,
        "num_classes": data.num_classes,
        "train_size": data.train_size,
        "val_size": data.val_size,
        "images_per_epoch": images_per_epoch,
        "data_base_px": data.base_px,
        "input_size_px": spec.input_size_px,
        "batch_size": spec.batch_size,
        "epochs_planned": spec.epochs,
        "optimizer": spec.optimizer,
        "learning_rate": spec.learning_rate,
        "early_stopping_patience": spec.early_stopping_patience,
        "bn_momentum_min": spec.bn_momentum_min,
        "flush_denormal": spec.flush_denormal,
        "seed": spec.seed,
        "data_seed": spec.data_seed,
        "flops_per_forward": flops_per_forward,
        "flops_per_image": flops_per_forward / spec.batch_size,
        "gflops_per_image": flops_per_forward / spec.batch_size / 1e9,
        "flops_method": "torch.utils.flop_counter.FlopCounterMode, forward, meta device",
        "params": params,
        "device": str(device),
        "device_name": _device_name(device),
        "torch_version": torch.__version__,
        "torchvision_version": torchvision.__version__,
        "torch_num_threads": torch.get_num_threads(),
        "idle_baseline_s": spec.idle_s,
        "warmup_batches": spec.warmup_batches,
        "spec": spec.to_dict(),
    }


def _epoch_bar(spec: RunSpec) -> Any:
    if not spec.progress:
        return None
    from tqdm import tqdm

    return tqdm(total=spec.epochs, desc=f"{spec.architecture} run {spec.run}", unit="epoch",
                leave=False, file=sys.stderr)


class _LiveForecast:
    """STEP forecast of a run's training energy, fed at every epoch's edges.

    :meth:`epoch_started` and :meth:`epoch_ended` are ``Sampler.mark(energy_info=...)``
    callbacks: they get the run's energy so far at the mark's own sample, so an epoch's energy is
    exactly the difference between its ``epoch_start`` and ``epoch_end`` marks, and the forecast
    goes into that ``epoch_end`` event. An epoch whose energy cannot be measured (NaN, or another
    method than the run's first epoch) ends the forecast for the run, with the reason.
    Energies in J.
    """

    def __init__(self, spec: RunSpec) -> None:
        """Build the forecaster (imports ``helpers.estimate``: call before the sampler starts,
        so that the import is not measured). No forecaster when ``spec.epochs`` is too few for a
        stabilisation point ever to be passed."""
        if spec.forecast_window < 2:
            raise ValueError(f"forecast_window must be >= 2, got {spec.forecast_window}")
        self.spec = spec
        self.settings = {
            "forecaster": "helpers.estimate.forecaster.StepForecaster",
            "window": spec.forecast_window, "cv_tol": spec.forecast_cv_tol,
            "min_epoch": spec.forecast_min_epoch, "confidence": spec.forecast_confidence,
            "systematic_rel": spec.forecast_systematic_rel,
        }
        self.reason: str | None = None  # why the forecast stopped or never started
        self.forecaster: Any = None
        need = max(spec.forecast_min_epoch, 0) + spec.forecast_window
        if spec.epochs < need:
            self.reason = (f"{spec.epochs} planned epochs: a stable forecast needs at least "
                           f"{need} (min_epoch {spec.forecast_min_epoch} + window "
                           f"{spec.forecast_window})")
        else:
            from helpers.estimate.forecaster import StepForecaster

            self.forecaster = StepForecaster(
                n_epochs_planned=spec.epochs, window=spec.forecast_window,
                cv_tol=spec.forecast_cv_tol, min_epoch=spec.forecast_min_epoch,
                confidence=spec.forecast_confidence,
                systematic_rel=spec.forecast_systematic_rel)
        self.method: str | None = None  # energy method of the first epoch
        self._start: tuple[float, str] = (math.nan, "no epoch_start yet")
        self._warmup: tuple[float, str] | None = None  # energy so far at warmup_start
        self.before_epochs_j = 0.0  # warm-up energy (J): in the training window, before epoch 0
        self.energies_j: list[float] = []
        self.forecasts: dict[int, Any] = {}  # epoch -> stable helpers.estimate.forecaster.Forecast
        self.not_stable: dict[int, str] = {}  # epoch -> why no forecast after it

    def warmup_started(self, energy_j: float, method: str) -> dict[str, Any]:
        """``warmup_start`` callback: remember the energy so far (the training window opens
        here, so the warm-up's energy is part of the forecast target); adds nothing."""
        self._warmup = (energy_j, method)
        return {}

    def epoch_started(self, energy_j: float, method: str) -> dict[str, Any]:
        """``epoch_start`` callback: remember the energy so far; at the first epoch, the energy
        since ``warmup_start`` becomes the forecast's ``before_epochs_j``. Adds nothing."""
        if not self.energies_j and self._warmup is not None:
            warm_j, warm_method = self._warmup
            before_j = energy_j - warm_j
            if warm_method == method and math.isfinite(before_j) and before_j >= 0:
                self.before_epochs_j = before_j
            else:
                self.before_epochs_j = math.nan
                self.forecaster = None
                self.reason = (f"warm-up energy not measurable (warmup_start: {warm_method}; "
                               f"epoch_start: {method})")
            if self.forecaster is not None:
                self.forecaster.before_epochs_j = self.before_epochs_j
        self._start = (energy_j, method)
        return {}

    def epoch_ended(self, epoch: int, energy_j: float, method: str) -> dict[str, float]:
        """``epoch_end`` callback: record the epoch's energy and update the forecast; returns the
        event's forecast fields once the forecast is stable, else nothing."""
        start_j, start_method = self._start
        epoch_j = energy_j - start_j
        if self.method is None:
            self.method = method
        if not (method == start_method == self.method and math.isfinite(epoch_j)
                and epoch_j >= 0):
            self.energies_j.append(math.nan)
            if self.forecaster is not None or self.reason is None:
                self.forecaster = None
                self.reason = (f"epoch {epoch}: energy not measurable (epoch_start: "
                               f"{start_method}; epoch_end: {method})")
            self.not_stable[epoch] = self.reason
            return {}
        self.energies_j.append(epoch_j)
        if self.forecaster is None:
            self.not_stable[epoch] = str(self.reason)
            return {}
        fc = self.forecaster.update(epoch, epoch_j)
        if not fc.stable:
            self.not_stable[epoch] = fc.reason
            return {}
        self.forecasts[epoch] = fc
        return {"forecast_energy_j": fc.energy_j, "forecast_low_j": fc.low_j,
                "forecast_high_j": fc.high_j}

    def line(self, epoch: int) -> str | None:
        """The progress line of a stable forecast after ``epoch`` (epochs counted from 1)."""
        fc = self.forecasts.get(epoch)
        if fc is None:
            return None
        scale, unit = next(((f, u) for f, u in ((1e9, "GJ"), (1e6, "MJ"), (1e3, "kJ"))
                            if fc.energy_j >= f), (1.0, "J"))
        return (f"epoch {epoch + 1}/{self.spec.epochs}: STEP forecast "
                f"{fc.energy_j / scale:.2f} {unit} [{fc.low_j / scale:.2f}, "
                f"{fc.high_j / scale:.2f}] (stable since epoch {fc.stabilisation_epoch + 1})")

    def summary(self, epochs_trained: int, stopped_early: bool) -> dict[str, Any]:
        """``metadata.step_forecast``: forecasts after the first stable epoch and after 20% and
        50% of the planned epochs, each against the actual training-window energy (warm-up
        energy plus the sum of the epoch energies; signed error % = (forecast - actual) / actual
        x 100)."""
        energies = self.energies_j[:epochs_trained]
        actual = (self.before_epochs_j + math.fsum(energies) if len(energies) == epochs_trained
                  else math.nan)
        first = min(self.forecasts, default=None)
        checkpoints = {"first_stable": first} | {
            name: max(round(share * self.spec.epochs), 1) - 1
            for name, share in FORECAST_CHECKPOINTS.items()}
        planned = self.spec.epochs
        return {
            "epochs_planned": planned,
            "epochs_trained": epochs_trained,
            "stopped_early": stopped_early,
            "note": (f"stopped early after {epochs_trained} of {planned} planned epochs: the "
                     f"forecasts assumed {planned} epochs" if stopped_early else None),
            "energy_method": self.method,
            "window": "training" + (" (warmup_start to last epoch_end)" if self._warmup
                                    else " (first epoch_start to last epoch_end)"),
            "before_epochs_j": self.before_epochs_j,
            "actual_energy_j": actual,
            "epoch_energies_j": energies,
            "stabilisation_epoch": None if first is None
            else self.forecasts[first].stabilisation_epoch,
            "first_stable_epoch": first,
            "forecasts": {name: self._checkpoint(epoch, actual, epochs_trained)
                          for name, epoch in checkpoints.items()},
            "reason": self.reason,
            "settings": self.settings,
        }

    def _checkpoint(self, epoch: int | None, actual_j: float,
                    epochs_trained: int) -> dict[str, Any]:
        """One forecast against the actual energy, or NaN fields and why there is none."""
        fc = None if epoch is None else self.forecasts.get(epoch)
        if fc is None:
            if epoch is None:
                last = self.not_stable.get(epochs_trained - 1, "no epoch trained")
                reason = f"no stable forecast: {self.reason or last}"
            else:
                reason = self.not_stable.get(epoch, f"run ended after {epochs_trained} epochs")
            return {"epoch": epoch, "epochs_observed": None if epoch is None else epoch + 1,
                    "energy_j": math.nan, "low_j": math.nan, "high_j": math.nan,
                    "error_pct": math.nan, "actual_in_interval": None, "reason": reason}
        return {"epoch": epoch, "epochs_observed": epoch + 1, "energy_j": fc.energy_j,
                "low_j": fc.low_j, "high_j": fc.high_j,
                "error_pct": (fc.energy_j - actual_j) / actual_j * 100.0
                if actual_j > 0 else math.nan,
                "actual_in_interval": bool(fc.low_j <= actual_j <= fc.high_j)
                if math.isfinite(actual_j) else None,
                "reason": None}


def _say(line: str, bar: Any) -> None:
    """Print ``line`` to stdout now (above the progress bar when there is one)."""
    if bar is None:
        print(line, flush=True)
    else:
        bar.write(line, file=sys.stdout)
        sys.stdout.flush()


def _train_epochs(sampler: Any, model: nn.Module, data: ImageData, spec: RunSpec,
                  device: torch.device, live: _LiveForecast | None = None,
                  ) -> tuple[list[EpochResult], bool]:
    """Train up to ``spec.epochs`` epochs with phase marks; return epoch metrics and whether
    early stopping ended the run. ``live``: the run's STEP forecast, fed at the epoch marks."""
    optimizer = _make_optimizer(spec, model)
    generator = torch.Generator().manual_seed(spec.seed)
    stopper = _EarlyStopping(spec.early_stopping_patience, spec.early_stopping_min_delta)
    results: list[EpochResult] = []
    bar = _epoch_bar(spec)
    stopped = False
    for epoch in range(spec.epochs):
        _sync(device)
        t0 = time.perf_counter()
        sampler.mark("epoch_start", epoch=epoch,
                     energy_info=None if live is None else live.epoch_started)
        train_loss = train_epoch(model, optimizer, data, spec, generator)
        _sync(device)
        sampler.mark("eval_start", epoch=epoch, read_counter=False)  # epochs end at epoch_end
        val_loss, accuracy, f1 = evaluate(model, data, spec)
        _sync(device)
        res = EpochResult(epoch, train_loss, val_loss, accuracy, f1, time.perf_counter() - t0)
        sampler.mark("epoch_end", epoch=epoch, train_loss=train_loss, val_loss=val_loss,
                     val_accuracy=accuracy, val_f1=f1,
                     energy_info=None if live is None else partial(live.epoch_ended, epoch))
        results.append(res)
        line = None if live is None else live.line(epoch)
        if line is not None:
            _say(line, bar)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{train_loss:.3f}", f1=f"{f1:.3f}")
        if stopper.should_stop(val_loss):
            stopped = epoch + 1 < spec.epochs
            break
    if bar is not None:
        bar.close()
    return results, stopped


def train_run(spec: RunSpec, run_dir: Path, sampler_kwargs: dict[str, Any] | None = None,
              ) -> RunResult:
    """Train one model under the sampler and record everything in ``run_dir``.

    ``sampler_kwargs`` go to :class:`helpers.collect.sampler.Sampler` (``interval_s``,
    ``counter_period_s``, ``cpu_tdp_w``, ``gpu_backend``, ``metadata`` ...). The sampler writes
    ``samples.csv``, ``events.csv`` and ``metadata.json`` (status ``ok`` when this returns); this
    function adds the training metadata (architecture, sizes, seeds, FLOPs, parameters,
    accuracy, F1, versions) and, with ``spec.step_forecast``, the live STEP forecast against the
    actual training energy (``step_forecast``; a failed run keeps only the forecasts in its
    ``epoch_end`` events). An exception marks the run ``failed: ...`` (the sampler's context
    manager) and propagates.
    """
    from helpers.collect.sampler import Sampler

    if spec.num_threads is not None:
        torch.set_num_threads(spec.num_threads)
    torch.set_flush_denormal(spec.flush_denormal)
    seed_everything(spec.seed)
    device = resolve_device(spec.device)
    kwargs = dict(sampler_kwargs or {})
    metadata = {**kwargs.pop("metadata", {}), "architecture": spec.architecture,
                "environment": spec.environment, "run": spec.run}
    run_dir = Path(run_dir)
    live = _LiveForecast(spec) if spec.step_forecast else None
    with Sampler(run_dir, metadata=metadata, **kwargs) as sampler:  # starts; stops on exit
        data = load_data(spec)
        data = ImageData(data.name, data.x_train.to(device), data.y_train.to(device),
                         data.x_val.to(device), data.y_val.to(device), data.num_classes,
                         data.base_px)
        model = build_model(spec.architecture, data.num_classes, spec.input_size_px,
                            spec.bn_momentum_min).to(device)
        flops = count_model_flops(spec.architecture, data.num_classes, spec.input_size_px,
                                  spec.batch_size)
        params = count_parameters(model)
        sampler.update_metadata(**run_metadata(spec, data, device, flops, params))
        _sync(device)
        sampler.mark("idle_start")
        time.sleep(spec.idle_s)
        sampler.mark("idle_end")
        t_train = time.perf_counter()
        if spec.warmup_batches > 0:
            sampler.mark("warmup_start",
                         energy_info=None if live is None else live.warmup_started)
            _warmup(model, data, spec)
        epochs, stopped = _train_epochs(sampler, model, data, spec, device, live)
        training_s = time.perf_counter() - t_train
        if spec.tail_s > 0:
            sampler.mark("tail_start")
            time.sleep(spec.tail_s)
        last = epochs[-1]
        result = RunResult(
            run_dir=run_dir, status="ok", device=str(device), epochs_planned=spec.epochs,
            epochs_trained=len(epochs), stopped_early=stopped, accuracy=last.val_accuracy,
            f1=last.val_f1, flops_per_forward=flops, flops_per_image=flops / spec.batch_size,
            params=params, training_duration_s=training_s, epochs=epochs)
        sampler.update_metadata(
            epochs_trained=len(epochs), epochs=len(epochs), stopped_early=stopped,
            accuracy=last.val_accuracy, f1=last.val_f1, val_loss=last.val_loss,
            train_loss=last.train_loss, training_duration_s=training_s)
        if live is not None:
            sampler.update_metadata(step_forecast=live.summary(len(epochs), stopped))
    return result
