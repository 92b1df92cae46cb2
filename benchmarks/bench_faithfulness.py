"""Map faithfulness and time, side by side in one run: SmolLM2's whole vocabulary (49,152 x 576).

Every route's map is scored by the one recall definition (:func:`embedlens.reduce.quality.map_recall`):
2,000 seeded query tokens; their 10 nearest by cosine in the full space, searched over ALL tokens, vs
their 10 nearest points on the map, searched over ALL points. Routes (medians over ``--seeds``):

- ``embedlens umap (cold)``: ``make_reducer("umap", seed=s).fit(X)`` with an empty cache folder: the
  exact full-space cosine k-NN graph is built, then umap-learn runs (what ``map --all --method umap``
  does before drawing);
- ``embedlens umap (cached k-NN graph, not built)``: the same again: the graph is read from the cache (a
  repeated map). Labelled as such and never compared with a peer, since every peer builds its own graph;
- ``embedding-atlas``: Apple's embedding-atlas (``embedding_atlas.projection._run_umap``: pynndescent
  cosine graph + umap-learn, ``random_state=s``) in its own virtual environment (``--ea-python``),
  ``XDG_CACHE_HOME`` pointed at an empty folder, numba compiled by a warm-up first (its warm time);
- ``embedlens tsne (cold)`` / ``(cached k-NN graph, not built)``: the same for t-SNE (k=90 graph);
- ``embedlens umap/tsne --pre-pca 50``: the old route (graph after PCA to 50 dims), for reference;
- PCA 2D;
- ``local``: each point's local recall@10 (:func:`embedlens.reduce.quality.local_recall`: the map-side 10
  nearest of ALL points through the neighbour layer's k-d tree) at 49,152 and 262,144 random 2-D points,
  against the obvious baseline, scikit-learn ``NearestNeighbors(n_neighbors=11)`` on the map and the same
  count (median of 3 each, both in the same run; the two must give the same figures).

- ``quality``: the quality block of a whole-vocabulary PCA map (recall@10 of 2,000 seeded queries among
  all points + trustworthiness within them, :func:`embedlens.reduce.quality.projection_quality`) on
  SmolLM2 (49,152 x 576) and Gemma 3 (262,144 x 640): the baseline searches the query rows' true
  neighbours exactly every time (what every map did); ours reads them once searched
  (:func:`embedlens.reduce.quality.query_truth`: the cached k-NN graph, else the cached file). Median of
  ``--repeats`` each, same run, and the two figures must agree exactly. Needs no peer.

Run (one benchmark at a time on the shared machine; ~15 min with 3 seeds):
    flock /tmp/embedlens-bench.lock .venv/bin/python benchmarks/bench_faithfulness.py --ea-python EA_VENV/bin/python
Options: ``--seeds 0 1 2``, ``--routes umap,ea,tsne,prepca,pca,local,quality`` (``--routes local`` alone needs no
model; ``--routes quality`` runs the quality block alone), ``--repeats 3``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import machine, runs_note  # noqa: E402

CACHED = "cached k-NN graph, not built"  # the label of a route that reads its graph instead of searching

EA_SCRIPT = r"""
import json, os, sys, time
import numpy as np
from embedding_atlas.projection import _run_umap
x = np.load(sys.argv[1])
seeds = json.loads(sys.argv[2])
rng = np.random.default_rng(0)
_run_umap(x[rng.choice(len(x), 5000, replace=False)], umap_args={"random_state": 0})  # numba compiles here
out = {}
for s in seeds:
    t = time.perf_counter()
    proj = _run_umap(x, umap_args={"random_state": s})
    out[str(s)] = time.perf_counter() - t
    np.save(sys.argv[3] + f"-{s}.npy", np.asarray(proj.projection, dtype=np.float32))
