"""BLE: binary frames in GATT notifications (bleak, asyncio on its own thread).

Scan, connect to each node found, start_notify on the frames
characteristic and reassemble with one wirebin.Reassembler per connection;
commands go out as wirebin.fragments(encode_bin(msg), mtu) written to the
commands characteristic.  A disconnected node is found again by the next
scan and reconnected.  Everything else is the codec: on_notify() is the
whole receive path, and is what the tests drive.

The node firmware (firmware/node/link_ble.py) advertises SERVICE, with its
node id as the name in the scan response.  A device is a candidate when it
advertises SERVICE, or its address is in cfg "devices", or its name in cfg
"names" (for nodes whose advertisement lacks the service, e.g. other
firmware); a candidate without the service after connecting is remembered
and skipped.  cfg "scan" is the seconds per scan, "rescan" the seconds
between scans ([ble] in the hub config, docs/hub.example.toml).

No adapter or no D-Bus: one log line, and the transport stops (no bleak:
hub.transports.make() says so and returns a Disabled transport).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

from bleak import BleakClient, BleakScanner

from becomingone.transports.base import Log, Reject, Sink, Transport, TransportError
from kairos import wirebin

# The node's GATT UUIDs (firmware/node/link_ble.py).
SERVICE = "6b1e0001-5a2c-4f7e-9d1b-b3c0a1e0b001"
FRAMES = "6b1e0002-5a2c-4f7e-9d1b-b3c0a1e0b001"
COMMANDS = "6b1e0003-5a2c-4f7e-9d1b-b3c0a1e0b001"
WRITE_TIMEOUT = 5.0  # s for one command's fragments


class BleTransport(Transport):
    kind = "ble"
    e2e = True  # gots go out on the commands characteristic

    def __init__(self, cfg: dict[str, Any], sink: Sink, log: Log = print,
                 reject: Reject | None = None) -> None:
        super().__init__(cfg, sink, log, reject)
        # The [ble] section: every key is there (config.DEFAULTS has the defaults).
        self.scan_s = float(self.cfg["scan"])  # s per scan
        self.rescan_s = float(self.cfg["rescan"])  # s between scans
        self.names = set(self.cfg["names"])
        self.devices = {a.upper() for a in self.cfg["devices"]}
        self.phase = "idle"  # idle | scanning | stopped: <why> (status()["phase"])
        self._asm: dict[str, wirebin.Reassembler] = {}
        self._clients: dict[str, Any] = {}  # address -> connected BleakClient
        self._not_nodes: set[str] = set()
        self._seen: set[str] = set()  # addresses connected before (for reconnects)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._main: asyncio.Task | None = None

    # -- life cycle ------------------------------------------------------------
    def start(self) -> None:
        super().start()
        self._thread = self._spawn(self._run, name="hub-ble")

    def _quit(self, why: str) -> None:
        self.phase = "stopped: " + why
        self.log(f"ble: {why}; BLE transport off")

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._main = loop.create_task(self._scan_loop())
            loop.run_until_complete(self._main)
        except asyncio.CancelledError:
            pass
        finally:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for t in pending:
                t.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self._loop = None
            loop.close()

    def _halt(self) -> None:
        loop, main = self._loop, self._main
        if loop is not None and main is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(main.cancel)

    # -- scanning and connections -------------------------------------------
    async def _scan_loop(self) -> None:
        while not self._stop.is_set():
            self.phase = "scanning"
            try:
                found = await BleakScanner.discover(timeout=self.scan_s, return_adv=True)
            except Exception as e:  # noqa: BLE001 - no adapter, no D-Bus, no permission
                self._quit(f"cannot scan ({type(e).__name__}: {e})")
                return
            for addr, (dev, adv) in found.items():
                if addr in self._clients or addr in self._not_nodes:
                    continue
                if self._candidate(addr, dev.name or adv.local_name, adv.service_uuids):
                    asyncio.get_running_loop().create_task(self._serve(dev))
            await asyncio.sleep(self.rescan_s)

    def _candidate(self, addr: str, name: str | None, uuids: list[str] | None) -> bool:
        return (SERVICE in [u.lower() for u in uuids or []] or addr.upper() in self.devices
                or (name is not None and name in self.names))

    async def _serve(self, dev: Any) -> None:
        """One connection: notifications in until it drops."""
        addr = dev.address
        gone = asyncio.Event()
        client = BleakClient(dev, disconnected_callback=lambda _c: gone.set())
        self._clients[addr] = client
        try:
            await client.connect()
            if client.services.get_service(SERVICE) is None:
                self._not_nodes.add(addr)
                return
            self._asm[addr] = self._reassembler(addr)  # new per connection
            await client.start_notify(FRAMES, lambda _ch, data: self.on_notify(addr, data))
            with self._lock:
                self.reconnects += addr in self._seen
                self._seen.add(addr)
            self.log(f"ble: connected to {addr} ({dev.name})")
            await gone.wait()
            self.log(f"ble: {addr} disconnected; will reconnect")
        except Exception as e:  # noqa: BLE001 - any fault: retry at the next scan
            self._say_once("conn:" + addr, f"ble: {addr}: {type(e).__name__}: {e}")
        finally:
            self._clients.pop(addr, None)
            with contextlib.suppress(Exception):
                await client.disconnect()

    # -- frames in: the receive path -----------------------------------------
    def on_notify(self, addr: str, data: bytes | bytearray) -> None:
        """One notification from addr: reassemble, decode, deliver."""
        asm = self._asm.get(addr)
        if asm is None:
            asm = self._asm[addr] = self._reassembler(addr)
        msg = asm.feed(data)
        source = "ble:" + addr
        if asm.counts:
            counts, asm.counts = asm.counts, {}
            self._merge(counts, source)
        if msg is not None:
            self._deliver(msg, source, addr)

    def _reassembler(self, addr: str) -> wirebin.Reassembler:
        return wirebin.Reassembler(auth=self._auth("ble:" + addr))  # it checks the MACs

    # -- frames out ------------------------------------------------------------
    def _send(self, route: Any, msg: dict) -> None:
        client = self._clients.get(route)
        loop = self._loop
        if client is None or loop is None or not client.is_connected:
            raise TransportError(f"ble: {route} is not connected")
        mtu = max(wirebin.MTU_MIN, int(getattr(client, "mtu_size", 23)) - 3)
        frags = wirebin.fragments(wirebin.encode_bin(msg), mtu)
        fut = asyncio.run_coroutine_threadsafe(self._write(client, frags), loop)
        if threading.current_thread() is self._thread:
            return  # called from a notification (the loop's thread): don't wait
        try:
            fut.result(WRITE_TIMEOUT)
        except Exception as e:  # noqa: BLE001 - bleak's errors, a timeout
            fut.cancel()
            raise TransportError(f"ble: write to {route}: {e}") from e

    async def _write(self, client: Any, frags: list[bytes]) -> None:
        for f in frags:
            await client.write_gatt_char(COMMANDS, f, response=True)

    def _status(self) -> dict:
        return {"connected": bool(self._clients), "devices": sorted(self._clients),
                "phase": self.phase}
