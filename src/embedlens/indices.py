"""One parser for lists of indices that users type: layers (``-1``, ``all``, ``0,6,12``) and positions
(``all``, ``last``, ``0,3,-1``). Negatives count from the end; the order given is kept, duplicates dropped."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .errors import EmbedlensError

_INTEGER = re.compile(r"[+-]?[0-9]{1,18}", re.ASCII)  # longer numbers are out of range anyway


def parse_index_list(spec: Any, n: int, *, noun: str, keywords: Mapping[str, Sequence[int]], example: str,
                     out_of_range: Callable[[int], str]) -> list[int]:
    """Indices in ``0 .. n-1`` from a keyword, an int, a comma-separated string or a sequence of ints.

    Args:
        spec: what the user gave.
        n: how many indices exist.
        noun: what an index is (``layer``, ``position``), for messages.
        keywords: named selections (``{"all": range(n)}``), matched case-insensitively.
        example: the accepted forms, for messages (``-1, all, or numbers such as 0,6,12``).
        out_of_range: the message for an index outside ``-n .. n-1``.
    """
    if isinstance(spec, str):
        s = spec.strip().lower()
        if s in keywords:
            return list(keywords[s])
        parts = [p.strip() for p in s.split(",")]
        # ASCII digits only: int() would also read "1_0" as 10, "１２" as 12, and "1 2" (spaces removed) as 12
        if not all(_INTEGER.fullmatch(p) for p in parts if p):
            raise EmbedlensError(f"{spec!r:.60} is not a {noun} list: use {example}")
        values = [int(p) for p in parts if p]
    elif isinstance(spec, bool):
        raise EmbedlensError(f"{noun} must be a number or a list, got {spec!r}: use {example}")
    elif isinstance(spec, int) or (hasattr(spec, "__index__") and not hasattr(spec, "__len__")):
        values = [int(spec)]
    else:
        try:
            items = list(spec)
        except TypeError:  # None, a float: not a list of indices
            raise EmbedlensError(f"{noun} must be a number or a list, got {spec!r:.60}: use {example}") from None
        if not all(hasattr(v, "__index__") and not isinstance(v, bool) for v in items):
            raise EmbedlensError(f"{noun} list must hold integers only, got {spec!r:.60}: use {example}")
        values = [int(v) for v in items]
    if not values:
        raise EmbedlensError(f"no {noun} given: use {example}")
    out: list[int] = []
    for v in values:
        idx = v + n if v < 0 else v
        if not 0 <= idx < n:
            raise EmbedlensError(out_of_range(v))
        if idx not in out:
            out.append(idx)
    return out
