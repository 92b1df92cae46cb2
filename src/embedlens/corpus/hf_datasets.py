"""Hugging Face datasets as corpora, from local files only: ``hf:NAME[:CONFIG][:SPLIT]`` or ``hf:FOLDER[:SPLIT]``.

A folder written by ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk`` is read straight from its
Arrow files (its ``state.json`` lists them; the ``datasets`` package is not needed). A name is looked up
in the local datasets cache with ``HF_DATASETS_OFFLINE=1``: embedlens never downloads a dataset.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import EmbedlensError

HOW_TO_SAVE = ("on a machine that can download it, run python -c \"import datasets; "
               "datasets.load_dataset('{name}'{config}).save_to_disk('FOLDER')\" and pass hf:FOLDER")


def _split_of(splits: list[str], split: str | None, what: str) -> str:
    if split is not None:
        if split not in splits:
            raise EmbedlensError(f"{what} has no split '{split}' (its splits: {', '.join(splits)})")
        return split
    if "train" in splits:
        return "train"
    if len(splits) == 1:
        return splits[0]
    raise EmbedlensError(f"{what} has several splits ({', '.join(splits)}): name one, as hf:...:SPLIT")


def _saved_files(folder: Path, split: str | None, spec: str) -> list[Path]:
    if (folder / "dataset_dict.json").is_file():
        splits = list(json.loads((folder / "dataset_dict.json").read_text())["splits"])
        folder = folder / _split_of(splits, split, spec)
    elif split is not None:
        raise EmbedlensError(f"{spec}: {folder} holds one dataset, not splits; drop ':{split}'")
    state = folder / "state.json"
    if not state.is_file():
        raise EmbedlensError(f"{folder} is not a dataset saved with save_to_disk (no state.json or dataset_dict.json)")
    files = [folder / f["filename"] for f in json.loads(state.read_text()).get("_data_files", [])]
    missing = [str(p) for p in files if not p.is_file()]
    if missing or not files:
        raise EmbedlensError(f"the saved dataset {folder} is incomplete: missing {', '.join(missing) or 'its data files'}")
    return files


def _cached_files(name: str, config: str | None, split: str | None, spec: str) -> list[Path]:
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import datasets
    except ImportError:
        raise EmbedlensError(f"reading {spec} from the datasets cache needs the datasets package: "
                             "pip install datasets (or pass a folder saved with save_to_disk)") from None
    datasets.config.HF_DATASETS_OFFLINE = True
    datasets.config.HF_HUB_OFFLINE = True
    datasets.logging.set_verbosity_error()  # not "using the latest cached version" on every run
    how = HOW_TO_SAVE.format(name=name, config=f", '{config}'" if config else "")
    try:
        ds = datasets.load_dataset(name, config, split=split)
    except Exception as exc:  # datasets raises many types (ConnectionError, FileNotFoundError, DatasetNotFoundError)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EmbedlensError(f"dataset {name}{':' + config if config else ''} is not in the local datasets cache "
                             f"({first[:120]}); embedlens never downloads: {how}") from None
    if isinstance(ds, datasets.DatasetDict):
        ds = ds[_split_of(list(ds), split, spec)]
    files = [Path(f["filename"]) for f in ds.cache_files]
    if not files:
        raise EmbedlensError(f"dataset {name} is held in memory, not in cache files; save it with save_to_disk "
                             "and pass hf:FOLDER")
    return files


def dataset_files(spec: str) -> list[Path]:
    """The Arrow files of an ``hf:`` corpus spec, in order."""
    rest = spec[3:]
    if not rest:
        raise EmbedlensError("hf: needs a dataset name or a save_to_disk folder, as hf:NAME[:CONFIG][:SPLIT]")
    parts = rest.split(":")
    folder = Path(parts[0]).expanduser()
    if folder.is_dir():
        if len(parts) > 2:
            raise EmbedlensError(f"{spec}: a saved dataset folder takes at most a split, as hf:FOLDER[:SPLIT]")
        return _saved_files(folder, parts[1] if len(parts) > 1 and parts[1] else None, spec)
    if len(parts) > 3:
        raise EmbedlensError(f"{spec} is not hf:NAME[:CONFIG][:SPLIT]")
    name = parts[0]
    config = parts[1] or None if len(parts) > 1 else None
    split = parts[2] or None if len(parts) > 2 else None
    return _cached_files(name, config, split, spec)
