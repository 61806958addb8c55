"""The BecomingONE hub: the CPython side of the mesh (the slow tier).

The hub is meant to gather channels from boards, run the kairos kernel where a
board cannot, and present the results. So far only the command-line interface
(:mod:`hub.cli`) and the terminal kernel demo (:mod:`hub.kernel_demo`) exist.
"""

__version__ = "0.1.0"
