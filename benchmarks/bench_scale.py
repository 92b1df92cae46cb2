"""Issue 13's performance table: big checkpoints, cold and warm, only the blocks a job needs.

    flock /tmp/embedlens-bench.lock .venv/bin/python benchmarks/bench_scale.py            # Qwen2.5-1.5B shape + SmolLM2
    flock /tmp/embedlens-bench.lock .venv/bin/python benchmarks/bench_scale.py --llama8b  # + Llama-3.1-8B shape (16 GB disk)

Shape-true random checkpoints are written under /tmp by ``make_shape_checkpoint.py`` and deleted afterwards
(``--keep`` keeps them). Every figure is a median of several runs of the real command (wall time and the
command's own peak RSS), with a baseline in the same run: the transformers way (``from_pretrained`` in
float32, then the matrix), or embedlens as committed at an earlier commit (``--baseline-ref``, default
``HEAD~1``: ``git archive`` of that commit's ``src``, run from a temporary copy). The baseline's lines name the
commit they ran; a baseline whose ``src`` equals the code measured is skipped (it would time the code against
itself).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import EMBEDLENS, ROOT, print_machine, run_once, runs_note  # noqa: E402

PY = sys.executable
BASE_CLI = [PY, "-c", "import sys; from embedlens.cli import main; sys.exit(main())"]
TMP = Path(os.environ.get("EMBEDLENS_BENCH_TMP", "/tmp"))


def fresh_cache() -> dict[str, str]:
    return {"EMBEDLENS_CACHE": tempfile.mkdtemp(prefix="bench-scale-cache-", dir=TMP)}


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, check=True, text=True).stdout.strip()


def baseline_copy(ref: str) -> tuple[Path, str] | None:
    """embedlens as committed at ``ref``, unpacked into a temporary folder (the baseline of the same run), and
    the name of that commit (short hash and subject); None (with a line saying why) when there is no such
    commit or its ``src`` is the code being measured."""
    try:
        sha = git("rev-parse", "--verify", f"{ref}^{{commit}}")
        name = f"{sha[:10]} ({git('log', '-1', '--format=%s', sha)[:60]})"
        same = subprocess.run(["git", "-C", str(ROOT), "diff", "--quiet", sha, "--", "src"]).returncode == 0
    except (OSError, subprocess.CalledProcessError):
        print(f"(no baseline: {ref!r} is not a commit of {ROOT})")
        return None
    if same:
        print(f"(no baseline: src/ at {ref} = {name} is the code measured; pass --baseline-ref OLDER_COMMIT)")
        return None
    dest = Path(tempfile.mkdtemp(prefix="bench-scale-base-", dir=TMP))
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", sha, "src"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    print(f"baseline: embedlens at {ref} = commit {name}")
    return dest / "src", sha[:10]


def show(label: str, runs: list[tuple[float, float]], target: str = "") -> None:
    wall = statistics.median(w for w, _ in runs)
    rss = max(r for _, r in runs)
    print(f"  {label:<58} {runs_note(len(runs)):>12} {wall:7.2f} s   peak RSS {rss / 1024:6.2f} GB  {target}", flush=True)


def runs(args: list[str], n: int, env_fn=None, *, throwaway: bool = False) -> list[tuple[float, float]]:
    """``n`` runs; ``throwaway``: each run gets its own fresh cache (from ``env_fn``), deleted after it."""
    out = []
    for _ in range(n):
        env = env_fn() if env_fn else None
        wall, rss, _ = run_once(args, env)
        out.append((wall, rss))
        if throwaway and env and "EMBEDLENS_CACHE" in env:
            shutil.rmtree(env["EMBEDLENS_CACHE"], ignore_errors=True)
    return out


def auto_dtype() -> str:
    from embedlens.models.runtime import choose_dtype, dtype_name

    return dtype_name(choose_dtype("auto", "cpu"))


def transformers_matrix(folder: Path) -> list[str]:
    code = ("import torch; from transformers import AutoModelForCausalLM as M\n"
            f"m = M.from_pretrained({str(folder)!r}, dtype=torch.float32)\n"
            "w = m.get_input_embeddings().weight.detach().numpy(); print(w.shape)")
    return [PY, "-c", code]


def bench_checkpoint(name: str, folder: Path, *, last: int, context_layer: int, repeats: int, baseline: bool,
                     base: tuple[Path, str] | None) -> None:
    print(f"\n{name} ({folder})", flush=True)
    model = ["--model", str(folder)]
    show("cold `neighbors king` (extraction included)", runs([EMBEDLENS, "neighbors", "king", *model], repeats, fresh_cache, throwaway=True),
         "target <= 60 s, <= 5 GB (8B)")
    if baseline:
        show("  baseline: from_pretrained(float32) + get_input_embeddings()", runs(transformers_matrix(folder), 1))
    warm = fresh_cache()
    run_once([EMBEDLENS, "neighbors", "king", *model], warm)
    show("warm `neighbors king`", runs([EMBEDLENS, "neighbors", "king", *model], max(repeats, 3), lambda: dict(warm)),
         "target <= 1 s")
    out = tempfile.mkdtemp(prefix="bench-scale-out-", dir=TMP)
    show("`map --all --method pca` (whole vocabulary, warm cache)",
         runs([EMBEDLENS, "map", "--all", "--method", "pca", "--no-png", "--out", out, *model], 1, lambda: dict(warm)),
         "target <= 30 s (8B)")
    show(f"`grid --layer-idx {last} --grid-size 50` float32, end to end",
         runs([EMBEDLENS, "grid", "--layer-idx", str(last), "--grid-size", "50", "--dtype", "float32", "--no-html",
               "--output-dir", out, *model], 1, lambda: dict(warm)), "target <= 60 s, <= 4 GB (8B)")
    show(f"`grid --layer-idx {last} --grid-size 50 --dtype auto` ({auto_dtype()} here), end to end",
         runs([EMBEDLENS, "grid", "--layer-idx", str(last), "--grid-size", "50", "--dtype", "auto", "--no-html",
               "--output-dir", out, *model], 1, lambda: dict(warm)), "target <= 60 s, <= 4 GB (8B)")
    if baseline and base is not None:
        base_env = {**fresh_cache(), "PYTHONPATH": str(base[0])}
        run_once([*BASE_CLI, "neighbors", "king", *model], base_env)
        show(f"  baseline {base[1]}: `grid --layer-idx {last} --grid-size 50` (whole model)",
             runs([*BASE_CLI, "grid", "--layer-idx", str(last), "--grid-size", "50", "--no-html",
                   "--output-dir", out, *model], 1, lambda: dict(base_env)))
        shutil.rmtree(base_env["EMBEDLENS_CACHE"], ignore_errors=True)
    show(f"`context TEXT --layer {context_layer} --dtype bfloat16`",
         runs([EMBEDLENS, "context", "The king spoke to the queen about the river bank.", "--layer", str(context_layer),
               "--dtype", "bfloat16", "--method", "pca", "--no-html", "--no-png", "--out", out, *model], 1,
              lambda: dict(warm)), "target <= 10 GB (8B)")
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(warm["EMBEDLENS_CACHE"], ignore_errors=True)


def bench_smollm2(base: tuple[Path, str] | None, repeats: int) -> dict[str, str]:
    print("\nSmolLM2-135M (packaged GGUF)", flush=True)
    warm = fresh_cache()
    out = tempfile.mkdtemp(prefix="bench-scale-out-", dir=TMP)
    grid = ["grid", "--grid-size", "50", "--dtype", "float32", "--output-dir", out]
    run_once([EMBEDLENS, *grid], warm)  # extraction + the dequantized copy, once
    show("warm `grid --grid-size 50` float32, end to end", runs([EMBEDLENS, *grid], repeats, lambda: dict(warm)),
         "target <= 5 s")
    if base is not None:
        base_env = {**fresh_cache(), "PYTHONPATH": str(base[0])}
        run_once([*BASE_CLI, *grid], base_env)
        show(f"  baseline {base[1]}: warm `grid --grid-size 50`", runs([*BASE_CLI, *grid], repeats,
                                                                     lambda: dict(base_env)))
        shutil.rmtree(base_env["EMBEDLENS_CACHE"], ignore_errors=True)
    code = """
