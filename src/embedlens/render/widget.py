"""The map in a notebook: an `anywidget <https://anywidget.dev>`_ over the one WebGL map component.

``embedlens.widget(result_or_view)`` shows a vocabulary map inline in Jupyter (JupyterLab, Notebook 7,
VS Code) with two-way selection: draw a box or a lasso on the page and ``w.selected`` holds the chosen
token ids; set ``w.selected = [...]`` and the page rings them; ``w.on_select(callback)`` hears every
change. Offline: the page code is ``static/pointcloud.js`` (the renderer of map.html and the explorer,
``window.EmbedlensMap``) followed by ``static/widget.js``, sent once per widget as its ES module; no CDN.

Points travel as binary traits (coords float32, colours uint8, sizes float32, drawing order int32, ids and
corpus counts float64); the readable tokens, label levels and the caption (title and faithfulness figures)
as JSON. Token strings reach the page only through ``textContent``.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from typing import Any

import numpy as np

from ..errors import EmbedlensError, require
from .widget_data import RowIndex, widget_payload

anywidget = require("anywidget", "embedlens.widget (the map in a notebook)", "notebook")
import traitlets  # noqa: E402  (installed with anywidget, which the line above checks)

TOOLS = ("pan", "box", "lasso")


def _module_source() -> str:
    """The widget's ES module: the map component, then the widget's own code (both static files)."""
    static = resources.files("embedlens.render").joinpath("static")
    return "\n".join(static.joinpath(name).read_text(encoding="utf-8") for name in ("pointcloud.js", "widget.js"))


class MapWidget(anywidget.AnyWidget):
    """An interactive map of an :class:`~embedlens.atlas.result.AtlasResult` with two-way selection.

    Attributes:
        selected: token ids of the selected points (row order); settable with any iterable of ids.
        selected_tokens: the readable tokens of the selected points.
        tool: ``"pan"``, ``"box"`` or ``"lasso"`` (what a left-drag does on a 2-D map).
        height: the map's height in CSS px.
        result: the map shown.
    """

    _esm = traitlets.Unicode(_module_source()).tag(sync=True)
    _coords = traitlets.Bytes(b"").tag(sync=True)
    _rgb = traitlets.Bytes(b"").tag(sync=True)
    _size = traitlets.Bytes(b"").tag(sync=True)
    _order = traitlets.Bytes(b"").tag(sync=True)
    _token_priority = traitlets.Bytes(b"").tag(sync=True)
    _ids = traitlets.Bytes(b"").tag(sync=True)
    _freq = traitlets.Bytes(b"").tag(sync=True)
    _data = traitlets.Dict().tag(sync=True)
    tool = traitlets.Unicode("pan").tag(sync=True)
    height = traitlets.Int(560).tag(sync=True)
    _selection = traitlets.List().tag(sync=True)  # rows, ascending (checked with numpy in _valid_rows, not per item)

    def __init__(self, result: Any, *, height: int = 560, notes: list[str] | None = None) -> None:
        binary, data = widget_payload(result, notes or [])
        self.result = result
        self._rows = RowIndex(result.ids)
        self._callbacks: list[Callable[[list[int]], Any]] = []
        super().__init__(**{f"_{k}": v for k, v in binary.items()}, _data=data, height=_check_height(height))
        self.observe(self._selection_changed, names="_selection")

    def __repr__(self) -> str:
        return f"MapWidget({self._data.get('title', [''])[0]}, {len(self._selection):,} selected)"

    @traitlets.validate("tool")
    def _valid_tool(self, proposal: Any) -> str:
        if proposal["value"] not in TOOLS:
            raise EmbedlensError(f"unknown tool {proposal['value']!r} (choose {', '.join(TOOLS)})")
        return proposal["value"]

    @traitlets.validate("_selection")
    def _valid_rows(self, proposal: Any) -> list[int]:
        # the page sends rows; anything else (a stale page of another map) is cut to this map's rows
        rows = np.unique(np.asarray(proposal["value"], dtype=np.int64))
        return rows[(rows >= 0) & (rows < len(self._rows))].tolist()

    @property
    def selected(self) -> list[int]:
        """Token ids of the selected points, in the map's row order."""
        return self._rows.ids_of(self._selection)

    @selected.setter
    def selected(self, ids: Any) -> None:
        self._selection = self._rows.rows(ids).tolist()

    @property
    def selected_tokens(self) -> list[str]:
        """Readable tokens of the selected points (the map's ``display``), in row order."""
        return [self.result.display[r] for r in self._selection]

    def on_select(self, callback: Callable[[list[int]], Any]) -> Callable[[list[int]], Any]:
        """Call ``callback(ids)`` with the selected token ids whenever the selection changes (page or kernel).

        Returns the callback, so it can serve as a decorator.
        """
        self._callbacks.append(callback)
        return callback

    def _selection_changed(self, change: Any) -> None:
        ids = self._rows.ids_of(change["new"])
        for callback in list(self._callbacks):
            callback(ids)


def _check_height(height: int) -> int:
    if isinstance(height, bool) or not isinstance(height, (int, np.integer)) or not 120 <= int(height) <= 4000:
        raise EmbedlensError(f"height must be a whole number of pixels between 120 and 4000, got {height!r}")
    return int(height)
