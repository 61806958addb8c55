"""BecomingONE node firmware: samples sensors, runs a kairos.Channel per
channel and reports to the hub (docs/kairos.md §2).  Runs unmodified on
MicroPython boards and, as a Pi Zero or simulated node, on CPython."""
