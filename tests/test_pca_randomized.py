"""The randomized PCA route: compared with exact PCA, and the accuracy it states must hold."""

from __future__ import annotations

import numpy as np
import pytest

from embedlens.errors import EmbedlensError
from embedlens.reduce import make_reducer
from embedlens.reduce import pca as pca_module
from embedlens.reduce.pca import PCAReducer, fit_pca, pick_solver


def slow_spectrum(n: int, d: int, decay: float, seed: int = 0) -> np.ndarray:
    """Rows whose covariance eigenvalues fall like i^-decay in a random basis, off the origin."""
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.standard_normal((d, d)))
    scale = np.arange(1, d + 1) ** (-decay / 2)
    return ((rng.standard_normal((n, d)) * scale) @ basis.T + 0.5).astype(np.float32)


def largest_angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Largest principal angle between the row spaces of ``a`` and ``b`` (orthonormal rows)."""
    cosines = np.linalg.svd(a @ b.T, compute_uv=False)
    return float(np.degrees(np.arccos(np.clip(cosines.min(), -1.0, 1.0))))


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
@pytest.mark.parametrize("k, decay", [(2, 0.5), (3, 1.0)])
def test_randomized_pca_states_an_honest_accuracy(metric, k, decay):
    x = slow_spectrum(3000, 120, decay)
    exact = fit_pca(x, k, metric=metric)
    fast = fit_pca(x, k, metric=metric, solver="randomized", seed=3)
    acc = fast.info["accuracy"]
    assert acc["resolved"] and "a-posteriori" in acc["bound"]
    angle = largest_angle_deg(exact.components, fast.components)
    assert angle <= acc["max_principal_angle_deg"] < 2.0  # honest, and informative
    rel = np.abs(fast.variances - exact.variances) / exact.variances
    assert rel.max() <= acc["explained_variance_rel_error"] < 1e-3
    ratio_error = np.abs(fast.variances - exact.variances).max() / exact.total_variance
    assert ratio_error <= acc["explained_variance_ratio_error"]
    assert fast.total_variance == pytest.approx(exact.total_variance, rel=1e-6)
    np.testing.assert_allclose(fast.mean, exact.mean, atol=1e-6)
    # same seed, same map; the coordinates follow the components
    again = fit_pca(x, k, metric=metric, solver="randomized", seed=3)
    np.testing.assert_array_equal(again.components, fast.components)
    y_fast, y_exact = fast.transform(x), exact.transform(x)
    assert np.abs(np.sum(fast.components * exact.components, axis=1)).min() > np.cos(np.radians(2.0))
    assert y_fast.shape == y_exact.shape == (3000, k)


def test_a_flat_spectrum_is_reported_unresolved_or_still_bounded():
    """A random matrix (what a shape-only checkpoint holds): no component stands out; the bound must say so."""
    x = np.random.default_rng(1).standard_normal((4000, 120)).astype(np.float32)
    exact = fit_pca(x, 2, metric="cosine")
    fast = fit_pca(x, 2, metric="cosine", solver="randomized")
    acc = fast.info["accuracy"]
    assert acc["passes"] <= pca_module.MAX_ITER
    angle = largest_angle_deg(exact.components, fast.components)
    if acc["resolved"]:
        assert angle <= acc["max_principal_angle_deg"]
    else:
        assert acc["max_principal_angle_deg"] == 90.0 and acc["explained_variance_rel_error"] is None


def test_auto_takes_the_randomized_route_only_for_large_inputs(monkeypatch):
    assert pick_solver("auto", 49_152, 576) == "exact"
    assert pick_solver("auto", 262_144, 640) == "exact"
    assert pick_solver("auto", 128_256, 4096) == "randomized"
    assert pick_solver("randomized", 11, 64) == "exact"  # fewer rows than columns: the Gram route is exact anyway
    assert pick_solver("exact", 128_256, 4096) == "exact"
    x = slow_spectrum(3000, 100, 1.0)
    monkeypatch.setattr(pca_module, "RANDOMIZED_MIN_FLOPS", 1e6)
    reducer = make_reducer("pca", metric="cosine")
    reducer.fit(x)
    assert reducer.params_["route"] == "randomized" and reducer.params_["pca_solver"] == "auto"
    assert reducer.params_["accuracy"]["resolved"]
    assert any(n.startswith("randomized PCA") and "principal angle" in n for n in reducer.notes_)
    exact = make_reducer("pca", metric="cosine", pca_solver="exact").fit(x)
    assert exact.params_["route"] == "exact" and "accuracy" not in exact.params_
    assert not any("randomized" in n for n in exact.notes_)
    with pytest.raises(EmbedlensError, match="unknown PCA solver 'fast'"):
        PCAReducer(solver="fast").fit(x)


def test_cli_pca_option_reaches_the_manifest(run_cli, tmp_path, tiny_gpt2_dir, cache_dir, monkeypatch):
    import json

    monkeypatch.setattr(pca_module, "RANDOMIZED_MIN_FLOPS", 1.0)
    out = tmp_path / "m"
    res = run_cli("map", "--model", str(tiny_gpt2_dir), "--all", "--no-png", "--out", str(out), "--json")
    assert res.code == 0, res.err
    params = json.loads((out / "manifest.json").read_text())["params"]["reducer"]
    assert params["route"] == "randomized" and "max_principal_angle_deg" in params["accuracy"]
    res = run_cli("map", "--model", str(tiny_gpt2_dir), "--all", "--pca", "exact", "--no-png", "--out", str(out),
                  "--json")
    assert res.code == 0, res.err
    params = json.loads((out / "manifest.json").read_text())["params"]["reducer"]
    assert params["route"] == "exact" and params["pca_solver"] == "exact"
    res = run_cli("map", "--model", str(tiny_gpt2_dir), "--all", "--pca", "fast", "--out", str(out))
    assert res.code == 2


@pytest.mark.parametrize("keep_rows", [True, False])
def test_randomized_pca_of_float64_rows_far_from_the_origin(monkeypatch, keep_rows):
    """Rows near 1e3 (float64): shifted before any float32 product, with or without the kept prepared rows."""
    if not keep_rows:
        monkeypatch.setattr(pca_module, "PREPARED_MAX_BYTES", 0)
    x = slow_spectrum(2000, 80, 1.0, seed=4).astype(np.float64) + 1e3
    exact = fit_pca(x, 2, metric="euclidean")
    fast = fit_pca(x, 2, metric="euclidean", solver="randomized")
    acc = fast.info["accuracy"]
    assert acc["resolved"]
    assert largest_angle_deg(exact.components, fast.components) <= acc["max_principal_angle_deg"] < 2.0
    assert np.abs(fast.variances - exact.variances).max() / exact.variances.min() <= acc["explained_variance_rel_error"]
    np.testing.assert_allclose(fast.mean, exact.mean, atol=1e-6)  # the shifted rows are summed from float32
