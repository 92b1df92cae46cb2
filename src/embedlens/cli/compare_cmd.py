"""``embedlens compare A B``: two spaces side by side."""

from __future__ import annotations

from pathlib import Path

import click

from .common import emit_json, json_option, note
from .table import console, text


@click.command("compare")
@click.argument("space_a", metavar="A")
@click.argument("space_b", metavar="B")
@click.option("--k", "-k", "k", type=int, default=10, show_default=True,
              help="Nearest tokens (among the shared ones) compared per token.")
@click.option("--pairs", type=click.Path(dir_okay=False), default=None,
              help="Pair tokens from this file (TOKEN_A<TAB>TOKEN_B per line; id:N, raw or readable tokens) "
                   "instead of by vocabulary or readable string.")
@click.option("--labels-a", "labels_a", type=click.Path(dir_okay=False), default=None, help="Labels file of a matrix A.")
@click.option("--labels-b", "labels_b", type=click.Path(dir_okay=False), default=None, help="Labels file of a matrix B.")
@click.option("--corpus", default=None, metavar="PATH_OR_NAME",
              help="Count A's tokens in this corpus (file, folder, lee, enwiki-sample) for --min-count.")
@click.option("--min-count", "min_count", type=int, default=1, show_default=True,
              help="With --corpus: only tokens seen this often enter the most changed / stable lists.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of the permutation control.")
@click.option("--control-runs", "control_runs", type=int, default=5, show_default=True,
              help="Random permutations of the pairs in the control.")
@click.option("--acc-rows", "acc_rows", type=int, default=20_000, show_default=True,
              help="Translation accuracy on every shared token up to this many, else on a seeded sample of this "
                   "many (0: every token, however many).")
@click.option("--no-html", is_flag=True, help="Skip compare.html (and the two maps it draws).")
@click.option("--out", "out", type=click.Path(file_okay=False), default=None,
              help="Folder for compare.html, tokens.parquet and manifest.json [default: embedlens-compare; with "
                   "--json nothing is written unless --out is given].")
@json_option
def compare_command(space_a: str, space_b: str, k: int, pairs: str | None, labels_a: str | None, labels_b: str | None,
                    corpus: str | None, min_count: int, seed: int, control_runs: int, acc_rows: int, no_html: bool,
                    out: str | None, as_json: bool) -> None:
    """Compare two embedding spaces on their shared tokens: how alike, with controls, and which tokens changed.

    \b
    embedlens compare smollm2-135m gemma3-270m            # two models, tokens matched by readable string
    embedlens compare smollm2-135m smollm2-135m:output    # a model's input against its unembedding
    embedlens compare smollm2-135m glove-50d --corpus lee --min-count 5
    embedlens compare vectors.npy glove-50d --labels-a words.txt

    A and B are each a model (alias, folder, .gguf: its input space), MODEL:output (its unembedding),
    glove-50d, tfidf:DIR, word2vec:DIR, path:DIR or FILE.npy (with --labels-a/--labels-b). Same vocabulary: row i is row i; otherwise tokens are matched by
    readable string (Ġ and ▁ both mean a leading space), one to one. Figures: linear CKA, k-NN overlap,
    orthogonal Procrustes residual and translation accuracy@1/@10, each beside the same figure with the
    pairs shuffled (seeded permutations: mean ± std), so real agreement stands apart from chance.
    """
    # lazy: the library (numpy and up) is imported when the command runs, so that `compare --help` stays instant
    from ..comparison.pipeline import CONTROL_SAMPLE, check_labels, check_options, compare, write_comparison
    from ..corpus.reading import open_corpus
    from ..errors import EmbedlensError
    from ..timing import Timings

    clock = Timings()  # the manifest's total time counts from here
    acc = None if acc_rows == 0 else acc_rows
    check_options(k=k, control_runs=control_runs, control_sample=CONTROL_SAMPLE, min_count=min_count, corpus=corpus,
                  acc_rows=acc)
    check_labels(space_a, labels_a, "labels_a")
    check_labels(space_b, labels_b, "labels_b")
    if pairs is not None:
        if not Path(pairs).expanduser().is_file():
            raise EmbedlensError(f"no such pairs file: {pairs}")
    if out is None and not as_json:
        out = "embedlens-compare"
    opened = open_corpus(corpus) if corpus is not None else None  # a missing corpus is refused before any space is read
    options = {"k": k, "pairs": pairs, "labels_a": labels_a, "labels_b": labels_b, "corpus": opened,
               "min_count": min_count, "seed": seed, "control_runs": control_runs, "acc_rows": acc, "progress": not as_json}
    if out is not None:
        result = write_comparison(space_a, space_b, out, html=not no_html, started=clock.started, **options)
    else:
        result = compare(space_a, space_b, maps=False, **options)
    for message in result.notes:
        note(message)
    if as_json:
        emit_json(result.summary())
        return
    print_comparison(result)
    click.echo(f"wrote {', '.join(str(p) for p in result.files.values())}")


def print_comparison(result) -> None:
    """The figures beside their controls, then the most changed and most stable tokens."""
    from rich.table import Table

    t = Table(title=f"{result.a['name']} vs {result.b['name']}: {result.n_shared:,} shared tokens ({result.match} "
                    f"match), {result.only_a:,} only in A, {result.only_b:,} only in B, k = {result.k}",
              title_justify="left")
    t.add_column("figure")
    t.add_column("A vs B", justify="right")
    t.add_column("control (shuffled pairs)", justify="right")
    for name, value, mean, std in result.figure_lines():
        t.add_row(name, f"{value:.4f}", f"{mean:.4f} ± {std:.4f}")
    console().print(t)
    for title, rows in (("most changed", result.most_changed(10)), ("most stable", result.most_stable(10))):
        table = Table(title=title, title_justify="left")
        for column in ("token", "overlap", "displacement", "gained in B", "lost from A"):
            table.add_column(column, justify="right" if column in ("overlap", "displacement") else "left")
        for i in rows:
            row = result.token(i)
            table.add_row(text(row["display"]), f"{row['overlap']:.2f}", f"{row['displacement']:.3f}",
                          text(" ".join(row["gained"][:5])), text(" ".join(row["lost"][:5])))
        console().print(table)
