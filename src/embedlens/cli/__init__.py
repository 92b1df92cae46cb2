"""The ``embedlens`` command line: thin wrappers that parse, call one public function and print.

Commands live in small modules and are imported only when invoked, so ``embedlens --help`` is instant.
User errors print one line on stderr and exit 2; nothing else ever prints a traceback unless
``EMBEDLENS_DEBUG=1`` is set.
"""

from __future__ import annotations

import gc
import importlib
import os
import sys

import click

from ..errors import EmbedlensError
from . import errors_text  # called through the module: tests stand in for it there

# name -> (module, attribute, one-line help shown in `embedlens --help` without importing the module)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "demo": ("embedlens.cli.demo", "demo", "Run the quick-start job on a model and write a report you can open."),
    "tokens": ("embedlens.cli.basic", "tokens", "Tokenize text: ids, readable tokens and input-embedding values."),
    "neighbors": ("embedlens.cli.basic", "neighbors", "Cosine nearest tokens of a word, id:N or tok:RAW."),
    "variants": ("embedlens.cli.basic", "variants", "Variants of a word in the vocabulary, ranked by cosine."),
    "cache": ("embedlens.cli.cache_cmd", "cache", "List, verify or clear cached embedding matrices."),
    "context": ("embedlens.cli.context_cmd", "context", "Hidden states of texts (or a word across a corpus) mapped per layer/model."),
    "graph": ("embedlens.cli.graph_cmd", "graph", "Graph of tokens joined to their nearest tokens: offline HTML, JSON, GraphML."),
    "knn": ("embedlens.cli.graph_cmd", "knn", "Build and cache the k-NN graph of the whole vocabulary (exact or approx)."),
    "logit-lens": ("embedlens.cli.logit_lens_cmd", "logit_lens", "Logit lens: every layer's residual stream decoded to next tokens, as a heatmap."),
    "lens": ("embedlens.cli.lens_cmd", "lens", "Train a tuned lens for a model; measure logit/tuned lenses per layer (KL, top-1)."),
    "grid": ("embedlens.cli.grid_cmd", "grid", "Token grid map: a 2D grid fed at block L, each cell's top next token."),
    "map": ("embedlens.cli.map_cmd", "map_command", "Map the vocabulary to 2D/3D (PCA, t-SNE, UMAP): offline HTML, PNG, data."),
    "tfidf": ("embedlens.cli.classic_cmd", "tfidf_command", "TF-IDF word vectors over N chunks of a corpus, saved as a space."),
    "word2vec": ("embedlens.cli.classic_cmd", "word2vec", "Train word2vec (CBOW or skip-gram) on a corpus, saved as a space."),
    "analogy": ("embedlens.cli.classic_cmd", "analogy_command", "A - B + C nearest words (king man woman -> queen)."),
    "evaluate": ("embedlens.cli.classic_cmd", "evaluate_command", "WordSim-353, SimLex-999 and Google analogy scores of a space."),
    "export-site": ("embedlens.cli.serve_cmd", "export_site_command", "Write the explorer as a static folder that opens without a server."),
    "compare": ("embedlens.cli.compare_cmd", "compare_command", "Compare two spaces on their shared tokens: figures with controls, token by token."),
    "serve": ("embedlens.cli.serve_cmd", "serve_command", "Explore the vocabulary in the browser: map, search, neighbours, prompts, grid."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attr, _ = COMMANDS[cmd_name]
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="embedlens", prog_name="embedlens")
def cli() -> None:
    """See inside the embedding space of a language model, offline.

    Models: --model takes an alias (smollm2-135m, the default; gemma3-270m and minilm-l6 when their
    packages are installed), a local Hugging Face folder, a .gguf file, or a hub name already in the
    local Hugging Face cache. Nothing is ever downloaded. Cached matrices live in $EMBEDLENS_CACHE.
    """


def _setup_logging() -> None:
    import logging

    class Handler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            try:
                click.echo(f"embedlens: note: {errors_text.flag_text(record.getMessage(), errors_text.current_command())}", err=True)
            except Exception:  # noqa: BLE001 - a note must never break the work that logged it
                self.handleError(record)

    logger = logging.getLogger("embedlens")
    if not any(isinstance(h, Handler) or getattr(h, "_embedlens", False) for h in logger.handlers):
        handler = Handler()
        handler._embedlens = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def _error(message: str) -> None:
    click.echo(f"embedlens: error: {' '.join(str(message).split())}", err=True)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 internal error, 2 user error, 130 interrupted)."""
    _setup_logging()
    debug = bool(os.environ.get("EMBEDLENS_DEBUG"))
    try:
        result = cli.main(args=argv, prog_name="embedlens", standalone_mode=False)
        return result if isinstance(result, int) else 0
    except EmbedlensError as exc:
        if debug:
            raise
        _error(errors_text.flag_text(str(exc), errors_text.invoked_command(cli, sys.argv[1:] if argv is None else argv)))
        return exc.exit_code
    except click.exceptions.Abort:
        _error("interrupted")
        return 130
    except click.ClickException as exc:
        _error(exc.format_message())
        return 2
    except KeyboardInterrupt:
        _error("interrupted; nothing half-written was left behind")
        return 130
    except BrokenPipeError:
        return 0
    except MemoryError:
        _error("out of memory; try a smaller input, a smaller --batch-size or fewer tokens")
        return 2
    except Exception as exc:  # a bug: say so in one line, keep the traceback behind a flag
        if debug:
            raise
        _error(f"internal error: {type(exc).__name__}: {exc} (rerun with EMBEDLENS_DEBUG=1 for the traceback, and please report it)")
        return 1


def entry() -> None:  # pragma: no cover - console script
    code = main()
    # The process ends here: objects the command made (torch and transformers hold hundreds of thousands) are
    # kept out of the garbage collections that run while the interpreter shuts down (~0.7 s after a model ran).
    gc.freeze()
    sys.exit(code)
