"""A handle's spaces as typed views (``lens.input``, ``lens.output``): what every stage takes."""

from __future__ import annotations

import numpy as np
import pytest

import embedlens
from embedlens.errors import EmbedlensError
from embedlens.lens import SpaceLens, SpaceView, as_view
from embedlens.reduce.options import ReduceOptions
from embedlens.spaces.space import EmbeddingSpace


def _cosine_topk(matrix: np.ndarray, row: int, k: int) -> list[int]:
    m = matrix.astype(np.float64)
    m /= np.linalg.norm(m, axis=1, keepdims=True)
    s = m @ m[row]
    s[row] = -np.inf
    return np.argsort(-s, kind="stable")[:k].tolist()


@pytest.fixture()
def llama(tiny_llama_dir, cache_dir):
    return embedlens.load(str(tiny_llama_dir))


def test_views_hold_their_own_space(llama):
    assert isinstance(llama.input, SpaceView) and llama.input is llama.view("input")
    assert llama.output.which == "output" and llama.output.lens is llama and llama.output.is_model
    out = np.asarray(llama.output.space.vectors)
    assert not np.array_equal(out, np.asarray(llama.input.space.vectors))  # untied head
    # a view answers on its own space what its handle answers with space=...
    assert llama.output.nearest("id:7", 5).to_dict() == llama.nearest("id:7", 5, space="output").to_dict()
    assert [n.id for n in llama.output.nearest("id:7", 5).neighbors] == _cosine_topk(out, 7, 5)


def test_a_plain_space_has_one_view(cache_dir):
    lens = SpaceLens(EmbeddingSpace.from_arrays(np.eye(6, dtype=np.float32) + 0.1, [f"w{i}" for i in range(6)]))
    assert lens.input.space is lens.space and not lens.input.is_model and lens.input.token_scheme == "plain"
    with pytest.raises(EmbedlensError, match="only one space"):
        lens.output  # noqa: B018
    with pytest.raises(EmbedlensError, match="unknown space"):
        lens.view("middle")


def test_as_view_takes_a_view_or_a_handle_and_refuses_a_contradiction(llama):
    assert as_view(llama) is llama.input and as_view(llama, "output") is llama.output
    assert as_view(llama.output) is llama.output
    with pytest.raises(EmbedlensError, match="pass one of them"):
        as_view(llama.output, "input")
    with pytest.raises(TypeError):
        as_view(np.zeros((3, 3)))


def test_stages_work_on_the_view_they_are_given(llama):
    from embedlens.atlas import build_atlas
    from embedlens.graph import build_graph
    from embedlens.neighbors.knn import build_knn

    out = np.asarray(llama.output.space.vectors)
    g = build_graph(llama.output, ["id:7"], k=4)
    assert g.params["which"] == "output"
    assert sorted(e.target for e in g.edges if e.source == 7) == sorted(_cosine_topk(out, 7, 4))
    assert build_graph(llama, ["id:7"], which="output", k=4).to_dict() == g.to_dict()

    graph, path, _ = build_knn(llama.output, 4)
    assert path.name == "knn-output-k4-exact.safetensors"
    assert graph.indices[7].tolist() == _cosine_topk(out, 7, 4)

    atlas = build_atlas(llama.output, all_tokens=True, reduce=ReduceOptions("pca"), progress=False)
    assert atlas.params["which"] == "output" and atlas.space == llama.output.space.name
    unit = out / np.linalg.norm(out, axis=1, keepdims=True)  # cosine maps work on unit rows
    centred = unit - unit.mean(axis=0)
    top = np.linalg.svd(centred.astype(np.float64), full_matrices=False)[2][:2]
    expect = centred @ top.T
    np.testing.assert_allclose(np.abs(atlas.coords), np.abs(expect), atol=1e-3)  # PCA up to each axis' sign


@pytest.mark.parametrize("ids", [np.arange(50), np.random.default_rng(0).permutation(50) * 3,
                                 np.random.default_rng(1).integers(0, 20, size=50)])
def test_rows_of_ids_is_row_of_id_without_the_dict(ids):
    """The vectorized lookup gives every row the dict gives (the last row of a repeated id), -1 for the rest."""
    sp = EmbeddingSpace.from_arrays(np.ones((len(ids), 2), np.float32), [str(i) for i in range(len(ids))], ids=ids)
    asked = np.concatenate([ids, [-5, 10_000, int(ids.max()) + 1], np.arange(-2, 70)])
    expected = [sp.row_of_id.get(int(i), -1) for i in asked]
    assert sp.rows_of_ids(asked).tolist() == expected
    assert sp.rows_of_ids(asked.reshape(-1, 1)).shape == (asked.size, 1)
    assert sp.rows_of_ids([2**70, int(ids[3]), -(2**64)]).tolist() == [-1, sp.row_of_id[int(ids[3])], -1]  # past int64
