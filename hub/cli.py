"""Command-line entry point: ``becomingone <command> [options]``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from becomingone import __version__
from becomingone.errors import BecomingOneError

PROG = "becomingone"


class CliError(BecomingOneError):
    """A usage error of the command line itself (a bad option value)."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors become one-line CliErrors."""

    def error(self, message: str) -> NoReturn:
        raise CliError(f"{message} (see: {self.prog} --help)")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < float("inf"):  # also rejects nan
        raise argparse.ArgumentTypeError(f"must be a positive number: {text!r}")
    return value


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"not a port (0..65535): {text!r}")
    return int(text)


# The demo's config when it is given none: defaults plus a few output rules.
DEMO_CONFIG = str(Path(__file__).parent / "demo" / "demo.toml")


def cmd_demo(args: argparse.Namespace) -> int:
    if args.kernel:
        from becomingone.demo import kernel as kernel_demo

        kernel_demo.run(rate_hz=args.rate, seconds=args.seconds, fast=args.fast)
        return 0
    if args.nodes < 1:
        raise CliError(f"--nodes must be at least 1, got {args.nodes}")
    if args.config is None:
        args.config = DEMO_CONFIG
    return _run_hub(args, sim_nodes=args.nodes, db=args.db or ":memory:")


def cmd_hub(args: argparse.Namespace) -> int:
    return _run_hub(args, sim_nodes=0, db=args.db)


def _run_hub(args: argparse.Namespace, sim_nodes: int, db: str | None) -> int:
    from becomingone import config, run
    from becomingone.logs import Log

    # The whole config (sections, rules, inputs) is checked here, before the
    # hub creates anything (its database file, threads, sockets).
    cfg = config.load(args.config)
    if db:
        cfg["hub"]["db"] = db
    if args.no_web:
        cfg["web"]["enabled"] = False
    if args.port is not None:
        cfg["web"]["port"] = args.port
    log = Log(json_lines=args.json_logs)
    hub = run.build(cfg, log, sim_nodes=sim_nodes)
    run.run(hub, seconds=args.seconds, status_every=args.status)
    failing = hub.store.failing()  # frames it could not store were not acknowledged
    if failing:
        from becomingone.store import StoreError

        raise StoreError(f"the store failed while the hub ran: {failing}")
    return 0


def cmd_verify_log(args: argparse.Namespace) -> int:
    """Check the event log: its chain, each entry's signature and the signed
    head (read only; --sign-head then signs the log as it is)."""
    from becomingone.store import anchor

    check, key = anchor.verify_file(args.db, args.key or "")
    if args.sign_head:
        signed = anchor.sign_head(args.db, args.key or "")
        print(f"signed the head: entry {signed.seq} (the log as it is now; was: "
              f"{check.problem or 'intact'})")
        return 0
    if not check.ok:
        where = f" ({check.checked} entries checked)" if check.bad else ""
        raise CliError(f"{args.db}: event log: {check.problem}{where}")
    old = f", {check.unsigned} from before signing" if check.unsigned else ""
    print(f"ok: {check.checked} event log entries{old}, hash chain intact, every entry's"
          f" signature and the signed head (entry {check.signed_head}) match the key in {key}")
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    """The node keys file: add (or renew) a node's key, or list the nodes."""
    from becomingone.transports import keys

    if args.action == "add":
        key, new = keys.ensure_key(args.keys, args.node, renew=args.renew)
        print(f"{args.node}: {'a new key' if new else 'its key'} in {args.keys}")
        if args.node_json:
            keys.write_node_json(args.node_json, args.node, key)
            print(f"{args.node}: key written to {args.node_json} (keep it private: 0600)")
        return 0
    for node in keys.read_keys(args.keys):  # the keys themselves are never shown
        print(node)
    return 0


