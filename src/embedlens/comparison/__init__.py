"""Two spaces side by side: how alike they are, with controls, and which tokens changed.

>>> import embedlens
>>> result = embedlens.compare("smollm2-135m", "gemma3-270m")      # matched by readable string
>>> result.summary()["cka"], result.summary()["control"]["cka"]
>>> [result.display_a[i] for i in result.most_changed(5)]
"""

from .correspondence import Correspondence, correspond, vocabulary_hash
from .pipeline import compare, write_comparison
from .result import Comparison

__all__ = ["Comparison", "Correspondence", "compare", "correspond", "vocabulary_hash", "write_comparison"]

