"""Unit conversions and energy-model constants, each defined here once (docs/methods.md#energy).

Every other module imports these names; none writes the numbers itself (a test scans the package
for stray literals). Memory sizes in the raw files are MiB throughout: the sampler's
``process_rss_mb``, ``system_ram_used_mb`` and GPU memory (bytes / 2**20), and the published
SEAA 2023 psutil logs' ``memory usage (MB)`` (every one of their 892 114 values is a whole number
of 4096-byte pages divided by 2**20, to the 3 decimals printed; as bytes / 10**6 only a quarter
would be). The Green Algorithms RAM model counts decimal GB, hence :data:`GB_PER_MIB`.
"""

from __future__ import annotations

# -- energy, time, mass ----------------------------------------------------------------------
#: Joules per kilowatt-hour (J/kWh): 1000 W x 3600 s (SI).
J_PER_KWH = 3.6e6
#: Grams per kilogram (g/kg): CodeCarbon's ``emissions`` column is kg, the run table's grams.
G_PER_KG = 1000.0
#: Milliseconds per second (ms/s): raw time stamps are ms since the Unix epoch.
MS_PER_S = 1000.0

# -- memory sizes ----------------------------------------------------------------------------
#: Bytes per MiB (B/MiB): psutil and NVML report bytes; raw files store MiB (IEC binary prefix).
BYTES_PER_MIB = float(2**20)
#: KiB per MiB: /proc/meminfo reports kB that are KiB.
KIB_PER_MIB = 1024.0
#: MiB per GiB: CodeCarbon's ``ram_used_gb`` is psutil bytes / 2**30 (GiB).
MIB_PER_GIB = 1024.0
#: Bytes per GB (B/GB), decimal SI prefix: the unit of the Green Algorithms RAM model.
BYTES_PER_GB = 1e9
#: GB per MiB (GB/MiB) = 1.048576e-3: converts raw memory columns for the RAM model.
GB_PER_MIB = BYTES_PER_MIB / BYTES_PER_GB

# -- energy models ---------------------------------------------------------------------------
#: RAM power per GB in use (W/GB), Green Algorithms (Lannelongue et al. 2021, "memory power
#: 0.3725 W/GB"). The SEAA 2023 study used 0.375 W/GB (docs/methods.md#energy).
RAM_W_PER_GB = 0.3725
#: CPU power per core for an unknown CPU model (W/core): Green Algorithms' ``TDP_cpu.csv``,
#: model "Any". Used for the sampler's TDP x utilisation estimate and the Green Algorithms
#: baseline estimator.
DEFAULT_CPU_TDP_W_PER_CORE = 12.0
#: Grid carbon intensity (g CO2e/kWh) the SEAA 2023 study used for Spain; the default of
#: notebooks 01 and 03 (``carbon_intensity_g_per_kwh``).
DEFAULT_CARBON_INTENSITY_G_PER_KWH = 232.0


def mib_to_gb(mib: float) -> float:
    """Memory in MiB -> decimal GB (x :data:`GB_PER_MIB`); numpy arrays work element-wise."""
    return mib * GB_PER_MIB
