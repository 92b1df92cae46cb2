"""Corpus sources: text, JSONL, JSONL.gz, Parquet and saved datasets read as the same documents and counted
like a direct per-document tokenization; shards cut anywhere give the same documents; bad input is one line."""

from __future__ import annotations

import gzip
import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from embedlens.corpus import open_corpus
from embedlens.corpus.frequencies import count_tokens
from embedlens.corpus.sources import read_shard
from embedlens.errors import EmbedlensError

from .conftest import CORPUS

# Documents with markup, quotes, non-ASCII text and whitespace of every kind inside them.
DOCS = CORPUS[:7] + [
    "Two  spaces,   three spaces,\ttab,\t\ttwo tabs, trailing spaces   ",
    "Ünïcödé — “quotes” and 日本語 text; emoji 🙂 and a non-breaking\u00a0space.",
    "   leading spaces and <script>x</script> </div> <br> [/b] at the end",
    "the bank of the river; the Bank robbery; banks and a bank.",
]
FORMATS = ("txt", "jsonl", "jsonl.gz", "parquet", "saved")


def write_corpus(folder, fmt: str, docs=DOCS, column: str = "text"):
    """``docs`` as one corpus file (or saved dataset) of format ``fmt``; returns the corpus spec."""
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "txt":
        path = folder / "docs.txt"
        path.write_text("\n\n".join(docs) + "\n", encoding="utf-8")  # blank lines are no documents
        return str(path)
    rows = [{column: d, "id": i} for i, d in enumerate(docs)]
    if fmt in ("jsonl", "jsonl.gz"):
        data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")
        path = folder / f"docs.{fmt}"
        path.write_bytes(gzip.compress(data) if fmt.endswith(".gz") else data)
        return str(path)
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = folder / "docs.parquet"
        pq.write_table(pa.table({column: docs, "id": list(range(len(docs)))}), path, row_group_size=3)
        return str(path)
    datasets = pytest.importorskip("datasets")
    dd = datasets.DatasetDict({"train": datasets.Dataset.from_dict({column: docs}),
                               "test": datasets.Dataset.from_dict({column: docs[:2]})})
    dd.save_to_disk(str(folder / "saved"))
    return f"hf:{folder / 'saved'}"


def direct_counts(tokenizer, docs, n):
    counter: Counter[int] = Counter()
    for d in docs:
        counter.update(tokenizer(d, add_special_tokens=False)["input_ids"])
    out = np.zeros(n, dtype=np.int64)
    for i, c in counter.items():
        out[i] = c
    return out


@pytest.mark.parametrize("fmt", FORMATS)
def test_frequencies_equal_a_direct_per_document_tokenization(tiny_gpt2_dir, cache_dir, tmp_path, fmt):
    from transformers import AutoTokenizer

    import embedlens

    lens = embedlens.load(str(tiny_gpt2_dir))
    spec = write_corpus(tmp_path / "c", fmt)
    corpus = open_corpus(spec)
    assert [t for _, t in corpus.iter_documents()] == DOCS
    freqs = count_tokens(lens, corpus, progress=False)
    expected = direct_counts(AutoTokenizer.from_pretrained(str(tiny_gpt2_dir)), DOCS, len(lens.space))
    np.testing.assert_array_equal(freqs.counts, expected)
    assert freqs.n_tokens == int(expected.sum()) and freqs.engine["engine"] == "local"
    assert freqs.to_dict()["documents"] == "each tokenized alone, without special tokens"


def test_bert_and_llama_tokenizers_count_per_document_too(tiny_bert_dir, tiny_llama_dir, cache_dir, tmp_path):
    from transformers import AutoTokenizer

    import embedlens

    spec = write_corpus(tmp_path / "c", "jsonl")
    for folder in (tiny_bert_dir, tiny_llama_dir):
        lens = embedlens.load(str(folder))
        freqs = count_tokens(lens, open_corpus(spec), progress=False)
        expected = direct_counts(AutoTokenizer.from_pretrained(str(folder)), DOCS, len(lens.space))
        np.testing.assert_array_equal(freqs.counts, expected)


