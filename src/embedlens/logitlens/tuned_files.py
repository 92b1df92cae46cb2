"""Saving and reading tuned lenses: embedlens' format, the ``tuned-lens`` package's, and the model's cache entry.

embedlens' format is a folder with ``tuned_lens.safetensors`` (``layers.{l}.weight`` d x d and
``layers.{l}.bias`` d, float32) and ``manifest.json``. The ``tuned-lens`` package's is a folder with
``config.json`` (``TunedLensConfig``: ``d_model``, ``num_hidden_layers``, ``bias``, ``unembed_hash``, ...) and
``params.pt``: the state dict of its ``layer_translators`` ``ModuleList`` (``{l}.weight``, ``{l}.bias``),
read with ``torch.load(weights_only=True)`` so that nothing in the file executes. Both hold the same
translator ``h + h @ W.T + b`` for the same layers, so a lens moves between them unchanged.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..cache import atomic_dir, atomic_path, write_json_atomic
from ..errors import EmbedlensError
from ..safetensors_mmap import write_tensors
from .translators import LogitLens, TunedLens

log = logging.getLogger("embedlens")

WEIGHTS_FILE = "tuned_lens.safetensors"
MANIFEST_FILE = "manifest.json"
PACKAGE_FILES = ("config.json", "params.pt")
CACHE_SUBDIR = "tuned_lens"
DECODERS = ("logit", "tuned")


def save_tuned_lens(tuned: TunedLens, folder: str | Path) -> Path:
    """Write ``tuned_lens.safetensors`` and ``manifest.json`` into ``folder`` (replaced as a whole, atomically)."""
    tensors = {}
    for layer in range(tuned.n_layers):
        tensors[f"layers.{layer}.weight"] = tuned.weight[layer]
        tensors[f"layers.{layer}.bias"] = tuned.bias[layer]
    with atomic_dir(folder) as tmp:
        write_tensors(tensors, tmp / WEIGHTS_FILE, metadata={"format": "embedlens-tuned-lens",
                                                             "n_layers": str(tuned.n_layers)})
        write_json_atomic(tmp / MANIFEST_FILE, {"format": "embedlens tuned lens", **tuned.manifest})
    return Path(folder)


def _read_ours(path: Path) -> TunedLens:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    weights = path if path.is_file() else path / WEIGHTS_FILE
    try:
        tensors = load_file(str(weights))
    except (SafetensorError, OSError) as exc:
        raise EmbedlensError(f"{weights} is not a readable safetensors file ({exc})") from None
    manifest_path = weights.parent / MANIFEST_FILE
    manifest = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.exists() else {}
    layers = sorted({int(k.split(".")[1]) for k in tensors if k.startswith("layers.") and k.count(".") == 2})
    if not layers or layers != list(range(len(layers))):
        raise EmbedlensError(f"{weights} holds no tuned lens: expected tensors layers.0.weight, layers.0.bias, ...")
    try:
        weight = np.stack([tensors[f"layers.{v}.weight"] for v in layers])
        bias = np.stack([tensors[f"layers.{v}.bias"] for v in layers])
    except (KeyError, ValueError) as exc:
        raise EmbedlensError(f"{weights} is not a complete tuned lens ({exc})") from None
    manifest.pop("format", None)
    return TunedLens(weight, bias, {**manifest, "path": str(weights.parent)})


def write_tuned_lens_package(tuned: TunedLens, folder: str | Path, *, base_model_name_or_path: str | None = None,
                             unembed_hash: str | None = None) -> Path:
    """Write ``config.json`` + ``params.pt`` as the ``tuned-lens`` package saves a ``TunedLens``."""
    import torch

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = tuned.manifest.get("model") or {}
    config = {"base_model_name_or_path": base_model_name_or_path or str(model.get("spec") or model.get("name") or ""),
              "d_model": tuned.d_model, "num_hidden_layers": tuned.n_layers, "bias": True,
              "base_model_revision": None, "unembed_hash": unembed_hash, "lens_type": "linear_tuned_lens"}
    state = {}
    for layer in range(tuned.n_layers):
        state[f"{layer}.weight"] = torch.from_numpy(tuned.weight[layer].copy())
        state[f"{layer}.bias"] = torch.from_numpy(tuned.bias[layer].copy())
    with atomic_path(folder / "params.pt") as tmp:
        torch.save(state, tmp)
    write_json_atomic(folder / "config.json", config)
    return folder


def _read_package(folder: Path) -> TunedLens:
    import torch

    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        state = torch.load(folder / "params.pt", map_location="cpu", weights_only=True)
    except (OSError, ValueError, RuntimeError) as exc:
        raise EmbedlensError(f"{folder} is not a readable tuned-lens folder ({str(exc).splitlines()[0]})") from None
    lens_type = config.get("lens_type", "linear_tuned_lens")
    if lens_type != "linear_tuned_lens":
        raise EmbedlensError(f"{folder} holds a {lens_type!r} lens; only linear_tuned_lens translators can be read")
    n, d = int(config.get("num_hidden_layers", -1)), int(config.get("d_model", -1))
    try:
        weight = np.stack([state[f"{v}.weight"].float().numpy() for v in range(n)])
        bias = np.stack([state[f"{v}.bias"].float().numpy() if f"{v}.bias" in state else np.zeros(d, np.float32)
                         for v in range(n)])
    except (KeyError, ValueError, TypeError) as exc:
        raise EmbedlensError(f"{folder}/params.pt does not hold {n} translators of width {d} ({exc})") from None
    manifest = {"source": "tuned-lens package", "path": str(folder), "tuned_lens_config": config}
    return TunedLens(weight, bias, manifest)


def read_tuned_lens(path: str | Path) -> TunedLens:
    """A tuned lens from a folder or file in either format (embedlens' safetensors or the tuned-lens package's)."""
    p = Path(path)
    if p.is_dir() and all((p / f).exists() for f in PACKAGE_FILES):
        return _read_package(p)
    if (p.is_dir() and (p / WEIGHTS_FILE).exists()) or (p.is_file() and p.suffix == ".safetensors"):
        return _read_ours(p)
    if not p.exists():
        raise EmbedlensError(f"no such tuned lens: {path}")
    raise EmbedlensError(f"{path} holds no tuned lens: expected {WEIGHTS_FILE} (+ {MANIFEST_FILE}) or the tuned-lens "
                         f"package's {' + '.join(PACKAGE_FILES)}")


def cached_folder(model: Any) -> Path:
    """Where a model's trained tuned lens is kept: inside its cache entry."""
    return Path(model.entry.folder) / CACHE_SUBDIR


