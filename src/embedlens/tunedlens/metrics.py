"""Per-layer lens metrics of one batch, fused over each block of logits: the hot loop of ``lens eval``.

Every row (a token) at every layer is decoded through the full head, since the KL to the final distribution
needs every logit (its log-normaliser). That product, ``2 * d_model * n_vocab`` FLOP per row and layer, is
the whole cost; everything else is arranged so nothing else is: the final distribution is decoded once per
row; each decoder's translators run on a block of rows; the block's logits are read a few times in place
(max + arg-max, the target's logit, exp and sum) and never copied to a log-softmax. The KL uses

    KL(p || q) = sum_v p_v log p_v  -  sum_v p_v z_v  +  logsumexp(z)        (q = softmax(z))

where the middle term is, for a head without soft-cap, ``norm(h) . (p @ E) + p . bias``: a d-vector per row
computed once from the final distribution, so it costs no pass over the vocabulary and stays float32 exact
when the product itself runs in bfloat16.

``product="bfloat16"`` multiplies the normed states by a bfloat16 copy of the head (float32 accumulation,
logits rounded to bfloat16: about 3 significant digits). On CPUs with bfloat16 units it is ~3x faster; the
mean KL per layer moves by less than :data:`BF16_KL_TOLERANCE` (tested). Used only where
:func:`embedlens.hardware.fast_bfloat16` says the units are there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import hardware
from ..errors import EmbedlensError
from ..logitlens.translators import LogitLens, TunedLens

PRODUCTS = ("auto", "float32", "bfloat16")
DECODE_ROWS = 256  # rows per head product (layers x tokens): enough rows for the product to run near its peak
VOCAB_CHUNK = 4096  # head rows per product: 256 x 4096 logits (4 MB float32) stay in cache for the reductions
BF16_KL_TOLERANCE = (0.02, 0.01)  # bfloat16 vs float32 mean KL per layer: |difference| <= 0.02 bits + 1%


def choose_product(product: str, device: str, dtype: Any) -> str:
    """``"float32"`` or ``"bfloat16"`` for a model run on ``device`` in ``dtype`` (known before its weights load):
    ``auto`` is bfloat16 for a float32 model on a CPU with fast bfloat16 units."""
    if product not in PRODUCTS:
        raise EmbedlensError(f"product must be one of {', '.join(PRODUCTS)}, got {product!r}")
    if product == "float32":
        return product
    import torch

    usable = str(device).split(":")[0] == "cpu" and dtype == torch.float32 and hardware.fast_bfloat16()
    if product == "bfloat16" and not usable:
        raise EmbedlensError("product='bfloat16' needs a float32 model on a CPU with fast bfloat16 units "
                             "(AVX512-BF16 or AMX): use product='float32' or 'auto'")
    return "bfloat16" if usable else "float32"


class HeadProduct:
    """The model's decode (final norm, head, soft-cap) as float32 logits, with its head product in float32
    (the model's own :meth:`~embedlens.models.forward.BlockRunner.decode`) or bfloat16."""

    def __init__(self, runner: Any, product: str = "float32") -> None:
        import torch

        self.runner = runner
        self.product = product
        head = runner.parts.unembed
        self.bias = None if getattr(head, "bias", None) is None else head.bias.detach().float()
        self.linear = not runner.softcap   # logits are an affine map of the normed state
        self.weight = head.weight.detach().float() if self.linear else None
        self.weight_bf16 = head.weight.detach().to(torch.bfloat16) if product == "bfloat16" else None

    def normed(self, states: Any) -> Any:
        norm = self.runner.parts.final_norm
        x = states.to(self.runner.dtype)
        return (norm(x) if norm is not None else x).float()

    def logits(self, states: Any, *, exact: bool = False) -> tuple[Any, Any]:
        """``(logits, normed)``: logits (..., V) and the normed states (..., d) they come from; float32, or
        bfloat16 straight from a bfloat16 product without bias or soft-cap (the reductions read it as it is,
        which saves a float32 copy). ``exact``: the model's own product, float32, whatever ``product`` is."""
        import torch

        xn = self.normed(states)
        if exact or self.product == "float32":
            z = self.runner.parts.unembed(xn.to(self.runner.dtype)).float()
        else:
            z = torch.matmul(xn.to(torch.bfloat16), self.weight_bf16.T)
            if self.bias is not None or self.runner.softcap:
                z = z.float()
            if self.bias is not None:
                z += self.bias
        if self.runner.softcap:
            cap = float(self.runner.softcap)
            z = torch.tanh(z / cap) * cap
        return z, xn

    def expected_logit(self, p: Any, xn: Any, z: Any) -> Any:
        """``sum_v p_v z_v`` per row: from ``p @ E`` (a (rows, d) tensor) for a linear head, else from the logits."""
        import torch

        if self.linear:
            out = torch.linalg.vecdot(xn, p[0])
            return out + p[1] if self.bias is not None else out
        return torch.linalg.vecdot(z, p)


def _final(head: HeadProduct, states: Any, tg: Any) -> dict[str, Any]:
    """The final distribution of a block of rows: what every layer's metrics compare with."""
    import torch

    z, _ = head.logits(states, exact=True)
    m, top = z.max(-1)
    z -= (z - m[:, None]).exp().sum(-1).log()[:, None] + m[:, None]       # log p, in place
    p = z.exp()
    out = {"top": top, "negent": torch.linalg.vecdot(p, z), "nll": -z.gather(-1, tg)[:, 0]}
    if head.linear:
        out["p"] = (p @ head.weight, p @ head.bias if head.bias is not None else None)
    else:
        out["p"] = p
    return out


def _fused(head: HeadProduct, states: Any, fin: dict[str, Any], tg: Any) -> tuple[Any, Any, Any]:
    """KL nats, top-1 agreement and next-token nats per row for states (k, r, d) of k layers of the same rows."""
    import torch

    if head.linear:
        return _fused_by_chunks(head, states, fin, tg)
    z, xn = head.logits(states)                        # (k, r, V), (k, r, d)
    cross = head.expected_logit(fin["p"], xn, z)
    target = z.gather(-1, tg.expand(z.shape[0], -1, -1))[..., 0].float()
    m, top = z.max(-1)
    m = m.float()
    e = torch.sub(z, m[..., None]) if z.dtype == torch.float32 else torch.sub(z, m[..., None], out=torch.empty(
        z.shape, dtype=torch.float32, device=z.device))   # float32 from a bfloat16 block in the same pass
    del z
    lse = e.exp_().sum(-1).log_() + m
    return fin["negent"] - cross + lse, (top == fin["top"]), lse - target


def _fused_by_chunks(head: HeadProduct, states: Any, fin: dict[str, Any], tg: Any) -> tuple[Any, Any, Any]:
    """:func:`_fused` for a head without soft-cap, one product per :data:`VOCAB_CHUNK` columns of the head: the
    log-normaliser is accumulated online (running max, rescaled sum of exponentials), so a chunk's logits are
    read while they are still in cache and no (rows, V) block is ever held."""
    import torch

    xn = head.normed(states)                                       # (k, r, d) float32
    k, r, d = xn.shape
    cross = head.expected_logit(fin["p"], xn, None).reshape(-1)
    bf16 = head.product == "bfloat16"
    weight = head.weight_bf16 if bf16 else head.runner.parts.unembed.weight
    x = xn.reshape(-1, d).to(weight.dtype)
    n, vocab = x.shape[0], int(weight.shape[0])
    t = tg[:, 0].repeat(k)                                         # each layer's rows share the targets
    m = torch.full((n,), -torch.inf, device=x.device)
    total = torch.zeros(n, device=x.device)
    top = torch.zeros(n, dtype=torch.long, device=x.device)
    target = torch.zeros(n, device=x.device)
    buf = torch.empty(n, min(VOCAB_CHUNK, vocab), device=x.device)
    for a in range(0, vocab, VOCAB_CHUNK):
        z = x @ weight[a: a + VOCAB_CHUNK].T                       # (n, c) in the product's dtype
        c = z.shape[1]
        if head.bias is not None:
            z = z.float() + head.bias[a: a + c]
        cm, ci = z.max(-1)
        cm = cm.float()
        top = torch.where(cm > m, ci + a, top)                     # ties keep the earlier (lower) id, as argmax
        inside = (t >= a) & (t < a + c)
        target = torch.where(inside, z.gather(-1, (t - a).clamp(0, c - 1)[:, None])[:, 0].float(), target)
        new = torch.maximum(m, cm)
        e = torch.sub(z, new[:, None], out=buf[:, :c])             # float32 in the same pass, in cache
        total = total * torch.exp(m - new) + e.exp_().sum(-1)
        m = new
    lse = total.log() + m
    return ((fin["negent"].repeat(k) - cross + lse).reshape(k, r), (top == fin["top"].repeat(k)).reshape(k, r),
            (lse - target).reshape(k, r))


def layer_metrics(runner: Any, states: Any, targets: Any, decoders: Sequence[LogitLens | TunedLens],
                  layers: Sequence[int], *, product: str = "float32") -> np.ndarray:
    """Sums over the rows of one batch: array (n_decoders, len(layers), 3) of KL nats, top-1 agreements and
    next-token nats (the last summed over rows whose ``targets`` >= 0).

    Args:
        states: tensor (len(layers), n, d_model); its last entry is the model's final state (layer ``n_layers``),
            whose metrics are the final distribution's own (KL 0, agreement 1) for every decoder.
        targets: int64 tensor (n,): the next token of each row, -1 where there is none.
        product: ``"float32"`` or ``"bfloat16"`` (see the module docstring); the final distribution is float32.
    """
    import torch

    n = int(states.shape[1])
    k_all = len(layers) - 1
    out = np.zeros((len(decoders), len(layers), 3), dtype=np.float64)
    head = HeadProduct(runner, product)
    rows = min(n, DECODE_ROWS)
    group = max(1, DECODE_ROWS // rows)
    has = (targets >= 0).to(states.device)
    with torch.inference_mode():
        for r0 in range(0, n, rows):
            sl = slice(r0, min(n, r0 + rows))
            tg = targets[sl].clamp(min=0).to(states.device)[:, None]
            keep = has[sl]
            fin = _final(head, states[-1, sl], tg)
            out[:, -1, 1] += float(keep.numel())
            out[:, -1, 2] += float((fin["nll"] * keep).sum())
            for di, dec in enumerate(decoders):
                moved = dec.translate(states[:-1, sl], layers[:-1])
                for s in range(0, k_all, group):
                    idx = slice(s, min(k_all, s + group))
                    kl, agree, nll = _fused(head, moved[idx], fin, tg)
                    out[di, idx, 0] += kl.sum(-1).double().cpu().numpy()
                    out[di, idx, 1] += agree.sum(-1).double().cpu().numpy()
                    out[di, idx, 2] += (nll * keep).sum(-1).double().cpu().numpy()
    return out