def cmd_broker_config(args: argparse.Namespace) -> int:
    """Mosquitto's password file and ACL for the hub and the keyed nodes."""
    from becomingone import config
    from becomingone.outputs.mqtt import DEFAULT_TOPIC
    from becomingone.transports import keys, mosquitto

    cfg = config.load(args.config)
    path = args.keys or cfg["hub"]["keys"]
    nodes = keys.read_keys(path)
    m = cfg["mqtt"]
    files = mosquitto.write_broker_config(
        args.out, nodes, prefix=m["prefix"], hub_user=m["username"], hub_password=m["password"],
        listener=args.listener,
        reads=[i["mqtt_topic"] for i in cfg.inputs if i.get("mqtt_topic")],
        writes=[r.params.get("topic", DEFAULT_TOPIC) for r in cfg.rules if r.action == "mqtt"])
    print(f"broker config for the hub and {len(nodes)} node(s) of {path} in {args.out}: "
          + ", ".join(f.name for f in files.values()))
    if "login" in files:
        print(f"the hub's new broker login is in {files['login']}: copy it under [mqtt] "
              "in hub.toml")
    print(f"run: mosquitto -c {files['conf']}")
    return 0


def cmd_boards(args: argparse.Namespace) -> int:
    from becomingone import boards

    if args.action == "check":
        for path in args.files:
            try:
                boards.check_file(path)
            except boards.BoardError as exc:  # the message has the field, not the file
                raise CliError(f"{path}: {exc}") from None
            print(f"ok: {path}")
        return 0
    for name in boards.list_boards():
        b = boards.load_board(name)
        sensors = ",".join(f"{s['name']}({s['kind']})" for s in b["sensors"])
        print(f"{name:<13} {b['runtime']:<11} {','.join(b['transports']):<15} "
              f"{b['title']}\n{'':<13} sensors: {sensors}")
    return 0


def cmd_console(args: argparse.Namespace) -> int:
    from becomingone import console

    if args.baud < 1:
        raise CliError(f"--baud must be positive, got {args.baud}")
    return console.run(args.port, raw=args.raw, baud=args.baud, node=args.node)


def cmd_flash(args: argparse.Namespace) -> int:
    from becomingone.flash import tool

    return tool.run(args)


def cmd_vboard(args: argparse.Namespace) -> int:
    from becomingone import vboard

    return vboard.run(args)


def cmd_version(args: argparse.Namespace) -> int:
    print(f"{PROG} {__version__}")
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "boards": cmd_boards,
    "broker-config": cmd_broker_config,
    "console": cmd_console,
    "demo": cmd_demo,
    "flash": cmd_flash,
    "hub": cmd_hub,
    "keys": cmd_keys,
    "verify-log": cmd_verify_log,
    "vboard": cmd_vboard,
    "version": cmd_version,
}