print(json.dumps(out))
"""


def _recall(x, y) -> float:
    from embedlens.reduce.quality import map_recall

    return map_recall(x, y, 10, sample=2000, seed=0, metric="cosine")


def _ours(method: str, x, seed: int, **options) -> tuple[float, float, dict]:
    from embedlens.reduce import make_reducer

    t = time.perf_counter()
    r = make_reducer(method, seed=seed, **options)
    y = r.fit_transform(x)
    seconds = time.perf_counter() - t
    stages = {k: round(v, 1) for k, v in r.timings_.items()}
    return seconds, _recall(x, y), {"stages": stages, "knn_source": r.params_.get("knn_source")}


def _local_recall_routes(repeats: int = 3) -> dict[str, dict[str, float]]:
    """Seconds (median of ``repeats``) of local recall@10 over every point of random 2-D maps: ours vs sklearn."""
    import numpy as np
    from sklearn.neighbors import NearestNeighbors

    from embedlens.reduce.quality import local_recall

    def baseline(truth: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
        found = NearestNeighbors(n_neighbors=k + 1).fit(y).kneighbors(y, return_distance=False)
        own = found == np.arange(len(y))[:, None]  # drop the point itself, wherever it landed
        found = np.take_along_axis(found, np.argsort(own, axis=1, kind="stable"), axis=1)[:, :k]
        return ((truth[:, :, None] == found[:, None, :]).any(axis=2).sum(axis=1) / k).astype(np.float32)

    out = {}
    for n in (49_152, 262_144):
        rng = np.random.default_rng(n)
        y = (rng.standard_normal((n, 2)) * 30).astype(np.float32)
        truth = rng.integers(0, n, size=(n, 10))  # timing only: where the truth comes from does not matter
        runs: dict[str, list[float]] = {"embedlens local_recall": [], "sklearn NearestNeighbors": []}
        for _ in range(repeats):
            t = time.perf_counter()
            ours = local_recall(truth, y, 10)
            runs["embedlens local_recall"].append(time.perf_counter() - t)
            t = time.perf_counter()
            theirs = baseline(truth, y, 10)
            runs["sklearn NearestNeighbors"].append(time.perf_counter() - t)
        same = float(np.mean(ours == theirs))
        for name, seconds in runs.items():
            med = statistics.median(seconds)
            out[f"{name} @ {n:,}"] = {"seconds": med, "runs": seconds}
            print(f"  local recall@10, {n:,} 2-D points, {name:26s} {runs_note(len(seconds))} {med:6.2f} s  "
                  f"({', '.join(f'{s:.2f}' for s in seconds)})", flush=True)
        print(f"  same figures for {same:.4%} of the points (ties on random floats: none expected)", flush=True)
    return out


def _quality_routes(repeats: int) -> dict[str, dict]:
    """Seconds (median of ``repeats``) of the quality block of whole-vocabulary PCA maps: exact search vs query truth."""
    import embedlens
    from embedlens.reduce.pca import fit_pca
    from embedlens.reduce.quality import projection_quality, query_truth

    out = {}
    for alias in ("smollm2-135m", "gemma3-270m"):
        view = embedlens.load(alias).input
        x = view.space.vectors
        y = fit_pca(x, 2, metric="cosine").transform(x)
        t = time.perf_counter()
        truth, info = query_truth(view, 10, sample=2000, seed=0)  # the first map of the space pays this once
        first = time.perf_counter() - t
        routes = {
            "baseline: exact search every time": lambda x=x, y=y: projection_quality(x, y, 10, 2000, 0, "cosine"),
            "query truth (read)": lambda x=x, y=y, view=view: projection_quality(
                x, y, 10, 2000, 0, "cosine", space_neighbors=query_truth(view, 10, sample=2000, seed=0)[0]),
        }
        figures, seconds = {}, {}
        for _ in range(repeats):
            for name, fn in routes.items():
                t = time.perf_counter()
                figures[name] = fn()
                seconds.setdefault(name, []).append(time.perf_counter() - t)
        same = len({(q.neighbor_recall, q.trustworthiness) for q in figures.values()}) == 1
        print(f"  {alias} {x.shape}: query truth first obtained in {first:.2f} s ({info['source']}); "
              f"load {', '.join(f'{v:.1f}' for v in os.getloadavg())}", flush=True)
        for name, runs in seconds.items():
            med = statistics.median(runs)
            out[f"{alias}: {name}"] = {"seconds": med, "runs": runs}
            print(f"    {name:36s} {med:6.2f} s median of {repeats} ({', '.join(f'{r:.2f}' for r in runs)})",
                  flush=True)
        q = figures["query truth (read)"]
        print(f"    same figures: {same} (recall@10 {q.neighbor_recall:.4f}, trustworthiness {q.trustworthiness:.4f}); "
              f"target <= {0.5 if len(x) < 100_000 else 3.0} s", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--routes", default="umap,ea,tsne,prepca,pca,local,quality")
    ap.add_argument("--ea-python", default=os.environ.get("EMBEDLENS_EA_PYTHON", ""),
                    help="a Python with embedding-atlas installed (default: $EMBEDLENS_EA_PYTHON)")
    ap.add_argument("--json", dest="json_out", default=None)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    routes = set(args.routes.split(","))
    import numpy as np

    import embedlens

    print(machine(), flush=True)
    local = _local_recall_routes() if "local" in routes else {}
    quality = _quality_routes(args.repeats) if "quality" in routes else {}
    if not routes - {"local", "quality"}:
        if args.json_out:
            Path(args.json_out).write_text(json.dumps({"local_recall": local, "quality": quality}, indent=1))
        return
    x = np.asarray(embedlens.load("smollm2-135m").space.vectors, dtype=np.float32)
    print(f"SmolLM2 input embeddings {x.shape}; recall@10 = 2,000 seeded queries, neighbours among all points",
          flush=True)
    results: dict[str, list[tuple[float, float]]] = {}
    extra: dict[str, list[dict]] = {}

    def add(name: str, seconds: float, recall: float, info: dict | None = None) -> None:
        results.setdefault(name, []).append((seconds, recall))
        extra.setdefault(name, []).append(info or {})
        print(f"  {name:48s} recall@10 {recall:.3f}  {seconds:6.1f} s  {json.dumps(info or {})}", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        if "ea" in routes and args.ea_python and Path(args.ea_python).exists():
            np.save(f"{tmp}/x.npy", x)
            env = {**os.environ, "XDG_CACHE_HOME": f"{tmp}/xdg", "NUMBA_CACHE_DIR": f"{tmp}/numba"}
            t = time.perf_counter()
            res = subprocess.run([args.ea_python, "-c", EA_SCRIPT, f"{tmp}/x.npy", json.dumps(args.seeds),
                                  f"{tmp}/ea"], capture_output=True, text=True, env=env, check=False)
            if res.returncode != 0:
                print("embedding-atlas failed:", res.stderr[-2000:])
            else:
                times = json.loads(res.stdout.strip().splitlines()[-1])
                for s in args.seeds:
                    add("embedding-atlas 0.26 (umap)", times[str(s)], _recall(x, np.load(f"{tmp}/ea-{s}.npy")),
                        {"seed": s})
                print(f"  (embedding-atlas process, warm-up included: {time.perf_counter() - t:.0f} s)")
        for s in args.seeds:
            for method in ("umap", "tsne"):
                if method not in routes:
                    continue
                cache = f"{tmp}/cache-{method}-{s}"
                os.environ["EMBEDLENS_CACHE"] = cache  # empty: the graph is built
                sec, rec, info = _ours(method, x, s)
                add(f"embedlens {method} (cold)", sec, rec, {"seed": s, **info})
                sec, rec, info = _ours(method, x, s)  # the same space again: the graph is reused
                add(f"embedlens {method} ({CACHED})", sec, rec, {"seed": s, **info})
                if "prepca" in routes and s == args.seeds[0]:
                    sec, rec, info = _ours(method, x, s, pre_pca=50)
                    add(f"embedlens {method} --pre-pca 50", sec, rec, {"seed": s, **info})
        if "pca" in routes:
            from embedlens.reduce import make_reducer

            t = time.perf_counter()
            y = make_reducer("pca").fit_transform(x)
            add("PCA 2D", time.perf_counter() - t, _recall(x, y))

    print("\nmedians over seeds " + " ".join(map(str, args.seeds)) + " (n = runs per route):")
    summary = {}
    for name, runs in results.items():
        sec = statistics.median(r[0] for r in runs)
        rec = statistics.median(r[1] for r in runs)
        summary[name] = {"seconds": sec, "recall": rec, "runs": runs}
        print(f"  {name:48s} recall@10 {rec:.3f}  {sec:6.1f} s  (n={len(runs)})")
    ea = summary.get("embedding-atlas 0.26 (umap)")
    if ea:
        # embedding-atlas searches its own graph on every run: only the route that builds its graph compares
        name = "embedlens umap (cold)"
        if name in summary:
            ours = summary[name]
            print(f"  {name} vs embedding-atlas (both build their graph): recall {ours['recall'] - ea['recall']:+.3f}, "
                  f"time x{ours['seconds'] / ea['seconds']:.2f} (target: recall >= , time <= x0.50)")
        if f"embedlens umap ({CACHED})" in summary:
            print(f"  (embedlens umap ({CACHED}) is not compared with embedding-atlas, which builds its graph each run)")
    for name in ("embedlens tsne (cold)", f"embedlens tsne ({CACHED})"):
        if name in summary:
            print(f"  {name}: recall {summary[name]['recall']:.3f} (target >= 0.33), "
                  f"{summary[name]['seconds']:.1f} s (target <= 75 s)")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"summary": summary, "extra": extra, "local_recall": local, "quality": quality},
                                                   indent=1))


if __name__ == "__main__":
    main()
