"""``embedlens serve``: a local browser explorer of one or two embedding spaces.

The page (``static/``) draws the whole vocabulary as a WebGL scatter (PCA, t-SNE or UMAP, 2D or 3D),
opening on a cached t-SNE map of the space (else PCA while the t-SNE is computed) with its labelled
clusters, searches it by text or regular expression, shows a token's nearest neighbours, variants and
true neighbours, each token's local faithfulness, a selection's centroid and k-NN graph, places a
prompt's tokens on the map with, for causal LMs, one token's path through the layers, and draws the
token grid map of a layer. Everything is served from this process (Plotly from the installed package):
the page works with no network at all.

>>> from embedlens.serve import create_app
>>> app = create_app([embedlens.load("smollm2-135m")])      # any ASGI server can run it

The server binds 127.0.0.1 unless told otherwise, accepts only loopback ``Host`` headers there, reads
no path a client names, and validates every parameter (see :mod:`embedlens.serve.app`).
Needs the ``serve`` extra: ``pip install 'embedlens[serve]'`` (starlette, uvicorn, regex; plotly from ``maps``).
"""

from __future__ import annotations

from .app import create_app
from .explorer import Explorer
from .panels import BadRequest, Panel
from .server import ServerThread, serve

__all__ = ["BadRequest", "Explorer", "Panel", "ServerThread", "create_app", "serve"]