@pytest.mark.parametrize("fmt", ["txt", "jsonl", "parquet"])
def test_shards_cut_anywhere_read_the_same_documents_once(tmp_path, fmt):
    docs = [f"{i}: " + DOCS[i % len(DOCS)] for i in range(60)]
    corpus = open_corpus(write_corpus(tmp_path / "c", fmt, docs))
    whole = [(s.doc_id(p), t) for s in corpus.shards(1 << 30) for b in read_shard(s) for p, t in
             zip(b.positions.tolist(), b.texts, strict=True)]
    assert [t for _, t in whole] == docs
    for shard_bytes, block_chars in ((7, 5), (100, 64), (333, 1 << 20)):
        shards = corpus.shards(shard_bytes)
        assert len(shards) > 1
        cut = [(s.doc_id(p), t) for s in shards for b in read_shard(s, block_chars)
               for p, t in zip(b.positions.tolist(), b.texts, strict=True)]
        assert cut == whole
    if fmt == "txt":  # a document's id is PATH@BYTE: the byte offset of its line
        raw = (tmp_path / "c" / "docs.txt").read_bytes()
        for doc_id, text in whole:
            offset = int(doc_id.rsplit("@", 1)[1])
            assert raw[offset:].decode("utf-8").startswith(text)
    if fmt == "parquet":  # PATH#ROW
        assert [int(d.rsplit("#", 1)[1]) for d, _ in whole] == list(range(60))


def test_text_column_and_splits_are_chosen_by_name(tmp_path):
    spec = write_corpus(tmp_path / "p", "parquet", column="body")
    assert [t for _, t in open_corpus(spec, text_column="body").iter_documents()] == DOCS
    saved = write_corpus(tmp_path / "s", "saved")
    assert [t for _, t in open_corpus(saved + ":test").iter_documents()] == DOCS[:2]
    with pytest.raises(EmbedlensError, match=r"no split 'dev' \(its splits: train, test\)"):
        open_corpus(saved + ":dev")


def test_a_dataset_in_the_local_datasets_cache_is_read_offline(tmp_path, monkeypatch):
    """A cache entry laid out as datasets writes one for a hub dataset (made here from a JSON file)."""
    datasets = pytest.importorskip("datasets")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "cache")
    data = Path(write_corpus(tmp_path / "c", "jsonl"))
    built = Path(datasets.load_dataset("json", data_files=str(data), split="train").cache_files[0]["filename"])
    entry = tmp_path / "cache" / "embedlens___tiny" / "default" / "0.0.0" / "abc123"
    entry.mkdir(parents=True)
    shutil.copy(built.parent / "dataset_info.json", entry)
    shutil.copy(built, entry / "tiny-train.arrow")
    for spec in ("hf:embedlens/tiny", "hf:embedlens/tiny:default:train"):
        corpus = open_corpus(spec)
        assert [f.kind for f in corpus.files] == ["arrow"] and [t for _, t in corpus.iter_documents()] == DOCS


@pytest.mark.parametrize("fmt", ["jsonl", "jsonl.gz", "parquet", "saved"])
def test_a_missing_text_column_lists_the_columns(tmp_path, fmt):
    spec = write_corpus(tmp_path / "c", fmt, column="body")
    with pytest.raises(EmbedlensError, match=r"has no column 'text' \(its columns: body"):
        open_corpus(spec)


