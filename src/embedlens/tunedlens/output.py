"""Writing a lens evaluation: ``lens_eval.csv``, ``lens_eval.json``, ``lens_eval.png``, ``lens_eval.html`` and
``manifest.json``, each written atomically."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from ..cache import ensure_writable_dir, write_json_atomic, write_text_atomic
from ..render.decoder_eval import write_eval_html, write_eval_png
from ..timing import Timings
from ..versions import versions
from .evaluation import DecoderEval


def eval_csv(ev: DecoderEval) -> str:
    buf = io.StringIO()
    rows = ev.rows()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def write_decoder_eval(ev: DecoderEval, out: str | Path, *, html: bool = True, png: bool = True) -> dict[str, Any]:
    """Write the evaluation's files into ``out``; returns the manifest."""

    folder = ensure_writable_dir(out)
    clock = Timings()
    write_text_atomic(folder / "lens_eval.csv", eval_csv(ev))
    write_json_atomic(folder / "lens_eval.json", ev.to_dict())
    files = ["lens_eval.csv", "lens_eval.json"]
    if png:
        write_eval_png(ev, folder / "lens_eval.png")
        files.append("lens_eval.png")
    if html:
        write_eval_html(ev, folder / "lens_eval.html")
        files.append("lens_eval.html")
    manifest = {"kind": "lens_eval", "model": ev.model, "decoders": ev.described, "corpus": ev.corpus,
                "skip": ev.skip, "n_tokens": ev.n_tokens, "settings": ev.settings, "seed": None,
                "seed_note": "no random step: evaluation is deterministic", "files": files + ["manifest.json"],
                "versions": versions(), "timings": {**ev.timings, "write_s": round(clock.since_start(), 4)}}
    write_json_atomic(folder / "manifest.json", manifest)
    return manifest
