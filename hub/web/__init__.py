"""The hub's web page, REST API and WebSocket feed (docs/web.md).

    from becomingone.web import WebServer
    web = WebServer(hub, cfg["web"])     # after hub.start()
    url = web.start()                    # uvicorn in its own thread
    ...
    web.stop()                           # before hub.stop()

``create_app(hub, token)`` builds the FastAPI app alone (tests use it with
FastAPI's TestClient).  The app only reads the hub through its public
attributes and calls ``send_command`` / an input's ``feed``: nothing a
client sends reaches the core thread except through those.
"""
from __future__ import annotations

from becomingone.web.app import create_app
from becomingone.web.server import WebError, WebServer

__all__ = ["WebError", "WebServer", "create_app"]
