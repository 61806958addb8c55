"""Board definitions (``boards/*.json``) and per-node configs: load and validate.

A board definition says what a node can run: its runtime and HAL, which pins
its sensors and outputs use, and each sensor's Normalizer and kairos.Channel
settings.  The node firmware only does a small check (it must fit on a
board); this is the full one, run on the hub and by ``becomingone boards
check``.  Every error is a BoardError naming the field, e.g.
``sensors[1].pin: 40 is not an ADC pin on esp32-devkit (32-39)``.

Raw units the HAL hands to the Normalizer (what ``offset``/``mul``/``shift``
must map to Q14):

- ``adc``: ``read_u16`` (0..65535, ``adc_bits`` 16) on the machine HAL;
- ``mic``: peak-to-peak of ``window`` ADC reads, same units;
- ``mcu_temp``: centi-degrees C (ESP32-S3, Pi, sim), the raw ``read_u16`` of
  ADC4 on an RP2040 (about 14022 at 27 C, -34 per degree);
- ``bme280``: centi-degrees C, pascals, or 1/1024 %RH (the datasheet's units);
- ``digital``: 0 or 1;  ``sim``: the synthesised value itself.

Optional keys beyond the firmware's schema: ``chip`` (which pin table the
board uses; implied by the shipped board ids) and ``notes`` (free text, as
JSON has no comments).

The code is split by concern, each module importing only public names of
the ones before it: ``checks`` (BoardError, the field checkers), ``chips``
(per-chip pin tables), ``parts`` (sensors, outputs, Channel settings),
``definition`` (whole boards, the boards/ files) and ``node`` (node configs,
merge); this package re-exports their public API.
"""

from __future__ import annotations

from pathlib import Path

from becomingone.boards.checks import BoardError
from becomingone.boards.chips import BOARD_CHIPS, CHIPS, Chip
from becomingone.boards.definition import (
    HALS,
    RUNTIMES,
    TRANSPORTS,
    boards_dir,
    list_boards,
    load_board,
    load_json,
    validate_board,
)
from becomingone.boards.node import NODE_OVERRIDES, merged_config, validate_node_config
from becomingone.boards.parts import (
    BME280_ADDRS,
    BME280_FIELDS,
    CHANNEL_DEFAULTS,
    OUTPUT_KINDS,
    SENSOR_KINDS,
)

__all__ = [
    "BoardError",
    "boards_dir",
    "list_boards",
    "load_board",
    "load_json",
    "validate_board",
    "validate_node_config",
    "merged_config",
    "check_file",
    # constants, as before the split
    "BME280_ADDRS",
    "BME280_FIELDS",
    "BOARD_CHIPS",
    "CHANNEL_DEFAULTS",
    "CHIPS",
    "Chip",
    "HALS",
    "NODE_OVERRIDES",
    "OUTPUT_KINDS",
    "RUNTIMES",
    "SENSOR_KINDS",
    "TRANSPORTS",
]


def check_file(path: str | Path) -> str:
    """Validate a board definition or node config file; return which it was."""
    data = load_json(path)
    if isinstance(data, dict) and "node" in data:
        validate_node_config(data)
        return "node config"
    load_board(Path(path))
    return "board"
