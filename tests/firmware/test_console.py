"""`becomingone console` (becomingone.console): decoding and formatting,
command parsing, the keyboard, port discovery.  The console on real ptys is
tests/firmware/test_console_pty.py."""
import time

import pytest
from support.console import CH, HELLO, KITCHEN, line, report_line
from support.rigs import FakeClock

from becomingone import console
from kairos import wire

T0 = time.mktime((2026, 1, 1, 12, 0, 1, 0, 0, -1))  # 12:00:01 local time


@pytest.fixture
def con():
    return console.Console(now=lambda: T0, mono=FakeClock(100.0), boot=1234)


@pytest.fixture
def heard(con):
    """A console that has heard the node's hello: commands go to it."""
    con.feed(HELLO)
    return con


# -- decoding and formatting ----------------------------------------------------
def test_report_shows_tau_in_ms_after_the_hello(con):
    assert con.feed(report_line(k=3)) == ["12:00:01 kitchen-1 c=0.82 τ=lag#3"]  # no hello yet
    out = con.feed(HELLO + report_line(k=3, coll=1, seq=2))
    assert out[0] == ("12:00:01 kitchen-1 hello: board sim fw 0.1.0, 20 ms period, report "
                      "every 25, caps led,serial | wave: lags 2,4,8,16 s=6 s0=2 ic=22938")
    assert out[1] == "12:00:01 kitchen-1 c=0.82 τ=320ms collapsed"  # lags[3] x 20 ms
    assert con.feed(line("event", seq=3, i=0, on=1, c=26870, n=4100)) == [
        "12:00:01 kitchen-1 c=0.82 τ=320ms COLLAPSE"]
    assert con.feed(line("event", seq=4, i=0, on=0, c=9000, n=4200)) == [
        "12:00:01 kitchen-1 c=0.27 τ=320ms collapse over"]
    assert con.feed(report_line(k=0, seq=5, drop=3, miss=2)) == [
        "12:00:01 kitchen-1 c=0.82 τ=40ms drop=3 miss=2"]
    assert con.feed(report_line(k=7, seq=6)) == ["12:00:01 kitchen-1 c=0.82 τ=lag#7"]  # no such lag


def test_several_channels_are_named_and_a_new_boot_is_noted(con):
    chs = CH + [{"name": "mic", "lags": [1, 500], "s": 6, "s0": 0, "ic": 20000}]
    hello = dict(board="b", fw="1", period=40, every=25, weight=1, caps=[], ch=chs)
    con.feed(line("hello", **hello))
    rows = [[0, 1, 1, 16384, 0, 0, 0], [0, 1, 1, 32767, 0, 0, 1]]
    assert con.feed(report_line(rows=rows)) == [
        "12:00:01 kitchen-1 wave c=0.50 τ=160ms | mic c=1.00 τ=20.0s collapsed"]
    assert con.feed(line("event", i=1, on=1, c=32767, n=9)) == [
        "12:00:01 kitchen-1 mic c=1.00 τ=20.0s COLLAPSE"]
    out = con.feed(line("hello", boot=78, **hello))
    assert out[0].startswith("12:00:01 kitchen-1 hello (new boot): board b")
    # Another node on the same port keeps its own hello.
    assert con.feed(report_line(rows=rows[:1], node="n2")) == ["12:00:01 n2 c=0.50 τ=lag#1"]


