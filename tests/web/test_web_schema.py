"""Schemathesis against the hub's OpenAPI spec: requests generated from the
schema (valid and, with negative mode, invalid ones) to every operation of a
running Hub (sim mesh, an input, two rules), with the token.  Nothing may be
a 5xx, every error is JSON `{"error": "..."}`, and the hub is healthy after."""
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from support.rigs import wait_for

from becomingone import config, run
from becomingone.logs import Log
from becomingone.web import create_app

TOKEN = "t0ken-for-the-schema-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CFG = f"""
[hub]
db = ":memory:"
[web]
token = "{TOKEN}"
[sim]
period = 20.0
[[inputs]]
name = "door"
[[rules]]
name = "often"
when = "G >= 0"
action = "websocket"
edge = false
[[rules]]
name = "never"
when = "G > 2"
action = "websocket"
"""


# The schema is read at import (schemathesis.pytest.from_fixture does not
# work with pytest 9): the Hub is built now and started by the fixture.
HUB = run.build(config.parse(CFG, "test.toml"),
                Log(quiet=("hello", "collapse", "transport", "witness", "status", "ack",
                           "output", "command", "emergence", "memory", "web", "rule", "input")),
                sim_nodes=4)
APP = create_app(HUB, TOKEN)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.fixture(scope="module")
def hub():
    HUB.start()
    assert wait_for(lambda: HUB.mesh_state is not None and len(HUB.nodes) >= 4, 10)
    yield HUB
    HUB.stop()


def error_is_json(ctx, response, case):
    """A 4xx/5xx says what is wrong, as JSON."""
    if response.status_code >= 400:
        body = response.json()
        assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"], (
            response.status_code, response.text)


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_generated_requests_never_crash_the_hub(case, hub):
    case.call_and_validate(headers=AUTH, checks=[not_a_server_error, error_is_json])


def test_the_hub_is_healthy_after_the_generated_requests(hub):
    from fastapi.testclient import TestClient

    ticks = hub.counters["ticks"]
    assert wait_for(lambda: hub.counters["ticks"] > ticks + 2, 5)
    with TestClient(APP, client=("127.0.0.1", 1)) as c:
        assert c.get("/api/health").json()["ok"]
