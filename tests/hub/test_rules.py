"""hub.rules: the condition language, config validation with rule index and line,
and the for / edge / min_interval timing on synthetic state["t"] (no sleeping)."""
import pytest
from support.mp import ROOT

from becomingone.rules.parser import Condition, EvalError, Rule, RuleError, parse_rules, rule_lines


def state(t=0.0, **kw):
    s = {
        "t": t, "G": 0.9, "R": 0.8, "psi": complex(0.6, -0.2), "emerged": True,
        "since": 1.0, "participants": ["kitchen-1"], "surprise": 0.1, "witness_event": False,
        "nodes": {"kitchen-1": {"online": True, "c": 0.7, "tau": 0.25, "collapsed": False,
                                "aligned": True, "caps": ["led", "neopixel"],
                                "channels": [{"name": "mic", "c": 0.9, "k": 2,
                                              "collapsed": True}]}},
    }
    s.update(kw)
    return s


def one(when, action="websocket", extra=""):
    return f'[[rules]]\nname = "r"\nwhen = {when!r}\naction = "{action}"\n{extra}'


# --- the condition language ------------------------------------------------------------

@pytest.mark.parametrize("expr, expected", [
    ("emerged and G >= 0.8", True),
    ("G > 0.95", False),
    ("not emerged", False),
    ("emerged or G < 0", True),
    ("0.5 < G <= 1", True),
    ("G * 2 - R / 4 > 1.5", True),          # 1.8 - 0.2 = 1.6
    ("-G < 0 and +R > 0", True),
    ("(G + R) / 2 >= 0.85", True),
    ("psi_re == 0.6 and psi_im < 0", True),
    ("x > 0.79 and x < 0.81", True),        # (1 + 0.6)/2 = 0.8
    ("surprise < 0.2 and witness_event == False", True),
    ("emerged == True", True),
    ("emerged != witness_event", True),
    ('node("kitchen-1").c > 0.6', True),
    ('node("kitchen-1").tau == 0.25', True),
    ('node("kitchen-1").online and node("kitchen-1").aligned', True),
    ('not node("kitchen-1").collapsed', True),
    ('node("kitchen-1").channel(0).c >= 0.9', True),
    ('node("kitchen-1").channel(0).collapsed', True),
    ("True", True),
    ("False or 1 > 2", False),
    ("G >= 1 - 0.1", True),
])
def test_allowed_expressions_evaluate_like_python(expr, expected):
    assert Condition(expr).evaluate(state()) is expected


@pytest.mark.parametrize("expr, reason", [
    ("__import__('os')", "__import__(...) is not allowed"),
    ("__import__('os').system('true')", "calling a method is not allowed"),
    ("lambda: True", "lambda is not allowed"),
    ("open('/etc/passwd')", "open(...) is not allowed"),
    ('node("k").__class__', "node(...) has no attribute '__class__'"),
    ('node("k").channel(0).k > 1', "channel(...) has no attribute 'k'"),
    ("G.real > 0", "attribute 'real' is not allowed"),
    ("().__class__", "attribute '__class__' is not allowed"),
    ("G ** 2 > 0", "Pow is not allowed"),
    ("G // 1 > 0", "FloorDiv is not allowed"),
    ("G % 1 > 0", "Mod is not allowed"),
    ("G in [1]", "In is not allowed"),
    ("G is None", "Is is not allowed"),
    ("[G][0] > 0", "indexing [...] is not allowed"),
    ("[G] == [1]", "a list is not allowed"),
    ("{'a': 1}", "a dict is not allowed"),
    ("G if emerged else R", "if/else is not allowed"),
    ("(y := G) > 0", "':=' is not allowed"),
    ("f'{G}' == 'x'", "an f-string is not allowed"),
    ("'a' == 'a'", "a string is only allowed as node"),
    ("psi > 0", "unknown name 'psi'"),
    ("nodes > 0", "unknown name 'nodes'"),
    ("G", "must be a condition"),
    ("G + 1", "must be a condition"),
    ("G and emerged", "'and'/'or' need truth values"),
    ("not G", "'not' needs a truth value"),
    ("emerged + 1 > 0", "need numbers on both sides"),
    ("emerged < True", "need numbers, not truth values"),
    ("G == emerged", "cannot compare a number with a truth value"),
    ('node("k")', "node(...) needs an attribute"),
    ('node("k").channel(0)', "node(...) needs an attribute"),
    ("node(k).c > 0", "node(...) takes one node id in quotes"),
    ('node("k", 1).c > 0', "node(...) takes one node id in quotes"),
    ('node(id="k").c > 0', "node(...) takes one node id in quotes"),
    ('node("k").channel(-1).c > 0', "channel(...) takes one channel index"),
    ('node("k").channel(True).c > 0', "channel(...) takes one channel index"),
    ('node("k").channel(0.5).c > 0', "channel(...) takes one channel index"),
    ('node("k").c(1) > 0', "calling a method is not allowed"),
    ("1j == 0", "constant 1j is not allowed"),
    ("G > 1e999", "constant inf is not allowed"),
    ("G >", "syntax error"),
    ("G > 0; 1", "syntax error"),
    ("import os", "syntax error"),
    ("", "non-empty"),
    ("(" * 300 + "G" + ")" * 300 + " > 0", ""),  # too deep or too long: any reason
    ("G > 0 and " * 120 + "True", "longer than"),
])
def test_forbidden_expressions_raise_rule_error(expr, reason):
    with pytest.raises(RuleError) as e:
        parse_rules(one(expr))
    msg = str(e.value)
    assert msg.startswith("rules[0] (line 1): 'when': "), msg
    assert reason in msg
    assert e.value.key == "when" and e.value.index == 0 and e.value.line == 1


