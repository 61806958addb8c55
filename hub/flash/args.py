"""The arguments of `becomingone flash` (kept apart so that building the
CLI's parser imports none of the flashing code)."""
import argparse


def build_parser(p=None):
    p = p or argparse.ArgumentParser(prog="flash", description="Put BecomingONE on a board.")
    p.add_argument("--board", required=True, help="board id (boards/*.json) or a board file")
    p.add_argument("--node-id", required=True, help="this node's id, e.g. kitchen-1")
    p.add_argument("--transport", default="serial", choices=("serial", "mqtt", "ble"))
    p.add_argument("--wifi", metavar="SSID", help="Wi-Fi network (password from "
                   "$BECOMINGONE_WIFI_PASSWORD or asked)")
    p.add_argument("--broker", metavar="HOST", help="MQTT broker host")
    p.add_argument("--broker-port", type=int, default=1883)
    p.add_argument("--keys", default="nodes.keys", metavar="FILE",
                   help="the node keys file the hub reads ([hub] keys; default: nodes.keys): "
                        "the node's key is taken from it, or a new one added to it")
    p.add_argument("--new-key", action="store_true", help="give the node a new key")
    p.add_argument("--no-key", action="store_true",
                   help="no key: the node's frames are not signed")
    p.add_argument("--port", help="serial port (default: the only board mpremote finds)")
    p.add_argument("--dry-run", action="store_true", help="print the plan, write nothing")
    p.add_argument("--erase", action="store_true", help="remove our files from the board first")
    p.add_argument("--no-watch", action="store_true",
                   help="don't reset the board nor wait for its first report")
    p.add_argument("--watch-timeout", type=float, default=30.0, metavar="S",
                   help="seconds to wait for the first report (default: 30)")
    return p
