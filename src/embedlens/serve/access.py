"""Who may use the explorer: on loopback, this machine's browser; elsewhere, whoever holds its token.

Off loopback (``serve --host 0.0.0.0``) anyone who can reach the port could read the vocabulary, run the
model and start jobs, so the explorer asks for a token, as Jupyter does: a random one (or ``--token`` /
``EMBEDLENS_TOKEN``) that the printed URL carries. The first visit to ``/?token=...`` sets an HttpOnly,
SameSite=Strict cookie and redirects to ``/`` (so the token stays out of the address bar and of the page's
links); later requests carry the cookie, or an ``Authorization: token ...`` header for scripts. Anything
else gets a 403. Tokens are compared in constant time.
"""

from __future__ import annotations

import hmac
import json
import secrets
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs

from ..errors import EmbedlensError

COOKIE = "embedlens_token"
MIN_TOKEN_CHARS = 16


def access_token(loopback: bool, token: str | None) -> str | None:
    """The token the explorer asks for: the one given, else a random one off loopback, else none."""
    if token is not None:
        token = token.strip()
        if len(token) < MIN_TOKEN_CHARS or not token.isascii() or not token.isprintable() or " " in token:
            raise EmbedlensError(f"`token` must be at least {MIN_TOKEN_CHARS} printable ASCII characters without "
                                 "spaces (a random one is made when none is given)")
        return token
    return None if loopback else secrets.token_urlsafe(24)


def _same(given: str | None, token: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode("utf-8", "surrogatepass"), token.encode())


class TokenGate:
    """ASGI middleware: every HTTP request needs the token (query on ``/``, cookie or header), else 403."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("path") == "/favicon.ico":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except Exception:  # a malformed Cookie header is no token
            cookie = SimpleCookie()
        held = cookie[COOKIE].value if COOKIE in cookie else None
        auth = headers.get("authorization", "")
        if _same(held, self.token) or (auth.startswith("token ") and _same(auth[6:].strip(), self.token)):
            await self.app(scope, receive, send)
            return
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if scope.get("path") == "/" and _same((query.get("token") or [None])[0], self.token):
            await send({"type": "http.response.start", "status": 303, "headers": [
                (b"location", b"/"), (b"cache-control", b"no-store"),
                (b"set-cookie", f"{COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict".encode())]})
            await send({"type": "http.response.body", "body": b""})
            return
        body = json.dumps({"error": "this explorer needs its token: open the URL `embedlens serve` printed "
                                    "(it ends in ?token=...)"}).encode()
        await send({"type": "http.response.start", "status": 403, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
