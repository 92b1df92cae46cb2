"""A static copy of the explorer: one folder that opens from ``file://`` or any static host, no server.

:func:`export_site` writes the explorer's own page (``static/index.html`` and its scripts) with the
answers the server would give, computed once by the same code (:class:`~embedlens.serve.explorer.Explorer`):

- the map the explorer opens on (the cached t-SNE/UMAP map, else PCA computed now, and the export says so),
  its recall figure and each token's local recall;
- the labelled clusters and sub-cluster label levels (``/api/clusters?n=auto``);
- corpus frequencies (``/api/frequency``);
- the ``k`` nearest neighbours of every token with their cosine scores, read from the space's cached
  exact k-NN graph (built and cached the first time: the one slow step).

Chromium refuses ``fetch()`` of local files, so the data are plain scripts the page loads with
``<script src>`` (``data/panel-0.js`` sets ``window.EMBEDLENS_DATA.panels[0]``), and it loads no ES module
from ``file://``: the page's modules are written as one script, ``static/explorer.js``
(:func:`~embedlens.serve.bundle.bundle_modules`). Token strings go through
:func:`~embedlens.render.offline.json_for_script` (a token ``</script>`` cannot end the script); the
large arrays (coordinates float32, neighbour rows int32, scores float32, little-endian) are base64.
The page's ``offline.js`` module answers the page's API calls from these data; what needs the model or a
live server (prompts, layers, grid, other maps, a selection's centroid and graph) is hidden.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ..atlas.default_map import CACHED_METHODS, default_map
from ..atlas.projection import load_projection, projection_path
from ..cache import atomic_dir
from ..corpus.frequencies import TokenFrequencies
from ..errors import EmbedlensError
from ..lens import Lens, SpaceView
from ..method_names import REDUCERS
from ..neighbors.index import EXACT_MAX
from ..neighbors.knn import KnnGraph, build_knn, cached_knn
from ..render.offline import json_for_script
from ..timing import Timings
from ..versions import versions
from .app import component_dir, static_dir
from .bundle import bundle_modules
from .explorer import GRAPH_K, Explorer, clusters_answer, faithfulness_answer, frequency_answer
from .jobs import ready_answer
from .panels import MAX_K, Panel

DEFAULT_K = 20
FORMAT_VERSION = 1
# No network at all: scripts, styles and images from the folder itself; downloads are blob: URLs.
EXPORT_CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
              "connect-src 'none'; object-src 'none'; base-uri 'none'; form-action 'none'")
# The page's modules in one script (a page opened from disk loads no module); Plotly (layers and grid
# heatmaps only) and boot.js (the served page's early downloads) are left out.
BUNDLE = "explorer.js"
COMPONENT_SCRIPTS = ("pointcloud.js",)


@dataclass
class ExportResult:
    """What :func:`export_site` wrote: the folder, its manifest and the size of each file in bytes."""

    path: Path
    manifest: dict[str, Any]
    sizes: dict[str, int] = field(default_factory=dict)

    @property
    def total_bytes(self) -> int:
        return int(sum(self.sizes.values()))

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "manifest": self.manifest, "sizes": dict(self.sizes),
                "total_bytes": self.total_bytes}


def check_export_target(out_dir: str | os.PathLike[str]) -> Path:
    """``out_dir`` as a path, or an :class:`EmbedlensError` when it cannot be written (checked before any work)."""
    given = Path(out_dir).expanduser()
    target = given.resolve()  # "." and ".." have no name to replace the folder by
    if target.exists() and not target.is_dir():
        raise EmbedlensError(f"`out_dir` {str(given)!r} is a file, not a folder")
    if target == Path.cwd().resolve() or target in Path.cwd().resolve().parents:
        raise EmbedlensError(f"`out_dir` {str(given)!r} is the current folder or holds it (the export replaces the "
                             "folder): name a new folder")
    if target.is_dir() and any(target.iterdir()) and not _is_export(target):
        raise EmbedlensError(f"`out_dir` {str(given)!r} holds other files: choose an empty or new folder "
                             "(an earlier export there is replaced)")
    parent = target.resolve().parent
    while not parent.exists():
        parent = parent.parent
    if not os.access(parent, os.W_OK | os.X_OK):
        raise EmbedlensError(f"`out_dir` {str(target)!r} cannot be written ({parent} is not writable)")
    return target


def _is_export(folder: Path) -> bool:
    """Whether ``folder`` holds an earlier export and nothing else: each of its files is one its manifest lists."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_VERSION or not isinstance(manifest.get("sizes"), dict):
        return False
    written = {*manifest["sizes"], "manifest.json"}
    return all(p.relative_to(folder).as_posix() in written for p in folder.rglob("*") if not p.is_dir())


