"""Run the explorer with uvicorn on a socket bound before start-up, so the printed URL has the real port."""

from __future__ import annotations

import socket
import sys
import threading
import time
from typing import Any
from urllib.parse import quote

from ..errors import EmbedlensError
from .app import LOOPBACK_HOSTS


def is_loopback(host: str) -> bool:
    return host in LOOPBACK_HOSTS or host.startswith("127.")


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free port)."""
    if not 0 <= port <= 65535:
        raise EmbedlensError(f"`port` must be between 0 and 65535, got {port}")
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        hint = " (`port=0` picks a free port)" if port else ""
        raise EmbedlensError(f"cannot listen on {host}:{port}: {exc.strerror or exc}{hint}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket, host: str) -> str:
    port = sock.getsockname()[1]
    shown = f"[{host.strip('[]')}]" if ":" in host.strip("[]") else host
    return f"http://{shown}:{port}/"


def make_server(app: Any, sock: socket.socket) -> Any:
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=2)
    return uvicorn.Server(config)


def serve(app: Any, *, host: str = "127.0.0.1", port: int = 0, open_browser: bool = False,
          announce: Any = None, token: str | None = None) -> None:
    """Serve ``app`` until interrupted; ``announce(url)`` is called once the socket listens (the URL carries
    ``token``, the one the app asks for, if any)."""
    sock = bind_socket(host, port)
    url = url_of(sock, host) + (f"?token={quote(token, safe='')}" if token else "")
    (announce or (lambda u: print(u, file=sys.stderr)))(url)
    if open_browser:
        import webbrowser

        threading.Timer(0.5, webbrowser.open, args=(url,)).start()
    server = make_server(app, sock)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


class ServerThread:
    """The explorer on a background thread (tests, benchmarks): ``with ServerThread(app) as url: ...``."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.sock = bind_socket(host, port)
        self.url = url_of(self.sock, host)
        self.server = make_server(app, self.sock)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        if not self.server.started:
            raise RuntimeError("the explorer did not start within 10 s")
        return self.url

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        # The explorer's work stops at its next checkpoint: wait for it, so that nothing computes on behind the
        # block (a test's memory measurement, a benchmark's next timing).
        explorer = getattr(getattr(self.app, "state", None), "explorer", None)
        if explorer is not None:
            deadline = time.monotonic() + 120
            for jobs in (explorer.jobs, explorer.index_jobs):
                jobs.shutdown()  # done by the lifespan too, unless the server is not down yet
                jobs.wait(max(0.0, deadline - time.monotonic()))
        self.sock.close()
