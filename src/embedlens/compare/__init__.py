"""Two spaces side by side: how alike they are, with controls, and which tokens changed.

>>> import embedlens
>>> result = embedlens.compare("smollm2-135m", "gemma3-270m")      # matched by readable string
>>> result.summary()["cka"], result.summary()["control"]["cka"]
>>> [result.display_a[i] for i in result.most_changed(5)]
"""

import sys
from typing import Any

from .correspondence import Correspondence, correspond, vocabulary_hash
from .pipeline import compare, write_comparison
from .result import Comparison

__all__ = ["Comparison", "Correspondence", "compare", "correspond", "vocabulary_hash", "write_comparison"]


class _CallableModule(sys.modules[__name__].__class__):
    """``embedlens.compare(a, b)`` calls :func:`compare` even where ``embedlens.compare`` is this package (it is
    once any of its modules has been imported)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Comparison:
        return compare(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
