"""The Ray engine: the corpus jobs as Ray Data pipelines, on a local Ray or an existing cluster.

Pipelines (each stage a Ray Data operator; memory is bounded by blocks, not by the corpus):

* counting: read shards as blocks of documents (:class:`CorpusDatasource`) -> ``map_batches`` count the
  tokens of each block (CPU tasks) -> the driver sums one small sparse count per block;
* occurrences: read blocks -> ``map_batches`` find the word and keep each block's seeded sample (CPU
  tasks) -> the driver merges the samples (at most ``max_occurrences`` windows) -> ``map_batches``
  tokenize the windows (CPU tasks) -> ``map_batches`` hidden states in an actor pool that holds the model
  (``num_gpus=1`` per actor when the cluster has GPUs) -> Parquet shards written by the workers into a
  temporary folder, renamed into place only when every shard is written.

Where it runs: ``address`` (or ``RAY_ADDRESS``) attaches to that cluster; otherwise a local Ray is
started for the run and shut down after. A Ray already initialised in this process is used as it is.
Every worker needs embedlens (``pip install 'embedlens[ray]'``), the model files and the corpus at the
same paths as the driver.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EmbedlensError
from .base import CountResult, Engine, StatesJob
from .ray_sources import (
    CorpusDatasource,
    CountBlock,
    FindBlock,
    ModelActor,
    Prepare,
    group_shards,
    rows_to_found,
)

STATE_ROWS_PER_BATCH = 256  # windows per call of a model actor


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise EmbedlensError("the ray engine needs Ray: pip install 'embedlens[ray]'") from None
    return ray


PASSED_ENV = ("EMBEDLENS_CACHE", "HF_HOME", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE",
              "TOKENIZERS_PARALLELISM")


def worker_env() -> dict[str, str]:
    """What the workers of an attached cluster need from the driver's environment (the cache, offline mode)."""
    env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    return env


def _loopback_only() -> None:
    """A Ray started for one local run advertises 127.0.0.1, not the machine's network address.

    Ray reads RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER when it is imported; when it already was, the constant it
    set is updated too (it is read again when the node starts). A user's own setting is kept.
    """
    if "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER" in os.environ:
        return
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    constants = sys.modules.get("ray._private.ray_constants")
    if constants is not None:
        constants.ENABLE_RAY_CLUSTER = False


def _check_reachable(address: str) -> None:
    """Fail in a second with the address when nothing listens there (ray.init would retry for a minute)."""
    if address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise EmbedlensError(f"the Ray address '{address}' is not HOST:PORT")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=3).close()
    except OSError as exc:
        raise EmbedlensError(f"cannot reach the Ray cluster at {address} ({exc.strerror or exc}); "
                             "start one with `ray start --head` or unset RAY_ADDRESS for a local run") from None


