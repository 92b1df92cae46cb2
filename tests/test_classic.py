"""Classic baselines: TF-IDF, word2vec, GloVe as spaces, analogies, evaluations, bring-your-own vectors."""

from __future__ import annotations

import importlib
import json
import math
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from embedlens.classic.analogy import analogy
from embedlens.classic.evaluate import evaluate, evaluate_analogies, evaluate_pairs
from embedlens.classic.tfidf import tfidf, word_ids
from embedlens.errors import EmbedlensError
from embedlens.lens import SpaceLens
from embedlens.spaces.space import EmbeddingSpace

NEIGHBOR_KEYS = {"query", "query_ids", "space", "neighbors"}
NEIGHBOR_ITEM_KEYS = {"id", "token", "display", "score"}


def direct_tfidf(words: list[str], n_chunks: int) -> dict[str, np.ndarray]:
    """The primer's formula, computed the plain way: array_split, Counter per chunk."""
    chunks = np.array_split(np.array(words, dtype=object), n_chunks)
    counters = [Counter(c.tolist()) for c in chunks]
    out = {}
    for w in set(words):
        df = sum(1 for c in counters if w in c)
        idf = math.log(n_chunks / df)
        out[w] = np.array([c[w] / len(ch) * idf for c, ch in zip(counters, chunks, strict=True)])
    return out


# -- TF-IDF ------------------------------------------------------------------------------------------


def test_primer_worked_example(tmp_path):
    # 10 documents of 100 words; "cat" occurs 5 times in document 0 and once in document 6.
    docs = []
    for d in range(10):
        words = [f"filler{d}x{i}" for i in range(100)]
        if d == 0:
            words[10:15] = ["cat"] * 5
        if d == 6:
            words[50] = "Cat"  # lowercased by default
        docs.append(" ".join(words))
    (tmp_path / "primer.txt").write_text("\n".join(docs) + "\n")
    result = tfidf(str(tmp_path / "primer.txt"), 10)
    assert result.chunk_lengths.tolist() == [100] * 10
    row = result.words.index("cat")
    assert result.document_frequency[row] == 2
    assert result.idf[row] == pytest.approx(math.log(5)) and round(result.idf[row], 2) == 1.61
    assert result.vectors[row, 0] == pytest.approx(5 / 100 * math.log(5), rel=1e-6)
    assert round(float(result.vectors[row, 0]), 4) == 0.0805
    assert result.vectors[row, 6] == pytest.approx(1 / 100 * math.log(5), rel=1e-6)
    assert np.count_nonzero(result.vectors[row]) == 2
    assert result.words[0] == "cat"  # most frequent first


@pytest.mark.parametrize("keep_case, min_count, n_chunks", [(False, 1, 7), (True, 1, 4), (False, 3, 10)])
def test_tfidf_equals_direct_computation(tmp_path, keep_case, min_count, n_chunks):
    rng = np.random.default_rng(7)
    vocab = ["the", "The", "cat", "Cat", "dog", "naïve", "straße", "x_1", "42", "Öl", "öl", "a"]
    words = rng.choice(vocab, size=1003, p=np.linspace(3, 1, len(vocab)) / np.linspace(3, 1, len(vocab)).sum())
    seps = rng.choice([" ", ", ", "\n", " -- ", "! "], size=len(words))
    text = "".join(f"{w}{s}" for w, s in zip(words, seps, strict=True))
    folder = tmp_path / "corpus"
    folder.mkdir()
    cut = [0, 2000, 2500, len(text)]  # several files, so word ids are merged across text chunks
    for i in range(3):
        (folder / f"{i}.txt").write_text(text[cut[i] : cut[i + 1]] + " ")
    result = tfidf(str(folder), n_chunks, keep_case=keep_case, min_count=min_count)
    seen = re.findall(r"\w+", "".join((folder / f"{i}.txt").read_text() for i in range(3)))
    seen = seen if keep_case else [w.lower() for w in seen]
    expected = direct_tfidf(seen, n_chunks)
    counts = Counter(seen)
    kept = sorted((w for w in expected if counts[w] >= min_count), key=lambda w: (-counts[w], w))
    assert result.words == kept
    got = {w: result.vectors[i] for i, w in enumerate(result.words)}
    for w in kept:
        np.testing.assert_allclose(got[w], expected[w], rtol=1e-6, atol=1e-9)
    assert result.vectors.dtype == np.float32 and result.vectors.shape == (len(kept), n_chunks)


