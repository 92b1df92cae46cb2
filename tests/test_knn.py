"""The full-vocabulary k-NN graph: exact equals brute force, approx recall is what a direct check finds, cache."""

from __future__ import annotations

import json

import numpy as np
import pytest

import embedlens
from embedlens.errors import EmbedlensError
from embedlens.hardware import fast_bfloat16 as REAL_PROBE
from embedlens.lens import SpaceLens
from embedlens.neighbors.exact import normalized_rows
from embedlens.neighbors.knn import (
    KnnGraph,
    _drop_self,
    build_knn,
    cached_knn,
    knn_graph,
    knn_path,
    recall_at_k,
    topk_batch,
)
from embedlens.spaces.space import EmbeddingSpace


@pytest.fixture(autouse=True)
def bf16_products(monkeypatch):
    # The approximate path runs only where bfloat16 products are fast; these matrices are tiny, so
    # test it everywhere (test_approx_without_fast_bf16_is_exact covers the other machines).
    monkeypatch.setattr("embedlens.hardware.fast_bfloat16", lambda: True)


def brute_knn(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The whole n x n cosine matrix in float64, self excluded, top-k by a full sort."""
    v = x.astype(np.float64)
    v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-30)
    s = v @ v.T
    np.fill_diagonal(s, -np.inf)
    idx = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return idx, np.take_along_axis(s, idx, axis=1)


@pytest.fixture(scope="module")
def matrix() -> np.ndarray:
    return np.random.default_rng(7).normal(size=(1500, 24)).astype(np.float32)


@pytest.mark.parametrize("backend", ["torch", "numpy", "faiss"])
def test_exact_equals_brute_force(matrix, backend):
    k = 12
    g = knn_graph(matrix, k, backend=backend, block=257)  # several blocks, a ragged last one
    idx, sc = brute_knn(matrix, k)
    assert g.indices.shape == g.scores.shape == (len(matrix), k)
    assert g.method == "exact" and g.backend == backend and g.recall == 1.0
    np.testing.assert_allclose(g.scores, sc, atol=2e-6)
    assert (g.indices == idx).mean() > 0.999  # only float ties may swap
    assert not (g.indices == np.arange(len(matrix))[:, None]).any()  # self excluded
    assert np.all(np.diff(g.scores, axis=1) <= 1e-7)  # best first


def test_exact_handles_duplicate_and_zero_rows():
    x = np.random.default_rng(0).normal(size=(60, 5)).astype(np.float32)
    x[10] = x[11] = x[12]  # three identical rows
    x[20] = 0.0
    for backend in ("torch", "faiss", "numpy"):
        g = knn_graph(x, 4, backend=backend)
        assert not (g.indices == np.arange(60)[:, None]).any()
        assert set(g.indices[10, :2]) == {11, 12}
        np.testing.assert_allclose(g.scores[10, :2], 1.0, atol=1e-6)
        assert np.isfinite(g.scores).all()


def test_drop_self_when_self_is_missing():
    idx = np.array([[3, 4, 5], [1, 7, 8]])
    dist = np.array([[0.9, 0.8, 0.7], [1.0, 0.5, 0.4]], dtype=np.float32)
    i, d = _drop_self(idx, dist, np.array([0, 1]), 2)
    assert i.tolist() == [[3, 4], [7, 8]]
    np.testing.assert_allclose(d, [[0.9, 0.8], [0.5, 0.4]])


def test_approx_recall_is_what_a_direct_check_finds():
    # A tight short list (= k) on crowded data makes the bfloat16 pass miss some neighbours.
    x = np.random.default_rng(3).normal(size=(2500, 48)).astype(np.float32)
    k, sample, seed = 10, 400, 11
    g = knn_graph(x, k, method="approx", shortlist=k, recall_sample=sample, seed=seed)
    rows = np.sort(np.random.default_rng(seed).choice(len(x), size=sample, replace=False))
    truth, _ = brute_knn(x, k)
    direct = np.mean([len(set(g.indices[r]) & set(truth[r])) / k for r in rows])
    assert g.recall_sample == sample and g.backend == "torch-bf16"
    assert g.recall == pytest.approx(direct, abs=1e-12)
    assert 0.5 < g.recall < 1.0
    # every returned score is the exact float32 cosine of the pair
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    exact = np.einsum("ij,ikj->ik", xn, xn[g.indices])
    np.testing.assert_allclose(g.scores, exact, atol=1e-5)
    # the default short list finds (nearly) everything
    assert knn_graph(x, k, method="approx", recall_sample=sample, seed=seed).recall >= 0.99


def test_recall_at_k():
    assert recall_at_k(np.array([[1, 2], [3, 4]]), np.array([[2, 1], [3, 5]])) == 0.75


@pytest.mark.parametrize("k", [0, -3, 1500, 2.5])
def test_k_out_of_range(matrix, k):
    with pytest.raises(EmbedlensError, match="k must be an integer"):
        knn_graph(matrix, k)


def test_bad_method_and_backend(matrix):
    with pytest.raises(EmbedlensError, match="method"):
        knn_graph(matrix, 3, method="fast")
    with pytest.raises(EmbedlensError, match="backend"):
        knn_graph(matrix, 3, backend="annoy")


@pytest.mark.parametrize("numpy_path", [True, False])
def test_topk_batch_equals_brute_force(matrix, monkeypatch, numpy_path):
    import embedlens.neighbors.knn as knn

    if not numpy_path:
        monkeypatch.setattr(knn, "_NUMPY_QUERY_ELEMS", 0)
    x = normalized_rows(matrix)
    q = np.vstack([matrix[[3]], matrix[[5, 6]].mean(axis=0, keepdims=True), matrix[[9]]])
    exclude = [[3], [5, 6], []]
    got = topk_batch(x, q, 8, exclude=exclude)
    s = (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float64) @ x.T.astype(np.float64)
    for i, rows in enumerate(exclude):
        s[i, rows] = -np.inf
    idx = np.argsort(-s, axis=1)[:, :8]
    assert got.indices.tolist() == idx.tolist()
    np.testing.assert_allclose(got.scores, np.take_along_axis(s, idx, 1), atol=2e-6)


def test_save_load_round_trip(matrix, tmp_path):
    g = knn_graph(matrix, 5, method="approx", recall_sample=100)
    path = g.save(tmp_path / "g.safetensors")
    back = KnnGraph.load(path)
    assert np.array_equal(back.indices, g.indices) and np.array_equal(back.scores, g.scores)
    assert back.recall == g.recall and back.method == "approx" and back.params == g.params
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["k"] == 5 and meta["n"] == len(matrix)


def test_space_cache_and_cached_knn(matrix, cache_dir):
    lens = SpaceLens(EmbeddingSpace.from_arrays(matrix, [f"w{i}" for i in range(len(matrix))], name="rand"))
    assert cached_knn(lens, "input", 5) is None
    g, path, from_cache = build_knn(lens, "input", 8)
    assert not from_cache and path.is_file() and path.parent.parent == cache_dir / "spaces"
    again, _, from_cache = build_knn(lens, "input", 8)
    assert from_cache and np.array_equal(again.indices, g.indices)
    small = cached_knn(lens, "input", 5)
    assert small is not None and small.k == 5 and np.array_equal(small.indices, g.indices[:, :5])
    assert cached_knn(lens, "input", 9) is None  # cached k is too small
    # a space with other vectors does not see this cache
    other = SpaceLens(EmbeddingSpace.from_arrays(matrix * 2 + 1, [f"w{i}" for i in range(len(matrix))]))
    assert cached_knn(other, "input", 5) is None


def test_model_cache_lives_in_the_entry(tiny_gpt2_dir, cache_dir):
    lens = embedlens.load(str(tiny_gpt2_dir))
    g, path, _ = build_knn(lens, "input", 6, method="approx")
    assert path == lens.entry.folder / "knn-input-k6-approx.safetensors" == knn_path(lens, "input", 6, "approx")
    assert path.with_suffix(".json").is_file()
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["model"]["content_hash"] == lens.meta["content_hash"] and "versions" in meta
    assert cached_knn(lens, "input", 6).method == "approx"
    build_knn(lens, "input", 6)
    assert cached_knn(lens, "input", 4).method == "exact"  # exact preferred
    # opening the model again keeps the entry (and its k-NN files) sound
    assert embedlens.load(str(tiny_gpt2_dir)).entry.folder == lens.entry.folder and path.is_file()


def test_knn_cli(tiny_gpt2_dir, cache_dir, run_cli):
    res = run_cli("knn", "-m", tiny_gpt2_dir, "--k", "5", "--json")
    assert res.code == 0, res
    meta = json.loads(res.out)
    assert meta["k"] == 5 and meta["method"] == "exact" and not meta["from_cache"]
    res = run_cli("knn", "-m", tiny_gpt2_dir, "--k", "5", "--json")
    assert json.loads(res.out)["from_cache"]
    res = run_cli("knn", "-m", tiny_gpt2_dir, "--k", "5", "--approx", "--json")
    assert json.loads(res.out)["method"] == "exact"  # the cached exact graph answers an approx request
    res = run_cli("knn", "-m", tiny_gpt2_dir, "--k", "5", "--approx", "--rebuild")
    assert res.code == 0 and "recall@5" in res.out
    res = run_cli("knn", "-m", tiny_gpt2_dir, "--k", "0")
    assert res.code == 2 and res.err.count("\n") == 1 and "k must be" in res.err


def test_approx_without_fast_bf16_is_exact(monkeypatch, caplog):
    monkeypatch.setattr("embedlens.hardware.fast_bfloat16", lambda: False)
    x = np.random.default_rng(0).normal(size=(200, 16)).astype(np.float32)
    g = knn_graph(x, 5, method="approx")
    exact = knn_graph(x, 5, method="exact")
    assert g.method == "exact" and g.recall == 1.0 and "no fast bfloat16" in g.params["note"]
    np.testing.assert_array_equal(g.indices, exact.indices)


def test_fast_bfloat16_probe_answers():
    assert isinstance(REAL_PROBE.__wrapped__(), bool)  # unpatched, uncached


def test_approx_request_reuses_the_exact_graph(tiny_gpt2_dir, cache_dir, monkeypatch):
    monkeypatch.setattr("embedlens.hardware.fast_bfloat16", lambda: False)
    lens = embedlens.load(str(tiny_gpt2_dir))
    g, path, from_cache = build_knn(lens, "input", 6, method="approx")
    assert not from_cache and g.method == "exact" and path == knn_path(lens, "input", 6, "exact")
    again, path2, from_cache = build_knn(lens, "input", 6, method="approx")
    assert from_cache and path2 == path and np.array_equal(again.indices, g.indices)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_normalized_rows_in_blocks_keeps_zero_rows_and_the_dtype(dtype):
    from embedlens.neighbors.exact import normalized_rows as unit

    x = np.random.default_rng(0).normal(size=(1000, 7)).astype(np.float32) * 50
    x[[4, 999]] = 0.0
    got = unit(x, block=128, dtype=dtype)  # several blocks, a short last one
    assert got.dtype == dtype and got.flags.c_contiguous
    want = x.astype(np.float64) / np.linalg.norm(x.astype(np.float64), axis=1, keepdims=True).clip(1e-300)
    want[[4, 999]] = 0.0
    np.testing.assert_allclose(got, want, rtol=1e-6 if dtype == np.float32 else 1e-12, atol=1e-7)
    assert (got[[4, 999]] == 0).all() and np.isfinite(got).all()
