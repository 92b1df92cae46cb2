"""The real packaged SmolLM2-135M: the path users run, exercised end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytestmark = pytest.mark.real_model


def test_shape_and_facts(smollm2):
    assert smollm2.space.vectors.shape == (49152, 576)
    assert smollm2.meta["model_type"] == "llama" and smollm2.meta["n_layers"] == 30 and smollm2.meta["tied"]
    assert smollm2.meta["token_scheme"] == "byte_level"


def test_token_ids_equal_the_models_tokenizer(smollm2):
    from embedlens.models import load_tokenizer

    tok = load_tokenizer(smollm2.source)  # straight from the GGUF, not from the cache
    for text in ["The capital of France is", "lists, List, _list!\n\tdone", "naïve café 東京 🙂"]:
        assert smollm2.encode(text) == tok(text)["input_ids"]
    assert smollm2.encode("The capital of France is") == [504, 3575, 282, 4649, 314]


def test_list_neighbors(smollm2):
    res = smollm2.nearest(" list", 20)
    shown = [n.display for n in res.neighbors]
    assert "List" in shown and "␣lists" in shown
    assert 1398 not in [n.id for n in res.neighbors]  # the query's own token


def test_neighbors_equal_brute_force(smollm2):
    vecs = np.asarray(smollm2.space.vectors, dtype=np.float64)
    unit = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
    for query in (" king", "Paris", "id:1000"):
        rq = smollm2.resolve(query)
        q = rq.vector / np.linalg.norm(rq.vector)
        scores = unit @ q
        scores[rq.rows] = -np.inf
        expected = np.argsort(-scores, kind="stable")[:15]
        got = smollm2.nearest(query, 15)
        assert [n.id for n in got.neighbors] == expected.tolist()
        np.testing.assert_allclose([n.score for n in got.neighbors], scores[expected], rtol=1e-4, atol=1e-5)


def test_special_tokens_marked(smollm2):
    assert smollm2.space.display[1] == "⟪<|im_start|>⟫" and smollm2.space.special[1]
    assert smollm2.space.labels[1] == "<|im_start|>"


def test_cli_on_default_model(use_shared_cache, smollm2, run_cli):
    res = run_cli("neighbors", " list", "--json", "-k", "5")
    assert res.code == 0, res
    assert json.loads(res.out)["query_ids"] == [1398]
    res = run_cli("variants", "list", "--json")
    shown = {n["display"] for n in json.loads(res.out)["neighbors"]}
    assert {"list", "␣list", "List", "␣lists", "lists"} <= shown
