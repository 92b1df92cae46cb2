"""Start-up of ``embedlens serve``: which spaces to open, and optional k-NN indexes."""

from __future__ import annotations

from ..errors import EmbedlensError
from ..handles import is_matrix_spec, open_handle
from ..lens import SpaceView
from .explorer import GRAPH_K, Explorer


def open_panels(models: list[str], spaces: list[str], labels: str | None = None, *,
                default_model: str) -> list[SpaceView]:
    """The space of each panel (``lens.input``...), from the ``--model`` and ``--space`` options.

    ``--space input``/``output`` choose the space of every ``--model``; any other ``--space`` adds a
    panel of its own. With no ``--model``, the default model is used unless only other spaces are given.
    """
    if labels is not None and not any(is_matrix_spec(s) for s in spaces):
        raise EmbedlensError("labels apply only to a matrix space (FILE.npy or FILE.safetensors)")
    model_spaces = [s for s in spaces if s in ("input", "output")] or ["input"]
    other = [s for s in spaces if s not in ("input", "output")]
    if not models and (not other or any(s in ("input", "output") for s in spaces)):
        models = [default_model]
    n = len(models) * len(model_spaces) + len(other)
    if n > 2:
        raise EmbedlensError(f"the explorer shows at most two spaces side by side; {n} were asked for")
    views: list[SpaceView] = []
    for m in models:
        for which in model_spaces:
            views.append(open_handle(m, which))
    for s in other:
        views.append(open_handle(None, s, labels))
    return views


def build_knn_indexes(explorer: Explorer, k: int = GRAPH_K) -> None:
    """Queue each panel's k-NN graph of ``k`` neighbours (:meth:`~embedlens.serve.explorer.Explorer.graph_job`,
    cached: exact up to ``EXACT_MAX`` rows, where neighbour look-ups use it too); clusters and the t-SNE map
    use it once it is ready."""
    for panel in explorer.panels:
        explorer.graph_job(panel, k)