def build_parser() -> argparse.ArgumentParser:
    from becomingone.flash import args as flash_args
    from becomingone.vboard import build_parser as vboard_args

    parser = _Parser(prog=PROG, description="BecomingONE sensor-mesh runtime.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    hub = sub.add_parser("hub", help="run the hub (transports from its config)")
    _hub_args(hub)
    hub.add_argument("--db", default=None, help="SQLite file (default: from the config)")
    hub.add_argument("--seconds", type=_positive_float, default=None, metavar="S",
                     help="stop after S seconds (default: run until Ctrl-C)")

    demo = sub.add_parser("demo", help="the hub with a simulated mesh (no broker, no hardware)")
    _hub_args(demo, "demo/demo.toml: the defaults and a few output rules")
    demo.add_argument("--nodes", type=int, default=30, metavar="N",
                      help="simulated nodes (default: 30)")
    demo.add_argument("--db", default=None, help="SQLite file (default: in memory)")
    demo.add_argument(
        "--kernel", action="store_true", help="run the kairos kernel on synthetic channels"
    )
    demo.add_argument(
        "--seconds",
        type=_positive_float,
        default=None,
        metavar="S",
        help="stop after S seconds of signal (default: run until Ctrl-C)",
    )
    demo.add_argument(
        "--rate",
        type=_positive_float,
        default=50.0,
        metavar="HZ",
        help="sample rate in Hz (default: 50)",
    )
    demo.add_argument(
        "--fast", action="store_true", help="do not sleep between samples (for tests)"
    )

    boards = sub.add_parser("boards", help="list the board definitions, or check files")
    actions = boards.add_subparsers(dest="action", metavar="ACTION")
    check = actions.add_parser("check", help="validate board definition or node config files")
    check.add_argument("files", nargs="+", metavar="FILE")

    verify = sub.add_parser("verify-log", help="check the hub's hash-chained event log")
    verify.add_argument("--db", default="becomingone.db", help="SQLite file")
    verify.add_argument("--key", default=None, metavar="FILE",
                        help="the log's key file (default: <db>.key; the hub's [hub] log_key)")
    verify.add_argument("--sign-head", action="store_true",
                        help="accept the log as it is now: sign its head (after a problem"
                             " was looked at), so that the hub anchors it again")

    keys = sub.add_parser("keys", help="the node keys file: add a node's key, list the nodes")
    key_actions = keys.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = key_actions.add_parser("add", help="a key for NODE (kept if it has one)")
    add.add_argument("node", metavar="NODE")
    add.add_argument("--renew", action="store_true", help="a new key even if it has one")
    add.add_argument("--node-json", metavar="FILE",
                     help="also write the key (and broker login) into this node config")
    listing = key_actions.add_parser("list", help="the nodes that have a key")
    for p in (add, listing):
        p.add_argument("--keys", default="nodes.keys", metavar="FILE",
                       help="the keys file (default: nodes.keys; the hub's [hub] keys)")

    broker = sub.add_parser("broker-config",
                            help="Mosquitto logins and ACLs: each node publishes only its own")
    broker.add_argument("--out", required=True, metavar="DIR", help="where to write the files")
    broker.add_argument("--config", default=None, metavar="FILE",
                        help="hub.toml ([mqtt] prefix and login, [hub] keys, rules, inputs)")
    broker.add_argument("--keys", default=None, metavar="FILE",
                        help="the keys file (default: the config's [hub] keys)")
    broker.add_argument("--listener", type=_port, default=1883, metavar="PORT",
                        help="the broker's port (default: 1883)")

    console = sub.add_parser("console", help="a terminal console on a node's serial port")
    console.add_argument("port", nargs="?", default=None,
                         help="serial port (default: the only USB serial device)")
    console.add_argument("--raw", action="store_true", help="show the bytes unchanged")
    console.add_argument("--baud", type=int, default=115200, help="baud rate (default: 115200)")
    console.add_argument("--node", default=None,
                         help="node id commands go to (default: the node heard from)")

    flash = sub.add_parser("flash", help="put the firmware on a MicroPython board (mpremote)")
    flash_args.build_parser(flash)

    vboard = sub.add_parser("vboard", help="a virtual MicroPython board on a pseudo-terminal")
    vboard_args(vboard)

    sub.add_parser("version", help="print the version")
    return parser


def _hub_args(p: argparse.ArgumentParser,
              config_help: str = "no file, every setting at its default") -> None:
    p.add_argument("--config", default=None, metavar="FILE",
                   help=f"hub.toml (default: {config_help})")
    p.add_argument("--json-logs", action="store_true", help="log JSON lines")
    p.add_argument("--status", type=float, default=5.0, metavar="S",
                   help="print a status line every S seconds (0: never)")
    p.add_argument("--no-web", action="store_true", help="no web page / API")
    p.add_argument("--port", type=_port, default=None, metavar="N",
                   help="web page/API port (default: from the config, 8000; 0: any free)")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; every user-facing error (a BecomingOneError, whatever
    layer raised it) is one line ``becomingone: message`` and exit status 1."""
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except BecomingOneError as exc:
        print(f"{PROG}: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # Output piped into e.g. `head`: stop quietly, and keep Python from
        # complaining when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
