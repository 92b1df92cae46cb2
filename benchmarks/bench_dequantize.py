"""A GGUF's one-time dequantization (the first load of a GGUF model): with gguf's tensor-name maps built once
per load, against the previous route that built one per converted module, in the same run.

    EMBEDLENS_CACHE=CACHE .venv/bin/python benchmarks/bench_dequantize.py [--model smollm2-135m] [--runs 3]

Each run is a fresh process that dequantizes the cached GGUF of ``--model`` into a temporary folder
(``embedlens.models.weights._dequantize_gguf``, what the first load does); the baseline is the same call with
the name-map memo emptied on every store, so every module builds its map anew as before. Both write the same
weights (checked: byte-identical safetensors). Prints each route's median wall time, the number of runs and
the machine.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import machine, runs_note  # noqa: E402

SCRIPT = r"""
import sys, time
import embedlens
from embedlens.models import gguf_reader, weights
if sys.argv[3] == "baseline":
    class Forget(dict):  # every name map built anew, as before the memo
        def __setitem__(self, key, value):
            pass
    gguf_reader._NAME_MAPS = Forget()
source = embedlens.load(sys.argv[1]).source
t = time.perf_counter()
weights._dequantize_gguf(source, __import__("pathlib").Path(sys.argv[2]))
print("SECONDS", time.perf_counter() - t)
"""


def digest(folder: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(folder.glob("*.safetensors")):
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    print(machine(), flush=True)
    times: dict[str, list[float]] = {"memo": [], "baseline": []}
    digests = set()
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            for route in ("baseline", "memo"):
                out = Path(tmp) / f"{route}-{i}"
                t = time.perf_counter()
                res = subprocess.run([sys.executable, "-c", SCRIPT, args.model, str(out), route],
                                     capture_output=True, text=True, check=True)
                wall = time.perf_counter() - t
                sec = float(next(x for x in res.stdout.splitlines() if x.startswith("SECONDS")).split()[1])
                times[route].append(sec)
                digests.add(digest(out))
                print(f"run {i + 1}/{args.runs} {route:8s} dequantize {sec:6.2f} s (process {wall:6.2f} s)", flush=True)
    base, memo = statistics.median(times["baseline"]), statistics.median(times["memo"])
    print(f"{args.model}: name maps once {memo:.2f} s, baseline (a map per module) {base:.2f} s "
          f"({runs_note(args.runs)} each) = {memo / base:.2f}x; same weights: {len(digests) == 1}", flush=True)
    print(machine(), flush=True)


if __name__ == "__main__":
    main()
