"""GPU specification table: board power (TDP, W), memory (GB), CUDA cores and architecture,
peak dense throughput per precision (FP32, TF32 tensor, FP16/BF16 tensor; TFLOPS), memory
bandwidth (GB/s) and SM count (the roofline inputs of the pre-training estimators,
docs/methods.md#estimators).

Values are the vendor's published specifications for the reference board (NVIDIA product pages
and datasheets; the ``source`` field of each entry names the document). Board-partner cards may
ship with other power limits (the SEAA 2023 RTX 3070 reports a 240 W limit against the 220 W
reference), so where a run records its own power limit (``gpu_power_limit_w``) that value is the
one to use, and this table is the fallback and the source of memory/core features.

Lookup is tolerant of the names tools report (``'NVIDIA GeForce RTX 3090'``, ``'Tesla T4'``,
``'NVIDIA A100-SXM4-80GB'``, ``'NVIDIA H100 80GB HBM3'``): the name is split into lower-case
tokens, vendor words are dropped, and the most specific entry whose alias tokens are all present
wins; a bare family name ('H100', 'A100 80GB') that fits several entries equally is reported as
ambiguous. A name carrying a variant token the entry does not (``Ti``, ``SUPER``, ``Laptop``, a form
factor) does not match it, so an RTX 3070 Ti is never silently read as an RTX 3070.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

import pandas as pd


@dataclass(frozen=True)
class GPUSpec:
    """One GPU model.

    Attributes:
        name: canonical short name (the table key).
        tdp_w: board power / thermal design power of the reference card (W).
        memory_gb: on-board memory (GB).
        cuda_cores: CUDA cores (FP32 lanes).
        architecture: architecture generation (Maxwell, Pascal, Volta, Turing, Ampere, Ada
            Lovelace, Hopper).
        segment: 'consumer' or 'data-centre'.
        source: vendor document the values come from.
        aliases: token sets that identify the model in reported names (see module docstring).
        fp32_tflops: peak FP32 throughput of the CUDA cores, no tensor cores (TFLOPS, dense,
            at the reference boost clock).
        tf32_tflops: peak TF32 tensor-core throughput (TFLOPS, dense, no sparsity); NaN before
            Ampere (no TF32: FP32 math runs on the CUDA cores).
        fp16_tflops: peak FP16/BF16 tensor-core throughput with FP32 accumulation, as mixed
            precision uses it (TFLOPS, dense, no sparsity; GeForce cards run FP32 accumulation
            at half their FP16-accumulate rate); packed FP16 on Pascal; NaN without either.
        memory_bandwidth_gbs: peak memory bandwidth (GB/s).
        sm_count: streaming multiprocessors.
        performance_source: document of the throughput, bandwidth and SM numbers.
    """

    name: str
    tdp_w: float
    memory_gb: float
    cuda_cores: int
    architecture: str
    segment: str
    source: str
    aliases: tuple[frozenset[str], ...]
    fp32_tflops: float = math.nan
    tf32_tflops: float = math.nan
    fp16_tflops: float = math.nan
    memory_bandwidth_gbs: float = math.nan
    sm_count: int = 0
    performance_source: str = ""

    def peak_tflops(self, precision: str = "tf32") -> float:
        """Peak dense throughput (TFLOPS) of the math a training run at ``precision`` uses:
        'fp32' the CUDA cores; 'tf32' (fp32 tensors, the frameworks' default for
        convolutions on Ampere and later) the TF32 tensor cores, else FP32; 'fp16'/'bf16'/'amp'
        the FP16 tensor cores (FP32 accumulation), else the best of the others."""
        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r}; choose from "
                             f"{', '.join(PRECISIONS)}")
        fp32 = self.fp32_tflops
        tf32 = self.tf32_tflops if math.isfinite(self.tf32_tflops) else fp32
        if precision == "fp32":
            return fp32
        if precision == "tf32":
            return tf32
        return self.fp16_tflops if math.isfinite(self.fp16_tflops) else tf32


#: Precisions :meth:`GPUSpec.peak_tflops` knows.
PRECISIONS = ("fp32", "tf32", "fp16", "bf16", "amp")


class UnknownGPUError(KeyError):
    """Raised when a GPU name matches no table entry, or several equally well."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"GPU {name!r}: {reason}")

    def __str__(self) -> str:  # KeyError would otherwise show the repr of the message
        return self.args[0]


