"""The Ray engine: the same frequencies and occurrence states as the local engine, a cluster started by the
test attached to and recorded, a dead worker survived, bad addresses and missing models refused in one line.

One local Ray (``ray.init(num_cpus=2)``) serves the module; every address stays on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from embedlens.corpus import open_corpus
from embedlens.errors import EmbedlensError

from .test_corpus_sources import DOCS, write_corpus

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ray")]  # one local Ray cluster at a time
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "token"}
# Ray's documented usage-stats opt-out: without it Ray Data starts one more actor (a worker process, seconds of
# imports on a busy machine) to collect usage records that a test run never sends anyway.
QUIET_ENV = {"RAY_USAGE_STATS_ENABLED": "0"}


@pytest.fixture(scope="module")
def ray_local():
    saved = {k: os.environ.get(k) for k in (*LOOPBACK_ENV, *QUIET_ENV, "RAY_ADDRESS")}
    os.environ.pop("RAY_ADDRESS", None)
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # read when ray is imported
    os.environ.update(QUIET_ENV)
    ray = pytest.importorskip("ray")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)  # never a `ray start` head
    yield ray
    ray.shutdown()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def mixed_corpus(folder, repeat=6):
    """Text, JSONL, JSONL.gz and Parquet files with many 'bank's, read in small shards (several per file)."""
    docs = [f"{i} {d}" for i in range(repeat) for d in DOCS]
    for fmt in ("txt", "jsonl", "jsonl.gz", "parquet"):
        write_corpus(folder / fmt.replace(".", "_"), fmt, docs)
    corpus = open_corpus(str(folder))
    corpus.shard_bytes = 700
    assert len(corpus.shards()) > 2 * len(corpus.files)
    return corpus


def test_ray_counts_equal_local_counts(ray_local, tiny_llama_dir, cache_dir, tmp_path):
    import embedlens
    from embedlens.corpus.frequencies import count_tokens
    from embedlens.engines import open_engine
    from embedlens.lens import SpaceLens
    from embedlens.spaces.space import EmbeddingSpace

    corpus = mixed_corpus(tmp_path / "c")
    lens = embedlens.load(str(tiny_llama_dir))
    local = count_tokens(lens, corpus, progress=False)
    ray = count_tokens(lens, corpus, engine=open_engine("ray", workers=2), progress=False)
    np.testing.assert_array_equal(ray.counts, local.counts)
    assert (ray.n_tokens, ray.n_outside, ray.n_bytes) == (local.n_tokens, local.n_outside, local.n_bytes)
    assert ray.engine["engine"] == "ray" and ray.engine["workers"] == 2 and ray.engine["resources"]["CPU"] == 2
    words = ["the", "bank", "river", "capital", "of"]
    space = SpaceLens(EmbeddingSpace.from_arrays(np.eye(5, 3, dtype=np.float32), words, name="toy"))
    np.testing.assert_array_equal(count_tokens(space, corpus, engine=open_engine("ray"), progress=False).counts,
                                  count_tokens(space, corpus, progress=False).counts)


def test_ray_occurrence_states_equal_local_states(ray_local, tiny_llama_dir, cache_dir, tmp_path):
    import embedlens
    from embedlens.contextual import occurrences
    from embedlens.engines import open_engine

    corpus = mixed_corpus(tmp_path / "c")
    lens = embedlens.load(str(tiny_llama_dir))
    kw = {"layers": "all", "max_occurrences": 30, "window": 40, "seed": 5, "batch_size": 8, "progress": False}
    local = occurrences(lens, corpus, "bank", **kw)
    out = tmp_path / "states"
    ray = occurrences(lens, corpus, "bank", engine=open_engine("ray"), states_dir=out, **kw)
    assert local.n_found == ray.n_found == 3 * 4 * 6 and len(local) == len(ray) == 30  # 3 per document
    assert ray.docs == local.docs and np.array_equal(ray.spans, local.spans)  # same seeded sample, same order
    assert ray.token_ids == local.token_ids and ray.snippets == local.snippets
    np.testing.assert_allclose(ray.vectors, local.vectors, rtol=1e-4, atol=1e-5)
    assert ray.engine["engine"] == "ray" and ray.engine["model_workers"] == 1
    shards = sorted(out.glob("*.parquet"))
    assert shards and not list(out.parent.glob(".states.tmp-*"))  # complete, renamed into place
    import pyarrow.parquet as pq

    assert pq.read_table(out).num_rows == 30


def test_cli_map_and_context_on_ray_record_the_engine(ray_local, tiny_llama_dir, cache_dir, run_cli, tmp_path):
    spec = write_corpus(tmp_path / "c", "jsonl", [f"{i} {d}" for i in range(5) for d in DOCS])
    res = run_cli("map", "-m", tiny_llama_dir, "--corpus", spec, "--engine", "ray", "--method", "pca", "--no-png",
                  "--out", tmp_path / "map")
    assert res.code == 0, res
    m = json.loads((tmp_path / "map" / "manifest.json").read_text())
    assert m["counting"]["engine"]["engine"] == "ray" and m["counting"]["engine"]["address"].startswith("127.0.0.1:")
    out = tmp_path / "ctx"
    res = run_cli("context", "-m", tiny_llama_dir, "--corpus", spec, "--focus", "bank", "--engine", "ray",
                  "--method", "pca", "--no-png", "--no-html", "--out", out)
    assert res.code == 0, res
    m = json.loads((out / "manifest.json").read_text())
    assert m["settings"]["engine"]["engine"] == "ray" and m["settings"]["states_dir"] == str(out / "states")
    assert list((out / "states").glob("*.parquet"))


def test_a_killed_worker_is_survived(ray_local, tmp_path):
    from embedlens.engines.ray_engine import RayEngine

    marker = tmp_path / "died-once"

    class DiesOnce:  # defined here so Ray ships it by value
        def __init__(self, marker: str) -> None:
            self.marker = marker

        def __call__(self, batch):
            if not os.path.exists(self.marker):
                Path(self.marker).write_text(str(os.getpid()))
                os._exit(1)  # the worker process dies mid-batch
            return {"id": batch["id"] * 2}

    with RayEngine() as eng:
        ds = eng.map_with_actors(ray_local.data.range(12, override_num_blocks=3), DiesOnce, {"marker": str(marker)},
                                 actors=1, batch_size=4)
        got = sorted(r["id"] for r in ds.take_all())
    assert marker.exists() and got == [2 * i for i in range(12)]


def test_workers_without_the_model_and_unreachable_clusters_fail_in_one_line(ray_local, tiny_llama_dir, cache_dir,
                                                                            run_cli, tmp_path):
    import dataclasses

    import embedlens
    from embedlens.contextual.occurrences import OccurrenceStatesJob
    from embedlens.engines.ray_engine import RayEngine

    lens = embedlens.load(str(tiny_llama_dir))
    job = OccurrenceStatesJob(lens, [1], batch_size=4, causal=True)
    job.source = dataclasses.replace(lens.source, path=tmp_path / "not-on-this-worker")
    rows = {"i": np.arange(2), "text": ["the bank", "a bank"], "ws": np.asarray([4, 2]), "we": np.asarray([8, 6])}
    with RayEngine() as eng, pytest.raises(EmbedlensError, match="a Ray worker could not compute hidden states"):
        eng.states(job, rows, out_dir=tmp_path / "states")
    assert not (tmp_path / "states").exists() and not list(tmp_path.glob(".states.tmp-*"))
    port = _free_port()
    res = run_cli("map", "-m", tiny_llama_dir, "--corpus", write_corpus(tmp_path / "c", "txt"), "--engine", "ray",
                  "--ray-address", f"127.0.0.1:{port}", "--out", tmp_path / "o")
    assert res.code == 2 and f"cannot reach the Ray cluster at 127.0.0.1:{port}" in res.err
    assert "Traceback" not in res.err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Its own head in its own session: it needs no module cluster, so it runs beside the "ray" group, not after it.
@pytest.mark.xdist_group("ray-head")
def test_attaching_to_a_head_started_by_the_test(tiny_llama_dir, cache_dir, tmp_path):
    pytest.importorskip("ray")
    port = _free_port()
    env = {**os.environ, **LOOPBACK_ENV, **QUIET_ENV}
    env.pop("RAY_ADDRESS", None)
    ray_bin = str(Path(sys.executable).parent / "ray")
    # Only the processes a one-node head needs: no autoscaler monitor and no log monitor (the driver does not
    # print workers' logs); no idle workers prestarted for the driver (its runtime_env, which carries the
    # cache and offline settings, gives its tasks workers of their own, so prestarted ones were never used);
    # and a SIGTERM that stops at once instead of draining the node for 30 s (Ray's documented setting).
    head_env = {**env, "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0", "RAY_enable_worker_prestart": "false",
                "RAY_prestart_worker_first_driver": "false"}
    head = subprocess.Popen([ray_bin, "start", "--head", "--block", f"--port={port}", "--num-cpus=2",
                             "--include-dashboard=false", "--disable-usage-stats", "--no-monitor",
                             "--include-log-monitor=false"],
                            env=head_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        out = tmp_path / "map"
        spec = write_corpus(tmp_path / "c", "txt")
        res = subprocess.run([str(Path(sys.executable).parent / "embedlens"), "map", "-m", str(tiny_llama_dir),
                              "--corpus", spec, "--engine", "ray", "--method", "pca", "--no-png", "--out", str(out)],
                             env={**env, "RAY_ADDRESS": f"127.0.0.1:{port}"}, capture_output=True, text=True,
                             timeout=180)
        assert res.returncode == 0, res.stderr[-3000:]
        engine = json.loads((out / "manifest.json").read_text())["counting"]["engine"]
        assert engine["address"] == f"127.0.0.1:{port}" and engine["mode"] == "attached"
        assert engine["nodes"] == 1 and engine["resources"]["CPU"] == 2
    finally:
        os.killpg(head.pid, signal.SIGTERM)  # the head and the processes it started (its own session), nothing else
        try:
            head.wait(timeout=8)
        except subprocess.TimeoutExpired:  # a stop that hangs: the test needs no more of it
            pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGKILL)
        head.wait(timeout=10)
        current = Path("/tmp/ray/ray_current_cluster")  # what `ray start` left pointing at the head it started
        if current.exists() and current.read_text().strip() == f"127.0.0.1:{port}":
            current.unlink()


def test_ray_workers_run_the_device_dtype_and_blocks_asked_for(ray_local, tiny_llama_dir, cache_dir, run_cli,
                                                              tmp_path):
    from safetensors.numpy import load_file

    spec = write_corpus(tmp_path / "c", "jsonl", [f"{i} {d}" for i in range(4) for d in DOCS])
    got = {}
    for engine, dtype in (("ray", "bfloat16"), ("local", "bfloat16"), ("local", "float32")):
        out = tmp_path / f"{engine}-{dtype}"
        res = run_cli("context", "-m", tiny_llama_dir, "--corpus", spec, "--focus", "bank", "--engine", engine,
                      "--layer", "1", "--device", "cpu", "--dtype", dtype, "--method", "pca", "--no-png", "--no-html",
                      "--out", out)
        assert res.code == 0, res
        engine_info = json.loads((out / "manifest.json").read_text())["settings"]["engine"]
        got[engine, dtype] = load_file(str(out / "states.safetensors"))["occurrences"], engine_info["loaded"]
    ray_states, ray_loaded = got["ray", "bfloat16"]
    local_states, local_loaded = got["local", "bfloat16"]
    # every model actor loaded what was asked: the CPU, bfloat16, and only block 0 (hidden state 1), no head
    assert ray_loaded and all(w["device"] == "cpu" and w["dtype"] == "bfloat16" and w["blocks"] == [0, 1]
                              and w["head"] is False and w["worker"] != "local" for w in ray_loaded), ray_loaded
    assert local_loaded[0]["dtype"] == "bfloat16" and local_loaded[0]["blocks"] == [0, 1]
    assert len(ray_states) <= 64  # one forward batch on both engines, so the same padding: equal to the bit
    np.testing.assert_array_equal(ray_states, local_states)  # same weights, same precision, same windows
    float32_gap = np.abs(got["local", "float32"][0] - local_states).max()
    assert float32_gap > 1e-4  # bfloat16 really ran: its states are not the float32 ones
