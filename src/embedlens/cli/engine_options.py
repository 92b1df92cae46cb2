"""``--text-column``, ``--engine``, ``--ray-address`` and ``--workers``: how a corpus is read and where the
work on it runs (shared by map and context)."""

from __future__ import annotations

import click

from ..errors import EmbedlensError


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


def _typed(name: str) -> bool:
    """Whether option ``name`` was typed on this command line (an environment variable does not count)."""
    ctx = click.get_current_context(silent=True)
    return ctx is not None and ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE


def check_engine_options(*, reads_corpus: bool, engine: str) -> None:
    """Refuse corpus and Ray options that would be silently ignored by this run."""
    if _typed("text_column") and not reads_corpus:
        raise EmbedlensError("--text-column applies only when a corpus is read (--corpus)")
    for name in ("workers", "ray_address"):
        if _typed(name) and engine != "ray":
            raise EmbedlensError(f"--{name.replace('_', '-')} applies only with --engine ray")
    if engine == "ray" and not reads_corpus:
        raise EmbedlensError("--engine ray applies only when a corpus is read (--corpus)")
