"""``grid``: the token grid map, with the research module's option names and defaults."""

from __future__ import annotations

import click

from .. import hardware  # called through the module: tests stand in for it there
from ..errors import EmbedlensError
from ..method_names import GRID_PLANES
from ..models.specs import DEFAULT_MODEL
from .common import MODEL_HELP, emit_json, json_option, note
from .device_options import device_options
from .table import print_table


def _center(value: str) -> tuple[float, float]:
    import math

    try:
        parts = [float(v) for v in value.split(",")]
    except ValueError:
        parts = []
    if len(parts) != 2 or not all(math.isfinite(p) for p in parts):
        raise EmbedlensError(f"--center must be two finite numbers X,Y (e.g. 0,0 or -1.5,2), got '{value}'")
    return parts[0], parts[1]


@click.command()
@click.option("--model", "-m", "--model-name", "model", default=DEFAULT_MODEL, show_default=True, help=MODEL_HELP)
@click.option("--grid-size", type=int, default=50, show_default=True, help="Grid points per axis (N x N cells).")
@click.option("--spacing", type=float, default=0.5, show_default=True,
              help="Distance between grid points (in standard deviations for pca).")
@click.option("--layer-idx", "layer_idx", default=None,
              help="Block the grid vectors enter: 0..n_layers (n_layers decodes directly), negative from the end; "
                   "default the last block. Several (0,10,20,30) also write a side-by-side panel.")
@click.option("--embedding-method", type=click.Choice(GRID_PLANES), default="random_projection", show_default=True,
              help="How a grid point (x, y) becomes a vector.")
@click.option("--plane-tokens", default=None, help="For --embedding-method tokens: three tokens A,B,C (origin A, axes "
              "B-A and C-A); each a single-token word, id:N or tok:RAW.")
@click.option("--center", "center", default="0,0", show_default=True, help="Grid centre X,Y.")
@click.option("--batch-size", type=int, default=100, show_default=True, help="Cells per forward pass.")
@click.option("--seed", type=click.IntRange(min=0), default=42, show_default=True, help="Seed of the random projection.")
@click.option("--output-dir", default="embedding_grid_results", show_default=True, type=click.Path(file_okay=False),
              help="Output folder.")
@device_options
@click.option("--max-display-size", type=int, default=50, show_default=True,
              help="At most this many token labels per axis in the PNG.")
@click.option("--cell-labels", type=click.Choice(["cells", "regions", "both"]), default=None,
              help="Label each cell's token, each connected region of cells sharing a top token once (sized by "
                   "area), or both. Default: both above 40x40, else cells.")
@click.option("--no-html", is_flag=True, help="Skip the interactive HTML.")
@click.option("--no-png", is_flag=True, help="Skip the PNG (matplotlib is then not even imported).")
@json_option
def grid(model: str, grid_size: int, spacing: float, layer_idx: str | None, embedding_method: str,
         plane_tokens: str | None, center: str, batch_size: int, seed: int, output_dir: str, dtype: str,
         device: str, max_display_size: int, no_html: bool, as_json: bool,
         cell_labels: str | None = None, no_png: bool = False) -> None:
    """Token grid map: a 2D grid of vectors enters block L as one token at position 0, the rest of the model
    runs, and each cell shows its most likely next token coloured by probability.

    Methods: direct (x, y, 0, ...), replicated (x, y, x, y, ...), random_projection (R (x, y), R a seeded
    Gaussian d x 2 matrix with unit columns), pca (mean + x s1 pc1 + y s2 pc2 of the real token
    embeddings), tokens (A + x (B - A) + y (C - A)). Writes the map as PNG and HTML
    (embedding_grid_layer_{L}_size_{N}_method_{M}.png, .html) and the numbers as
    embedding_grid_results_layer_{L}.json into --output-dir.
    """
    from ..grid import create_embedding_grid_map  # lazy: imports numpy; --help stays light

    if dtype == "bfloat16" and device == "cpu":
        if not hardware.fast_bfloat16():
            note("this CPU has no fast bfloat16 matrix products (no AVX512-BF16/AMX): bfloat16 will be far "
                 "slower than --dtype float32 here")
    out = create_embedding_grid_map(
        model, layer_idx=layer_idx, grid_size=grid_size, spacing=spacing, embedding_method=embedding_method,
        output_dir=output_dir, batch_size=batch_size, max_display_size=max_display_size, center=_center(center),
        plane_tokens=plane_tokens, seed=seed, dtype=dtype, device=device, html=not no_html, png=not no_png,
        cell_labels=cell_labels,
    )
    if as_json:
        emit_json({**out.to_dict(), "summary": [_summary(m) for m in out.maps]})
        return
    for gm in out.maps:
        s = _summary(gm)
        title = (f"layer {gm.layer}: {s['distinct_tokens']} distinct top tokens over {s['cells']} cells, "
                 f"{s['cells_per_s']:.0f} cells/s")
        rows = [(row["display"], str(row["id"]), str(row["cells"]), f"{row['mean_prob']:.3f}") for row in s["most_common"]]
        print_table(title, [("token", "left"), ("id", "right"), ("cells", "right"), ("mean p", "right")], rows)
    for f in out.files:
        note(f"wrote {f}")


def _summary(gm) -> dict:
    import numpy as np

    ids, counts = np.unique(gm.token_ids, return_counts=True)
    order = np.argsort(-counts, kind="stable")[:10]
    shown = dict(zip(gm.token_ids.tolist(), gm.display, strict=True))
    rows = [{"id": int(ids[i]), "display": shown[int(ids[i])], "cells": int(counts[i]),
             "mean_prob": float(gm.probs[gm.token_ids == ids[i]].mean())} for i in order]
    return {"layer": gm.layer, "cells": int(gm.token_ids.size), "distinct_tokens": int(ids.size),
            "cells_per_s": gm.config["timings"]["cells_per_s"], "most_common": rows}
