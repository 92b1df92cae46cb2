"""``graph`` (an embedding graph of some seed tokens) and ``knn`` (the cached full-vocabulary k-NN graph)."""

from __future__ import annotations

import click

from .common import emit_json, json_option, model_option, note, open_lens, space_options
from .table import console, text


@click.command()
@click.option("--text", "text_arg", default=None, help="Seeds: the model's tokens of this text.")
@click.option("--words", default=None, help="Seeds: comma-separated words, id:N or tok:RAW (like `neighbors`).")
@click.option("--random", "random_n", type=int, default=None, help="Seeds: N random whole-word tokens (seeded).")
@click.option("--corpus", multiple=True, help="With --random: draw only tokens found in this file, folder or "
              "packaged corpus (lee, enwiki-sample). Repeatable.")
@click.option("--variants", default=None, help="Seeds: the variants of this word (list, ␣list, List, lists...).")
@model_option
@space_options
@click.option("--k", "-k", "k", type=int, default=20, show_default=True, help="Nearest tokens joined to each seed.")
@click.option("--min-score", type=float, default=None, help="Drop edges whose cosine is below this.")
@click.option("--mutual", is_flag=True, help="Also join any two nodes that are in each other's top-k.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of the random words and the layout.")
@click.option("--out", "out", default=None, type=click.Path(file_okay=False),
              help="Folder for graph.html, graph.json, graph.graphml and manifest.json [default: embedlens-graph; "
                   "with --json nothing is written unless --out is given].")
@json_option
def graph(text_arg, words, random_n, corpus, variants, model, space, labels, k, min_score, mutual, seed, out,
          as_json) -> None:
    """Tokens as nodes, joined to their k nearest tokens (cosine over the whole vocabulary).

    Give exactly one of --text, --words, --random N or --variants WORD. Writes an interactive offline
    graph.html (drag to pan, wheel to zoom, hover for ids and scores), graph.json (node-link),
    graph.graphml (Gephi, Cytoscape) and manifest.json into --out. --json prints graph.json (and writes
    files only when --out is given).
    """
    # lazy: the library (numpy and up) is imported when the command runs, so that `graph --help` stays instant
    from ..cache import ensure_writable_dir
    from ..errors import require
    from ..graph import check_seed_options, graph_json, token_graph, write_graph
    from ..versions import versions

    # fail before any work on a bad choice of seeds or an unwritable folder
    check_seed_options(text=text_arg, words=words, random=random_n, corpus=list(corpus) or None, variants=variants)
    if out is None and not as_json:
        out = "embedlens-graph"
    if out is not None:
        ensure_writable_dir(out)
        require("networkx", "graph files (GraphML)", extra="graph", package="networkx")
    view = open_lens(model, space, labels)
    g = token_graph(view, text=text_arg, words=words, random=random_n, corpus=list(corpus) or None,
                    variants=variants, k=k, min_score=min_score, mutual=mutual, seed=seed)
    paths = None
    if out is not None:
        manifest = {"command": "graph", "model": view.manifest(), "seed": seed, "versions": versions()}
        paths = write_graph(g, out, manifest=manifest)
    if as_json:
        import sys

        sys.stdout.write(graph_json(g))
        return
    for line in g.notes:
        note(line)
    st = g.stats
    click.echo(f"{st.seeds} seeds, {st.nodes} nodes, {st.edges} edges, {st.components} component"
               f"{'' if st.components == 1 else 's'} · {g.space} · k={g.params['k']} · {g.knn_source}")
    assert paths is not None
    click.echo(f"wrote {paths['graph.html']} (and graph.json, graph.graphml, manifest.json)")


@click.command()
@model_option
@space_options
@click.option("--k", "-k", "k", type=int, default=10, show_default=True, help="Neighbours per token.")
@click.option("--exact", "method", flag_value="exact", default=True, help="Exact float32 search (default).")
@click.option("--approx", "method", flag_value="approx",
              help="bfloat16 products + exact re-rank of a short list; stores its measured recall@k. On CPUs without fast bfloat16 products it computes the exact graph instead.")
@click.option("--backend", type=click.Choice(["torch", "faiss", "numpy"]), default=None,
              help="Exact backend (default: the fastest measured, faiss; torch without faiss-cpu).")
@click.option("--block", type=int, default=None, help="Query rows per block (memory: block x vocabulary scores).")
@click.option("--rebuild", is_flag=True, help="Recompute even if a cached graph exists.")
@json_option
def knn(model, space, labels, k, method, backend, block, rebuild, as_json) -> None:
    """Build (once) and cache the k-NN graph of the whole vocabulary: every token's k nearest tokens.

    `graph` and other commands reuse it when it holds at least the k they need.
    """
    from ..neighbors.knn import build_knn  # lazy: `knn --help` stays instant

    view = open_lens(model, space, labels)
    options = {"block": block}
    if backend:
        options["backend"] = backend
    g, path, cached = build_knn(view, k, method=method, rebuild=rebuild, progress=not as_json, **options)
    if as_json:
        emit_json({**g.meta(), "path": str(path), "from_cache": cached})
        return
    secs = sum(g.timings.values())
    how = "cached" if cached else f"built in {secs:.1f} s"
    recall = f", recall@{g.k} {g.recall:.4f} on {g.recall_sample} rows" if g.method == "approx" else ""
    click.echo(f"{g.method} {g.k}-NN graph of {g.n:,} rows ({g.backend}{recall}) · {how}")
    click.echo(f"{path}")
    from rich.table import Table

    sp = view.space
    rows = [0, g.n // 2, g.n - 1] if g.n > 2 else list(range(g.n))
    t = Table(title="a few rows", title_justify="left")
    t.add_column("token")
    t.add_column("nearest (cosine)")
    for r in rows:
        nbrs = "  ".join(f"{sp.display[j]} ({s:.3f})" for j, s in zip(g.indices[r, :5], g.scores[r, :5], strict=True))
        t.add_row(text(sp.display[r]), text(nbrs))
    console().print(t)
