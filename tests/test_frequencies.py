"""Token frequencies: streamed counts equal a direct count with the model's own tokenizer."""

from __future__ import annotations

import re
import tracemalloc
from collections import Counter

import numpy as np
import pytest

from embedlens.corpus import open_corpus
from embedlens.corpus.frequencies import count_tokens, token_frequencies
from embedlens.errors import EmbedlensError

from .conftest import CORPUS

# Whitespace runs of every kind, markup, punctuation and non-ASCII text: where chunk cuts could go wrong.
EXTRA = [
    "Two  spaces,   three spaces,\ttab,\t\ttwo tabs, trailing spaces   \n\n\nthree newlines.",
    "Ünïcödé — “quotes” and 日本語 text; emoji 🙂 and a non-breaking\u00a0space.",
    "   leading spaces and <script>x</script> </div> <br> [/b] at the end   ",
]


def _write_corpus(folder):
    a = folder / "a.txt"
    b = folder / "sub" / "b.txt"
    b.parent.mkdir(parents=True, exist_ok=True)
    a.write_text("\n".join(CORPUS + EXTRA) + "\n", encoding="utf-8")
    b.write_text("  ".join(EXTRA * 3 + CORPUS[:5]), encoding="utf-8")  # no final newline
    return [a, b]


def _direct_counts(tokenizer, files, n):
    counter: Counter[int] = Counter()
    for f in files:  # one document per line, each tokenized alone; blank lines are no documents
        for line in f.read_text(encoding="utf-8").split("\n"):
            if line.strip():
                counter.update(tokenizer(line, add_special_tokens=False)["input_ids"])
    out = np.zeros(n, dtype=np.int64)
    for i, c in counter.items():
        out[i] = c
    return out


@pytest.mark.parametrize("chunk_chars", [17, 100, 1 << 20])
def test_counts_equal_direct_tokenizer_count(tiny_model_dir, cache_dir, tmp_path, chunk_chars):
    from transformers import AutoTokenizer

    import embedlens

    lens = embedlens.load(str(tiny_model_dir))
    files = _write_corpus(tmp_path / "corpus")
    corpus = open_corpus(str(tmp_path / "corpus"))
    assert [f.path for f in corpus.files] == files
    freqs = count_tokens(lens, corpus, chunk_chars=chunk_chars, progress=False)
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    expected = _direct_counts(tokenizer, files, len(lens.space))
    np.testing.assert_array_equal(freqs.counts, expected)
    assert freqs.n_tokens == int(expected.sum())
    assert freqs.n_outside == 0
    assert freqs.method == "tokenizer"
    assert freqs.n_bytes == sum(f.stat().st_size for f in files)
    assert [f["path"] for f in freqs.corpus["files"]] == [str(f) for f in files]
    assert all(len(f["sha256"]) == 64 for f in freqs.corpus["files"])


def test_markup_tokens_are_counted(tiny_gpt2_dir, cache_dir, tmp_path):
    import embedlens

    lens = embedlens.load(str(tiny_gpt2_dir))
    path = tmp_path / "m.txt"
    path.write_text("<script> </div> <br> [/b] <script>", encoding="utf-8")
    freqs = token_frequencies(lens, str(path))
    script = lens.space.row_of_label["<script>"]
    assert freqs.counts[script] == 2
    assert freqs.counts[lens.space.row_of_label["[/b]"]] == 1


def test_word_space_counts_lowercased_words(tmp_path):
    from embedlens.lens import SpaceLens
    from embedlens.spaces.space import EmbeddingSpace

    words = ["the", "capital", "of", "france", "is", "paris", "script", "zebra"]
    lens = SpaceLens(EmbeddingSpace.from_arrays(np.eye(len(words), 4, dtype=np.float32), words, name="toy"))
    text = "The capital of France is Paris. THE <script> of  the\nthe unknownword"
    path = tmp_path / "w.txt"
    path.write_text(text, encoding="utf-8")
    freqs = count_tokens(lens, open_corpus(str(path)), chunk_chars=8, progress=False)
    direct = Counter(re.findall(r"\w+", text.lower()))
    np.testing.assert_array_equal(freqs.counts, [direct[w] for w in words])
    assert freqs.method == "words"
    assert freqs.n_tokens == sum(direct.values())
    assert freqs.n_outside == direct["unknownword"]


def _peak_bytes(lens, path, chunk_chars):
    corpus = open_corpus(str(path))
    tracemalloc.start()
    try:
        freqs = count_tokens(lens, corpus, chunk_chars=chunk_chars, progress=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert freqs.n_bytes == path.stat().st_size
    return peak


def test_counting_memory_does_not_grow_with_the_corpus(tiny_gpt2_dir, cache_dir, tmp_path, monkeypatch):
    import embedlens
    from embedlens.corpus import Corpus

    lens = embedlens.load(str(tiny_gpt2_dir))
    line = " ".join(CORPUS) + "\n"
    paths = []
    for mib in (1, 3):
        paths.append(tmp_path / f"{mib}.txt")
        with open(paths[-1], "w", encoding="utf-8") as fh:
            while fh.tell() < (mib << 20):
                fh.write(line)
    count_tokens(lens, open_corpus(str(_write_corpus(tmp_path / "warm")[0])), progress=False)  # load the tokenizer
    monkeypatch.setattr(Corpus, "manifest", lambda self: {})  # file hashing reads 4 MiB blocks; not what is measured
    small, large = (_peak_bytes(lens, p, 1 << 16) for p in paths)
    assert large < small * 1.25 + (256 << 10), f"peak {small} bytes for 1 MiB but {large} bytes for 3 MiB"
    assert large < (4 << 20)


def test_binary_files_are_skipped_and_a_binary_only_corpus_is_refused(tmp_path):
    (tmp_path / "ok.txt").write_text("hello world", encoding="utf-8")
    (tmp_path / "bad.txt").write_bytes(b"\x00\x01\x02" * 100)
    corpus = open_corpus(str(tmp_path))
    assert [f.path.name for f in corpus.files] == ["ok.txt"]
    assert corpus.skipped and corpus.skipped[0].endswith("bad.txt")
    with pytest.raises(EmbedlensError, match="no readable text"):
        open_corpus(str(tmp_path / "bad.txt"))
