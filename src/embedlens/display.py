"""Readable token strings: the one function every output uses to show a token.

Tokenizers store tokens in encodings meant for machines: byte-level BPE (GPT-2, SmolLM2) maps every
byte to a printable stand-in (``Ġ`` for a space, ``Ċ`` for a newline), SentencePiece marks a word start
with ``▁`` and falls back to byte tokens such as ``<0xE2>``, WordPiece continues words with ``##``.
:func:`display_token` turns a raw token into what it means, with whitespace, control and invisible
characters made visible and special tokens marked. The raw string is always kept beside it: display
strings are for people, raw strings are for round trips.

Conventions (stable, tested):
  space ``␣``, newline ``↵``, tab ``⇥``, carriage return ``␍``; any other control, format or
  invisible character ``⟨U+XXXX⟩``; a byte that is not valid UTF-8 on its own (half a character)
  ``⟨0xE2⟩``; a special token is wrapped as ``⟪<|im_start|>⟫``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from functools import lru_cache

SCHEMES = ("byte_level", "sentencepiece", "wordpiece", "plain")

SPACE_MARK = "␣"  # a leading space (byte-level Ġ, SentencePiece ▁) as shown everywhere
# schemes whose tokens mark a word start (shown SPACE_MARK): there a whole word is its word-start form
WORD_START_SCHEMES = ("byte_level", "sentencepiece")
_VISIBLE = {" ": SPACE_MARK, "\n": "↵", "\t": "⇥", "\r": "␍"}
_BYTE_FALLBACK = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")
SPECIAL_OPEN, SPECIAL_CLOSE = "⟪", "⟫"


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-to-printable-character table, inverted (printable char -> byte)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs, strict=True)}


def _visible_char(ch: str) -> str:
    if ch in _VISIBLE:
        return _VISIBLE[ch]
    cat = unicodedata.category(ch)
    # Cc control, Cf format (zero-width, bidi overrides, BOM), Cs surrogate, Co private, Cn unassigned,
    # Zl/Zp line separators, and any space other than U+0020: all invisible or misleading on screen.
    if cat in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp") or (cat == "Zs" and ch != " "):
        return f"⟨U+{ord(ch):04X}⟩"
    return ch


def make_visible(text: str) -> str:
    """Replace whitespace, control and invisible characters by visible markers."""
    # str.isprintable() is False exactly for the categories _visible_char marks (C*, Z* but the ASCII
    # space): most words take this C-speed path (400,000 GloVe words: 1.7 s -> a fraction of that).
    if text.isprintable() and " " not in text:
        return text
    return "".join(_visible_char(ch) for ch in text)


def _decode_bytes(data: bytes) -> str:
    """Decode UTF-8, showing each byte that does not form a whole character as ``⟨0xNN⟩``."""
    out: list[str] = []
    i = 0
    while i < len(data):
        # Try the longest valid UTF-8 sequence starting here (1 to 4 bytes).
        for size in (1, 2, 3, 4):
            chunk = data[i : i + size]
            try:
                ch = chunk.decode("utf-8")
            except UnicodeDecodeError:
                continue
            out.append(make_visible(ch))
            i += size
            break
        else:
            out.append(f"⟨0x{data[i]:02X}⟩")
            i += 1
    return "".join(out)


def display_token(raw: str, scheme: str = "plain", *, special: bool = False) -> str:
    """Readable form of one raw token string.

    Args:
        raw: the token exactly as the tokenizer's vocabulary stores it.
        scheme: how the vocabulary encodes text: ``byte_level``, ``sentencepiece``, ``wordpiece`` or ``plain``.
        special: whether the tokenizer treats it as a special token (it is then shown literally, marked).
    """
    if special:
        return f"{SPECIAL_OPEN}{make_visible(raw)}{SPECIAL_CLOSE}"
    if scheme == "byte_level":
        table = _byte_decoder()
        if raw and all(ch in table for ch in raw):
            return _decode_bytes(bytes(table[ch] for ch in raw))
        return make_visible(raw)  # added tokens are stored as plain text
    if scheme == "sentencepiece":
        match = _BYTE_FALLBACK.match(raw)
        if match:
            return _decode_bytes(bytes([int(match.group(1), 16)]))
        return make_visible(raw.replace("▁", " "))
    return make_visible(raw)


def display_tokens(raws: Sequence[str], scheme: str = "plain", special_ids: Iterable[int] = ()) -> list[str]:
    """:func:`display_token` over a whole vocabulary (``special_ids`` index into ``raws``)."""
    specials = set(special_ids)
    return [display_token(r, scheme, special=i in specials) for i, r in enumerate(raws)]


def detect_scheme(tokenizer_json: dict) -> str:
    """Guess the vocabulary's encoding from a ``tokenizer.json`` document (its decoder and model)."""
    decoder = tokenizer_json.get("decoder") or {}
    kinds: list[str] = []
    stack = [decoder]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "type" in node:
                kinds.append(node["type"])
            stack.extend(node.get("decoders", []) or [])
            if node.get("type") == "Replace" and "▁" in str(node.get("pattern", "")):
                kinds.append("Metaspace")
    if "ByteLevel" in kinds:
        return "byte_level"
    if "Metaspace" in kinds or "ByteFallback" in kinds:
        return "sentencepiece"
    if "WordPiece" in kinds or (tokenizer_json.get("model") or {}).get("type") == "WordPiece":
        return "wordpiece"
    return "plain"
