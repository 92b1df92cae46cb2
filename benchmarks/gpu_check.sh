#!/usr/bin/env bash
# GPU check for issue 13 (not part of CI): grid and context on cuda against the CPU result, and timings.
#
#   benchmarks/gpu_check.sh [MODEL]          # default smollm2-135m; any spec (folder, .gguf, alias)
#
# Passes when, in float32, the grid's top token agrees with the CPU's in >= 99% of cells at every layer
# checked, and contextual states agree within 1e-3 relative (max |gpu - cpu| / max |cpu| per layer).
# Also prints the bfloat16 grid agreement and the cuda/cpu timings. Exit 0 = pass, 1 = fail, 2 = no GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
MODEL="${1:-smollm2-135m}"
if [ -z "${EMBEDLENS_CACHE:-}" ]; then
  EMBEDLENS_CACHE="$(mktemp -d /tmp/embedlens-gpu-check-XXXXXX)"
  trap 'rm -rf "$EMBEDLENS_CACHE"' EXIT
fi
export EMBEDLENS_CACHE

"$PY" - "$MODEL" <<'EOF'
import sys, time

import numpy as np
import torch

if not torch.cuda.is_available():
    print("gpu_check: no CUDA GPU visible to torch", torch.__version__)
    sys.exit(2)

import embedlens
from embedlens.contextual.states import hidden_states
from embedlens.grid import EmbeddingGridVisualizer
from embedlens.models.runtime import using

spec = sys.argv[1]
lens = embedlens.load(spec)
n = lens.meta["n_layers"]
print(f"gpu_check: {spec} ({n} blocks) on {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
layers = sorted({0, n // 2, n - 1, n})
ok = True


def grid(device, dtype, layer, size=50):
    viz = EmbeddingGridVisualizer(lens, layer_idx=layer, dtype=dtype, device=device)
    viz.compute_map(4, 0.5, progress=False)  # load + warm-up (kernels, rotary cache)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t = time.perf_counter()
    gm = viz.compute_map(size, 0.5, "random_projection", batch_size=500, progress=False)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return gm, time.perf_counter() - t


for layer in layers:
    cpu, t_cpu = grid("cpu", "float32", layer)
    gpu, t_gpu = grid("cuda", "float32", layer)
    agree = float(np.mean(cpu.token_ids == gpu.token_ids))
    gbf, t_bf = grid("cuda", "bfloat16", layer)
    agree_bf = float(np.mean(cpu.token_ids == gbf.token_ids))
    passed = agree >= 0.99
    ok &= passed
    print(f"grid layer {layer:3d}: float32 top-1 agreement {100 * agree:6.2f}% {'PASS' if passed else 'FAIL'}   "
          f"bfloat16 {100 * agree_bf:6.2f}%   50x50 cpu {t_cpu:.2f} s, cuda fp32 {t_gpu:.3f} s, cuda bf16 {t_bf:.3f} s")

texts = ["The capital of France is Paris.", "The river bank was flooded after the storm, so the bank closed."]
spec_layers = ",".join(str(x) for x in layers)
t = time.perf_counter()
with using(device="cpu", dtype="float32"):
    ref = hidden_states(embedlens.load(spec), texts, layers=spec_layers, keep_special=True)
t_cpu = time.perf_counter() - t
t = time.perf_counter()
with using(device="cuda", dtype="float32"):
    got = hidden_states(embedlens.load(spec), texts, layers=spec_layers, keep_special=True)
t_gpu = time.perf_counter() - t
for j, layer in enumerate(ref.layers):
    a = np.concatenate([ts.states[j] for ts in ref.texts])
    b = np.concatenate([ts.states[j] for ts in got.texts])
    rel = float(np.abs(a - b).max() / max(np.abs(a).max(), 1e-30))
    passed = rel <= 1e-3
    ok &= passed
    print(f"context layer {layer:3d}: max relative difference {rel:.2e} {'PASS' if passed else 'FAIL'}")
print(f"context (load + forward): cpu {t_cpu:.2f} s, cuda {t_gpu:.2f} s")
print("gpu_check:", "PASS" if ok else "FAIL")
sys.exit(0 if ok else 1)
EOF
