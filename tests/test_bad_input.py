"""Bad input, tried systematically: property-based tests (``hypothesis``) of every place a user types.

The query grammar (words, ``id:N``, ``tok:RAW``, regular expressions), layer and position lists, the
grid's options and every ``/api/`` parameter of the explorer get arbitrary input. Each must give a
result or a one-line error (the CLI exits 2, the API answers a 4xx JSON ``{"error": ...}``), never a
traceback, an internal error or a 500, and nothing may be written to the cache while it does.

Runs are seeded (``derandomize=True``) and bounded (a fixed ``max_examples`` per property), so CI sees
the same inputs every time and the module stays short. ``pytest -s`` prints how many inputs each entry
point was given; ``EMBEDLENS_FUZZ_SCALE=20`` multiplies every count for a longer hunt.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("hypothesis")
pytest.importorskip("starlette")
pytest.importorskip("httpx")

from hypothesis import HealthCheck, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from embedlens.errors import EmbedlensError  # noqa: E402

# One worker runs the module: its tiny model, explorer and counts are built once.
pytestmark = pytest.mark.xdist_group("bad_input")

settings.register_profile("bad-input", derandomize=True, database=None, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                                 HealthCheck.data_too_large])
PROFILE = settings.get_profile("bad-input")
SCALE = float(os.environ.get("EMBEDLENS_FUZZ_SCALE", "1"))  # e.g. 20 for a long local hunt; CI runs 1


def examples(n: int) -> settings:
    """The module's profile with ``n`` examples per property (seeded: the same inputs on every run)."""
    return settings(PROFILE, max_examples=max(1, round(n * SCALE)))


TRIED: Counter[str] = Counter()  # inputs given to each entry point, printed at the end of the module
ACCEPTED: Counter[str] = Counter()  # of which were answered with a result
BASE = "http://127.0.0.1"


@pytest.fixture(scope="module", autouse=True)
def report_tried():
    yield
    print("\ninputs tried per entry point (answered with a result): "
          + ", ".join(f"{k} {v} ({ACCEPTED[k]})" for k, v in sorted(TRIED.items())))


def cache_listing(root: Path) -> list[tuple[str, int, int]]:
    """Every file under the cache folder with its size and modification time."""
    return sorted((str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns)
                  for p in root.rglob("*") if p.is_file())


# -- strategies -------------------------------------------------------------------------------------------

# Text a user may type: any Unicode (surrogates aside, as a terminal or a URL cannot carry them), with the
# characters that break parsers well represented.
ANY_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
TRICKY = st.sampled_from(["", " ", ",", ",,", "-", "--1", "+1", "1_0", "0x10", "1e3", "１２", "٣", "all", "ALL",
                          " last ", "none", "-0", "nan", "inf", "1,", ",1", "1,,2", "99999999999999999999",
                          "-99999999999999999999", "\x00", "\n", "\t1", "ß", "İ", "🙂", "<script>", "&amp;",
                          "tok:", "id:", "id:-1", "id: 3", "id:3.0", "id:1e2", "tok:tok:", "ĠĠ", "▁"])
SMALL_INT = st.integers(-40, 40)
BIG_INT = st.integers(-(2**70), 2**70)
NUMBER_TEXT = st.one_of(SMALL_INT, BIG_INT).map(str)
LIST_TEXT = st.lists(st.one_of(NUMBER_TEXT, TRICKY), max_size=5).map(",".join)
USER_TEXT = st.one_of(ANY_TEXT, TRICKY, NUMBER_TEXT, LIST_TEXT)


def query_strategy(labels: list[str], ids: list[int]) -> st.SearchStrategy[str]:
    """The query grammar: words, ``id:N``, ``tok:RAW``, real tokens and their near misses."""
    label = st.sampled_from(labels)
    valid = st.one_of(label, label.map(lambda s: "tok:" + s), st.sampled_from(ids).map(lambda i: f"id:{i}"),
                      st.lists(label, min_size=1, max_size=3).map(" ".join))
    return st.one_of(
        valid, valid,
        USER_TEXT,
        st.tuples(label, ANY_TEXT).map(lambda t: "tok:" + t[0] + t[1]),
        st.one_of(SMALL_INT, BIG_INT).map(lambda i: f"id:{i}"),
        USER_TEXT.map(lambda s: "id:" + s),
        USER_TEXT.map(lambda s: "tok:" + s),
    )


# -- shared set-up ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gpt2(module_cache, tiny_gpt2_dir):
    import embedlens

    return embedlens.load(str(tiny_gpt2_dir))


