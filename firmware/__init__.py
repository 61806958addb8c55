"""The node firmware, shipped in the wheel as becomingone.firmware so that
`becomingone flash` can put it on a board.  On a board (and under CPython,
`python firmware/main.py`) its modules import as the top-level package
`node`, beside `kairos`; the hub never imports them."""
