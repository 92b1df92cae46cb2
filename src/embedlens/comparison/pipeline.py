"""``compare``: open two spaces, pair their tokens, measure how alike they are, token by token.

Stages: check the options; pair the rows (:mod:`.correspondence`, labels only: a bad pairing is refused
before any vector is read); the k nearest of every shared token in each space, among the shared tokens
(the neighbour layer: a space's cached k-NN graph when every one of its rows takes part, else an exact
search over the shared rows); the global figures and their permutation control (:mod:`.figures`);
optionally corpus counts and each space's default map (:func:`embedlens.atlas.default_map.default_map`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..atlas.default_map import default_map
from ..cache import ensure_writable_dir
from ..corpus.frequencies import count_tokens
from ..corpus.reading import open_corpus
from ..errors import EmbedlensError
from ..handles import is_matrix_spec, open_view
from ..lens import as_view
from ..neighbors.index import ExactIndex, check_k
from ..neighbors.knn import build_knn, cached_knn, knn_graph
from ..timing import Timings
from .correspondence import Correspondence, correspond
from .figures import (
    align,
    centred_unit,
    gained_lost,
    gram_norms,
    jaccard_rows,
    linear_cka,
    permutation_control,
)
from .result import Comparison

if TYPE_CHECKING:
    from ..lens import Lens, SpaceView

log = logging.getLogger("embedlens")

MAX_K = 1000
CONTROL_RUNS = 5
# Translation accuracy searches all of B once per measured token: above this many shared tokens it is measured
# on a seeded sample of this many (standard error under 0.004), so it costs no more than the k-NN of the shared tokens.
ACC_ROWS = 20_000
CONTROL_SAMPLE = 500  # rows per control run on which translation accuracy is measured (its share of the run)


def check_options(*, k: int, control_runs: int, control_sample: int, min_count: int, corpus: Any,
                  acc_rows: int | None = ACC_ROWS) -> None:
    """Refuse bad options before any space is read."""
    check_k(k, MAX_K, name="`k`")
    if acc_rows is not None:
        check_k(acc_rows, 10**9, name="`acc_rows`")
    check_k(control_runs, 1000, name="`control_runs`")
    check_k(control_sample, 10**9, name="`control_sample`")
    if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
        raise EmbedlensError(f"`min_count` must be a positive integer, got {min_count!r}")
    if min_count > 1 and corpus is None:
        raise EmbedlensError("`min_count` filters by corpus counts: give a `corpus` too")


def check_labels(space: str | Path | Lens | SpaceView, labels: str | None, name: str) -> None:
    """A labels file belongs to a matrix spec (``FILE.npy``); refused for anything else before it is opened."""
    if labels is not None and not (isinstance(space, str | Path) and is_matrix_spec(str(space))):
        shown = space if isinstance(space, str | Path) else getattr(space, "name", type(space).__name__)
        raise EmbedlensError(f"`{name}` applies only to a FILE.npy/.safetensors matrix, not to '{shown}'")


def _as_view(space: str | Path | Lens | SpaceView, labels: str | None) -> SpaceView:
    if isinstance(space, str | Path):
        return open_view(str(space), labels=labels)
    return as_view(space)


def shared_neighbors(view: SpaceView, rows: np.ndarray, whole: bool, k: int, *, progress: bool = False) -> np.ndarray:
    """The k nearest (cosine) of each of ``rows`` among ``rows`` themselves, as positions in ``rows`` (n, k).

    When ``rows`` is the whole space in row order, its cached k-NN graph is used (built and cached if missing);
    otherwise the neighbour layer's exact search runs over the shared rows only.
    """
    if whole:
        cached = cached_knn(view, k)  # any cached exact graph of at least k neighbours, cut to k
        return (cached if cached is not None and cached.method == "exact" else build_knn(view, k, progress=progress)[0]).indices
    positions = knn_graph(view.space.subset(np.sort(rows)), k, progress=progress).indices
    order = np.argsort(rows, kind="stable")  # subset rows are sorted: map sorted places back to positions
    out = np.empty_like(positions)
    out[order] = order[positions]
    return out


def _check_size(pairs: Correspondence, k: int, view_a: SpaceView, view_b: SpaceView) -> None:
    need = 2 * k + 2
    if pairs.n_shared < need:
        raise EmbedlensError(f"{view_a.space.name} and {view_b.space.name} share {pairs.n_shared} tokens "
                             f"({pairs.method} match); k={k} needs at least 2k+2 = {need}: use a smaller `k`")


def compare(view_a: str | Path | Lens | SpaceView, view_b: str | Path | Lens | SpaceView,
            *, k: int = 10, pairs: str | Path | None = None, labels_a: str | None = None,
            labels_b: str | None = None, corpus: Any = None, min_count: int = 1, seed: int = 0,
            control_runs: int = CONTROL_RUNS, control_sample: int = CONTROL_SAMPLE, acc_rows: int | None = ACC_ROWS,
            maps: bool = True,
            progress: bool = False) -> Comparison:
    """Compare two embedding spaces on the tokens they share.

    Args:
        view_a, view_b: spaces (``lens.input``, ``lens.output``, a handle) or specs as ``--model`` / ``--space``
            take them (``smollm2-135m``, ``MODEL:output``, ``glove-50d``, ``FILE.npy`` with ``labels_a``...).
        k: neighbours per token for the k-NN overlap (1 to 1000; at least 2k+2 shared tokens are needed).
        pairs: a file of ``TOKEN_A<TAB>TOKEN_B`` lines instead of the automatic correspondence.
        labels_a, labels_b: labels files of matrix specs.
        corpus: corpus specs or an opened corpus: counts of A's tokens, for ``min_count``.
        min_count: tokens seen fewer times in ``corpus`` are left out of the most changed / stable lists.
        seed: seed of the permutation control.
        control_runs: random permutations of the control.
        control_sample: rows per control run on which translation accuracy is measured.
        acc_rows: translation accuracy is measured on every shared token up to this many, else on a seeded
            sample of this many (None: always every token).
        maps: place each shared token on A's and on B's default map (for ``compare.html``).
        progress: progress bars on a terminal.

    Returns:
        a :class:`~embedlens.comparison.result.Comparison`.
    """
    check_options(k=k, control_runs=control_runs, control_sample=control_sample, min_count=min_count, corpus=corpus,
                  acc_rows=acc_rows)
    check_labels(view_a, labels_a, "labels_a")
    check_labels(view_b, labels_b, "labels_b")
    timings = Timings()
    with timings.stage("match"):
        if corpus is not None and not hasattr(corpus, "manifest"):
            corpus = open_corpus(corpus)  # a missing corpus is refused before any vector is read
        a, b = _as_view(view_a, labels_a), _as_view(view_b, labels_b)
        pairing = correspond(a, b, pairs=pairs)
        _check_size(pairing, k, a, b)
    notes: list[str] = []
    same = pairing.method == "identity" and _one_space(a, b)
    if same:
        notes.append("A and B are the same space: every figure is 1 (the Procrustes residual 0), as it must be")

    sample = None
    if acc_rows is not None and pairing.n_shared > acc_rows:
        sample = np.sort(np.random.default_rng(seed).choice(pairing.n_shared, size=acc_rows, replace=False))
        notes.append(f"translation accuracy was measured on a seeded sample of {acc_rows:,} of the "
                     f"{pairing.n_shared:,} shared tokens")
    measured = _measure(a, b, pairing, k, seed=seed, control_runs=control_runs, control_sample=control_sample,
                        acc_sample=sample, progress=progress, timings=timings)
    counts, coords, map_info = _extras(a, b, pairing, corpus=corpus, maps=maps, progress=progress, timings=timings)
    sa, sb = a.space, b.space
    if dims_differ := sa.dim != sb.dim:
        notes.append(f"the narrower space ({min(sa.dim, sb.dim)} dimensions) was zero-padded to {max(sa.dim, sb.dim)} "
                     "for the Procrustes alignment")
    return Comparison(
        a=_describe(a), b=_describe(b), match=pairing.method, n_shared=pairing.n_shared, only_a=pairing.only_a,
        only_b=pairing.only_b, k=k, rows_a=pairing.rows_a, rows_b=pairing.rows_b,
        ids_a=np.asarray(sa.ids)[pairing.rows_a], ids_b=np.asarray(sb.ids)[pairing.rows_b],
        display_a=np.asarray(sa.display, dtype=object)[pairing.rows_a].tolist(),
        display_b=np.asarray(sb.display, dtype=object)[pairing.rows_b].tolist(),
        **measured, counts=counts, coords_a=coords[0], coords_b=coords[1], maps=map_info, same_space=same,
        notes=notes, timings=dict(timings),
        params={"seed": seed, "control_runs": control_runs, "control_sample": min(control_sample, pairing.n_shared),
                "acc_rows": pairing.n_shared if sample is None else int(sample.size),
                "min_count": min_count, "padded": dims_differ, "corpus": None if corpus is None else corpus.manifest(),
                "knn": {"a": "cached graph" if pairing.whole_a else "exact search among the shared tokens",
                        "b": "cached graph" if pairing.whole_b else "exact search among the shared tokens"},
                "acc_metric": "cosine to the rows of B (centred, unit Frobenius)"})


def _measure(a: Any, b: Any, pairing: Correspondence, k: int, *, seed: int, control_runs: int, control_sample: int,
             acc_sample: np.ndarray | None, progress: bool, timings: Timings) -> dict[str, Any]:
    """The neighbours of the shared tokens in each space, the figures, the per-token changes and the control."""
    with timings.stage("knn_a"):
        nb_a = shared_neighbors(a, pairing.rows_a, pairing.whole_a, k, progress=progress)
    with timings.stage("knn_b"):
        nb_b = shared_neighbors(b, pairing.rows_b, pairing.whole_b, k, progress=progress)

    with timings.stage("figures"):
        sa, sb = a.space, b.space
        x = centred_unit(np.asarray(sa.vectors[pairing.rows_a]), np.asarray(sa.norms)[pairing.rows_a])
        y = centred_unit(np.asarray(sb.vectors[pairing.rows_b]), np.asarray(sb.norms)[pairing.rows_b])
        cross, norms = x.T @ y, gram_norms(x, y)
        index = ExactIndex(y)
        aligned = align(x, y, index, cross=cross, acc_rows=acc_sample)
        overlap = jaccard_rows(nb_a, nb_b)
        gained, lost = gained_lost(nb_a, nb_b)
        figures = {"cka": linear_cka(x, y, cross=cross, norms=norms), "knn_overlap": float(overlap.mean()),
                   "procrustes_residual": aligned.residual, "acc1": aligned.acc1, "acc10": aligned.acc10}
    with timings.stage("control"):
        control = permutation_control(x, y, nb_a, nb_b, index, runs=control_runs, seed=seed, sample=control_sample,
                                      norms=norms)
    return {"figures": figures, "control": control, "overlap": overlap, "displacement": aligned.displacement,
            "gained": gained.astype(np.int32), "lost": lost.astype(np.int32)}


def _extras(a: Any, b: Any, pairing: Correspondence, *, corpus: Any, maps: bool, progress: bool,
            timings: Timings) -> tuple[np.ndarray | None, tuple[Any, Any], dict[str, Any]]:
    """Corpus counts of A's shared tokens (or None), their places on each space's default map, how those were made."""
    counts = None
    if corpus is not None:
        with timings.stage("corpus"):
            counts = count_tokens(a, corpus, progress=progress).counts[pairing.rows_a]
    if not maps:
        return counts, (None, None), {}
    with timings.stage("maps"):
        (coords_a, info_a), (coords_b, info_b) = _map_of(a, pairing.rows_a), _map_of(b, pairing.rows_b)
    return counts, (coords_a, coords_b), {"a": info_a, "b": info_b}


def _one_space(a: Any, b: Any) -> bool:
    """Whether two views hold the same vectors: one content hash, or the input and output of one tied model."""
    if a.is_model and b.is_model and a.meta.get("content_hash") == b.meta.get("content_hash") and a.meta.get("tied"):
        return True
    return a.space.vectors is b.space.vectors or a.content_hash == b.content_hash


def _describe(view: SpaceView) -> dict[str, Any]:
    sp = view.space
    return {"name": sp.name, "which": view.which, "n": len(sp), "dim": sp.dim, "token_scheme": view.token_scheme,
            "manifest": view.manifest()}


def _map_of(view: SpaceView, rows: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    """The shared tokens on the space's default map (its cached t-SNE/UMAP map, else PCA), 2-D."""
    found = default_map(view, dims=2)
    info = {"method": found.projection.method, "computed_now": found.computed_now}
    return np.asarray(found.projection.coords, dtype=np.float32)[rows], info


def write_comparison(view_a: str | Path | Lens | SpaceView, view_b: str | Path | Lens | SpaceView,
                     out_dir: str | Path = "embedlens-compare", *, html: bool = True,
                     started: float | None = None, **options: Any) -> Comparison:
    """:func:`compare`, then save ``compare.html``, ``tokens.parquet`` and ``manifest.json`` into ``out_dir``
    (checked for writing before any work). Options are those of :func:`compare`."""
    started = Timings(started=started).started
    ensure_writable_dir(out_dir)
    result = compare(view_a, view_b, maps=html and options.pop("maps", True), **options)
    result.save(out_dir, html=html, started=started)
    return result
