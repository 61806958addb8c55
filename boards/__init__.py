"""The board definitions (one JSON file a board), shipped in the wheel as
becomingone.boards.defs: `becomingone boards` lists them, `becomingone flash
--board ID` takes one.  Data only: this package holds no code."""
