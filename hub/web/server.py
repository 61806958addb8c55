"""uvicorn in a thread of its own, next to the hub's core thread.

The main thread keeps what becomingone.run does without a web page (the status
line, Ctrl-C / SIGTERM / --seconds), and only asks the server to stop:
uvicorn installs no signal handlers outside the main thread.
"""
from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

import uvicorn

from becomingone.errors import BecomingOneError
from becomingone.web.app import create_app
from becomingone.web.auth import resolve_token


class WebError(BecomingOneError):
    """The web server could not start (the message says why)."""


class WebServer:
    def __init__(self, hub: Any, web_cfg: dict[str, Any], port: int | None = None) -> None:
        self.hub = hub
        self.host = web_cfg["host"]
        self.port = web_cfg["port"] if port is None else port
        # The token's text only when it was made now (shown once); the app keeps its hash.
        check, self.token = resolve_token(hub)
        self.token_new = self.token is not None
        self.app = create_app(hub, check, max_hz=web_cfg["max_hz"],
                              max_body=web_cfg.get("max_body", 1 << 20),
                              origins=web_cfg.get("origins", ()))
        config = uvicorn.Config(self.app, host=self.host, port=self.port, log_config=None,
                                log_level="warning", access_log=False, lifespan="off",
                                ws_max_size=65536, timeout_graceful_shutdown=3)
        self.server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def start(self, timeout: float = 15.0) -> str:
        """Serve in a thread; returns the URL once listening (raises WebError)."""
        self._thread = threading.Thread(target=self._serve, name="hub-web", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise WebError(f"web: cannot listen on {self.host}:{self.port} "
                               "(in use? another hub running? try --port or --no-web)")
            time.sleep(0.02)
        for s in getattr(self.server, "servers", []):
            for sock in s.sockets or ():
                self.port = sock.getsockname()[1]  # the real one, for --port 0
                break
        return self.url

    def _serve(self) -> None:
        with contextlib.suppress(SystemExit):  # uvicorn's way of saying "could not bind"
            self.server.run()

    def stop(self, timeout: float = 8.0) -> None:
        self.app.state.feed.unsubscribe()
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout / 2)
            if self._thread.is_alive():
                self.server.force_exit = True
                self._thread.join(timeout / 2)
