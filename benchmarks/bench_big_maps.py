"""Whole-vocabulary maps of a big vocabulary: embedlens against embedding-atlas in one run, on one matrix.

Default (``--model gemma3-270m``, or ``smollm2-135m``): the model's input embeddings (extracted beforehand:
``EMBEDLENS_CACHE`` holding the model) saved once as a .npy, then, ``--runs`` times each, in fresh processes:

- embedding-atlas (``--ea-python``: a Python with embedding-atlas installed): ``embedding_atlas.projection._run_umap``
  (pynndescent cosine graph + umap-learn, ``random_state`` = ``--seed``), ``XDG_CACHE_HOME`` pointed at an
  empty folder (its projection cache off), numba compiled by a first small run in the same process;
- embedlens ``make_reducer(method, seed=...).fit_transform(X)`` with an empty cache folder (the graph is
  built: NN-descent above 100,000 rows), numba warmed by a first small fit in the same process (NN-descent's
  too); the process' whole wall time (compiling included) is printed beside the warm figure.

Both maps are scored outside both tools by the same function (:func:`embedlens.reduce.quality.map_recall`:
recall@10, 2,000 seeded queries, neighbours among ALL points). Printed: each run's seconds, peak RSS, the
route embedlens took and its graph's measured recall, embedlens' stages (``knn``, umap-learn's ``fuzzy set``,
``init`` and ``epochs`` timed from outside by ``bench_map_routes.UmapStages``; t-SNE's ``knn``, ``affinities``,
``init``, ``optimize``), both recalls, the medians, the machine and its load
(figures taken at a load above the core count are "loaded": rerun alone). t-SNE (``--methods umap,tsne``)
has no embedding-atlas counterpart; its target is printed instead.

Run (one benchmark at a time on a shared machine):
    .venv/bin/python benchmarks/bench_big_maps.py --model gemma3-270m --runs 1 --ea-python EA_VENV/bin/python
Options: ``--model``, ``--methods umap,tsne``, ``--runs``, ``--seed``, ``--ea-python``.

``--cli``: the older end-to-end figures instead: ``embedlens map --model M --all --method umap|tsne`` with an
empty graph cache, then once more with the graph cached (``--no-repeat`` skips it).

``--pca-8b FOLDER`` instead: the PCA map of an 8B vocabulary (``benchmarks/make_shape_checkpoint.py
llama-3.1-8b FOLDER``: 128,256 x 4,096), ``map --all --method pca --no-png`` end to end, warm (matrix
extracted), the baseline ``--pca exact`` (float64 covariance; ``--baseline-runs``, default 1: it takes minutes)
and the default route (``--pca auto``: randomized; ``--runs``, default 3) in the same run, with wall time,
peak RSS, the manifest's stages, the route and its stated accuracy. The first run of the default route also
searches the recall's query truth once (later maps, the baseline's too, read it), so runs are listed one by one. ``--cache``
reuses an extraction (default: a fresh one under a temporary folder, ~4 GB).

``--umap-8b FOLDER`` instead: the UMAP map of the same 8B vocabulary, ``map --all --method umap --no-png`` end
to end with the matrix extracted and the graph cache emptied before each run (``--runs``, default 1), with wall
time, peak RSS, the route, the graph's measured recall and the stages (target: <= 300 s, peak <= 8 GB). The
matrix is random, so its map recall says nothing; the figures are time and memory.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import machine, run_once, runs_note  # noqa: E402


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "import sys; from embedlens.cli import entry; sys.argv[0] = 'embedlens'; entry()",
            *args]


def _manifest_figures(out: Path) -> tuple[dict, dict, dict]:
    """A map's reducer params, its stage seconds and its reducer's own stage seconds, from its manifest."""
    m = json.loads((out / "manifest.json").read_text())
    stages = {k: round(v, 1) for k, v in m["timings"].items() if isinstance(v, int | float)}
    return m["params"]["reducer"], stages, {k: round(v, 1) for k, v in m["timings"].get("reduce_stages", {}).items()}


def umap_8b(folder: str, cache: str | None, runs: int) -> None:
    """``map --all --method umap`` of an 8B-shaped vocabulary, the graph found afresh in every run."""
    import shutil
    import statistics

    with tempfile.TemporaryDirectory() as tmp:
        root = cache or f"{tmp}/cache"
        env = {**os.environ, "EMBEDLENS_CACHE": root}
        wall, rss, _ = run_once(_cli("neighbors", "king", "--model", folder, "-k", "3"), env)
        print(f"extract (or open) {folder}: {wall:.1f} s, peak {rss:.0f} MB (not part of the map figures)", flush=True)
        # This matrix's graph and query truth, found afresh in every run (only its own folder: a shared cache
        # keeps every other space's graphs).
        key = run_once([sys.executable, "-c", "import sys, embedlens; from embedlens.neighbors.knn import "
                        "space_content_hash as h; print('KEY', h(embedlens.load(sys.argv[1]).input.space.vectors))",
                        folder], env)[2].split("KEY ")[1].split()[0]
        walls = []
        for i in range(runs):
            shutil.rmtree(Path(root) / "spaces" / key, ignore_errors=True)
            out = Path(tmp) / f"umap-{i}"
            load = _load()
            wall, rss, text = run_once(_cli("map", "--model", folder, "--all", "--method", "umap", "--no-png",
                                            "--out", str(out)), env)
            if not (out / "manifest.json").is_file():
                print(f"run {i + 1} failed:\n{text[-2000:]}", flush=True)
                continue
            walls.append(wall)
            reducer, stages, fit = _manifest_figures(out)
            print(f"umap run {i + 1}/{runs}: {wall:6.1f} s (target <= 300 s)  peak {rss:6.0f} MB (target <= 8 GB)  "
                  f"{load}\n      graph {reducer.get('knn_method')} recall@{reducer.get('knn_recall_k')} "
                  f"{reducer.get('knn_recall')}; {reducer.get('n_epochs')} epochs x {reducer.get('negative_sample_rate')} "
                  f"from {reducer.get('init')}\n      stages {json.dumps(stages)} reducer {json.dumps(fit)}", flush=True)
        if walls:
            print(f"umap {runs_note(len(walls))}: {statistics.median(walls):6.1f} s", flush=True)


def pca_8b(folder: str, cache: str | None, runs: int, baseline_runs: int) -> None:
    """``map --all --method pca`` of an 8B-shaped vocabulary: ``--pca exact`` vs the default, same run."""
    import statistics

    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "EMBEDLENS_CACHE": cache or f"{tmp}/cache"}
        wall, rss, _ = run_once(_cli("neighbors", "king", "--model", folder, "-k", "3"), env)
        print(f"extract (or open) {folder}: {wall:.1f} s, peak {rss:.0f} MB (not part of the map figures)", flush=True)
        for name, solver, n in (("--pca auto", "auto", runs), ("baseline --pca exact", "exact", baseline_runs)):
            walls = []
            for i in range(n):
                out = Path(tmp) / f"pca-{solver}-{i}"
                wall, rss, _ = run_once(_cli("map", "--model", folder, "--all", "--method", "pca", "--pca", solver,
                                             "--no-png", "--out", str(out)), env)
                walls.append(wall)
                reducer, stages, fit = _manifest_figures(out)
                print(f"{name:22s} run {i + 1}/{n}: {wall:6.1f} s (target <= 30 s)  peak {rss:6.0f} MB (target <= 6 GB)"
                      f"  load {', '.join(f'{v:.1f}' for v in os.getloadavg())}\n"
                      f"      {reducer.get('solver')}; accuracy {json.dumps(reducer.get('accuracy'))}\n"
                      f"      stages {json.dumps(stages)} reducer {json.dumps(fit)}", flush=True)
            print(f"{name:22s} median {statistics.median(walls):6.1f} s over {n} run(s)", flush=True)


EA_SCRIPT = r"""
import json, sys, time
import numpy as np
from embedding_atlas.projection import _run_umap
x = np.load(sys.argv[1], mmap_mode="r")
rng = np.random.default_rng(0)
_run_umap(np.ascontiguousarray(x[np.sort(rng.choice(len(x), 5000, replace=False))]), umap_args={"random_state": 0})
x = np.ascontiguousarray(x)
t = time.perf_counter()
proj = _run_umap(x, umap_args={"random_state": int(sys.argv[2])})
seconds = time.perf_counter() - t
np.save(sys.argv[3], np.asarray(proj.projection, dtype=np.float32))
print("RESULT " + json.dumps({"seconds": seconds}))
"""

OURS_SCRIPT = r"""
import json, sys, time
import numpy as np
from embedlens.reduce import make_reducer
from embedlens.reduce.tsne import TSNEReducer
from embedlens.reduce.umap import UMAPReducer
x = np.load(sys.argv[1], mmap_mode="r")
method, seed = sys.argv[2], int(sys.argv[3])
sys.path.insert(0, sys.argv[5])
from bench_map_routes import UmapStages
rng = np.random.default_rng(0)
small = np.ascontiguousarray(x[np.sort(rng.choice(len(x), 5000, replace=False))])
warm = (TSNEReducer(n_iter=20, early_exaggeration_iter=20, nndescent_from=1000) if method == "tsne"
        else UMAPReducer(n_epochs=20, nndescent_from=1000))