def test_no_eval_the_source_is_only_parsed():
    # A condition that would have a side effect under eval() is rejected before
    # anything runs, and evaluating an accepted one only reads the state.
    with pytest.raises(RuleError):
        parse_rules(one("print('hi') or True"))
    s = state()
    before = repr(s)
    Condition('node("kitchen-1").c > 0 and G > 0').evaluate(s)
    assert repr(s) == before


def test_unknown_node_or_channel_is_false_not_an_error():
    s = state()
    assert Condition('node("garage").c > 0').evaluate(s) is False
    assert Condition('not node("garage").online').evaluate(s) is False  # the whole rule
    assert Condition('node("kitchen-1").channel(3).c >= 0').evaluate(s) is False
    assert Condition('node("garage").c > 0').evaluate({"t": 0, "nodes": {}}) is False
    assert Condition('node("garage").c > 0').evaluate({"t": 0}) is False


def test_missing_state_and_division_by_zero_are_eval_errors_counted_as_false():
    with pytest.raises(EvalError):
        Condition("G > 0").evaluate({"t": 0})
    with pytest.raises(EvalError):
        Condition("G / 0 > 1").evaluate(state())
    r = Rule("r", "G / (R - R) > 1", "websocket")
    assert r.check(state(0.0)) is False
    assert r.errors == 1 and "division by zero" in r.last_error


def test_short_circuit_skips_unreachable_parts():
    # `or` stops at the first true operand like Python: the missing node is never looked up.
    assert Condition('emerged or node("garage").c > 0').evaluate(state()) is True


# --- config validation with index and line ---------------------------------------------

MULTI = '''\
# hub config
[hub]
name = "home"

[[rules]]
name = "glow when one"             # line 5
when = "emerged and G >= 0.8"
for = 2.0
action = "display"
[rules.with]
node = "kitchen-1"

[[rules]]                          # line 13
name = "chime"
when = """G > 0.5"""
action = "speaker"
[rules.with]
seconds = 0.25

[mqtt]
host = "localhost"

  [[ rules ]]                      # line 23
name = "third"
when = "BAD"
action = "websocket"
'''


