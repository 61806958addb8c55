"""The broker side of node keys: a Mosquitto password file and ACL in which
each node may publish only under its own topics (``becomingone
broker-config --out DIR``, docs/hub.md "Broker logins and ACLs").

    DIR/passwd           the hub's login and one per node (PBKDF2-SHA512,
                         Mosquitto 2's "$7$" form, as mosquitto_passwd writes)
    DIR/acl              who may read and write which topics
    DIR/mosquitto.conf   a listener with the two above: mosquitto -c DIR/mosquitto.conf
    DIR/hub-login.toml   the hub's [mqtt] username and password, when the
                         hub config has none yet (0600: copy them into hub.toml)

A node logs in as its node id with the password derived from its key
(keys.mqtt_password: what ``becomingone flash`` and ``becomingone keys add
--node-json`` write into its node.json).  It may publish its frames and
status on <prefix>/<node>/<kind> and read <prefix>/<node>/cmd, nothing
else; the hub reads everything under <prefix>/ and the [[inputs]] topics,
and writes the nodes' cmd topics and the topics of its mqtt rules.
Anonymous clients are refused.  Run again after flashing a node (or give
the broker a SIGHUP after each run: Mosquitto reloads both files).
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from pathlib import Path

from becomingone.files import write_atomic
from becomingone.transports.keys import KeysError, mqtt_password

NODE_KINDS = ("hello", "report", "event", "pong", "ack", "status")  # what a node publishes
HUB_USER = "becomingone-hub"
ITERATIONS = 101  # mosquitto_passwd's own count for "$7$"


def password_line(user: str, password: str, salt: bytes | None = None) -> str:
    """One password file line, ``user:$7$101$<salt>$<hash>`` (base64 of a
    12-byte salt and of PBKDF2-HMAC-SHA512 over the password, 64 bytes)."""
    salt = salt if salt is not None else os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, ITERATIONS, 64)
    return (f"{user}:$7${ITERATIONS}${base64.b64encode(salt).decode()}$"
            f"{base64.b64encode(digest).decode()}")


def acl_text(prefix: str, nodes: list[str], hub_user: str, reads: list[str],
             writes: list[str]) -> str:
    """The ACL: the hub's topics, then each node's."""
    out = ["# BecomingONE broker ACL (becomingone broker-config): each node may publish",
           "# only under its own topics; the hub reads them all and writes the commands.",
           f"user {hub_user}", f"topic read {prefix}/#", f"topic write {prefix}/+/cmd"]
    out += [f"topic read {t}" for t in reads] + [f"topic write {t}" for t in writes]
    for node in nodes:
        out += ["", f"user {node}"]
        out += [f"topic write {prefix}/{node}/{kind}" for kind in NODE_KINDS]
        out.append(f"topic read {prefix}/{node}/cmd")
    return "\n".join(out) + "\n"


# The broker settings the hub's delivery promise depends on (docs/hub.md,
# "What the delivery promise depends on"; docs/mosquitto.conf has them too,
# with what each is for): sessions and queues kept across a restart, a queue
# for the hub that holds a long absence, a PUBACK window as big as its batches.
DELIVERY = ("persistence true", "autosave_interval 60", "max_queued_messages 200000",
            "max_queued_bytes 134217728", "max_inflight_messages 1000")


def write_broker_config(out: str | Path, keys: dict[str, str], *, prefix: str = "becomingone",
                        hub_user: str = "", hub_password: str = "", listener: int = 1883,
                        reads: list[str] | None = None,
                        writes: list[str] | None = None) -> dict[str, Path]:
    """Write DIR/passwd, DIR/acl, DIR/mosquitto.conf (and DIR/hub-login.toml
    when hub_password is "": a new one is made there).  keys: node -> key
    (hex), as keys.read_keys gives.  Returns the files written by name."""
    d = Path(out)
    hub_user = hub_user or HUB_USER
    if hub_user in keys:
        raise KeysError(f"{hub_user!r} is the hub's broker login and a node id in the keys "
                        "file: rename the node, or give [mqtt] username another name")
    try:
        d.mkdir(parents=True, exist_ok=True)
        files = {"passwd": d / "passwd", "acl": d / "acl", "conf": d / "mosquitto.conf"}
        if not hub_password:
            hub_password = secrets.token_hex(16)
            files["login"] = d / "hub-login.toml"
            write_atomic(files["login"], "# The hub's broker login (becomingone broker-config): "
                         "put these under [mqtt] in hub.toml.\n[mqtt]\n"
                         f'username = "{hub_user}"\npassword = "{hub_password}"\n')
        lines = [password_line(hub_user, hub_password)]
        lines += [password_line(n, mqtt_password(k)) for n, k in sorted(keys.items())]
        write_atomic(files["passwd"], "\n".join(lines) + "\n")
        acl = acl_text(prefix, sorted(keys), hub_user, sorted(set(reads or ())),
                       sorted(set(writes or ())))
        write_atomic(files["acl"], acl, 0o644)
        conf = ("# BecomingONE broker (becomingone broker-config): logins and ACLs."
                f"\n# Run: mosquitto -c {files['conf'].resolve()}\n"
                "# The delivery settings: docs/hub.md, \"What the delivery promise depends on\".\n"
                f"listener {listener}\nallow_anonymous false\n"
                f"password_file {files['passwd'].resolve()}\n"
                f"acl_file {files['acl'].resolve()}\n"
                + "".join(line + "\n" for line in DELIVERY)
                + f"persistence_location {d.resolve()}/\n")
        write_atomic(files["conf"], conf, 0o644)
    except OSError as e:
        raise KeysError(f"{d}: cannot write the broker config: {e.strerror or e}") from None
    return files
