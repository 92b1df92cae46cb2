"""``embedlens export-site``: SmolLM2's static explorer folder, its export time and size (warm cache).

    EMBEDLENS_CACHE=/tmp/elcache flock /tmp/embedlens-bench.lock .venv/bin/python benchmarks/bench_export.py

Measured on SmolLM2 (49,152 tokens), k = 20: the first export (it builds the space's exact 100-NN
graph when it is not cached yet, and a PCA map when no t-SNE/UMAP map is), then the median of 3 warm
exports (everything cached: what a second export costs) with the folder's size and the manifest's
per-stage seconds. Targets: <= 20 s warm, <= 30 MB.

Baseline in the same run: the obvious way to share a map without a server, a self-contained
``plotly.io.to_html`` page of the same map (one scattergl trace with every token as hover text, Plotly's
JavaScript inlined): its time and size (no neighbours, clusters, search or selection in it).

Measured (AMD EPYC, 2 cores shared, PCA map: no t-SNE cached in that cache): first export 65.9 s (the
exact 100-NN graph built); warm median 4.97 s (4.99, 4.79, 4.97), folder 13.3 MB (data/panel-0.js
13.2 MB), of which Leiden clusters 4.4 s; baseline plotly.io.to_html page 0.14 s, 6.0 MB. From file://,
Chromium paints the whole map about 0.75 s after navigation.

Options: ``--model smollm2-135m --k 20 --repeats 3``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from _util import print_machine, runs_note  # noqa: E402


def plotly_page(lens, coords, path: Path) -> None:
    import plotly.graph_objects as go
    import plotly.io as pio

    from embedlens.render.offline import plotly_text

    fig = go.Figure(go.Scattergl(x=coords[:, 0], y=coords[:, 1], mode="markers",
                                 text=[plotly_text(s) for s in lens.space.display], hoverinfo="text"))
    path.write_text(pio.to_html(fig, include_plotlyjs=True, full_html=True), encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    print_machine()

    import embedlens
    from embedlens.serve.export import export_site

    lens = embedlens.load(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "site"
        t = time.perf_counter()
        first = export_site([lens], out, k=args.k, progress=False)
        print(f"[first] export {time.perf_counter() - t:.1f} s (builds what is not cached: k-NN graph, map)")
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            result = export_site([lens], out, k=args.k, progress=False)
            times.append(time.perf_counter() - t)
        m = result.manifest
        print(f"[warm] export of {m['spaces'][0]['title']} ({m['spaces'][0]['n']:,} tokens, k={args.k}, "
              f"{m['spaces'][0]['map']['method']} map): median {statistics.median(times):.2f} s over {args.repeats} "
              f"({', '.join(f'{x:.2f}' for x in times)}); folder {result.total_bytes / 1e6:.1f} MB")
        print("       stages (s): " + json.dumps(m["timings"]["panel_0"]))
        biggest = sorted(result.sizes.items(), key=lambda kv: -kv[1])[:3]
        print("       largest files: " + ", ".join(f"{name} {size / 1e6:.1f} MB" for name, size in biggest))
        del first

        from embedlens.atlas.default_map import default_map

        coords = default_map(lens.input).projection.coords
        page = Path(tmp) / "plotly.html"
        base = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            plotly_page(lens, coords, page)
            base.append(time.perf_counter() - t)
        print(f"[baseline] self-contained plotly.io.to_html page of the same map: {runs_note(len(base))} "
              f"{statistics.median(base):.2f} s, "
              f"{page.stat().st_size / 1e6:.1f} MB (map and hover only)")


if __name__ == "__main__":
    main()