def test_multi_rule_config_parses_and_reports_the_right_line():
    good = MULTI.replace('"BAD"', '"surprise > 1"')
    rules = parse_rules(good)
    assert [r.name for r in rules] == ["glow when one", "chime", "third"]
    assert [r.line for r in rules] == [5, 13, 23]
    r = rules[0]
    assert (r.hold, r.min_interval, r.edge, r.action) == (2.0, 0.0, True, "display")
    assert r.params == {"node": "kitchen-1", "output": "pixel", "i": 0}
    assert rules[1].params == {"seconds": 0.25, "play": True}
    assert r.last_fired is None and r.fired == 0
    assert rule_lines(good) == [5, 13, 23]

    with pytest.raises(RuleError, match=r"^rules\[2\] \(line 23\): 'when': unknown name 'BAD'"):
        parse_rules(MULTI)
    for bad, msg in [("__import__('os')", "__import__(...) is not allowed"),
                     ("lambda: 1", "lambda is not allowed"),
                     ("G.__class__", "attribute '__class__' is not allowed")]:
        with pytest.raises(RuleError) as e:
            parse_rules(MULTI.replace('"BAD"', repr(bad)))
        assert str(e.value).startswith("rules[2] (line 23): 'when': " + msg), str(e.value)
    with pytest.raises(RuleError, match=r"^rules\[1\] \(line 13\): 'when': "):
        parse_rules(good.replace('"""G > 0.5"""', '"""G >"""'))


def test_a_header_inside_a_multiline_string_is_not_counted():
    text = ('[hub]\nnote = """\n[[rules]]\n"""\n\n[[rules]]\nname = "a"\nwhen = "1 > 2"\n'
            'action = "websocket"\nextra = 1\n')
    assert rule_lines(text) == [6]
    with pytest.raises(RuleError, match=r"^rules\[0\] \(line 6\): 'extra': unknown key"):
        parse_rules(text)


def test_inline_rules_array_points_at_its_line():
    text = 'a = 1\nrules = [{name = "a", when = "G > 0", action = "nope"}]\n'
    with pytest.raises(RuleError, match=r"^rules\[0\] \(line 2\): 'action': unknown action"):
        parse_rules(text)