def test_a_new_boot_without_its_hello_forgets_the_old_lags(con):
    """A reset board whose hello the console missed (the port came back
    after the node had sent it): the old boot's lags would give wrong τ, so
    the console says so once and shows the lag index until a hello."""
    con.feed(HELLO)
    assert con.feed(report_line(k=3)) == ["12:00:01 kitchen-1 c=0.82 τ=320ms"]
    assert con.take() == []  # its hello was seen: nothing to ask
    assert con.feed(report_line(k=3, boot=78, seq=1)) == [
        "12:00:01 kitchen-1 new boot 78, its hello was missed: asked for it (τ shown as lag#k "
        "until it comes)",
        "12:00:01 kitchen-1 c=0.82 τ=lag#3"]
    (ask,) = [wire.LineDecoder().feed(b)[0] for b in con.take()]  # a "hello" cmd to the node
    assert (ask["t"], ask["node"], ask["op"], ask["args"], ask["id"]) == (
        "cmd", "kitchen-1", "hello", {}, 1)
    assert con.feed(report_line(k=2, boot=78, seq=2)) == ["12:00:01 kitchen-1 c=0.82 τ=lag#2"]
    assert con.take() == []  # once per boot
    assert con.feed(line("event", boot=78, seq=3, i=0, on=1, c=26870, n=9)) == [
        "12:00:01 kitchen-1 ch0 c=0.82 τ=lag#2 COLLAPSE"]  # how many channels: unknown
    ch = [dict(CH[0], lags=[3, 6, 12])]
    out = con.feed(line("hello", boot=78, seq=4, board="sim", fw="0.1.0", period=20, every=25,
                        weight=1, caps=[], ch=ch))
    assert out[0].startswith("12:00:01 kitchen-1 hello: board sim")  # this boot's: no note
    assert con.feed(report_line(k=2, boot=78, seq=5)) == ["12:00:01 kitchen-1 c=0.82 τ=240ms"]
    # A third boot heard only through an event: no τ from the second boot's lags.
    assert con.feed(line("event", boot=79, seq=0, i=0, on=0, c=100, n=9)) == [
        "12:00:01 kitchen-1 new boot 79, its hello was missed: asked for it (τ shown as lag#k "
        "until it comes)",
        "12:00:01 kitchen-1 ch0 c=0.00 collapse over"]
    assert len(con.take()) == 1
    # A node first heard mid-boot (asked at once), then reset: nothing to
    # forget, still noted, asked again.
    con.feed(report_line(node="n2", boot=5))
    assert [wire.LineDecoder().feed(b)[0]["node"] for b in con.take()] == ["n2"]
    assert con.feed(report_line(node="n2", boot=6, k=1)) == [
        "12:00:01 n2 new boot 6 (no hello seen yet: asked for it; τ shown as lag#k until then)",
        "12:00:01 n2 c=0.82 τ=lag#1"]
    assert len(con.take()) == 1
    # Its ack names the automatic request; the hello it brings gives τ.
    assert con.sent[4][0] == "hello, automatic"
    assert con.feed(line("ack", node="n2", boot=6, seq=1, id=4, ok=1, err="")) == [
        "12:00:01 n2 ack #4 (hello, automatic): ok in 0.0 ms"]
    con.feed(line("hello", node="n2", boot=6, seq=2, board="sim", fw="0.1.0", period=20,
                  every=25, weight=1, caps=[], ch=CH))
    assert con.feed(report_line(node="n2", boot=6, seq=3, k=1)) == ["12:00:01 n2 c=0.82 τ=80ms"]
    assert con.take() == []


def test_raw_mode_asks_for_nothing(con):
    con.ask_hello = False
    assert con.feed(report_line(k=3, boot=78)) == ["12:00:01 kitchen-1 c=0.82 τ=lag#3"]
    assert con.feed(report_line(k=3, boot=79, seq=1))[0].endswith(
        "(no hello seen yet: τ shown as lag#k until one)")
    assert con.take() == []


