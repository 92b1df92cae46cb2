"""``embedlens map``: the vocabulary atlas."""

from __future__ import annotations

from typing import Any

import click

from ..errors import EmbedlensError
from ..method_names import MAP_METHODS
from .common import emit_json, json_option, model_option, note, open_lens, parse_perplexities, space_options
from .engine_options import check_engine_options, engine_options


def _option_group(*added):
    """One decorator adding the click options ``added`` in the order given (the order ``--help`` lists them)."""
    def add(f):
        for option in reversed(added):
            f = option(f)
        return f
    return add


reduce_flags = _option_group(  # what becomes the map's ReduceOptions
    click.option("--method", type=click.Choice(MAP_METHODS, case_sensitive=False), default="pca", show_default=True,
                 help="Reduction: exact PCA, t-SNE (openTSNE), UMAP, or word axes (with --x-axis)."),
    click.option("--dims", "n_components", type=int, default=2, show_default=True, help="Map dimensions: 2 or 3."),
    click.option("--metric", type=click.Choice(("cosine", "euclidean")), default="cosine", show_default=True,
                 help="Distance in the embedding space (for the reduction and the quality figures)."),
    click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
                 help="Seed for every random step."),
    click.option("--perplexity", default=None, metavar="P[,P...]",
                 help="t-SNE perplexity (default 30, or 10 from 100,001 points; clamped for few points). Several (5,30,100): one map per "
                      "value from the same seed and one k-NN graph, side by side in sweep.html and sweep.png."),
    click.option("--n-neighbors", type=int, default=15, show_default=True, help="UMAP neighbourhood size."),
    click.option("--min-dist", type=float, default=0.1, show_default=True, help="UMAP minimum distance."),
    click.option("--pre-pca", "pre_pca", type=int, default=None, metavar="N",
                 help="t-SNE/UMAP: find the k-NN graph after an exact PCA to N dims (faster, loses true neighbours; "
                      "a note says how many). Default: the graph of the full space."),
    click.option("--pca", "pca_solver", type=click.Choice(("auto", "exact", "randomized")), default="auto",
                 show_default=True,
                 help="PCA route: exact (float64 covariance), randomized (subspace iteration, its accuracy bound in "
                      "the manifest) or auto (randomized only for very large matrices, e.g. an 8B model's "
                      "vocabulary)."),
)

axis_flags = _option_group(  # the word axes of --method axes
    click.option("--x-axis", nargs=2, default=None, metavar="A B",
                 help="With --method axes: tokens at x = 0 and x = 1; x = (u - a)·(b - a) / |b - a|^2 "
                      "(word, id:N or tok:RAW)."),
    click.option("--y-axis", nargs=2, default=None, metavar="C D",
                 help="With --method axes: the y axis (default: the first principal direction left after x)."),
    click.option("--z-axis", nargs=2, default=None, metavar="E F", help="With --method axes: a z axis (a 3-D map)."),
)

output_flags = _option_group(  # how the map is drawn and where it is written
    click.option("--size-by-frequency", is_flag=True, help="Draw frequent tokens bigger."),
    click.option("--renderer", type=click.Choice(("auto", "plotly", "webgl")), default="auto", show_default=True,
                 help="What draws map.html: embedlens's WebGL map (labels by zoom level, contours, lasso; fast at "
                      "262k points) or Plotly; auto picks webgl."),
    click.option("--no-png", is_flag=True, help="Skip map.png (saves a second or two on large maps)."),
    click.option("--out", "out", type=click.Path(file_okay=False), default="embedlens-map", show_default=True,
                 help="Output folder (map.html, map.png, points.parquet, manifest.json)."),
)


@click.command("map")
@click.argument("more_corpora", metavar="[PATH_OR_NAME]...", nargs=-1)
@model_option
@space_options
@click.option("--all", "all_tokens", is_flag=True,
              help="Map every token of the vocabulary (special tokens included, no sampling).")