def test_empty_unreadable_and_uncached_corpora_are_refused(tmp_path, run_cli, tiny_gpt2_dir, cache_dir):
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(EmbedlensError, match="is empty"):
        open_corpus(str(tmp_path / "empty.txt"))
    (tmp_path / "bad.jsonl").write_text("not json\n")
    with pytest.raises(EmbedlensError, match="not JSON Lines"):
        open_corpus(str(tmp_path / "bad.jsonl"))
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": [1, 2]}), tmp_path / "numbers.parquet")
    with pytest.raises(EmbedlensError, match="column 'text' of .* holds int64, not text"):
        open_corpus(str(tmp_path / "numbers.parquet"))
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(EmbedlensError, match="cannot read corpus file"):
        open_corpus(str(tmp_path / "broken.parquet"))
    pytest.importorskip("datasets")
    res = run_cli("map", "-m", tiny_gpt2_dir, "--corpus", "hf:embedlens-no-such-dataset:cfg:train",
                  "--out", tmp_path / "o")
    errors = [line for line in res.err.splitlines() if line.startswith("embedlens: error:")]
    assert res.code == 2 and len(errors) == 1 and "Traceback" not in res.err
    assert "not in the local datasets cache" in errors[0] and "save_to_disk" in errors[0]
    res = run_cli("map", "-m", tiny_gpt2_dir, "--corpus", write_corpus(tmp_path / "j", "jsonl", column="body"),
                  "--out", tmp_path / "o")
    assert res.code == 2 and "its columns: body, id" in res.err and "--text-column" in res.err


def test_cli_map_reads_jsonl_with_a_text_column(tmp_path, run_cli, tiny_gpt2_dir, cache_dir):
    from transformers import AutoTokenizer

    import embedlens

    spec = write_corpus(tmp_path / "c", "jsonl.gz", column="body")
    out = tmp_path / "map"
    res = run_cli("map", "-m", tiny_gpt2_dir, "--corpus", spec, "--text-column", "body", "--method", "pca",
                  "--no-png", "--out", out, "--json")
    assert res.code == 0, res
    m = json.loads((out / "manifest.json").read_text())
    assert m["corpus"]["text_column"] == "body" and m["corpus"]["files"][0]["kind"] == "jsonl.gz"
    assert m["counting"]["engine"]["engine"] == "local"
    lens = embedlens.load(str(tiny_gpt2_dir))
    expected = direct_counts(AutoTokenizer.from_pretrained(str(tiny_gpt2_dir)), DOCS, len(lens.space))
    assert m["counting"]["n_tokens"] == int(expected.sum())


def test_occurrence_sample_is_the_seeded_smallest_keys_whatever_the_blocks(tmp_path):
    import re

    from embedlens.contextual.occurrences import OccurrenceQuery, find_occurrences, sample_keys
    from embedlens.engines import LocalEngine

    docs = [f"{i} " + DOCS[-1] for i in range(40)]  # 4 matches of 'bank' per document
    corpus = open_corpus(write_corpus(tmp_path / "c", "txt", docs))
    matches = [(d, m.start()) for d, t in corpus.iter_documents() for m in re.finditer(r"(?<!\w)bank(?!\w)", t, re.I)]
    positions = np.asarray([int(d.rsplit("@", 1)[1]) for d, _ in matches])
    keys = sample_keys(3, np.zeros(len(matches), dtype=np.int64), positions, np.asarray([s for _, s in matches]))
    want = sorted(np.argsort(keys, kind="stable")[:10].tolist())
    found, total = find_occurrences(corpus, "bank", max_occurrences=10, seed=3)
    assert total == len(matches) == 120
    assert [(f.doc, f.start) for f in found] == [matches[i] for i in want]
    query = OccurrenceQuery("bank", max_occurrences=10, seed=3)
    corpus.shard_bytes = 50  # many small shards: the same sample
    assert [(f.doc, f.start) for f in LocalEngine().find(query, corpus)[0]] == [matches[i] for i in want]
    other = find_occurrences(corpus, "bank", max_occurrences=10, seed=4)[0]
    assert [(f.doc, f.start) for f in other] != [matches[i] for i in want]


def test_engine_choice_is_checked_and_a_missing_ray_names_the_extra(monkeypatch):
    import sys

    from embedlens.engines import open_engine

    with pytest.raises(EmbedlensError, match="unknown engine 'spark' \\(choose local, ray\\)"):
        open_engine("spark")
    with pytest.raises(EmbedlensError, match="at least 1"):
        open_engine("ray", workers=0)
    monkeypatch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    monkeypatch.setitem(sys.modules, "ray", None)  # what an environment without Ray gives
    with pytest.raises(EmbedlensError, match=r"pip install 'embedlens\[ray\]'"):
        open_engine("ray")
