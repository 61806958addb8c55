"""Commands from the hub: ping (clock sync), set (channel parameters), out
(actuate an output), hello (send the hello again), reboot.  Every command
gets an ack; a bad or unknown one gets ok=0 with the reason, never an
exception."""

from kairos.defaults import CHANNEL_KEYS as _SET_KEYS


def handle(node, msg):
    """Act on one frame from the hub (already validated by the decoder)."""
    t = msg["t"]
    if t == "ping":
        # t1 is when it arrived; t2 is stamped as late as possible, at send.
        node.pong(msg["id"], msg["t0"], msg["tick_in"])
        return
    if t != "cmd":
        return  # frames of other types are not for a node
    op, args = msg["op"], msg["args"]
    err = None
    if op == "ping":
        pass
    elif op == "set":
        err = _set(node, args)
    elif op == "out":
        err = node.outputs.apply(args)
    elif op == "hello":  # e.g. a console that came after it: the hello again, then the ack
        node.link.send(node.hello(), keep=False)
    elif op == "reboot":
        node.ack(msg["id"], None)
        node.reboot()
        return
    else:
        err = "unknown op %r" % (op,)
    node.ack(msg["id"], err)


def _set(node, args):
    i = args.get("ch", 0)
    if not isinstance(i, int) or not 0 <= i < len(node.chans):
        return "ch must be a channel index 0..%d" % (len(node.chans) - 1)
    spec = {}
    for k in node.chans[i].spec:
        spec[k] = node.chans[i].spec[k]
    for k in args:
        if k == "ch":
            continue
        if k not in _SET_KEYS:
            return "cannot set %r (settable: %s)" % (k, ", ".join(_SET_KEYS))
        spec[k] = args[k]
    try:
        node.rebuild(i, spec)
    except ValueError as e:
        return str(e)
    return None