def test_word_ids_object_fallback_matches(monkeypatch):
    texts = ["Alpha beta GAMMA beta", "gamma delta alpha", "  ", "Ünïcode ünïcode"]
    vocab, ids = word_ids(texts)  # one group: the texts are joined
    tfidf_mod = importlib.import_module("embedlens.classic.tfidf")  # the module, not the function of that name
    monkeypatch.setattr(tfidf_mod, "GROUP_CHARS", 1)  # one numpy.unique per text, vocabularies merged after
    vocab1, ids1 = word_ids(texts)
    monkeypatch.setattr(tfidf_mod, "_MAX_UNICODE_CELLS", 0)  # and dtype=object arrays
    vocab2, ids2 = word_ids(texts)
    assert [str(w) for w in vocab] == [str(w) for w in vocab1] == [str(w) for w in vocab2]
    assert [str(w) for w in vocab] == ["alpha", "beta", "delta", "gamma", "ünïcode"]
    np.testing.assert_array_equal(ids, ids1)
    np.testing.assert_array_equal(ids, ids2)
    assert [str(vocab[i]) for i in ids] == [w.lower() for t in texts for w in re.findall(r"\w+", t)]
    vocab, ids = word_ids(["İstanbul İİ"])  # lowercasing lengthens 'İ': nothing may be cut off
    assert [str(vocab[i]) for i in ids] == ["İstanbul".lower(), "İİ".lower()]


def test_tfidf_bad_input(tmp_path):
    small = tmp_path / "small.txt"
    small.write_text("one two three\n")
    with pytest.raises(EmbedlensError, match="3 words, too few for 10 chunks"):
        tfidf(str(small), 10)
    with pytest.raises(EmbedlensError, match="no word occurs at least 5 times"):
        tfidf(str(small), 3, min_count=5)
    with pytest.raises(EmbedlensError, match="at least 2"):
        tfidf(str(small), 1)


def test_tfidf_cli_then_neighbors(tmp_path, run_cli):
    corpus = tmp_path / "c.txt"
    corpus.write_text(" ".join(["alpha beta gamma"] * 20 + ["delta alpha"] * 10 + ["beta epsilon"] * 5))
    out = tmp_path / "run"
    res = run_cli("tfidf", corpus, "--chunks", 5, "--out", out, "--json")
    assert res.code == 0, res
    summary = json.loads(res.out)
    assert summary["n_chunks"] == 5 and summary["chunks"] == 5
    for name in ("space.safetensors", "words.txt", "manifest.json"):
        assert (out / name).is_file()
    from safetensors.numpy import load_file

    vectors = load_file(str(out / "space.safetensors"))["vectors"]
    words = (out / "words.txt").read_text().splitlines()
    assert vectors.dtype == np.float32 and vectors.shape == (len(words), 5)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["method"] == "tfidf" and manifest["min_count"] == 1 and "versions" in manifest
    assert list(summary["timings"]) == ["read", "tfidf"] and manifest["total_seconds"] >= sum(summary["timings"].values())
    expected = tfidf(str(corpus), 5)
    np.testing.assert_array_equal(vectors, expected.vectors)
    nb = run_cli("neighbors", "epsilon", "--space", f"tfidf:{out}", "-k", 2, "--json")
    assert nb.code == 0, nb
    data = json.loads(nb.out)
    assert set(data) >= NEIGHBOR_KEYS and data["query_ids"] == [words.index("epsilon")]
    # every row is checked against a brute-force cosine
    q = vectors[words.index("epsilon")]
    norms = np.linalg.norm(vectors, axis=1)
    cos = np.where(norms > 0, vectors @ q / np.maximum(norms, 1e-30) / np.linalg.norm(q), 0)
    cos[words.index("epsilon")] = -np.inf
    assert [n["token"] for n in data["neighbors"]] == [words[i] for i in np.argsort(-cos, kind="stable")[:2]]
    # "alpha" is in all 5 chunks: idf = ln(5/5) = 0, a zero vector with no neighbours to speak of
    assert not vectors[words.index("alpha")].any()
    for cmd in (("neighbors", "alpha"), ("variants", "alpha"), ("analogy", "alpha", "beta", "gamma")):
        res = run_cli(*cmd, "--space", f"tfidf:{out}")
        assert res.code == 2 and "'alpha' has a zero vector" in res.err, (cmd, res)
        assert len(res.err.strip().splitlines()) == 1


