"""Writing logit-lens results: the files of an output folder, each written atomically, and its manifest."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..cache import ensure_writable_dir, write_json_atomic, write_text_atomic
from ..render.logit_lens import check_color, write_curve_png, write_logit_lens_html, write_logit_lens_png
from ..timing import Timings
from ..versions import versions
from .result import LogitLensResult, RankCurve


def _manifest(kind: str, models: list[dict[str, Any]], settings: dict[str, Any], files: list[str],
              timings: dict[str, Any], notes: list[str]) -> dict[str, Any]:

    return {"kind": kind, "models": models, "settings": settings, "seed": None,
            "seed_note": "no random step: the logit lens is deterministic", "files": files, "notes": notes,
            "versions": versions(), "timings": timings}


def write_logit_lens(results: Sequence[LogitLensResult], out: str | Path, *, color: str = "prob", html: bool = True,
                     png: bool = True) -> dict[str, Any]:
    """Write ``logit_lens.html``, ``logit_lens.png``, ``logit_lens.json`` and ``manifest.json`` into ``out``.

    One result: ``logit_lens.json`` is :meth:`LogitLensResult.to_dict`; several (a comparison): ``{"models": [...]}``.
    Returns the manifest.
    """

    color = check_color(color)
    folder = ensure_writable_dir(out)
    clock = Timings()
    files = []
    if html:
        write_logit_lens_html(results, folder / "logit_lens.html", color=color)
        files.append("logit_lens.html")
    if png:
        write_logit_lens_png(results, folder / "logit_lens.png", color=color)
        files.append("logit_lens.png")
    data = results[0].to_dict() if len(results) == 1 else {"models": [r.to_dict() for r in results]}
    write_json_atomic(folder / "logit_lens.json", data)
    files.append("logit_lens.json")
    first = results[0]
    settings = {**{k: v for k, v in first.settings.items() if k != "semantics"}, "text": first.text,
                "layers": list(first.layers), "positions": first.positions.tolist(), "color": color,
                "semantics": first.settings.get("semantics")}
    models = [{**r.model, "n_layers": r.n_layers, "layers": list(r.layers), "n_tokens": len(r.token_ids)} for r in results]
    timings = {"per_model": {r.name: r.timings for r in results}, "write_s": round(clock.since_start(), 4)}
    manifest = _manifest("logit_lens", models, settings, files + ["manifest.json"], timings,
                         [n for r in results for n in r.notes])
    write_json_atomic(folder / "manifest.json", manifest)
    return manifest


def curves_csv(curves: Sequence[RankCurve]) -> str:
    buf = io.StringIO()
    rows = [row for c in curves for row in c.rows()]
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def write_rank_curves(curves: Sequence[RankCurve], out: str | Path, *, png: bool = True) -> dict[str, Any]:
    """Write ``logit_lens_ranks.csv`` (one row per model and layer), ``logit_lens_ranks.png``,
    ``logit_lens_ranks.json`` and ``manifest.json`` into ``out``; returns the manifest."""

    folder = ensure_writable_dir(out)
    clock = Timings()
    files = []
    write_text_atomic(folder / "logit_lens_ranks.csv", curves_csv(curves))
    files.append("logit_lens_ranks.csv")
    if png:
        write_curve_png(curves, folder / "logit_lens_ranks.png")
        files.append("logit_lens_ranks.png")
    write_json_atomic(folder / "logit_lens_ranks.json", {"models": [c.to_dict() for c in curves]})
    files.append("logit_lens_ranks.json")
    first = curves[0]
    models = [{**c.model, "n_layers": c.n_layers, "layers": list(c.layers), "n_prompts": c.n_prompts,
               "n_positions": c.n_positions} for c in curves]
    timings = {"per_model": {c.name: c.timings for c in curves}, "write_s": round(clock.since_start(), 4)}
    manifest = _manifest("logit_lens_ranks", models, dict(first.settings), files + ["manifest.json"], timings,
                         [n for c in curves for n in c.notes])
    write_json_atomic(folder / "manifest.json", manifest)
    return manifest