@pytest.fixture(scope="module")
def words():
    """A plain word space whose labels look like queries (``id:3``, ``tok:x``) and markup."""
    from embedlens.lens import SpaceLens
    from embedlens.spaces.space import EmbeddingSpace

    labels = ["king", "queen", "man", "woman", "id:3", "tok:x", "<script>", "&amp;", "a b", "zero", "List", "list"]
    vectors = np.random.default_rng(0).normal(size=(len(labels), 8)).astype(np.float32)
    vectors[labels.index("zero")] = 0.0
    return SpaceLens(EmbeddingSpace.from_arrays(vectors, labels, name="words"))


def one_line_error(err: str) -> bool:
    lines = [line for line in err.splitlines() if line.startswith("embedlens: error:")]
    return len(lines) == 1 and "Traceback" not in err and "internal error" not in err


@contextlib.contextmanager
def no_cache_writes(root: Path):
    before = cache_listing(root)
    yield
    after = cache_listing(root)
    assert after == before, f"the cache changed: {sorted(set(after) ^ set(before))[:5]}"


def test_the_cache_check_sees_a_write_and_a_touch(tmp_path):
    (tmp_path / "entry").mkdir()
    (tmp_path / "entry" / "a.json").write_text("{}")
    with pytest.raises(AssertionError, match="the cache changed"), no_cache_writes(tmp_path):
        (tmp_path / "entry" / "b.json").write_text("{}")
    with pytest.raises(AssertionError, match="the cache changed"), no_cache_writes(tmp_path):
        os.utime(tmp_path / "entry" / "a.json", ns=(0, 0))


def run_main(*argv: str) -> tuple[int, str, str]:
    """``embedlens.cli.main(argv)`` with its stdout and stderr captured."""
    from embedlens.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def mostly(valid: st.SearchStrategy, junk: st.SearchStrategy) -> st.SearchStrategy:
    """Valid values three times in four: a command refuses at its first bad option, so the rest need good ones."""
    return st.one_of(valid, valid, valid, junk)


def check_cli(entry: str, code: int, err: str) -> None:
    TRIED[entry] += 1
    ACCEPTED[entry] += code == 0
    assert code in (0, 2), f"exit {code}: {err[-400:]}"
    if code == 2:
        assert one_line_error(err), err[-400:]
    assert "Traceback" not in err


# -- the library's parsers ---------------------------------------------------------------------------------

INDEX_SPEC = st.one_of(USER_TEXT, SMALL_INT, BIG_INT, st.booleans(), st.none(), st.floats(allow_nan=True),
                       st.lists(st.one_of(SMALL_INT, BIG_INT), max_size=5),
                       st.lists(st.one_of(SMALL_INT, USER_TEXT, st.floats(), st.none()), max_size=4),
                       st.tuples(SMALL_INT, SMALL_INT), st.just(np.int64(-1)), st.just(np.arange(3)))


def expected_indices(spec, n: int, keywords: dict[str, list[int]]) -> list[int] | None:
    """An independent reading of an index list: the indices, or None where it must be refused."""
    if isinstance(spec, str):
        key = spec.strip().lower()
        if key in keywords:
            return keywords[key]
        parts = [p.strip() for p in spec.split(",") if p.strip()]
        if not parts or not all(re.fullmatch(r"[+-]?[0-9]+", p, re.ASCII) for p in parts):
            return None
        values = [int(p) for p in parts]
    elif isinstance(spec, bool) or spec is None or isinstance(spec, float):
        return None
    elif isinstance(spec, int | np.integer):
        values = [int(spec)]
    else:
        values = list(spec)
        if not values or not all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in values):
            return None
        values = [int(v) for v in values]
    if not all(-n <= v < n for v in values):
        return None
    return list(dict.fromkeys(v % n for v in values))


@examples(400)
@given(spec=INDEX_SPEC, n=st.integers(1, 12))
@example(spec=None, n=1).via("refused with a TypeError before")
@example(spec=1.5, n=3).via("refused with a TypeError before")
@example(spec="1_0", n=12).via("read as layer 10 before")
@example(spec="1 2", n=12).via("read as layer 12 before")
@example(spec="１", n=3).via("read as layer 1 before")
def test_layer_lists_give_indices_or_one_line_error(spec, n):
    from embedlens.models.running import parse_layers

    check_indices("parse_layers", lambda: parse_layers(spec, n), spec,
                  expected_indices(spec, n + 1, {"all": list(range(n + 1))}))


