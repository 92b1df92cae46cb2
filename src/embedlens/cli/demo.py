"""``embedlens demo``: the quick-start job — tokens, neighbours, variants and the vocabulary atlas."""

from __future__ import annotations

import click

from ..cache import ensure_writable_dir, write_json_atomic, write_text_atomic
from ..render.report import demo_report
from ..timing import Timings
from ..versions import versions
from .common import model_option, note
from .table import console, text

DEMO_TEXT = "The capital of France is Paris."
DEMO_WORDS = (" list", " king", " Paris", " happy")


@click.command()
@model_option
@click.option("--out", "out", default="embedlens-demo", show_default=True, type=click.Path(file_okay=False),
              help="Folder for the report (index.html, JSON, the map).")
@click.option("--map/--no-map", "with_map", default=True, show_default=True,
              help="Also draw the vocabulary atlas of the model over the demo corpus.")
@click.option("--corpus", default="lee", show_default=True, help="Corpus for the atlas (file, folder, lee, enwiki-sample).")
def demo(model: str, out: str, with_map: bool, corpus: str) -> None:
    """Tokens of a sentence, neighbours of a few words, variants of 'list', and the vocabulary map.

    Writes OUT/index.html (open it in any browser, offline), tokens.json, neighbors.json, manifest.json
    and, with --map, OUT/map/ (map.html, map.png, points.parquet, manifest.json).
    """
    from pathlib import Path

    from ..lens import load  # lazy: imports numpy; --help stays light

    clock = Timings()
    folder = ensure_writable_dir(out)
    lens = load(model)
    tokens = lens.tokens(DEMO_TEXT)
    neighbors = [lens.nearest(w, 10) for w in DEMO_WORDS]
    variants = lens.variants("list")
    manifest = {"command": "demo", "model": lens.manifest(), "text": DEMO_TEXT, "words": list(DEMO_WORDS), "k": 10,
                "versions": versions()}

    map_link = map_summary = None
    if with_map:
        from ..atlas import write_atlas  # lazy: imports numpy; --help stays light
        from ..reduce.options import ReduceOptions  # lazy: imports numpy; --help stays light

        atlas = write_atlas(lens, folder / "map", corpus=corpus, reduce=ReduceOptions("pca", 2, seed=0))
        map_link = "map/map.html"
        map_summary = atlas.summary()
        manifest["map"] = {"folder": "map", "corpus": corpus, "method": "pca", "dims": 2, "seed": 0, "summary": map_summary}
    manifest["seconds"] = round(clock.since_start(), 3)

    write_json_atomic(folder / "tokens.json", tokens.to_dict())
    write_json_atomic(folder / "neighbors.json", [r.to_dict() for r in neighbors] + [variants.to_dict()])
    write_json_atomic(folder / "manifest.json", manifest)
    title = f"embedlens · {lens.name}"
    write_text_atomic(folder / "index.html", demo_report(title=title, manifest=manifest, tokens=tokens, neighbors=neighbors,
                                                         variants=variants, map_link=map_link, map_summary=map_summary))
    from rich.table import Table

    t = Table(title=f"nearest tokens · {lens.name}", title_justify="left")
    for r in neighbors:
        t.add_column(text(repr(r.query)))
    for i in range(5):
        t.add_row(*[text(f"{r.neighbors[i].display} {r.neighbors[i].score:.2f}") for r in neighbors])
    console().print(t)
    if map_summary:
        note(map_summary)
    click.echo(f"Report: {Path(folder, 'index.html').resolve()}")
    if map_link:
        click.echo(f"Map:    {Path(folder, map_link).resolve()}")
