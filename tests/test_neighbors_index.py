"""One contract for every neighbour index (openTSNE's KNNIndexTestMixin style).

Exact backends return the ids of a float64 brute force bit for bit (ties by lower row), on random
data with duplicate and zero rows and on the real SmolLM2 matrix; approximate ones (HNSW, bfloat16
short lists) hold at least their stated recall, and the recall they report is what a direct check finds.
"""

from __future__ import annotations

import numpy as np
import pytest

from embedlens.errors import EmbedlensError
from embedlens.neighbors import build_index
from embedlens.neighbors.index import (
    BFloat16Index,
    ExactIndex,
    HNSWIndex,
    Neighbors,
    PrecomputedIndex,
    recall_at_k,
)

HNSW_STATED_RECALL = 0.95


def brute_force(x: np.ndarray, q: np.ndarray, k: int, metric: str, exclude=None) -> tuple[np.ndarray, np.ndarray]:
    """The whole (m, n) key matrix in float64, top-k by a stable full sort (ties: lower row first)."""
    x = np.asarray(x, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    if metric == "cosine":
        xn, qn = np.linalg.norm(x, axis=1), np.linalg.norm(q, axis=1)
        denom = qn[:, None] * xn[None, :]
        key = np.where(denom > 0, (q @ x.T) / np.where(denom > 0, denom, 1), 0.0)
    else:
        key = -(((q[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    if exclude is not None:
        for i, rows in enumerate(exclude):
            key[i, list(rows)] = -np.inf
    idx = np.argsort(-key, axis=1, kind="stable")[:, :k]
    val = np.take_along_axis(key, idx, axis=1)
    return idx, (val if metric == "cosine" else np.sqrt(-val))


def random_rows(n: int = 2000, d: int = 24, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    x[[10, 11, 12]] = x[13]  # four identical rows: exact ties, broken by row
    x[20] = 0.0  # a zero row: cosine 0 with everything
    x[30] = x[31] * 3  # same direction: cosine ties, euclidean not
    return x


def make(kind: str, x: np.ndarray, metric: str):
    if kind in ("numpy", "torch", "faiss"):
        return ExactIndex(x, metric=metric, backend=kind)
    if kind == "hnsw":
        return HNSWIndex(x, metric=metric, seed=0)
    if kind == "bf16":
        return BFloat16Index(x, metric=metric, seed=0)
    if kind == "precomputed":
        table = ExactIndex(x, metric=metric, backend="numpy").query(None, 15, exclude_self=True)
        return PrecomputedIndex(table, ExactIndex(x, metric=metric, backend="numpy"))
    raise AssertionError(kind)


KINDS = ["numpy", "torch", "faiss", "precomputed", "hnsw", "bf16"]
EXACT = {"numpy", "torch", "faiss", "precomputed"}


@pytest.fixture(params=KINDS)
def kind(request):
    return request.param


class TestEveryIndex:
    """The contract, run against every backend."""

    @pytest.mark.parametrize("metric", ["cosine", "euclidean"])
    def test_rows_with_self_excluded_equal_brute_force(self, kind, metric):
        x = random_rows()
        index = make(kind, x, metric)
        rows = np.arange(0, len(x), 3)
        got = index.query(rows, 10, exclude_self=True)
        want_i, want_s = brute_force(x, x[rows], 10, metric, [[r] for r in rows])
        assert got.indices.shape == got.scores.shape == (len(rows), 10)
        assert got.indices.dtype == np.int64 and got.scores.dtype == np.float32 and got.metric == metric
        assert not (got.indices == rows[:, None]).any()  # self dropped by id ...
        if kind in EXACT:
            np.testing.assert_array_equal(got.indices, want_i)  # ... and the rest bit for bit
            np.testing.assert_allclose(got.scores, want_s, rtol=1e-5, atol=1e-5)
            assert rows[4] == 12 and got.indices[4, :3].tolist() == [10, 11, 13]  # row 12's twins, in row order
        else:
            truth = Neighbors(want_i, want_s.astype(np.float32), metric)
            assert recall_at_k(got, truth) >= HNSW_STATED_RECALL
            assert index.recall is not None and index.recall >= HNSW_STATED_RECALL
        step = np.diff(got.scores, axis=1)
        assert np.all(step <= 1e-6) if metric == "cosine" else np.all(step >= -1e-6)  # best first

    def test_free_vectors_with_exclusions(self, kind):
        x = random_rows(seed=1)
        index = make(kind, x, "cosine")
        q = np.random.default_rng(5).normal(size=(7, x.shape[1])).astype(np.float32)
        exclude = [[0, 1], [5], [], [13, 10], [], [], [20]]
        got = index.query(q, 12, exclude=exclude)
        want, _ = brute_force(x, q, 12, "cosine", exclude)
        if kind in EXACT:
            np.testing.assert_array_equal(got.indices, want)
        else:  # random vectors are far from every row: a harder search than the rows themselves
            assert (got.indices[:, :, None] == want[:, None, :]).any(axis=2).mean() >= 0.9
        for i, rows in enumerate(exclude):
            assert not np.isin(got.indices[i], rows).any()

    def test_bad_queries_say_what_is_wrong(self, kind):
        x = random_rows(n=300)
        index = make(kind, x, "cosine")
        with pytest.raises(EmbedlensError, match="k must be an integer from 1 to 299"):
            index.query(np.arange(3), 300, exclude_self=True)
        with pytest.raises(EmbedlensError, match="got True"):
            index.query(np.arange(3), True)
        with pytest.raises(EmbedlensError, match="does not match"):
            index.query(np.ones((2, 5), dtype=np.float32), 3)
        with pytest.raises(EmbedlensError, match="rows must be from 0 to 299"):
            index.query(np.array([0, 300]), 3)


def test_a_row_among_many_identical_rows_gets_them_in_row_order():
    # 30 identical rows: the k-th place is an exact tie far past the candidate margin.
    x = random_rows(n=500, d=8, seed=3)
    x[100:130] = x[99]
    for backend in ("numpy", "torch", "faiss"):
        got = ExactIndex(x, backend=backend).query(np.array([99, 115]), 10, exclude_self=True)
        assert got.indices[0].tolist() == list(range(100, 110))
        assert got.indices[1].tolist() == list(range(99, 109))


def test_precomputed_answers_rows_from_the_table_and_the_rest_from_its_fallback(monkeypatch):
    x = random_rows(n=400)
    scan = ExactIndex(x, backend="numpy")
    table = scan.query(None, 5, exclude_self=True)
    index = PrecomputedIndex(table, scan)
    asked = []
    real = scan.query
    monkeypatch.setattr(scan, "query", lambda *a, **kw: asked.append(a) or real(*a, **kw))
    got = index.query(np.array([3, 7]), 5)
    assert not asked and np.array_equal(got.indices, table.indices[[3, 7]])
    index.query(np.array([3]), 8)  # more than the table holds: the scan answers
    index.query(x[:2], 3)  # free vectors: the scan answers
    assert len(asked) == 2
    with pytest.raises(EmbedlensError, match="no exact index to fall back on"):
        PrecomputedIndex(table).query(np.array([3]), 8)


def test_build_index_is_exact_below_the_limit_and_hnsw_above_with_its_recall():
    x = random_rows(n=3000, d=16)
    assert isinstance(build_index(x), ExactIndex)
    approx = build_index(x, exact_max=1000, exhaustive_max=1000, seed=1)
    assert isinstance(approx, HNSWIndex) and approx.recall >= HNSW_STATED_RECALL
    d = approx.describe()
    assert d["knn_method"] == "hnsw (faiss)" and d["recall_rows"] == 256 and d["knn_recall"] >= 0.95
    again = build_index(x, exact_max=1000, exhaustive_max=1000, seed=1)  # built on one thread: the same graph
    np.testing.assert_array_equal(again.query(np.arange(50), 10).indices, approx.query(np.arange(50), 10).indices)
    many_equal = x.copy()
    many_equal[:600] = x[0]
    stays = build_index(many_equal, exact_max=1000, exhaustive_max=1000)
    assert isinstance(stays, ExactIndex) and "repeat others" in stays.info["note"]


def test_reported_recall_is_what_a_direct_check_finds():
    x = random_rows(n=3000, d=32, seed=2)
    index = HNSWIndex(x, m=4, ef_construction=8, ef_search=10, recall_sample=3000, seed=0)  # a poor graph
    truth, _ = brute_force(x, x, 10, "cosine", [[r] for r in range(len(x))])
    got = index.query(np.arange(len(x)), 10).indices
    direct = (got[:, :, None] == truth[:, None, :]).any(axis=2).mean()
    assert index.recall == pytest.approx(direct, abs=0.002) and direct < 0.99


@pytest.mark.real_model
@pytest.mark.slow
def test_every_backend_on_real_smollm2(smollm2):
    sp = smollm2.space
    x = np.asarray(sp.vectors, dtype=np.float32)
    rows = np.sort(np.random.default_rng(0).choice(len(x), size=200, replace=False))
    rows = np.union1d(rows, np.flatnonzero(_duplicated(x))[:20])  # rows whose twins tie exactly
    want, _ = brute_force(x, x[rows], 10, "cosine", [[r] for r in rows])
    for backend in ("numpy", "torch", "faiss"):
        got = ExactIndex(x, backend=backend, norms=sp.norms).query(rows, 10, exclude_self=True)
        np.testing.assert_array_equal(got.indices, want, err_msg=backend)
    # Precomputed and HNSW over the first 8,000 rows (a whole-vocabulary graph takes too long for a test).
    sub = x[:8000]
    srows = rows[rows < 8000]
    swant, sscores = brute_force(sub, sub[srows], 10, "cosine", [[r] for r in srows])
    table = ExactIndex(sub, backend="faiss").query(None, 12, exclude_self=True)
    pre = PrecomputedIndex(table, ExactIndex(sub))
    np.testing.assert_array_equal(pre.query(srows, 10).indices, swant)
    hnsw = HNSWIndex(sub, seed=0)  # efSearch widened until the measured recall reaches 0.95
    assert hnsw.recall >= HNSW_STATED_RECALL
    # on other rows, within the sampling error of 256 rows
    assert recall_at_k(hnsw.query(srows, 10), Neighbors(swant, sscores.astype(np.float32))) >= hnsw.recall - 0.03


def _duplicated(x: np.ndarray) -> np.ndarray:
    _, inverse, counts = np.unique(x, axis=0, return_inverse=True, return_counts=True)
    return counts[inverse.ravel()] > 1


# -- which index a map's graph gets, by size ----------------------------------------------------------


def test_build_index_between_exact_max_and_exhaustive_max(monkeypatch):
    from embedlens import hardware

    x = random_rows(3000, 8)
    for fast, expected in ((True, BFloat16Index), (False, ExactIndex)):
        monkeypatch.setattr(hardware, "fast_bfloat16", lambda fast=fast: fast)
        index = build_index(x, exact_max=1000, exhaustive_max=5000, recall_sample=0)
        assert type(index) is expected
    assert isinstance(build_index(x, exact_max=1000, exhaustive_max=2000), HNSWIndex)


# -- the k-d tree: exact euclidean search for map points ----------------------------------------------


@pytest.mark.parametrize("dims", [2, 3])
def test_kdtree_index_equals_brute_force_with_ties_in_row_order(dims):
    from embedlens.neighbors.kdtree import KDTreeIndex

    x = random_rows(n=1500, d=dims, seed=dims)
    x[100:130] = x[99]  # 31 identical points: the k-th place is an exact tie far past the candidates
    x[200] = x[201] + np.float32(1e-7)  # a near-tie that float32 products could not order
    index = build_index(x, metric="euclidean")
    assert isinstance(index, KDTreeIndex) and index.exact and index.name == "exact (k-d tree)"
    got = index.query(None, 10, exclude_self=True)
    want_i, want_s = brute_force(x, x, 10, "euclidean", [[r] for r in range(len(x))])
    np.testing.assert_array_equal(got.indices, want_i)
    np.testing.assert_allclose(got.scores, want_s, rtol=1e-5, atol=1e-6)
    assert got.indices[99].tolist() == list(range(100, 110)) and got.indices[115].tolist()[:2] == [99, 100]
    q = np.random.default_rng(1).normal(size=(6, dims)).astype(np.float32)  # free points, with exclusions
    exclude = [[0, 1], [], [99, 100, 101], [], [5, 6, 7, 8, 9, 300], []]  # 6 for one query: the set lookup
    free = index.query(q, 12, exclude=exclude)
    np.testing.assert_array_equal(free.indices, brute_force(x, q, 12, "euclidean", exclude)[0])


def test_kdtree_index_breaks_lattice_distance_ties_by_row():
    # On a square lattice every point has 4 neighbours at 1, 4 at sqrt(2), 4 at 2: k=10 cuts a tie group.
    side = np.arange(30, dtype=np.float32)
    x = np.stack(np.meshgrid(side, side), axis=-1).reshape(-1, 2)[np.random.default_rng(0).permutation(900)]
    got = build_index(x, metric="euclidean").query(None, 10, exclude_self=True)
    np.testing.assert_array_equal(got.indices, brute_force(x, x, 10, "euclidean", [[r] for r in range(len(x))])[0])


def test_build_index_keeps_products_for_cosine_many_dims_or_a_named_backend():
    from embedlens.neighbors.kdtree import KDTreeIndex

    x = random_rows(n=300, d=2)
    assert isinstance(build_index(x, metric="euclidean"), KDTreeIndex)
    assert type(build_index(x, metric="cosine")) is ExactIndex
    assert type(build_index(random_rows(n=300, d=4), metric="euclidean")) is ExactIndex
    assert type(build_index(x, metric="euclidean", backend="numpy")) is ExactIndex
    with pytest.raises(EmbedlensError, match="euclidean"):
        KDTreeIndex(x, metric="cosine")


def test_a_one_off_search_of_a_few_cosine_queries_streams_the_rows_without_a_copy(monkeypatch):
    """A one-off search (its index dropped after) of a few cosine queries, or of any number over a matrix too big
    to copy, streams the rows through numpy: nothing the size of the matrix is built, and the neighbours are
    brute force's. Many queries over a small matrix take the faster backends, as does a long-lived index."""
    from embedlens.neighbors import index as nindex
    from embedlens.neighbors.index import one_off_backend

    monkeypatch.setattr(nindex, "_NUMPY_ELEMS", 1000)  # this small matrix counts as a big one
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3000, 24)).astype(np.float32)
    rows = np.arange(0, 3000, 37)
    assert one_off_backend(x.shape, len(rows), "cosine") == "numpy"
    assert one_off_backend(x.shape, nindex._STREAM_QUERIES + 1, "cosine") == "auto"
    assert one_off_backend(x.shape, len(rows), "euclidean") == "auto"
    assert one_off_backend((128_256, 4096), 2000, "cosine") == "numpy"  # an 8B vocabulary is never copied
    few = ExactIndex(x, metric="cosine", backend=one_off_backend(x.shape, len(rows), "cosine"))
    got = few.query(rows, 7, exclude_self=True)
    assert few._unit is None and few._faiss is None  # nothing the size of the matrix was built
    fast = ExactIndex(x, metric="cosine")
    assert fast._pick(len(rows)) != "numpy"
    want_i, want_s = brute_force(x, x[rows], 7, "cosine", exclude=[[r] for r in rows])
    for found in (got, fast.query(rows, 7, exclude_self=True)):
        assert np.array_equal(found.indices, want_i)
        np.testing.assert_allclose(found.scores, want_s, atol=1e-5)
