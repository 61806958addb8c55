"""Helpers the tests share: a real Mosquitto (broker), MicroPython under
wasm (mp), firmware nodes (nodeharness), the float reference kernel
(reference), rigs (wait_for, Cable), test signals and vectors."""