#: Tokens dropped from reported names before matching.
_VENDOR_TOKENS = frozenset({"nvidia", "geforce", "tesla", "quadro", "graphics", "gpu"})
#: Tokens that mark a different product when present in the name but not in the entry's alias.
_VARIANT_TOKENS = frozenset({
    "ti", "super", "laptop", "mobile", "maxq", "nvl", "sxm", "sxm2", "sxm4", "sxm5", "pcie",
    "hbm3", "hbm3e", "hbm2e",
})

_NV = "NVIDIA"


def _a(*alts: str) -> tuple[frozenset[str], ...]:
    """Alias token sets from space-separated strings."""
    return tuple(frozenset(a.split()) for a in alts)


def _spec(name: str, tdp_w: float, memory_gb: float, cuda_cores: int, architecture: str,
          segment: str, source: str, aliases: tuple[frozenset[str], ...]) -> GPUSpec:
    return GPUSpec(name, float(tdp_w), float(memory_gb), int(cuda_cores), architecture, segment,
                   source, aliases)


_C, _D = "consumer", "data-centre"

#: Canonical name -> spec. Sources: NVIDIA product specification pages (GeForce) and product
#: datasheets (data-centre boards), reference/Founders Edition values.
_BASE_SPECS: dict[str, GPUSpec] = {s.name: s for s in [
    # --- consumer (GeForce product pages, "Graphics Card Power" / TDP of the reference board)
    _spec("GTX 750 Ti", 60, 2, 640, "Maxwell", _C,
          f"{_NV} GeForce GTX 750 Ti specifications page", _a("gtx 750 ti", "750 ti")),
    _spec("GTX 1080 Ti", 250, 11, 3584, "Pascal", _C,
          f"{_NV} GeForce GTX 1080 Ti specifications page", _a("gtx 1080 ti", "1080 ti")),
    _spec("RTX 2080 Ti", 250, 11, 4352, "Turing", _C,
          f"{_NV} GeForce RTX 2080 Ti specifications page (reference 250 W; FE 260 W)",
          _a("rtx 2080 ti", "2080 ti")),
    _spec("RTX 3060", 170, 12, 3584, "Ampere", _C,
          f"{_NV} GeForce RTX 3060 family specifications page", _a("rtx 3060", "3060")),
    _spec("RTX 3070", 220, 8, 5888, "Ampere", _C,
          f"{_NV} GeForce RTX 3070 family specifications page", _a("rtx 3070", "3070")),
    _spec("RTX 3080", 320, 10, 8704, "Ampere", _C,
          f"{_NV} GeForce RTX 3080 family specifications page (10 GB model)",
          _a("rtx 3080", "3080")),
    _spec("RTX 3090", 350, 24, 10496, "Ampere", _C,
          f"{_NV} GeForce RTX 3090 family specifications page", _a("rtx 3090", "3090")),
    _spec("RTX 3090 Ti", 450, 24, 10752, "Ampere", _C,
          f"{_NV} GeForce RTX 3090 Ti specifications page", _a("rtx 3090 ti", "3090 ti")),
    _spec("RTX 4080", 320, 16, 9728, "Ada Lovelace", _C,
          f"{_NV} GeForce RTX 4080 family specifications page", _a("rtx 4080", "4080")),
    _spec("RTX 4090", 450, 24, 16384, "Ada Lovelace", _C,
          f"{_NV} GeForce RTX 4090 specifications page", _a("rtx 4090", "4090")),
    # --- data-centre (product datasheets, "Max thermal design power")
    _spec("P100 PCIe", 250, 16, 3584, "Pascal", _D,
          f"{_NV} Tesla P100 PCIe datasheet (16 GB)", _a("p100 pcie", "p100")),
    _spec("V100 PCIe", 250, 16, 5120, "Volta", _D,
          f"{_NV} V100 Tensor Core GPU datasheet (PCIe)",
          _a("v100", "v100 pcie", "v100 pcie 16gb")),
    _spec("V100 PCIe 32GB", 250, 32, 5120, "Volta", _D,
          f"{_NV} V100 Tensor Core GPU datasheet (PCIe 32 GB)", _a("v100 pcie 32gb")),
    _spec("V100 SXM2", 300, 16, 5120, "Volta", _D,
          f"{_NV} V100 Tensor Core GPU datasheet (SXM2)",
          _a("v100", "v100 sxm2", "v100 sxm2 16gb")),
    _spec("V100 SXM2 32GB", 300, 32, 5120, "Volta", _D,
          f"{_NV} V100 Tensor Core GPU datasheet (SXM2 32 GB)", _a("v100 sxm2 32gb")),
    _spec("T4", 70, 16, 2560, "Turing", _D, f"{_NV} T4 Tensor Core GPU datasheet", _a("t4")),
    _spec("A10", 150, 24, 9216, "Ampere", _D, f"{_NV} A10 Tensor Core GPU datasheet", _a("a10")),
    _spec("A40", 300, 48, 10752, "Ampere", _D, f"{_NV} A40 datasheet", _a("a40")),
    _spec("A100 PCIe 40GB", 250, 40, 6912, "Ampere", _D,
          f"{_NV} A100 Tensor Core GPU datasheet (PCIe 40 GB)",
          _a("a100", "a100 pcie", "a100 pcie 40gb")),
    _spec("A100 PCIe 80GB", 300, 80, 6912, "Ampere", _D,
          f"{_NV} A100 Tensor Core GPU datasheet (PCIe 80 GB)", _a("a100 pcie 80gb")),
    _spec("A100 SXM4 40GB", 400, 40, 6912, "Ampere", _D,
          f"{_NV} A100 Tensor Core GPU datasheet (SXM4 40 GB)",
          _a("a100", "a100 sxm4 40gb", "a100 sxm 40gb", "a100 sxm4")),
    _spec("A100 SXM4 80GB", 400, 80, 6912, "Ampere", _D,
          f"{_NV} A100 Tensor Core GPU datasheet (SXM4 80 GB)",
          _a("a100 sxm4 80gb", "a100 sxm 80gb")),
    _spec("L4", 72, 24, 7424, "Ada Lovelace", _D, f"{_NV} L4 Tensor Core GPU datasheet",
          _a("l4")),
    _spec("L40S", 350, 48, 18176, "Ada Lovelace", _D, f"{_NV} L40S datasheet", _a("l40s")),
    _spec("H100 PCIe", 350, 80, 14592, "Hopper", _D,
          f"{_NV} H100 Tensor Core GPU datasheet (PCIe: 300-350 W configurable, max listed)",
          _a("h100", "h100 pcie", "h100 pcie 80gb")),
    _spec("H100 SXM", 700, 80, 16896, "Hopper", _D,
          f"{_NV} H100 Tensor Core GPU datasheet (SXM5, up to 700 W)",
          _a("h100", "h100 sxm", "h100 sxm5", "h100 hbm3", "h100 80gb hbm3")),
    _spec("H200 SXM", 700, 141, 16896, "Hopper", _D,
          f"{_NV} H200 Tensor Core GPU datasheet (SXM, up to 700 W)",
          _a("h200", "h200 sxm", "h200 141gb hbm3e")),
    _spec("H200 NVL", 600, 141, 16896, "Hopper", _D,
          f"{_NV} H200 Tensor Core GPU datasheet (NVL, up to 600 W)", _a("h200 nvl")),
]}