@examples(300)
@given(spec=INDEX_SPEC, n=st.integers(1, 12))
def test_position_lists_give_indices_or_one_line_error(spec, n):
    from embedlens.logitlens.compute import parse_positions

    want = list(range(n)) if spec is None else expected_indices(spec, n, {"all": list(range(n)), "last": [n - 1]})
    check_indices("parse_positions", lambda: parse_positions(spec, n).tolist(), spec, want)


def check_indices(entry: str, parse, spec, want: list[int] | None) -> None:
    """``parse()`` gives ``want``, or refuses in one line exactly when ``want`` is None."""
    TRIED[entry] += 1
    try:
        got = parse()
    except EmbedlensError as exc:
        assert "\n" not in str(exc)
        assert want is None, f"{spec!r} refused: {exc}"
        return
    ACCEPTED[entry] += 1
    assert got == want


# -- the query grammar -------------------------------------------------------------------------------------


def check_resolved(lens, query: str) -> None:
    """``lens.resolve(query)``: the right rows for ``tok:``/``id:`` of a real token, else rows or one line."""
    sp = lens.space
    try:
        rq = lens.resolve(query)
    except EmbedlensError as exc:
        assert "\n" not in str(exc)
        if "zero vector" in str(exc):  # the word space holds one on purpose
            return
        assert not (query.startswith("tok:") and query[4:] in sp.row_of_label), f"{query!r} refused: {exc}"
        if query.startswith("id:") and re.fullmatch(r"[0-9]+", query[3:], re.ASCII):
            assert int(query[3:]) not in sp.row_of_id, f"{query!r} refused: {exc}"
        return
    ACCEPTED[f"{type(lens).__name__}.resolve"] += 1
    assert rq.rows and all(0 <= r < len(sp) for r in rq.rows)
    assert rq.vector.shape == (sp.dim,) and np.isfinite(rq.vector).all()
    if query.startswith("tok:"):
        assert rq.rows == [sp.row_of_label[query[4:]]]
    elif query.startswith("id:"):
        assert rq.rows == [sp.row_of_id[int(query[3:])]]


@pytest.fixture(scope="module")
def gpt2_queries(gpt2):
    return query_strategy(list(gpt2.space.labels), gpt2.space.ids.tolist())


@examples(250)
@given(data=st.data())
def test_model_queries_resolve_or_refuse_in_one_line(gpt2, gpt2_queries, module_cache, data):
    query = data.draw(gpt2_queries)
    TRIED["ModelLens.resolve"] += 1
    with no_cache_writes(module_cache):
        check_resolved(gpt2, query)


@examples(150)
@given(data=st.data())
def test_word_space_queries_resolve_or_refuse_in_one_line(words, data):
    query = data.draw(query_strategy(list(words.space.labels), words.space.ids.tolist()))
    TRIED["SpaceLens.resolve"] += 1
    check_resolved(words, query)


@examples(120)
@given(data=st.data(), k=mostly(st.integers(1, 40), st.one_of(SMALL_INT, BIG_INT, st.floats(), st.none(),
                                                               st.booleans(), USER_TEXT)))
def test_nearest_gives_k_neighbours_or_one_line(gpt2, gpt2_queries, module_cache, data, k):
    query = data.draw(gpt2_queries)
    TRIED["ModelLens.nearest"] += 1
    with no_cache_writes(module_cache):
        try:
            result = gpt2.nearest(query, k)
        except EmbedlensError as exc:
            assert "\n" not in str(exc)
            return
    ACCEPTED["ModelLens.nearest"] += 1
    rq = gpt2.resolve(query)  # what it answered, it resolved
    n_other = len(gpt2.space) - (len(rq.rows) if len(rq.rows) > 1 else 1)
    assert isinstance(k, int) and not isinstance(k, bool) and k >= 1, f"k={k!r} was accepted"
    assert len(result.neighbors) == min(k, n_other)


@pytest.fixture(scope="module")
def cli_model(gpt2, tiny_gpt2_dir):
    """The tiny model's folder, already opened once (its cache entry exists)."""
    return str(tiny_gpt2_dir)


@examples(40)
@given(data=st.data(), k=mostly(st.integers(1, 30).map(str), st.one_of(SMALL_INT.map(str), USER_TEXT)),
       space=mostly(st.sampled_from(["input", "output"]),
                    st.one_of(st.sampled_from(["", "Input", "tfidf:", "word2vec:", "path:", "path:missing-dir",
                                               "missing.npy", "missing.safetensors", "tfidf:missing-dir"]), TRICKY)))
