"""BecomingONE's CPython side: the hub (the slow tier of the mesh) and the tools
around it, imported as ``becomingone`` (its source folder is ``hub/``).

Packages by concern (docs/layout.md has the map and the import rules):
:mod:`becomingone.core` (the Hub), :mod:`~becomingone.run`,
:mod:`~becomingone.config`, :mod:`~becomingone.nodes`,
:mod:`~becomingone.slowtier`, :mod:`~becomingone.store`,
:mod:`~becomingone.rules`, :mod:`~becomingone.outputs`,
:mod:`~becomingone.transports`, :mod:`~becomingone.web`; for people with
boards :mod:`~becomingone.boards`, :mod:`~becomingone.flash`,
:mod:`~becomingone.console`, :mod:`~becomingone.vboard`; and
:mod:`~becomingone.demo`.  The command line is :mod:`becomingone.cli`
(``becomingone`` or ``python -m becomingone``).  The fixed-point kernel it
runs is the separate package :mod:`kairos`, which boards import too.
"""
from kairos import __version__

__all__ = ["__version__"]