@click.option("--corpus", "corpus", multiple=True, metavar="PATH_OR_NAME",
              help="Map the tokens used in text files (one document per line), .jsonl / .jsonl.gz / .parquet files, "
                   "folders of them (recursive), hf:NAME[:CONFIG][:SPLIT] datasets or packaged corpora "
                   "(lee, enwiki-sample); more paths may follow. Default without --all: lee.")
@engine_options
@click.option("--min-count", type=int, default=1, show_default=True,
              help="With --corpus: keep tokens seen at least this many times.")
@reduce_flags
@click.option("--color", type=click.Choice(("frequency", "length", "script", "pos", "faithfulness", "none")),
              default="frequency", show_default=True,
              help="Colour points by corpus frequency (log scale), token length, writing system "
              "(Latin, Cyrillic, Greek, CJK, Arabic, other letters, digits, punctuation, whitespace, bytes, special), "
              "part of speech (whole words tagged alone by spaCy: NOUN, VERB, ADJ...; fragment, num, punct, byte, "
              "special for the rest; needs pip install 'embedlens[pos]'), "
              "faithfulness (each token's local recall@10: the share of its 10 nearest neighbours in the space "
              "that are among its 10 nearest on the map, 0 to 1), or not at all.")
@click.option("--clusters", default=None, metavar="auto|none|N",
              help="Label clusters found on the k-NN graph of the full space (Leiden): auto, none or a number. "
                   "Default: auto for t-SNE and UMAP, none otherwise.")
@axis_flags
@output_flags
@json_option
def map_command(more_corpora: tuple[str, ...], model: str, space: str, labels: str | None, all_tokens: bool,
                corpus: tuple[str, ...], text_column: str, engine: str,
                ray_address: str | None, workers: int | None, min_count: int, method: str, n_components: int, metric: str,
                seed: int,
                perplexity: str | None, n_neighbors: int, min_dist: float, pre_pca: int | None, pca_solver: str,
                color: str, size_by_frequency: bool,
                renderer: str, no_png: bool, out: str, as_json: bool, clusters: str | None = None,
                x_axis: tuple[str, str] | None = None, y_axis: tuple[str, str] | None = None,
                z_axis: tuple[str, str] | None = None) -> None:
    """Map where the model puts its tokens: an offline interactive HTML, a PNG, the points and a manifest.

    \b
    embedlens map                                   # tokens of the demo corpus (lee), PCA 2D
    embedlens map --all --method pca --dims 3       # the whole vocabulary in 3D
    embedlens map --corpus notes/ book.txt --min-count 5 --method umap
    embedlens map --space glove-50d --corpus lee --method tsne
    embedlens map --all --method umap --clusters 30 --color script
    embedlens map --method axes --x-axis man woman --y-axis cold hot

    Every map says how faithful it is: trustworthiness and neighbour recall@10 (the share of each
    token's 10 nearest neighbours in the model that stay among its 10 nearest on the map).
    """
    # lazy: the library (numpy and up) is imported when the command runs, so that `map --help` stays instant
    from ..atlas.pipeline import DEFAULT_CORPUS, check_options, write_atlas
    from ..cache import ensure_writable_dir
    from ..corpus.reading import open_corpus
    from ..engines import open_engine
    from ..timing import Timings

    clock = Timings()  # the manifest's total time counts from here, the model load included
    if more_corpora and not corpus:
        raise EmbedlensError(f"unexpected argument '{more_corpora[0]}' (corpus paths go after --corpus)")
    corpora = [*corpus, *more_corpora]
    reads_corpus = bool(corpora) or not all_tokens
    check_engine_options(reads_corpus=reads_corpus, engine=engine)
    reduce, sweep = _reduce_options(method, n_components, metric, seed, perplexity, n_neighbors, min_dist, pre_pca,
                                    pca_solver, x_axis, y_axis, z_axis)
    check_options(reduce, color=color, min_count=min_count, clusters=clusters)
    ensure_writable_dir(out)  # fail before any work
    # a missing corpus or text column, or a missing Ray, is refused before the model is read
    opened = open_corpus(corpora or DEFAULT_CORPUS, text_column=text_column) if reads_corpus else None
    eng = open_engine(engine, address=ray_address, workers=workers)
    options = {"corpus": opened, "engine": eng, "min_count": min_count, "all_tokens": all_tokens, "reduce": reduce,
               "color": color, "size_by_frequency": size_by_frequency, "clusters": clusters}
    if sweep:
        return _sweep(sweep, model=model, space=space, labels=labels, png=not no_png, out=out, as_json=as_json,
                      **options)
    view = open_lens(model, space, labels)
    result = write_atlas(view, out, png=not no_png, started=clock.started, timings={"open": clock.since_start()},
                         renderer=renderer, **options)
    _print_map(result, as_json)


