"""Which numeric precision a CPU run should use: bf16 autocast where the CPU computes bf16 natively.

On CPUs with AVX512-BF16 or AMX-BF16, oneDNN runs convolutions and matrix products in bf16 (weights, their
gradients and the optimizer stay fp32 under autocast): a CIFAR ResNet-32 step measured 1.7-2.1x faster than
fp32 on an AMD EPYC with AVX512-BF16 (benchmarks/results/training_speed.txt), 1.5-2.6x on a Xeon with AMX.
Elsewhere bf16 is emulated and slower, so the choice falls back to fp32 with one note.
Configs call it as ``precision: ${neurogrow.cpu_precision:}`` (registered by the train entry,
`neurogrow.cli.train`).
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from omegaconf import OmegaConf

__all__ = ["BF16_CPU_FLAGS", "cpu_bf16_supported", "cpu_flags", "cpu_precision", "register_resolvers"]

log = logging.getLogger("neurogrow")

BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def _cpuinfo_field(name: str, cpuinfo: Path) -> str | None:
    """The value of the first ``name`` line of ``/proc/cpuinfo`` (None where there is none)."""
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith(name):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The instruction-set flags of the first CPU in ``/proc/cpuinfo`` (empty where there is none)."""
    return set((_cpuinfo_field("flags", cpuinfo) or "").split())


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name, for benchmark output (``platform.processor()`` where cpuinfo has none)."""
    import platform

    return _cpuinfo_field("model name", cpuinfo) or platform.processor() or "unknown"


def cpu_bf16_supported(flags: set[str] | None = None) -> bool:
    """True when oneDNN can run bf16 natively: mkldnn built in and the CPU has AVX512-BF16 or AMX-BF16."""
    import torch  # here, not at import: the CLIs register this resolver before they need torch

    flags = cpu_flags() if flags is None else flags
    return bool(torch.backends.mkldnn.is_available() and flags.intersection(BF16_CPU_FLAGS))


@functools.cache
def cpu_precision() -> str:
    """``"bf16-mixed"`` where the CPU supports bf16 natively, else ``"32-true"`` with a one-line note."""
    if cpu_bf16_supported():
        return "bf16-mixed"
    log.warning("trainer=cpu_fast: this CPU has no avx512_bf16/amx_bf16, so training runs in fp32 (32-true)")
    return "32-true"


def register_resolvers() -> None:
    """Register ``${neurogrow.cpu_precision:}`` with OmegaConf (idempotent)."""
    if not OmegaConf.has_resolver("neurogrow.cpu_precision"):
        OmegaConf.register_new_resolver("neurogrow.cpu_precision", cpu_precision)
