"""Exact top-k equals brute force; queries resolve as documented; variants."""

from __future__ import annotations

import numpy as np
import pytest

import embedlens
from embedlens.errors import EmbedlensError
from embedlens.lens import SpaceLens
from embedlens.neighbors.exact import topk_cosine
from embedlens.neighbors.variants import variant_rows
from embedlens.spaces.space import EmbeddingSpace


def brute_force(vectors, queries, k, exclude=None):
    v = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-30)
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    s = (q.astype(np.float64) @ v.T.astype(np.float64))
    if exclude:
        for i, rows in enumerate(exclude):
            s[i, rows] = -np.inf
    idx = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return idx, np.take_along_axis(s, idx, axis=1)


@pytest.mark.parametrize("n, d, m, k", [(50, 8, 1, 5), (3000, 16, 7, 20), (40_000, 4, 3, 10)])
def test_topk_equals_brute_force(n, d, m, k, monkeypatch):
    import embedlens.neighbors.index as index

    monkeypatch.setattr(index, "_SCORE_ELEMS", 4096)  # force several blocks and the merge path
    rng = np.random.default_rng(n)
    x = rng.normal(size=(n, d)).astype(np.float32)
    q = rng.normal(size=(m, d)).astype(np.float32)
    exclude = [[0, 1], [5]] + [[]] * (m - 2) if m > 1 else [[3]]
    got = topk_cosine(x, q, k, exclude=exclude)
    idx, scores = brute_force(x, q, k, exclude)
    np.testing.assert_allclose(got.scores, scores, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(got.indices, idx)  # the same ids, bit for bit (ties by lower row)
    assert got.indices.shape == got.scores.shape == (m, k)
    assert np.all(np.diff(got.scores, axis=1) <= 1e-7)


def test_k_bounds():
    x = np.eye(4, dtype=np.float32)
    with pytest.raises(EmbedlensError, match="k must be an integer from 1 to 4 .*got 0"):
        topk_cosine(x, x[0], 0)
    with pytest.raises(EmbedlensError, match=r"from 1 to 3 \(the items that can be returned\), got 4"):
        topk_cosine(x, x[0], 4, exclude=[[0]])
    with pytest.raises(EmbedlensError, match="got True"):
        topk_cosine(x, x[0], True)  # a flag is not a count


def test_zero_vectors_do_not_break_scores():
    x = np.array([[0, 0], [1, 0], [0, 1]], dtype=np.float32)
    got = topk_cosine(x, np.array([1, 0.1], dtype=np.float32), 3)
    assert got.indices[0, 0] == 1 and np.isfinite(got.scores).all()


def test_variant_rows_matches_forms():
    labels = ["list", "␣list", "List", "_list", "lists", "␣listed", "listen", "enlist", "LIST", "##list", "x"]
    rows = set(variant_rows("list", labels).tolist())
    assert rows == {0, 1, 2, 3, 4, 5, 8, 9}


def test_space_lens_queries_and_mean():
    space = EmbeddingSpace.from_arrays(np.array([[1, 0], [0.9, 0.1], [0, 1], [0.5, 0.5]], dtype=np.float32),
                                       ["a", "b", "c", "d"])
    lens = SpaceLens(space)
    res = lens.nearest("a", 2)
    assert [n.token for n in res.neighbors] == ["b", "d"]
    assert lens.nearest("id:2", 1).neighbors[0].token == "d"
    both = lens.resolve("a c")
    np.testing.assert_allclose(both.vector, [0.5, 0.5])
    assert "mean" in both.note
    with pytest.raises(EmbedlensError, match="'zz' is not in the vocabulary"):
        lens.nearest("zz", 1)


def test_model_neighbors_equal_brute_force(tiny_gpt2_dir, cache_dir):
    lens = embedlens.load(str(tiny_gpt2_dir))
    ids = lens.encode(" list", add_special_tokens=False)
    res = lens.nearest(" list", 10)
    vecs = np.asarray(lens.space.vectors)
    idx, scores = brute_force(vecs, vecs[ids].mean(axis=0, keepdims=True), 10, [ids])
    assert [n.id for n in res.neighbors] == idx[0].tolist()
    np.testing.assert_allclose([n.score for n in res.neighbors], scores[0], rtol=1e-5)
    assert ids[0] not in [n.id for n in res.neighbors]


def test_tok_and_id_queries(tiny_gpt2_dir, cache_dir):
    lens = embedlens.load(str(tiny_gpt2_dir))
    raw = lens.space.labels[42]
    assert lens.resolve(f"tok:{raw}").rows == [42]
    assert lens.resolve("id:42").ids == [42]
    with pytest.raises(EmbedlensError, match="not a valid id"):
        lens.resolve("id:abc")
    with pytest.raises(EmbedlensError, match="not in the vocabulary"):
        lens.resolve("tok:definitely-not-a-token")
