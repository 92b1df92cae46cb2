"""The atlas pipeline: count -> select -> reduce -> measure faithfulness -> (draw and save).

:func:`build_atlas` returns an :class:`AtlasResult` and writes nothing; :func:`write_atlas` also saves
it (``map.html``, ``map.png``, ``points.parquet``, ``manifest.json``) and is what ``embedlens map`` and
the quick-start ``embedlens demo`` call.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..corpus.frequencies import TokenFrequencies
from ..corpus.reading import Corpus
from ..errors import EmbedlensError, require
from ..method_names import MAP_METHODS as METHODS
from .result import AtlasResult
from .selection import select_rows

DEFAULT_CORPUS = "lee"
METRICS = ("cosine", "euclidean")
COLORS = ("frequency", "length", "script", "none")
QUALITY_K, QUALITY_SAMPLE = 10, 2000
MIN_POINTS = 4


def check_options(method: str = "pca", dims: int = 2, metric: str = "cosine", color: str = "frequency",
                  min_count: int = 1, *, clusters: Any = None, x_axis: Any = None, y_axis: Any = None,
                  z_axis: Any = None, **reducer_options: Any) -> None:
    """Refuse bad map options before any work (a model load, a corpus count, minutes of t-SNE)."""
    if method not in METHODS:
        raise EmbedlensError(f"unknown method '{method}' (choose {', '.join(METHODS)})")
    if dims not in (2, 3):
        raise EmbedlensError(f"--dims must be 2 or 3, got {dims}")
    if metric not in METRICS:
        raise EmbedlensError(f"unknown metric '{metric}' (choose {', '.join(METRICS)})")
    if color not in COLORS:
        raise EmbedlensError(f"unknown colour '{color}' (choose {', '.join(COLORS)})")
    if min_count < 1:
        raise EmbedlensError(f"--min-count must be at least 1, got {min_count}")
    if clusters is not None:
        from .clusters import check_clusters

        check_clusters(clusters)
    if method == "axes" or any(a is not None for a in (x_axis, y_axis, z_axis)):
        from ..reduce.axes import check_axis_options

        check_axis_options(method, dims, x_axis, y_axis, z_axis)
        return
    from ..reduce import make_reducer

    make_reducer(method, n_components=dims, metric=metric, **reducer_options)._check_params()


def build_atlas(
    lens: Any,
    *,
    which: str = "input",
    corpus: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | Corpus | None = None,
    frequencies: TokenFrequencies | None = None,
    min_count: int = 1,
    all_tokens: bool = False,
    method: str = "pca",
    dims: int = 2,
    metric: str = "cosine",
    seed: int = 0,
    perplexity: float | None = None,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    pre_pca: int | None = None,
    color: str = "frequency",
    size_by_frequency: bool = False,
    progress: bool = True,
    clusters: str | int | None = None,
    x_axis: Sequence[str] | None = None,
    y_axis: Sequence[str] | None = None,
    z_axis: Sequence[str] | None = None,
    text_column: str = "text",
    engine: str = "local",
    ray_address: str | None = None,
    workers: int | None = None,
) -> AtlasResult:
    """Map a vocabulary (or the part of it a corpus uses) to 2-D or 3-D and measure how faithful the map is.

    Args:
        lens: a :class:`~embedlens.lens.ModelLens` or :class:`~embedlens.lens.SpaceLens`.
        which: the model space (``input`` or ``output``).
        corpus: corpus specs (files, folders, ``lee``, ``enwiki-sample``) or an opened corpus. With
            neither ``corpus`` nor ``all_tokens``, the demo corpus ``lee`` is used.
        frequencies: counts already made with :func:`~embedlens.corpus.frequencies.count_tokens` (skips counting).
        min_count: keep tokens seen at least this often in the corpus (ignored with ``all_tokens``).
        all_tokens: every row of the space, special tokens included; a corpus, if given, only colours.
        method: ``pca``, ``tsne`` or ``umap``.
        dims: 2 or 3.
        metric: ``cosine`` or ``euclidean``, for the reducer and for the quality figures.
        seed: seed of every random step (reducer and quality sample): same seed, same map.
        perplexity, n_neighbors, min_dist, pre_pca: reducer parameters (see :func:`embedlens.reduce.make_reducer`).
        color: ``frequency`` (log scale), ``length`` (characters) or ``none``.
        size_by_frequency: bigger markers for more frequent tokens.
        progress: show a progress bar while counting a large corpus.
        clusters: ``"auto"``, ``"none"`` or a number of clusters, found on the full-space k-NN graph and
            labelled (see :mod:`embedlens.atlas.clusters`); default ``auto`` for t-SNE and UMAP, else none.
        x_axis, y_axis, z_axis: with ``method="axes"``, two queries (word, ``id:N``, ``tok:RAW``) per axis:
            x = (u - a)·(b - a) / |b - a|^2 (see :mod:`embedlens.reduce.axes`).
        text_column: the text field of JSONL / Parquet / dataset corpora.
        engine, ray_address, workers: where the corpus is counted (``local`` or ``ray``; see
            :func:`~embedlens.corpus.frequencies.count_tokens`).
    """
    check_options(method, dims, metric, color, min_count, seed=seed, perplexity=perplexity, n_neighbors=n_neighbors,
                  min_dist=min_dist, pre_pca=pre_pca, clusters=clusters, x_axis=x_axis, y_axis=y_axis, z_axis=z_axis)
    axes = None
    if method == "axes" and z_axis is not None:
        dims = 3  # a z axis makes the map 3-D
    if method == "axes":  # resolved before any corpus count: a bad axis word fails at once
        from ..reduce.axes import resolve_axes

        axes = resolve_axes(lens, which, [x_axis, y_axis, z_axis])
    timings: dict[str, Any] = {}
    notes: list[str] = []
    space = lens.get_space(which)

    if frequencies is None and (corpus is not None or not all_tokens):
        from ..corpus.frequencies import count_tokens
        from ..corpus.reading import open_corpus

        started = time.perf_counter()
        opened = corpus if isinstance(corpus, Corpus) else open_corpus(
            DEFAULT_CORPUS if corpus is None else ([str(corpus)] if isinstance(corpus, str | os.PathLike)
                                                   else [str(c) for c in corpus]), text_column=text_column)
        frequencies = count_tokens(lens, opened, which=which, progress=progress, engine=engine,
                                   ray_address=ray_address, workers=workers)
        timings["count"] = time.perf_counter() - started
        if frequencies.n_tokens == 0:
            raise EmbedlensError(f"the corpus {', '.join(opened.specs)} produced no tokens")
    if frequencies is not None and frequencies.counts.shape != (len(space),):
        raise EmbedlensError(f"the frequencies have {frequencies.counts.shape[0]} rows but {space.name} has {len(space)}")
    if all_tokens and min_count > 1:
        notes.append("--min-count is ignored with --all (every token is mapped)")
    if color == "frequency" and frequencies is None:
        notes.append("no corpus was read, so there are no frequencies: colouring by token length "
                     "(add --corpus to colour by frequency)")

    started = time.perf_counter()
    counts = frequencies.counts if frequencies is not None else None
    chosen = select_rows(len(space), counts=counts, special=space.special, all_tokens=all_tokens, min_count=min_count)
    rows = chosen.rows
    if rows.size < MIN_POINTS:
        raise EmbedlensError(f"only {rows.size} token(s) left after filtering; a map needs at least {MIN_POINTS} "
                             "(lower --min-count or use a larger corpus)")
    full = rows.size == len(space) and np.array_equal(rows, np.arange(len(space)))
    X = np.asarray(space.vectors if full else space.vectors[rows], dtype=np.float32)
    timings["select"] = time.perf_counter() - started

    from ..reduce import make_reducer

    started = time.perf_counter()
    if axes is not None:
        from ..reduce.axes import AxesReducer

        vectors = [None if a is None else a["vectors"] for a in axes]
        reducer = AxesReducer(x_axis=vectors[0], y_axis=vectors[1], z_axis=vectors[2], n_components=dims,
                              metric=metric, seed=seed)
    else:
        reducer = make_reducer(method, n_components=dims, metric=metric, seed=seed, perplexity=perplexity,
                               n_neighbors=n_neighbors, min_dist=min_dist, pre_pca=pre_pca)
    coords = np.asarray(reducer.fit_transform(X, _cached_graph(lens, which, reducer, rows.size, full, metric)),
                        dtype=np.float32)
    timings["reduce"] = time.perf_counter() - started
    timings["reduce_stages"] = dict(getattr(reducer, "timings_", {}) or {})
    notes.extend(getattr(reducer, "notes_", []) or [])

    quality = None
    quality_sample = QUALITY_SAMPLE  # one recall definition for every map, axes included
    if rows.size > QUALITY_K + 1:
        from ..reduce.quality import projection_quality

        started = time.perf_counter()
        quality = projection_quality(X, coords, k=QUALITY_K, sample=quality_sample, seed=seed, metric=metric,
                                     space_neighbors=getattr(reducer, "neighbors_", None))
        timings["quality"] = time.perf_counter() - started
    else:
        notes.append(f"only {rows.size} points: faithfulness (k={QUALITY_K}) not measured")

    clustering = None
    chosen_clusters = clusters if clusters is not None else ("auto" if method in ("tsne", "umap") else "none")
    if chosen_clusters != "none":
        from .clusters import find_clusters

        started = time.perf_counter()
        graph = getattr(reducer, "neighbors_", None)  # the reducer's full-space graph, when it has one
        clustering = find_clusters(X, clusters=chosen_clusters, metric=metric, seed=seed, coords=coords,
                                   display=[space.display[i] for i in rows] if not full else list(space.display),
                                   frequencies=None if counts is None else np.asarray(counts)[rows],
                                   indices=graph.indices if graph is not None and graph.k >= 10 else None)
        timings["clusters"] = time.perf_counter() - started
        notes.extend(clustering.notes)

    params = {
        "reducer": dict(getattr(reducer, "params_", {}) or {}),
        "selection": chosen.to_dict(),
        "quality": {"k": QUALITY_K, "sample": quality_sample, "seed": seed, "metric": metric,
                    "recall": "neighbour recall@k: sampled queries, neighbours searched over all points, "
                              "in the space and on the map",
                    "trustworthiness": "within the seeded sample"},
        "which": which,
    }
    if axes is not None:
        params["axes"] = {name: {k: v for k, v in a.items() if k != "vectors"}
                          for name, a in zip("xyz", axes, strict=False) if a is not None}
    result = AtlasResult(
        coords=coords,
        ids=np.asarray(space.ids, dtype=np.int64)[rows],
        labels=[space.labels[i] for i in rows] if not full else list(space.labels),
        display=[space.display[i] for i in rows] if not full else list(space.display),
        frequencies=None if counts is None else np.asarray(counts, dtype=np.int64)[rows],
        quality=quality,
        model=lens.manifest(),
        space=space.name,
        method=method,
        dims=dims,
        metric=metric,
        seed=seed,
        color=color,
        size_by_frequency=size_by_frequency,
        params=params,
        corpus=frequencies.corpus if frequencies is not None else None,
        counting={k: v for k, v in frequencies.to_dict().items() if k != "corpus"} if frequencies is not None else None,
        timings=timings,
        notes=notes,
        clustering=clustering,
    )
    if result.is_low_quality() and method != "axes":  # word axes are chosen for meaning, not neighbours
        result.notes.append("this map is not faithful to the neighbourhoods of the space (see the quality figures): "
                            "read clusters with care" + ("; t-SNE or UMAP keep neighbours better" if method == "pca" else ""))
    return result


def _cached_graph(lens: Any, which: str, reducer: Any, n: int, full: bool, metric: str) -> Any:
    """The cached ``embedlens knn`` graph of the whole space when the map covers it and it holds enough
    neighbours (cosine); else None, and the reducer finds (or reuses) its own full-space graph."""
    need = reducer.neighbors_needed(n)
    if not (full and need and metric == "cosine"):
        return None
    from ..neighbors.knn import cached_knn

    try:
        return cached_knn(lens, which, need)
    except EmbedlensError:
        return None


def write_atlas(lens: Any, out_dir: str | Path = "embedlens-map", *, png: bool = True, started: float | None = None,
                timings: dict[str, float] | None = None, renderer: str = "auto", **options: Any) -> AtlasResult:
    """:func:`build_atlas` and save it into ``out_dir`` (map.html, map.png, points.parquet, manifest.json).

    The output folder is checked for writing before any work is done. Keyword options are those of
    :func:`build_atlas`; the result's ``files`` maps each file name to its path. ``started`` (a
    ``time.perf_counter()`` value taken by the caller, e.g. before loading the model) sets where the
    manifest's total time counts from; ``timings`` are earlier stages to record (e.g. ``{"open": 0.4}``).
    ``renderer`` picks what draws map.html: ``plotly``, ``webgl`` or ``auto`` (see :attr:`AtlasResult.renderer`).
    """
    from ..cache import ensure_writable_dir
    from .result import check_renderer

    check_renderer(renderer)

    started = time.perf_counter() if started is None else started
    ensure_writable_dir(out_dir)
    # the writers' libraries, checked before minutes of reduction rather than after
    require("plotly", "map.html", extra="maps", package="plotly")
    require("pyarrow.parquet", "points.parquet", extra="maps", package="pyarrow")
    if png:
        require("matplotlib", "map.png", extra="maps", package="matplotlib")
    result = build_atlas(lens, **options)
    result.renderer = renderer
    result.timings = {**(timings or {}), **result.timings}
    result.save(out_dir, png=png, started=started)
    return result