def test_tfidf_cli_errors(tmp_path, run_cli):
    small = tmp_path / "s.txt"
    small.write_text("just four words here")
    res = run_cli("tfidf", small, "--out", tmp_path / "o")
    assert res.code == 2 and res.err.startswith("embedlens: error:") and "too few for 10 chunks" in res.err
    assert len(res.err.strip().splitlines()) == 1
    res = run_cli("tfidf", small, "--chunks", 2, "--min-count", 9, "--out", tmp_path / "o")
    assert res.code == 2 and "no word occurs at least 9 times" in res.err


# -- word2vec ----------------------------------------------------------------------------------------

W2V_ARGS = {"dim": 16, "epochs": 1, "min_count": 5, "seed": 3, "workers": 1, "progress": False}


@pytest.mark.slow
def test_word2vec_deterministic_and_binary_round_trip(tmp_path, run_cli, monkeypatch):
    from gensim.models import KeyedVectors

    from embedlens.classic.word2vec import train_word2vec

    first = train_word2vec("lee", **W2V_ARGS)
    w2v_mod = importlib.import_module("embedlens.classic.word2vec")
    monkeypatch.setattr(w2v_mod, "IN_MEMORY_BYTES", 0)  # the streamed path (re-read every epoch) gives the same
    second = train_word2vec("lee", **W2V_ARGS)
    assert first.words == second.words and len(first.words) > 1000
    np.testing.assert_array_equal(first.vectors, second.vectors)
    other_seed = train_word2vec("lee", **{**W2V_ARGS, "seed": 4})
    assert not np.array_equal(first.vectors, other_seed.vectors)

    out = first.save(tmp_path / "w2v")
    kv = KeyedVectors.load_word2vec_format(str(out / "vectors.bin"), binary=True)
    assert list(kv.index_to_key) == first.words
    np.testing.assert_array_equal(kv.vectors, first.vectors)
    space = EmbeddingSpace.load(out)
    np.testing.assert_array_equal(np.asarray(space.vectors), first.vectors)
    assert json.loads((out / "manifest.json").read_text())["architecture"] == "CBOW"
    assert list(first.timings) == ["vocab", "train"] and all(s > 0 for s in first.timings.values())

    res = run_cli("neighbors", first.words[5], "--space", f"word2vec:{out}", "-k", 3, "--json")
    assert res.code == 0 and len(json.loads(res.out)["neighbors"]) == 3


