"""The BLE link (MicroPython `bluetooth`): a GATT service with one notify
characteristic carrying binary frames, fragmented to the connection's MTU,
and one write characteristic for the hub's commands.  The node advertises
its id as the device name.  The link is up while a central is connected.
"""
import bluetooth

from kairos import wirebin

from .link import Link

# UUIDs of the BecomingONE service (random, fixed; the hub scans for them).
SERVICE = bluetooth.UUID("6b1e0001-5a2c-4f7e-9d1b-b3c0a1e0b001")
FRAMES = bluetooth.UUID("6b1e0002-5a2c-4f7e-9d1b-b3c0a1e0b001")
COMMANDS = bluetooth.UUID("6b1e0003-5a2c-4f7e-9d1b-b3c0a1e0b001")

_IRQ_CONNECT = 1
_IRQ_DISCONNECT = 2
_IRQ_WRITE = 3
_IRQ_MTU = 21
_NOTIFY = 0x0010
_WRITE = 0x0008
_READ = 0x0002


def _adv():
    # Flags (general discoverable, no BR/EDR) + our 128-bit service UUID, so
    # the hub can scan for the service; the name goes in the scan response
    # (31 bytes is too little for both).
    return b"\x02\x01\x06" + bytes((17, 0x07)) + bytes(SERVICE)


def _resp(name):
    n = name.encode()[:29]
    return bytes((len(n) + 1, 0x09)) + n


class BleLink(Link):
    name = "ble"
    codec = "bin"
    backoff_max = 1000  # "down" only means no central yet: look again soon

    def __init__(self, cfg, node, clock, rand, say=print):
        Link.__init__(self, cfg, node, clock, rand, say)
        self._conn = None
        self._mtu = 20  # notification payload until the central negotiates more
        self._asm = wirebin.Reassembler()
        self.rejects = self._asm.counts
        self._ble = bluetooth.BLE()
        self._ble.active(True)
        self._ble.irq(self._irq)
        ((self._tx, self._rx),) = self._ble.gatts_register_services(
            ((SERVICE, ((FRAMES, _NOTIFY | _READ), (COMMANDS, _WRITE))),)
        )
        self._ble.gatts_set_buffer(self._rx, 256, True)
        self._advertise()

    def _advertise(self):
        self._ble.gap_advertise(200000, adv_data=_adv(), resp_data=_resp(self.node))

    def _irq(self, event, data):
        # Runs in interrupt context: record state only, no allocation-heavy work.
        if event == _IRQ_CONNECT:
            self._conn = data[0]
        elif event == _IRQ_DISCONNECT:
            self._conn = None
            self._advertise()
        elif event == _IRQ_MTU:
            self._mtu = max(20, data[1] - 3)
        elif event == _IRQ_WRITE and data[1] == self._rx:
            msg = self._asm.feed(self._ble.gatts_read(self._rx))
            self._accept(msg, self.node)

    def _open(self):
        if self._conn is None:
            raise OSError("no central connected")

    def _poll(self):
        if self._conn is None:
            raise OSError("central disconnected")

    def _write(self, kind, data):
        for frag in wirebin.fragments(data, self._mtu):
            self._ble.gatts_notify(self._conn, self._tx, frag)
        return 0
