"""Per-layer decoders of the residual stream and the tuned lens: train, save, read, evaluate.

>>> import embedlens
>>> from embedlens.tunedlens import train_tuned_lens, evaluate_decoders
>>> tuned = train_tuned_lens("smollm2-135m", "lee", tokens=16384)        # minutes on a CPU; cached for the model
>>> embedlens.logit_lens("smollm2-135m", "The capital of France is", decoder="tuned")
>>> evaluate_decoders("smollm2-135m", "lee", decoders=["logit", "tuned"]).rows()

``LogitLens`` decodes each layer as it is; ``TunedLens`` first applies one affine translator per layer. Both,
and their files, live in :mod:`embedlens.logitlens` (the logit lens decodes with them); this package trains
and evaluates them.
Tuned lenses are saved as ``tuned_lens.safetensors`` + ``manifest.json`` and also read and written in the
``tuned-lens`` package's format (``config.json`` + ``params.pt``).
"""

from ..logitlens.translators import LogitLens, TunedLens
from ..logitlens.tuned_files import (
           read_tuned_lens,
           resolve_decoder,
           save_tuned_lens,
           write_tuned_lens_package,
)
from .evaluation import DecoderEval, evaluate_decoders
from .training import train_tuned_lens

__all__ = ["DecoderEval", "LogitLens", "TunedLens", "evaluate_decoders", "read_tuned_lens", "resolve_decoder",
           "save_tuned_lens", "train_tuned_lens", "write_tuned_lens_package"]