def unembed_hash(net: Any) -> str:
    """The ``tuned-lens`` package's fingerprint of the unembedding matrix (``tuned_lens.utils.tensor_hash``)."""
    import hashlib

    w = net.get_output_embeddings().weight.detach().float().cpu().numpy()
    return hashlib.sha256(str.encode(np.array_str(w, precision=1))).hexdigest()


def resolve_decoder(decoder: Any, model: Any) -> LogitLens | TunedLens:
    """The decoder named by ``decoder``, checked against ``model`` (a :class:`~embedlens.lens.ModelLens`).

    Args:
        decoder: ``"logit"`` (or None), ``"tuned"`` (the tuned lens cached for this model by
            :func:`~embedlens.tunedlens.train_tuned_lens`), a path (either format), or a :class:`TunedLens`.
    """
    if decoder is None or isinstance(decoder, LogitLens) or decoder == "logit":
        return LogitLens()
    if isinstance(decoder, TunedLens):
        tuned = decoder
    elif decoder == "tuned":
        folder = cached_folder(model)
        if not (folder / WEIGHTS_FILE).exists():
            raise EmbedlensError(f"{model.name} has no tuned lens yet: train one with train_tuned_lens (it is cached "
                                 "for this model), or give a lens file as decoder")
        tuned = _read_ours(folder)
    elif isinstance(decoder, str | Path):
        tuned = read_tuned_lens(decoder)
    else:
        raise EmbedlensError(f"decoder must be 'logit', 'tuned', a lens path or a TunedLens, got {decoder!r}")
    meta = model.meta
    tuned.check_model(int(meta["n_layers"]), int(meta["d_model"]), meta.get("content_hash"), model.name)
    return tuned


def check_unembed_hash(tuned: TunedLens, net: Any, name: str) -> None:
    """A note (as the tuned-lens package warns) when a package lens records another unembedding's hash."""
    recorded = (tuned.manifest.get("tuned_lens_config") or {}).get("unembed_hash")
    if recorded and recorded != unembed_hash(net):
        log.warning("the tuned lens %s records an unembedding hash that differs from %s's: it may have been "
                    "trained for another model", tuned.manifest.get("path"), name)