def test_cli_neighbors_exits_0_or_2(cli_model, gpt2_queries, module_cache, data, k, space):
    query = data.draw(gpt2_queries)
    with no_cache_writes(module_cache):
        model = ["--model", cli_model] if space in ("input", "output") else []  # --model names a model's space
        code, out, err = run_main("neighbors", query, *model, "-k", k, "--space", space, "--json")
    check_cli("cli neighbors", code, err)
    if code == 0:
        assert len(json.loads(out)["neighbors"]) >= 1


@examples(25)
@given(data=st.data(), command=st.sampled_from(["variants", "tokens"]))
def test_cli_variants_and_tokens_exit_0_or_2(cli_model, gpt2_queries, module_cache, data, command):
    query = data.draw(gpt2_queries)
    with no_cache_writes(module_cache):
        code, out, err = run_main(command, query, "--model", cli_model, "--json")
    check_cli(f"cli {command}", code, err)


# -- layer and position lists, grid options, through the CLI -------------------------------------------------

def options(valid: dict[str, st.SearchStrategy], junk: dict[str, st.SearchStrategy]) -> st.SearchStrategy:
    """Command options: each drawn valid, except up to two drawn from ``junk`` (a command refuses at its first
    bad option, so the others must be good for the later checks to be reached)."""
    @st.composite
    def build(draw):
        n_bad = draw(st.sampled_from((0, 0, 1, 1, 2)))
        bad = set(draw(st.permutations(sorted(junk)))[:n_bad])
        return {name: draw(junk[name] if name in bad else strategy) for name, strategy in valid.items()}

    return build()


LAYERS = st.one_of(st.sampled_from(["all", "-1", "0", "2", "0,2", "2, 0,1", "-3", "+1"]),
                   st.lists(st.integers(-3, 2).map(str), min_size=1, max_size=3).map(",".join))
POSITIONS = st.one_of(st.sampled_from(["all", "last", "0", "-1", "0,-1", " LAST "]),
                      st.lists(st.integers(-3, 3).map(str), min_size=1, max_size=3).map(",".join))
BAD_INDICES = st.one_of(USER_TEXT, st.sampled_from(["3", "-4", "1,,9", "1 2", "1_0", "１", "0x1", "2.0", "last,0"]))
LENS_OPTIONS = options(
    {"--layers": LAYERS, "--positions": POSITIONS, "--top-k": st.integers(1, 8).map(str),
     "--max-tokens": st.sampled_from([None, "1", "3", "40"]), "--color": st.sampled_from(["prob", "rank"])},
    {"--layers": BAD_INDICES, "--positions": BAD_INDICES, "--top-k": st.one_of(st.sampled_from(["0", "-1", "101"]), TRICKY),
     "--max-tokens": st.one_of(st.sampled_from(["0", "-1"]), TRICKY), "--color": TRICKY})


def as_argv(opts: dict[str, str | None]) -> list[str]:
    return [part for name, value in opts.items() if value is not None for part in (name, value)]


@examples(16)
@given(text=st.one_of(st.sampled_from(["The capital of France", "list <script> &amp;", "a"]), ANY_TEXT),
       opts=LENS_OPTIONS)
def test_cli_logit_lens_layers_and_positions_exit_0_or_2(cli_model, module_cache, tmp_path_factory, text, opts):
    out_dir = tmp_path_factory.mktemp("lens")
    argv = ["logit-lens", text, "--model", cli_model, *as_argv(opts), "--out", str(out_dir), "--no-html", "--no-png",
            "--json"]
    with no_cache_writes(module_cache):
        code, out, err = run_main(*argv)
    check_cli("cli logit-lens", code, err)
    if code == 0:
        got = json.loads(out)
        assert got["layers"] and all(0 <= v <= 2 for v in got["layers"])


@examples(10)
@given(text=st.one_of(st.sampled_from(["The capital of France", "list <script> &amp;"]), ANY_TEXT),
       opts=options({"--layer": LAYERS, "--dims": st.sampled_from(["2", "3"]), "--focus": st.sampled_from([None, "the"])},
                    {"--layer": BAD_INDICES, "--dims": TRICKY, "--focus": USER_TEXT}))
def test_cli_context_layers_exit_0_or_2(cli_model, module_cache, tmp_path_factory, text, opts):
    out_dir = tmp_path_factory.mktemp("context")
    argv = ["context", text, "The quick brown fox", "--model", cli_model, *as_argv(opts), "--method", "pca",
            "--out", str(out_dir), "--no-html", "--no-png", "--json"]
    with no_cache_writes(module_cache):
        code, out, err = run_main(*argv)
    check_cli("cli context", code, err)
    if code == 0:
        assert json.loads(out)["method"] == "pca"


