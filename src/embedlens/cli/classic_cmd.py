"""``tfidf``, ``word2vec``, ``analogy`` and ``evaluate``: the classic baselines."""

from __future__ import annotations

import click

from ..cache import ensure_writable_dir
from ..timing import Timings
from .common import emit_json, json_option, model_option, note, open_lens, print_neighbors, space_options
from .table import console, text


def _saved_summary(kind: str, out: str, n_words: int, dim: int, extra: str) -> None:
    console().print(f"{kind}: {n_words:,} words x {dim} → {out}  ({extra})", highlight=False, markup=False)
    click.echo(f"use it with: embedlens neighbors WORD --space {kind}:{out}", err=True)


@click.command("tfidf")
@click.argument("corpus", nargs=-1, required=True)
@click.option("--chunks", "n_chunks", type=int, default=10, show_default=True, help="Documents N: consecutive chunks of equal word count.")
@click.option("--keep-case", is_flag=True, help="Keep the words' case (default: lowercase every word).")
@click.option("--min-count", type=int, default=1, show_default=True, help="Keep only words occurring at least this often.")
@click.option("--out", "out", type=click.Path(file_okay=False), default="embedlens-tfidf", show_default=True,
              help="Folder for space.safetensors, words.txt and manifest.json.")
@json_option
def tfidf_command(corpus: tuple[str, ...], n_chunks: int, keep_case: bool, min_count: int, out: str, as_json: bool) -> None:
    """TF-IDF word vectors: the corpus's words cut into N chunks; a word's vector is its TF-IDF in each.

    tf(t, d) = count of t in d / words in d; idf(t) = ln(N / chunks containing t); tfidf = tf * idf.
    Words are \\w+ matches, lowercased unless --keep-case. CORPUS: a text file, a folder of .txt files, or a
    packaged corpus (lee, enwiki-sample); several may be given.
    """
    from ..classic.tfidf import tfidf  # lazy: imports numpy; --help stays light

    ensure_writable_dir(out)  # fail before any work
    clock = Timings()
    result = tfidf(list(corpus), n_chunks, keep_case=keep_case, min_count=min_count)
    result.save(out, extra={"total_seconds": clock.since_start()})
    if as_json:
        emit_json({**result.to_dict(), "out": out})
        return
    sizes = result.chunk_lengths
    _saved_summary("tfidf", out, len(result.words), result.n_chunks,
                   f"{int(sizes.sum()):,} words in {result.n_chunks} chunks of {int(sizes.min()):,}-{int(sizes.max()):,}")


@click.command()
@click.argument("corpus", nargs=-1, required=True)
@click.option("--sg", type=click.IntRange(0, 1), default=0, show_default=True, help="0: CBOW, 1: skip-gram.")
@click.option("--dim", type=int, default=100, show_default=True, help="Vector size.")
@click.option("--window", type=int, default=5, show_default=True, help="Context words on each side.")
@click.option("--epochs", type=int, default=5, show_default=True, help="Passes over the corpus.")
@click.option("--min-count", type=int, default=5, show_default=True, help="Ignore words occurring fewer times.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of the initial vectors and the training noise.")
@click.option("--workers", type=int, default=1, show_default=True,
              help="Training threads; 1 makes runs reproducible (same seed -> identical vectors).")
@click.option("--keep-case", is_flag=True, help="Keep the words' case (default: lowercase every word).")
@click.option("--out", "out", type=click.Path(file_okay=False), default="embedlens-word2vec", show_default=True,
              help="Folder for vectors.bin (word2vec binary), space.safetensors, words.txt, manifest.json.")
@json_option
def word2vec(corpus: tuple[str, ...], sg: int, dim: int, window: int, epochs: int, min_count: int, seed: int,
             workers: int, keep_case: bool, out: str, as_json: bool) -> None:
    """Train word2vec (gensim; CBOW by default, skip-gram with --sg 1) and save it without pickle.

    CORPUS: a text file, a folder of .txt files, or a packaged corpus (lee, enwiki-sample); several may be given.
    """
    from ..classic.word2vec import train_word2vec  # lazy: imports numpy; --help stays light

    ensure_writable_dir(out)
    clock = Timings()
    result = train_word2vec(list(corpus), sg=sg, dim=dim, window=window, epochs=epochs, min_count=min_count,
                            seed=seed, workers=workers, keep_case=keep_case)
    result.save(out, extra={"total_seconds": clock.since_start()})
    if workers > 1:
        note("with more than one worker, runs with the same seed differ slightly (use --workers 1 to reproduce)")
    if as_json:
        emit_json({**result.to_dict(), "out": out})
        return
    _saved_summary("word2vec", out, len(result.words), dim,
                   f"{result.params['architecture']}, {epochs} epochs over {result.params['n_occurrences']:,} words, "
                   f"{result.timings['train']:.1f} s")