import time, torch, json
from embedlens.grid import EmbeddingGridVisualizer
best = 0.0
a = torch.randn(2048, 2048)
torch.mm(a, a)
for _ in range(5):
    t = time.perf_counter(); torch.mm(a, a); best = max(best, 2 * 2048**3 / (time.perf_counter() - t))
viz = EmbeddingGridVisualizer("smollm2-135m", layer_idx=15, dtype="float32", device="cpu")
t = time.perf_counter(); gm = viz.compute_map(100, 0.5, progress=False); total = time.perf_counter() - t
pred = gm.config["timings"]["predict_s"]
flops = viz.runner.flops_per_vector(15) * 10000
print(json.dumps({"peak_gflops": best / 1e9, "grid_gflops": flops / pred / 1e9, "predict_s": pred, "map_s": total}))
"""
    import json

    _, _, text = run_once([PY, "-c", code], dict(warm))
    r = json.loads(text.strip().splitlines()[-1])
    print(f"  100x100 grid from block 15: predict {r['predict_s']:.2f} s, {r['grid_gflops']:.1f} GFLOP/s = "
          f"{100 * r['grid_gflops'] / r['peak_gflops']:.0f}% of the float32 matmul peak {r['peak_gflops']:.1f} GFLOP/s "
          "measured in the same run (target >= 40%)", flush=True)
    shutil.rmtree(out, ignore_errors=True)
    return warm


def bench_integrity(warm: dict[str, str]) -> None:
    """What the per-block checksums cost on every open."""
    code = """
import time, json, numpy as np, embedlens
from embedlens.spaces.extract import block_sums, check_rows, verify_matrix
lens = embedlens.load("smollm2-135m")
from embedlens.safetensors_mmap import read_tensors
tensors = read_tensors(lens.entry.folder / "embeddings.safetensors")
verify_matrix(lens.meta, tensors)
ts = []
for _ in range(5):
    t = time.perf_counter(); verify_matrix(lens.meta, tensors); ts.append(time.perf_counter() - t)
