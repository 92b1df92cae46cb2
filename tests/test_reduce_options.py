"""ReduceOptions: one checked, frozen object for a map's reducer settings, and the reducer it builds."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from embedlens.errors import EmbedlensError
from embedlens.reduce import make_reducer
from embedlens.reduce.options import ReduceOptions
from embedlens.reduce.pca import PCAReducer
from embedlens.reduce.tsne import TSNEReducer
from embedlens.reduce.umap import UMAPReducer


@pytest.mark.parametrize("method", ["pca", "tsne", "umap"])
@pytest.mark.parametrize("changes, message", [
    ({"n_components": 4}, "`n_components` must be 2 or 3"),
    ({"metric": "manhattan"}, "unknown metric 'manhattan'"),
    ({"seed": -1}, "seed must be an integer between 0 and 2**32 - 1"),
    ({"perplexity": 0}, "perplexity must be a positive number"),
    ({"perplexity": float("nan")}, "perplexity must be a positive number"),
    ({"n_iter": -1}, "n_iter must be a non-negative integer"),
    ({"early_exaggeration_iter": 2.5}, "early_exaggeration_iter must be a non-negative integer"),
    ({"n_neighbors": 1}, "n_neighbors must be an integer of at least 2"),
    ({"min_dist": 2}, "min_dist must be a number between 0 and 1"),
    ({"n_epochs": 0}, "n_epochs must be a positive integer or None"),
    ({"pre_pca": 1}, "pre_pca must be an integer of at least 2"),
    ({"pca_solver": "svd"}, "unknown PCA solver 'svd'"),
    ({"n_jobs": 0}, "n_jobs must be a positive integer, -1 or None"),
])
def test_every_setting_is_checked_whatever_the_method(method, changes, message):
    with pytest.raises(EmbedlensError) as err:
        ReduceOptions(method, **changes)
    assert str(err.value).startswith(message), str(err.value)


def test_unknown_method_and_axis_mistakes_are_refused():
    with pytest.raises(EmbedlensError, match=r"unknown method 'mds' \(choose pca, tsne, umap, axes\)"):
        ReduceOptions("mds")
    with pytest.raises(EmbedlensError, match="an axes map needs an x axis"):
        ReduceOptions("axes")
    with pytest.raises(EmbedlensError, match="a z axis needs a y axis too"):
        ReduceOptions("axes", x_axis=("a", "b"), z_axis=("c", "d"))
    with pytest.raises(EmbedlensError, match="word axes make their own map"):
        ReduceOptions("pca", x_axis=("a", "b"))
    with pytest.raises(EmbedlensError, match="goes from 'a' to itself"):
        ReduceOptions("axes", x_axis=["a", "a"])


def test_frozen_and_replace_checks_the_copy():
    opts = ReduceOptions("umap", min_dist=0.3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.min_dist = 0.5  # type: ignore[misc]
    assert opts.replace(min_dist=0.5).min_dist == 0.5 and opts.min_dist == 0.3
    with pytest.raises(EmbedlensError, match="min_dist must be a number between 0 and 1"):
        opts.replace(min_dist=5)


def test_axes_are_tuples_and_a_z_axis_makes_the_map_3d():
    opts = ReduceOptions("axes", x_axis=["man", "woman"], y_axis=["cold", "hot"], z_axis=["a", "b"])
    assert opts.x_axis == ("man", "woman") and opts.n_components == 3
    assert hash(opts) == hash(ReduceOptions("axes", 3, x_axis=("man", "woman"), y_axis=("cold", "hot"),
                                            z_axis=("a", "b")))
    with pytest.raises(EmbedlensError, match="resolved against a space"):
        opts.reducer()


@pytest.mark.parametrize("opts, cls, expected", [
    (ReduceOptions("pca", 3, "euclidean", 4, pca_solver="exact"), PCAReducer,
     {"n_components": 3, "metric": "euclidean", "seed": 4, "solver": "exact"}),
    (ReduceOptions("tsne", seed=2, perplexity=12.0, pre_pca=20, n_jobs=1, n_iter=30, early_exaggeration_iter=10),
     TSNEReducer, {"n_components": 2, "metric": "cosine", "seed": 2, "perplexity": 12.0, "pre_pca": 20,
                   "n_jobs": 1, "n_iter": 30, "early_exaggeration_iter": 10}),
    (ReduceOptions("umap", 3, seed=9, n_neighbors=7, min_dist=0.25, n_epochs=40, pre_pca=16), UMAPReducer,
     {"n_components": 3, "metric": "cosine", "seed": 9, "n_neighbors": 7, "min_dist": 0.25, "n_epochs": 40,
      "pre_pca": 16}),
])
def test_the_reducer_carries_every_setting(opts, cls, expected):
    reducer = opts.reducer()
    assert type(reducer) is cls
    params = reducer.get_params()
    assert {name: params[name] for name in expected} == expected
    # make_reducer is the short form of the same thing
    same = make_reducer(opts.method, **{k: v for k, v in opts.to_dict().items() if k != "method"})
    assert same.get_params() == params


def test_options_and_the_reducer_class_give_the_same_seeded_map():
    x = np.random.default_rng(0).normal(size=(60, 8)).astype(np.float32)
    a = ReduceOptions("pca", 3, seed=1).reducer().fit_transform(x)
    b = PCAReducer(n_components=3, seed=1).fit_transform(x)
    np.testing.assert_array_equal(a, b)


def test_to_dict_is_json_and_round_trips():
    opts = ReduceOptions("axes", metric="euclidean", x_axis=("man", "woman"), seed=np.int64(3))
    data = json.loads(json.dumps(opts.to_dict()))
    assert data["x_axis"] == ["man", "woman"] and data["seed"] == 3 and data["method"] == "axes"
    assert ReduceOptions.from_dict(data) == opts
    assert set(data) == {f.name for f in dataclasses.fields(ReduceOptions)}
    with pytest.raises(EmbedlensError, match="unknown reduce option"):
        ReduceOptions.from_dict({**data, "min_dits": 0.2})


def test_is_default_ignores_method_dims_seed_and_threads_only():
    for method in ("pca", "tsne", "umap"):
        assert ReduceOptions(method, 3, seed=5, n_jobs=2).is_default()
    for changed in ({"metric": "euclidean"}, {"perplexity": 10}, {"min_dist": 0.2}, {"n_neighbors": 30},
                    {"pre_pca": 50}, {"pca_solver": "randomized"}, {"n_epochs": 100}, {"n_iter": 100}):
        assert not ReduceOptions("tsne", **changed).is_default(), changed
    assert not ReduceOptions("axes", x_axis=("a", "b")).is_default()


def test_the_map_command_builds_its_options_once_from_its_flags(run_cli, tiny_gpt2_dir, cache_dir, tmp_path,
                                                                 monkeypatch):
    import embedlens.atlas.pipeline as pipeline

    made: list[ReduceOptions] = []
    real_init = ReduceOptions.__post_init__
    monkeypatch.setattr(ReduceOptions, "__post_init__", lambda self: (made.append(self), real_init(self))[1])
    seen = {}

    def stop(view, out, **options):  # the options reach the pipeline unchanged; no map is made
        seen.update(options)
        raise pipeline.EmbedlensError("stopped by the test")

    monkeypatch.setattr(pipeline, "write_atlas", stop)
    r = run_cli("map", "--model", tiny_gpt2_dir, "--all", "--method", "umap", "--dims", "3", "--seed", "7",
                "--n-neighbors", "5", "--min-dist", "0.25", "--pre-pca", "4", "--pca", "exact", "--metric", "euclidean",
                "--out", tmp_path / "m", "--no-png")
    assert r.code == 2 and "stopped by the test" in r.err
    assert made == [seen["reduce"]]  # made once, from the flags
    assert seen["reduce"] == ReduceOptions("umap", 3, "euclidean", 7, n_neighbors=5, min_dist=0.25, pre_pca=4,
                                           pca_solver="exact")
    r = run_cli("map", "--model", tiny_gpt2_dir, "--all", "--dims", "4", "--out", tmp_path / "m")
    assert r.code == 2 and "--dims must be 2 or 3" in r.err and len(r.err.strip().splitlines()) == 1, r.err


def test_a_cached_default_map_drawn_with_earlier_size_defaults_is_recomputed(tmp_path, monkeypatch):
    """A whole-space map cached under the default key is served only while its recorded size defaults are
    today's: a t-SNE at perplexity 30 or a UMAP at 200 x 5 from a spectral start of a space that now takes the
    big-vocabulary defaults is recomputed; stand-ins that record no such parameter are served."""
    from embedlens.atlas.projection import Projection, load_projection, save_projection
    from embedlens.reduce import tsne as reduce_tsne
    from embedlens.reduce import umap as reduce_umap
    from embedlens.reduce.options import size_defaults

    n = 50
    coords = np.random.default_rng(0).standard_normal((n, 2)).astype(np.float32)
    old = {"tsne": {"perplexity_requested": 30.0, "perplexity": 16.33},
           "umap": {"n_epochs": 500, "negative_sample_rate": 5.0, "init": "spectral"}}
    paths = {}
    for method, params in old.items():
        paths[method] = save_projection(tmp_path / f"{method}.npz", Projection(coords, method, 2, 0, params, []))
        assert size_defaults(method, n, 2) == {k: v for k, v in params.items() if k != "perplexity"}
        assert load_projection(paths[method], n) is not None  # today's defaults for 50 points
    bare = save_projection(tmp_path / "bare.npz", Projection(coords, "tsne", 2, 0, {}, ["stand-in"]))
    monkeypatch.setattr(reduce_tsne, "LARGE_FROM", n)
    monkeypatch.setattr(reduce_umap, "LARGE_FROM", n)
    assert size_defaults("tsne", n, 2) == {"perplexity_requested": 10.0}
    assert size_defaults("umap", n, 2) == {"n_epochs": 60, "negative_sample_rate": 10.0, "init": "random"}
    assert load_projection(paths["tsne"], n) is None and load_projection(paths["umap"], n) is None
    assert load_projection(bare, n) is not None
    assert size_defaults("pca", n, 2) == {}
