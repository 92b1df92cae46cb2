"""The full-vocabulary k-NN graph: exact equals brute force, approx recall is what a direct check finds, cache."""

from __future__ import annotations

import json

import numpy as np
import pytest

import embedlens
from embedlens.errors import EmbedlensError
from embedlens.hardware import fast_bfloat16 as REAL_PROBE
from embedlens.lens import SpaceLens
from embedlens.neighbors.index import ExactIndex, Neighbors, recall_at_k
from embedlens.neighbors.knn import (
    FORMAT_VERSION,
    KnnGraph,
    build_knn,
    cached_knn,
    knn_graph,
    knn_path,
    space_index,
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
    np.testing.assert_array_equal(g.indices, idx)  # bit for bit: near-ties settled in float64, ties by row
    assert not (g.indices == np.arange(len(matrix))[:, None]).any()  # self excluded
    assert np.all(np.diff(g.scores, axis=1) <= 1e-7)  # best first


def test_exact_handles_duplicate_and_zero_rows():
    x = np.random.default_rng(0).normal(size=(60, 5)).astype(np.float32)
    x[10] = x[11] = x[12]  # three identical rows
    x[20] = 0.0
    for backend in ("torch", "faiss", "numpy"):
        g = knn_graph(x, 4, backend=backend)
        assert not (g.indices == np.arange(60)[:, None]).any()
        assert g.indices[10, :2].tolist() == [11, 12]  # identical rows come in row order
        np.testing.assert_allclose(g.scores[10, :2], 1.0, atol=1e-6)
        assert np.isfinite(g.scores).all()



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


def test_recall_at_k_counts_ids_and_ties_with_the_kth():
    truth = Neighbors(np.array([[2, 1], [3, 5]]), np.array([[0.9, 0.8], [0.7, 0.6]], dtype=np.float32))
    found = Neighbors(np.array([[1, 2], [3, 4]]), np.array([[0.9, 0.8], [0.7, 0.5]], dtype=np.float32))
    assert recall_at_k(found, truth) == 0.75
    tied = Neighbors(np.array([[1, 2], [3, 4]]), np.array([[0.9, 0.8], [0.7, 0.6]], dtype=np.float32))
    assert recall_at_k(tied, truth) == 1.0  # row 4 is as close as the true 2nd: an equally true answer


@pytest.mark.parametrize("k", [0, -3, 1500, 2.5])
def test_k_out_of_range(matrix, k):
    with pytest.raises(EmbedlensError, match="k must be an integer"):
        knn_graph(matrix, k)


def test_bad_method_and_backend(matrix):
    with pytest.raises(EmbedlensError, match="method"):
        knn_graph(matrix, 3, method="fast")
    with pytest.raises(EmbedlensError, match="backend"):
        knn_graph(matrix, 3, backend="annoy")


def test_space_index_reads_a_cached_graph_and_scans_otherwise(matrix, cache_dir):
    lens = SpaceLens(EmbeddingSpace.from_arrays(matrix, [f"w{i}" for i in range(len(matrix))], name="rand"))
    assert isinstance(space_index(lens.input, 5), ExactIndex)  # nothing cached: the scan
    build_knn(lens.input, 8)
    index = space_index(lens.input, 5)
    assert index.graph.k == 5 and index.fallback is not None
    rows = np.array([3, 40, 700])
    scan = ExactIndex(matrix)
    np.testing.assert_array_equal(index.query(rows, 5).indices, scan.query(rows, 5).indices)
    np.testing.assert_array_equal(index.query(rows, 12).indices, scan.query(rows, 12).indices)  # k > 8: the scan
    assert space_index(lens.input).graph.k == 8  # k=None: the widest graph on disk
    assert isinstance(space_index(lens.input, 9), ExactIndex)


def test_a_graph_of_an_older_format_is_rebuilt_not_used(matrix, cache_dir):
    import json as _json

    lens = SpaceLens(EmbeddingSpace.from_arrays(matrix, [f"w{i}" for i in range(len(matrix))], name="rand"))
    g, path, _ = build_knn(lens.input, 6)
    meta = _json.loads(path.with_suffix(".json").read_text())
    path.with_suffix(".json").write_text(_json.dumps({**meta, "format": FORMAT_VERSION - 1}))
    assert cached_knn(lens.input, 6) is None
    _, _, from_cache = build_knn(lens.input, 6)
    assert not from_cache and KnnGraph.load(path).format == FORMAT_VERSION


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
    assert cached_knn(lens.input, 5) is None
    g, path, from_cache = build_knn(lens.input, 8)
    assert not from_cache and path.is_file() and path.parent.parent == cache_dir / "spaces"
    again, _, from_cache = build_knn(lens.input, 8)
    assert from_cache and np.array_equal(again.indices, g.indices)
    small = cached_knn(lens.input, 5)
    assert small is not None and small.k == 5 and np.array_equal(small.indices, g.indices[:, :5])
    assert cached_knn(lens.input, 9) is None  # cached k is too small
    # a space with other vectors does not see this cache
    other = SpaceLens(EmbeddingSpace.from_arrays(matrix * 2 + 1, [f"w{i}" for i in range(len(matrix))]))
    assert cached_knn(other.input, 5) is None


def test_model_cache_lives_in_the_entry(tiny_gpt2_dir, cache_dir):
    lens = embedlens.load(str(tiny_gpt2_dir))
    g, path, _ = build_knn(lens.input, 6, method="approx")
    assert path == lens.entry.folder / "knn-input-k6-approx.safetensors" == knn_path(lens.input, 6, "approx")
    assert path.with_suffix(".json").is_file()
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["model"]["content_hash"] == lens.meta["content_hash"] and "versions" in meta
    assert cached_knn(lens.input, 6).method == "approx"
    build_knn(lens.input, 6)
    assert cached_knn(lens.input, 4).method == "exact"  # exact preferred
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


@pytest.mark.parametrize("bf16_seconds, expected", [(0.1, False), (0.001, True)])
def test_fast_bfloat16_probe_compares_measured_products(monkeypatch, bf16_seconds, expected):
    """The probe says "fast" exactly when its timed bfloat16 product is no slower than float32's."""
    import time

    import torch

    def timed_mm(a, b):  # a product whose duration depends only on its dtype, as on a CPU with / without bf16 units
        time.sleep(bf16_seconds if a.dtype == torch.bfloat16 else 0.03)
        return torch.zeros((a.shape[0], b.shape[1]), dtype=a.dtype)

    monkeypatch.setattr(torch, "mm", timed_mm)
    assert REAL_PROBE.__wrapped__() is expected  # unpatched by the fixture, uncached


def test_fast_bfloat16_probe_agrees_with_a_direct_timing_on_this_cpu():
    import time

    import torch

    a = torch.randn(512, 512)
    pair = {torch.float32: a, torch.bfloat16: a.to(torch.bfloat16)}
    best = {dtype: float("inf") for dtype in pair}
    for x in pair.values():
        torch.mm(x, x)
    for _ in range(7):  # in turns, best of each: parallel tests load the machine in bursts
        for dtype, x in pair.items():
            t = time.perf_counter()
            torch.mm(x, x)
            best[dtype] = min(best[dtype], time.perf_counter() - t)
    ratio = best[torch.bfloat16] / best[torch.float32]
    answer = REAL_PROBE.__wrapped__()
    if ratio > 5:  # clearly slow (a scalar fallback is ~40x): the probe must say so
        assert answer is False, ratio
    elif ratio < 0.4:  # clearly fast (bf16 units)
        assert answer is True, ratio


def test_approx_request_reuses_the_exact_graph(tiny_gpt2_dir, cache_dir, monkeypatch):
    monkeypatch.setattr("embedlens.hardware.fast_bfloat16", lambda: False)
    lens = embedlens.load(str(tiny_gpt2_dir))
    g, path, from_cache = build_knn(lens.input, 6, method="approx")
    assert not from_cache and g.method == "exact" and path == knn_path(lens.input, 6, "exact")
    again, path2, from_cache = build_knn(lens.input, 6, method="approx")
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


def test_space_content_hash_is_the_sha256_of_the_float32_bytes_whatever_the_layout():
    """The cache key of a matrix: one SHA-256 of its shape and C-ordered float32 bytes, however it is stored
    and however many blocks it is read in (the blocks are hashed in place, without copies)."""
    import hashlib

    from embedlens.neighbors.knn import space_content_hash

    rng = np.random.default_rng(0)
    base = rng.standard_normal((301, 40))
    expected = hashlib.sha256(f"{base.shape}".encode() + base.astype(np.float32).tobytes()).hexdigest()[:16]
    for layout in (base.astype(np.float32), base, np.asfortranarray(base.astype(np.float32))):
        for block_bytes in (1, 4 * 40 * 7, 1 << 26):
            assert space_content_hash(layout, block_bytes=block_bytes) == expected
    strided = rng.standard_normal((50, 80)).astype(np.float32)[:, ::2]
    assert space_content_hash(strided) == hashlib.sha256(
        f"{strided.shape}".encode() + np.ascontiguousarray(strided).tobytes()).hexdigest()[:16]
