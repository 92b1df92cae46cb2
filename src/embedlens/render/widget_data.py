"""What the notebook map widget sends to the page, and how its selection maps token ids to rows.

Kept apart from :mod:`embedlens.render.widget` (which needs ``anywidget``) so that both can be tested
and reused without a notebook. The arrays are the ones map.html draws (:func:`embedlens.render.pointcloud.page_data`:
the same colours, sizes, drawing order, hover fields and label levels), sent as raw bytes instead of
base64 text; the caption holds the map's title and its faithfulness figures as plain text.
"""

from __future__ import annotations

import base64
import numbers
from collections.abc import Iterable
from typing import Any

import numpy as np

from ..errors import EmbedlensError
from .atlas import color_values

BINARY = ("coords", "rgb", "size", "order", "token_priority")  # page_data's base64 fields, sent as bytes


def widget_payload(result: Any, notes: Iterable[str] = ()) -> tuple[dict[str, bytes], dict[str, Any]]:
    """``(binary, data)`` for an :class:`~embedlens.atlas.result.AtlasResult`: raw little-endian bytes
    (coords float32 (n*dims), rgb uint8 (n*3), size float32, order and token_priority int32 or empty, ids and
    freq float64 (freq empty without counts)) and the JSON part (n, dims, axes, display, title, colorbar,
    legend, levels, caption)."""
    from .pointcloud import page_data  # lazy: pointcloud imports plotly at its top

    data = page_data(result)
    binary = {name: b"" if data.get(name) is None else base64.b64decode(data[name]) for name in BINARY}
    # ids and counts as float64: exact up to 2**53, and JavaScript reads them without a JSON list per point
    binary["ids"] = np.asarray(result.ids, dtype=np.float64).tobytes()
    binary["freq"] = b"" if result.frequencies is None else np.asarray(result.frequencies, dtype=np.float64).tobytes()
    for name in (*BINARY, "ids", "freq"):
        data.pop(name, None)
    data["caption"] = caption_lines(result, notes)
    return binary, data


def caption_lines(result: Any, notes: Iterable[str] = ()) -> list[str]:
    """Plain text under the widget's title: the faithfulness figures, each point's local recall when
    measured, the colour, then ``notes`` and the map's own notes (the quality summary only once)."""
    line1, line2 = result.title_lines()
    lines = [line2]
    local = getattr(result, "local_recall", None)
    if local is not None and len(local):
        local = np.asarray(local, dtype=np.float64)
        measured = local[np.isfinite(local)]  # a whole-space PCA map measures its recall's query rows only
        k = int((result.params.get("local_recall") or {}).get("k", 10))
        if measured.size:
            line = (f"local recall@{k} (each point's share of its {k} true neighbours kept among its {k} nearest on "
                    f"the map): mean {measured.mean():.3f}, {np.mean(measured == 0):.0%} of points keep none")
            if measured.size < local.size:
                line += f" ({measured.size:,} of {local.size:,} points measured)"
            lines.append(line)

    categories = result.categories()
    if categories is not None:
        lines.append("colour: writing system" if result.color == "script" else f"colour: {categories[0]}")
    else:
        _, bar = color_values(result)
        if bar:
            lines.append(f"colour: {bar['title']['text']} (Viridis: dark purple low, yellow high)")
    for note in [*notes, *result.notes]:
        if note and note not in line2 and note not in lines:  # the quality summary is part of line2
            lines.append(note)
    return lines


class RowIndex:
    """Token ids <-> rows of a map (vectorised; ids are unique on a map).

    Args:
        ids: int array of shape (n_points,), the token id of each row.
    """

    def __init__(self, ids: np.ndarray) -> None:
        self.ids = np.asarray(ids, dtype=np.int64)
        self._order = np.argsort(self.ids, kind="stable")
        self._sorted = self.ids[self._order]
        if self._sorted.size > 1 and np.any(self._sorted[1:] == self._sorted[:-1]):
            raise EmbedlensError("ids: a map's token ids must be unique")

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def rows(self, ids: Any) -> np.ndarray:
        """Sorted, distinct rows (int64) of the token ids ``ids``; a one-line error names the ids not on the map."""
        wanted = _as_ids(ids)
        if wanted.size == 0:
            return np.zeros(0, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self._sorted, wanted), max(len(self) - 1, 0))
        found = (self._sorted[pos] == wanted) if len(self) else np.zeros(wanted.shape, dtype=bool)
        if not found.all():
            missing = np.unique(wanted[~found])
            shown = ", ".join(str(v) for v in missing[:8].tolist()) + (", ..." if missing.size > 8 else "")
            raise EmbedlensError(f"selected: {missing.size} token id{'s' if missing.size > 1 else ''} not on this map "
                                 f"({shown}); it holds {len(self):,} tokens")
        return np.unique(self._order[pos])

    def ids_of(self, rows: Any) -> list[int]:
        """Token ids of ``rows`` (in the order given), as Python ints."""
        return self.ids[np.asarray(rows, dtype=np.int64)].tolist()


def _as_ids(ids: Any) -> np.ndarray:
    """``ids`` as an int64 array; refuses a lone number, text, booleans and non-integral numbers in one line."""
    if ids is None:
        return np.zeros(0, dtype=np.int64)
    if isinstance(ids, (str, bytes, numbers.Number)):
        raise EmbedlensError(f"selected takes a list of token ids, got {type(ids).__name__} {str(ids)[:40]!r}")
    values = np.asarray(ids if isinstance(ids, np.ndarray) else list(ids))
    if values.size == 0:
        return np.zeros(0, dtype=np.int64)
    if values.ndim != 1:
        raise EmbedlensError(f"selected takes a flat list of token ids, got an array of shape {values.shape}")
    if values.dtype.kind in "iu":
        return values.astype(np.int64)
    if values.dtype.kind == "f":
        bad = ~np.isfinite(values) | (values != np.round(values))
        if not bad.any():
            return values.astype(np.int64)
        first = float(values[bad][0])
    else:  # booleans, text, None or a mix
        first = next((v for v in values.tolist() if isinstance(v, bool) or not isinstance(v, numbers.Integral)),
                     values.tolist()[0])
    raise EmbedlensError(f"selected: token ids must be integers, got {first!r}")
