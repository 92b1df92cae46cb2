"""Where corpus work runs: ``local`` (this process) or ``ray`` (a Ray Data pipeline on a local or remote cluster).

Both engines read the same shards of a corpus (:mod:`embedlens.corpus.sources`) and call the same
picklable pieces on every block of documents (a token counter, an occurrence finder, a model runner),
so they give the same answers; only where the pieces run differs.

>>> from embedlens.engines import open_engine
>>> with open_engine("ray", workers=2) as eng:      # a local Ray for the run, or RAY_ADDRESS
...     counted = eng.count(counter, corpus)
...     eng.info()                                   # engine, address, workers, resources
"""

from .base import ENGINES, CountResult, Engine, LocalEngine, StatesJob, open_engine

__all__ = ["ENGINES", "CountResult", "Engine", "LocalEngine", "StatesJob", "open_engine"]
