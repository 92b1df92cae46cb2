"""The real packaged Gemma 3 270M (GGUF in four parts): 262,144 tokens, sqrt(d) input scale, tied head.

Installed by the test set-up, so CI runs its whole path: assembly and extraction, neighbours, a map and a
grid map, each against an independent computation.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

# one xdist worker runs every Gemma test: the 262,144-token model is loaded once
pytestmark = [pytest.mark.real_model, pytest.mark.slow, pytest.mark.xdist_group("gemma")]


@pytest.fixture(scope="module")
def gemma_model(gemma3):
    """The full model as transformers dequantizes it from the GGUF, the reference for every check.

    Read through transformers' own loader from the safetensors copy that its GGUF dequantization wrote once
    into the cache (every weight name matched, see ``copy_weights``): the same weights as a direct GGUF load
    at a fraction of its cost (a direct load dequantizes the whole file again, ~75 s on two cores).
    """
    import torch
    from transformers import AutoModelForCausalLM

    from embedlens.models.weights import weights_folder

    model = AutoModelForCausalLM.from_pretrained(str(weights_folder(gemma3.source)), dtype=torch.float32)
    return model.eval()


def test_extracted_matrix_equals_the_models_embedding(gemma3, gemma_model):
    w = gemma_model.get_input_embeddings().weight.detach().numpy()
    sp = gemma3.space
    assert sp.vectors.shape == (262_144, 640) and w.shape[1] == 640
    np.testing.assert_array_equal(np.asarray(sp.vectors[: w.shape[0]]), w[: len(sp)])
    assert gemma3.meta["model_type"].startswith("gemma3") and gemma3.meta["tied"] is True
    assert gemma3.meta["embed_scale"] == pytest.approx(math.sqrt(640))


def test_neighbors_equal_brute_force_cosine(gemma3):
    sp = gemma3.space
    result = gemma3.nearest(" Paris", 10)
    (row,) = gemma3.resolve(" Paris").rows
    x = np.asarray(sp.vectors, dtype=np.float64)
    cos = x @ x[row] / (np.linalg.norm(x, axis=1) * np.linalg.norm(x[row]) + 1e-30)
    cos[row] = -np.inf
    want = np.argsort(-cos, kind="stable")[:10]
    assert [n.id for n in result.neighbors] == sp.ids[want].tolist()
    np.testing.assert_allclose([n.score for n in result.neighbors], cos[want], atol=1e-5)


def test_cli_map_of_a_corpus(gemma3, use_shared_cache, run_cli, tmp_path):
    import pyarrow.parquet as pq

    corpus = tmp_path / "c.txt"
    corpus.write_text("The capital of France is Paris. Berlin is the capital of Germany. Москва — столица России.\n"
                      "東京は日本の首都です。 He said \"yes\" & left.\n", encoding="utf-8")
    out = tmp_path / "map"
    r = run_cli("map", "--model", "gemma3-270m", "--corpus", corpus, "--method", "pca", "--out", out, "--no-png")
    assert r.code == 0, r
    pts = pq.read_table(out / "points.parquet").to_pydict()
    ids = pts.get("token_id") or pts.get("id")
    encoded = set()
    for line in corpus.read_text(encoding="utf-8").splitlines():
        encoded |= set(gemma3.encode(line, add_special_tokens=False))
    assert set(ids) == encoded  # every token of the corpus, tokenized line by line, and nothing else
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"]["spec"] == "gemma3-270m"


def test_grid_tokens_plane_at_layer0_is_the_models_next_token(gemma3, gemma_model, tmp_path):
    import torch

    from embedlens.grid import create_embedding_grid_map

    ids = [gemma3.resolve(w).rows[0] for w in (" Paris", " Berlin", " king")]
    out = create_embedding_grid_map(gemma3, layer_idx=0, grid_size=3, spacing=1.0, embedding_method="tokens",
                                    plane_tokens=",".join(f"id:{i}" for i in ids), output_dir=tmp_path, html=False)
    gm = out.maps[0]
    with torch.no_grad():
        logits = gemma_model(input_ids=torch.tensor([[i] for i in ids])).logits[:, 0, :]
    # (0,0) = A, (1,0) = B, (0,1) = C: each alone at position 0, through the sqrt(d)-scaled input
    np.testing.assert_array_equal(gm.token_ids[[4, 5, 7]], logits.argmax(-1).numpy())
