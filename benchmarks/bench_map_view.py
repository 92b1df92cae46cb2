"""Frame time of the map page at Gemma's size: pan and zoom over 262,144 points in headless chromium.

Two pages of the same 262,144 points (a UMAP-like mixture of blobs with a few far outliers, 40 labelled
clusters and 160 sub-clusters, corpus-like counts), opened in Debian's headless chromium with the test
suite's flags (``--disable-gpu``: software WebGL, as on a machine with no GPU):
  * embedlens's map.html (the WebGL map component, labels on): each frame moves the view as a drag or the
    wheel does (pan by a few pixels, or zoom by 5% around a point) through the component's own gesture path;
    in software WebGL that path moves a copy of the last full frame and places the labels, and draws every
    point again when the gesture pauses (reported too: one full draw, waited for with a pixel read back);
  * Plotly ``scattergl`` (what map.html used below 100,000 points before): ``Plotly.relayout`` of the axis
    ranges by the same amounts, awaited.
A frame's time is the time between two animation frames while the gesture goes on (drawing, layout and
paint included). Reported: the median of 20 frames (after 3 warm-up frames) per page and gesture, and the
time to open each page (load until drawn). Target (issue 22): <= 50 ms a frame for the WebGL page.

Measured here (2 shared AMD EPYC cores, load average 6-7, chromium's software WebGL: SwiftShader), 262,144
points: pan 16.6 ms and zoom 16.7 ms a frame (the browser's 60 Hz cap), every point drawn again after the
gesture 244 ms, open 3.4 s; Plotly scattergl on the same points in the same run: pan 3,078 ms and zoom
2,846 ms a frame, open 8.8 s. For scale: one bare ``gl.POINTS`` draw of 262,144 points with the simplest
shader takes 170-280 ms in this browser, so no renderer that draws every point on every frame (Plotly,
regl-scatterplot) can reach 50 ms here; the component moves the last full frame during the gesture instead.

Run (one benchmark at a time on a shared machine; about three minutes with the Plotly baseline):
    flock /tmp/embedlens-bench.lock .venv/bin/python benchmarks/bench_map_view.py [--n 262144] [--frames 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import machine  # noqa: E402

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]
VIEWPORT = {"width": 1280, "height": 860}


def synthetic_result(n: int, seed: int = 0):
    """An AtlasResult of ``n`` points in blobs, with clusters and sub-clusters given (not searched for)."""
    from embedlens.atlas import AtlasResult
    from embedlens.atlas.clusters import Cluster, Clustering

    rng = np.random.default_rng(seed)
    centres = rng.uniform(-40, 40, size=(160, 2))
    sub = rng.integers(0, 160, size=n)
    coords = centres[sub] + rng.standard_normal((n, 2)) * rng.uniform(0.5, 3.0, size=160)[sub, None]
    coords[:8] *= 25  # far outliers, as UMAP maps have
    parent = np.arange(160) // 4
    display = [f"tok{i}" for i in range(n)]
    freq = rng.zipf(1.6, size=n).astype(np.int64)

    def level(assignment: np.ndarray, name: str) -> Clustering:
        ids = np.unique(assignment)
        clusters = [Cluster(int(c), int((assignment == c).sum()), f"{name} {c} · tok · word", [], 0.5, 0.1,
                            np.median(coords[assignment == c], axis=0).tolist()) for c in ids]
        return Clustering(assignment, clusters, "auto", "given", "synthetic", 0.0, "frequency")

    clustering = level(parent[sub], "cluster")
    clustering.sub = level(sub, "sub")
    return AtlasResult(coords=coords.astype(np.float32), ids=np.arange(n), labels=display, display=display,
                       frequencies=freq, quality=None, model={"name": "synthetic"}, space="synthetic", method="umap",
                       dims=2, metric="cosine", seed=seed, clustering=clustering)


# Each frame moves the view a little, as a drag or the wheel does, and waits for the next animation frame:
# the time between frames is what a person sees (drawing, label placement, layout and paint included).
WEBGL_FRAMES = """async ([frames, gesture]) => {
  const m = embedlensMap, stamps = [];
  const frame = () => new Promise((r) => requestAnimationFrame(() => r(performance.now())));
  await frame();
  for (let i = 0; i < frames + 3; i++) {
    if (gesture === 'pan') m.panBy(i % 2 ? -7 : 9, i % 2 ? 4 : -3); else m.zoomBy(i % 2 ? 1 / 1.05 : 1.06, 500, 380);
    stamps.push(await frame());
  }
  await new Promise((r) => setTimeout(r, 400));  // the gesture pauses: every point drawn again
  const gl = m.canvas.getContext('webgl'), t = performance.now();
  m.draw();
  gl.readPixels(0, 0, 1, 1, gl.RGBA, gl.UNSIGNED_BYTE, new Uint8Array(4));  // waits until the frame is drawn
  return {frames: stamps.slice(3).map((s, k) => s - stamps[k + 2]), full: performance.now() - t};
}"""

PLOTLY_FRAMES = """async ([frames, gesture]) => {
  const gd = document.querySelector('.js-plotly-plot'), stamps = [];
  const frame = () => new Promise((r) => requestAnimationFrame(() => r(performance.now())));
  let [x0, x1] = gd.layout.xaxis.range, [y0, y1] = gd.layout.yaxis.range;
  await frame();
  for (let i = 0; i < frames + 3; i++) {
    if (gesture === 'pan') { const d = (i % 2 ? -1 : 1) * 0.01 * (x1 - x0); x0 += d; x1 += d; y0 += d / 2; y1 += d / 2; }
    else { const f = i % 2 ? 1.05 : 1 / 1.06, cx = (x0 + x1) / 2, cy = (y0 + y1) / 2;
      x0 = cx + (x0 - cx) * f; x1 = cx + (x1 - cx) * f; y0 = cy + (y0 - cy) * f; y1 = cy + (y1 - cy) * f; }
    await Plotly.relayout(gd, {'xaxis.range': [x0, x1], 'yaxis.range': [y0, y1]});
    stamps.push(await frame());
  }
  return {frames: stamps.slice(3).map((s, k) => s - stamps[k + 2]), full: null};
}"""


def measure(path: Path, script: str, ready: str, frames: int) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            t = time.perf_counter()
            page.goto(path.as_uri())
            page.wait_for_function(ready, timeout=600_000)
            out = {"open_s": time.perf_counter() - t}
            for gesture in ("pan", "zoom"):
                got = page.evaluate(script, [frames, gesture])
                out[gesture] = statistics.median(got["frames"])
                out[f"{gesture}_full"] = got["full"]
            return out
        finally:
            browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=262_144)
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--no-plotly", action="store_true", help="skip the Plotly baseline")
    args = parser.parse_args()
    print(machine(), flush=True)
    result = synthetic_result(args.n)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        result.renderer = "webgl"
        (folder / "webgl.html").write_text(result.html(), encoding="utf-8")
        gl = measure(folder / "webgl.html", WEBGL_FRAMES, "() => document.documentElement.dataset.drawn === '1'",
                     args.frames)
        print(f"embedlens WebGL map, {args.n:,} points, labels on: open {gl['open_s']:.1f} s; frame (median of "
              f"{args.frames}) pan {gl['pan']:.1f} ms, zoom {gl['zoom']:.1f} ms (target <= 50 ms); every point "
              f"drawn again when the gesture pauses: {gl['pan_full']:.0f} ms", flush=True)
        if not args.no_plotly:
            result.renderer = "plotly"
            (folder / "plotly.html").write_text(result.html(), encoding="utf-8")
            pl = measure(folder / "plotly.html", PLOTLY_FRAMES,
                         "() => { const g = document.querySelector('.js-plotly-plot'); return g && g._fullLayout"
                         " && g.querySelector('canvas'); }", args.frames)
            print(f"Plotly scattergl, same points:            open {pl['open_s']:.1f} s; frame (median of "
                  f"{args.frames}) pan {pl['pan']:.1f} ms, zoom {pl['zoom']:.1f} ms", flush=True)
            print(f"speed-up: pan {pl['pan'] / gl['pan']:.1f}x, zoom {pl['zoom'] / gl['zoom']:.1f}x, "
                  f"open {pl['open_s'] / gl['open_s']:.1f}x")


if __name__ == "__main__":
    main()
