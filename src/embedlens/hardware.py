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
    """True when torch's bfloat16 matrix product is about as fast as float32's on this CPU, or faster.

    Units with bfloat16 (AVX-512 BF16, AMX) make it ~2x faster; without them it is ~40x slower. The two are
    timed in turns and the best of each kept, so a busy machine (another process taking a core for a
    moment) slows both alike instead of flipping the answer; 1.5x leaves room for what noise remains.
    """
    import torch

    a = torch.randn(_PROBE, _PROBE)
    pair = {torch.float32: a, torch.bfloat16: a.to(torch.bfloat16)}
    best = {dtype: float("inf") for dtype in pair}
    for x in pair.values():
        torch.mm(x, x)  # warm-up: first calls pick kernels
    for _ in range(5):
        for dtype, x in pair.items():
            t = time.perf_counter()
            torch.mm(x, x)
            best[dtype] = min(best[dtype], time.perf_counter() - t)
    return best[torch.bfloat16] <= 1.5 * best[torch.float32]


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