@click.command("analogy")
@click.argument("a")
@click.argument("b")
@click.argument("c")
@model_option
@space_options
@click.option("--k", "-k", "k", type=int, default=5, show_default=True, help="How many answers.")
@json_option
def analogy_command(a: str, b: str, c: str, model: str, space: str, labels: str | None, k: int, as_json: bool) -> None:
    """A - B + C: the words nearest to A's vector minus B's plus C's (king man woman -> queen).

    3CosAdd over unit vectors; A, B and C themselves are excluded. Words resolve as in `neighbors`.
    """
    from ..classic.analogy import analogy  # lazy: imports numpy; --help stays light

    view = open_lens(model, space, labels)
    result = analogy(view, a, b, c, k)
    if as_json:
        emit_json(result.to_dict())
        return
    note(result.note)
    print_neighbors(result, f"{a} - {b} + {c} · {result.space}")


@click.command("evaluate")
@model_option
@space_options
@click.option("--task", "tasks", multiple=True, type=click.Choice(["wordsim353", "simlex999", "analogies"]),
              help="Run only this evaluation (repeatable; default: all three).")
@click.option("--wordsim", type=click.Path(dir_okay=False), default=None, help="Word-pair file instead of WordSim-353.")
@click.option("--simlex", type=click.Path(dir_okay=False), default=None, help="Word-pair file instead of SimLex-999.")
@click.option("--analogies", type=click.Path(dir_okay=False), default=None,
              help="Analogy file instead of Google's questions-words.txt.")
@click.option("--restrict-vocab", type=int, default=30_000, show_default=True,
              help="Analogies search only the first N rows (the N most frequent words).")
@json_option
def evaluate_command(model: str, space: str, labels: str | None, tasks: tuple[str, ...], wordsim: str | None,
             simlex: str | None, analogies: str | None, restrict_vocab: int, as_json: bool) -> None:
    """Score a space: Spearman on WordSim-353 and SimLex-999, accuracy on the Google analogies, with coverage.

    The files come with gensim's test data. For a language model a word's vector is its token embedding
    when the word is one token (' word' or 'word'), else the mean of its tokens (single_token_coverage
    says how often); analogy questions need four single-token words.
    """
    from ..classic.evaluate import TASKS, evaluate  # lazy: imports numpy; --help stays light

    view = open_lens(model, space, labels)
    result = evaluate(view, tasks=tasks or TASKS, wordsim=wordsim, simlex=simlex, analogies=analogies,
                 restrict_vocab=restrict_vocab)
    if as_json:
        emit_json(result.to_dict())
        return
    from rich.table import Table

    t = Table(title=f"evaluation · {result.space}", title_justify="left")
    for col in ("task", "score", "coverage", "used / total", "note"):
        t.add_column(col, justify="left" if col in ("task", "note") else "right")
    for name in ("wordsim353", "simlex999"):
        s = getattr(result, name)
        if s is not None:
            extra = f"single-token pairs {s.single_token_coverage:.0%}" if s.single_token_coverage is not None else ""
            t.add_row(name, "n/a" if s.spearman is None else f"ρ {s.spearman:.3f}", f"{s.coverage:.1%}",
                      f"{s.n_used}/{s.n_pairs}", text(extra))
    if result.analogies is not None:
        s = result.analogies
        t.add_row("analogies", "n/a" if s.accuracy is None else f"acc {s.accuracy:.3f}", f"{s.coverage:.1%}",
                  f"{s.n_used}/{s.n_questions}", text(f"top {s.restrict_vocab:,} rows"))
    console().print(t)
    note(result.word_vectors)
