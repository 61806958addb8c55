"""Command-line entry point: ``becomingone <command> [options]``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from hub import __version__

PROG = "becomingone"


class CliError(Exception):
    """A user error: reported as ``becomingone: message`` with exit status 1."""


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


def cmd_demo(args: argparse.Namespace) -> int:
    if not args.kernel:
        raise CliError(
            f"the hub demo is not available yet; only the kernel demo works: {PROG} demo --kernel"
        )
    from hub import kernel_demo

    kernel_demo.run(rate_hz=args.rate, seconds=args.seconds, fast=args.fast)
    return 0


def cmd_boards(args: argparse.Namespace) -> int:
    from hub import boards

    try:
        if args.action == "check":
            for path in args.files:
                try:
                    boards.check_file(path)
                except boards.BoardError as exc:
                    raise CliError(f"{path}: {exc}") from None
                print(f"ok: {path}")
            return 0
        for name in boards.list_boards():
            b = boards.load_board(name)
            sensors = ",".join(f"{s['name']}({s['kind']})" for s in b["sensors"])
            print(f"{name:<13} {b['runtime']:<11} {','.join(b['transports']):<15} "
                  f"{b['title']}\n{'':<13} sensors: {sensors}")
    except boards.BoardError as exc:
        raise CliError(str(exc)) from None
    return 0


def cmd_version(args: argparse.Namespace) -> int:
    print(f"{PROG} {__version__}")
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "boards": cmd_boards,
    "demo": cmd_demo,
    "version": cmd_version,
}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="BecomingONE sensor-mesh runtime.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = sub.add_parser("demo", help="run a demo in the terminal")
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

    sub.add_parser("version", help="print the version")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except CliError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
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
