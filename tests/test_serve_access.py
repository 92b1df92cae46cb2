"""The explorer off loopback: a token in the printed URL, a cookie after the first visit, 403 without it."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")

from starlette.testclient import TestClient  # noqa: E402

from embedlens.errors import EmbedlensError  # noqa: E402
from embedlens.serve.access import COOKIE, access_token  # noqa: E402

TOKEN = "s3cret-token-for-the-tests-0123"
BASE = "http://127.0.0.1"  # the Host header the explorer accepts on loopback


@pytest.fixture(scope="module")
def gpt2(module_cache, tiny_gpt2_dir):
    import embedlens

    return embedlens.load(str(tiny_gpt2_dir))


@pytest.fixture(scope="module")
def app(gpt2):
    from embedlens.serve import create_app

    return create_app([gpt2], token=TOKEN)


def test_a_token_is_made_off_loopback_only_and_a_weak_one_is_refused():
    assert access_token(True, None) is None  # loopback stays as it was
    a, b = access_token(False, None), access_token(False, None)
    assert a != b and len(a) >= 32 and a.isascii()
    assert access_token(True, TOKEN) == TOKEN  # given on loopback: asked for there too
    for weak in ("short", "x" * 15, "with a space in it!!", "non-ascii-tøken-0123456789"):
        with pytest.raises(EmbedlensError, match="at least 16 printable ASCII"):
            access_token(False, weak)


def test_without_the_token_every_path_is_refused(app):
    c = TestClient(app, base_url=BASE, follow_redirects=False)
    for path in ("/", "/api/info", "/api/points?space=0", "/static/main.js", "/?token=wrong-token-0123456789"):
        r = c.get(path)
        assert r.status_code == 403, path
        assert "needs its token" in r.json()["error"]
    r = c.post("/api/centroid", json={"space": 0, "rows": [1, 2], "k": 3})
    assert r.status_code == 403
    c.cookies.set(COOKIE, "wrong-token-0123456789")
    assert c.get("/api/info").status_code == 403
    assert c.get("/api/info", headers={"Authorization": "token " + TOKEN[:-1] + "X"}).status_code == 403


def test_the_printed_url_sets_a_cookie_that_opens_everything(app, gpt2):
    c = TestClient(app, base_url=BASE, follow_redirects=False)
    r = c.get("/?token=" + TOKEN)
    assert r.status_code == 303 and r.headers["location"] == "/"  # the token leaves the address bar
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}={TOKEN};") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert c.get("/").status_code == 200
    info = c.get("/api/info").json()
    assert info["panels"][0]["n"] == len(gpt2.space)
    assert c.get("/static/main.js").status_code == 200
    scripted = TestClient(app, base_url=BASE)
    assert scripted.get("/api/info", headers={"Authorization": f"token {TOKEN}"}).status_code == 200


def test_on_loopback_without_a_token_nothing_changes(gpt2):
    from embedlens.serve import create_app

    c = TestClient(create_app([gpt2]), base_url=BASE)
    assert c.get("/api/info").status_code == 200 and c.get("/").status_code == 200


def test_a_weak_token_is_refused_by_the_command_before_any_model_loads(run_cli, monkeypatch):
    import embedlens.serve.setup as setup

    monkeypatch.setattr(setup, "open_panels", lambda *a, **k: pytest.fail("the model was opened"))
    r = run_cli("serve", "--token", "short", "--port", "0")
    assert r.code == 2 and r.err.count("\n") == 1 and "at least 16 printable ASCII" in r.err


@pytest.mark.browser
def test_the_page_works_after_opening_the_printed_url(app, offline_page):
    from embedlens.serve import ServerThread

    with ServerThread(app) as url:
        page, seen = offline_page(url + "?token=" + TOKEN)
        page.wait_for_selector("body[data-ready='1']", timeout=60_000)
        page.wait_for_function("() => { const p = document.querySelector('.plot'); return p && p.dataset.drawn; }",
                               timeout=60_000)
        assert "token" not in page.url
        assert page.evaluate("() => fetch('/api/info').then((r) => r.status)") == 200  # the cookie travels
        assert seen.errors == [] and seen.dialogs == []
        assert all(u.startswith(url.rstrip("/")) or u.startswith(("data:", "blob:")) for u in seen.requests)
        stranger, _ = offline_page(url)  # another browser context, no cookie
        assert json.loads(stranger.evaluate("() => document.body.textContent"))["error"].startswith(
            "this explorer needs its token")
