"""``--text-column``, ``--engine``, ``--ray-address`` and ``--workers``: how a corpus is read and where the
work on it runs (shared by map and context)."""

from __future__ import annotations

import click


def engine_options(f):
    f = click.option("--workers", type=click.IntRange(min=1), default=None,
                     help="With --engine ray: CPU tasks and model actors at once (default: from the cluster's "
                          "CPUs; one model actor per GPU).")(f)
    f = click.option("--ray-address", default=None, envvar="RAY_ADDRESS", metavar="HOST:PORT",
                     help="With --engine ray: the cluster to attach to (default $RAY_ADDRESS; none: a local "
                          "Ray started for this run and stopped after).")(f)
    f = click.option("--engine", type=click.Choice(("local", "ray")), default="local", show_default=True,
                     help="Where the corpus is processed: this process, or a Ray Data pipeline (same results; "
                          "needs pip install 'embedlens[ray]').")(f)
    return click.option("--text-column", default="text", show_default=True, metavar="NAME",
                        help="The text field of JSONL / Parquet / hf: corpora.")(f)