def _reduce_options(method: str, n_components: int, metric: str, seed: int, perplexity: str | None,
                    n_neighbors: int, min_dist: float, pre_pca: int | None, pca_solver: str,
                    x_axis: tuple[str, str] | None, y_axis: tuple[str, str] | None,
                    z_axis: tuple[str, str] | None) -> tuple[Any, list[float] | None]:
    """The one place the reducer's flags become its options (checked here, before any work): ``(ReduceOptions,
    the perplexities of a t-SNE sweep or None)``."""
    # lazy: the library (numpy and up) is imported when the command runs, so that `map --help` stays instant
    from ..reduce.options import ReduceOptions

    method = method.lower()
    if method != "axes" and any((x_axis, y_axis, z_axis)):
        raise EmbedlensError("--x-axis, --y-axis and --z-axis need --method axes")
    if method == "axes" and not x_axis:
        raise EmbedlensError("--method axes needs --x-axis A B (the tokens at x = 0 and x = 1)")
    perplexities = parse_perplexities(perplexity)
    sweep = perplexities is not None and len(perplexities) > 1
    if sweep and method != "tsne":
        raise EmbedlensError("several --perplexity values make a t-SNE sweep: add --method tsne")
    reduce = ReduceOptions(method, n_components, metric, seed, perplexity=perplexities[0] if perplexities and not sweep
                           else None, n_neighbors=n_neighbors, min_dist=min_dist, pre_pca=pre_pca, pca_solver=pca_solver,
                           x_axis=x_axis or None, y_axis=y_axis or None, z_axis=z_axis or None)
    return reduce, perplexities if sweep else None


def _print_map(result: Any, as_json: bool) -> None:
    """The written map: its JSON, or its notes, file, quality and clusters for a reader."""
    if as_json:
        emit_json({**result.to_dict(), "files": {k: str(v) for k, v in result.files.items()}})
        return
    for message in result.notes:
        note(message)
    click.echo(f"map: {result.files['map.html']}  ({result.n_points:,} tokens, {result.method} {result.dims}D)")
    click.echo(f"quality: {result.quality_line()}")
    for line in result.cluster_lines(limit=8):
        click.echo(line)
    click.echo(f"also: {', '.join(str(p) for name, p in result.files.items() if name != 'map.html')}")


def _sweep(perplexities: list[float], *, model: str, space: str, labels: str | None, png: bool, out: str,
           as_json: bool, **options) -> None:
    """``map --method tsne --perplexity 5,30,100``: one map per perplexity, side by side."""
    from ..atlas.sweep import check_sweep_options, write_perplexity_sweep  # lazy: `map --help` stays instant

    check_sweep_options(perplexities, options)
    view = open_lens(model, space, labels)
    sweep = write_perplexity_sweep(view, perplexities, out, png=png, **options)
    if as_json:
        emit_json({**sweep.to_dict(), "files": {k: str(v) for k, v in sweep.files.items()}})
        return
    for m in sweep.maps:
        for message in m.notes:
            note(message)
    click.echo(f"maps: {sweep.files['sweep.html']}  ({sweep.maps[0].n_points:,} tokens, t-SNE "
               f"{sweep.maps[0].dims}D at perplexity {', '.join(f'{p:g}' for p in sweep.perplexities)})")
    for head, line in sweep.panel_titles():
        click.echo(f"{head}: {line}")
    click.echo(f"also: {', '.join(str(p) for name, p in sweep.files.items() if name != 'sweep.html')}")
