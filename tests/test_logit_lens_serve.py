"""The explorer's "layers" panel: the logit-lens API and the page, in headless Chromium."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")

from starlette.testclient import TestClient  # noqa: E402

from embedlens.logitlens import logit_lens  # noqa: E402
from embedlens.logitlens.compute import context_limit  # noqa: E402
from embedlens.serve.explorer import LOGIT_LENS_MAX_TOKENS, LOGIT_LENS_TOP_K  # noqa: E402

BASE = "http://127.0.0.1"
PROMPT = 'The capital <script>alert(1)</script> of "quoted" it\'s &amp; a&b <br> is'


@pytest.fixture(scope="module")
def gpt2(module_cache, tiny_gpt2_dir):
    import embedlens

    return embedlens.load(str(tiny_gpt2_dir))


@pytest.fixture(scope="module")
def client(gpt2, module_cache, tiny_bert_dir):
    import embedlens
    from embedlens.serve import create_app

    bert = embedlens.load(str(tiny_bert_dir))
    with TestClient(create_app([gpt2, bert]), base_url=BASE, raise_server_exceptions=False) as c:
        yield c


def test_api_logit_lens_is_the_library_result(client, gpt2):
    body = client.get("/api/logit_lens", params={"space": 0, "text": PROMPT}).json()
    r = logit_lens(gpt2, PROMPT)
    assert body["layers"] == r.layers and body["display"] == r.display and body["tokens"] == r.token_ids.tolist()
    assert body["top_ids"] == r.top_ids.tolist() and body["top_display"] == r.top_display.tolist()
    assert body["target_rank"][0][-1] is None and body["target_rank"][0][0] == int(r.target_rank[0, 0])
    np.testing.assert_allclose(body["top_probs"], r.top_probs, atol=1e-5)
    # the same JSON as the library's result (its file on disk), timings aside
    cap = min(LOGIT_LENS_MAX_TOKENS, context_limit(gpt2) or LOGIT_LENS_MAX_TOKENS)  # the explorer's cap on a prompt
    expected = json.loads(json.dumps(logit_lens(gpt2, PROMPT, top_k=LOGIT_LENS_TOP_K, max_tokens=cap).to_dict()))
    for d in (body, expected):
        d.pop("timings")
    assert body == expected


def test_api_layer_nearest_is_the_cosine_top_k_of_the_state(client, gpt2):
    from embedlens.neighbors.exact import topk_cosine

    body = client.get("/api/layer_nearest", params={"space": 0, "text": PROMPT, "layer": 1, "position": 3, "k": 7}).json()
    r = logit_lens(gpt2, PROMPT, keep_states=True)
    sp = gpt2.space
    nb = topk_cosine(sp.vectors, r.states[1, 3][None, :], 7, norms=sp.norms)
    assert body["rows"] == nb.indices[0].tolist()
    assert [n["display"] for n in body["neighbors"]] == [sp.display[i] for i in nb.indices[0]]
    assert [t["id"] for t in body["top"]] == r.top_ids[1, 3].tolist()


@pytest.mark.parametrize("path, params, status, message", [
    ("/api/logit_lens", {"space": 1, "text": "hello"}, 400, "causal language model"),
    ("/api/logit_lens", {"space": 0}, 400, "'text' is required"),
    ("/api/logit_lens", {"space": 0, "text": "a", "top_k": 0}, 400, "between 1 and 20"),
    ("/api/layer_nearest", {"space": 0, "text": "a b", "layer": 9}, 400, "between 0 and 2"),
    ("/api/layer_nearest", {"space": 0, "text": "a b", "position": 50}, 400, "position must be"),
    ("/api/logit_lens", {"space": 5, "text": "a"}, 404, "unknown space"),
])
def test_api_bad_requests(client, path, params, status, message):
    r = client.get(path, params=params)
    assert r.status_code == status and message in r.json()["error"], r.text


def test_api_long_prompt_is_truncated_with_a_note(client):
    body = client.get("/api/logit_lens", params={"space": 0, "text": "word " * 300}).json()
    assert len(body["display"]) == 64 and "kept the first 64" in body["notes"][0]  # the tiny model's context


@pytest.mark.browser
@pytest.mark.slow
def test_layers_panel_in_chromium(gpt2, offline_page):
    from urllib.parse import quote

    from embedlens.serve import ServerThread, create_app

    with ServerThread(create_app([gpt2])) as url:
        page, seen = offline_page(f"{url}#prompt={quote(PROMPT)}")
        page.wait_for_selector("body[data-ready='1']", timeout=60_000)
        page.wait_for_selector("#layers-btn:not([hidden])", timeout=30_000)
        page.click("#layers-btn")
        page.wait_for_function("() => Number(document.getElementById('layers-plot').dataset.layers) === 3",
                               timeout=30_000)
        ticks = page.evaluate("() => Array.from(document.querySelectorAll('#layers-plot .xtick text'), e => e.textContent)")
        for token in ("<script>", '"quoted"', "it's", "&amp;", "a&b", "<br>"):
            assert token in ticks, (token, ticks)
        j = logit_lens(gpt2, PROMPT).display.index("<script>")
        page.eval_on_selector("#layers-plot", "e => e.scrollIntoView()")
        pos = page.evaluate(
            f"""() => {{ const g = document.getElementById('layers-plot'), L = g._fullLayout;
            const r = g.getBoundingClientRect();
            return [r.left + L._size.l + L.xaxis.l2p({j}), r.top + L._size.t + L.yaxis.l2p(1)]; }}""")
        page.mouse.move(1, 1)
        page.mouse.move(pos[0], pos[1])
        page.wait_for_function("() => document.querySelector('#layers-plot .hoverlayer').textContent.includes('position')")
        shown = page.evaluate("() => document.querySelector('#layers-plot .hoverlayer').textContent")
        assert f"layer 1 · position {j}: <script>" in shown, shown
        page.mouse.click(pos[0], pos[1])
        page.wait_for_selector("#layers-cell table.layer-neighbors tr[data-id]", timeout=30_000)
        head = page.text_content("#layers-cell .selected-token")
        assert head.endswith("<script>") and f"position {j}" in head
        assert page.eval_on_selector_all("#layers-cell table tr[data-id]", "rs => rs.length") == 20
        assert seen.dialogs == [] and seen.errors == []
        assert all(u.startswith(url) or u.startswith(("data:", "blob:")) for u in seen.requests), seen.requests