class RayEngine(Engine):
    """Runs the pieces as Ray Data pipelines. Use as a context manager."""

    name = "ray"

    def __init__(self, *, address: str | None = None, workers: int | None = None) -> None:
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        self.workers = workers
        self.started = False
        self.n_read_tasks = 1
        if not self.address:
            _loopback_only()
        self.ray = import_ray()

    def open(self) -> None:
        ray = self.ray
        if self.address:
            _check_reachable(self.address)
        if ray.is_initialized():
            self.mode = "already initialised in this process"
        elif self.address:
            try:
                ray.init(address=self.address, logging_level=logging.WARNING, log_to_driver=False,
                         runtime_env={"env_vars": worker_env()})
            except Exception as exc:  # ConnectionError, auth errors, version mismatches
                raise EmbedlensError(f"cannot attach to the Ray cluster at {self.address}: "
                                     f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
            self.started, self.mode = True, "attached"
        else:
            # address="local": a new Ray for this run, never a cluster some `ray start` left on this machine
            ray.init(address="local", num_cpus=self.workers, include_dashboard=False, logging_level=logging.WARNING,
                     log_to_driver=False)
            self.started, self.mode = True, "local Ray started for this run"
        from ray.data import DataContext

        ctx = DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False

    def close(self) -> None:
        if self.started and self.ray.is_initialized():
            self.ray.shutdown()
        self.started = False

    # -- resources ----------------------------------------------------------------------------------
    def resources(self) -> dict[str, float]:
        return {k: float(v) for k, v in self.ray.cluster_resources().items()
                if k in ("CPU", "GPU", "memory", "object_store_memory")}

    def cpu_workers(self) -> int:
        return self.workers or max(1, int(self.resources().get("CPU", 1)))

    def model_workers(self) -> tuple[int, float, int]:
        """(actors, GPUs per actor, torch threads per actor)."""
        res = self.resources()
        gpus, cpus = int(res.get("GPU", 0)), max(1, int(res.get("CPU", 1)))
        if gpus:
            n = min(self.workers or gpus, gpus)
            return n, 1.0, max(1, cpus // n)
        n = self.workers or 1
        return n, 0.0, max(1, cpus // n)

    def info(self) -> dict[str, Any]:
        ray = self.ray
        actors, gpus, threads = self.model_workers()
        return {"engine": "ray", "address": ray.get_runtime_context().gcs_address, "mode": self.mode,
                "workers": self.cpu_workers(), "model_workers": actors, "gpus_per_model_worker": gpus,
                "threads_per_model_worker": threads, "nodes": len([n for n in ray.nodes() if n.get("Alive")]),
                "resources": self.resources(), "ray": ray.__version__}

    # -- pipelines ----------------------------------------------------------------------------------
    def task_bytes(self, corpus: Any) -> int:
        """Bytes per read task: 4 tasks per worker for balance, at most a shard, at least 1 MiB (or a shard if smaller)."""
        floor = min(1 << 20, corpus.shard_bytes)
        return int(max(floor, min(corpus.shard_bytes, corpus.total_bytes // (4 * self.cpu_workers()))))

    def documents(self, corpus: Any, block_chars: int) -> Any:
        """Blocks of documents, read by Ray tasks (shards of big files, several small files per task)."""
        size = self.task_bytes(corpus)
        shards = corpus.shards(min(corpus.shard_bytes, size))
        self.n_read_tasks = max(1, len(group_shards(shards, size)))
        return self.ray.data.read_datasource(CorpusDatasource(shards, block_chars, size),
                                             override_num_blocks=self.n_read_tasks)

    def count(self, counter: Any, corpus: Any, *, block_chars: int = 4 << 20, progress: bool = False) -> CountResult:
        ds = self.documents(corpus, block_chars).map_batches(
            CountBlock(counter), batch_format="pyarrow", batch_size=None, num_cpus=1, compute=self.tasks())
        total = np.zeros(counter.size, dtype=np.int64)
        n_tokens = n_outside = 0
        with worker_errors("count tokens"):
            for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
                for i, v in zip(batch.column("ids").to_pylist(), batch.column("counts").to_pylist(), strict=True):
                    np.add.at(total, np.asarray(i, dtype=np.int64), np.asarray(v, dtype=np.int64))
                n_tokens += int(np.sum(batch.column("n_tokens").to_numpy()))
                n_outside += int(np.sum(batch.column("n_outside").to_numpy()))
        return CountResult(total, n_tokens, n_outside, sum(s.n_bytes for s in corpus.shards()))

    def find(self, query: Any, corpus: Any, *, progress: bool = False) -> tuple[list[Any], int]:
        ds = self.documents(corpus, 4 << 20).map_batches(
            FindBlock(query), batch_format="pyarrow", batch_size=None, num_cpus=1, compute=self.tasks())
        kept: list[Any] = []
        total = 0
        with worker_errors("find the word"):
            for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
                total += int(np.sum(batch.column("n_block").to_numpy()))
                kept.extend(rows_to_found(batch, query.found_type))
                if len(kept) > 2 * query.max_occurrences:
                    kept = query.select(kept)
        return query.select(kept), total

    def states(self, job: StatesJob, rows: dict[str, np.ndarray], *, out_dir: Any = None,
               progress: bool = False) -> dict[str, np.ndarray]:
        """Hidden states of the windows in ``rows``; Parquet shards under ``out_dir`` (a temporary folder if None)."""
        import tempfile

        import pyarrow as pa
        import pyarrow.parquet as pq

        ray = self.ray
        n = len(rows["i"])
        ds = ray.data.from_arrow(pa.table({k: pa.array(v) for k, v in rows.items()}))
        blocks = max(1, min(self.cpu_workers() * 2, -(-n // 64)))
        ds = ds.repartition(blocks).map_batches(Prepare(job), batch_format="numpy", batch_size=None, num_cpus=1,
                                                compute=self.tasks(blocks))
        ds = ds.materialize()  # the windows' token ids only: small; frees every CPU for the model actors
        actors, gpus, threads = self.model_workers()
        ds = self.map_with_actors(ds, ModelActor, {"job": job, "threads": threads}, actors=actors, gpus=gpus,
                                  batch_size=STATE_ROWS_PER_BATCH)
        final = Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix="embedlens-states-")) / "states"
        with atomic_folder(final) as tmp, worker_errors("compute hidden states"):
            ds.write_parquet(str(tmp))
        table = pq.read_table(str(final))
        if out_dir is None:
            shutil.rmtree(final.parent, ignore_errors=True)
        return table_to_states(table)

    def map_with_actors(self, ds: Any, actor_cls: type, kwargs: dict[str, Any], *, actors: int, gpus: float = 0.0,
                        batch_size: int = STATE_ROWS_PER_BATCH) -> Any:
        """``ds.map_batches`` through a pool of ``actors`` instances of ``actor_cls`` (restarted when one dies)."""
        # Ray Data's defaults restart a dead actor and retry its tasks (max_restarts / max_task_retries = -1);
        # an actor that cannot even start (no model files) fails the run after a few tries.
        return ds.map_batches(actor_cls, fn_constructor_kwargs=kwargs, batch_format="numpy", batch_size=batch_size,
                              compute=self.ray.data.ActorPoolStrategy(size=actors), num_cpus=1, num_gpus=gpus or None)

    def tasks(self, n_inputs: int | None = None) -> Any:
        """CPU tasks, at most ``workers`` at once (Ray Data retries a task whose worker died)."""
        return self.ray.data.TaskPoolStrategy(size=min(self.cpu_workers(), n_inputs or self.n_read_tasks))


@contextlib.contextmanager
def worker_errors(what: str) -> Iterator[None]:
    """Turn a failure inside a Ray worker into one line (an EmbedlensError raised there keeps its message)."""
    try:
        yield
    except EmbedlensError:
        raise
    except Exception as exc:
        cause: BaseException | None = exc
        while cause is not None and not isinstance(cause, EmbedlensError):
            cause = getattr(cause, "cause", None) or cause.__cause__
        if cause is None:
            text = str(exc).strip().splitlines()
            cause_text = f"{type(exc).__name__}: {text[-1] if text else ''}"
        else:
            cause_text = str(cause)
        raise EmbedlensError(f"a Ray worker could not {what}: {cause_text}") from None


class atomic_folder:  # noqa: N801 - used as a context manager, like open()
    """A temporary sibling folder, renamed to ``final`` only when the block finishes without error."""

    def __init__(self, final: Path) -> None:
        self.final = Path(final)

    def __enter__(self) -> Path:
        self.final.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.final.parent / f".{self.final.name}.tmp-{uuid.uuid4().hex[:8]}"
        return self.tmp

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        old = None
        if self.final.exists():
            old = self.final.parent / f".{self.final.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(self.final, old)
        os.replace(self.tmp, self.final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def table_to_states(table: Any) -> dict[str, Any]:
    """The columns of the states shards as numpy, sorted by ``i`` (the window's index); ``workers``: what each
    model actor loaded (device, dtype, blocks), one record per worker."""
    order = np.argsort(table.column("i").to_numpy(), kind="stable")
    table = table.take(order)
    states = table.column("states")
    flat = np.asarray(states.combine_chunks().flatten().to_numpy(zero_copy_only=False), dtype=np.float32)
    out = {"i": table.column("i").to_numpy(), "states": flat.reshape(len(table), -1),
           "token_ids": [np.asarray(t, dtype=np.int64) for t in table.column("token_ids").to_pylist()],
           "trimmed": table.column("trimmed").to_numpy(zero_copy_only=False)}
    if "worker" in table.column_names:  # what each model actor loaded (device, dtype, blocks), once per worker
        import json

        seen = dict.fromkeys(str(w) for w in table.column("worker").to_pylist() if w is not None)
        out["workers"] = [json.loads(w) for w in seen]
    return out
