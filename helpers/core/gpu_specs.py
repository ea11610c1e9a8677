"""GPU specification table: board power (TDP, W), memory (GB), CUDA cores and architecture.

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
from dataclasses import dataclass

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
    """

    name: str
    tdp_w: float
    memory_gb: float
    cuda_cores: int
    architecture: str
    segment: str
    source: str
    aliases: tuple[frozenset[str], ...]


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
GPU_SPECS: dict[str, GPUSpec] = {s.name: s for s in [
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


def spec_features(names: pd.Series) -> pd.DataFrame:
    """Per-row GPU spec features for a column of reported GPU names.

    Returns a frame indexed like ``names`` with ``gpu_spec_name``, ``gpu_tdp_w``,
    ``gpu_memory_gb``, ``gpu_cuda_cores``, ``gpu_architecture`` and ``gpu_spec_status`` ('ok' or
    the reason the name could not be resolved, in which case the numbers are NaN).
    """
    rows = {}
    for name in pd.unique(names):
        try:
            s = lookup(name)
            rows[name] = (s.name, s.tdp_w, s.memory_gb, float(s.cuda_cores), s.architecture,
                          "ok")
        except UnknownGPUError as err:
            rows[name] = (None, math.nan, math.nan, math.nan, None, err.reason)
    cols = ["gpu_spec_name", "gpu_tdp_w", "gpu_memory_gb", "gpu_cuda_cores", "gpu_architecture",
            "gpu_spec_status"]
    return pd.DataFrame([rows[n] for n in names], index=names.index, columns=cols)


def table() -> pd.DataFrame:
    """The spec table as a DataFrame (one row per GPU, aliases omitted)."""
    return pd.DataFrame([
        {"name": s.name, "tdp_w": s.tdp_w, "memory_gb": s.memory_gb, "cuda_cores": s.cuda_cores,
         "architecture": s.architecture, "segment": s.segment, "source": s.source}
        for s in GPU_SPECS.values()
    ])