@pytest.mark.parametrize("body, key, reason", [
    ('name = "a"\nwhen = "G > 0"\naction = "websocket"\ncolour = 1', "colour", "unknown key"),
    ('when = "G > 0"\naction = "websocket"', "name", "required"),
    ('name = "a"\naction = "websocket"', "when", "required"),
    ('name = "a"\nwhen = "G > 0"', "action", "required"),
    ('name = ""\nwhen = "G > 0"\naction = "websocket"', "name", "non-empty string"),
    ('name = 3\nwhen = "G > 0"\naction = "websocket"', "name", "non-empty string"),
    ('name = "a"\nwhen = 1\naction = "websocket"', "when", "non-empty string"),
    ('name = "a"\nwhen = "G > 0"\naction = "email"', "action", "unknown action 'email'"),
    ('name = "a"\nwhen = "G > 0"\naction = "websocket"\nfor = "2"', "for", "number >= 0"),
    ('name = "a"\nwhen = "G > 0"\naction = "websocket"\nfor = -1', "for", "number >= 0"),
    ('name = "a"\nwhen = "G > 0"\naction = "websocket"\nfor = nan', "for", "number >= 0"),
    ('name = "a"\nwhen = "G > 0"\naction = "websocket"\nfor = true', "for", "number >= 0"),
    ('name = "a"\nwhen = "G > 0"\naction = "websocket"\nmin_interval = inf', "min_interval",
     "number >= 0"),
    ('name = "a"\nwhen = "G > 0"\naction = "websocket"\nedge = 1', "edge", "true or false"),
    ('name = "a"\nwhen = "G > 0"\naction = "websocket"\nwith = 3', "with", "must be a table"),
    ('name = "a"\nwhen = "G > 0"\naction = "websocket"\n[rules.with]\nloud = 1',
     "with.loud", "unknown parameter"),
    ('name = "a"\nwhen = "G > 0"\naction = "mqtt"\n[rules.with]\ntopic = "a/#"',
     "with.topic", "'+', '#'"),
    ('name = "a"\nwhen = "G > 0"\naction = "mqtt"\n[rules.with]\nqos = 3', "with.qos",
     "integer in [0, 2]"),
    ('name = "a"\nwhen = "G > 0"\naction = "mqtt"\n[rules.with]\ntopic = "becomingone/k/cmd"\n'
     'retain = true', "with.retain", "must never be retained"),
    ('name = "a"\nwhen = "G > 0"\naction = "mqtt"\n[rules.with]\ntopic = "x/cmd/state"\n'
     'retain = true', "with.retain", "must never be retained"),
    ('name = "a"\nwhen = "G > 0"\naction = "mqtt"\n[rules.with]\ntopic = "x/event"\n'
     'retain = true', "with.retain", "only allowed on a state topic"),
    ('name = "a"\nwhen = "G > 0"\naction = "webhook"', "with.url", "non-empty string"),
    ('name = "a"\nwhen = "G > 0"\naction = "webhook"\n[rules.with]\nurl = "https://x.org/"',
     "with.url", "only http://"),
    ('name = "a"\nwhen = "G > 0"\naction = "webhook"\n[rules.with]\nurl = "ftp://x/"',
     "with.url", "only http://"),
    ('name = "a"\nwhen = "G > 0"\naction = "webhook"\n[rules.with]\nurl = "http://"',
     "with.url", "not a valid http URL"),
    ('name = "a"\nwhen = "G > 0"\naction = "webhook"\n[rules.with]\nurl = "http://u:p@h/"',
     "with.url", "no credentials"),
    ('name = "a"\nwhen = "G > 0"\naction = "webhook"\n[rules.with]\nurl = "http://h:99999/"',
     "with.url", "ort"),
    ('name = "a"\nwhen = "G > 0"\naction = "webhook"\n[rules.with]\nurl = "http://h/"\n'
     'timeout = 0', "with.timeout", "number in"),
    ('name = "a"\nwhen = "G > 0"\naction = "webhook"\n[rules.with]\nurl = "http://h/"\n'
     'retries = 1.5', "with.retries", "integer"),
    ('name = "a"\nwhen = "G > 0"\naction = "node"\n[rules.with]\nname = "led"', "with.node",
     "non-empty string"),
    ('name = "a"\nwhen = "G > 0"\naction = "node"\n[rules.with]\nnode = "k"', "with.name",
     "non-empty string"),
    ('name = "a"\nwhen = "G > 0"\naction = "node"\n[rules.with]\nnode = "k"\nname = "p"\n'
     'rgb = [1, 2]', "with.rgb", "[r, g, b]"),
    ('name = "a"\nwhen = "G > 0"\naction = "node"\n[rules.with]\nnode = "k"\nname = "p"\n'
     'rgb = [1, 2, 256]', "with.rgb", "[r, g, b]"),
    ('name = "a"\nwhen = "G > 0"\naction = "node"\n[rules.with]\nnode = "k"\nname = "l"\n'
     'on = 2', "with.on", "0, 1, true or false"),
    ('name = "a"\nwhen = "G > 0"\naction = "node"\n[rules.with]\nnode = "k"\nname = "l"\n'
     'on = 1\nduty = 5', "with.on", "do not mix"),
    ('name = "a"\nwhen = "G > 0"\naction = "node"\n[rules.with]\nnode = "k"\nname = "l"\n'
     'op = "reboot"', "with.op", "unknown parameter"),
    ('name = "a"\nwhen = "G > 0"\naction = "speaker"\n[rules.with]\nseconds = 0', "with.seconds",
     "number in"),
    ('name = "a"\nwhen = "G > 0"\naction = "speaker"\n[rules.with]\nseconds = 60',
     "with.seconds", "number in"),
    ('name = "a"\nwhen = "G > 0"\naction = "display"\n[rules.with]\noutput = ""', "with.output",
     "non-empty string"),
])
def test_bad_rules_name_index_line_key_and_reason(body, key, reason):
    text = f'[[rules]]\nname = "ok"\nwhen = "G > 0"\naction = "websocket"\n\n[[rules]]\n{body}\n'
    with pytest.raises(RuleError) as e:
        parse_rules(text)
    msg = str(e.value)
    assert msg.startswith(f"rules[1] (line 6): {key!r}: "), msg
    assert reason in msg, msg
    assert (e.value.index, e.value.line, e.value.key) == (1, 6, key)
    assert isinstance(e.value, ValueError)


def test_duplicate_names_and_bad_toml():
    text = one("G > 0") + "\n" + one("R > 0")
    with pytest.raises(RuleError, match=r"^rules\[1\] \(line 6\): 'name': duplicate rule name"):
        parse_rules(text)
    with pytest.raises(RuleError, match="invalid TOML.*line 2"):
        parse_rules('[[rules]]\nname = "a\n')
    with pytest.raises(RuleError, match="'rules' must be an array"):
        parse_rules('rules = 3\n')
    with pytest.raises(RuleError, match=r"^rules\[0\] \(line 1\): must be a table"):
        parse_rules('rules = [1]\n')  # an inline array: the line it starts on