warm.fit(small)  # numba compiles here (NN-descent's too)
x = np.ascontiguousarray(x)
t = time.perf_counter()
r = make_reducer(method, seed=seed)
with UmapStages() as umap_stages:  # umap-learn's own stages inside "optimize" (fuzzy set, init, epochs)
    y = r.fit_transform(x)
seconds = time.perf_counter() - t
np.save(sys.argv[4], y)
keep = ("knn_route", "knn_method", "knn_recall", "knn_recall_k", "knn_source", "nndescent_threads", "n_epochs",
        "negative_sample_rate", "init", "n_iter", "n_jobs")
stages = {k: round(v, 1) for k, v in r.timings_.items() if isinstance(v, int | float)}
print("RESULT " + json.dumps({"seconds": seconds, "stages": {**stages, **umap_stages.seconds},
                              "params": {k: r.params_.get(k) for k in keep}}))
"""


def _load() -> str:
    load = os.getloadavg()
    return f"load {', '.join(f'{v:.1f}' for v in load)}{' (loaded)' if load[0] > (os.cpu_count() or 1) else ''}"


def versus_atlas(model: str, methods: list[str], runs: int, seed: int, ea_python: str) -> None:
    """embedlens and embedding-atlas on the same matrix, fresh processes, recall by the same function."""
    import statistics

    import numpy as np

    import embedlens
    from embedlens.neighbors.index import Neighbors
    from embedlens.reduce.quality import _search_truth, map_recall, sample_indices

    x = np.ascontiguousarray(embedlens.load(model).space.vectors, dtype=np.float32)
    truth = Neighbors(_search_truth(x, sample_indices(len(x), 2000, 0), 10, "cosine").indices,
                      np.zeros((2000, 10), np.float32), "cosine")
    print(f"{model}: {x.shape[0]:,} x {x.shape[1]} input embeddings; recall@10 = 2,000 seeded queries, neighbours "
          "among all points (embedlens.reduce.quality.map_recall, the same for both)", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        np.save(f"{tmp}/x.npy", x)
        routes = [("embedding-atlas umap", "umap")] if "umap" in methods and ea_python and Path(ea_python).exists() else []
        if "umap" in methods and not routes:
            print(f"no embedding-atlas Python ({ea_python or 'none given'}): embedlens alone", flush=True)
        routes += [(f"embedlens {m}", m) for m in methods]
        figures: dict[str, list[tuple[float, float]]] = {}
        for i in range(runs):
            for name, method in routes:
                out = f"{tmp}/y-{method}-{i}-{name.split()[0]}.npy"
                env = {"XDG_CACHE_HOME": f"{tmp}/xdg-{i}", "EMBEDLENS_CACHE": f"{tmp}/cache-{name.split()[0]}-{i}",
                       "NUMBA_CACHE_DIR": f"{tmp}/numba"}
                cmd = ([ea_python, "-c", EA_SCRIPT, f"{tmp}/x.npy", str(seed), out] if name.startswith("embedding")
                       else [sys.executable, "-c", OURS_SCRIPT, f"{tmp}/x.npy", method, str(seed), out,
                             str(Path(__file__).resolve().parent)])
                wall, rss, text = run_once(cmd, env)
                res = json.loads(next(line for line in text.splitlines() if line.startswith("RESULT "))[7:])
                recall = map_recall(x, np.load(out), 10, sample=2000, seed=0, metric="cosine", space_neighbors=truth)
                figures.setdefault(name, []).append((res["seconds"], recall))
                extra = {k: v for k, v in res.items() if k != "seconds"}
                print(f"run {i + 1}/{runs} {name:22s} {res['seconds']:7.1f} s warm ({wall:6.1f} s whole process, "
                      f"compiling included)  peak {rss:6.0f} MB  recall@10 {recall:.4f}  {_load()}\n"
                      f"      {json.dumps(extra)}", flush=True)
        for name, values in figures.items():
            sec = statistics.median(s for s, _ in values)
            rec = statistics.median(r for _, r in values)
            target = ""
            if name == "embedlens umap" and "embedding-atlas umap" in figures:
                ea_sec = statistics.median(s for s, _ in figures["embedding-atlas umap"])
                ea_rec = statistics.median(r for _, r in figures["embedding-atlas umap"])
                target = f"  = {sec / ea_sec:.2f}x embedding-atlas (target <= 0.6x), recall {rec - ea_rec:+.4f} vs it (target >= 0)"
            if name == "embedlens tsne":
                target = "  (target on Gemma: <= 240 s, recall@10 >= 0.28)"
            print(f"{name:22s} {runs_note(len(values))}: {sec:7.1f} s  recall@10 {rec:.4f}{target}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="gemma3-270m")
    ap.add_argument("--methods", default="umap,tsne")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ea-python", default=os.environ.get("EMBEDLENS_EA_PYTHON", ""),
                    help="a Python with embedding-atlas installed (default $EMBEDLENS_EA_PYTHON); none: embedlens alone")
    ap.add_argument("--cli", action="store_true", help="the end-to-end CLI figures instead (see above)")
    ap.add_argument("--no-repeat", action="store_true", help="skip the second run with the graph cached")
    ap.add_argument("--pca-8b", default=None, metavar="FOLDER", help="the 8B PCA map benchmark instead (see above)")
    ap.add_argument("--umap-8b", default=None, metavar="FOLDER", help="the 8B UMAP map benchmark instead (see above)")
    ap.add_argument("--cache", default=None, help="with --pca-8b / --umap-8b: an embedlens cache holding the extraction")
    ap.add_argument("--runs", type=int, default=None, help="runs of each route (default 1; 3 with --pca-8b)")
    ap.add_argument("--baseline-runs", type=int, default=1)
    args = ap.parse_args()
    print(machine(), flush=True)
    if args.umap_8b:
        umap_8b(args.umap_8b, args.cache, args.runs or 1)
        print(machine(), flush=True)
        return
    if args.pca_8b:
        pca_8b(args.pca_8b, args.cache, args.runs or 3, args.baseline_runs)
        print(machine(), flush=True)
        return
    if not args.cli:
        versus_atlas(args.model, args.methods.split(","), args.runs or 1, args.seed, args.ea_python)
        print(machine(), flush=True)
        return
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "EMBEDLENS_CACHE": f"{tmp}/cache"}
        wall, rss, out = run_once(_cli("neighbors", "king", "--model", args.model, "-k", "3"), env)
        print(f"extract {args.model}: {wall:.1f} s, peak {rss:.0f} MB (not part of the map figures)", flush=True)
        for method in args.methods.split(","):
            for run in ("cold graph", "graph cached")[: 1 if args.no_repeat else 2]:
                folder = Path(tmp) / f"{method}-{run.split()[0]}"
                wall, rss, out = run_once(_cli("map", "--model", args.model, "--all", "--method", method,
                                               "--out", str(folder), "--json"), env)
                if not (folder / "manifest.json").is_file():
                    print(f"{method} ({run}) failed:\n{out[-2000:]}")
                    continue
                m = json.loads((folder / "manifest.json").read_text())
                reducer = m["params"]["reducer"]
                quality = m.get("quality") or {}
                stages = {k: round(v, 1) for k, v in m["timings"].items() if isinstance(v, int | float)}
                print(f"{method:5s} {run:13s} {wall:6.1f} s ({wall / 60:.1f} min; target <= 6 min)  peak {rss:6.0f} MB  "
                      f"map recall@10 {quality.get('neighbor_recall')}  graph: {reducer.get('knn_method')} "
                      f"recall@{reducer.get('knn_recall_k', '')} {reducer.get('knn_recall', 1.0)} (source {reducer.get('knn_source')})", flush=True)
                print(f"      stages {json.dumps(stages)}  reducer {json.dumps(m['timings'].get('reduce_stages', {}))}",
                      flush=True)
    print(machine(), flush=True)


if __name__ == "__main__":
    main()
