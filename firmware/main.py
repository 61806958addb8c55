"""Start the node.  On a board: main.py runs after boot.py and Ctrl-C drops
to the REPL.  On CPython (a Pi Zero, or a simulated node anywhere):

    python firmware/main.py --board boards/sim.json --config node.json

(under CPython the kernel `kairos` comes from the installed project).
"""
import sys


def _cpython_args():
    import argparse

    p = argparse.ArgumentParser(description="Run a BecomingONE node.")
    p.add_argument("--board", default="board.json", help="board definition JSON")
    p.add_argument("--config", default="node.json", help="node config JSON")
    p.add_argument("--samples", type=int, default=None, help="stop after N samples")
    a = p.parse_args()
    return {"board": a.board, "node": a.config, "max_samples": a.samples}


def run():
    kw = {}
    if sys.implementation.name != "micropython":
        kw = _cpython_args()
    import node.app

    node.app.main(unattended=True, **kw)


if __name__ == "__main__":
    try:
        run()
    except KeyboardInterrupt:
        print("node stopped")
        try:
            import node.app

            node.app.at_repl()
        except Exception:  # noqa: BLE001 - stopped while importing: nothing armed
            pass
    except Exception as e:  # noqa: BLE001 - anything: report, then restart
        sys.print_exception(e) if hasattr(sys, "print_exception") else print(repr(e))
        if sys.implementation.name == "micropython":
            import time

            import machine

            print("restarting in 5 s (Ctrl-C for the REPL)")
            time.sleep(5)
            machine.reset()
        raise