def test_repl_and_log_lines_pass_through_untouched(con):
    noise = (b"MicroPython v1.27.0 on 2025-12-01; ESP32S3 module with ESP32S3\r\n"
             b"Type \"help()\" for more information.\r\n"
             b"Traceback (most recent call last):\r\n"
             b"  File \"main.py\", line 9, in <module>\r\n"
             b"OSError: [Errno 5] EIO\r\n\r\n"
             b"\x1b[32mcolour\x1b[0m \xff\r\n"
             b"print('@Kevin')\r\n")
    data = noise + HELLO + b">>> " + report_line() + b">>> "
    want = ["MicroPython v1.27.0 on 2025-12-01; ESP32S3 module with ESP32S3",
            'Type "help()" for more information.',
            "Traceback (most recent call last):",
            '  File "main.py", line 9, in <module>',
            "OSError: [Errno 5] EIO",
            "",
            "\x1b[32mcolour\x1b[0m \ufffd",
            "print('@Kevin')"]
    out = con.feed(data)
    assert out[:8] == want
    assert out[8].startswith("12:00:01 kitchen-1 hello:")
    assert out[9:] == [">>> ", "12:00:01 kitchen-1 c=0.82 τ=320ms"]
    assert con.pending() == ">>> "  # the prompt waits for its line: shown meanwhile
    # Any chunking gives the same lines.
    one = console.Console(now=lambda: T0, mono=FakeClock(100.0))
    got = []
    for i in range(len(data)):
        got += one.feed(data[i:i + 1])
    assert got == out
    assert one.pending() == ">>> "


def test_a_bad_frame_is_shown_with_its_reason(con):
    bad = bytearray(report_line())
    bad[30] ^= 1
    out = con.feed(bytes(bad) + report_line()[:40] + b"\n" + report_line())
    assert out[0].startswith("?? bad frame (crc): @K1 {")
    assert out[1].startswith("?? bad frame (truncated): @K1 {")
    assert out[2] == "12:00:01 kitchen-1 c=0.82 τ=lag#3"
    assert con.counts == {"crc": 1, "truncated": 1}


def test_a_partial_line_is_bounded_and_flushed(con):
    assert con.feed(b"x" * 10000) == ["x" * 10000]
    assert con.feed(b"half a line") == [] and con.pending() == "half a line"
    assert con.feed(b" @K1 {") == [] and con.pending() == "half a line "
    assert con.flush()[0].startswith("half a line")  # the port went away mid-line
    assert con.pending() == "" and con.flush() == []


# -- commands ---------------------------------------------------------------------
def sent(con, text):
    data = con.command(text)
    msgs = wire.LineDecoder().feed(data)
    assert len(msgs) == 1 and data.endswith(b"\n")
    return msgs[0]


@pytest.mark.parametrize("text, op, args", [
    ("set lags 2,4,8", "set", {"ch": 0, "lags": [2, 4, 8]}),
    ("set lags 2, 4, 8", "set", {"ch": 0, "lags": [2, 4, 8]}),
    ("set 1 lags 3,6,12", "set", {"ch": 1, "lags": [3, 6, 12]}),
    ("set s 6", "set", {"ch": 0, "s": 6}),
    ("set s 99", "set", {"ch": 0, "s": 99}),  # the node judges the value
    ("set 2 lags 4,8 ic 20000 s0 1", "set", {"ch": 2, "lags": [4, 8], "ic": 20000, "s0": 1}),
    ("set omega 100 hysteresis 500 dwell 8", "set",
     {"ch": 0, "omega": 100, "hysteresis": 500, "dwell": 8}),
    ("led on", "out", {"name": "led", "on": 1}),
    ("led off", "out", {"name": "led", "on": 0}),
    ("pixel 255 0 0", "out", {"name": "pixel", "rgb": [255, 0, 0]}),
    ("pixel 1,2,3", "out", {"name": "pixel", "rgb": [1, 2, 3]}),
    ("buzzer 440", "out", {"name": "buzzer", "freq": 440}),
    ("buzzer off", "out", {"name": "buzzer", "freq": 0}),
    ("motor 30000", "out", {"name": "motor", "duty": 30000}),
    ("reboot", "reboot", {}),
    ("hello", "hello", {}),
])
def test_commands_become_cmd_frames(heard, text, op, args):
    con = heard
    m = sent(con, text)
    assert m == KITCHEN.frame("cmd", boot=1234, seq=0, tick=100000, id=1, op=op, args=args)
    assert con.sent == {1: (text, 100.0)}


