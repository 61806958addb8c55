"""`becomingone flash` gives the node its key (issue 11 item 6), on the
virtual board (MicroPython 1.27's npm port, whose hashlib has sha256): the
flashed node's frames carry MACs the hub's check takes with the key from the
keys file; flashing again keeps the key (nothing rewritten), --new-key
replaces it (the old one no longer passes), --no-key signs nothing, and a
dry run writes no key anywhere."""
import json
import time

from support.flash import flash
from support.vboard import Console, needs_node

from becomingone.transports import keys as K
from becomingone.vboard import VBoard
from kairos import wire

pytestmark = needs_node


def frames(port, keys_file, want=2, refusals=0, timeout=15):
    """(frames that pass the keys file's check, how many it refused), read
    off the board's console until `want` reports passed (or, with
    refusals, that many frames were refused)."""
    nk = K.NodeKeys(keys_file, log=lambda _t: None)
    dec = wire.LineDecoder(auth=nk.auth("serial:vb"))
    got = []
    with Console(port) as c:
        end = time.monotonic() + timeout
        while time.monotonic() < end and sum(f["t"] == "report" for f in got) < want:
            got += dec.feed(c.s.read(4096))
            if refusals and nk.rejected.get("vb-1", 0) >= refusals:
                break
    return got, nk.rejected.get("vb-1", 0)


def test_the_flashed_node_signs_with_the_key_in_the_keys_file(tmp_path):
    keys = tmp_path / "nodes.keys"
    with VBoard(fs=tmp_path / "fs") as vb:
        rc, out, err, _ = flash(vb.port, "--keys", str(keys), "--dry-run")
        assert rc == 0 and not keys.exists(), out + err  # a dry run writes no key
        assert "/node.json" in out and "(key hidden)" in out
        rc, out, err, _ = flash(vb.port, "--keys", str(keys))
        assert rc == 0, out + err
        key = K.read_keys(keys)["vb-1"]
        assert f"key: a new key for vb-1 in {keys}" in out and key not in out + err
        assert json.loads((tmp_path / "fs" / "node.json").read_text())["key"] == key
        ok, refused = frames(vb.port, keys)
        assert sum(f["t"] == "report" for f in ok) >= 2 and refused == 0
        assert all(f["node"] == "vb-1" for f in ok)

        rc, out, err, _ = flash(vb.port, "--keys", str(keys))  # the same key: nothing to write
        assert rc == 0 and "files unchanged" in out and "key:" not in out, out + err

        rc, out, err, _ = flash(vb.port, "--keys", str(keys), "--new-key")
        assert rc == 0 and "writing 1 file(s)" in out and "[1/1] /node.json" in out, out + err
        assert K.read_keys(keys)["vb-1"] != key
        old = tmp_path / "old.keys"
        K.write_keys(old, {"vb-1": key})
        ok, refused = frames(vb.port, old, refusals=3)
        assert refused >= 3 and ok == []  # the old key no longer passes
        ok, refused = frames(vb.port, keys)
        assert sum(f["t"] == "report" for f in ok) >= 2 and refused == 0

        rc, out, err, _ = flash(vb.port, "--keys", str(keys), "--no-key")
        assert rc == 0, out + err
        assert "key" not in json.loads((tmp_path / "fs" / "node.json").read_text())
        ok, refused = frames(vb.port, keys, refusals=3)
        assert refused >= 3 and ok == []  # unsigned: a hub that has its key refuses it
