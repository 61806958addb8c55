"""Changing a rule at runtime: rules.parser.edit_rule (the config's checks),
Router.edit while the core ticks, and PATCH /api/rules/{name} on a running
Hub through FastAPI's TestClient (token, 4xx JSON errors that name the key,
the change taking effect on the next tick, counters kept)."""
import re

import pytest
from fastapi.testclient import TestClient
from support.mp import ROOT
from support.rigs import wait_for
from support.web import err

from becomingone import config, run
from becomingone.logs import Log
from becomingone.rules.parser import Rule, RuleError, edit_rule, parse_rules
from becomingone.rules.router import Router
from becomingone.web import create_app

TOKEN = "t0ken-for-the-rule-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CFG = f"""
[hub]
db = ":memory:"
[web]
token = "{TOKEN}"
[sim]
period = 20.0
[[rules]]
name = "often"
when = "G >= 0"
action = "websocket"
edge = false
[rules.with]
message = "tick"
[[rules]]
name = "never"
when = "G > 2"
action = "websocket"
"""


def _state(t, g=0.9):
    return {"t": t, "G": g, "R": 0.5, "psi": 0j, "emerged": False, "surprise": 0.0,
            "witness_event": False, "nodes": {}}


# -- rules.parser.edit_rule --------------------------------------------------------------

def test_edit_rule_applies_changes_with_the_configs_checks():
    (r,) = parse_rules('[[rules]]\nname = "r"\nwhen = "G > 0.5"\naction = "websocket"\n'
                       'for = 1.0\n[rules.with]\nmessage = "hi"\n')
    assert r.check(_state(0.0)) is False and r.check(_state(1.0)) is True  # held 1 s
    new = edit_rule(r, {"when": "G > 0.95", "for": 0, "min_interval": 5, "edge": False})
    assert (new.when.source, new.hold, new.min_interval, new.edge) == ("G > 0.95", 0, 5, False)
    assert new.params == {"message": "hi"} and new.name == "r" and new.action == "websocket"
    assert new.fired == 1 and new.last_fired == 1.0  # the counters carry over
    assert new.check(_state(7.0)) is False and new.check(_state(7.1, g=0.99)) is True
    off = edit_rule(new, {"enabled": False})
    assert not off.enabled and off.check(_state(10.0, g=0.99)) is False
    assert off.when.source == "G > 0.95"  # earlier edits stay
    on = edit_rule(off, {"enabled": True, "with": {"message": "bye"}})
    assert on.check(_state(20.0, g=0.99)) is True and on.params == {"message": "bye"}
    assert on.fired == 3


@pytest.mark.parametrize("changes, words", [
    ({"when": "BAD > 1"}, "rule 'r': 'when': unknown name 'BAD' at column 1"),
    ({"when": "G + 1"}, "rule 'r': 'when': "),
    ({"for": -1}, "rule 'r': 'for': must be a number >= 0"),
    ({"min_interval": float("nan")}, "rule 'r': 'min_interval': must be a number >= 0"),
    ({"edge": "yes"}, "rule 'r': 'edge': must be true or false"),
    ({"enabled": 1}, "rule 'r': 'enabled': must be true or false"),
    ({"with": {"mesage": "x"}}, "rule 'r': 'with.mesage': unknown parameter for websocket"),
    ({"with": {"message": 5}}, "rule 'r': 'with.message'"),
    ({"with": []}, "rule 'r': 'with': must be a table"),
    ({"action": "mqtt"}, "rule 'r': 'action': cannot be changed at runtime (changeable: enabled"),
    ({"name": "s"}, "rule 'r': 'name': cannot be changed at runtime"),
    ({"colour": 1}, "rule 'r': 'colour': unknown key (changeable: enabled, when"),
])
def test_a_bad_edit_names_the_key_and_changes_nothing(changes, words):
    r = Rule("r", "G > 0.5", "websocket", params={"message": ""})
    with pytest.raises(RuleError) as e:
        edit_rule(r, changes)
    assert str(e.value).startswith(words), str(e.value)
    assert r.when.source == "G > 0.5" and r.enabled


def test_every_rule_in_the_docs_edits_to_itself():
    """An empty edit re-parses each rule (every action's parameters) unchanged."""
    text = (ROOT / "docs" / "rules.md").read_text()
    toml = "\n".join(re.findall(r"```toml\n(.*?)```", text, re.S))
    rules = parse_rules(toml)
    assert len({r.action for r in rules}) == 6
    for r in rules:
        same = edit_rule(r, {})
        assert (same.when.source, same.hold, same.min_interval, same.edge, same.params,
                same.enabled) == (r.when.source, r.hold, r.min_interval, r.edge, r.params,
                                  r.enabled)


def test_enabled_false_in_the_config():
    (r,) = parse_rules('[[rules]]\nname = "r"\nwhen = "True"\naction = "websocket"\n'
                       "enabled = false\n")
    assert not r.enabled and r.check(_state(0.0)) is False
    assert edit_rule(r, {"enabled": True}).check(_state(1.0)) is True


def test_router_edit_swaps_the_rule_for_the_next_tick():
    class Sink:
        sent = 0

        def fire(self, rule_name, state, params):
            Sink.sent += 1

    router = Router([Rule("a", "G > 0", "websocket", edge=False)], {"websocket": Sink()})
    assert len(router.tick(_state(0.0))) == 1
    new = router.edit("a", {"enabled": False})
    assert router.rules[0] is new and router.tick(_state(1.0)) == []
    with pytest.raises(KeyError):
        router.edit("nope", {"enabled": True})
    with pytest.raises(RuleError):
        router.edit("a", {"when": "("})
    assert router.rules[0] is new  # a bad change leaves the rule as it was
    router.edit("a", {"enabled": True})
    assert len(router.tick(_state(2.0))) == 1 and router.rules[0].fired == 2


# -- PATCH /api/rules/{name} on a running hub ------------------------------------------------

@pytest.fixture(scope="module")
def hub():
    cfg = config.parse(CFG, "test.toml")
    h = run.build(cfg, Log(quiet=("hello", "collapse", "transport", "witness", "status", "ack",
                                  "output", "command", "emergence", "memory", "web", "rule")),
                  sim_nodes=3)
    h.start()
    assert wait_for(lambda: h.router is not None and h.router.rules[0].fired > 0, 10)
    yield h
    h.stop()


@pytest.fixture(scope="module")
def local(hub):
    with TestClient(create_app(hub, TOKEN), client=("127.0.0.1", 50000)) as c:
        yield c


def test_patch_needs_the_token(local):
    err(local.patch("/api/rules/never", json={"enabled": False}), 401)
    err(local.patch("/api/rules/never", json={"enabled": False},
                    headers={"Authorization": "Bearer wrong"}), 403)
    assert local.get("/api/rules/never").json()["enabled"] is True


def _ticks(hub, n):
    t = hub.counters["ticks"]
    assert wait_for(lambda: hub.counters["ticks"] >= t + n, 10)


def test_disable_and_enable_a_rule_from_the_api(local, hub):
    r = local.patch("/api/rules/often", json={"enabled": False}, headers=AUTH)
    assert r.status_code == 200 and r.json()["enabled"] is False and r.json()["name"] == "often"
    fired = local.get("/api/rules/often").json()["fired"]
    assert fired > 0
    _ticks(hub, 3)
    assert local.get("/api/rules/often").json()["fired"] == fired  # not evaluated now
    r = local.patch("/api/rules/often", json={"enabled": True}, headers=AUTH)
    assert r.json()["enabled"] is True
    assert wait_for(lambda: local.get("/api/rules/often").json()["fired"] > fired, 10)
    texts = [e["text"] for e in local.get("/api/events?kind=rule").json()["events"]]
    assert "rule often changed from the web: enabled=False" in texts


def test_edit_when_for_interval_edge_and_with(local, hub):
    body = {"when": "G > 2 or R > 2", "for": 1.5, "min_interval": 3, "edge": True,
            "with": {"message": "changed"}}
    got = local.patch("/api/rules/never", json=body, headers=AUTH).json()
    assert (got["when"], got["for"], got["min_interval"], got["edge"], got["with"]) == (
        "G > 2 or R > 2", 1.5, 3.0, True, {"message": "changed"})
    assert got["params"] == {"message": "changed"} and got["action"] == "websocket"
    assert local.get("/api/rules").json()["rules"][1]["when"] == "G > 2 or R > 2"
    # Make it fire: the new condition is used from the next tick on.
    local.patch("/api/rules/never", json={"when": "G >= 0", "for": 0}, headers=AUTH)
    assert wait_for(lambda: local.get("/api/rules/never").json()["fired"] >= 1, 10)
    assert any(r["rule"] == "never" for r in local.get("/api/outputs").json()["recent"])


@pytest.mark.parametrize("body, status, words", [
    ({"when": "BAD > 1"}, 422, "rule 'never': 'when': unknown name 'BAD'"),
    ({"when": "G"}, 422, "rule 'never': 'when': "),
    ({"with": {"colour": "red"}}, 422, "rule 'never': 'with.colour': unknown parameter"),
    ({"for": -1}, 422, "bad request: for: "),
    ({"for": True}, 422, "bad request: for"),
    ({"min_interval": "soon"}, 422, "bad request: min_interval"),
    ({"enabled": "yes"}, 422, "bad request: enabled"),
    ({"when": ""}, 422, "bad request: when"),
    ({"when": 3}, 422, "bad request: when"),
    ({"action": "mqtt"}, 422, "bad request: action: Extra inputs"),
    ({"name": "x"}, 422, "bad request: name: Extra inputs"),
    ({"hold": 1}, 422, "bad request: hold: Extra inputs"),  # the TOML's names only
    ({"params": {}}, 422, "bad request: params: Extra inputs"),
    ({}, 422, "nothing to change"),
    ({"enabled": None}, 422, "nothing to change"),
    ([1, 2], 422, "bad request"),
])
def test_bad_changes_are_4xx_json_and_change_nothing(local, body, status, words):
    before = local.get("/api/rules/never").json()
    assert err(local.patch("/api/rules/never", json=body, headers=AUTH), status).startswith(
        words), body
    after = local.get("/api/rules/never").json()
    assert {k: after[k] for k in ("when", "for", "min_interval", "edge", "enabled", "with")} == \
        {k: before[k] for k in ("when", "for", "min_interval", "edge", "enabled", "with")}


def test_patch_unknown_rule_and_bad_json(local, hub):
    assert "no rule named 'nope'" in err(
        local.patch("/api/rules/nope", json={"enabled": False}, headers=AUTH), 404)
    r = local.patch("/api/rules/never", content=b"{oops",
                    headers={**AUTH, "Content-Type": "application/json"})
    assert "bad request" in err(r, 422)
    assert local.get("/api/health").json()["ok"]
