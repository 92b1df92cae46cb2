"""Where corpus work runs: ``local`` (this process) or ``ray`` (a Ray Data pipeline on a local or remote cluster).

Both engines read the same shards of a corpus (:mod:`embedlens.corpus.sources`) and call the same
picklable pieces on every block of documents (a token counter, an occurrence finder, a model runner),
so they give the same answers; only where the pieces run differs.

>>> from embedlens.engines import open_engine
>>> with open_engine("ray", workers=2) as eng:      # a local Ray for the run, or RAY_ADDRESS
...     counted = eng.count(counter, corpus)
...     eng.info()                                   # engine, address, workers, resources
"""

from __future__ import annotations

from typing import Any

from ..errors import EmbedlensError
from .base import ENGINES, CountResult, Engine, LocalEngine, StatesJob
from .ray_engine import RayEngine

__all__ = ["ENGINES", "CountResult", "Engine", "LocalEngine", "StatesJob", "open_engine"]


def open_engine(name: str = "local", *, address: str | None = None, workers: int | None = None,
                local_model: Any = None) -> Engine:
    """The engine called ``name``: ``local``, or ``ray`` (attach to ``address`` / ``RAY_ADDRESS``, else a local Ray).

    Args:
        name: ``local`` or ``ray``.
        address: a Ray cluster address (``HOST:PORT``); default ``RAY_ADDRESS``. Ignored by ``local``.
        workers: Ray workers to use (counting tasks, model actors); default from the cluster's resources.
        local_model: an already loaded model the local engine may use instead of loading one.
    """
    if name not in ENGINES:
        raise EmbedlensError(f"unknown engine '{name}' (choose {', '.join(ENGINES)})")
    if workers is not None and workers < 1:
        raise EmbedlensError(f"the number of workers must be at least 1, got {workers}")
    if name == "local":
        return LocalEngine(local_model)
    return RayEngine(address=address, workers=workers)
