"""What the rules Router is fed in tests: one mesh state as the core hands
it over each tick (emerged, two participants, kitchen-1 online with a mic
channel), and the TOML of one rule."""


def state(t=0.0, G=0.9, psi=complex(0.6, -0.2), **kw):
    """The mesh state at time t (kw replaces top-level keys)."""
    s = {"t": t, "G": G, "R": 0.8, "psi": psi, "emerged": True, "since": 1.5,
         "participants": ["kitchen-1", "hall-2"], "surprise": 0.1, "witness_event": False,
         "nodes": {"kitchen-1": {"online": True, "c": 0.7, "tau": 0.25, "collapsed": False,
                                 "aligned": True, "caps": ["led", "neopixel"],
                                 "channels": [{"name": "mic", "c": 0.9, "k": 2,
                                               "collapsed": False}]}}}
    s.update(kw)
    return s


def rule_toml(action, params="", name="r", when="G > 0.5", extra=""):
    """One [[rules]] table with its [rules.with] params (TOML lines)."""
    return (f'[[rules]]\nname = "{name}"\nwhen = "{when}"\naction = "{action}"\n{extra}\n'
            f"[rules.with]\n{params}\n")
