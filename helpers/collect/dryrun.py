"""Dry-run estimate for the machine at hand: ``python -m helpers estimate …``
(docs/methods.md#estimators).

Before spending a training run, train its real model for a few seconds here, under the sampler,
and predict the whole run's time and energy::

    python -m helpers estimate --model resnet18 --batch-size 32 --epochs 10 --train-size 50000 \\
        --val-size 10000 --input-size 224 --budget-s 30

or from Python, :func:`predict_from_dry_run`. The model is built untrained (torchvision or timm,
nothing downloaded) and trained on synthetic data of the run's shape with the training driver's
own code (:mod:`helpers.collect.training`: ``_warmup``, ``train_epoch``, ``evaluate``), so a step
here costs what a step of the driver's run costs. Within ``budget_s`` seconds of measurement:

1. the driver's warm-up batches (``warmup_start`` to ``dry_run_start``: a one-off segment);
2. training windows of ``k`` steps, each ended by a ``train_window_end`` mark (the first window
   is one step; then ``k`` is chosen for windows of about a twelfth of the training budget,
   at least 0.5 s);
3. where the run evaluates (``val_size > 0``), ``eval_share`` of the budget for evaluation
   windows of whole passes over the validation images (``eval_window_end``).

The run folder (raw format, docs/raw-format.md) is then read back and
:func:`helpers.estimate.dryrun.estimate` finds where the warm-up ends, takes the steady time and
energy per step, and projects the planned epochs with an interval. The energy is the run table's
(docs/methods.md#energy): the GPUs where any is sampled, else the CPU (RAPL, else the TDP ×
process-utilisation estimate). ``prediction.json`` in the run folder holds the prediction.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn

from helpers.collect import training
from helpers.collect.training import ImageData, RunSpec
from helpers.core.io import write_json
from helpers.estimate import dryrun as core
from helpers.estimate.common import NotEstimableError
from helpers.readers.project import read_run

PREDICTION_FILE = "prediction.json"
#: Largest training / validation pool held on the device (batches); windows cycle over it.
POOL_BATCHES = 64
#: Training windows aimed for in the training budget, and the shortest window (s).
TARGET_WINDOWS = 12
EVAL_TARGET_WINDOWS = 6
MIN_WINDOW_S = 0.5
#: Longest measurement budget accepted (s).
MAX_BUDGET_S = 600.0
DEVICE_CHOICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class DryRunConfig:
    """A planned run and how to measure it (sizes in images, time in s)."""

    model: str
    batch_size: int
    epochs: int
    train_size: int
    val_size: int = 0
    input_size_px: int = 224
    num_classes: int = 10
    budget_s: float = 30.0
    device: str = "auto"
    num_threads: int | None = None
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    warmup_batches: int = 2
    eval_share: float = 0.2
    seed: int = 0
    out_dir: str = "data_outputs/dry-runs"
    environment: str = "dry-run"
    interval_s: float = 0.1
    cpu_tdp_w: float | None = None

    def check(self) -> None:
        """Raise ``ValueError`` naming the first bad argument."""
        checks = [
            (self.batch_size >= 1, f"batch size must be >= 1, got {self.batch_size}"),
            (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (self.train_size >= self.batch_size,
             f"train size ({self.train_size}) must be at least the batch size "
             f"({self.batch_size}): an epoch would have no full batch"),
            (self.val_size >= 0, f"val size must be >= 0, got {self.val_size}"),
            (self.input_size_px >= 8, f"input size must be >= 8 px, got {self.input_size_px}"),
            (self.num_classes >= 2, f"num classes must be >= 2, got {self.num_classes}"),
            (0 < self.budget_s <= MAX_BUDGET_S,
             f"budget must be in (0, {MAX_BUDGET_S:g}] s, got {self.budget_s}"),
            (0 <= self.eval_share < 1, f"eval share must be in [0, 1), got {self.eval_share}"),
            (self.num_threads is None or self.num_threads >= 1,
             f"num threads must be >= 1, got {self.num_threads}"),
            (self.warmup_batches >= 0, f"warm-up batches must be >= 0, got "
                                       f"{self.warmup_batches}"),
            (self.interval_s > 0, f"sampling interval must be > 0, got {self.interval_s}"),
            (self.optimizer in ("adam", "sgd"), f"optimizer must be adam or sgd, got "
                                                f"{self.optimizer!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        _check_device(self.device)

    @property
    def plan(self) -> core.Plan:
        """The planned run (:meth:`helpers.estimate.dryrun.Plan.from_sizes`)."""
        return core.Plan.from_sizes(self.epochs, self.train_size, self.batch_size, self.val_size)

    @property
    def evaluates(self) -> bool:
        """Whether the planned run evaluates (and the dry run measures evaluation)."""
        return self.val_size > 0 and self.eval_share > 0


@dataclass(frozen=True)
class DryRunPrediction:
    """A dry run's prediction (:class:`helpers.estimate.dryrun.DryRunEstimate`) with where it was
    recorded. Time in s, energy in J (and kWh)."""

    config: DryRunConfig
    estimate: core.DryRunEstimate
    run_dir: Path
    prediction_path: Path
    device: str

    @property
    def time_s(self) -> float:
        """Predicted training time (s)."""
        return self.estimate.time_s

    @property
    def time_low_s(self) -> float:
        """Lower end of the time interval (s)."""
        return self.estimate.time_low_s

    @property
    def time_high_s(self) -> float:
        """Upper end of the time interval (s)."""
        return self.estimate.time_high_s

    @property
    def energy_j(self) -> float:
        """Predicted training energy (J)."""
        return self.estimate.energy_j

    @property
    def energy_low_j(self) -> float:
        """Lower end of the energy interval (J)."""
        return self.estimate.energy_low_j

    @property
    def energy_high_j(self) -> float:
        """Upper end of the energy interval (J)."""
        return self.estimate.energy_high_j

    @property
    def energy_kwh(self) -> float:
        """Predicted training energy (kWh)."""
        return self.estimate.energy_kwh

    def to_dict(self) -> dict[str, Any]:
        """What ``prediction.json`` holds."""
        return {"config": asdict(self.config), "device": self.device,
                "run_dir": str(self.run_dir), "estimate": self.estimate.to_dict()}


# -- arguments and models ---------------------------------------------------------------------
def _check_device(device: str) -> None:
    kind = device.split(":")[0]
    if kind not in DEVICE_CHOICES or (kind != "cuda" and ":" in device):
        raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {device!r}")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r}: CUDA is not available on this machine "
                         f"(use --device cpu)")


def _torchvision_names() -> set[str]:
    return set(torchvision.models.list_models(module=torchvision.models))


def model_source(name: str) -> str:
    """``torchvision`` or ``timm``: where ``name`` (optionally prefixed ``torchvision:`` or
    ``timm:``) is built from; raises ``ValueError`` for an unknown model. Unprefixed names are
    looked up in torchvision first."""
    lib, _, bare = name.rpartition(":")
    if lib not in ("", "torchvision", "timm"):
        raise ValueError(f"model prefix must be torchvision: or timm:, got {lib!r}")
    if lib in ("", "torchvision") and (bare in training.ARCHITECTURES
                                       or bare in _torchvision_names()):
        return "torchvision"
    if lib in ("", "timm"):
        import timm

        if timm.is_model(bare):
            return "timm"
    raise ValueError(f"unknown model {name!r}: not a torchvision classification model"
                     f"{'' if lib == 'torchvision' else ' nor a timm model'} "
                     f"(e.g. resnet18, mobilenet_v3_small, timm:efficientnet_b0)")


def build_model(name: str, num_classes: int, input_size_px: int) -> nn.Module:
    """An untrained model (random initialisation, nothing downloaded): the training driver's
    own builder for its architectures (:func:`helpers.collect.training.build_model`), else
    torchvision's ``get_model(weights=None)``, else ``timm.create_model(pretrained=False)``
    (with ``img_size`` where the model takes one)."""
    source, bare = model_source(name), name.rpartition(":")[2]
    if source == "torchvision":
        if bare in training.ARCHITECTURES:
            return training.build_model(bare, num_classes, input_size_px)
        kwargs = {"image_size": input_size_px} if bare.startswith("vit_") else {}
        return torchvision.models.get_model(bare, weights=None, num_classes=num_classes,
                                            **kwargs)
    import timm

    try:
        return timm.create_model(bare, pretrained=False, num_classes=num_classes,
                                 img_size=input_size_px)
    except TypeError:  # a model without an image size (convolutional)
        return timm.create_model(bare, pretrained=False, num_classes=num_classes)


def _run_dir(config: DryRunConfig) -> Path:
    """``<out_dir>/<environment>/<model>/<NNN>``, the first number not taken."""
    parent = Path(config.out_dir) / config.environment / config.model.replace(":", "-")
    taken = [int(p.name) for p in parent.glob("[0-9][0-9][0-9]*") if p.name.isdigit()]
    return parent / f"{max(taken, default=-1) + 1:03d}"


# -- measurement ------------------------------------------------------------------------------
def _subset(data: ImageData, n_train: int, n_val: int) -> ImageData:
    return ImageData(data.name, data.x_train[:n_train], data.y_train[:n_train],
                     data.x_val[:n_val], data.y_val[:n_val], data.num_classes, data.base_px)


def _run_windows(sampler: Any, work: Callable[[int], float], event: str, deadline: float,
                 target_s: float) -> int:
    """Windows of ``work(k)`` (k units; returns the window's steps) until ``deadline``
    (``time.monotonic``), each ended by the mark ``event``: the first is one unit, the next
    ones about ``target_s`` long at the last window's pace, cut to what fits (none shorter
    than half of :data:`MIN_WINDOW_S`, too few samples). Returns the number of windows."""
    per_unit, n = math.inf, 0
    while True:
        left = deadline - time.monotonic()
        k = 1 if n == 0 else min(max(1, round(target_s / per_unit)), int(left / per_unit))
        if left <= 0 or k < 1 or (n and k * per_unit < MIN_WINDOW_S / 2):
            return n
        t0 = time.perf_counter()
        steps = work(k)
        per_unit = (time.perf_counter() - t0) / k
        sampler.mark(event, steps=steps)
        n += 1


def _trainer(model: nn.Module, data: ImageData, spec: RunSpec,
             device: torch.device) -> Callable[[int], float]:
    """``work(k)``: k training steps with the driver's ``train_epoch`` (full batches of the
    pool, reshuffled at each pass); returns k."""
    optimizer = training._make_optimizer(spec, model)
    generator = torch.Generator().manual_seed(spec.seed)
    pool = data.train_size // spec.batch_size

    def work(k: int) -> float:
        done = 0
        while done < k:
            n = min(k - done, pool)
            training.train_epoch(model, optimizer, _subset(data, n * spec.batch_size, 0), spec,
                                 generator)
            done += n
        training._sync(device)
        return float(k)

    return work


def _evaluator(model: nn.Module, data: ImageData, spec: RunSpec,
               device: torch.device) -> Callable[[int], float]:
    """``work(k)``: k passes of the driver's ``evaluate`` over the validation pool; returns the
    batch equivalents (images ÷ batch size)."""

    def work(k: int) -> float:
        for _ in range(k):
            training.evaluate(model, data, spec)
        training._sync(device)
        return k * data.val_size / spec.batch_size

    return work


def _spec(config: DryRunConfig) -> RunSpec:
    """The driver's run spec of the dry run, with pools of at most :data:`POOL_BATCHES`."""
    pool = min(config.train_size // config.batch_size, POOL_BATCHES) * config.batch_size
    return RunSpec(
        architecture=config.model, environment=config.environment, train_size=pool,
        val_size=min(config.val_size, POOL_BATCHES * config.batch_size),
        input_size_px=config.input_size_px, batch_size=config.batch_size, epochs=config.epochs,
        num_classes=config.num_classes, learning_rate=config.learning_rate,
        optimizer=config.optimizer, seed=config.seed, device=config.device,
        num_threads=config.num_threads, warmup_batches=config.warmup_batches, idle_s=0.0,
        step_forecast=False)


def _measure(sampler: Any, config: DryRunConfig, spec: RunSpec,
             device: torch.device) -> dict[str, Any]:
    """Build, then measure within the budget (module docstring); returns metadata."""
    data = training.load_data(spec)
    data = ImageData(data.name, data.x_train.to(device), data.y_train.to(device),
                     data.x_val.to(device), data.y_val.to(device), data.num_classes,
                     data.base_px)
    model = build_model(config.model, data.num_classes, config.input_size_px).to(device)
    train = _trainer(model, data, spec, device)
    training._sync(device)
    start = time.monotonic()
    sampler.mark("warmup_start")
    if spec.warmup_batches > 0:
        training._warmup(model, data, spec)
    training._sync(device)
    sampler.mark(core.DRY_RUN_START)
    share = config.eval_share if config.evaluates else 0.0
    train_budget = config.budget_s * (1 - share)
    n_train = _run_windows(sampler, train, "train_window_end", start + train_budget,
                           max(MIN_WINDOW_S, train_budget / TARGET_WINDOWS))
    n_eval = 0
    if share > 0:
        n_eval = _run_windows(sampler, _evaluator(model, data, spec, device), "eval_window_end",
                              start + config.budget_s,
                              max(MIN_WINDOW_S, config.budget_s * share / EVAL_TARGET_WINDOWS))
    return {"params": training.count_parameters(model), "measured_s": time.monotonic() - start,
            "train_windows": n_train, "eval_windows": n_eval}


def predict_from_dry_run(config: DryRunConfig | None = None, /, **kwargs: Any
                         ) -> DryRunPrediction:
    """Run a dry run and predict the planned run's time and energy (module docstring).

    Give a :class:`DryRunConfig` or its fields as keywords, e.g.
    ``predict_from_dry_run(model="resnet18", batch_size=32, epochs=10, train_size=50000)``.
    Raises ``ValueError`` for bad arguments and
    :class:`helpers.estimate.common.NotEstimableError` when the budget was too short for a
    steady state (the run folder is kept)."""
    from helpers.collect.sampler import Sampler

    config = config if config is not None else DryRunConfig(**kwargs)
    config.check()
    source = model_source(config.model)
    if config.num_threads is not None:
        torch.set_num_threads(config.num_threads)
    torch.set_flush_denormal(True)
    training.seed_everything(config.seed)
    device = training.resolve_device(config.device)
    spec = _spec(config)
    run_dir = _run_dir(config)
    metadata = {"architecture": config.model, "environment": config.environment,
                "dataset": "synthetic", "model_source": source, "device": str(device),
                "device_name": training._device_name(device),
                "batch_size": config.batch_size, "input_size_px": config.input_size_px,
                "torch_version": torch.__version__, "torch_num_threads": torch.get_num_threads(),
                "dry_run": {"config": asdict(config), "plan": asdict(config.plan)}}
    sampler_kwargs = {"interval_s": config.interval_s, "cpu_tdp_w": config.cpu_tdp_w}
    with Sampler(run_dir, metadata=metadata, **sampler_kwargs) as sampler:
        sampler.update_metadata(**_measure(sampler, config, spec, device))
    try:
        once_s, once_j, wins, method = core.dry_run_windows(read_run(run_dir))
        estimate = core.estimate(wins, config.plan, once_s, once_j, method)
    except NotEstimableError as err:
        write_json({"config": asdict(config), "run_dir": str(run_dir), "reason": err.reason},
                   run_dir / PREDICTION_FILE)
        raise
    prediction = DryRunPrediction(config, estimate, run_dir, run_dir / PREDICTION_FILE,
                                  str(device))
    write_json(prediction.to_dict(), prediction.prediction_path)
    return prediction


# -- command line -----------------------------------------------------------------------------
def _energy_text(j: float) -> str:
    scale, unit = next(((f, u) for f, u in ((1e9, "GJ"), (1e6, "MJ"), (1e3, "kJ"))
                        if abs(j) >= f), (1.0, "J"))
    return f"{j / scale:.3g} {unit}"


def _time_text(s: float) -> str:
    scale, unit = next(((f, u) for f, u in ((3600.0, "h"), (60.0, "min")) if abs(s) >= f),
                       (1.0, "s"))
    return f"{s / scale:.3g} {unit}"


def _interval(low: float, high: float, fmt: Callable[[float], str]) -> str:
    return f"[{fmt(low)}, {fmt(high)}]" if math.isfinite(low) else "[no interval]"


def summary_lines(p: DryRunPrediction) -> list[str]:
    """The command's printed summary."""
    c, e, plan = p.config, p.estimate, p.config.plan
    tr = e.train
    lines = [
        f"dry run: {c.model}, batch {c.batch_size}, {c.input_size_px} px, {p.device} "
        f"({torch.get_num_threads()} torch thread(s)), {e.observed_s:.1f} s measured "
        f"(budget {c.budget_s:g} s)",
        f"  training: {tr.n_windows} windows, steady from window {tr.time.start} (time) and "
        f"{tr.energy.start} (energy): {tr.step_s * 1e3:.4g} ms and "
        f"{_energy_text(tr.step_j)} per step",
    ]
    if e.eval is not None:
        lines.append(f"  evaluation: {e.eval.n_windows} windows: {e.eval.step_s * 1e3:.4g} ms "
                     f"and {_energy_text(e.eval.step_j)} per batch")
    lines += [
        f"predicted run: {plan.epochs} epochs x {plan.steps_per_epoch:g} steps"
        + (f" + {plan.eval_steps_per_epoch:.4g} evaluation batches" if e.eval else "")
        + f" [{e.method}; energy: {e.energy_method}]",
        f"  time    {_time_text(e.time_s):>10}  "
        f"{_interval(e.time_low_s, e.time_high_s, _time_text)}  ({e.time_s:.1f} s)",
        f"  energy  {_energy_text(e.energy_j):>10}  "
        f"{_interval(e.energy_low_j, e.energy_high_j, _energy_text)}  "
        f"({e.energy_kwh:.4g} kWh; {e.confidence:.0%} interval: {e.interval_method})",
        *(f"  note: {n}" for n in e.notes),
        f"run folder: {p.run_dir}",
        f"prediction: {p.prediction_path}",
    ]
    return lines


def parser() -> argparse.ArgumentParser:
    """The command's arguments."""
    ap = argparse.ArgumentParser(
        prog="python -m helpers estimate",
        description="Predict a training run's time and energy on this machine from a short dry "
                    "run of its real model on synthetic data.")
    ap.add_argument("--model", required=True,
                    help="torchvision or timm model name (prefix timm: to pick timm)")
    ap.add_argument("--batch-size", type=int, required=True, help="images per batch")
    ap.add_argument("--epochs", type=int, required=True, help="planned epochs")
    ap.add_argument("--train-size", type=int, required=True, help="training images per epoch")
    ap.add_argument("--val-size", type=int, default=0,
                    help="validation images evaluated after every epoch (default 0: none)")
    ap.add_argument("--input-size", type=int, default=224, help="image side in px (224)")
    ap.add_argument("--num-classes", type=int, default=10, help="classes (10)")
    ap.add_argument("--budget-s", type=float, default=30.0,
                    help="seconds of measurement, warm-up included (30)")
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (auto)")
    ap.add_argument("--num-threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--optimizer", default="adam", help="adam or sgd (adam)")
    ap.add_argument("--warmup-batches", type=int, default=2,
                    help="un-applied batches before training, as the training driver (2)")
    ap.add_argument("--eval-share", type=float, default=0.2,
                    help="share of the budget for evaluation when --val-size > 0 (0.2)")
    ap.add_argument("--cpu-tdp-w", type=float, default=None,
                    help="CPU TDP (W) for the CPU power estimate (default 12 W per core)")
    ap.add_argument("--out", default="data_outputs/dry-runs",
                    help="root of the run folders: <out>/<environment>/<model>/<NNN>")
    ap.add_argument("--environment", default="dry-run", help="environment label (dry-run)")
    ap.add_argument("--seed", type=int, default=0, help="seed (0)")
    return ap


def config_from_args(args: argparse.Namespace) -> DryRunConfig:
    """The :class:`DryRunConfig` of parsed arguments."""
    return DryRunConfig(
        model=args.model, batch_size=args.batch_size, epochs=args.epochs,
        train_size=args.train_size, val_size=args.val_size, input_size_px=args.input_size,
        num_classes=args.num_classes, budget_s=args.budget_s, device=args.device,
        num_threads=args.num_threads, optimizer=args.optimizer,
        warmup_batches=args.warmup_batches, eval_share=args.eval_share, seed=args.seed,
        out_dir=args.out, environment=args.environment, cpu_tdp_w=args.cpu_tdp_w)


def main(argv: list[str]) -> int:
    """``python -m helpers estimate``: 0 on success, 2 for bad arguments, 1 when no estimate
    could be made."""
    ap = parser()
    try:
        args = ap.parse_args(argv)
    except SystemExit as done:  # --help, or arguments argparse rejects (it printed why)
        return done.code if isinstance(done.code, int) else 2
    config = config_from_args(args)
    try:
        config.check()
        model_source(config.model)
    except ValueError as err:
        ap.print_usage(sys.stderr)
        print(f"{ap.prog}: error: {err}", file=sys.stderr)
        return 2
    try:
        prediction = predict_from_dry_run(config)
    except NotEstimableError as err:
        print(f"{ap.prog}: no estimate: {err.reason} (raise --budget-s, or lower the batch "
              f"size or input size)", file=sys.stderr)
        return 1
    print("\n".join(summary_lines(prediction)))
    return 0
