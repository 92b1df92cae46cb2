"""One parser for lists of indices that users type: layers (``-1``, ``all``, ``0,6,12``) and positions
(``all``, ``last``, ``0,3,-1``). Negatives count from the end; the order given is kept, duplicates dropped."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .errors import EmbedlensError


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
        try:
            values = [int(p) for p in s.replace(" ", "").split(",") if p != ""]
        except ValueError:
            raise EmbedlensError(f"{spec!r} is not a {noun} list: use {example}") from None
    elif isinstance(spec, bool):
        raise EmbedlensError(f"{noun} must be a number or a list, got {spec!r}: use {example}")
    elif isinstance(spec, int) or (hasattr(spec, "__index__") and not hasattr(spec, "__len__")):
        values = [int(spec)]
    else:
        values = [int(v) for v in spec]
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
