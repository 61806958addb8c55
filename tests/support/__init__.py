"""Helpers the tests share, one module per kind of thing (tests import them
as `from support.rigs import wait_for`: pytest's pythonpath puts tests/ on
the path; no test module imports another).

rigs         wait_for, FakeClock, free_port, text, the socat Cable, needs_socat
frames       frames as the hub receives them (frame/hello/report/event, Frames)
hub          a Hub driven by hand (make, feed), on a broker (mqtt_hub), as a
             process (RunningHub)
broker       a real Mosquitto (the `mosquitto` fixture, loaded by conftest.py)
cli          `becomingone ARGS` as a user runs it
nodeharness  the firmware from a staged filesystem on MicroPython or CPython
mp           MicroPython under wasm (and ROOT, the checkout)
vboard       the virtual board from outside: mpremote, Console, needs_node
flash        `becomingone flash` and its one-line errors
console      serial lines as the console reads them
wire         wire examples, strategies, the garbage corpus
kernel       checks on a kairos Channel's inside
reference    the float reference kernel; signals, vectors: its inputs
rules        a mesh state and a rule's TOML for the Router
web          the web API's JSON errors; browser: Chromium and a demo process
damage       real damage to a SQLite store
"""
