"""GPU spec table lookups (helpers.core.gpu_specs)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from helpers.core import gpu_specs


@pytest.mark.parametrize(("reported", "name", "tdp_w", "memory_gb"), [
    ("NVIDIA GeForce RTX 3090", "RTX 3090", 350, 24),
    ("NVIDIA GeForce RTX 3070", "RTX 3070", 220, 8),
    ("NVIDIA GeForce GTX 750 Ti", "GTX 750 Ti", 60, 2),
    ("1 x NVIDIA GeForce RTX 3090", "RTX 3090", 350, 24),
    ("RTX3090", "RTX 3090", 350, 24),
    ("Tesla V100-SXM2-32GB", "V100 SXM2 32GB", 300, 32),
    ("Tesla T4", "T4", 70, 16),
    ("NVIDIA A100-SXM4-80GB", "A100 SXM4 80GB", 400, 80),
    ("NVIDIA A100-PCIE-40GB", "A100 PCIe 40GB", 250, 40),
    ("NVIDIA A100 80GB PCIe", "A100 PCIe 80GB", 300, 80),
    ("NVIDIA L4", "L4", 72, 24),
    ("NVIDIA H100 80GB HBM3", "H100 SXM", 700, 80),
    ("NVIDIA H100 PCIe", "H100 PCIe", 350, 80),
    ("NVIDIA H200", "H200 SXM", 700, 141),
    ("NVIDIA H200 NVL", "H200 NVL", 600, 141),
])
def test_lookup_reported_names(reported, name, tdp_w, memory_gb):
    spec = gpu_specs.lookup(reported)
    assert (spec.name, spec.tdp_w, spec.memory_gb) == (name, tdp_w, memory_gb)


def test_variant_is_not_read_as_base_model():
    with pytest.raises(gpu_specs.UnknownGPUError, match="not in the GPU spec table"):
        gpu_specs.lookup("NVIDIA GeForce RTX 3070 Ti")


def test_ambiguous_and_unknown_names():
    with pytest.raises(KeyError, match="ambiguous"):
        gpu_specs.lookup("NVIDIA H100")
    with pytest.raises(KeyError, match="empty"):
        gpu_specs.lookup("")


def test_spec_features_nan_with_reason():
    feats = gpu_specs.spec_features(pd.Series(["NVIDIA GeForce RTX 3090", "Voodoo 2"]))
    assert feats.loc[0, "gpu_cuda_cores"] == 10496
    assert math.isnan(feats.loc[1, "gpu_tdp_w"])
    assert "not in the GPU spec table" in feats.loc[1, "gpu_spec_status"]
    assert len(gpu_specs.table()) == len(gpu_specs.GPU_SPECS)


def test_throughput_bandwidth_and_precision():
    rtx = gpu_specs.lookup("NVIDIA GeForce RTX 3090")
    assert (rtx.fp32_tflops, rtx.tf32_tflops, rtx.fp16_tflops) == (35.58, 35.58, 71.0)
    assert (rtx.memory_bandwidth_gbs, rtx.sm_count) == (936, 82)
    h100 = gpu_specs.lookup("NVIDIA H100 80GB HBM3")
    assert h100.peak_tflops("tf32") == 494.5 and h100.peak_tflops("bf16") == 989.5
    v100 = gpu_specs.lookup("Tesla V100-SXM2-32GB")  # no TF32: fp32 math on the CUDA cores
    assert v100.peak_tflops("tf32") == v100.fp32_tflops == 15.7
    pascal = gpu_specs.lookup("NVIDIA GeForce GTX 1080 Ti")  # no tensor cores at all
    assert pascal.peak_tflops("fp16") == pascal.fp32_tflops
    with pytest.raises(ValueError, match="unknown precision"):
        rtx.peak_tflops("int8")
    table = gpu_specs.table()
    assert table[["fp32_tflops", "memory_bandwidth_gbs", "sm_count"]].gt(0).all().all()
    assert table["performance_source"].str.len().gt(0).all()
    # a chip never runs tensor math slower than its CUDA cores, nor mixed precision below TF32
    tf32 = table["tf32_tflops"].fillna(table["fp32_tflops"])
    assert (tf32 >= table["fp32_tflops"]).all()
    assert (table["fp16_tflops"].dropna() >= tf32[table["fp16_tflops"].notna()]).all()


def test_find_returns_none_for_unknown_or_ambiguous():
    assert gpu_specs.find("NVIDIA L40S").name == "L40S"
    assert gpu_specs.find("NVIDIA H100") is None
    assert gpu_specs.find("Voodoo 2") is None
    feats = gpu_specs.spec_features(pd.Series(["NVIDIA A10", "Voodoo 2"]))
    assert feats.loc[0, "gpu_memory_bandwidth_gbs"] == 600
    assert math.isnan(feats.loc[1, "gpu_tf32_tflops"])