_AMP = f"{_NV} Ampere GA102 GPU architecture whitepaper (v2.1), appendix A"
_ADA = f"{_NV} Ada GPU architecture whitepaper (v2.1), appendix A"
_TUR = f"{_NV} Turing GPU architecture whitepaper, appendix A"

#: Canonical name -> (FP32, TF32 tensor, FP16/BF16 tensor with FP32 accumulation) TFLOPS dense,
#: memory bandwidth GB/s, SMs, source. Reference boost clocks; sparsity figures halved.
#: Pascal and Maxwell have no tensor cores (P100: packed FP16 on the CUDA cores).
_PERFORMANCE: dict[str, tuple[float, float, float, float, int, str]] = {
    "GTX 750 Ti": (1.31, math.nan, math.nan, 86.4, 5,
                   f"{_NV} GeForce GTX 750 Ti specifications page (640 cores x 1020 MHz boost)"),
    "GTX 1080 Ti": (11.34, math.nan, math.nan, 484, 28,
                    f"{_NV} GeForce GTX 1080 Ti specifications page (3584 cores x 1582 MHz)"),
    "RTX 2080 Ti": (13.45, math.nan, 53.8, 616, 68, _TUR + " (reference board)"),
    "RTX 3060": (12.74, 12.74, 25.5, 360, 28, _AMP.replace("GA102", "GA10x")),
    "RTX 3070": (20.31, 20.31, 40.6, 448, 46, _AMP),
    "RTX 3080": (29.77, 29.77, 59.5, 760, 68, _AMP),
    "RTX 3090": (35.58, 35.58, 71.0, 936, 82, _AMP),
    "RTX 3090 Ti": (40.0, 40.0, 80.0, 1008, 84,
                    f"{_NV} GeForce RTX 3090 Ti specifications page; rates as {_AMP}"),
    "RTX 4080": (48.7, 48.7, 97.5, 716.8, 76, _ADA),
    "RTX 4090": (82.6, 82.6, 165.2, 1008, 128, _ADA),
    "P100 PCIe": (9.3, math.nan, 18.7, 732, 56, f"{_NV} Tesla P100 PCIe datasheet"),
    "V100 PCIe": (14.0, math.nan, 112.0, 900, 80, f"{_NV} V100 Tensor Core GPU datasheet"),
    "V100 PCIe 32GB": (14.0, math.nan, 112.0, 900, 80, f"{_NV} V100 Tensor Core GPU datasheet"),
    "V100 SXM2": (15.7, math.nan, 125.0, 900, 80, f"{_NV} V100 Tensor Core GPU datasheet"),
    "V100 SXM2 32GB": (15.7, math.nan, 125.0, 900, 80,
                       f"{_NV} V100 Tensor Core GPU datasheet"),
    "T4": (8.1, math.nan, 65.0, 320, 40, f"{_NV} T4 Tensor Core GPU datasheet"),
    "A10": (31.2, 62.5, 125.0, 600, 72, f"{_NV} A10 Tensor Core GPU datasheet"),
    "A40": (37.4, 74.8, 149.7, 696, 84, f"{_NV} A40 datasheet"),
    "A100 PCIe 40GB": (19.5, 156.0, 312.0, 1555, 108,
                       f"{_NV} A100 Tensor Core GPU datasheet; A100 architecture whitepaper"),
    "A100 PCIe 80GB": (19.5, 156.0, 312.0, 1935, 108, f"{_NV} A100 Tensor Core GPU datasheet"),
    "A100 SXM4 40GB": (19.5, 156.0, 312.0, 1555, 108,
                       f"{_NV} A100 Tensor Core GPU datasheet; A100 architecture whitepaper"),
    "A100 SXM4 80GB": (19.5, 156.0, 312.0, 2039, 108, f"{_NV} A100 Tensor Core GPU datasheet"),
    "L4": (30.3, 60.0, 121.0, 300, 58, f"{_NV} L4 Tensor Core GPU datasheet"),
    "L40S": (91.6, 183.0, 362.05, 864, 142, f"{_NV} L40S datasheet"),
    "H100 PCIe": (51.0, 378.0, 756.0, 2000, 114,
                  f"{_NV} H100 Tensor Core GPU datasheet (PCIe); H100 whitepaper (114 SMs)"),
    "H100 SXM": (67.0, 494.5, 989.5, 3350, 132,
                 f"{_NV} H100 Tensor Core GPU datasheet (SXM); H100 whitepaper (132 SMs)"),
    "H200 SXM": (67.0, 494.5, 989.5, 4800, 132, f"{_NV} H200 Tensor Core GPU datasheet (SXM)"),
    "H200 NVL": (60.0, 417.5, 835.5, 4800, 132, f"{_NV} H200 Tensor Core GPU datasheet (NVL)"),
}

