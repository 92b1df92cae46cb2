"""The one display function: readable, visible, and raw kept apart."""

from __future__ import annotations

import pytest

from embedlens.display import detect_scheme, display_token, display_tokens, make_visible


@pytest.mark.parametrize(
    "raw, scheme, shown",
    [
        ("Ġlist", "byte_level", "␣list"),
        ("Ċ", "byte_level", "↵"),
        ("ĊĊ", "byte_level", "↵↵"),
        ("ĉ", "byte_level", "⇥"),
        ("list", "byte_level", "list"),
        ("Ã©", "byte_level", "é"),  # two byte-level chars = one UTF-8 character
        ("âĢ", "byte_level", "⟨0xE2⟩⟨0x80⟩"),  # half of a 3-byte character
        ("<script>", "byte_level", "<script>"),
        ("▁list", "sentencepiece", "␣list"),
        ("<0x0A>", "sentencepiece", "↵"),
        ("<0xE2>", "sentencepiece", "⟨0xE2⟩"),
        ("##ing", "wordpiece", "##ing"),
        ("a\u200bb", "plain", "a⟨U+200B⟩b"),
        ("\x07bell", "plain", "⟨U+0007⟩bell"),
        ("\u202eevil", "plain", "⟨U+202E⟩evil"),
    ],
)
def test_display_token(raw, scheme, shown):
    assert display_token(raw, scheme) == shown


def test_special_tokens_are_marked_and_literal():
    assert display_token("<|im_start|>", "byte_level", special=True) == "⟪<|im_start|>⟫"
    assert display_tokens(["a", "<s>"], "plain", special_ids=[1]) == ["a", "⟪<s>⟫"]


def test_every_byte_is_visible():
    for b in range(256):
        shown = display_token(bytes([b]).decode("latin-1"), "plain")
        assert shown and all(ch.isprintable() for ch in shown)


def test_make_visible_keeps_ordinary_text():
    assert make_visible("Paris,France!") == "Paris,France!"
    assert make_visible("a b") == "a␣b"
    assert make_visible(" \n\t\r") == "␣↵⇥␍"


def test_detect_scheme():
    assert detect_scheme({"decoder": {"type": "ByteLevel"}}) == "byte_level"
    assert detect_scheme({"decoder": {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"}]}}) == "sentencepiece"
    assert detect_scheme({"decoder": {"type": "WordPiece"}}) == "wordpiece"
    assert detect_scheme({}) == "plain"


def test_make_visible_fast_path_agrees_for_every_code_point():
    # make_visible returns printable words untouched; that shortcut must mark exactly what the per-character rule marks
    from embedlens.display import _visible_char, make_visible

    chars = [chr(c) for c in range(0x110000)]
    assert [make_visible(c) for c in chars] == [_visible_char(c) for c in chars]
    assert make_visible("a\u200bb c") == "a⟨U+200B⟩b␣c"
