"""``tokens``, ``neighbors`` and ``variants``."""

from __future__ import annotations

import click

from ..cache import atomic_path
from .common import emit_json, json_option, model_option, note, open_lens, print_neighbors, space_options
from .table import console, text


@click.command()
@click.argument("text_arg", metavar="TEXT")
@model_option
@json_option
@click.option("--save", "save", type=click.Path(dir_okay=False), default=None,
              help="Also save the tokens' input-embedding vectors as FILE.npy (n_tokens, d_model).")
def tokens(text_arg: str, model: str, as_json: bool, save: str | None) -> None:
    """Tokenize TEXT with the model's own tokenizer: position, id, readable token, embedding head/tail."""
    from ..lens import load  # lazy: imports numpy; --help stays light

    lens = load(model)
    table = lens.tokens(text_arg)
    if save:
        import numpy as np

        target = save if save.endswith(".npy") else save + ".npy"
        with atomic_path(target) as tmp, open(tmp, "wb") as fh:
            np.save(fh, table.vectors, allow_pickle=False)
        note(f"saved {table.vectors.shape[0]} x {table.vectors.shape[1]} vectors to {target}")
    if as_json:
        emit_json(table.to_dict())
        return
    from rich.table import Table

    t = Table(title=f"{len(table.rows)} tokens · {lens.name}", title_justify="left")
    for col in ("pos", "id", "token", "first 3 values", "last 3 values"):
        t.add_column(col, justify="right" if col in ("pos", "id") else "left")
    for r in table.rows:
        t.add_row(str(r.position), str(r.id), text(r.display),
                  " ".join(f"{v:+.4f}" for v in r.head), " ".join(f"{v:+.4f}" for v in r.tail))
    console().print(t)


@click.command()
@click.argument("query")
@model_option
@space_options
@click.option("--k", "-k", "k", type=int, default=20, show_default=True, help="How many neighbours.")
@json_option
def neighbors(query: str, model: str, space: str, labels: str | None, k: int, as_json: bool) -> None:
    """Cosine top-k nearest tokens of QUERY over the whole vocabulary.

    QUERY is a word (tokenized as the model sees it; several tokens use their mean vector), an exact
    token id (id:1234) or an exact raw token (tok:Ġlist). The query's own token is excluded.
    """
    view = open_lens(model, space, labels)
    result = view.nearest(query, k)
    if as_json:
        emit_json(result.to_dict())
        return
    note(result.note)
    ids = ", ".join(map(str, result.query_ids))
    print_neighbors(result, f"nearest to {query!r} (ids {ids}) · {result.space}")


@click.command()
@click.argument("word")
@model_option
@space_options
@json_option
def variants(word: str, model: str, space: str, labels: str | None, as_json: bool) -> None:
    """Tokens that are variants of WORD (case, leading space/underscore, inflections), ranked by cosine."""
    view = open_lens(model, space, labels)
    result = view.variants(word)
    if as_json:
        emit_json(result.to_dict())
        return
    note(result.note)
    print_neighbors(result, f"variants of {word!r} · {result.space}")
