"""Options and output helpers shared by the commands."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from ..cache import json_default
from ..errors import EmbedlensError
from ..models.specs import DEFAULT_MODEL
from . import errors_text  # called through the module: tests stand in for it there
from .table import print_table

MODEL_HELP = "Model: alias, folder, .gguf file or cached hub name (default smollm2-135m)."
SPACE_HELP = (
    "Which space: input (token embeddings) or output (unembedding) of --model, or another space: "
    "glove-50d, tfidf:DIR, word2vec:DIR, path:DIR, FILE.npy/.safetensors (with --labels)."
)


def model_option(f):
    return click.option("--model", "-m", "model", default=DEFAULT_MODEL, show_default=True, help=MODEL_HELP)(f)


def json_option(f):
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for machines instead of a table.")(f)


def space_options(f):
    f = click.option("--labels", type=click.Path(dir_okay=False), default=None,
                     help="Labels file (one per line) for a --space matrix file.")(f)
    return click.option("--space", "space", default="input", show_default=True, help=SPACE_HELP)(f)


def _given(name: str) -> bool:
    """Whether the user typed option ``name`` (not its default)."""
    ctx = click.get_current_context(silent=True)
    if ctx is None or name not in ctx.params:
        return False
    return ctx.get_parameter_source(name) not in (click.core.ParameterSource.DEFAULT, None)


def open_lens(model: str, space: str = "input", labels: str | None = None) -> Any:
    """The space a command works on (a :class:`~embedlens.lens.SpaceView`: a model's input/output, or another space).

    Options that would be silently ignored are refused: ``--labels`` belongs to a matrix file, and
    ``--model`` to a model's own ``input``/``output`` spaces.
    """
    from ..handles import is_matrix_spec, open_handle  # lazy: imports numpy; --help stays light

    if labels is not None and not is_matrix_spec(space):
        raise EmbedlensError(f"--labels applies only to a matrix --space (FILE.npy or FILE.safetensors), not to '{space}'")
    if space not in ("input", "output") and _given("model"):
        raise EmbedlensError(f"--model does not apply to --space {space}, which is not a model's space",
                             hint="drop --model, or use --space input/output to read the model")
    return open_handle(model, space, labels)


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=json_default) + "\n")


def note(message: str | None) -> None:
    if message:
        click.echo(f"embedlens: note: {errors_text.flag_text(message, errors_text.current_command())}", err=True)


def print_neighbors(result: Any, title: str) -> None:
    """A neighbour list (neighbors, variants, analogy) as a table: rank, id, readable token, cosine."""
    columns = [("#", "right"), ("id", "right"), ("token", "left"), ("cosine", "right")]
    rows = [(str(i), str(n.id), n.display, f"{n.score:.4f}") for i, n in enumerate(result.neighbors, 1)]
    print_table(title, columns, rows)


def parse_perplexities(value: str | None) -> list[float] | None:
    """``--perplexity``: one number, or a comma-separated list for a sweep (``5,30,100``); None when not given."""
    if value is None:
        return None

    try:
        values = [float(v) for v in value.split(",")]
    except ValueError:
        raise EmbedlensError(f"--perplexity takes a number or a comma-separated list of numbers (5,30,100), "
                             f"got '{value}'") from None
    return values