def check_export_k(k: Any, n_tokens: int | None = None) -> int:
    """``k`` as an int in 1..:data:`~embedlens.serve.panels.MAX_K` (and below the number of tokens), else an error."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= int(k) <= MAX_K:
        raise EmbedlensError(f"`k` must be a whole number from 1 to {MAX_K}, got {k!r}")
    if n_tokens is not None and int(k) >= n_tokens:
        raise EmbedlensError(f"`k` must be below the number of tokens ({n_tokens:,}), got {k}")
    return int(k)


def export_site(spaces: list[Lens | SpaceView | Panel], out_dir: str | os.PathLike[str], *, k: int = DEFAULT_K, corpus: str | list[str] = "lee",
                seed: int = 0, progress: bool = True) -> ExportResult:
    """Write the explorer of one or two spaces as a static folder (open ``index.html``, no server).

    Args:
        spaces: one or two spaces (``lens.input``, ``lens.output``) or lenses (their input space).
        out_dir: the folder to write (replaced atomically; an existing folder must be empty or an earlier export).
        k: neighbours stored per token (1..200).
        corpus: corpus spec(s) counted for the colour-by-frequency view, as ``embedlens serve``'s.
        seed: seed of the maps and clusters (the explorer's default 0 reads its cached maps).
        progress: show a progress bar while the space's k-NN graph is built (only when it is not cached).

    Returns:
        The :class:`ExportResult`: the folder, its manifest (``manifest.json``) and file sizes.
    """
    target = check_export_target(out_dir)
    k = check_export_k(k)
    if not 1 <= len(spaces) <= 2:
        raise EmbedlensError(f"an export shows one or two spaces side by side, got {len(spaces)}")
    panels = [item if isinstance(item, Panel) else Panel(item, index=i) for i, item in enumerate(spaces)]
    for i, panel in enumerate(panels):
        panel.index = i
        check_export_k(k, len(panel.space))
    explorer = Explorer(panels, corpus=corpus, seed=seed)
    clock = Timings()
    methods = _shared_methods(panels, explorer.seed)
    try:
        blocks, about = zip(*(_panel_data(explorer, panel, k, progress, methods) for panel in panels), strict=True)
    finally:
        explorer.jobs.shutdown()
        explorer.index_jobs.shutdown()
    info = _info(explorer, list(about), k)
    with atomic_dir(target) as tmp:
        (tmp / "data").mkdir()
        (tmp / "static").mkdir()
        _write_text(tmp / "data" / "info.js", "window.EMBEDLENS_DATA = {\"info\": " + json_for_script(info)
                    + ", \"panels\": []};\n")
        for i, block in enumerate(blocks):
            _write_text(tmp / "data" / f"panel-{i}.js", f"window.EMBEDLENS_DATA.panels[{i}] = "
                        + json_for_script(block) + ";\n")
        _write_text(tmp / "static" / BUNDLE, bundle_modules(static_dir()))
        shutil.copyfile(static_dir() / "app.css", tmp / "static" / "app.css")
        for name in COMPONENT_SCRIPTS:
            shutil.copyfile(component_dir() / name, tmp / "static" / name)
        _write_text(tmp / "index.html", page_html(len(panels)))
        sizes = {p.relative_to(tmp).as_posix(): p.stat().st_size for p in sorted(tmp.rglob("*")) if p.is_file()}
        manifest = {"format": FORMAT_VERSION, "created": datetime.now(UTC).isoformat(timespec="seconds"),
                    "spaces": [{key: v for key, v in a.items() if key != "timings"} for a in about], "k": k, "seed": explorer.seed, "corpus": corpus, "versions": versions(),
                    "timings": {"total_s": round(clock.since_start(), 3),
                                **{f"panel_{i}": a["timings"] for i, a in enumerate(about)}},
                    "sizes": sizes, "total_bytes": int(sum(sizes.values()))}
        _write_text(tmp / "manifest.json", json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
        sizes["manifest.json"] = (tmp / "manifest.json").stat().st_size
    return ExportResult(target, manifest, sizes)


def page_html(n_panels: int) -> str:
    """The explorer's ``index.html`` for a folder: relative paths, the data scripts first, a no-network CSP."""
    html = (static_dir() / "index.html").read_text(encoding="utf-8")
    data = "".join(f'<script src="data/panel-{i}.js"></script>\n' for i in range(n_panels))
    edits = [('<meta charset="utf-8">\n',
              f'<meta charset="utf-8">\n<meta http-equiv="Content-Security-Policy" content="{EXPORT_CSP}">\n'),
             ('<script src="/static/boot.js"></script>\n', '<script src="data/info.js"></script>\n' + data),
             ('<script type="module" src="/static/main.js"></script>\n', f'<script src="/static/{BUNDLE}" defer></script>\n'),
             ('"/static/', '"static/')]
    for old, new in edits:
        if old not in html:  # the page changed shape: fail loudly rather than write a page that cannot load
            raise EmbedlensError(f"the explorer's index.html no longer holds {old.strip()!r}")
        html = html.replace(old, new)
    return html


# -- what one panel holds ------------------------------------------------------------------------------------


def _shared_methods(panels: list[Panel], seed: int) -> tuple[str, ...]:
    """The cached whole-space 2-D maps (t-SNE, UMAP) that every panel has, best first: the page draws all its
    panels with the first panel's method, so a map cached for one space alone cannot be the export's."""
    return tuple(m for m in CACHED_METHODS
                 if all(load_projection(projection_path(p.content_key, m, 2, seed), len(p.space)) is not None
                        for p in panels))


def _panel_data(explorer: Explorer, panel: Panel, k: int, progress: bool, methods: tuple[str, ...],
                ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The data file of one panel (what the page asks the server for) and its manifest entry, on the first
    of ``methods`` cached for it (else PCA)."""
    clock = Timings()
    with clock.stage("knn_s"):
        graph = _graph(explorer, panel, k, progress)
    with clock.stage("map_s"):
        found = default_map(panel.view, dims=2, seed=explorer.seed, methods=methods)
        proj = found.projection
        stand_in = proj.method not in CACHED_METHODS
        which = panel.title if len(explorer.panels) == 1 else "every space of this export (one method draws them all)"
        note = (f"PCA map: no t-SNE or UMAP map of {which} was cached when this was exported "
                "(a whole-space t-SNE map from `embedlens serve` or `embedlens map` is cached; export again)") if stand_in else None
        notes = list(proj.notes or []) + ([note] if note else [])
    with clock.stage("recall_s"):
        faith = explorer.map_faithfulness(panel, proj.method, proj.dims, proj)
    with clock.stage("clusters_s"):
        clusters = explorer.space_clusters(panel, "auto")
    with clock.stage("frequency_s"):
        try:
            frequency: TokenFrequencies | None = explorer.frequencies(panel)
            frequency_note = None
        except EmbedlensError as exc:  # a space without a tokenizer or words: the page colours by the rest
            frequency, frequency_note = None, str(exc)
    with clock.stage("pack_s"):
        indices = np.ascontiguousarray(graph.indices[:, :k], dtype="<i4")
        scores = np.ascontiguousarray(graph.scores[:, :k], dtype="<f4")
        block = {
            "space": panel.space.name,
            "points": panel.points(),
            "map": {"method": proj.method, "dims": proj.dims, "notes": notes, "computed_now": found.computed_now,
                    **{key: value for key, value in proj.info().items() if key not in ("notes",)},
                    "coords": _array(np.ascontiguousarray(proj.coords, dtype="<f4"))},
            # what the server answers once each job is ready (jobs.job_answer): the page reads one shape
            "faithfulness": ready_answer(f"faithfulness:{panel.index}", "faithfulness",
                                         f"local recall of the map of {panel.title}", faith, faithfulness_answer),
            "clusters": ready_answer(f"clusters:{panel.index}", "clusters", f"clusters of {panel.title} (auto)", clusters,
                                     clusters_answer),
            "frequency": None if frequency is None else ready_answer(
                f"frequency:{panel.index}", "frequency", f"token frequencies of {panel.title}", frequency, frequency_answer),
            "frequency_note": frequency_note,
            "neighbors": {"k": k, "graph": f"{graph.method} {graph.k}-NN graph ({graph.backend})",
                          "rows": _array(indices), "scores": _array(scores)},
        }
    timings = {name: round(seconds, 3) for name, seconds in clock.items()}
    about = {**panel.describe(), "model": panel.lens.name,
             "map": {"method": proj.method, "dims": proj.dims, "computed_now": found.computed_now, "stand_in": stand_in,
                     "note": note},
             "recall": faith["recall"], "recall_k": faith["k"], "clusters": len(clusters.clusters),
             "frequency": frequency is not None, "knn": block["neighbors"]["graph"], "timings": timings}
    return block, about


def _graph(explorer: Explorer, panel: Panel, k: int, progress: bool) -> KnnGraph:
    """The space's exact k-NN graph (>= k, and what clusters and recall read): cached, else built once with
    the explorer's width so ``embedlens serve`` reads the same file later."""
    if len(panel.space) > EXACT_MAX:
        raise EmbedlensError(f"{panel.title} has {len(panel.space):,} rows: an export stores exact neighbours, "
                             f"computed up to {EXACT_MAX:,} rows")
    want = max(k, explorer.graph_k(panel))
    if cached_knn(panel.view, want) is None:
        build_knn(panel.view, min(max(GRAPH_K, k), len(panel.space) - 1), method="exact", progress=progress)
    graph = explorer.space_graph(panel, want)
    if graph.method != "exact":
        raise EmbedlensError(f"the cached k-NN graph of {panel.title} is approximate; an export stores exact neighbours")
    return graph


def _info(explorer: Explorer, about: list[dict[str, Any]], k: int) -> dict[str, Any]:
    """``/api/info`` of the export: each panel with its one map, and the limits of what the data hold."""
    panels = []
    for panel, a in zip(explorer.panels, about, strict=True):
        panels.append({**panel.describe(), "default_map": {"method": a["map"]["method"], "dims": a["map"]["dims"],
                                                             "pending": None}})
    return {"panels": panels, "methods": [m for m in REDUCERS if m == about[0]["map"]["method"]], "dims": [2],
            "seed": explorer.seed, "corpus": explorer.corpus, "grid_planes": [], "static": True,
            "limits": {"k_max": k}}


def _array(values: np.ndarray) -> dict[str, Any]:
    """A little-endian array as ``{"dtype", "shape", "base64"}`` (what ``offline.js`` decodes)."""
    return {"dtype": values.dtype.name, "shape": list(values.shape),
            "base64": base64.b64encode(values.tobytes()).decode("ascii")}


def _write_text(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


__all__ = ["DEFAULT_K", "ExportResult", "check_export_k", "check_export_target", "export_site", "page_html"]
