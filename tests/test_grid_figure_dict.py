"""The grid's HTML figure built without validating its arrays is, byte for byte, the figure Plotly validates."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from embedlens.grid import EmbeddingGridVisualizer
from embedlens.render import grid as R
from embedlens.render.offline import plotly_html

TOKENS = ['"quoted"', "it's", "&", "<", ">", "&amp;", "<script>", "</div>", "[/b]", "a&b", "␣list", "日本", "é"]


@pytest.fixture(scope="module")
def maps(tiny_gpt2_dir):
    from embedlens.models.loading import load_model

    model, tok = load_model(str(tiny_gpt2_dir))
    viz = EmbeddingGridVisualizer(model, tok, seed=5)
    out = {}
    for n in (3, 7, 52):  # 52: above the 50-cell label limit and the 40x40 default of region labels
        gm = viz.compute_map(n, 0.9, "random_projection")
        rng = np.random.default_rng(n)
        picks = rng.integers(0, len(TOKENS), size=gm.top5_display.shape)
        gm.top5_display[...] = np.asarray(TOKENS, dtype=object)[picks]
        out[n] = gm
    return out


def validated(gm, mode):
    """The figure as Plotly validates it: every array through its validators (the previous way)."""
    import plotly.graph_objects as go

    fig = go.Figure(R._heatmap(gm, label_limit=50 if mode != "regions" else 0))
    if mode != "cells":
        fig.add_trace(R.region_trace(gm))
    fig.update_layout(title={"text": R.plotly_text(R._title(gm))}, xaxis_title="x", yaxis_title="y",
                      yaxis={"scaleanchor": "x"}, width=900, height=900, template="plotly_white")
    return fig


@pytest.mark.parametrize("n", [3, 7, 52])
@pytest.mark.parametrize("mode", ["cells", "regions", "both"])
def test_figure_dict_is_the_validated_figure(maps, n, mode):
    gm = maps[n]
    ours = R.grid_figure_dict(gm, cell_labels=mode)
    theirs = validated(gm, mode).to_dict()
    assert json.dumps(ours) == json.dumps(theirs)  # same values, same key order
    assert R.grid_figure(gm, cell_labels=mode).to_dict() == theirs


def test_html_file_is_the_validated_page(maps, tmp_path):
    gm = maps[7]
    R.write_grid_html(gm, tmp_path / "g.html", cell_labels="both")
    ours = (tmp_path / "g.html").read_text(encoding="utf-8")
    theirs = plotly_html(validated(gm, "both"), title=R._title(gm))
    ids = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")  # Plotly's random div id
    assert ids.sub("ID", ours) == ids.sub("ID", theirs)
    assert "&lt;script&gt;" in ours and "<script>alert" not in ours