def test_ping_is_a_clock_sync_ping_and_the_pong_shows_the_round_trip(heard):
    con = heard
    m = sent(con, "ping")
    assert m == KITCHEN.frame("ping", boot=1234, seq=0, tick=100000, id=1, t0=100000)
    con._mono.t += 0.0042
    out = con.feed(line("pong", id=1, t0=100000, t1=5000, t2=5001))
    assert out == ["12:00:01 kitchen-1 pong #1: round trip 4.2 ms (node tick 5000, held 1 ms)"]
    # A pong that is not ours: the round trip from its t0 (30-bit ms ticks).
    out = con.feed(line("pong", id=9, t0=100000 - 7, t1=1, t2=1))
    assert "round trip 11.0 ms" in out[0]  # 4.2 ms later, 7 ms earlier: whole ms ticks


def test_acks_show_the_command_and_the_nodes_error(con):
    con.feed(HELLO)
    assert sent(con, "led on")["node"] == "kitchen-1"  # commands go to the node heard
    assert sent(con, "set s 99")["id"] == 2
    con._mono.t += 0.003
    out = con.feed(line("ack", id=1, ok=1, err="") + line("ack", id=2, ok=0, err="s must be 4..12")
                   + line("ack", id=77, ok=1, err=""))
    assert out == ["12:00:01 kitchen-1 ack #1 (led on): ok in 3.0 ms",
                   "12:00:01 kitchen-1 ack #2 (set s 99): ERROR s must be 4..12",
                   "12:00:01 kitchen-1 ack #77: ok"]
    assert con.sent == {}
    fixed = console.Console(node="other", mono=FakeClock(100.0))
    fixed.feed(HELLO)
    assert sent(fixed, "reboot")["node"] == "other"


def test_ids_and_seq_advance_and_wrap(heard):
    con = heard
    con._id = 65534
    assert [sent(con, "ping")["id"] for _ in range(3)] == [65535, 1, 2]
    assert con.seq == 3
    for i in range(300):
        con.command("led on" if i % 2 else "ping")
    assert len(con.sent) == 256  # bounded


@pytest.mark.parametrize("text, why", [
    ("ping 3", "ping: takes no arguments"),
    ("reboot now", "reboot: takes no arguments"),
    ("led", "led: expected on or off, got 'nothing'"),
    ("led maybe", "led: expected on or off"),
    ("pixel 255 0", "pixel: expected 3 values (R G B), got 2"),
    ("pixel 255 0 0 0", "pixel: expected 3 values"),
    ("pixel 256 0 0", "pixel: R must be 0..255, got 256"),
    ("pixel red 0 0", "pixel: R must be an integer, got 'red'"),
    ("buzzer", "buzzer: expected one value, got 0"),
    ("buzzer loud", "buzzer: HZ must be an integer"),
    ("buzzer -5", "buzzer: HZ must be 0..65535, got -5"),
    ("motor 70000", "motor: DUTY must be 0..65535, got 70000"),
    ("motor 1 2", "motor: expected one value, got 2"),
    ("set", "set: nothing to set"),
    ("set 1", "set: nothing to set"),
    ("set 9 s 6", "set: CH must be 0..7, got 9"),
    ("set speed 3", "set: cannot set 'speed' (settable: lags, s,"),
    ("set s", "set: s needs a value"),
    ("set s six", "set: s must be an integer, got 'six'"),
    ("set s 6 7", "set: s takes one value, got '6 7'"),
    ("set s 6 s 7", "set: s given twice"),
    ("set lags 2,x,8", "set: a lag must be an integer, got 'x'"),
    ("set lags 0,4", "set: a lag must be 1..1024, got 0"),
    ("set lags 1,2,3,4,5,6,7,8,9", "set: lags: at most 8, got 9"),
    ("set ic 2000000000", "set: ic must be -1073741823..1073741823"),
])
def test_bad_arguments_are_a_local_error_and_send_nothing(heard, text, why):
    con = heard
    with pytest.raises(console.CommandError) as e:
        con.command(text)
    assert str(e.value).startswith(why)
    assert "(usage: " in str(e.value)
    assert con.seq == 0 and con._id == 0 and con.sent == {}
    assert sent(con, "ping")["id"] == 1  # no id was used up