import tempfile, os
from safetensors.numpy import save_file
x = np.random.default_rng(0).standard_normal((262144, 640), dtype=np.float32)
fd, path = tempfile.mkstemp(suffix=".safetensors"); os.close(fd)
save_file({"input": x}, path)
del x
x = read_tensors(path)["input"]  # memory-mapped, as a cache entry is opened
rows = check_rows(640)
meta = {"checksums": {"rows": rows, "input": block_sums(x, rows)}}
gs = []
for _ in range(5):
    t = time.perf_counter(); verify_matrix(meta, {"input": x}); gs.append(time.perf_counter() - t)
def word_sums(x):  # the previous checksum (a sum of 64-bit words per block): the baseline
    return [int(np.add.reduce(np.ascontiguousarray(x[s:s + rows]).reshape(-1).view(np.uint64), dtype=np.uint64))
            for s in range(0, x.shape[0], rows)]
os_ = []
for _ in range(5):
    t = time.perf_counter(); word_sums(x); os_.append(time.perf_counter() - t)
from embedlens.spaces.extract import file_digests
fs = []
for _ in range(5):
    t = time.perf_counter(); file_digests(lens.entry.folder, sorted(lens.meta["digests"])); fs.append(time.perf_counter() - t)
os.unlink(path)
print(json.dumps({"smollm2": sorted(ts)[2], "gemma": sorted(gs)[2], "gemma_word_sum": sorted(os_)[2],
                  "smollm2_files": sorted(fs)[2]}))
"""
    import json

    _, _, text = run_once([PY, "-c", code], dict(warm))
    r = json.loads(text.strip().splitlines()[-1])
    print(f"\nintegrity check on open (every 16 MiB block of matrix + norms, warm page cache): SmolLM2 49,152 x 576 "
          f"{1000 * r['smollm2']:.0f} ms, Gemma-sized 262,144 x 640 {1000 * r['gemma']:.0f} ms xxh3 vs "
          f"{1000 * r['gemma_word_sum']:.0f} ms for the old sum of words; SmolLM2's tokenizer and vocabulary "
          f"files {1000 * r['smollm2_files']:.1f} ms (medians of 5)", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description="issue 13 performance table")
    ap.add_argument("--llama8b", action="store_true", help="also the Llama-3.1-8B shape (needs ~25 GB of disk)")
    ap.add_argument("--no-qwen", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the written checkpoints")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--integrity-only", action="store_true", help="only the cost of the checksums on open")
    ap.add_argument("--baseline-ref", default="HEAD~1",
                    help="the commit whose src/ is the baseline (default HEAD~1; skipped when it equals the code measured)")
    args = ap.parse_args()
    print_machine()
    if args.integrity_only:
        warm = fresh_cache()
        run_once([EMBEDLENS, "neighbors", "king"], warm)
        bench_integrity(warm)
        shutil.rmtree(warm["EMBEDLENS_CACHE"], ignore_errors=True)
        return
    from make_shape_checkpoint import make

    base = baseline_copy(args.baseline_ref)
    made = []
    try:
        if not args.no_qwen:
            folder = TMP / "embedlens-qwen2.5-1.5b-shape"
            t = time.perf_counter()
            make("qwen2.5-1.5b", folder)
            made.append(folder)
            print(f"(wrote the Qwen2.5-1.5B shape in {time.perf_counter() - t:.0f} s)")
            bench_checkpoint("Qwen2.5-1.5B shape (vocab 151,936 x 1,536, tied, bf16)", folder, last=27,
                             context_layer=16, repeats=args.repeats, baseline=True, base=base)
        if args.llama8b:
            free = shutil.disk_usage(TMP).free
            if free < 30 * 10**9:
                print(f"\nLlama-3.1-8B shape skipped: {free / 1e9:.0f} GB free under {TMP}, ~25 GB needed")
            else:
                folder = TMP / "embedlens-llama-3.1-8b-shape"
                t = time.perf_counter()
                make("llama-3.1-8b", folder)
                made.append(folder)
                print(f"(wrote the Llama-3.1-8B shape in {time.perf_counter() - t:.0f} s)")
                bench_checkpoint("Llama-3.1-8B shape (vocab 128,256 x 4,096, untied, 4 bf16 shards)", folder, last=31,
                                 context_layer=16, repeats=1, baseline=False, base=None)
                print("  (baselines not run for 8B: from_pretrained in float32 needs 32 GB, more than this machine has)")
        warm = bench_smollm2(base, args.repeats)
        bench_integrity(warm)
        shutil.rmtree(warm["EMBEDLENS_CACHE"], ignore_errors=True)
    finally:
        if not args.keep:
            for f in made:
                shutil.rmtree(f, ignore_errors=True)
        if base is not None:
            shutil.rmtree(base[0].parent, ignore_errors=True)


if __name__ == "__main__":
    main()