FLOAT = st.one_of(st.floats(-3, 3).map(repr), st.sampled_from(["0.5", "1", "-1", "2e-3", "+1.5"]))
BAD_FLOAT = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr),
                      st.sampled_from(["0", "1e-300", "1e300", "1e308", "nan", "inf", "-inf", "1e400"]), TRICKY)
PLANE = st.lists(st.sampled_from(["the", "list", "id:5", "tok:<script>", " of", "The capital"]), min_size=3,
                 max_size=3).map(",".join)
BAD_PLANE = st.lists(st.one_of(st.sampled_from(["", "zz9", "id:999", "tok:", "the", "id:-1"]), TRICKY),
                     min_size=1, max_size=4).map(",".join)
GRID_OPTIONS = options(
    {"--grid-size": st.integers(1, 5).map(str), "--spacing": FLOAT.filter(lambda v: float(v) > 0),
     "--layer-idx": st.one_of(st.none(), LAYERS.filter(lambda v: v != "all")),
     "--embedding-method": st.sampled_from(["direct", "replicated", "random_projection", "pca", "tokens", "pca_basis"]),
     "--plane-tokens": st.one_of(st.none(), PLANE), "--center": st.tuples(FLOAT, FLOAT).map(",".join),
     "--batch-size": st.integers(1, 40).map(str), "--cell-labels": st.sampled_from([None, "cells", "regions", "both"]),
     "--seed": st.sampled_from(["0", "7"])},
    {"--grid-size": st.one_of(st.sampled_from(["0", "-3", "100000000", "99999999999999999999"]), TRICKY),
     "--spacing": BAD_FLOAT, "--layer-idx": BAD_INDICES, "--embedding-method": TRICKY, "--plane-tokens": BAD_PLANE,
     "--center": st.one_of(st.tuples(BAD_FLOAT, FLOAT).map(",".join), TRICKY), "--batch-size": TRICKY,
     "--cell-labels": TRICKY, "--seed": st.sampled_from(["-1", "1e3", "99999999999999999999999"])})


@pytest.fixture(scope="module")
def no_grid_png():
    """The grid PNG (a 3,000-pixel matplotlib figure, ~1 s) is replaced by an empty file: what is tried here is
    the options, and tests/test_grid.py draws real PNGs."""
    from embedlens.render import grid as render_grid

    mp = pytest.MonkeyPatch()
    mp.setattr(render_grid, "write_grid_png", lambda gm, path, **kw: Path(path).write_bytes(b""))
    yield
    mp.undo()


@examples(24)
@given(opts=GRID_OPTIONS)
@example(opts={"--grid-size": "1", "--spacing": "1.0", "--embedding-method": "direct", "--center": "1e300,0.0"}
         ).via("a grid of NaN probabilities before")
@example(opts={"--grid-size": "2", "--spacing": "1e300", "--embedding-method": "replicated"}
         ).via("a grid of NaN probabilities before")
def test_cli_grid_options_exit_0_or_2(cli_model, module_cache, tmp_path_factory, no_grid_png, opts):
    out_dir = tmp_path_factory.mktemp("grid")
    argv = ["grid", "--model", cli_model, *as_argv(opts), "--output-dir", str(out_dir), "--no-html", "--json"]
    with no_cache_writes(module_cache):
        code, out, err = run_main(*argv)
    check_cli("cli grid", code, err)
    if code == 0:
        got = json.loads(out)
        assert got["summary"] and all(s["cells"] == int(opts["--grid-size"]) ** 2 for s in got["summary"])
        # an accepted grid is a real one: every cell a probability (no NaN from a non-finite centre or extent)
        assert all(0 <= row["mean_prob"] <= 1 for s in got["summary"] for row in s["most_common"]), got["summary"]


# -- every /api/ parameter of the explorer ----------------------------------------------------------------


