"""Run a causal LM from block ``L`` on given residual vectors: the engine behind the token grid map.

Semantics (the same for every architecture): a vector ``v`` of shape (d_model,) is the **input of block
L** for a sequence of ONE token at position 0. Blocks ``L .. n_layers - 1`` run, then the final norm and
the LM head give the next-token logits. ``L = n_layers`` runs no block: the logits are
``lm_head(final_norm(v))``, a logit lens of ``v``. Many vectors run at once as a batch of independent
one-token sequences, so memory grows with the batch only.

What "the input of block 0" means per family (see :meth:`BlockRunner.token_input`):
  * GPT-2: ``wte[t] + wpe[0]`` (the learned position embedding of position 0 is part of block 0's input,
    added by ``GPT2Model.forward`` before the first block); nothing is added to ``v`` here, at any L.
  * Llama / Qwen2 / Mistral: ``embed_tokens[t]``; rotary position embeddings for position 0 are computed
    with the model's own ``rotary_emb`` and passed to every block as ``position_embeddings``.
  * Gemma 3: ``embed_tokens[t] * sqrt(d_model)`` (the model's scaled embedding, rounded to the weight
    dtype as the model does); each block gets the rotary embedding of its layer type (sliding-window or
    global attention), and the final logits are soft-capped when the config says so.
  * BERT and other encoders: refused (no LM head, not causal).

With a single position no attention mask is needed: every query sees exactly its own key, so attention
is ``softmax`` over one score (= 1) for sliding-window and global layers alike. Blocks are the model's
own modules, called directly with the arguments their ``forward`` expects in transformers 5.x.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import EmbedlensError
from .architectures import ModelParts, execution_device, get_path, model_parts
from .model_handle import ModelHandle

_ROTARY = ("llama", "gemma3")


def check_layer_index(layer: int, n: int) -> int:
    """``layer`` as a block index in ``0 .. n`` for a model of ``n`` blocks; negative values count from the end.

    Needs only the block count (from the cached metadata), so a bad index is refused before any weight is read.
    """
    import numbers

    if isinstance(layer, bool) or not isinstance(layer, numbers.Integral):
        raise EmbedlensError(f"layer index must be an integer, got {layer!r}")
    layer = int(layer)
    idx = layer + n if layer < 0 else layer
    if not 0 <= idx <= n:
        raise EmbedlensError(
            f"layer index {layer} is out of range for a model with {n} blocks: use 0..{n} "
            f"({n} decodes directly) or -{n}..-1 from the end"
        )
    return idx


class BlockRunner:
    """Next-token logits of residual vectors fed at block ``L`` (one token at position 0 per vector).

    Args:
        model: a loaded transformers causal LM (``GPT2LMHeadModel``, ``LlamaForCausalLM``, ...), in eval mode.
    """

    def __init__(self, model: Any) -> None:
        parts = model_parts(model)
        if not parts.arch.causal or parts.unembed is None:
            raise EmbedlensError(
                f"{type(model).__name__} ({parts.arch.family}) is an encoder-only model without an LM head: "
                "the grid map needs a causal language model (e.g. smollm2-135m)"
            )
        self.parts: ModelParts = parts
        self.model = model
        self.config = model.config
        self.family = parts.arch.family
        self.softcap = getattr(self.config, "final_logit_softcapping", None)
        self._rotary_cache: dict[Any, Any] = {}

    # -- facts -------------------------------------------------------------------------------------

    @property
    def n_layers(self) -> int:
        return self.parts.n_layers

    @property
    def d_model(self) -> int:
        return self.parts.d_model

    @property
    def dtype(self) -> Any:
        return self.parts.unembed.weight.dtype

    @property
    def device(self) -> Any:
        """Where the head computes (inputs are moved there; for an offloaded head, where it is brought to)."""
        return execution_device(self.parts.unembed)

    @property
    def n_vocab(self) -> int:
        return int(self.parts.unembed.weight.shape[0])

    def check_layer(self, layer: int) -> int:
        """``layer`` as an index in ``0 .. n_layers``; negative values count from the end (-1 = last block)."""
        return check_layer_index(layer, self.n_layers)

    def block_params(self, layer: int) -> int:
        """Parameters of the blocks that run from ``layer`` (for FLOP counts)."""
        idx = self.check_layer(layer)
        return int(sum(p.numel() for b in self.parts.blocks[idx:] for p in b.parameters()))

    def flops_per_vector(self, layer: int) -> int:
        """Matrix-multiply FLOPs per vector: 2 x block parameters run + 2 x d_model x vocab."""
        return 2 * self.block_params(layer) + 2 * self.d_model * self.n_vocab

    # -- inputs ------------------------------------------------------------------------------------

    def input_scale(self) -> float:
        """The factor the model applies to a token embedding before block 0 (sqrt(d) for Gemma, else 1)."""
        return float(self.parts.embed_scale)

    def position0(self) -> Any | None:
        """GPT-2's learned position embedding of position 0, shape (d_model,); None for rotary models."""
        if self.parts.arch.position is None:
            return None

        return get_path(self.parts.base, self.parts.arch.position).weight[0]

    def embedding_to_input(self, vectors: Any) -> Any:
        """Map vectors of the token-embedding space to block-0 inputs as the model maps a token embedding.

        ``vectors * scale (+ wpe[0])``, computed in the model's dtype the way the model computes it.
        """
        import torch

        v = torch.as_tensor(vectors).to(device=self.device, dtype=self.dtype)
        scale = self.input_scale()
        if scale != 1.0:
            v = v * torch.tensor(scale, dtype=self.dtype)
        pos = self.position0()
        if pos is not None:
            v = v + pos.detach().to(device=v.device, dtype=v.dtype)
        return v

    def token_input(self, token_ids: Any) -> Any:
        """The exact input of block 0 for each token alone at position 0, shape (n, d_model)."""
        import torch

        ids = torch.as_tensor(token_ids, dtype=torch.long)
        with torch.inference_mode():
            return self.embedding_to_input(self.parts.embed.weight[ids])

    # -- running -----------------------------------------------------------------------------------

    def _rotary(self, layer_type: str | None, hidden: Any) -> Any:
        import torch

        key = (layer_type, hidden.dtype)
        if key not in self._rotary_cache:
            rotary = self.parts.base.rotary_emb
            pos = torch.zeros((1, 1), dtype=torch.long, device=hidden.device)
            probe = torch.zeros((1, 1, self.d_model), dtype=hidden.dtype, device=hidden.device)
            if layer_type is None:
                self._rotary_cache[key] = rotary(probe, pos)
            else:
                self._rotary_cache[key] = rotary(probe, pos, layer_type)
        return self._rotary_cache[key]

    def run_blocks(self, hidden: Any, start: int, stop: int | None = None) -> Any:
        """Blocks ``start .. stop-1`` on ``hidden`` of shape (batch, 1, d_model); returns the same shape."""
        import torch

        stop = self.n_layers if stop is None else stop
        family = self.family
        blocks = self.parts.blocks
        pos_ids = torch.zeros((1, 1), dtype=torch.long, device=hidden.device)
        layer_types = getattr(self.config, "layer_types", None)
        for i in range(start, stop):
            block = blocks[i]
            if family == "gpt2":
                hidden = block(hidden, attention_mask=None, use_cache=False)
            elif family == "llama":
                hidden = block(hidden, attention_mask=None, position_ids=pos_ids, use_cache=False,
                               position_embeddings=self._rotary(None, hidden))
            elif family == "gemma3":
                lt = layer_types[i] if layer_types else "full_attention"
                hidden = block(hidden, attention_mask=None, position_ids=pos_ids,
                               position_embeddings=self._rotary(lt, hidden))
            else:  # pragma: no cover - the architecture table and this list move together
                raise NotImplementedError(type(self.model))
            if isinstance(hidden, tuple):  # older transformers returned (hidden, ...)
                hidden = hidden[0]
        return hidden

    def final_hidden(self, vectors: Any, layer: int) -> Any:
        """The residual stream after the last block, shape (batch, d_model), for vectors of shape (batch, d_model)
        fed at ``layer`` (the input of :meth:`decode`)."""
        import torch

        idx = self.check_layer(layer)
        hidden = torch.as_tensor(vectors).to(device=self.device, dtype=self.dtype)
        if hidden.ndim != 2 or hidden.shape[1] != self.d_model:
            raise EmbedlensError(f"vectors must have shape (n, {self.d_model}), got {tuple(hidden.shape)}")
        return self.run_blocks(hidden[:, None, :], idx)[:, 0, :]

    def logits(self, vectors: Any, layer: int) -> Any:
        """Logits of shape (batch, vocab) for residual vectors of shape (batch, d_model) fed at ``layer``."""
        return self.decode(self.final_hidden(vectors, layer))

    def decode(self, hidden: Any, *, normed: bool = False) -> Any:
        """Next-token logits of residual-stream vectors: the final norm, the unembedding, Gemma's soft-cap.

        The one decode of embedlens: the grid's ``layer_idx = n_layers``, the logit lens of every layer
        (:mod:`embedlens.logitlens`) and the context map's per-layer hovers all come here.

        Args:
            hidden: tensor of shape (..., d_model) in the model's dtype: the residual stream after some block.
            normed: the vectors already went through the final norm (transformers' last ``hidden_states``
                entry does): only the unembedding and the soft-cap are applied.

        Returns:
            logits of shape (..., vocab), in the model's dtype.
        """
        import torch

        if not normed and self.parts.final_norm is not None:
            hidden = self.parts.final_norm(hidden)
        logits = self.parts.unembed(hidden)
        if self.softcap:
            logits = torch.tanh(logits / self.softcap) * self.softcap
        return logits

    def decode_top_k(self, hidden: Any, k: int = 5, *, targets: Any = None, normed: bool = False,
                     chunk_rows: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """:meth:`decode` many residual vectors and keep only their top-``k`` (and the targets' ranks).

        Rows are decoded in blocks of ``chunk_rows`` (default: about 64 MB of float32 logits per block on
        a CPU, 1 GB on a GPU), each block one matrix product with the unembedding; only (rows, k) leaves a block.

        Args:
            hidden: array or tensor of shape (n, d_model): residual-stream vectors (any device; moved to the model's).
            k: top-k to keep (0: ranks only).
            targets: optional int array of shape (n,): the token whose rank to report per row (-1: none).
            normed: the vectors already went through the final norm.

        Returns:
            ``(ids, probs, ranks)``: int64 (n, k), float32 (n, k), int64 (n,) 1-based or None.
        """
        import torch

        w = self.parts.unembed.weight
        dev = self.device
        h = torch.as_tensor(hidden)
        n = int(h.shape[0])
        if chunk_rows is None:
            budget = (1 << 30) if dev.type == "cuda" else (64 << 20)
            chunk_rows = max(16, budget // (4 * self.n_vocab))
        kk = min(int(k), self.n_vocab)
        ids = np.empty((n, kk), dtype=np.int64)
        probs = np.empty((n, kk), dtype=np.float32)
        ranks = np.empty(n, dtype=np.int64) if targets is not None else None
        tg = torch.as_tensor(np.asarray(targets, dtype=np.int64)) if targets is not None else None
        with torch.inference_mode():
            for s in range(0, n, chunk_rows):
                e = min(n, s + chunk_rows)
                block = h[s:e].to(device=dev, dtype=w.dtype)
                t = tg[s:e].to(dev) if tg is not None else None
                top_ids, top_p, rk = top_k_of_logits(self.decode(block, normed=normed), kk, t)
                ids[s:e] = top_ids.cpu().numpy()
                probs[s:e] = top_p.cpu().numpy()
                if ranks is not None:
                    ranks[s:e] = rk.cpu().numpy()
        return ids, probs, ranks

    def topk(self, vectors: Any, layer: int, k: int = 5) -> tuple[Any, Any]:
        """Top-``k`` token ids (int64) and their softmax probabilities (float32), each of shape (batch, k)."""
        import torch

        with torch.inference_mode():
            ids, probs, _ = top_k_of_logits(self.logits(vectors, layer), k)
            return ids, probs


def top_k_of_logits(logits: Any, k: int, targets: Any = None) -> tuple[Any, Any, Any]:
    """Top-``k`` ids and softmax probabilities of logits, and optionally the rank of given target ids.

    Args:
        logits: tensor of shape (n, vocab) (any float dtype; probabilities are computed in float32). It is
            used as scratch space when it is already float32: do not reuse it afterwards.
        k: how many (capped at the vocabulary size).
        targets: optional int64 tensor of shape (n,): ids whose rank to report; negative = none.

    Returns:
        ``(ids, probs, ranks)``: int64 (n, k), float32 (n, k) best first, and int64 (n,) 1-based ranks
        (1 + the number of logits strictly above the target's; 0 where the target is negative), or None.
    """
    import torch

    k = min(int(k), logits.shape[1])
    if k > 0:
        logits = logits.float()
    ranks = None
    if targets is not None:
        # compared in the logits' own dtype: a bfloat16 comparison is exactly that of the float32 copies
        t = targets.clamp(min=0)[:, None]
        ranks = (logits > logits.gather(1, t)).sum(dim=1, dtype=torch.int32).long() + 1
        ranks = torch.where(targets >= 0, ranks, torch.zeros_like(ranks))
    if k == 0:
        empty = logits.new_empty((logits.shape[0], 0), dtype=torch.float32)
        return empty.long(), empty, ranks
    vals, ids = torch.topk(logits, k, dim=-1)
    top = vals[:, :1]
    # log-sum-exp in place (torch.logsumexp allocates several vocab-wide temporaries)
    lse = top + logits.sub_(top).exp_().sum(dim=1, keepdim=True).log_()
    return ids, torch.exp(vals - lse), ranks


def runner_for(lens: ModelHandle, net: Any) -> BlockRunner:
    """The :class:`BlockRunner` of a network loaded for ``lens``, built once per network and kept on the lens."""
    runners = lens.__dict__.setdefault("_runners", {})
    if id(net) not in runners:
        runners[id(net)] = BlockRunner(net)
    return runners[id(net)]
