"""Build a hub from its config and run it: `becomingone hub` and
`becomingone demo` both end up here."""
from __future__ import annotations

import time

from becomingone.config import HubConfig
from becomingone.core import Hub
from becomingone.logs import Log


def build(cfg: HubConfig, log: Log, sim_nodes: int = 0) -> Hub:
    """The hub with the transports its config enables (and a sim mesh).

    cfg is checked whole already (becomingone.config), so nothing here fails
    on it; a hub with no transport at all runs (an SDK may only want its web
    API) but says so, since it will hear from no node."""
    from becomingone import transports

    hub = Hub(cfg, log)
    for kind in transports.KINDS:
        if cfg[kind]["enabled"]:
            hub.add_transport(transports.make(kind, cfg[kind], hub.sink, log.line,
                                              hub.registry.reject))
    if cfg.inputs:
        from becomingone.transports.inputs import Inputs

        # Topics ride on the MQTT transport's connection and login, if it runs.
        mqtt = next((t for t in hub.transports if t.kind == "mqtt"), None)
        hub.add_transport(Inputs(cfg.inputs, hub.sink, log.line, mqtt=mqtt))
    n = sim_nodes or cfg["sim"]["nodes"]
    if n:
        from becomingone.transports.sim import SimMesh

        hub.add_transport(SimMesh(n, hub.sink, log.line, seed=cfg["sim"]["seed"],
                                  period=cfg["sim"]["period"]))
    if not hub.transports:
        where = "" if cfg.path == "(defaults)" else f" in {cfg.path}"
        log("hub", f"no transport enabled: set enabled = true under [serial], [mqtt] or [ble]"
                   f"{where} (or add [[inputs]], or [sim] nodes); until then no node is heard")
    return hub


def status_line(hub: Hub) -> str:
    failing = hub.store.failing()  # first: nothing else matters as much
    return f"{failing} | {_mesh_line(hub)}" if failing else _mesh_line(hub)


def _mesh_line(hub: Hub) -> str:
    ms, ws = hub.mesh_state, hub.witness_state
    if ms is None:
        return "mesh: starting"
    one = f"THE_ONE since {time.strftime('%H:%M:%S', time.localtime(ms.since))}" \
        if ms.emerged and ms.since else "no emergence"
    return (f"mesh: {len(ms.live)} live, {len(ms.stale)} stale | G={ms.G:.2f} R={ms.R:.2f} "
            f"Psi={abs(ms.psi):.2f}@{_deg(ms.psi):+.0f}deg | {one} | "
            f"W surprise={ws.S:.3f} | frames={hub.counters['frames']}")


def _deg(z: complex) -> float:
    import cmath

    return cmath.phase(z) * 180 / cmath.pi if z else 0.0


def run(hub: Hub, seconds: float | None = None, status_every: float = 5.0) -> None:
    """Run until Ctrl-C or SIGTERM (or for `seconds`), printing a status line
    now and then; either way the hub stops cleanly (state saved, DB closed)."""
    import signal
    import threading

    def _term(signum, frame):
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _term)
    hub.start()
    web = None
    t_end = None if seconds is None else time.monotonic() + seconds
    next_status = time.monotonic() + status_every
    try:
        if hub.cfg["web"]["enabled"]:
            web = start_web(hub)
        while t_end is None or time.monotonic() < t_end:
            time.sleep(0.1 if t_end is None else max(0.0, min(0.1, t_end - time.monotonic())))
            if status_every and time.monotonic() >= next_status:
                next_status += status_every
                hub.log("status", status_line(hub))
    except KeyboardInterrupt:
        hub.log("hub", "stopping")
    finally:
        if web is not None:
            web.stop()
        hub.stop()


def start_web(hub: Hub):
    """The web page and API (hub.web) in a thread; None if it cannot listen
    (the hub still runs: ingest matters more than the page)."""
    from becomingone.web import WebError, WebServer

    try:
        web = WebServer(hub, hub.cfg["web"])
        url = web.start()
    except WebError as e:
        hub.log("error", f"{e}; the hub runs on without its web page")
        return None
    if web.token_new:
        hub.log("web", f"API token (made now and shown once; the hub's store keeps its hash):"
                       f" {web.token}")
    hub.log("web", f"page at {url}")
    return web