@pytest.fixture(scope="module")
def api(gpt2, words, module_cache):
    """The explorer on the tiny model (space 0) and the word space (space 1), through Starlette's test client.

    The maps the page asks first (PCA of each space) and the model's k-NN graph are computed for real
    beforehand; then background jobs are recorded instead of run, except grid maps, which run at once in the
    request (a grid job's failure must be a user's one too). So every request is answered from what the
    request itself does, and the cache folder must not change while they are.
    """
    from starlette.testclient import TestClient

    from embedlens.serve import create_app
    from embedlens.serve.jobs import Job

    app = create_app([gpt2, words], corpus="lee", regex_seconds=0.5)
    explorer = app.state.explorer
    for panel in explorer.panels:
        explorer.projection(panel, "pca", 2)
    explorer.space_graph(explorer.panels[0])
    deadline = time.monotonic() + 60
    while any(j["state"] in ("queued", "running") for j in explorer.jobs.all()):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    def record(manager):
        def submit(key, kind, label, fn, *, retry_failed=True, priority=0):
            job = manager.get(key)
            if job is not None:
                return job
            job = Job(key, kind, label, priority=priority)
            manager._jobs[key] = job
            if kind == "grid":
                try:
                    job.result, job.state = fn(), "ready"
                except EmbedlensError as exc:
                    job.error, job.state = str(exc), "error"
            return job

        return submit

    explorer.jobs.submit = record(explorer.jobs)
    explorer.index_jobs.submit = record(explorer.index_jobs)
    with TestClient(app, base_url=BASE, raise_server_exceptions=True) as client:
        yield client


def check_answer(response, root: Path, before: list) -> None:
    """A result (2xx) or a one-line JSON refusal (4xx); never a 5xx; the cache unchanged."""
    status = response.status_code
    assert 200 <= status < 500, f"{status}: {response.text[:300]}"
    if status >= 400:
        body = response.json()
        assert set(body) == {"error"} and isinstance(body["error"], str) and body["error"]
        assert "\n" not in body["error"] and "internal error" not in body["error"], body["error"]
    elif response.headers["content-type"].startswith("application/json"):
        body = response.json()
        job = body.get("job") if isinstance(body, dict) else None
        if isinstance(job, dict) and job.get("state") == "error":
            assert "internal error" not in (job.get("error") or ""), job["error"]
    assert cache_listing(root) == before, "the cache changed"


SPACE = st.sampled_from(["0", "0", "1"])
BAD_SPACE = st.one_of(st.sampled_from(["2", "-1", "00", " 0", "0 ", "1.0", "١"]), TRICKY)
K = st.integers(1, 30).map(str)
BAD_INT = st.one_of(st.sampled_from(["0", "-1", "201", "1e2", "2.0", "+3", " 3", "3 ", "0x3", "٣", "9" * 13,
                                     "99999999999999999999"]), TRICKY)
METHOD, DIMS = st.sampled_from(["pca", "tsne", "umap"]), st.sampled_from(["2", "3"])
REGEX = st.one_of(st.sampled_from(["^l", "t$", "(a+)+$", "(x+x+)+y", "[", "(", "\\", "a{99999999999}", "(?i)LIST",
                                   "(?<=l)i", "\\Aa", "li|is", "^$", ".*", "\\n", "[^\\x00-\\x7f]", "(?P<n>a)(?P=n)",
                                   "\\p{Han}", "(?", "*", "a**", "\\1", "[[:alpha:]]", "(?x) l i"]),
                  st.text(st.sampled_from("ab()[]{}*+?|^$\\.:-<>&;'\"0123456789,"), max_size=12))


