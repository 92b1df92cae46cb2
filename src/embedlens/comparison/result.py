"""``Comparison``: two spaces side by side, as figures with their controls and token by token.

Saved as ``tokens.parquet`` (one row per shared token) and ``manifest.json`` (everything else), both
written atomically, no pickle; :meth:`Comparison.load` reads them back. ``compare.html`` is drawn from the
result by :mod:`embedlens.render.compare`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from ..cache import atomic_path, ensure_writable_dir, write_json_atomic, write_text_atomic
from ..errors import EmbedlensError
from ..timing import Timings
from ..versions import versions
from .figures import FIGURES

OUTPUT_FILES = ("compare.html", "tokens.parquet", "manifest.json")
ARRAYS = ("rows_a", "rows_b", "ids_a", "ids_b", "overlap", "displacement", "gained", "lost", "counts", "coords_a",
          "coords_b")
_DTYPES = {"rows_a": np.int64, "rows_b": np.int64, "ids_a": np.int64, "ids_b": np.int64, "overlap": np.float32,
           "displacement": np.float32, "gained": np.int32, "lost": np.int32, "counts": np.int64,
           "coords_a": np.float32, "coords_b": np.float32}


@dataclass
class Comparison:
    """Space A against space B on their shared tokens.

    Attributes:
        a, b: each space's name, size, dimension and manifest.
        match: how rows were paired (``identity``, ``pairs``, ``string``).
        n_shared, only_a, only_b: tokens in both, only in A, only in B.
        k: neighbours per token for the k-NN overlap.
        figures: ``cka``, ``knn_overlap``, ``procrustes_residual``, ``acc1``, ``acc10``.
        control: the same names -> ``{"mean", "std"}`` under seeded random permutations of the pairs.
        rows_a, rows_b, ids_a, ids_b: int64 arrays (n_shared,): the paired rows and their token ids.
        display_a, display_b: readable tokens of each pair.
        overlap: float32 (n_shared,), Jaccard index of the token's k nearest in A and in B.
        displacement: float32 (n_shared,), distance of the aligned A row from its B row, in units of the
            RMS row length (the mean of its square is the Procrustes residual).
        gained, lost: int32 (n_shared, k), positions (in this table) of the neighbours the token has in B
            but not in A (gained) and in A but not in B (lost), -1 padded.
        counts: int64 (n_shared,) corpus counts of A's tokens (``min_count`` filters the rankings), or None.
        coords_a, coords_b: float32 (n_shared, 2), each token on A's and on B's map, or None.
        maps: how each map was made (method, whether it was computed now).
        same_space: whether A and B are one space (all figures 1, residual 0).
        params: seed, control runs and sample, min_count, corpus.
        notes: sentences for a reader.
        timings: seconds per stage.
    """

    a: dict[str, Any]
    b: dict[str, Any]
    match: str
    n_shared: int
    only_a: int
    only_b: int
    k: int
    figures: dict[str, float]
    control: dict[str, dict[str, float]]
    rows_a: np.ndarray
    rows_b: np.ndarray
    ids_a: np.ndarray
    ids_b: np.ndarray
    display_a: list[str]
    display_b: list[str]
    overlap: np.ndarray
    displacement: np.ndarray
    gained: np.ndarray
    lost: np.ndarray
    counts: np.ndarray | None = None
    coords_a: np.ndarray | None = None
    coords_b: np.ndarray | None = None
    maps: dict[str, Any] = field(default_factory=dict)
    same_space: bool = False
    params: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.n_shared

    # -- what a reader asks ------------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """The figures as ``--json`` prints them: counts, k, each figure, and ``control`` ``{name: {mean, std}}``."""
        return {"n_shared": self.n_shared, "only_a": self.only_a, "only_b": self.only_b, "k": self.k,
                **{name: self.figures[name] for name in FIGURES},
                "control": {name: dict(self.control[name]) for name in FIGURES}}

    def eligible(self) -> np.ndarray:
        """Positions that may appear in the rankings: all, or those seen ``min_count`` times in the corpus."""
        min_count = int(self.params.get("min_count") or 0)
        if self.counts is None or min_count <= 1:
            return np.arange(self.n_shared)
        return np.flatnonzero(self.counts >= min_count)

    def most_changed(self, limit: int = 20) -> np.ndarray:
        """Positions of the tokens whose neighbours changed most: lowest overlap, then largest displacement."""
        rows = self.eligible()
        order = np.lexsort((-self.displacement[rows], self.overlap[rows]))
        return rows[order[:limit]]

    def most_stable(self, limit: int = 20) -> np.ndarray:
        """Positions of the tokens that changed least: highest overlap, then smallest displacement."""
        rows = self.eligible()
        order = np.lexsort((self.displacement[rows], -self.overlap[rows]))
        return rows[order[:limit]]

    def token(self, position: int) -> dict[str, Any]:
        """One shared token: ids, readable forms, overlap, displacement, neighbours gained and lost."""
        i = int(position)
        return {"display": self.display_a[i], "display_b": self.display_b[i], "id_a": int(self.ids_a[i]),
                "id_b": int(self.ids_b[i]), "overlap": float(self.overlap[i]),
                "displacement": float(self.displacement[i]),
                "gained": [self.display_a[j] for j in self.gained[i] if j >= 0],
                "lost": [self.display_a[j] for j in self.lost[i] if j >= 0],
                **({"count": int(self.counts[i])} if self.counts is not None else {})}

    def figure_lines(self) -> list[tuple[str, float, float, float]]:
        """``(name, value, control mean, control std)`` for each figure, in :data:`FIGURES` order."""
        return [(name, self.figures[name], self.control[name]["mean"], self.control[name]["std"]) for name in FIGURES]

    # -- dict / files ---------------------------------------------------------------------------------

    def meta(self) -> dict[str, Any]:
        """Everything but the per-token arrays (the manifest)."""
        return {**self.summary(), "a": self.a, "b": self.b, "match": self.match, "same_space": self.same_space,
                "maps": self.maps, "params": self.params, "notes": list(self.notes),
                "timings": {key: round(v, 4) for key, v in self.timings.items()},
                "most_changed": [self.token(i) for i in self.most_changed()],
                "most_stable": [self.token(i) for i in self.most_stable()]}

    def to_dict(self) -> dict[str, Any]:
        out = self.meta()
        for name in ARRAYS:
            value = getattr(self, name)
            out[name] = None if value is None else np.asarray(value).tolist()
        out["display_a"], out["display_b"] = list(self.display_a), list(self.display_b)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Comparison:
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if f.name == "files" or f.name not in data:
                continue
            value = data[f.name]
            if f.name in ARRAYS and value is not None:
                value = np.asarray(value, dtype=_DTYPES[f.name])
                if f.name in ("gained", "lost"):
                    value = value.reshape(-1, int(data["k"]))
            elif f.name in ("figures",):
                value = dict(value)
            kwargs[f.name] = value
        if "figures" not in kwargs:
            kwargs["figures"] = {name: float(data[name]) for name in FIGURES}
        return cls(**kwargs)

    def tokens_table(self) -> Any:
        """One row per shared token: ``id_a``, ``id_b``, ``display``, ``overlap``, ``displacement``, the
        neighbours gained and lost (readable, and as positions in this table), counts and map coordinates."""
        import pyarrow as pa

        display = pa.array(self.display_a, type=pa.string())

        def neighbours(pos: np.ndarray) -> tuple[Any, Any]:
            keep = pos >= 0
            offsets = np.concatenate([[0], np.cumsum(keep.sum(axis=1))]).astype(np.int32)
            flat = pos[keep].astype(np.int32)
            return (pa.ListArray.from_arrays(pa.array(offsets), display.take(pa.array(flat))),
                    pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat)))

        gained, gained_at = neighbours(self.gained)
        lost, lost_at = neighbours(self.lost)
        columns = {"id_a": pa.array(self.ids_a), "id_b": pa.array(self.ids_b), "display": display,
                   "display_b": pa.array(self.display_b, type=pa.string()), "overlap": pa.array(self.overlap),
                   "displacement": pa.array(self.displacement), "gained": gained, "lost": lost,
                   "row_a": pa.array(self.rows_a), "row_b": pa.array(self.rows_b),
                   "gained_at": gained_at, "lost_at": lost_at}
        if self.counts is not None:
            columns["count"] = pa.array(self.counts)
        for side, coords in (("a", self.coords_a), ("b", self.coords_b)):
            if coords is not None:
                columns[f"x_{side}"], columns[f"y_{side}"] = pa.array(coords[:, 0]), pa.array(coords[:, 1])
        return pa.table(columns)

    def save(self, out_dir: str | os.PathLike[str], *, html: bool = True, started: float | None = None) -> dict[str, Path]:
        """Write ``compare.html``, ``tokens.parquet`` and ``manifest.json`` (last) into ``out_dir``, each atomically."""
        import pyarrow.parquet as pq

        out = ensure_writable_dir(out_dir)
        written: dict[str, Path] = {}
        clock = Timings(started=started)
        try:
            if html:
                from ..render.compare import compare_html  # lazy: it imports plotly at the top

                with clock.stage("html"):
                    written["compare.html"] = write_text_atomic(out / "compare.html", compare_html(self))
            else:  # a page from an earlier run must not sit beside these tokens
                (out / "compare.html").unlink(missing_ok=True)
            with clock.stage("parquet"):
                with atomic_path(out / "tokens.parquet") as tmp:
                    pq.write_table(self.tokens_table(), tmp, compression="zstd")
                written["tokens.parquet"] = out / "tokens.parquet"
            self.timings.update(clock)
            if started is not None:
                self.timings["total"] = clock.since_start()
            manifest = {"kind": "compare", **self.meta(), "versions": versions(),
                        "files": {name: {"bytes": path.stat().st_size} for name, path in written.items()}}
            written["manifest.json"] = write_json_atomic(out / "manifest.json", manifest)
        except OSError as exc:
            raise EmbedlensError(f"could not write the comparison into {out}: {exc.strerror or exc}") from None
        self.files = written
        return written

    @classmethod
    def load(cls, out_dir: str | os.PathLike[str]) -> Comparison:
        """Read a folder written by :meth:`save`."""
        import json

        import pyarrow.parquet as pq

        folder = Path(out_dir)
        try:
            meta = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
            table = pq.read_table(folder / "tokens.parquet")
        except (OSError, ValueError) as exc:
            raise EmbedlensError(f"{folder} is not a saved comparison ({exc})") from None
        k = int(meta["k"])

        def column(name: str) -> Any:
            return table.column(name).to_numpy() if name in table.column_names else None

        def padded(name: str) -> np.ndarray:
            lists = table.column(name).combine_chunks()
            offsets = lists.offsets.to_numpy()
            lengths = np.diff(offsets)
            out = np.full((len(lengths), k), -1, dtype=np.int32)
            rows = np.repeat(np.arange(len(lengths)), lengths)
            out[rows, np.arange(offsets[-1] - offsets[0]) - np.repeat(offsets[:-1] - offsets[0], lengths)] = \
                lists.flatten().to_numpy()
            return out

        coords = {side: np.column_stack([column(f"x_{side}"), column(f"y_{side}")]).astype(np.float32)
                  if f"x_{side}" in table.column_names else None for side in ("a", "b")}
        data = {**meta, "rows_a": column("row_a"), "rows_b": column("row_b"), "ids_a": column("id_a"),
                "ids_b": column("id_b"), "display_a": table.column("display").to_pylist(),
                "display_b": table.column("display_b").to_pylist(), "overlap": column("overlap"),
                "displacement": column("displacement"), "gained": padded("gained_at"), "lost": padded("lost_at"),
                "counts": column("count"), "coords_a": coords["a"], "coords_b": coords["b"]}
        return cls.from_dict(data)
