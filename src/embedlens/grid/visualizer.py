"""The module-compatible API: ``EmbeddingGridVisualizer`` and ``create_embedding_grid_map``.

Same names, arguments and defaults as the research module ``core_viz.py`` ("Embedding Grid
Visualization"), with one difference in meaning that the module's users asked for: the grid vector v is
the input of block ``layer_idx`` for ONE token at position 0, and blocks ``layer_idx .. n-1``, the final
norm and the LM head run (the module applied the LM head alone). ``layer_idx = n_layers`` decodes v
directly (final norm + unembedding). See :mod:`embedlens.models.forward` and :mod:`embedlens.grid.methods`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..cache import ensure_writable_dir, write_json_atomic
from ..errors import EmbedlensError
from ..models import runtime  # called through the module: tests stand in for it there
from ..render.grid import (
    check_cell_labels,
    write_grid_html,
    write_grid_png,
    write_panel_html,
    write_panel_png,
)
from ..timing import Timings
from ..versions import versions
from . import methods
from .predict import TOP_K, bytes_per_batch_cell, check_memory, decode_extra_bytes, predict_top_k
from .result import GridMap
from .source import GridModel

SEMANTICS = ("v is the input of block layer_idx for a sequence of one token at position 0; blocks "
             "layer_idx..n_layers-1, the final norm and the LM head run; layer_idx = n_layers decodes v directly")


class EmbeddingGridVisualizer:
    """Create 2D grid-based token maps of a language model's hidden space.

    Args:
        model: a loaded transformers causal LM, an embedlens model spec (``"smollm2-135m"``, a folder, a
            ``.gguf``), or a :class:`~embedlens.lens.ModelLens`.
        tokenizer: the model's tokenizer (needed with a transformers model; ignored otherwise).
        layer_idx: the block the grid vectors are fed to: ``0 .. n_layers`` (``n_layers`` = decode directly),
            negative values count from the end; ``None`` = the last block.
        dtype: ``"float32"``, ``"bfloat16"`` (faster on CPUs with bfloat16 matrix units), ``"float16"`` or
            ``"auto"``; None = the process default (``--dtype``), else float32: see
            :func:`embedlens.models.runtime.resolve_dtype`.
        seed: seed of the random projection (42 reproduces the original module's matrix).
    """

    def __init__(self, model: Any = None, tokenizer: Any = None, layer_idx: int | None = None, *,
                 dtype: str | None = None, seed: int = 42, device: str | None = None) -> None:
        self.source = model if isinstance(model, GridModel) else GridModel(model, tokenizer, dtype=dtype, device=device)
        # Shapes and the layer come from the cached metadata: nothing is loaded until a map is computed.
        self.hidden_size = self.source.d_model
        self.n_layers = self.source.n_layers
        self.layer_idx = self.source.check_layer(self.n_layers - 1 if layer_idx is None else layer_idx)
        self._first = self.layer_idx  # the earliest block a computation asked for: blocks before it are not read
        self.seed = int(seed)
        self._embeddings: dict[tuple, methods.GridEmbedding] = {}
        self.top5_ids_: np.ndarray | None = None
        self.top5_probs_: np.ndarray | None = None

    @property
    def tokenizer(self) -> Any:
        return self.source.tokenizer

    @property
    def runner(self) -> Any:
        """The network from the earliest block asked for (only those blocks, the final norm and the head are read)."""
        return self.source.runner_for(self._first)

    @property
    def model(self) -> Any:
        return self.runner.model

    def _from(self, layer: int) -> int:
        self._first = min(self._first, layer)
        return layer

    # -- the module's three steps ----------------------------------------------------------------------

    def create_2d_grid(self, grid_size: int = 100, spacing: float = 0.5,
                       center: tuple[float, float] = (0.0, 0.0)) -> tuple[np.ndarray, np.ndarray]:
        """``(x_coords, y_coords)`` of shape (grid_size, grid_size), centred on ``center``, ``spacing`` apart."""
        return methods.create_2d_grid(grid_size, spacing, center)

    def grid_embedding(self, embedding_method: str = "direct", plane_tokens: Sequence[str] | None = None
                       ) -> methods.GridEmbedding:
        """The affine map (x, y) -> residual vector of a method (cached per method and plane tokens)."""
        method = methods.check_method(embedding_method)
        key = (method, tuple(plane_tokens) if plane_tokens else None)
        if key in self._embeddings:
            return self._embeddings[key]
        d = self.hidden_size
        if method == "direct":
            emb = methods.direct(d)
        elif method == "replicated":
            emb = methods.replicated(d)
        elif method == "random_projection":
            emb = methods.random_projection(d, self.seed)
        else:
            if method == "pca":
                emb = methods.pca(self.source.embedding_matrix(), self.source.special)
            else:
                emb = self._token_plane(plane_tokens)
            pos0 = self.runner.position0()
            emb = methods.to_input_space(emb, self.runner.input_scale(),
                                   None if pos0 is None else pos0.detach().float().cpu().numpy())
        self._embeddings[key] = emb
        return emb

    def _token_plane(self, plane_tokens: Sequence[str] | None) -> methods.GridEmbedding:
        ids = self._plane_ids(plane_tokens)
        matrix = self.source.embedding_matrix()
        vecs = [np.asarray(matrix[i], dtype=np.float32) for i in ids]
        return methods.token_plane(*vecs, ids=ids, labels=[self.source.display[i] for i in ids])

    def _plane_ids(self, plane_tokens: Sequence[str] | str | None) -> list[int]:
        if isinstance(plane_tokens, str):
            plane_tokens = plane_tokens.split(",")
        if not plane_tokens or len(plane_tokens) != 3:
            got = 0 if not plane_tokens else len(plane_tokens)
            raise EmbedlensError(f"the tokens method needs exactly three plane tokens A,B,C (got {got}): "
                                 "e.g. `plane_tokens=king,queen,man`")
        return [self.source.resolve_token(q) for q in plane_tokens]

    def embed_2d_coordinates(self, x_coords: np.ndarray, y_coords: np.ndarray, embedding_method: str = "direct",
                             *, plane_tokens: Sequence[str] | None = None) -> Any:
        """Residual vectors for grid coordinates: a float32 tensor of shape ``x_coords.shape + (hidden_size,)``."""
        x = np.asarray(x_coords)
        y = np.asarray(y_coords)
        if x.shape != y.shape:
            raise EmbedlensError(f"x and y coordinates differ in shape: {x.shape} vs {y.shape}")
        emb = self.grid_embedding(embedding_method, plane_tokens)
        return emb.vectors(x.reshape(-1), y.reshape(-1)).reshape(*x.shape, self.hidden_size)

    def predict_tokens_for_grid(self, embeddings: Any, batch_size: int = 100, *, layer_idx: int | None = None
                                ) -> tuple[np.ndarray, np.ndarray]:
        """Most likely next token and its probability for every vector: ``(token_ids, probs)``.

        Args:
            embeddings: tensor or array of shape (..., hidden_size), e.g. (grid_size, grid_size, hidden_size).
            batch_size: vectors per forward pass.
            layer_idx: overrides the visualizer's layer for this call.

        The top-5 of every cell are kept in ``top5_ids_`` and ``top5_probs_`` (shape (..., 5)).
        """
        import torch

        emb = torch.as_tensor(embeddings)
        if emb.shape[-1] != self.hidden_size:
            raise EmbedlensError(f"embeddings must end in hidden size {self.hidden_size}, got shape {tuple(emb.shape)}")
        lead = tuple(emb.shape[:-1])
        flat = emb.reshape(-1, self.hidden_size)
        layer = self._from(self.layer_idx if layer_idx is None else self.source.check_layer(layer_idx))
        n = flat.shape[0]
        self._check_memory(batch_size, n)
        ids, probs, _ = predict_top_k(self.runner, lambda s, e: flat[s:e], n, layer, batch_size=batch_size)
        self.top5_ids_ = ids.reshape(*lead, ids.shape[1])
        self.top5_probs_ = probs.reshape(*lead, probs.shape[1])
        return ids[:, 0].reshape(lead), probs[:, 0].reshape(lead)

    # -- the whole map, memory-lean ----------------------------------------------------------------------

    def _check_memory(self, batch_size: int, n_cells: int) -> int:
        cfg = self.model.config
        d_ff = int(getattr(cfg, "intermediate_size", None) or getattr(cfg, "n_inner", None) or 4 * self.hidden_size)
        elem = 2 if str(self.runner.dtype).endswith(("bfloat16", "float16")) else 4

        free = runtime.free_memory(self.source.device) if self.source.device.startswith("cuda") else None
        n_vocab = self.runner.n_vocab
        device = self.runner.device.type
        return check_memory(batch_size, n_cells, bytes_per_batch_cell(self.hidden_size, d_ff, n_vocab, elem),
                            available=free,
                            extra=lambda b: decode_extra_bytes(b, n_cells, n_vocab, elem, device=device))

    def compute_map(self, grid_size: int = 50, spacing: float = 0.5, embedding_method: str = "random_projection",
                    *, center: tuple[float, float] = (0.0, 0.0), layer_idx: int | None = None, batch_size: int = 100,
                    plane_tokens: Sequence[str] | None = None, progress: bool | None = None) -> GridMap:
        """The token grid map of one layer; grid vectors are built batch by batch (memory: one batch of block
        activations and one decode block of logits, :func:`~embedlens.grid.predict.check_memory`)."""
        timings = Timings()
        with timings.stage("prepare"):
            grid_size, spacing = methods.check_grid(grid_size, spacing)
            method = methods.check_method(embedding_method)
            layer = self._from(self.layer_idx if layer_idx is None else self.source.check_layer(layer_idx))
            if method == "tokens":
                self._plane_ids(plane_tokens)  # bad plane tokens are refused before any weight is read
            n = grid_size * grid_size
            peak = self._check_memory(batch_size, n)
            x_grid, y_grid = methods.create_2d_grid(grid_size, spacing, center)
            x, y = x_grid.ravel(), y_grid.ravel()  # row-major: x varies fastest
            emb = self.grid_embedding(method, plane_tokens)
        ids, probs, predict_s = predict_top_k(self.runner, lambda s, e: emb.vectors(x[s:e], y[s:e]), n, layer,
                                              batch_size=min(batch_size, n), progress=progress)
        if not np.isfinite(probs).all():  # e.g. a centre of 1e300: the vectors overflow the model's arithmetic
            bad = int((~np.isfinite(probs)).reshape(n, -1).any(axis=1).sum())
            raise EmbedlensError(f"{bad} of {n} grid points overflowed the model's {self.source.dtype_name} arithmetic "
                                 f"(centre {center}, spacing {spacing:g}): use a smaller `center` or `spacing`")
        raw, disp = self.source.strings_of(ids)
        config = self._config(grid_size, spacing, method, center, layer, batch_size, plane_tokens, emb)
        config["timings"] = {"prepare_s": round(timings["prepare"], 4), "predict_s": round(predict_s, 4),
                             "cells_per_s": round(n / max(predict_s, 1e-9), 1)}
        config["estimated_peak_batch_bytes"] = int(peak)
        return GridMap(config, grid_size, layer, method, x, y, ids, probs, raw, disp)

    def _config(self, grid_size, spacing, method, center, layer, batch_size, plane_tokens, emb) -> dict[str, Any]:
        info = self.source.describe()
        return {
            **info,
            "layer_idx": int(layer),
            "n_layers": int(self.n_layers),
            "grid_size": int(grid_size),
            "spacing": float(spacing),
            "center": [float(center[0]), float(center[1])],
            "embedding_method": method,
            "plane_tokens": list(plane_tokens) if plane_tokens else None,
            "batch_size": int(batch_size),
            "seed": self.seed,
            "dtype": self.source.dtype_name,
            "device": self.source.device,
            "loaded": self.source.loaded(),
            "top_k": TOP_K,
            "method_info": emb.info,
            "semantics": SEMANTICS,
            "cell_order": "row-major: cell k = i * grid_size + j has y = y_1d[i], x = x_1d[j]",
            "versions": versions(),
        }


# -- the one-call pipeline -------------------------------------------------------------------------------


@dataclass
class GridMapOutput:
    """What :func:`create_embedding_grid_map` wrote. ``out["visualization_path"]`` works as in the module."""

    maps: list[GridMap]
    visualization_path: str | None
    results_path: str
    html_path: str | None
    panel_paths: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    manifest_path: str | None = None

    @property
    def results(self) -> dict[str, Any]:
        return self.maps[0].to_dict()

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def to_dict(self) -> dict[str, Any]:
        return {"visualization_path": self.visualization_path, "results_path": self.results_path,
                "html_path": self.html_path, "panel_paths": self.panel_paths, "files": self.files,
                "manifest_path": self.manifest_path,
                "layers": [m.layer for m in self.maps]}


def file_stem(layer: int, grid_size: int, method: str) -> str:
    return f"embedding_grid_layer_{layer}_size_{grid_size}_method_{method}"


def parse_grid_layers(layer_idx: Any) -> list[int | None]:
    """``None``, an int, ``"0,10,-1"`` or a sequence of ints -> a list of layer indexes (None = last block)."""
    if layer_idx is None:
        return [None]
    if isinstance(layer_idx, str):
        items = [s.strip() for s in layer_idx.split(",")]
        try:
            return [int(s) for s in items]
        except ValueError:
            raise EmbedlensError(f"`layer_idx` must be integers separated by commas, got '{layer_idx}'") from None
    if isinstance(layer_idx, int | np.integer):
        return [int(layer_idx)]
    return [int(v) for v in layer_idx]


def create_embedding_grid_map(
    model_name: Any = None,
    layer_idx: int | str | Sequence[int] | None = None,
    grid_size: int = 100,
    spacing: float = 0.5,
    embedding_method: str = "random_projection",
    output_dir: str | Path = "embedding_grid_results",
    batch_size: int = 100,
    max_display_size: int = 50,
    figsize: tuple[float, float] = (20, 20),
    *,
    model: Any = None,
    tokenizer: Any = None,
    center: tuple[float, float] = (0.0, 0.0),
    plane_tokens: Sequence[str] | str | None = None,
    seed: int = 42,
    dtype: str | None = None,
    device: str | None = None,
    png: bool = True,
    html: bool = True,
    dpi: int = 150,
    progress: bool | None = None,
    cell_labels: str | None = None,
) -> GridMapOutput:
    """Compute a token grid map and write the PNG, the interactive HTML and the JSON results.

    Args:
        model_name: an embedlens model spec or a :class:`~embedlens.lens.ModelLens` (default smollm2-135m);
            or pass a loaded transformers ``model=`` with its ``tokenizer=``.
        layer_idx: block index (negative from the end; ``n_layers`` = decode directly), ``None`` = last block,
            or several (``[0, 10, 20, 30]`` or ``"0,10,20,30"``) for a side-by-side layer panel as well.
        grid_size, spacing, center: the grid (grid_size x grid_size points, spacing apart).
        embedding_method: random_projection, direct, replicated, pca or tokens (with ``plane_tokens=A,B,C``).
        output_dir: where ``embedding_grid_layer_{L}_size_{N}_method_{M}.png/.html`` and
            ``embedding_grid_results_layer_{L}.json`` go (plus ``manifest.json``).
        max_display_size: at most this many token labels per axis in the PNG (larger grids label every k-th cell).
        cell_labels: ``cells`` (each cell's token), ``regions`` (each connected region of cells sharing a top
            token named once, sized by area) or ``both``; default ``both`` above 40x40, else ``cells``.

    Returns:
        :class:`GridMapOutput` (``out["visualization_path"]``, ``out["results_path"]``, ``out.maps``).
    """
    timings = Timings()
    with timings.stage("open"):  # the model opened (extracted on first use)
        options = check_grid_options(layer_idx, grid_size, spacing, embedding_method, batch_size, plane_tokens,
                                     cell_labels)
        out_dir = ensure_writable_dir(output_dir)
        viz = EmbeddingGridVisualizer(model if model is not None else model_name, tokenizer, options["layers"][0],
                                      dtype=dtype, seed=seed, device=device)
    maps, load_s = compute_grid_maps(viz, options["layers"], options["grid_size"], options["spacing"],
                                     options["method"], center=center, batch_size=batch_size,
                                     plane_tokens=options["plane_tokens"], progress=progress)
    with timings.stage("render"):
        written = write_grid_maps(maps, out_dir, png=png, html=html, max_display_size=max_display_size,
                                  figsize=figsize, dpi=dpi, cell_labels=options["cell_labels"])

    manifest = {
        **{k: v for k, v in maps[0].config.items() if k not in ("layer_idx", "timings", "method_info")},
        "layers": [m.layer for m in maps],
        "method_info": maps[0].config["method_info"],
        "cell_labels": options["cell_labels"],
        "files": [Path(f).name for f in written["files"]],
        "versions": versions(),
        "timings": {"load_s": round(load_s + timings["open"], 3), "render_s": round(timings["render"], 3),
                    "per_layer": {str(m.layer): m.config["timings"] for m in maps},
                    "total_s": round(timings.since_start(), 3)},
    }
    manifest_path = write_json_atomic(out_dir / "manifest.json", manifest)
    return GridMapOutput(maps, written["png"], written["results"], written["html"], written["panels"],
                         written["files"], str(manifest_path))


def check_grid_options(layer_idx: Any, grid_size: int, spacing: float, embedding_method: str, batch_size: int,
                       plane_tokens: Sequence[str] | str | None, cell_labels: str | None) -> dict[str, Any]:
    """Every grid option checked and normalised before any model is opened (stage 1 of the pipeline)."""
    layers = parse_grid_layers(layer_idx)
    grid_size, spacing = methods.check_grid(grid_size, spacing)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer) or batch_size < 1:
        raise EmbedlensError(f"`batch_size` must be an integer >= 1, got {batch_size!r}")
    method = methods.check_method(embedding_method)
    if isinstance(plane_tokens, str):
        plane_tokens = list(plane_tokens.split(","))
    if method == "tokens" and (not plane_tokens or len(plane_tokens) != 3):
        raise EmbedlensError("the tokens method needs `plane_tokens=A,B,C` (exactly three tokens)")
    return {"layers": layers, "grid_size": grid_size, "spacing": spacing, "method": method,
            "plane_tokens": plane_tokens, "cell_labels": check_cell_labels(cell_labels, grid_size)}


def compute_grid_maps(viz: EmbeddingGridVisualizer, layers: list[int | None], grid_size: int, spacing: float,
                      method: str, *, center: tuple[float, float] = (0.0, 0.0), batch_size: int = 100,
                      plane_tokens: Sequence[str] | None = None, progress: bool | None = None,
                      ) -> tuple[list[GridMap], float]:
    """The grid map at each distinct layer (stage 2), and the seconds spent loading blocks.

    -1 and 29 are the same block of a 30-block model: it is computed once. Every layer and the plane
    tokens are checked from the cached metadata before any weight is read; then the blocks from the
    lowest layer on are loaded once for all layers.
    """
    timings = Timings()
    with timings.stage("load"):
        resolved = list(dict.fromkeys(viz.source.check_layer(viz.n_layers - 1 if v is None else v) for v in layers))
        if method == "tokens":
            viz._plane_ids(plane_tokens)
        viz._from(min(resolved))
        viz.runner  # noqa: B018 - load blocks min(resolved).. now, so the load time measures it
    maps = [viz.compute_map(grid_size, spacing, method, center=center, layer_idx=lay, batch_size=batch_size,
                            plane_tokens=plane_tokens, progress=progress) for lay in resolved]
    return maps, timings["load"]


def write_grid_maps(maps: list[GridMap], out_dir: Path, *, png: bool = True, html: bool = True,
                    max_display_size: int = 50, figsize: tuple[float, float] = (20, 20), dpi: int = 150,
                    cell_labels: str = "cells") -> dict[str, Any]:
    """Each map's PNG, HTML and JSON results, and the side-by-side panel of several layers (stage 3).

    Returns the paths: ``png`` / ``html`` / ``results`` of the first map, ``panels``, and every ``files``.
    """
    grid_size, method = maps[0].grid_size, maps[0].method
    files: list[str] = []
    for gm in maps:
        stem = out_dir / file_stem(gm.layer, grid_size, method)
        if png:
            write_grid_png(gm, stem.with_suffix(".png"), max_display_size=max_display_size, figsize=figsize, dpi=dpi,
                             cell_labels=cell_labels)
            files.append(str(stem.with_suffix(".png")))
        if html:
            write_grid_html(gm, stem.with_suffix(".html"), cell_labels=cell_labels)
            files.append(str(stem.with_suffix(".html")))
        gm.save(out_dir / f"embedding_grid_results_layer_{gm.layer}.json")
        files.append(str(out_dir / f"embedding_grid_results_layer_{gm.layer}.json"))
    first = out_dir / file_stem(maps[0].layer, grid_size, method)
    panel_paths: list[str] = []
    if len(maps) > 1:
        tag = "-".join(str(m.layer) for m in maps)
        panel = out_dir / f"embedding_grid_layers_{tag}_size_{grid_size}_method_{method}"
        if png:
            write_panel_png(maps, panel.with_suffix(".png"), max_display_size=max_display_size, dpi=dpi,
                              cell_labels=cell_labels)
            panel_paths.append(str(panel.with_suffix(".png")))
        if html:
            write_panel_html(maps, panel.with_suffix(".html"))
            panel_paths.append(str(panel.with_suffix(".html")))
        files.extend(panel_paths)
    return {"png": str(first.with_suffix(".png")) if png else None,
            "html": str(first.with_suffix(".html")) if html else None,
            "results": str(out_dir / f"embedding_grid_results_layer_{maps[0].layer}.json"),
            "panels": panel_paths, "files": files}
