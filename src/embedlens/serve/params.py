"""Request parsing for the explorer: every parameter checked, every refusal one line (a :class:`BadRequest`).

Query strings (GET) give strings: :func:`text_param`, :func:`int_param`, :func:`float_param` and
:func:`choice_param` read one each, with bounds. JSON bodies (POST) are read by :func:`read_json_body`
(``Content-Type: application/json`` only, at most :data:`MAX_BODY_BYTES`, strict JSON: no NaN, no
duplicate keys) and checked field by field by :class:`Body`: unknown fields refused, integers that are
integers (not ``true``, not ``3.0``), row lists of in-range integers, deduplicated.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..method_names import REDUCERS
from .panels import BadRequest

MAX_BODY_BYTES = 2 * 1024 * 1024
_INTEGER = re.compile(r"-?[0-9]{1,12}")


# -- query strings -----------------------------------------------------------------------------------------


def text_param(params: Mapping[str, str], name: str, max_chars: int, *, default: str | None = None) -> str:
    value = params.get(name, default)
    if value is None or value == "":
        raise BadRequest(f"parameter '{name}' is required")
    if len(value) > max_chars:
        raise BadRequest(f"parameter '{name}' is {len(value)} characters long; the limit is {max_chars}", status=413)
    if "\x00" in value:
        raise BadRequest(f"parameter '{name}' contains a NUL character")
    return value


def int_param(params: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if not _INTEGER.fullmatch(raw):
        raise BadRequest(f"parameter '{name}' must be an integer, got {raw[:20]!r}")
    value = int(raw)
    if not lo <= value <= hi:
        raise BadRequest(f"parameter '{name}' must be between {lo} and {hi}, got {value}")
    return value


def float_param(params: Mapping[str, str], name: str, default: float, lo: float, hi: float) -> float:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw) if len(raw) <= 20 else float("nan")
    except ValueError:
        value = float("nan")
    if not np.isfinite(value) or not lo <= value <= hi:
        raise BadRequest(f"parameter '{name}' must be a number between {lo:g} and {hi:g}, got {raw[:20]!r}")
    return value


def choice_param(params: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    value = params.get(name, default)
    if value not in choices:
        raise BadRequest(f"parameter '{name}' must be one of {', '.join(choices)}, got {value[:20]!r}")
    return value


def map_params(params: Mapping[str, str]) -> tuple[str, int]:
    """``method`` (a reducer, default pca) and ``dims`` (2 or 3, default 2) of a map."""
    return choice_param(params, "method", REDUCERS, "pca"), int_param(params, "dims", 2, 2, 3)


# -- JSON bodies -------------------------------------------------------------------------------------------


async def read_json_body(request: Any, max_bytes: int = MAX_BODY_BYTES) -> dict[str, Any]:
    """The request's JSON object; a 415 for another content type, a 413 past ``max_bytes`` (read no further)."""
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if ctype != "application/json":
        raise BadRequest(f"the body must be JSON (Content-Type: application/json), got {ctype[:40] or 'none'!r}",
                         status=415)
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > max_bytes):
        raise BadRequest(f"the body is larger than {max_bytes:,} bytes", status=413)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():  # a chunked body has no length: count as it comes
        size += len(chunk)
        if size > max_bytes:
            raise BadRequest(f"the body is larger than {max_bytes:,} bytes", status=413)
        chunks.append(chunk)
    return parse_json_object(b"".join(chunks))


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"field {key[:40]!r} is given twice")
        out[key] = value
    return out


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """A JSON object from bytes (UTF-8), strictly: no NaN/Infinity, no repeated keys."""
    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=_no_constant, object_pairs_hook=_no_duplicates)
    except UnicodeDecodeError:
        raise BadRequest("the body is not UTF-8 text") from None
    except (ValueError, RecursionError) as exc:
        raise BadRequest(f"the body is not valid JSON: {str(exc).splitlines()[0][:120]}") from None
    if not isinstance(body, dict):
        raise BadRequest(f"the body must be a JSON object, got {type(body).__name__}")
    return body


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class Body:
    """The fields of one JSON body, read with checks; ``allowed`` names every field the endpoint takes."""

    def __init__(self, body: dict[str, Any], allowed: tuple[str, ...]) -> None:
        unknown = [k for k in body if k not in allowed]
        if unknown:
            raise BadRequest(f"unknown field {unknown[0][:40]!r} (this endpoint takes {', '.join(allowed)})")
        self.body = body

    def int(self, name: str, default: int, lo: int, hi: int) -> int:
        value = self.body.get(name, default)
        if not _is_int(value):
            raise BadRequest(f"field '{name}' must be an integer, got {json.dumps(value)[:20]}")
        if not lo <= value <= hi:
            raise BadRequest(f"field '{name}' must be between {lo} and {hi}, got {value}")
        return int(value)

    def bool(self, name: str, default: bool) -> bool:
        value = self.body.get(name, default)
        if not isinstance(value, bool):
            raise BadRequest(f"field '{name}' must be true or false, got {json.dumps(value)[:20]}")
        return value

    def rows(self, name: str, n: int, max_rows: int) -> np.ndarray:
        """A non-empty list of at most ``max_rows`` row numbers 0..n-1, deduplicated (first occurrence kept)."""
        value = self.body.get(name)
        if value is None:
            raise BadRequest(f"field '{name}' is required (a list of row numbers)")
        if not isinstance(value, list) or not value:
            raise BadRequest(f"field '{name}' must be a non-empty list of row numbers")
        if len(value) > max_rows:
            raise BadRequest(f"field '{name}' holds {len(value):,} rows; the limit is {max_rows:,}", status=413)
        if set(map(type, value)) != {int}:  # one pass in C; bool is a type of its own here
            bad = next(v for v in value if not _is_int(v))
            raise BadRequest(f"field '{name}' must hold integers only, got {json.dumps(bad)[:20]}")
        try:
            rows = np.asarray(value, dtype=np.int64)
        except OverflowError:
            raise BadRequest(f"field '{name}' holds a row outside 0..{n - 1}") from None
        if rows.min() < 0 or rows.max() >= n:
            worst = int(rows.min()) if rows.min() < 0 else int(rows.max())
            raise BadRequest(f"field '{name}' holds row {worst}; rows are 0..{n - 1}")
        _, first = np.unique(rows, return_index=True)
        return rows[np.sort(first)]