@pytest.fixture(scope="module")
def endpoints(gpt2):
    """Each GET endpoint's parameters: valid values, and the junk tried in up to two of them at a time."""
    labels = list(gpt2.space.labels)[:200] + ["king", "queen", "id:3", "tok:x"]
    query = query_strategy(labels, gpt2.space.ids.tolist())
    one_token = st.one_of(st.sampled_from(labels).map(lambda s: "tok:" + s),  # what an axis end must be
                          st.sampled_from(gpt2.space.ids.tolist()).map(lambda i: f"id:{i}"))
    map_method, map_dims = st.sampled_from(["pca", "pca", "tsne", "umap"]), st.sampled_from(["2", "2", "3"])
    text = st.one_of(st.sampled_from(["The capital of France", "list <script> &amp;", "a", " "]), ANY_TEXT)
    bad_text = st.sampled_from(["", "\x00", "a\x00b", "x" * 2001, "y" * 201])
    method_junk = st.one_of(st.sampled_from(["PCA", "axes", "tsne ", ""]), TRICKY)
    # these models have no tuned lens: "tuned" is refused in one line, as a path or junk is
    decoder, bad_decoder = st.sampled_from([None, "logit"]), st.one_of(st.sampled_from(["tuned", "/etc/passwd", "lens"]), TRICKY)
    table = {
        "info": ({}, {}), "jobs": ({}, {}), "compare": ({}, {}),
        "points": ({"space": SPACE}, {"space": BAD_SPACE}), "frequency": ({"space": SPACE}, {"space": BAD_SPACE}),
        "projection": ({"space": SPACE, "method": METHOD, "dims": DIMS},
                       {"space": BAD_SPACE, "method": method_junk, "dims": BAD_INT}),
        "projection/data": ({"space": SPACE, "method": map_method, "dims": map_dims},
                            {"space": BAD_SPACE, "method": method_junk, "dims": BAD_INT}),
        "search": ({"space": SPACE, "mode": st.sampled_from(["text", "regex"]), "q": st.one_of(query, REGEX),
                    "limit": st.one_of(st.none(), K)},
                   {"space": BAD_SPACE, "mode": method_junk, "q": bad_text, "limit": BAD_INT}),
        "neighbors": ({"space": SPACE, "q": query, "k": st.one_of(st.none(), K)},
                      {"space": BAD_SPACE, "q": bad_text, "k": BAD_INT}),
        "variants": ({"space": SPACE, "q": query}, {"space": SPACE, "q": bad_text}),
        "tokens": ({"space": SPACE, "text": text}, {"space": SPACE, "text": bad_text}),
        "trajectory": ({"space": SPACE, "text": text, "position": st.integers(0, 5).map(str), "method": map_method,
                        "dims": map_dims},
                       {"space": BAD_SPACE, "text": bad_text, "position": BAD_INT, "method": method_junk, "dims": BAD_INT}),
        "grid": ({"space": SPACE, "layer": st.integers(0, 2).map(str),
                  "plane": st.sampled_from(["random_projection", "direct", "replicated", "pca", "tokens"]),
                  "size": st.integers(4, 6).map(str), "spacing": st.sampled_from(["0.5", "1", "1e-3", "100"]),
                  "plane_tokens": st.one_of(st.none(), st.lists(query, min_size=3, max_size=3).map(",".join))},
                 {"space": BAD_SPACE, "layer": BAD_INT, "plane": method_junk, "size": BAD_INT,
                  "spacing": st.one_of(BAD_FLOAT, BAD_INT), "plane_tokens": BAD_PLANE}),
        "logit_lens": ({"space": SPACE, "text": text, "top_k": st.one_of(st.none(), st.integers(1, 20).map(str)),
                        "decoder": decoder},
                       {"space": BAD_SPACE, "text": bad_text, "top_k": BAD_INT, "decoder": bad_decoder}),
        "layer_nearest": ({"space": SPACE, "text": text, "layer": st.integers(0, 2).map(str),
                           "position": st.integers(0, 5).map(str), "k": K, "decoder": decoder},
                          {"space": BAD_SPACE, "text": bad_text, "layer": BAD_INT, "position": BAD_INT, "k": BAD_INT,
                           "decoder": bad_decoder}),
        "clusters": ({"space": SPACE, "n": st.one_of(st.just("auto"), st.integers(2, 12).map(str))},
                     {"space": BAD_SPACE, "n": BAD_INT}),
        "axes": ({"space": SPACE, "xa": one_token, "xb": one_token, "ya": st.none(), "yb": st.none(),
                  "dims": st.one_of(st.none(), DIMS)},
                 {"space": BAD_SPACE, "xa": st.one_of(query, bad_text), "xb": bad_text, "ya": st.one_of(query, bad_text),
                  "yb": query,
                  "dims": BAD_INT}),
        "faithfulness": ({"space": SPACE, "method": METHOD, "dims": DIMS},
                         {"space": BAD_SPACE, "method": method_junk, "dims": BAD_INT}),
        "true_neighbors": ({"space": SPACE, "row": st.integers(0, 11).map(str), "k": st.one_of(st.none(), K)},
                           {"space": BAD_SPACE, "row": BAD_INT, "k": BAD_INT}),
    }
    return {name: options(*spec) if spec[0] else st.just({}) for name, spec in table.items()}


def test_every_get_endpoint_is_fuzzed(endpoints):
    from embedlens.serve import app as app_module

    documented = set(re.findall(r"^  /api/([a-z_/]+)", app_module.__doc__, re.MULTILINE))
    assert documented == set(endpoints) == set(GET_ENDPOINTS)


GET_ENDPOINTS = ["info", "points", "frequency", "projection", "projection/data", "jobs", "search", "neighbors",
                 "variants", "tokens", "trajectory", "grid", "logit_lens", "layer_nearest", "clusters", "axes",
                 "faithfulness", "true_neighbors", "compare"]


