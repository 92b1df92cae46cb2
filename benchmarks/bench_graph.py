"""Embedding graph: ``embedlens graph --random 50 --k 20`` end to end, and the layout against networkx.

    EMBEDLENS_CACHE=/tmp/elcache flock /tmp/embedlens-bench.lock .venv/bin/python benchmarks/bench_graph.py

Measured:
  * the command end to end with a warm cache (model already extracted), as a user runs it (target <= 5 s),
    with and without --mutual, and with a cached full-vocabulary k-NN graph (k >= 20) present;
  * the layout of that graph (907 nodes): embedlens' vectorised Fruchterman-Reingold vs
    ``networkx.spring_layout`` (which uses its L-BFGS "energy" solver at >= 500 nodes);
  * the seeds' top-k: one batched blocked product vs a Python loop of ``topk_cosine`` queries.
"""

from __future__ import annotations

import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from _util import EMBEDLENS, median_time, print_machine, run_timed, runs_note  # noqa: E402


def main() -> None:
    print_machine()
    import numpy as np

    import embedlens
    from embedlens.graph import build_graph, seeds_from_random, spring_positions
    from embedlens.neighbors.exact import topk_cosine
    from embedlens.neighbors.index import ExactIndex
    from embedlens.neighbors.knn import cached_knn

    repeats = int(os.environ.get("BENCH_REPEATS", "5"))
    cached = cached_knn(embedlens.load().input, 20)
    print(f"load average {os.getloadavg()[0]:.1f}; full-vocabulary k-NN cache with k >= 20: "
          f"{'present (graph reuses it)' if cached is not None else 'absent (seeds searched directly)'}")
    with tempfile.TemporaryDirectory() as tmp:
        base = [EMBEDLENS, "graph", "--random", "50", "--k", "20", "--out", os.path.join(tmp, "g")]
        run_timed(base, repeats=1)  # warm: model extracted, files in the page cache
        wall, rss = run_timed(base, repeats=repeats)
        print(f"embedlens graph --random 50 --k 20            {runs_note(repeats)} {wall:5.2f} s  peak RSS {rss:5.0f} MB")
        wall, rss = run_timed(base + ["--mutual"], repeats=repeats)
        print(f"embedlens graph --random 50 --k 20 --mutual   {runs_note(repeats)} {wall:5.2f} s  peak RSS {rss:5.0f} MB")

    lens = embedlens.load()
    seeds, _ = seeds_from_random(lens, 50, seed=0)
    graph = build_graph(lens, seeds, k=20, use_cache=False)
    print(f"graph: {graph.stats.nodes} nodes, {graph.stats.edges} edges")
    ours = median_time(lambda: spring_positions(graph, seed=0), repeats=3)
    theirs = median_time(lambda: spring_positions(graph, seed=0, method="networkx"), repeats=3)
    print(f"layout (medians of 3): vectorised FR {ours:.3f} s vs networkx.spring_layout {theirs:.3f} s "
          f"({theirs / ours:.1f}x)")

    sp = lens.space
    index = ExactIndex(sp.vectors, norms=sp.norms)
    q = np.stack([s.vector for s in seeds]).astype(np.float32)
    ex = [list(s.rows) for s in seeds]
    batched = median_time(lambda: index.query(q, 20, exclude=ex), repeats=repeats)
    looped = median_time(lambda: [topk_cosine(sp.vectors, s.vector, 20, norms=sp.norms, exclude=[s.rows])
                                  for s in seeds], repeats=3)
    print(f"seeds' top-20: one batch {batched:.3f} s ({runs_note(repeats)}) vs a loop of 50 topk_cosine queries "
          f"{looped:.3f} s (median of 3) "
          f"({looped / batched:.1f}x)")


if __name__ == "__main__":
    main()