@pytest.mark.slow
def test_word2vec_cli_same_vectors_in_another_process(tmp_path):
    """Same seed, one worker, a different PYTHONHASHSEED in a fresh process: identical vectors."""
    from embedlens.classic.word2vec import train_word2vec

    out = tmp_path / "sub"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    exe = Path(sys.executable).parent / "embedlens"
    proc = subprocess.run([str(exe), "word2vec", "lee", "--dim", "16", "--epochs", "1", "--seed", "3", "--out", str(out)],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    here = train_word2vec("lee", **W2V_ARGS)
    there = EmbeddingSpace.load(out)
    assert list(there.labels) == here.words
    np.testing.assert_array_equal(np.asarray(there.vectors), here.vectors)


@pytest.mark.slow
def test_word2vec_skip_gram_cli_equals_gensim_skip_gram(tmp_path, run_cli):
    """--sg 1 trains skip-gram: the same vectors as gensim's own skip-gram on the same sentences and seed."""
    from gensim.models import Word2Vec

    from embedlens.classic.word2vec import train_word2vec

    res = run_cli("word2vec", "lee", "--sg", "1", "--dim", "16", "--epochs", "1", "--seed", "3", "--out", tmp_path / "sg")
    assert res.code == 0, res
    manifest = json.loads((tmp_path / "sg" / "manifest.json").read_text())
    assert manifest["architecture"] == "skip-gram" and manifest["sg"] == 1
    space = EmbeddingSpace.load(tmp_path / "sg")
    cbow = train_word2vec("lee", **W2V_ARGS)
    assert list(space.labels) == cbow.words
    assert not np.allclose(np.asarray(space.vectors), cbow.vectors)  # not CBOW's vectors
    from embedlens.classic.word2vec import CorpusSentences, stable_hash
    from embedlens.corpus.reading import open_corpus

    sentences = list(CorpusSentences(open_corpus("lee"), keep_case=False))
    model = Word2Vec(sentences, vector_size=16, window=5, min_count=5, sg=1, seed=3, workers=1, epochs=1,
                     hashfxn=stable_hash)
    assert model.sg == 1
    np.testing.assert_allclose(np.asarray(space.vectors), model.wv[list(space.labels)], rtol=1e-5, atol=1e-6)


def test_word2vec_bad_input(tmp_path, run_cli):
    corpus = tmp_path / "c.txt"
    corpus.write_text("few words only here\n")
    res = run_cli("word2vec", corpus, "--min-count", 50, "--out", tmp_path / "o")
    assert res.code == 2 and "no word occurs at least 50 times" in res.err
    res = run_cli("word2vec", corpus, "--dim", 0, "--out", tmp_path / "o")
    assert res.code == 2 and "--dim must be at least 1" in res.err


# -- GloVe, analogies --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def glove():
    from embedlens.classic.glove import load_glove

    return SpaceLens(load_glove())


def test_glove_space(glove):
    sp = glove.space
    assert sp.vectors.shape == (400_000, 50) and sp.vectors.dtype == np.float32
    assert isinstance(sp.vectors, np.memmap) or not sp.vectors.flags.writeable  # mapped, not copied
    assert sp.labels[:4] == ["the", ",", ".", "of"] and sp.name == "glove-50d"


def test_glove_king_man_woman_queen(glove):
    result = analogy(glove, "king", "man", "woman", k=5)
    assert result.neighbors[0].token == "queen" and result.neighbors[0].score > 0.8
    assert not {"king", "man", "woman"} & {n.token for n in result.neighbors}


def test_analogy_equals_brute_force():
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(300)]
    vectors = rng.normal(size=(300, 12)).astype(np.float32)
    vectors[7] *= 50  # scale must not matter: 3CosAdd uses unit vectors
    lens = SpaceLens(EmbeddingSpace.from_arrays(vectors, words, name="toy"))
    got = analogy(lens, "w7", "w8", "w9", k=6)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    target = unit[7] - unit[8] + unit[9]
    cos = unit @ target / np.linalg.norm(target)
    cos[[7, 8, 9]] = -np.inf
    best = np.argsort(-cos)[:6]
    assert [n.id for n in got.neighbors] == best.tolist()
    np.testing.assert_allclose([n.score for n in got.neighbors], cos[best], rtol=1e-5)


