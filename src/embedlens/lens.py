"""The handles the public API returns: :class:`ModelLens` for a language model, :class:`SpaceLens` for
any other embedding space (word vectors, saved spaces). Both answer the same questions — resolve a
query, nearest neighbours, variants — so every command works on either.

Each space of a handle is a :class:`SpaceView` (``lens.input``, and ``lens.output`` for a model with a
head): the stages (atlas, graph, k-NN cache, explorer panels...) take a view, so "which space" travels
with the handle instead of beside it.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from .errors import EmbedlensError
from .models import loading  # called through the module: tests stand in for it there
from .models.loading import _offline
from .models.specs import resolve
from .models.token_lookup import SingleTokenIndex, build_index, open_index, read_fast_tokenizer
from .neighbors.index import ExactIndex
from .neighbors.knn import space_content_hash, space_folder
from .neighbors.results import Neighbor, NeighborResult, ResolvedQuery, TokenRow, TokenTable
from .neighbors.variants import variant_rows
from .spaces.extract import open_entry
from .spaces.space import EmbeddingSpace

SPACES = ("input", "output")


class Lens:
    """Common behaviour of every handle: ``space``, ``resolve``, ``nearest``, ``variants``, its views."""

    name: str = "space"
    is_model = False
    meta: dict[str, Any]

    @property
    def space(self) -> EmbeddingSpace:  # pragma: no cover - abstract
        raise NotImplementedError

    def get_space(self, which: str = "input") -> EmbeddingSpace:
        if which != "input":
            raise EmbedlensError(f"{self.name} has only one space; space {which!r} does not apply")
        return self.space

    @cached_property
    def input(self) -> SpaceView:
        """The input embeddings (for a plain space: its only space) as a :class:`SpaceView`."""
        return SpaceView(self, "input")

    @cached_property
    def output(self) -> SpaceView:
        """The output embeddings (the LM head) as a :class:`SpaceView`; an error where there are none."""
        return SpaceView(self, "output")

    def view(self, which: str = "input") -> SpaceView:
        """``lens.input`` or ``lens.output`` by name."""
        if which not in SPACES:
            raise EmbedlensError(f"unknown space '{which}' (choose input or output)")
        return self.input if which == "input" else self.output

    def manifest(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def resolve(self, query: str, which: str = "input") -> ResolvedQuery:  # pragma: no cover - abstract
        raise NotImplementedError

    def nearest(self, query: str, k: int = 20, *, space: str = "input", include_query: bool = False,
                index: Any = None) -> NeighborResult:
        """Cosine top-k of ``query`` over the whole space, the query's own rows excluded.

        ``index``: a :class:`~embedlens.neighbors.index.NeighborIndex` over this space to ask (e.g. a
        cached k-NN graph with an exact fallback, :func:`embedlens.neighbors.knn.space_index`);
        default an exact scan. Every exact index gives the same answer.
        """
        sp = self.get_space(space)
        rq = self.resolve(query, space)
        index = ExactIndex(sp.vectors, norms=sp.norms) if index is None else index
        if len(rq.rows) == 1 and not include_query:
            nb = index.query(np.asarray(rq.rows, dtype=np.int64), k, exclude_self=True)  # a graph can answer rows
        else:
            nb = index.query(rq.vector[None, :], k, exclude=None if include_query else [rq.rows])
        return self._result(query, rq, sp, nb.indices[0], nb.scores[0])

    def _result(self, query: str, rq: ResolvedQuery, sp: EmbeddingSpace, rows: Any, scores: Any) -> NeighborResult:
        return NeighborResult(
            query=query,
            query_ids=rq.ids,
            space=sp.name,
            neighbors=[Neighbor(int(sp.ids[r]), sp.labels[r], sp.display[r], float(s))
                       for r, s in zip(rows, scores, strict=True)],
            note=rq.note,
        )

    def variants(self, word: str, *, space: str = "input") -> NeighborResult:
        """Tokens that are variants of ``word`` (case, word-start markers, inflections), ranked by cosine to it."""
        sp = self.get_space(space)
        rq = self.resolve(word, space)
        own = rq.rows if len(rq.rows) == 1 else []  # the pieces of a split word are not its variants
        rows = np.union1d(variant_rows(word, sp.display), np.asarray(own, dtype=np.int64)).astype(np.int64)
        rows = rows[~sp.special[rows]] if rows.size else rows
        if rows.size == 0:
            raise EmbedlensError(f"no variants of '{word}' in {sp.name}")

        # Ranked by the same exact cosine as ``nearest``, over the variant rows only.
        nb = ExactIndex(np.asarray(sp.vectors[rows]), norms=sp.norms[rows]).query(rq.vector[None, :], int(rows.size))
        return self._result(word, rq, sp, rows[nb.indices[0]], nb.scores[0])

    def _exact_rows(self, query: str, sp: EmbeddingSpace) -> list[int] | None:
        """``id:N`` and ``tok:RAW`` queries, common to every space."""
        if query.startswith("id:"):
            try:
                token_id = int(query[3:])
            except ValueError:
                raise EmbedlensError(f"'{query}' is not a valid id query (expected id:<integer>)") from None
            row = int(sp.rows_of_ids([token_id])[0])
            if row < 0:
                raise EmbedlensError(f"id {token_id} is not in {sp.name} (ids 0..{int(sp.ids.max())})")
            return [row]
        if query.startswith("tok:"):
            raw = query[4:]
            row = sp.row_of_label.get(raw)
            if row is None:
                raise EmbedlensError(f"token '{raw}' is not in the vocabulary of {sp.name} (give the raw form, e.g. tok:Ġlist)")
            return [row]
        return None

    def _mean_query(self, query: str, rows: list[int], sp: EmbeddingSpace, what: str) -> ResolvedQuery:
        ids = [int(sp.ids[r]) for r in rows]
        if len(rows) == 1:
            vector, note = np.asarray(sp.vectors[rows[0]], dtype=np.float32), None
        else:
            shown = ", ".join(sp.display[r] for r in rows)
            note = f"'{query}' is {len(rows)} {what} ({shown}); using their mean vector"
            vector = np.asarray(sp.vectors[rows], dtype=np.float32).mean(axis=0)
        if not np.linalg.norm(vector) > 0:
            # e.g. a TF-IDF word found in every chunk: every cosine to it would be 0 and its "neighbours" arbitrary
            raise EmbedlensError(f"'{query}' has a zero vector in {sp.name}: it has no direction to compare")
        return ResolvedQuery(query, rows, ids, vector, note)


class ModelLens(Lens):
    """A language model's static embedding spaces, its tokenizer, and (lazily) the model itself.

    Built by :func:`embedlens.load`. Nothing here imports torch or transformers until ``.tokenizer`` or
    ``.model`` is used: the matrices are memory-mapped from the cache.
    """

    is_model = True

    def __init__(self, entry: Any) -> None:
        self.entry = entry
        self.source = entry.source
        self.meta = entry.meta
        self.name = entry.source.name

    def __repr__(self) -> str:
        m = self.meta
        return f"ModelLens({self.source.spec!r}, vocab={m['n_vocab']}, d_model={m['d_model']}, layers={m['n_layers']})"

    @property
    def space(self) -> EmbeddingSpace:
        return self.entry.input

    @property
    def output_space(self) -> EmbeddingSpace:
        """The unembedding (LM head) matrix as a space; the input space when the two are tied."""
        if not self.meta.get("has_output"):
            raise EmbedlensError(f"{self.name} has no LM head, so it has no output embedding space")
        return self.entry.output if self.entry.output is not None else self.entry.input

    def get_space(self, which: str = "input") -> EmbeddingSpace:
        if which == "input":
            return self.space
        if which == "output":
            return self.output_space
        raise EmbedlensError(f"unknown space '{which}' (choose input or output)")

    @cached_property
    def fast_tokenizer(self) -> Any:
        """The ``tokenizers`` object from the cache: fast to load, same ids as the model's tokenizer."""
        path = self.entry.tokenizer_dir / "tokenizer.json"
        return read_fast_tokenizer(path) if path.exists() else None

    @cached_property
    def tokenizer(self) -> Any:
        """The transformers tokenizer (loaded from the cache, not from the model files)."""
        _offline()
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(self.entry.tokenizer_dir), local_files_only=True)

    @cached_property
    def model(self) -> Any:
        """The full transformers model (loaded on first use)."""
        return loading.load_weights(self.source)

    @cached_property
    def _tokenizer_digest(self) -> str | None:
        return (self.meta.get("digests") or {}).get("tokenizer/tokenizer.json")

    @cached_property
    def single_tokens(self) -> SingleTokenIndex | None:
        """The texts the tokenizer encodes as one token (:mod:`embedlens.models.token_lookup`), once built."""
        digest = self._tokenizer_digest
        return open_index(Path(self.entry.folder), digest) if digest else None

    def encode(self, text: str, *, add_special_tokens: bool = True) -> list[int]:
        """Token ids exactly as the model's tokenizer gives them (with whatever BOS/CLS it adds).

        Without special tokens, a text the tokenizer encodes as one token is answered from the cache entry's
        :class:`~embedlens.models.token_lookup.SingleTokenIndex` (built the first time), not the tokenizer.
        """
        if not add_special_tokens and self.single_tokens is not None:
            found = self.single_tokens.lookup(text)
            if found is not None:
                return [found]
        fast = self.fast_tokenizer
        if fast is not None:
            if not add_special_tokens and self.single_tokens is None and self._tokenizer_digest:
                self.single_tokens = build_index(Path(self.entry.folder), fast, self._tokenizer_digest)
            return list(fast.encode(text, add_special_tokens=add_special_tokens).ids)
        return list(self.tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"])

    def tokens(self, text: str) -> TokenTable:
        """Tokenize ``text``: ids, raw and readable tokens, and each token's input-embedding vector."""
        if not text or not text.strip():
            raise EmbedlensError("the text is empty")
        ids = self.encode(text)
        if not ids:
            raise EmbedlensError("the text produced no tokens")
        sp = self.space
        bad = [i for i in ids if not 0 <= i < len(sp)]
        if bad:
            raise EmbedlensError(f"token ids {bad[:3]} are outside the embedding matrix ({len(sp)} rows)")
        vectors = np.asarray(sp.vectors[ids], dtype=np.float32)
        rows = [
            TokenRow(p, int(t), sp.labels[t], sp.display[t], vectors[p, :3].tolist(), vectors[p, -3:].tolist())
            for p, t in enumerate(ids)
        ]
        return TokenTable(self.source.spec, text, rows, vectors, float(self.meta.get("embed_scale", 1.0)))

    def resolve(self, query: str, which: str = "input") -> ResolvedQuery:
        """A word (tokenized as the model sees it; several tokens -> their mean), ``id:N`` or ``tok:RAW``."""
        sp = self.get_space(which)
        if not query:
            raise EmbedlensError("the query is empty")
        rows = self._exact_rows(query, sp)
        if rows is None:
            ids = self.encode(query, add_special_tokens=False)
            if not ids:
                raise EmbedlensError(f"'{query}' produced no tokens")
            found = sp.rows_of_ids(ids)
            if (found < 0).any():
                raise EmbedlensError(f"'{query}' has tokens outside the embedding matrix")
            rows = found.tolist()
        return self._mean_query(query, rows, sp, "tokens")

    def manifest(self) -> dict[str, Any]:
        m = self.meta
        keys = ("spec", "name", "kind", "content_hash", "model_type", "n_vocab", "d_model", "n_layers", "tied",
                "embed_scale", "token_scheme", "tokenizer_class")
        return {k: m.get(k) for k in keys}


class SpaceLens(Lens):
    """A plain embedding space (words or labels, no tokenizer): queries are labels, ``id:N`` or ``tok:LABEL``."""

    def __init__(self, space: EmbeddingSpace, *, lowercase_fallback: bool = True) -> None:
        self._space = space
        self.name = space.name
        self.lowercase_fallback = lowercase_fallback

    def __repr__(self) -> str:
        return f"SpaceLens({self.name!r}, n={len(self._space)}, dim={self._space.dim})"

    @property
    def space(self) -> EmbeddingSpace:
        return self._space

    @property
    def meta(self) -> dict[str, Any]:
        return self._space.metadata

    def resolve(self, query: str, which: str = "input") -> ResolvedQuery:
        sp = self.get_space(which)
        if not query:
            raise EmbedlensError("the query is empty")
        rows = self._exact_rows(query, sp)
        if rows is None:
            row = sp.row_of_label.get(query)
            if row is None and self.lowercase_fallback:
                row = sp.row_of_label.get(query.lower())
            if row is not None:
                rows = [row]
            else:
                words = query.split()
                missing = [w for w in words if w not in sp.row_of_label and w.lower() not in sp.row_of_label]
                if not words or missing:
                    raise EmbedlensError(f"'{missing[0] if missing else query}' is not in the vocabulary of {sp.name}")
                rows = [sp.row_of_label.get(w, sp.row_of_label.get(w.lower())) for w in words]
        return self._mean_query(query, rows, sp, "words")

    def manifest(self) -> dict[str, Any]:
        return {"space": self.name, "n": len(self._space), "dim": self._space.dim, **{
            k: v for k, v in self._space.metadata.items() if isinstance(v, str | int | float | bool)}}


class SpaceView:
    """One space of a handle: ``lens.input`` or ``lens.output``.

    What every stage takes. It answers on its own space what its handle answers (``resolve``,
    ``nearest``, ``variants``) and carries what the stages ask of the handle: ``is_model``, ``meta``,
    ``manifest()``, ``encode`` (models) and ``which``.
    """

    def __init__(self, lens: Lens, which: str) -> None:
        self.lens = lens
        self.which = which
        self.space = lens.get_space(which)  # the error for a missing head or a second space comes here

    def __repr__(self) -> str:
        return f"{self.lens!r}.{self.which}"

    @property
    def name(self) -> str:
        """The handle's name (a model's, or the space's own)."""
        return self.lens.name

    @property
    def is_model(self) -> bool:
        return self.lens.is_model

    @property
    def meta(self) -> dict[str, Any]:
        return self.lens.meta

    @property
    def token_scheme(self) -> str:
        """How tokens mark a word start (``byte_level``, ``sentencepiece``...); ``plain`` for word spaces."""
        return str(self.meta.get("token_scheme", "plain")) if self.is_model else "plain"

    def manifest(self) -> dict[str, Any]:
        return self.lens.manifest()

    def cache_folder(self) -> Path:
        """Where files derived from this space (k-NN graphs) are cached: a model's cache entry, or a
        folder per content hash of the matrix under the user's cache."""
        if isinstance(self.lens, ModelLens):
            return Path(self.lens.entry.folder)

        return space_folder(self.space.vectors, self.content_hash)

    @cached_property
    def content_hash(self) -> str:
        """Identifies the vectors: a model's content hash (+ the space), or a hash of the matrix (read once)."""
        if isinstance(self.lens, ModelLens) and self.meta.get("content_hash"):
            return str(self.meta["content_hash"]) + ("" if self.which == "input" else f"-{self.which}")

        return space_content_hash(self.space.vectors)

    def encode(self, text: str, *, add_special_tokens: bool = True) -> list[int]:
        if not isinstance(self.lens, ModelLens):
            raise EmbedlensError(f"{self.name} has no tokenizer")
        return self.lens.encode(text, add_special_tokens=add_special_tokens)

    def resolve(self, query: str) -> ResolvedQuery:
        return self.lens.resolve(query, self.which)

    def nearest(self, query: str, k: int = 20, *, include_query: bool = False, index: Any = None) -> NeighborResult:
        return self.lens.nearest(query, k, space=self.which, include_query=include_query, index=index)

    def variants(self, word: str) -> NeighborResult:
        return self.lens.variants(word, space=self.which)


def as_view(lens: Lens | SpaceView, which: str | None = None) -> SpaceView:
    """The view a stage works on: a :class:`SpaceView` as given, or a handle's space ``which`` (default input)."""
    if isinstance(lens, SpaceView):
        if which is not None and which != lens.which:
            raise EmbedlensError(f"got {lens!r} and space '{which}'; pass one of them")
        return lens
    if not isinstance(lens, Lens):
        raise TypeError(f"expected a lens or one of its spaces (lens.input), got {type(lens).__name__}")
    return lens.view(which or "input")


def load(spec: str | None = None, *, rebuild: bool = False) -> ModelLens:
    """Open a model's embedding spaces, extracting and caching them on first use.

    Args:
        spec: an alias (``smollm2-135m``), a model folder, a ``.gguf`` file, or a hub name already in
            the local Hugging Face cache. ``None`` means the default model.
        rebuild: re-extract even if a sound cache entry exists.
    """
    return ModelLens(open_entry(resolve(spec), rebuild=rebuild))


def as_lens(model: Any) -> Any:
    """A :class:`~embedlens.lens.ModelLens` for a spec string, a ModelLens, or ``None`` (the default model)."""
    if isinstance(model, ModelLens):
        return model
    if model is None or isinstance(model, str):
        return load(model)
    raise EmbedlensError(f"model must be a model spec or a ModelLens, got {type(model).__name__}")
