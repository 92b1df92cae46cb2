"""Word analogies by vector offset: A - B + C (``king man woman`` -> ``queen``).

The method is 3CosAdd (Mikolov et al. 2013; gensim's ``most_similar(positive=[A, C], negative=[B])``):
the three vectors are scaled to unit length, the target is ``a - b + c``, and the answer is the row
with the highest cosine to the target, the rows of A, B and C excluded. On a language model each word
is resolved as ``neighbors`` resolves it (its token, or the mean of its tokens, with a note saying so).
"""

from __future__ import annotations

import numpy as np

from ..lens import Lens, SpaceView, as_view
from ..neighbors.index import ExactIndex
from ..neighbors.results import Neighbor, NeighborResult

METHOD_NOTE = "3CosAdd: cosine to unit(A) - unit(B) + unit(C), A, B and C excluded"


def analogy(lens: Lens | SpaceView, a: str, b: str, c: str, k: int = 5, *, space: str | None = None) -> NeighborResult:
    """The ``k`` rows nearest to A - B + C, best first, in the shape :meth:`Lens.nearest` returns.

    Args:
        lens: a space (``lens.input``, ``lens.output``) or a handle (a SpaceLens or ModelLens).
        a, b, c: the words (or ``id:N`` / ``tok:RAW``) of "B is to A as C is to ?".
        k: how many answers.
        space: with a handle, ``input`` or ``output`` (default input).
    """
    view = as_view(lens, space)
    sp = view.space
    resolved = [view.resolve(w) for w in (a, b, c)]
    target = np.zeros(sp.dim, dtype=np.float64)
    for sign, rq in zip((1.0, -1.0, 1.0), resolved, strict=True):  # resolve() refuses zero vectors
        target += sign * np.asarray(rq.vector, dtype=np.float64) / float(np.linalg.norm(rq.vector))
    exclude = sorted({r for rq in resolved for r in rq.rows})
    nb = ExactIndex(sp.vectors, norms=sp.norms).query(target.astype(np.float32)[None, :], k, exclude=[exclude])
    notes = [rq.note for rq in resolved if rq.note]
    return NeighborResult(
        query=f"{a} - {b} + {c}",
        query_ids=[i for rq in resolved for i in rq.ids],
        space=sp.name,
        neighbors=[Neighbor(int(sp.ids[r]), sp.labels[r], sp.display[r], float(s))
                   for r, s in zip(nb.indices[0], nb.scores[0], strict=True)],
        note="; ".join([*notes, METHOD_NOTE]),
    )