def test_analogy_cli_json_shape_and_errors(run_cli):
    res = run_cli("analogy", "king", "man", "woman", "--space", "glove-50d", "--k", 3, "--json")
    assert res.code == 0, res
    data = json.loads(res.out)
    neighbors = json.loads(run_cli("neighbors", "queen", "--space", "glove-50d", "-k", 3, "--json").out)
    assert set(data) == set(neighbors) | {"note"} and set(data) >= NEIGHBOR_KEYS
    assert all(set(n) == NEIGHBOR_ITEM_KEYS for n in data["neighbors"])
    first = data["neighbors"][0]
    assert first["token"] == first["display"] == "queen" and first["id"] == 2060  # id is the row
    assert data["query_ids"] == [691, 300, 787]
    res = run_cli("analogy", "king", "zzqxjw", "woman", "--space", "glove-50d")
    assert res.code == 2 and "'zzqxjw' is not in the vocabulary of glove-50d" in res.err
    res = run_cli("analogy", "a", "b", "c", "--space", "glove-51d")
    assert res.code == 2 and "unknown space 'glove-51d'" in res.err


def test_neighbors_and_variants_take_glove(run_cli):
    res = run_cli("neighbors", "king", "--space", "glove-50d", "-k", 10, "--json")
    assert res.code == 0, res
    tokens = [n["token"] for n in json.loads(res.out)["neighbors"]]
    assert "queen" in tokens and "king" not in tokens
    res = run_cli("neighbors", "King", "--space", "glove-50d", "-k", 3)  # lowercase fallback
    assert res.code == 0 and "prince" in res.out
    res = run_cli("variants", "king", "--space", "glove-50d", "--json")
    assert res.code == 0 and "kings" in [n["token"] for n in json.loads(res.out)["neighbors"]]


def test_analogy_on_a_model(tiny_gpt2_dir, cache_dir, run_cli):
    res = run_cli("analogy", "list", "lists", "tokens", "-m", tiny_gpt2_dir, "--k", 4, "--json")
    assert res.code == 0, res
    data = json.loads(res.out)
    assert set(data) >= NEIGHBOR_KEYS and len(data["neighbors"]) == 4
    assert not set(data["query_ids"]) & {n["id"] for n in data["neighbors"]}


# -- bring your own vectors ----------------------------------------------------------------------------


def test_byo_npy_safetensors_and_folder(tmp_path, run_cli):
    from safetensors.numpy import save_file

    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(6, 4)).astype(np.float32)
    labels = ["apple", "pear", "plum", "fig", "kiwi", "lime"]
    np.save(tmp_path / "v.npy", vectors)
    (tmp_path / "labels.txt").write_text("\n".join(labels) + "\n")
    (tmp_path / "crlf.txt").write_bytes(("\r\n".join(labels) + "\r\n").encode())
    save_file({"vectors": vectors}, str(tmp_path / "v.safetensors"))
    EmbeddingSpace.from_arrays(vectors, labels, name="fruit").save(tmp_path / "saved")

    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cos = unit @ unit[0]
    cos[0] = -np.inf
    expected = [labels[i] for i in np.argsort(-cos)[:3]]
    for args in (["--space", tmp_path / "v.npy", "--labels", tmp_path / "labels.txt"],
                 ["--space", tmp_path / "v.npy", "--labels", tmp_path / "crlf.txt"],
                 ["--space", tmp_path / "v.safetensors", "--labels", tmp_path / "labels.txt"],
                 ["--space", f"path:{tmp_path / 'saved'}"]):
        res = run_cli("neighbors", "apple", *args, "-k", 3, "--json")
        assert res.code == 0, (args, res)
        assert [n["token"] for n in json.loads(res.out)["neighbors"]] == expected


