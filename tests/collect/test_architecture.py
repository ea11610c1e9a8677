"""Graph features of a training step (helpers.collect.architecture) and the committed table."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from torch import nn

from helpers.collect import architecture as arch
from helpers.estimate import architecture_table

SIZE = 16


class Tiny(nn.Module):
    """conv 3->8 (3x3) -> BN -> ReLU -> depthwise 3x3 -> GAP -> linear 8->4."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        x = self.dw(torch.relu(self.bn(self.conv(x))))
        return self.fc(x.mean(dim=(2, 3)).view(x.shape[0], -1))


@pytest.fixture(scope="module")
def tiny():
    with torch.device("meta"):
        model = Tiny()
    return arch.module_features(model, SIZE, batch_size=6)


def test_family_flops_match_the_layer_arithmetic(tiny):
    pixels = SIZE * SIZE
    conv_fwd = 2 * pixels * 8 * 3 * 9  # 2 x outputs x (in channels / groups) x kernel
    dw_fwd = 2 * pixels * 8 * 1 * 9
    fc_fwd = 2 * 8 * 4
    # backward: the first conv needs no input gradient (the image), only its weight gradient
    assert tiny["flops_per_sample_conv"] == pytest.approx(conv_fwd * 2)
    assert tiny["flops_per_sample_conv_grouped"] == pytest.approx(dw_fwd * 3)
    assert tiny["flops_per_sample_matmul"] == pytest.approx(fc_fwd * 3, rel=0.01)
    assert tiny["flops_per_sample_forward"] > conv_fwd + dw_fwd + fc_fwd  # + norm, elementwise
    assert tiny["flops_per_sample_norm"] > 0 and tiny["flops_per_sample_elementwise"] > 0
    assert tiny["flops_per_sample_attention"] == 0


def test_counter_overcounts_grouped_weight_gradients_and_we_do_not(tiny):
    """FlopCounterMode's weight-gradient formula ignores groups (x8 for this depthwise layer)."""
    ours = tiny["flops_per_sample_conv"] + tiny["flops_per_sample_conv_grouped"]
    assert tiny["flops_per_sample_counted"] > ours + 6 * 2 * SIZE * SIZE * 8 * 9


def test_per_step_quantities_do_not_depend_on_the_batch():
    with torch.device("meta"):
        model = Tiny()
    a = arch.module_features(model, SIZE, batch_size=4)
    b = arch.module_features(model, SIZE, batch_size=16)
    for key in ("op_calls_per_step", "flops_per_sample", "bytes_per_sample",
                "activation_bytes_per_sample"):
        assert a[key] == pytest.approx(b[key]), key
    # views (view, transpose) launch nothing; one step of Tiny runs a few dozen kernels
    assert 10 < a["op_calls_per_step"] < 60 and a["op_calls_forward"] < a["op_calls_per_step"]
    assert a["params"] == 3 * 8 * 9 + 2 * 8 + 8 * 9 + 8 * 4 + 4


def test_real_timm_model_matches_the_published_flops():
    """timm resnet18 at 32 px: 0.038 GMACs forward in EE-Training's records."""
    f = arch.architecture_features("resnet18", 32, source="timm")
    assert f["flops_per_sample_forward"] / 2 / 1e9 == pytest.approx(0.038, rel=0.05)
    assert f["source"] == "timm" and f["default_input_size_px"] == 224
    assert f["flops_per_sample"] == pytest.approx(3 * f["flops_per_sample_forward"], rel=0.05)


@pytest.mark.slow
def test_nasnet_mobile_equivalent_matches_keras_counts():
    """Keras NASNetMobile at 128 px: 185.8 M multiply-adds with the SEAA 2023 head (their
    profiler's file), 4.27 M backbone parameters (Keras' documented size)."""
    f = arch.architecture_features("nasnet_mobile", 128, source="seaa2023-keras")
    assert f["flops_per_sample_forward"] / 2 / 1e6 == pytest.approx(185.8, rel=0.05)
    head = 1056 * 512 + 512 + 512 * 2 + 2
    assert (f["params"] - head) / 1e6 == pytest.approx(4.27, rel=0.05)
    assert "timm has no NASNet-Mobile" in f["feature_note"]


def test_fused_attention_counts_one_call_each_way():
    with torch.device("meta"):
        attn = nn.MultiheadAttention(16, 2, batch_first=True)

    class Seq(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Conv2d(3, 16, 4, stride=4)
            self.attn = attn
            self.head = nn.Linear(16, 3)

        def forward(self, x):
            t = self.embed(x).flatten(2).transpose(1, 2)
            return self.head(self.attn(t, t, t, need_weights=False)[0].mean(1))

    with torch.device("meta"):
        model = Seq()
    prof = arch.profile_step(model, SIZE, 2)
    ops = prof.ops[prof.ops["family"] == "attention"]
    assert len(ops) == 2 and set(ops["phase"]) == {"forward", "backward"}
    assert ops["flops"].gt(0).all()


def test_unknown_model_and_source():
    with pytest.raises(KeyError, match="neither torchvision nor timm"):
        arch.resolve_source("no_such_net")
    with pytest.raises(KeyError, match="no SEAA 2023 Keras model"):
        arch.architecture_features("resnet18", 64, source="seaa2023-keras")
    assert arch.resolve_source("resnet18") == "torchvision"
    assert arch.resolve_source("mobilenetv2_100") == "timm"


def test_committed_table_has_every_row_and_column():
    table = architecture_table.read_table()
    keys = set(zip(table["architecture"], table["input_size_px"], table["source"],
                   strict=True))
    assert keys == set(arch.table_rows())
    assert table[list(architecture_table.FEATURE_COLUMNS)].notna().all().all()
    assert table["feature_note"].str.contains("NASNet").any()
    row = table[(table["architecture"] == "vgg16") & (table["source"] == "seaa2023-keras")]
    fresh = arch.architecture_features("vgg16", 128, source="seaa2023-keras")
    for key in architecture_table.FEATURE_COLUMNS:
        assert float(row[key].iloc[0]) == pytest.approx(float(fresh[key]), rel=1e-9), key


def test_run_features_rules():
    runs = pd.DataFrame({
        "architecture": ["resnet18", "mobilenet_v2", "resnet18", "nope", "resnet18"],
        "dataset": ["ee-training", "seaa2023", "gpu-h100", "x", "gpu-h100"],
        "input_size_px": [float("nan"), float("nan"), 32.0, 224.0, 77.0]})
    out = architecture_table.run_features(runs)
    f = out.features
    assert list(f["feature_source"][:3]) == ["timm", "seaa2023-keras", "torchvision"]
    assert list(f["feature_input_size_px"][:3]) == [224, 128, 32]
    assert list(f["input_size_rule"][:3]) == ["model's default input size",
                                              "dataset's training code", "recorded"]
    assert "not in the feature table" in out.reasons[3]
    assert "at 77 px not in the feature table" in out.reasons[4]
    assert f.loc[[3, 4], "flops_per_sample"].isna().all()
