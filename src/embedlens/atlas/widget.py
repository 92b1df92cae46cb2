"""Open a map in Jupyter: :func:`widget` turns a map or a space into the notebook widget.

The widget itself (:class:`embedlens.render.widget.MapWidget`) only draws an :class:`AtlasResult`; this
module chooses what to draw for a space: its best cached whole-space map (:mod:`.default_map`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..errors import EmbedlensError
from ..lens import Lens, SpaceView, as_view
from ..render.widget import MapWidget
from .default_map import atlas_of_projection, default_map
from .pipeline import COLORS
from .result import AtlasResult


def widget(x: Any, *, color: str | None = None, height: int = 560, seed: int = 0) -> MapWidget:
    """Show a map inline in Jupyter, with box/lasso selection read back as token ids.

    Args:
        x: an :class:`~embedlens.atlas.result.AtlasResult` (what :func:`embedlens.build_atlas` returns), or a
            space: a view (``lens.input``) or a handle (``embedlens.load(...)``: its input space). A space is
            drawn on its best cached whole-space map (t-SNE, then UMAP); without one, PCA is computed now and
            the caption says so.
        color: one of :func:`embedlens.build_atlas`'s colours (``frequency``, ``length``, ``script``, ``none``...;
            :data:`embedlens.atlas.pipeline.COLORS`); default: the map's own colour (for a space, token length,
            since no corpus was counted).
        height: the map's height in CSS px.
        seed: the seed of the cached whole-space maps to look for (a space only).

    Returns:
        A :class:`MapWidget`; ``w.selected`` holds the selected token ids, ``w.on_select(f)`` hears changes.
    """
    notes: list[str] = []
    if isinstance(x, AtlasResult):
        result = x
    else:
        if not isinstance(x, (Lens, SpaceView)):
            raise EmbedlensError(f"widget takes a map (build_atlas's result) or a space (lens.input), "
                                 f"got {type(x).__name__}")
        view = as_view(x)
        chosen = default_map(view, seed=seed)
        notes += [n for n in [chosen.note()] if n]
        result = atlas_of_projection(view, chosen.projection)
    if color is not None:
        if color not in COLORS:
            raise EmbedlensError(f"unknown colour {color!r} (choose {', '.join(COLORS)})")
        if color == "pos" and result.pos is None:
            raise EmbedlensError("color='pos' needs a map whose tokens were tagged: build_atlas(..., color='pos')")
        result = replace(result, color=color)
    return MapWidget(result, height=height, notes=notes)