def test_byo_errors(tmp_path, run_cli):
    np.save(tmp_path / "v.npy", np.ones((3, 2), dtype=np.float32))
    np.save(tmp_path / "flat.npy", np.ones(3, dtype=np.float32))
    (tmp_path / "two.txt").write_text("a\nb\n")
    (tmp_path / "three.txt").write_text("a\nb\nc\n")
    cases = [
        (["--space", tmp_path / "v.npy", "--labels", tmp_path / "two.txt"], "two.txt has 2 labels but v.npy has 3 rows"),
        (["--space", tmp_path / "v.npy"], "needs a labels file"),
        (["--space", tmp_path / "flat.npy", "--labels", tmp_path / "three.txt"], "a (n_items, dim) matrix is needed"),
        (["--space", tmp_path / "missing.npy", "--labels", tmp_path / "three.txt"], "no such file"),
        (["--space", f"path:{tmp_path / 'nowhere'}"], "no such space folder"),
        (["--space", f"tfidf:{tmp_path / 'nowhere'}"], "no such tfidf run folder"),
        (["--space", "tfidf"], "--space tfidf:DIR"),
        (["--space", "no-such-space"], "unknown space 'no-such-space'"),
    ]
    for args, message in cases:
        res = run_cli("neighbors", "a", *args)
        assert res.code == 2 and message in res.err, (args, res)
        assert len(res.err.strip().splitlines()) == 1


@pytest.mark.slow
def test_minilm_neighbors(use_shared_cache, run_cli):
    res = run_cli("neighbors", "king", "--model", "minilm-l6", "-k", 10, "--json")
    assert res.code == 0, res
    data = json.loads(res.out)
    assert len(data["query_ids"]) == 1
    assert {"queen", "kings", "prince"} & {n["token"] for n in data["neighbors"]}


# -- evaluation ----------------------------------------------------------------------------------------


def toy_angles_lens() -> SpaceLens:
    degrees = {"w0": 0, "w1": 10, "w2": 50, "w3": 90, "w4": 170}
    vectors = np.array([[math.cos(math.radians(d)), math.sin(math.radians(d))] for d in degrees.values()])
    return SpaceLens(EmbeddingSpace.from_arrays(vectors, list(degrees), name="angles"))


def test_evaluate_pairs_hand_computed_spearman(tmp_path):
    # cosines: (w0,w1) .985 > (w0,w2) .643 > (w1,w3) .174 > (w0,w3) 0 > (w0,w4) -.985
    # model ranks 5,4,2,3,1 vs gold ranks 5,3,4,2,1: d = 0,1,-2,1,0, sum d^2 = 6
    # rho = 1 - 6 * 6 / (5 * (25 - 1)) = 0.7
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("# comment\nWord 1\tWord 2\tHuman (mean)\n"
                     "w0\tw1\t9.0\nW0\tw2\t5.0\nw0\tw3\t6.0\nw1\tw3\t4.0\nw0\tw4\t1.0\nw0\tnope\t3.0\n")
    score = evaluate_pairs(toy_angles_lens(), pairs)
    assert score.spearman == pytest.approx(0.7)
    assert score.n_pairs == 6 and score.n_used == 5 and score.coverage == pytest.approx(5 / 6)


def test_evaluate_analogies_equals_direct_loop(tmp_path):
    rng = np.random.default_rng(3)
    n = 60
    words = [f"w{i}" for i in range(n)]
    vectors = rng.normal(size=(n, 5)).astype(np.float32)
    lens = SpaceLens(EmbeddingSpace.from_arrays(vectors, words, name="toy"))
    questions = rng.integers(0, n, size=(400, 4))
    questions = questions[[len(set(q[:3])) == 3 for q in questions]]
    text = ": one\n" + "\n".join(" ".join(words[i] for i in q) for q in questions[:150])
    text += "\n: two\n" + "\n".join(" ".join(words[i] for i in q) for q in questions[150:]) + "\nbad line\n"
    path = tmp_path / "q.txt"
    path.write_text(text)
    restrict = 45
    unit = vectors[:restrict] / np.linalg.norm(vectors[:restrict], axis=1, keepdims=True)
    used = correct = 0
    for a, b, c, e in questions:
        if max(a, b, c, e) >= restrict:
            continue
        used += 1
        cos = unit @ (unit[b] - unit[a] + unit[c])
        cos[[a, b, c]] = -np.inf
        correct += int(np.argmax(cos) == e)
    score = evaluate_analogies(lens, path, restrict_vocab=restrict)
    assert score.n_questions == len(questions) and score.n_used == used and score.n_correct == correct
    assert score.coverage == pytest.approx(used / len(questions))
    assert set(score.sections) == {"one", "two"}
    assert sum(s["correct"] for s in score.sections.values()) == correct


