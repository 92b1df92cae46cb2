"""Tiny checkpoints in every layout the scale work reads: single safetensors, shards with an index, a
``.bin``, and padded vocabularies (more embedding rows than tokenizer tokens), for five families."""

from __future__ import annotations

from pathlib import Path

PADDED = 20  # rows past the tokenizer in the padded families (Qwen2, Gemma 3)


def tiny_config(kind: str, vocab: int):
    from transformers import BertConfig, Gemma3TextConfig, GPT2Config, LlamaConfig, Qwen2Config

    common = {"bos_token_id": 0, "eos_token_id": 0}
    if kind == "gpt2":
        return GPT2Config(vocab_size=vocab, n_positions=64, n_embd=32, n_layer=3, n_head=2, **common)
    if kind == "llama":
        return LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=4,
                           num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                           tie_word_embeddings=False, **common)
    if kind == "qwen2":
        return Qwen2Config(vocab_size=vocab + PADDED, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                           num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                           tie_word_embeddings=True, **common)
    if kind == "gemma3":
        return Gemma3TextConfig(vocab_size=vocab + PADDED, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                                num_attention_heads=2, num_key_value_heads=1, head_dim=16, max_position_embeddings=64,
                                sliding_window=8, final_logit_softcapping=30.0, pad_token_id=0, **common)
    if kind == "bert":
        return BertConfig(vocab_size=vocab, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                          intermediate_size=64, max_position_embeddings=64)
    raise ValueError(kind)  # pragma: no cover


def build_checkpoint(folder: Path, kind: str, layout: str = "single") -> Path:
    """Write a tiny random ``kind`` model into ``folder`` as ``single`` / ``sharded`` safetensors or ``bin``."""
    import torch
    from transformers import AutoModel, AutoModelForCausalLM

    from .conftest import _train_tokenizer

    torch.manual_seed(0)
    folder.mkdir(parents=True, exist_ok=True)
    tok = _train_tokenizer(folder, wordpiece=(kind == "bert"))
    cfg = tiny_config(kind, len(tok))
    cls = AutoModel if kind == "bert" else AutoModelForCausalLM
    model = cls.from_config(cfg)
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params < 120_000, f"tiny {kind} grew to {n_params} parameters"
    if layout == "bin":
        model.config.architectures = [type(model).__name__]
        model.config.save_pretrained(str(folder))
        state = {k: v.contiguous() for k, v in model.state_dict().items()}
        if cfg.tie_word_embeddings and kind != "bert":
            state.pop("lm_head.weight", None)
        torch.save(state, folder / "pytorch_model.bin")
    else:
        model.save_pretrained(str(folder), max_shard_size="40KB" if layout == "sharded" else "10GB")
    if layout == "sharded":
        assert (folder / "model.safetensors.index.json").is_file()
    model.eval()
    return folder