def test_commands_need_a_node_heard_or_named(con):
    with pytest.raises(console.CommandError, match="no node heard from yet"):
        con.command("led on")
    assert con.seq == 0 and con.sent == {}
    assert con.command("print(1)") == b"print(1)\r\n"  # raw text needs no node
    named = console.Console(node="n-7")
    assert wire.LineDecoder().feed(named.command("reboot"))[0]["node"] == "n-7"


@pytest.mark.parametrize("text", [
    "print(1)", "led = Pin(2, Pin.OUT)", "led.on()", "ping()", "set = {1, 2}", "motor += 1",
    "  reboot", "import machine", "hi board", "", "pixel[0] = (1, 2, 3)",
    "ledon", "ping: 3",
])
def test_other_lines_go_to_the_board_as_typed(con, text):
    assert con.command(text) == text.encode() + b"\r\n"
    assert con.command(text + "\n") == text.encode() + b"\r\n"
    assert con.seq == 0 and con.sent == {}


# -- the keyboard -------------------------------------------------------------------
def test_keys_from_a_pipe():
    k = console.Keys(echo=False)
    assert k.feed(b"led on\nping\r\nprint(1)\rx") == [
        ("line", "led on"), ("line", "ping"), ("line", "print(1)")]
    assert k.feed(b"\n") == [("line", "x")]
    assert k.feed(b"ab\x03") == [("send", b"\x03")] and k.buf == ""
    assert k.feed(b"\x04\x01") == [("send", b"\x04"), ("send", b"\x01")]
    assert k.feed("τ".encode() + b"\xff\n\xcf") == [("line", "τ\ufffd")]
    assert k.feed(b"\x84\n") == [("line", "τ")]  # a character split over reads
    assert k.feed(b"led on\x1dignored\n") == [("exit", None)]


def test_keys_from_a_terminal_echo_and_edit():
    k = console.Keys(echo=True)
    out = k.feed(b"lef\x7fd on\x1b[Ax\x1bOBy\r")
    assert [a for a in out if a[0] != "echo"] == [("line", "led onxy")]
    assert "".join(a[1] for a in out if a[0] == "echo") == "lef\b \bd onxy"
    assert k.feed(b"abc\x03") == [("echo", "a"), ("echo", "b"), ("echo", "c"),
                                  ("echo", "^C\n"), ("send", b"\x03")]
    assert k.feed(b"\x7f") == []  # nothing to delete
    assert k.feed(b"\x1d") == [("exit", None)]


# -- port discovery ------------------------------------------------------------------
class FakePort:
    def __init__(self, device, vid, description="USB JTAG/serial debug unit"):
        self.device, self.vid, self.description = device, vid, description


def test_discovery_takes_the_only_usb_serial_device(monkeypatch):
    from serial.tools import list_ports

    ports = [FakePort("/dev/ttyS0", None, "n/a"), FakePort("/dev/ttyACM0", 0x303A)]
    monkeypatch.setattr(list_ports, "comports", lambda: ports)
    assert console.discover() == "/dev/ttyACM0"
    ports.append(FakePort("/dev/ttyUSB0", 0x10C4, "CP2102"))
    with pytest.raises(console.ConsoleError, match=r"2 USB serial devices: /dev/ttyACM0 "
                       r"\(USB JTAG/serial debug unit\), /dev/ttyUSB0 \(CP2102\); name one"):
        console.discover()
    del ports[1:]
    with pytest.raises(console.ConsoleError, match="no USB serial device found"):
        console.discover()