def test_evaluate_cli_json(tmp_path, run_cli):
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("king\tqueen\t8.5\nking\tcabbage\t0.5\ncat\tdog\t7.0\ncar\tautomobile\t9.0\n")
    questions = tmp_path / "q.txt"
    questions.write_text(": mixed\nman woman king queen\nAthens Greece Berlin Germany\nman woman zzqxjw queen\n")
    res = run_cli("evaluate", "--space", "glove-50d", "--wordsim", pairs, "--simlex", pairs,
                  "--analogies", questions, "--json")
    assert res.code == 0, res
    data = json.loads(res.out)
    assert set(data) >= {"wordsim353", "simlex999", "analogies"}
    assert set(data["wordsim353"]) >= {"spearman", "coverage"} and set(data["analogies"]) >= {"accuracy", "coverage"}
    assert data["analogies"]["coverage"] == pytest.approx(2 / 3) and data["analogies"]["accuracy"] == 1.0
    assert data["wordsim353"]["coverage"] == 1.0
    assert list(data["timings"]) == ["wordsim353", "simlex999", "analogies"]
    res = run_cli("evaluate", "--space", "glove-50d", "--wordsim", tmp_path / "missing.tsv")
    assert res.code == 2 and "no such wordsim353 file" in res.err


def test_evaluate_model_counts_single_tokens(tiny_gpt2_dir, cache_dir, tmp_path):
    import embedlens

    lens = embedlens.load(str(tiny_gpt2_dir))
    pairs = tmp_path / "pairs.tsv"
    word_pairs = [("the", "capital"), ("list", "lists"), ("embeddings", "vectors"), ("cat", "dog"), ("Paris", "Rome")]
    pairs.write_text("".join(f"{a}\t{b}\t{i}\n" for i, (a, b) in enumerate(word_pairs)))
    single = {w: any(len(lens.encode(f, add_special_tokens=False)) == 1 for f in (" " + w, w)) for p in word_pairs for w in p}
    assert len(set(single.values())) == 2  # the tiny vocabulary has both kinds
    score = evaluate(lens, tasks=["wordsim353"], wordsim=pairs).wordsim353
    assert score.coverage == 1.0
    assert score.single_token_coverage == pytest.approx(np.mean([single[a] and single[b] for a, b in word_pairs]))


@pytest.mark.slow
def test_evaluate_agrees_with_gensim_on_glove(glove, tmp_path):
    from gensim.models import KeyedVectors

    from embedlens.classic.evaluate import dataset_path

    sp = glove.space.subset(np.arange(100_000))  # the 100,000 most frequent words keep gensim's set-up short
    lens = SpaceLens(sp)
    kv = KeyedVectors(sp.dim)
    kv.add_vectors(list(sp.labels), np.asarray(sp.vectors))
    ws = dataset_path("wordsim353")
    ours = evaluate_pairs(lens, ws)
    _pearson, spearman, oov = kv.evaluate_word_pairs(str(ws), restrict_vocab=len(sp))
    assert ours.spearman == pytest.approx(spearman.statistic, abs=1e-6) and oov == 0.0
    lines = dataset_path("analogies").read_text().splitlines()
    subset = tmp_path / "subset.txt"  # two sections keep gensim's per-question loop short
    family = lines.index(": family")
    subset.write_text("\n".join(lines[:300] + lines[family : family + 300]) + "\n")
    ours_a = evaluate_analogies(lens, subset, restrict_vocab=30_000)
    score, sections = kv.evaluate_word_analogies(str(subset), restrict_vocab=30_000)
    total = sections[-1]
    assert ours_a.n_correct == len(total["correct"]) and ours_a.n_used == len(total["correct"]) + len(total["incorrect"])
    assert ours_a.accuracy == pytest.approx(score)
