"""Background work of the server: projections, corpus frequencies and grid maps, one at a time.

Heavy work runs on a single background thread (the machine's cores go to one NumPy/torch job at a
time, queries keep their own threads), is keyed so that asking twice starts it once, and reports its
state (``queued``, ``running``, ``ready``, ``error``) with timings for the progress indicator.

Projections are computed with :func:`embedlens.reduce.make_reducer` and cached on disk under
``cache_root()/"projections"/<content key>-<method>-<dims>-<seed>.npz`` (``np.savez``, no pickle,
written atomically). A PCA file also keeps the fitted components and mean, so new vectors (a
prompt's hidden states) can be placed on the same map after a restart.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import zipfile
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..cache import json_default
from ..errors import EmbedlensError

log = logging.getLogger("embedlens")

FORMAT_VERSION = 1


@dataclass
class Job:
    """One piece of background work and what the page is told about it."""

    key: str
    kind: str
    label: str
    state: str = "queued"
    submitted: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    error: str | None = None
    result: Any = None
    future: Future | None = None

    def to_dict(self) -> dict[str, Any]:
        now = time.time()
        return {
            "key": self.key,
            "kind": self.kind,
            "label": self.label,
            "state": self.state,
            "queued_s": round((self.started or now) - self.submitted, 3),
            "elapsed_s": round((self.finished or now) - self.started, 3) if self.started else 0.0,
            "error": self.error,
        }


class JobManager:
    """Runs keyed jobs on one worker thread; a key already known returns the existing job."""

    def __init__(self, workers: int = 1) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="embedlens-job")
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> Job | None:
        with self._lock:
            return self._jobs.get(key)

    def submit(self, key: str, kind: str, label: str, fn: Callable[[], Any], *, retry_failed: bool = True) -> Job:
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and not (retry_failed and job.state == "error"):
                return job
            job = Job(key, kind, label)
            self._jobs[key] = job

        def run() -> None:
            job.started, job.state = time.time(), "running"
            try:
                job.result = fn()
                job.state = "ready"
            except EmbedlensError as exc:
                job.error, job.state = str(exc), "error"
            except MemoryError:
                job.error, job.state = "out of memory", "error"
            except Exception as exc:  # a bug: keep serving, tell the page in one line
                log.warning("background job %s failed: %s: %s", label, type(exc).__name__, exc)
                job.error, job.state = f"internal error: {type(exc).__name__}: {exc}", "error"
            finally:
                job.finished = time.time()

        job.future = self._pool.submit(run)
        return job

    def done(self, key: str, result: Any, kind: str, label: str) -> Job:
        """Record a result that needed no work (found on disk)."""
        with self._lock:
            job = Job(key, kind, label, state="ready", started=time.time(), finished=time.time(), result=result)
            self._jobs[key] = job
            return job

    def all(self) -> list[dict[str, Any]]:
        with self._lock:
            return [j.to_dict() for j in self._jobs.values()]

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


@dataclass
class Projection:
    """A map of a whole space: ``coords`` (n, dims) float32, and the PCA fit when the method is PCA."""

    coords: np.ndarray
    method: str
    dims: int
    seed: int
    params: dict[str, Any]
    notes: list[str]
    pca: Any = None  # embedlens.reduce.PCAFit

    @property
    def can_transform(self) -> bool:
        return self.pca is not None

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Place new vectors (m, d) on this map: float32 (m, dims). PCA only."""
        if self.pca is None:
            raise EmbedlensError(f"a {self.method} map cannot place new points (only PCA can project new "
                                 "vectors onto the same map): switch the map to PCA")
        return self.pca.transform(np.asarray(x, dtype=np.float32))

    def info(self) -> dict[str, Any]:
        return {"method": self.method, "dims": self.dims, "seed": self.seed, "params": self.params,
                "notes": self.notes, "can_transform": self.can_transform}


def projection_path(content_key: str, method: str, dims: int, seed: int) -> Path:
    from ..cache import cache_root

    return cache_root() / "projections" / f"{content_key}-{method}-{dims}-{seed}.npz"


def save_projection(path: Path, proj: Projection) -> Path:
    from ..cache import atomic_path

    arrays: dict[str, np.ndarray] = {
        "coords": np.ascontiguousarray(proj.coords, dtype=np.float32),
        "meta_json": np.array(json.dumps({"format": FORMAT_VERSION, "method": proj.method, "dims": proj.dims,
                                          "seed": proj.seed, "params": proj.params, "notes": proj.notes},
                                         default=json_default)),
    }
    if proj.pca is not None:
        arrays.update(pca_components=np.asarray(proj.pca.components), pca_mean=np.asarray(proj.pca.mean),
                      pca_variances=np.asarray(proj.pca.variances),
                      pca_total=np.array(float(proj.pca.total_variance)), pca_metric=np.array(proj.pca.metric))
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    return path


def load_projection(path: Path, n: int) -> Projection | None:
    """A cached projection with ``n`` rows, or None when absent or unreadable (it is then recomputed)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta_json"]))
            coords = np.ascontiguousarray(data["coords"], dtype=np.float32)
            pca = None
            if "pca_components" in data:
                from ..reduce import PCAFit

                pca = PCAFit(np.asarray(data["pca_components"]), np.asarray(data["pca_mean"]),
                             np.asarray(data["pca_variances"]), float(data["pca_total"]), str(data["pca_metric"]))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        log.warning("ignoring unreadable projection %s (%s); recomputing", path.name, exc)
        return None
    if meta.get("format") != FORMAT_VERSION or coords.shape[0] != n or not np.isfinite(coords).all():
        return None
    return Projection(coords, meta["method"], int(meta["dims"]), int(meta["seed"]), meta.get("params", {}),
                      list(meta.get("notes", [])), pca)


def compute_projection(vectors: np.ndarray, method: str, dims: int, seed: int) -> Projection:
    """Fit ``make_reducer(method, n_components=dims, metric="cosine", seed=seed)`` on the whole space."""
    from ..reduce import make_reducer

    reducer = make_reducer(method, n_components=dims, metric="cosine", seed=seed)
    coords = reducer.fit_transform(vectors)
    pca = None
    if method == "pca":  # keep the fit (public attributes) so new vectors can be placed on this map
        from ..reduce import PCAFit

        ratio = float(np.sum(reducer.explained_variance_ratio_))
        total = float(np.sum(reducer.explained_variance_)) / ratio if ratio > 0 else 0.0
        pca = PCAFit(np.asarray(reducer.components_), np.asarray(reducer.mean_),
                     np.asarray(reducer.explained_variance_), total, reducer.metric)
    from ..reduce.quality import projection_quality

    # the same faithfulness figures as `embedlens map`: recall over all points, sampled trustworthiness
    quality = projection_quality(vectors, coords, seed=seed, space_neighbors=getattr(reducer, "neighbors_", None))
    params = {**dict(reducer.params_), "quality": quality.to_dict()}
    return Projection(coords, method, dims, seed, params, [quality.summary(), *reducer.notes_], pca)


