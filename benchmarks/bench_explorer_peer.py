"""The explorer beside embedding-atlas on the same vectors and the same map: time to a drawn map, and a
screenshot of each (headless Chromium, 1500 x 950).

SmolLM2's 49,152 input embeddings on their cached whole-vocabulary t-SNE map (``embedlens map --all --method
tsne`` writes it); embedding-atlas gets the same coordinates as precomputed ``x``/``y`` columns of a parquet
file (its CLI, ``--disable-projection``), so neither computes a projection. embedding-atlas lives in its own
virtual environment (``--ea-python``), never in embedlens's dependencies.

Run (one benchmark at a time on a shared machine):
    .venv/bin/python benchmarks/bench_explorer_peer.py --ea-bin /path/to/ea-venv/bin/embedding-atlas --out shots/
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import machine  # noqa: E402

CHROMIUM = "/usr/bin/chromium"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, seconds: float = 120) -> None:
    end = time.time() + seconds
    while time.time() < end:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except Exception:
            time.sleep(0.3)
    raise SystemExit(f"no server answered at {url}")


def time_pages(browser, url: str, ready: str, repeats: int, shot: Path, settle_ms: int) -> tuple[list[float], list[str]]:
    times, console = [], []
    for i in range(repeats):
        page = browser.new_page(viewport={"width": 1500, "height": 950})
        page.on("console", lambda m: console.append(m.text) if m.type in ("error", "warning") else None)
        started = time.perf_counter()
        page.goto(url)
        page.wait_for_function(ready, timeout=120_000)
        times.append(time.perf_counter() - started)
        if i == repeats - 1:
            page.wait_for_timeout(settle_ms)
            page.screenshot(path=str(shot))
        page.close()
    return times, console


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ea-bin", required=True, help="the embedding-atlas command of its own virtual environment")
    ap.add_argument("--out", default="peer-shots", help="folder for the two screenshots")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    print(machine())
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    from playwright.sync_api import sync_playwright

    import embedlens
    from embedlens.atlas.projection import load_projection, projection_path

    view = embedlens.load("smollm2-135m").input
    proj = load_projection(projection_path(view.content_hash, "tsne", 2, 0), len(view.space))
    if proj is None:
        raise SystemExit("no cached t-SNE map of SmolLM2: run `embedlens map --all --method tsne` first")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp())
    table = work / "smollm2.parquet"
    pq.write_table(pa.table({"token": list(view.space.display), "id": np.asarray(view.space.ids),
                             "x": proj.coords[:, 0], "y": proj.coords[:, 1]}), table)
    results = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        port = free_port()
        exe = Path(sys.executable).with_name("embedlens")
        server = subprocess.Popen([str(exe), "serve", "--port", str(port)], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            wait_http(f"http://127.0.0.1:{port}/api/info")
            ready = "() => { const p = document.querySelector('.plot'); return p && p.dataset.drawn; }"
            results["embedlens"], _ = time_pages(browser, f"http://127.0.0.1:{port}/", ready, args.repeats,
                                                 out / "embedlens.png", 2500)
        finally:
            server.terminate()
            server.wait()
        port = free_port()
        env = {**os.environ, "XDG_CACHE_HOME": str(work / "xdg")}
        server = subprocess.Popen([args.ea_bin, str(table), "--text", "token", "--x", "x", "--y", "y",
                                   "--disable-projection", "--host", "127.0.0.1", "--port", str(port), "--no-auto-port"],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        try:
            wait_http(f"http://127.0.0.1:{port}/")
            # its map view is a canvas drawn with WebGPU: the canvas in the page is the best signal it gives
            results["embedding-atlas"], console = time_pages(browser, f"http://127.0.0.1:{port}/",
                                                             "() => !!document.querySelector('canvas')",
                                                             args.repeats, out / "embedding-atlas.png", 8000)
            results["embedding-atlas console"] = sorted(set(console))[:6]
        finally:
            server.terminate()
            server.wait()
        browser.close()
    for name in ("embedlens", "embedding-atlas"):
        t = results[name]
        print(f"{name}: navigation to drawn map, median {statistics.median(t):.2f} s over {len(t)} fresh pages "
              f"({', '.join(f'{x:.2f}' for x in t)})")
    print("embedding-atlas console:", json.dumps(results["embedding-atlas console"]))
    print(f"screenshots: {out / 'embedlens.png'}, {out / 'embedding-atlas.png'}")


if __name__ == "__main__":
    main()