#: Canonical name -> spec (the board values above with the throughput, bandwidth and SM count
#: of ``_PERFORMANCE``).
GPU_SPECS: dict[str, GPUSpec] = {
    name: replace(spec, **dict(zip(
        ("fp32_tflops", "tf32_tflops", "fp16_tflops", "memory_bandwidth_gbs", "sm_count",
         "performance_source"), _PERFORMANCE[name], strict=True)))
    for name, spec in _BASE_SPECS.items()}


def _tokens(name: str) -> frozenset[str]:
    """Lower-case tokens of a reported GPU name, vendor words dropped.

    ``'NVIDIA A100-SXM4-80GB'`` -> {a100, sxm4, 80gb}; ``'RTX3090'`` -> {rtx, 3090};
    ``'1 x NVIDIA GeForce RTX 3090'`` -> {rtx, 3090} (a leading count is dropped).
    """
    text = name.lower().replace("max-q", "maxq")
    text = re.sub(r"^\s*\d+\s*x\s+", "", text)  # CodeCarbon-style "1 x NVIDIA ..."
    text = re.sub(r"\b(rtx|gtx)(\d)", r"\1 \2", text)
    return frozenset(t for t in re.split(r"[^a-z0-9]+", text) if t) - _VENDOR_TOKENS


def _score(spec: GPUSpec, tokens: frozenset[str]) -> int:
    """Size of the largest alias of ``spec`` contained in ``tokens`` whose leftover tokens carry
    no variant marker; 0 when none matches."""
    best = 0
    for alias in spec.aliases:
        if alias <= tokens and not ((tokens - alias) & _VARIANT_TOKENS):
            best = max(best, len(alias))
    return best


