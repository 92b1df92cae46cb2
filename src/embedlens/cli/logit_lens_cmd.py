"""``embedlens logit-lens``: each layer's residual stream decoded by the model's own head."""

from __future__ import annotations

import click

from ..errors import EmbedlensError
from ..models.specs import DEFAULT_MODEL
from .common import emit_json, json_option, note
from .device_options import device_options, max_memory_option
from .table import console, text


@click.command("logit-lens")
@click.argument("prompt", required=False, metavar="[TEXT]")
@click.option("--model", "-m", "models", multiple=True, default=(DEFAULT_MODEL,), show_default=True,
              help="Model (alias, folder, .gguf or cached hub name); repeat to compare two models side by side.")
@click.option("--layers", default="all", show_default=True,
              help="Layers to decode: all (0 = embeddings .. n_layers = the model's output), 0,5,10, or -1 (last).")
@click.option("--top-k", "top_k", type=int, default=5, show_default=True, help="Next tokens kept per layer and position.")
@click.option("--positions", default="all", show_default=True,
              help="Token positions to decode: all, last, or 0,3,-1 (negatives from the end).")
@click.option("--color", "color", type=click.Choice(["prob", "rank"]), default="prob", show_default=True,
              help="Cell colour: the top-1 probability, or the log rank of the text's actual next token.")
@click.option("--text-file", type=click.Path(dir_okay=False), default=None,
              help="Many prompts, one per line: write the mean rank of the next token per layer (PNG + CSV); "
                   "every position counts, so --top-k, --positions and --color do not apply.")
@click.option("--max-tokens", type=int, default=None,
              help="Truncate each text to this many tokens (with a note) instead of refusing a long one.")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True,
              help="With --text-file: at most this many prompts (and about 4,096 tokens) per forward pass.")
@click.option("--lens", "decoder", default="logit", show_default=True, metavar="logit|tuned|PATH",
              help="How each layer is read: logit (as it is), tuned (the tuned lens trained for the model with "
                   "`embedlens lens train`), or a tuned lens folder (embedlens' or the tuned-lens package's).")
@click.option("--site", type=click.Choice(["resid", "mid"]), default="resid", show_default=True,
              help="Where to read: resid (between blocks) or mid (inside each block, after attention and before "
                   "the MLP; layer l = block l; logit lens only).")
@device_options
@max_memory_option
@click.option("--out", "out", default="embedlens-logit-lens", show_default=True, type=click.Path(file_okay=False),
              help="Output folder: logit_lens.html/.png/.json (or logit_lens_ranks.csv/.png/.json) and manifest.json.")
@click.option("--no-html", is_flag=True, help="Skip logit_lens.html.")
@click.option("--no-png", is_flag=True, help="Skip the PNG.")
@json_option
def logit_lens(prompt: str | None, models: tuple[str, ...], layers: str, top_k: int, positions: str, color: str,
               text_file: str | None, max_tokens: int | None, batch_size: int, decoder: str, site: str, device: str,
               dtype: str, max_memory: str | None, out: str, no_html: bool, no_png: bool, as_json: bool) -> None:
    """The logit lens of TEXT: the residual stream after every block (0 = the input embeddings), decoded by the
    model's final norm and unembedding, so the last layer is the model's own next-token prediction.

    Writes a heatmap (rows = layers, columns = the text's tokens, each cell its top-1 token; hover for the
    top-k) as HTML and PNG, the numbers as JSON, and manifest.json. --json prints tokens, display, layers,
    top_ids, top_probs and target_rank (the rank of the text's actual next token; null at the last position).
    """
    if (prompt is None) == (text_file is None):
        raise EmbedlensError("give a TEXT argument or --text-file FILE (one prompt per line), not both" if prompt
                             else "give a TEXT argument, or --text-file FILE with one prompt per line")
    if len(models) > 2:
        raise EmbedlensError(f"--model was given {len(models)} times: compare at most two models")
    from ..models.runtime import using  # lazy: imports numpy/torch; --help stays light

    if text_file is not None:
        if site != "resid":
            raise EmbedlensError("--site mid applies to a TEXT, not to --text-file rank curves")
        with using(max_memory=max_memory):  # the models load within that budget, offloading what does not fit
            _curves(models, text_file, layers, max_tokens, batch_size, decoder, device, dtype, out, not no_png,
                    as_json)
        return
    from ..logitlens import compare, write_logit_lens  # lazy: imports numpy/torch; --help stays light

    with using(max_memory=max_memory):
        results = compare(list(models), prompt, layers=layers, top_k=top_k, positions=positions,
                          max_tokens=max_tokens, device=device, dtype=dtype, decoder=decoder, site=site)
    manifest = write_logit_lens(results, out, color=color, html=not no_html, png=not no_png)
    for n in manifest["notes"]:
        note(n)
    if as_json:
        emit_json(results[0].schema() if len(results) == 1 else
                  {"models": [{"model": r.name, **r.schema()} for r in results]})
        return
    for r in results:
        _table(r)
    from pathlib import Path

    click.echo(f"Written to {Path(out).resolve()}: {', '.join(manifest['files'])}")


def _table(r) -> None:
    """The last decoded position through the layers: top tokens and the next token's rank."""
    from rich.table import Table

    j = len(r.positions) - 1
    pos = int(r.positions[j])
    nxt = r.display[pos + 1] if pos + 1 < len(r.display) else None
    t = Table(title=text(f"{r.name}: position {pos} ({r.display[pos]})" + (f", next token {nxt}" if nxt else "")),
              title_justify="left")
    t.add_column("layer", justify="right")
    for i in range(min(r.k, 5)):
        t.add_column(f"#{i + 1}")
    if nxt is not None:
        t.add_column("rank of next", justify="right")
    for li, layer in enumerate(r.layers):
        cells = [text(f"{r.top_display[li, j, i]} {r.top_probs[li, j, i]:.3f}") for i in range(min(r.k, 5))]
        if nxt is not None:
            cells.append(str(int(r.target_rank[li, j])))
        t.add_row(str(layer), *cells)
    console().print(t)


def _curves(models, text_file, layers, max_tokens, batch_size, decoder, device, dtype, out, png, as_json) -> None:
    import sys

    from ..logitlens import (  # lazy: imports numpy/torch; --help stays light
        rank_curves,
        read_text_file,
        write_rank_curves,
    )

    curves = rank_curves(list(models), read_text_file(text_file), layers=layers, max_tokens=max_tokens,
                         batch_size=batch_size, device=device, dtype=dtype, progress=sys.stderr.isatty(),
                         decoder=decoder)
    manifest = write_rank_curves(curves, out, png=png)
    for n in manifest["notes"]:
        note(n)
    if as_json:
        emit_json({"models": [{k: v for k, v in c.to_dict().items() if k != "prompt_mean_rank"} for c in curves]})
        return
    from rich.table import Table

    for c in curves:
        t = Table(title=text(f"{c.name}: rank of the next token over {c.n_prompts} prompts, {c.n_positions} positions"),
                  title_justify="left")
        for col in ("layer", "mean rank", "median rank", "top-1"):
            t.add_column(col, justify="right")
        for row in c.rows():
            t.add_row(str(row["layer"]), f"{row['mean_rank']:.1f}", f"{row['median_rank']:.0f}", f"{row['top1']:.3f}")
        console().print(t)
    from pathlib import Path

    click.echo(f"Written to {Path(out).resolve()}: {', '.join(manifest['files'])}")