@pytest.mark.parametrize("name", GET_ENDPOINTS)
@examples(18)
@given(data=st.data())
def test_get_endpoints_answer_or_refuse_in_one_line(api, endpoints, module_cache, name, data):
    params = {k: v for k, v in data.draw(endpoints[name]).items() if v is not None}
    extra = data.draw(st.dictionaries(st.sampled_from(["zz", "space", "q", "k", ""]), USER_TEXT, max_size=1))
    params = {**extra, **params}
    before = cache_listing(module_cache)
    response = api.get(f"/api/{name}", params=params)
    TRIED[f"GET /api/{name}"] += 1
    ACCEPTED[f"GET /api/{name}"] += response.status_code == 200
    check_answer(response, module_cache, before)


@examples(60)
@given(path=st.sampled_from(["search", "neighbors", "grid", "axes", "true_neighbors", "layer_nearest"]),
       raw=st.lists(st.tuples(st.sampled_from(["space", "q", "k", "row", "text", "layer", "size", "xa", "xb", "mode"]),
                              st.one_of(USER_TEXT, st.sampled_from(["%FF", "%00", "%C3%28", "%", "%%", "+", "%2B"]))),
                    max_size=5))
def test_raw_query_strings_answer_or_refuse_in_one_line(api, module_cache, path, raw):
    from urllib.parse import quote

    query = "&".join(f"{k}={v if v.startswith('%') or v == '+' else quote(v)}" for k, v in raw)
    before = cache_listing(module_cache)
    response = api.get(f"/api/{path}?{query}")
    TRIED["GET raw query strings"] += 1
    ACCEPTED["GET raw query strings"] += response.status_code == 200
    check_answer(response, module_cache, before)


JSON = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False,
                                                                                                 allow_infinity=False),
                              ANY_TEXT),
                    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(ANY_TEXT, inner, max_size=3)),
                    max_leaves=8)
ROWS = st.lists(st.integers(0, 11), min_size=1, max_size=12)
BAD_ROWS = st.one_of(st.just([]), st.lists(st.one_of(st.integers(-3, 400), st.booleans(), st.floats(0, 3), ANY_TEXT,
                                                     st.integers(2**63, 2**70)), min_size=1, max_size=4), JSON)
POST_BODIES = {
    "centroid": options({"space": st.sampled_from([0, 1]), "rows": ROWS, "k": st.integers(1, 30),
                         "exclude_selected": st.booleans()},
                        {"space": st.one_of(st.sampled_from([2, -1, "0", True, 0.0, None]), JSON), "rows": BAD_ROWS,
                         "k": st.one_of(st.sampled_from([0, -1, 201, 3.0, True, "3", None, 2**70]), JSON),
                         "exclude_selected": st.one_of(st.sampled_from([0, 1, "true", None]), JSON)}),
    "selection_graph": options({"space": st.sampled_from([0, 1]), "rows": ROWS, "k": st.integers(1, 10),
                                "mutual": st.booleans()},
                               {"space": st.one_of(st.sampled_from([2, -1, "1", False]), JSON), "rows": BAD_ROWS,
                                "k": st.one_of(st.sampled_from([0, 51, 2.5, "x", None]), JSON),
                                "mutual": st.one_of(st.sampled_from([0, "no", None]), JSON)}),
}


@examples(150)
@given(name=st.sampled_from(sorted(POST_BODIES)), data=st.data(),
       shape=st.sampled_from(["fields", "fields", "fields", "extra field", "any json", "raw bytes", "content type"]))
def test_post_endpoints_answer_or_refuse_in_one_line(api, module_cache, name, data, shape):
    headers = {"content-type": "application/json"}
    body = {k: v for k, v in data.draw(POST_BODIES[name]).items() if v is not None}
    content = json.dumps(body).encode()
    if shape == "extra field":
        content = json.dumps({**body, data.draw(ANY_TEXT): data.draw(JSON)}).encode()
    elif shape == "any json":
        content = json.dumps(data.draw(JSON)).encode()
    elif shape == "raw bytes":
        content = data.draw(st.one_of(st.binary(max_size=40), st.sampled_from(
            [b"", b"{", b"NaN", b'{"rows": [1], "rows": [2]}', b'{"rows": [NaN]}', b"[" * 5000 + b"]" * 5000,
             b'{"k": 1e999}', b"\xff\xfe{}", b'{"rows": [1e400]}'])))
    else:
        headers["content-type"] = data.draw(st.sampled_from(["text/plain", "", "application/json; charset=latin-1",
                                                              "APPLICATION/JSON", "multipart/form-data"]))
    before = cache_listing(module_cache)
    response = api.post(f"/api/{name}", content=content, headers=headers)
    TRIED[f"POST /api/{name}"] += 1
    ACCEPTED[f"POST /api/{name}"] += response.status_code == 200
    check_answer(response, module_cache, before)
