"""What this CPU does fast, measured once per process.

bfloat16 matrix products are fast only on CPUs with bfloat16 units (AVX512-BF16, AMX, Arm BF16); elsewhere
torch falls back to a scalar path. Measured on an AVX2-only AMD EPYC: float32 53 GFLOP/s, bfloat16
1.3 GFLOP/s (40x slower), where a Sapphire Rapids core reaches several times float32.
"""

from __future__ import annotations

import functools
import time

_PROBE = 256  # a 256^3 product: 34 MFLOP, a few ms even on the slow path


@functools.cache
def fast_bfloat16() -> bool:
    """True when torch's bfloat16 matrix product is at least as fast as float32's on this CPU."""
    import torch

    def seconds(dtype: torch.dtype) -> float:
        a = torch.randn(_PROBE, _PROBE).to(dtype)
        torch.mm(a, a)  # warm-up: first calls pick kernels
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            torch.mm(a, a)
            best = min(best, time.perf_counter() - t)
        return best

    return seconds(torch.bfloat16) <= seconds(torch.float32)


def available_memory() -> int | None:
    """``MemAvailable`` from /proc/meminfo in bytes (what can be allocated without swapping); None where unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception:  # psutil missing or the platform gives nothing
        return None
