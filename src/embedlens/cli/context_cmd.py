"""``embedlens context``: hidden states of texts, or of a word across a corpus, mapped per layer and model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..errors import EmbedlensError
from ..models.specs import DEFAULT_MODEL
from .common import emit_json, json_option, note, parse_perplexities
from .device_options import device_options, max_memory_option
from .engine_options import check_engine_options, engine_options


@click.command()
@click.argument("texts", nargs=-1, metavar="[TEXT]...")
@click.option("--model", "-m", "models", multiple=True, default=(DEFAULT_MODEL,), show_default=True,
              help="Model (alias, folder, .gguf or cached hub name); repeat to compare models side by side.")
@click.option("--layer", "layer", default="-1", show_default=True,
              help="Hidden states to map: -1 (last), all (embeddings output + every block), or 0,6,12.")
@click.option("--method", type=click.Choice(["tsne", "pca", "umap"]), default="tsne", show_default=True)
@click.option("--dims", type=click.Choice(["2", "3"]), default="2", show_default=True, help="2D or 3D map.")
@click.option("--perplexity", default=None, metavar="P[,P...]",
              help="t-SNE perplexity (default 30, or 10 from 100,001 points; at most (n-1)/3, and the map says so). Several (5,30,100): one map per "
                   "value from the same seed and one k-NN graph, side by side in sweep.html and sweep.png.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of the first run (run r uses seed+r).")
@click.option("--runs", type=int, default=1, show_default=True,
              help="Fit R maps with seeds seed..seed+R-1 and report their stability (5-NN agreement).")
@click.option("--focus", default=None, help="Highlight every position of WORD across the texts; with --corpus, the word to map.")
@click.option("--corpus", default=None,
              help="Map every occurrence of --focus WORD in this corpus (text file, .jsonl / .parquet file, folder, "
                   "hf:NAME[:CONFIG][:SPLIT], lee, enwiki-sample).")
@engine_options
@click.option("--max-occurrences", type=int, default=1000, show_default=True,
              help="Keep at most this many occurrences (a sample seeded by --seed when there are more).")
@click.option("--window", type=int, default=100, show_default=True, help="Characters of context each side of an occurrence.")
@click.option("--case-sensitive", is_flag=True, help="Match --focus WORD with its exact case.")
@click.option("--keep-special", is_flag=True, help="Keep special tokens (BOS, CLS, SEP) in the map.")
@click.option("--lens", "decoder", default="logit", show_default=True, metavar="logit|tuned|PATH",
              help="The hovers' top next tokens per layer: logit lens, the model's tuned lens, or a lens folder.")
@device_options
@max_memory_option
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Sequences per forward pass (default 16 texts, 64 windows).")
@click.option("--out", "out", default="embedlens-context", show_default=True, type=click.Path(file_okay=False),
              help="Output folder: context.html, context.png, points.parquet, states.safetensors, manifest.json.")
@click.option("--no-html", is_flag=True, help="Skip context.html.")
@click.option("--no-png", is_flag=True, help="Skip context.png.")
@json_option
def context(texts: tuple[str, ...], models: tuple[str, ...], layer: str, method: str, dims: str,
            perplexity: str | None, seed: int, runs: int, focus: str | None, corpus: str | None,
            text_column: str, engine: str, ray_address: str | None, workers: int | None, max_occurrences: int, window: int, case_sensitive: bool, keep_special: bool, device: str, dtype: str, max_memory: str | None, batch_size: int | None,
            out: str, no_html: bool, no_png: bool, as_json: bool, decoder: str) -> None:
    """Map the hidden states of every token of TEXT... (or of every occurrence of --focus WORD in --corpus).

    Colours are texts, labels are readable tokens; --layer all fits one projection shared by every layer
    and draws each token's path through the layers; several --model values are aligned by Procrustes.
    """
    # lazy: the library (numpy, torch) is imported when the command runs, so that `context --help` stays instant
    from ..cache import ensure_writable_dir
    from ..contextual.mapping import context_map
    from ..contextual.output import write_context
    from ..corpus.reading import open_corpus
    from ..engines import open_engine
    from ..models.runtime import using

    if not texts and corpus is None:
        raise EmbedlensError("give one or more TEXT arguments, or --corpus PATH --focus WORD")
    check_engine_options(reads_corpus=corpus is not None, engine=engine)
    reduce, sweep = _reduce_options(method, int(dims), seed, perplexity, runs=runs, n_models=len(models))
    if engine == "ray":
        ensure_writable_dir(out)  # the workers write the states' Parquet shards under it
    opened = open_corpus(corpus, text_column=text_column) if corpus is not None else None
    eng = open_engine(engine, address=ray_address, workers=workers)
    with using(device, dtype, max_memory):  # every model this command loads runs there, in that precision
        cmap = context_map(list(models), list(texts) or None, corpus=opened, focus=focus, layers=layer, reduce=reduce,
                           runs=runs, perplexities=sweep, keep_special=keep_special,
                           max_occurrences=max_occurrences, window=window, ignore_case=not case_sensitive,
                           batch_size=batch_size, engine=eng, states_dir=Path(out) / "states" if engine == "ray" else None,
                           decoder=decoder)
    manifest = write_context(cmap, out, html=not no_html, png=not no_png)
    _print_context(cmap, manifest, out, as_json)
    if cmap.alignment_problem:
        raise EmbedlensError(f"cannot align the models by Procrustes: {cmap.alignment_problem}; "
                             f"unaligned panels were drawn in {out}")


def _reduce_options(method: str, dims: int, seed: int, perplexity: str | None, *, runs: int, n_models: int,
                    ) -> tuple[Any, list[float] | None]:
    """The one place the map's flags become its options (checked here, before any model is loaded):
    ``(ReduceOptions, the perplexities of a t-SNE sweep or None)``."""
    # lazy: the library (numpy and up) is imported when the command runs, so that `context --help` stays instant
    from ..reduce.options import ReduceOptions

    perplexities = parse_perplexities(perplexity)
    if perplexities and len(perplexities) > 1 and (method != "tsne" or runs != 1 or n_models != 1):
        raise EmbedlensError("several --perplexity values make a t-SNE sweep of one model: use --method tsne, "
                             "one --model and --runs 1")
    sweep = perplexities is not None and len(perplexities) > 1
    reduce = ReduceOptions(method, dims, seed=seed, perplexity=perplexities[0] if perplexities and not sweep
                           else None)
    return reduce, perplexities if sweep else None


def _print_context(cmap: Any, manifest: dict[str, Any], out: str, as_json: bool) -> None:
    """The map's notes, then its JSON, or per model its points and layers and where the pages are."""
    for n in cmap.notes:
        note(n)
    if as_json:
        emit_json({k: manifest[k] for k in ("kind", "method", "dims", "seed", "runs", "models", "notes", "outputs")})
        return
    for p in cmap.panels:
        stab = p.projection.stability
        extra = f", stability {stab:.3f} over {p.projection.runs} runs" if stab is not None else ""
        click.echo(f"{p.alias}: {p.n_points} points, layers {','.join(map(str, p.layers))}{extra}")
    if cmap.sweep is not None:
        for m in cmap.sweep.maps:
            click.echo(f"perplexity {m.perplexity:g}: {m.quality_text()}")
        click.echo(f"Maps: {Path(out, 'sweep.html').resolve()}")
    click.echo(f"Map: {Path(out, 'context.html').resolve()}")
