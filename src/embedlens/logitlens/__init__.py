"""The logit lens: what the residual stream after each block would predict, decoded by the model's own head.

>>> import embedlens
>>> lens = embedlens.load("smollm2-135m")
>>> r = embedlens.logit_lens(lens, "The capital of France is")
>>> r.top_display[-1, -1, 0], r.top_probs[-1, -1, 0]     # last layer, last position: the model's own top-1
>>> from embedlens.logitlens import write_logit_lens
>>> write_logit_lens([r], "out")                          # logit_lens.html/png/json + manifest.json

Heavy libraries (torch, transformers, plotly, matplotlib) are imported only when used.
"""

from .compute import (
    SEMANTICS,
    compare,
    logit_lens,
    parse_positions,
    rank_curve,
    rank_curves,
    read_text_file,
    residual_states,
)
from .output import write_logit_lens, write_rank_curves
from .result import LogitLensResult, RankCurve

__all__ = [
    "SEMANTICS", "LogitLensResult", "RankCurve", "compare", "logit_lens", "parse_positions", "rank_curve",
    "rank_curves", "read_text_file", "residual_states", "write_logit_lens", "write_rank_curves",
]
