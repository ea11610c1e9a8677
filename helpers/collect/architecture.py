"""Architecture features from the model graph (docs/methods.md#estimators).

:func:`architecture_features` builds the real model (timm, torchvision, or the SEAA 2023 Keras
models rebuilt in PyTorch; never pretrained, nothing downloaded) on PyTorch's ``meta`` device,
runs one training step (forward, cross-entropy loss, backward) under
``torch.utils.flop_counter.FlopCounterMode`` and an operator recorder, and returns per-sample and
per-step quantities by operator family:

* ``conv`` (dense convolutions, groups = 1), ``conv_grouped`` (depthwise and grouped), ``matmul``
  (linear layers, ``mm``/``addmm``), ``attention`` (scaled-dot-product attention and batched
  matrix products), ``norm`` (batch, layer and group normalisation), ``elementwise`` (everything
  else that launches a kernel: activations, additions, pooling, the loss, copies).
* FLOPs (a multiply-add = 2 FLOPs): the counter's formulas for matrix products and attention;
  convolutions from their shapes (:func:`_conv_flops`: the counter's weight-gradient formula
  ignores groups); normalisation and element-wise FLOPs, which the counter ignores, estimated
  from tensor sizes (:data:`NORM_FLOPS_PER_ELEMENT`, one FLOP per output element otherwise).
* Bytes: each operator's input and output tensors (fp32, 4 bytes an element), a lower bound of
  the memory traffic of an unfused kernel.
* Operator calls: aten operators that launch work (views and allocations excluded), forward and
  backward of one step: a kernel-launch floor independent of the batch size.

On the meta device nothing is computed and no memory is allocated, so a ViT-B step takes a
fraction of a second. Scaled-dot-product attention is profiled as the fused kernel a GPU runs
(one call forward, one backward). Each quantity is measured at two batch sizes and split into a
per-sample slope and a per-step intercept (weights and their gradients are read once a step).

``python -m helpers.collect.architecture --refresh`` regenerates the committed table
``data_inputs/architecture-features.csv`` (:func:`table_rows`); the estimate and analysis layers
read only that CSV (``helpers.estimate.architecture_table``).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

import pandas as pd
import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode, flop_registry

from helpers.core import datasets, io
from helpers.estimate.architecture_table import FAMILIES, TABLE_PATH

#: Sources of model definitions.
SOURCES = ("timm", "torchvision", "seaa2023-keras")
#: Estimated FLOPs per element of normalisation (forward, backward): mean, variance, normalise,
#: scale and shift forward; about twice that backward.
NORM_FLOPS_PER_ELEMENT = {"forward": 5.0, "backward": 10.0}
#: Bytes per element assumed for the byte counts (fp32).
BYTES_PER_ELEMENT = 4
#: Batch size of the first profiling point (the second is the ``batch_size`` argument).
BASE_BATCH = 2

_NORM_OPS = {"native_batch_norm", "_native_batch_norm_legit", "_native_batch_norm_legit_functional",
             "_native_batch_norm_legit_no_training", "native_batch_norm_backward",
             "batch_norm_backward", "_batch_norm_with_update", "_batch_norm_no_update",
             "native_layer_norm", "native_layer_norm_backward", "native_group_norm",
             "native_group_norm_backward", "cudnn_batch_norm", "cudnn_batch_norm_backward"}
_MATMUL_OPS = {"mm", "addmm", "_scaled_mm"}
_BATCHED_OPS = {"bmm", "baddbmm"}
_CONV_OPS = {"convolution", "_convolution", "convolution_backward", "cudnn_convolution",
             "convolution_overrideable", "_slow_conv2d_forward"}
#: Operators that launch no kernel (allocations, metadata).
_NO_KERNEL = {"empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided",
              "_local_scalar_dense", "lift_fresh", "sym_size", "sym_stride", "sym_numel",
              "is_same_size", "_has_compatible_shallow_copy_type", "set_"}


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BuiltModel:
    """A model ready to profile: the module, how it was built and anything that differs from
    the named architecture."""

    module: nn.Module
    source: str
    builder: str
    note: str = ""
    default_input_size_px: int = 224


def _timm():
    import timm  # noqa: PLC0415 (optional at import time; pinned dependency)

    return timm


def _timm_default_size(name: str) -> int:
    cfg = _timm().models.get_pretrained_cfg(name)
    return int(cfg.input_size[-1]) if cfg is not None and cfg.input_size else 224


def _build_timm(name: str, num_classes: int, input_size_px: int) -> BuiltModel:
    timm = _timm()
    kwargs: dict = {"pretrained": False, "num_classes": num_classes}
    model = timm.create_model(name, **kwargs)
    builder = f"timm {timm.__version__}: timm.create_model({name!r}, num_classes={num_classes})"
    if hasattr(model, "patch_embed"):  # transformers fix their input size at construction
        kwargs["img_size"] = input_size_px
        model = timm.create_model(name, **kwargs)
        builder = builder[:-1] + f", img_size={input_size_px})"
    return BuiltModel(model, "timm", builder, default_input_size_px=_timm_default_size(name))


def _build_torchvision(name: str, num_classes: int, input_size_px: int) -> BuiltModel:
    kwargs: dict = {"weights": None, "num_classes": num_classes}
    if name.startswith("vit_"):
        kwargs["image_size"] = input_size_px
    model = torchvision.models.get_model(name, **kwargs)
    args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    return BuiltModel(model, "torchvision",
                      f"torchvision {torchvision.__version__}: get_model({name!r}, {args})")


class _Head(nn.Module):
    """Backbone -> global average pooling -> dense ReLU layers -> one sigmoid unit (the SEAA 2023
    classifier; the loss is cross-entropy on two logits, same cost)."""

    def __init__(self, backbone: nn.Module, features: int, hidden: tuple[int, ...]) -> None:
        super().__init__()
        self.backbone = backbone
        layers: list[nn.Module] = []
        width = features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, 2))
        self.head = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.backbone(x)
        if x.ndim == 4:
            x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.head(x)


class _NASNetAMobile(nn.Module):
    """NASNet-A Mobile (4 @ 1056: 4 normal cells per stack, 1056 penultimate filters, 32 stem
    filters), the Keras ``NASNetMobile`` configuration, assembled from timm's NASNet-A cells
    (timm ships only NASNet-A Large, 6 @ 4032). Returns the ReLU'd last feature map."""

    def __init__(self, penultimate: int = 1056, stem: int = 32, per_stack: int = 4) -> None:
        super().__init__()
        nas = _timm().models.nasnet
        c = penultimate // 24
        self.conv0 = nas.ConvNormAct(3, stem, kernel_size=3, padding=0, stride=2,
                                     norm_layer=partial(nn.BatchNorm2d, eps=1e-3),
                                     apply_act=False)
        self.cell_stem_0 = nas.CellStem0(stem, num_channels=c // 4, pad_type="same")
        self.cell_stem_1 = nas.CellStem1(stem, num_channels=c // 2, pad_type="same")
        cells: list[nn.Module] = []
        left_in, right_in = c, 2 * c  # stem 0 and stem 1 outputs
        for stack, width in enumerate((c, 2 * c, 4 * c)):
            if stack:
                cells.append(nas.ReductionCell0(right_in, width, right_in, width, "same")
                             if stack == 1 else
                             nas.ReductionCell1(right_in, width, right_in, width, "same"))
                left_in, right_in = right_in, 4 * width
            cells.append(nas.FirstCell(left_in, width // 2, right_in, width, "same"))
            left_in, right_in = right_in, 6 * width
            for _ in range(per_stack - 1):
                cells.append(nas.NormalCell(left_in, width, right_in, width, "same"))
                left_in = right_in
        self.cells = nn.ModuleList(cells)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x0 = self.conv0(x)
        s0 = self.cell_stem_0(x0)
        s1 = self.cell_stem_1(x0, s0)
        prev, cur = s0, s1
        before_prev = s0
        for cell in self.cells:
            name = type(cell).__name__
            if name.startswith("Reduction"):
                out = cell(cur, prev)
            elif name == "FirstCell":
                out = cell(cur, before_prev)
            else:
                out = cell(cur, prev)
            before_prev, prev, cur = prev, cur, out
        return F.relu(cur)


def _keras_backbones() -> dict[str, tuple[Callable[[], nn.Module], int, tuple[int, ...], str, str]]:
    """SEAA 2023 architecture -> (backbone builder, its output channels, dense head, how it was
    built, note). Heads as in the published training code (src/models/train_model.py)."""
    tv = torchvision.models

    def resnet50() -> nn.Module:
        m = tv.resnet50(weights=None)
        return nn.Sequential(*list(m.children())[:-2])

    return {
        "mobilenet_v2": (lambda: tv.mobilenet_v2(weights=None, width_mult=0.5).features, 1280,
                         (512,), "torchvision mobilenet_v2(width_mult=0.5).features",
                         "Keras MobileNetV2(alpha=0.5) equivalent"),
        "nasnet_mobile": (_NASNetAMobile, 1056, (512,),
                          "NASNet-A Mobile (4 @ 1056) from timm NASNet-A cells",
                          "timm has no NASNet-Mobile; built from its NASNet-A cells in the Keras "
                          "NASNetMobile configuration"),
        "resnet50": (resnet50, 2048, (1024, 512), "torchvision resnet50 without fc",
                     "torchvision ResNet-50 v1.5 (stride in the 3x3 conv; Keras v1 strides the "
                     "1x1)"),
        "vgg16": (lambda: tv.vgg16(weights=None).features, 512, (),
                  "torchvision vgg16().features", "Keras VGG16(include_top=False) equivalent"),
        "xception": (lambda: _timm().create_model("legacy_xception", pretrained=False,
                                                  num_classes=0, global_pool=""), 2048, (1024,),
                     "timm legacy_xception (Keras port), no classifier",
                     "timm legacy_xception is the Keras Xception"),
    }


def _build_keras(name: str, num_classes: int, input_size_px: int) -> BuiltModel:
    del num_classes, input_size_px  # binary head; any input size
    try:
        build, width, hidden, how, note = _keras_backbones()[name]
    except KeyError:
        raise KeyError(f"no SEAA 2023 Keras model {name!r}; known: "
                       f"{', '.join(_keras_backbones())}") from None
    backbone = build()
    head = "GAP" + "".join(f" -> Dense({h}, relu)" for h in hidden) + " -> Dense(1)"
    return BuiltModel(_Head(backbone, width, hidden), "seaa2023-keras", f"{how} + {head}",
                      note + "; backbone batch norm in inference mode, as Keras training=False",
                      default_input_size_px=299 if name == "xception" else 224)


def resolve_source(model_name: str, source: str = "auto") -> str:
    """The source a model is built from: ``source`` itself, or for 'auto' torchvision when it
    has the name, else timm. Raises ``KeyError`` for an unknown name."""
    if source in SOURCES:
        return source
    if source != "auto":
        raise ValueError(f"unknown source {source!r}; choose from auto, {', '.join(SOURCES)}")
    if model_name in torchvision.models.list_models():
        return "torchvision"
    if model_name in _timm().list_models():
        return "timm"
    raise KeyError(f"model {model_name!r} is in neither torchvision nor timm")


def build_model(model_name: str, input_size_px: int, source: str = "auto",
                num_classes: int = 10) -> BuiltModel:
    """Build ``model_name`` on the current default device, untrained, in training mode."""
    src = resolve_source(model_name, source)
    build = {"timm": _build_timm, "torchvision": _build_torchvision,
             "seaa2023-keras": _build_keras}[src]
    built = build(model_name, num_classes, input_size_px)
    built.module.train()
    if src == "seaa2023-keras":  # Keras runs the base with training=False
        for m in built.module.backbone.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()
    return built


# --------------------------------------------------------------------------------------------
# Operator recording
# --------------------------------------------------------------------------------------------

def _is_view(func) -> bool:
    """True for operators whose outputs alias an input without writing (views: no kernel)."""
    return any(r.alias_info is not None and not r.alias_info.is_write
               for r in func._schema.returns)


def _tensors(tree) -> Iterator[torch.Tensor]:
    if isinstance(tree, torch.Tensor):
        yield tree
    elif isinstance(tree, (list, tuple)):
        for t in tree:
            yield from _tensors(t)
    elif isinstance(tree, dict):
        for t in tree.values():
            yield from _tensors(t)


def _family(name: str, args: tuple) -> str:
    if name in _CONV_OPS:  # groups: argument 9 of the backward, 8 of the forward ops
        groups = args[9 if name == "convolution_backward" else 8] if len(args) > 8 else 1
        return "conv_grouped" if isinstance(groups, int) and groups > 1 else "conv"
    if name in _MATMUL_OPS:
        return "matmul"
    if name in _BATCHED_OPS or "attention" in name:
        return "attention"
    if name in _NORM_OPS:
        return "norm"
    return "elementwise"


def _conv_flops(name: str, args: tuple, out) -> float:
    """FLOPs of a convolution (forward) or its backward (input and weight gradients, as its
    output mask asks): 2 x output elements x (input channels / groups) x kernel elements. The
    counter's backward formula ignores the groups of the weight gradient (a depthwise layer
    would count C times too many), hence this one."""
    if name == "convolution_backward":
        grad_out, x, w, transposed, mask = args[0], args[1], args[2], args[7], args[10]
        per_pass = 2.0 * (x if transposed else grad_out).numel() * w[0].numel()
        return per_pass * (int(bool(mask[0])) + int(bool(mask[1])))
    x, w, transposed = args[0], args[1], args[6] if len(args) > 6 else False
    result = out[0] if isinstance(out, (list, tuple)) else out
    return 2.0 * (x if transposed else result).numel() * w[0].numel()


class OpRecorder(TorchDispatchMode):
    """Records every kernel-launching aten call: family, FLOPs, bytes, forward or backward."""

    def __init__(self) -> None:
        super().__init__()
        self.phase = "forward"
        self.rows: list[tuple[str, str, str, float, float, float]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = func.overloadpacket.__name__
        if _is_view(func) or name in _NO_KERNEL:
            return out
        family = _family(name, args)
        tensors_in = list(_tensors((args, kwargs)))
        tensors_out = list(_tensors(out))
        out_elems = float(sum(t.numel() for t in tensors_out))
        nbytes = float(sum(t.numel() for t in (*tensors_in, *tensors_out))) * BYTES_PER_ELEMENT
        if family.startswith("conv"):
            flops = _conv_flops(name, args, out)
        elif func.overloadpacket in flop_registry:
            flops = float(flop_registry[func.overloadpacket](*args, **kwargs, out_val=out))
        elif family == "norm":
            n_in = float(tensors_in[0].numel()) if tensors_in else out_elems
            flops = n_in * NORM_FLOPS_PER_ELEMENT[self.phase]
        else:
            flops = out_elems
        self.rows.append((self.phase, name, family, flops, nbytes,
                          out_elems * BYTES_PER_ELEMENT))
        return out


@contextlib.contextmanager
def _fused_attention() -> Iterator[None]:
    """Route ``F.scaled_dot_product_attention`` (without a mask) through the fused
    memory-efficient kernel, the one-call-each-way path a GPU takes (the meta device would
    otherwise decompose it into matrix products and a softmax)."""
    original = F.scaled_dot_product_attention

    def fused(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
              **kwargs):
        if attn_mask is not None or kwargs:
            return original(query, key, value, attn_mask=attn_mask, dropout_p=dropout_p,
                            is_causal=is_causal, scale=scale, **kwargs)
        return torch.ops.aten._scaled_dot_product_efficient_attention(
            query, key, value, None, True, dropout_p, is_causal, scale=scale)[0]

    F.scaled_dot_product_attention = fused
    try:
        yield
    finally:
        F.scaled_dot_product_attention = original


@dataclass
class StepProfile:
    """One profiled training step at one batch size: the recorder's rows and the counter's
    total FLOPs."""

    batch_size: int
    ops: pd.DataFrame
    counted_flops: float


def profile_step(model: nn.Module, input_size_px: int, batch_size: int) -> StepProfile:
    """One forward + cross-entropy + backward of ``model`` (on its device) on a random batch."""
    device = next(model.parameters()).device
    x = torch.randn(batch_size, 3, input_size_px, input_size_px, device=device)
    logits_probe = None
    counter = FlopCounterMode(display=False)
    recorder = OpRecorder()
    with _fused_attention(), counter, recorder:
        logits_probe = model(x)
        target = torch.zeros(batch_size, dtype=torch.long, device=device)
        loss = F.cross_entropy(logits_probe, target)
        recorder.phase = "backward"
        loss.backward()
    model.zero_grad(set_to_none=True)
    ops = pd.DataFrame(recorder.rows, columns=["phase", "op", "family", "flops", "bytes",
                                               "out_bytes"])
    return StepProfile(batch_size, ops, float(counter.get_total_flops()))


def _summary(p: StepProfile) -> dict[str, float]:
    ops = p.ops
    out: dict[str, float] = {}
    for fam in FAMILIES:
        sub = ops[ops["family"] == fam]
        out[f"flops_{fam}"] = float(sub["flops"].sum())
        out[f"bytes_{fam}"] = float(sub["bytes"].sum())
    fwd = ops[ops["phase"] == "forward"]
    out["flops_forward"] = float(fwd["flops"].sum())
    out["bytes_forward"] = float(fwd["bytes"].sum())
    out["activation_bytes"] = float(fwd["out_bytes"].sum())
    out["counted_flops"] = p.counted_flops
    out["op_calls_forward"] = float(len(fwd))
    out["op_calls"] = float(len(ops))
    return out


def module_features(model: nn.Module, input_size_px: int, batch_size: int = 8) -> dict:
    """The numeric graph features of one training step of ``model`` (on its device: use the
    meta device to profile without computing), profiled at batch sizes 2 and ``batch_size``
    (at least 4); see :func:`architecture_features` for the keys."""
    b2 = max(int(batch_size), BASE_BATCH + 2)
    lo = _summary(profile_step(model, input_size_px, BASE_BATCH))
    hi = _summary(profile_step(model, input_size_px, b2))
    slope = {k: (hi[k] - lo[k]) / (b2 - BASE_BATCH) for k in lo}
    row: dict = {"params": int(sum(p.numel() for p in model.parameters())),
                 "param_tensors": int(sum(1 for _ in model.parameters()))}
    row["param_bytes"] = row["params"] * BYTES_PER_ELEMENT
    for fam in FAMILIES:
        row[f"flops_per_sample_{fam}"] = slope[f"flops_{fam}"]
    row["flops_per_sample"] = sum(slope[f"flops_{fam}"] for fam in FAMILIES)
    row["flops_per_sample_counted"] = slope["counted_flops"]
    row["flops_per_sample_forward"] = slope["flops_forward"]
    for fam in FAMILIES:
        row[f"bytes_per_sample_{fam}"] = slope[f"bytes_{fam}"]
    row["bytes_per_sample"] = sum(slope[f"bytes_{fam}"] for fam in FAMILIES)
    row["bytes_per_sample_forward"] = slope["bytes_forward"]
    total_lo = sum(lo[f"bytes_{fam}"] for fam in FAMILIES)
    row["bytes_per_step_fixed"] = max(total_lo - BASE_BATCH * row["bytes_per_sample"], 0.0)
    row["activation_bytes_per_sample"] = slope["activation_bytes"]
    row["op_calls_per_step"] = int(round(hi["op_calls"]))
    row["op_calls_forward"] = int(round(hi["op_calls_forward"]))
    return row


def architecture_features(model_name: str, input_size_px: int, batch_size: int = 8,
                          source: str = "auto", num_classes: int = 10) -> dict:
    """Graph features of one training step of ``model_name`` at ``input_size_px``.

    The model is built on the meta device (no weights, no compute, nothing downloaded) and
    profiled at batch sizes 2 and ``batch_size`` (at least 4); linear quantities are split into
    a per-sample slope and a per-step intercept. Returns a flat dict:

    * ``architecture``, ``input_size_px``, ``source`` ('timm', 'torchvision' or
      'seaa2023-keras'; 'auto': torchvision if it has the name, else timm), ``num_classes``;
    * ``params``, ``param_tensors`` (count of parameter tensors: optimiser work per step),
      ``param_bytes`` (fp32);
    * ``flops_per_sample_<family>`` and ``bytes_per_sample_<family>`` for :data:`FAMILIES`
      (training step: forward + backward), ``flops_per_sample``, ``bytes_per_sample`` (sums),
      ``flops_per_sample_counted`` (FlopCounterMode's own total: convolutions, matrix products,
      attention; its weight-gradient formula ignores convolution groups, see
      :func:`_conv_flops`), ``flops_per_sample_forward``, ``bytes_per_sample_forward`` (the
      forward pass alone: evaluation, frozen layers);
    * ``bytes_per_step_fixed`` (the intercept of the bytes: weights and weight gradients);
    * ``activation_bytes_per_sample`` (bytes of the forward pass's operator outputs, fp32);
    * ``op_calls_per_step`` (kernel-launching aten calls of forward + backward),
      ``op_calls_forward``;
    * ``default_input_size_px`` (the model's pretrained configuration), ``model_builder`` (how
      it was built), ``feature_note`` (how it differs from the named model, '' if not),
      ``torch_version``, ``timm_version``.

    FLOPs count a multiply-add as 2. Raises ``KeyError`` for an unknown model name.
    """
    with torch.device("meta"):
        built = build_model(model_name, input_size_px, source, num_classes)
    return {"architecture": model_name, "input_size_px": int(input_size_px),
            "source": built.source, "num_classes": int(num_classes),
            **module_features(built.module, input_size_px, batch_size),
            "default_input_size_px": int(built.default_input_size_px),
            "model_builder": built.builder, "feature_note": built.note,
            "torch_version": torch.__version__.split("+")[0],
            "timm_version": _timm().__version__}


# --------------------------------------------------------------------------------------------
# The committed table
# --------------------------------------------------------------------------------------------

_EE = ("convnext_tiny", "deit_base_patch16_224", "efficientnet_b0", "efficientnetv2_s",
       "mobilenetv2_100", "mobilenetv3_large_100", "resnet101", "resnet18", "resnet34",
       "resnet50", "vit_base_patch16_224", "efficientnet_b3", "mobilenetv3_small_100",
       "resnet152")
_TV = ("mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large", "resnet18", "resnet50",
       "vgg16", "vgg16_bn", "efficientnet_b0", "squeezenet1_1", "shufflenet_v2_x0_5",
       "vit_b_16")
_SEAA = ("mobilenet_v2", "nasnet_mobile", "resnet50", "vgg16", "xception")


def _ee_sizes(name: str) -> tuple[int, ...]:
    """The EE-Training models at 32 px (CIFAR's native size, where the published FLOPs were
    counted for the CNNs) and at timm's default input size (what timm's train.py trains at)."""
    if "patch16" in name:
        return (224,)
    return tuple(sorted({32, _timm_default_size(name)}))


def table_rows() -> list[tuple[str, int, str]]:
    """The (architecture, input size px, source) rows of the committed table: EE-Training's
    timm models (also the 3 of its models not in the development subset), the SEAA 2023 Keras
    models at their 128-px input, and the collect stage's torchvision models at 32 and 224 px."""
    rows = [(m, s, "timm") for m in _EE for s in _ee_sizes(m)]
    rows += [(m, 128, "seaa2023-keras") for m in _SEAA]
    rows += [(m, s, "torchvision") for m in _TV for s in (32, 224)]
    return rows


def build_table(rows: list[tuple[str, int, str]] | None = None, batch_size: int = 8,
                progress: bool = False) -> pd.DataFrame:
    """Features of every row (:func:`table_rows` when None), one table row each."""
    out = []
    for name, size, source in rows or table_rows():
        if progress:
            print(f"{source}:{name} @ {size} px", file=sys.stderr, flush=True)
        out.append(architecture_features(name, size, batch_size, source))
    return pd.DataFrame(out)


def main(argv: list[str] | None = None) -> int:
    """``python -m helpers.collect.architecture [--refresh] [--model NAME --input-size PX]``."""
    parser = argparse.ArgumentParser(prog="python -m helpers.collect.architecture",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--refresh", action="store_true",
                        help=f"regenerate {TABLE_PATH.as_posix()}")
    parser.add_argument("--model", help="print the features of one model")
    parser.add_argument("--input-size", type=int, default=224, help="input side (px)")
    parser.add_argument("--source", default="auto", choices=("auto", *SOURCES))
    args = parser.parse_args(argv)
    if args.model:
        for k, v in architecture_features(args.model, args.input_size,
                                          source=args.source).items():
            print(f"{k:32s} {v}")
    if args.refresh:
        table = build_table(progress=True)
        path = io.write_csv(table, datasets.project_root() / TABLE_PATH)
        print(f"wrote {len(table)} rows to {datasets.relative_to_project(path)}")
    if not (args.model or args.refresh):
        parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