def test_no_rules_is_fine_and_other_tables_are_ignored():
    assert parse_rules("") == []
    assert parse_rules('[hub]\nport = 8000\n[mqtt]\nhost = "x"\n') == []


# --- timing: for / edge / min_interval on synthetic time -------------------------------

def run(rule, seq):
    """seq: (t, G) pairs; returns the times the rule fired (condition: G >= 0.8)."""
    return [t for t, g in seq if rule.check(state(t, G=g))]


def ticks(t0, t1, g, dt=0.1):
    n = round((t1 - t0) / dt)
    return [(round(t0 + i * dt, 6), g) for i in range(n)]


def test_edge_fires_once_per_true_episode():
    r = Rule("r", "G >= 0.8", "websocket")
    fired = run(r, ticks(0, 1, 0.9) + ticks(1, 2, 0.5) + ticks(2, 3, 0.9))
    assert fired == [0.0, 2.0]
    assert r.fired == 2 and r.last_fired == 2.0


def test_for_requires_the_condition_to_hold_continuously():
    r = Rule("r", "G >= 0.8", "websocket", hold=2.0)
    # true for 1.5 s (too short), false once, then true for good: fires 2 s after t = 2.0
    seq = ticks(0, 1.5, 0.9) + [(1.5, 0.1)] + ticks(2.0, 5.0, 0.9)
    assert run(r, seq) == [4.0]
    assert r.fired == 1


def test_level_mode_fires_every_tick_while_true_rate_limited():
    r = Rule("r", "G >= 0.8", "websocket", edge=False)
    assert run(r, ticks(0, 0.5, 0.9)) == [0.0, 0.1, 0.2, 0.3, 0.4]
    r = Rule("r", "G >= 0.8", "websocket", edge=False, min_interval=1.0)
    assert run(r, ticks(0, 3.1, 0.9)) == [0.0, 1.0, 2.0, 3.0]


def test_min_interval_limits_edges_and_a_held_back_edge_fires_when_allowed():
    r = Rule("r", "G >= 0.8", "websocket", min_interval=10.0)
    seq = (ticks(0, 1, 0.9) + ticks(1, 2, 0.1)   # fires at 0
           + ticks(2, 3, 0.9) + ticks(3, 4, 0.1)  # edge at 2: within 10 s, episode ends: lost
           + ticks(4, 12, 0.9))                   # edge at 4, held back until t = 10
    assert run(r, seq) == [0.0, 10.0]
    assert r.fired == 2


def test_for_and_min_interval_together_in_level_mode():
    r = Rule("r", "G >= 0.8", "websocket", hold=1.0, min_interval=2.0, edge=False)
    assert run(r, ticks(0, 6.05, 0.9)) == [1.0, 3.0, 5.0]


def test_unknown_node_rule_never_fires_and_clock_step_back_is_tolerated():
    r = Rule("r", 'node("garage").online', "websocket")
    assert run(r, ticks(0, 1, 0.9)) == []
    assert r.errors == 0
    r = Rule("r", "G >= 0.8", "websocket", hold=1.0)
    assert run(r, [(100.0, 0.9), (50.0, 0.9), (50.5, 0.9), (51.0, 0.9)]) == [51.0]


def test_rule_accepts_a_source_string_and_repr():
    r = Rule("r", "G > 0", "websocket")
    assert isinstance(r.when, Condition) and "G > 0" in repr(r)
    with pytest.raises(ValueError):
        Rule("r", "G", "websocket")


def test_the_example_in_docs_rules_md_parses():
    import re

    doc = (ROOT / "docs" / "rules.md").read_text()
    toml = re.search(r"```toml\n(.*?)```", doc, re.S).group(1)
    rules = parse_rules(toml)
    assert [r.action for r in rules] == ["display", "mqtt", "node", "webhook", "speaker",
                                         "websocket"]
    assert rules[0].line == 3 and rules[0].hold == 2.0 and rules[0].min_interval == 10.0
