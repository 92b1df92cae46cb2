"""Writing a :class:`~embedlens.contextual.mapping.ContextMap` to a folder, every file atomically.

``context.html`` (offline Plotly), ``context.png`` (matplotlib), ``points.parquet`` (one row per point
and layer), ``states.safetensors`` (the raw hidden states) and ``manifest.json``; for a perplexity sweep
also ``sweep.html`` and ``sweep.png`` (one map per perplexity side by side, :mod:`embedlens.render.sweep`).

``states.safetensors`` keys, per model (prefixed ``ALIAS/`` when several models are mapped):
  * texts: ``text_{i}`` float32 (n_layers_kept, n_tokens_kept, d_model), ``text_{i}_ids`` int64 and
    ``text_{i}_positions`` int64 (each kept token's position in the text's full tokenization; with
    ``--keep-special`` that is every token);
  * corpus occurrences: ``occurrences`` float32 (n, n_layers_kept, d_model), the mean state of the
    word's tokens, ``occurrences_spans`` int64 (n, 2) character spans in their documents;
  * ``layers`` int64: the hidden-state indices kept (0 = embeddings output).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..cache import atomic_path, ensure_writable_dir, write_json_atomic, write_text_atomic
from ..render.context import context_png
from ..render.offline import write_plotly_html
from ..safetensors_mmap import write_tensors
from ..timing import Timings
from ..versions import versions
from .mapping import ContextMap
from .occurrences import Occurrences

FILES = ("context.html", "context.png", "points.parquet", "states.safetensors", "manifest.json")


def state_tensors(cmap: ContextMap) -> dict[str, np.ndarray]:
    """The tensors of ``states.safetensors`` (see the module docstring for the keys)."""
    tensors: dict[str, np.ndarray] = {}
    several = len(cmap.panels) > 1
    for p in cmap.panels:
        prefix = f"{p.alias}/" if several else ""
        src = p.source
        tensors[f"{prefix}layers"] = np.asarray(p.layers, dtype=np.int64)
        if isinstance(src, Occurrences):
            tensors[f"{prefix}occurrences"] = np.ascontiguousarray(src.vectors, dtype=np.float32)
            tensors[f"{prefix}occurrences_spans"] = np.ascontiguousarray(src.spans, dtype=np.int64)
        else:
            for i, ts in enumerate(src.texts):
                tensors[f"{prefix}text_{i}"] = np.ascontiguousarray(ts.states, dtype=np.float32)
                tensors[f"{prefix}text_{i}_ids"] = np.ascontiguousarray(ts.ids, dtype=np.int64)
                tensors[f"{prefix}text_{i}_positions"] = np.ascontiguousarray(ts.positions, dtype=np.int64)
    return tensors


def points_table(cmap: ContextMap) -> Any:
    """A pyarrow table with one row per point and layer, every model stacked."""
    import pyarrow as pa

    cols: dict[str, list] = {}
    names = ["model", "text", "position", "token_id", "token", "display", "layer", "group", "focus", "x", "y"]
    if cmap.dims == 3:
        names.append("z")
    names += ["char_start", "char_end"]
    if cmap.kind == "occurrences":
        names += ["doc", "snippet"]
    if any("stability" in p.table for p in cmap.panels):
        names.append("stability")
    for name in names:
        cols[name] = []
    for p in cmap.panels:
        t = p.table
        for name in names:
            if name in ("x", "y", "z"):
                cols[name].append(p.coords[:, "xyz".index(name)].astype(np.float32))
            elif name == "stability":
                cols[name].append(np.asarray(t.get("stability", np.full(p.n_points, np.nan)), dtype=np.float32))
            else:
                cols[name].append(t[name])
    arrays = {}
    for name, parts in cols.items():
        if isinstance(parts[0], np.ndarray):
            arr = np.concatenate(parts)
            if arr.dtype.kind in "iu":
                arr = arr.astype(np.int64)
            arrays[name] = pa.array(arr)
        else:
            arrays[name] = pa.array([x for part in parts for x in part], type=pa.string())
    return pa.table(arrays)


def write_context(cmap: ContextMap, out: str | Path, *, html: bool = True, png: bool = True) -> dict[str, Any]:
    """Write every output of ``cmap`` into ``out``; returns the manifest (also written as manifest.json)."""
    import pyarrow.parquet as pq

    folder = ensure_writable_dir(out)
    timings = Timings()
    with timings.stage("states.safetensors"):
        with atomic_path(folder / "states.safetensors") as tmp:
            write_tensors(state_tensors(cmap), tmp, metadata={"format": "embedlens context states v1"})
    with timings.stage("points.parquet"):
        with atomic_path(folder / "points.parquet") as tmp:
            pq.write_table(points_table(cmap), str(tmp))
    written = ["states.safetensors", "points.parquet"]
    if html:
        with timings.stage("context.html"):
            write_plotly_html(cmap.figure(), folder / "context.html", title=cmap.title())
        written.append("context.html")
    if png:
        with timings.stage("context.png"):
            with atomic_path(folder / "context.png") as tmp:
                context_png(cmap, tmp)
        written.append("context.png")
    if cmap.sweep is not None:  # a perplexity sweep: its small multiples beside the usual files
        page = cmap.sweep_page()
        with timings.stage("sweep.html"):
            write_text_atomic(folder / "sweep.html", page.html())
        written.append("sweep.html")
        if png:
            with timings.stage("sweep.png"):
                with atomic_path(folder / "sweep.png") as tmp:
                    page.png(tmp)
            written.append("sweep.png")
    manifest = {"command": "context", **cmap.to_dict(), "versions": versions(), "outputs": written + ["manifest.json"]}
    manifest["timings"] = {**manifest["timings"], "write": dict(timings)}
    write_json_atomic(folder / "manifest.json", manifest)
    return manifest
