"""The vocabulary atlas: where a model puts its tokens, mapped to 2-D or 3-D, with how faithful the map is.

>>> import embedlens
>>> from embedlens.atlas import write_atlas
>>> result = write_atlas(embedlens.load(), "embedlens-map", corpus="lee", method="pca")
>>> result.quality_line()
"""

from .clusters import Cluster, Clustering, find_clusters, label_levels
from .pipeline import build_atlas, write_atlas
from .result import AtlasResult
from .selection import Selection, select_rows

__all__ = ["AtlasResult", "Cluster", "Clustering", "Selection", "build_atlas", "find_clusters", "label_levels",
           "select_rows", "write_atlas"]