def lookup(name: str) -> GPUSpec:
    """Return the spec of the GPU called ``name`` (a reported name or a table key).

    Raises ``UnknownGPUError`` (a ``KeyError``) naming the reason when no entry matches or when
    two entries match equally well (e.g. a bare 'H100', which may be PCIe or SXM).
    """
    if not isinstance(name, str) or not name.strip():
        raise UnknownGPUError(str(name), "empty or missing GPU name")
    if name in GPU_SPECS:
        return GPU_SPECS[name]
    tokens = _tokens(name)
    scored = [(s, _score(s, tokens)) for s in GPU_SPECS.values()]
    top = max(score for _, score in scored)
    if top == 0:
        raise UnknownGPUError(name, "not in the GPU spec table (helpers.core.gpu_specs.GPU_SPECS)")
    best = [s for s, score in scored if score == top]
    if len(best) > 1:
        names = ", ".join(s.name for s in best)
        raise UnknownGPUError(name, f"ambiguous: matches {names} equally well")
    return best[0]


def find(name: str) -> GPUSpec | None:
    """The spec of the GPU called ``name`` (e.g. the local GPU's NVML name), or None when the
    table has no entry for it or several equally good ones (see :func:`lookup`)."""
    try:
        return lookup(name)
    except UnknownGPUError:
        return None


#: Performance columns of :func:`spec_features` -> ``GPUSpec`` attribute.
PERFORMANCE_COLUMNS = {"gpu_fp32_tflops": "fp32_tflops", "gpu_tf32_tflops": "tf32_tflops",
                       "gpu_fp16_tflops": "fp16_tflops",
                       "gpu_memory_bandwidth_gbs": "memory_bandwidth_gbs",
                       "gpu_sm_count": "sm_count"}


def spec_features(names: pd.Series) -> pd.DataFrame:
    """Per-row GPU spec features for a column of reported GPU names.

    Returns a frame indexed like ``names`` with ``gpu_spec_name``, ``gpu_tdp_w``,
    ``gpu_memory_gb``, ``gpu_cuda_cores``, ``gpu_architecture``, ``gpu_spec_status`` ('ok' or
    the reason the name could not be resolved, in which case the numbers are NaN) and the
    :data:`PERFORMANCE_COLUMNS` (TFLOPS, GB/s, SMs).
    """
    rows = {}
    n_perf = len(PERFORMANCE_COLUMNS)
    for name in pd.unique(names):
        try:
            s = lookup(name)
            rows[name] = (s.name, s.tdp_w, s.memory_gb, float(s.cuda_cores), s.architecture,
                          "ok", *(float(getattr(s, a)) for a in PERFORMANCE_COLUMNS.values()))
        except UnknownGPUError as err:
            rows[name] = (None, math.nan, math.nan, math.nan, None, err.reason,
                          *([math.nan] * n_perf))
    cols = ["gpu_spec_name", "gpu_tdp_w", "gpu_memory_gb", "gpu_cuda_cores", "gpu_architecture",
            "gpu_spec_status", *PERFORMANCE_COLUMNS]
    return pd.DataFrame([rows[n] for n in names], index=names.index, columns=cols)


def table() -> pd.DataFrame:
    """The spec table as a DataFrame (one row per GPU, aliases omitted)."""
    return pd.DataFrame([
        {"name": s.name, "tdp_w": s.tdp_w, "memory_gb": s.memory_gb, "cuda_cores": s.cuda_cores,
         "architecture": s.architecture, "segment": s.segment, "source": s.source,
         "fp32_tflops": s.fp32_tflops, "tf32_tflops": s.tf32_tflops,
         "fp16_tflops": s.fp16_tflops, "memory_bandwidth_gbs": s.memory_bandwidth_gbs,
         "sm_count": s.sm_count, "performance_source": s.performance_source}
        for s in GPU_SPECS.values()
    ])
