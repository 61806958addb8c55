"""GET /api/rules, /api/rules/{name}, /api/outputs; PATCH /api/rules/{name}
(change a rule at runtime); POST /api/rules/{name}/fire."""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

from becomingone.rules.parser import RuleError
from becomingone.web import views
from becomingone.web.deps import READ, WRITE, HubDep
from becomingone.web.redact import redact_text, restore

router = APIRouter(tags=["outputs"])


def _rule(rule: Any) -> dict:
    return {"name": rule.name, "when": rule.when.source,
            "action": rule.action, "params": views.jsonable(rule.params),
            "for": rule.hold, "min_interval": rule.min_interval, "edge": rule.edge,
            "enabled": rule.enabled, "with": views.jsonable(rule.to_table().get("with", {})),
            "fired": rule.fired, "last_fired": views.num(rule.last_fired),
            "errors": rule.errors, "last_error": rule.last_error, "line": rule.line}


def _router(hub: Any) -> Any:
    if hub.router is None:
        raise HTTPException(503, "the hub has not started its outputs yet")
    return hub.router


def _find(hub: Any, name: str) -> Any:
    for r in _router(hub).rules:
        if r.name == name:
            return r
    raise HTTPException(404, f"no rule named {name!r} (GET /api/rules lists them)")


@router.get("/rules", dependencies=READ, summary="The output rules and when each last fired")
def list_rules(hub: HubDep) -> dict:
    return {"rules": [_rule(r) for r in _router(hub).rules]}


@router.get("/rules/{name}", dependencies=READ, summary="One rule")
def get_rule(hub: HubDep, name: str) -> dict:
    return _rule(_find(hub, name))


@router.get("/outputs", dependencies=READ,
            summary="Output adapters (sent/failed/queued) and the recent firings")
def list_outputs(hub: HubDep) -> dict:
    r = _router(hub)
    st = r.stats()
    return {"adapters": views.jsonable(st["adapters"]), "rules": views.jsonable(st["rules"]),
            "recent": views.jsonable(r.firings()[::-1])}


Seconds = Annotated[StrictInt | StrictFloat, Field(ge=0, le=1e9)]


class RuleChange(BaseModel):
    """Any of these; the rest of the rule stays.  Checked like the config's
    [[rules]] (docs/rules.md).  Lasts until the hub restarts."""
    model_config = ConfigDict(extra="forbid")
    enabled: StrictBool | None = None
    when: StrictStr | None = Field(None, min_length=1, max_length=1000,
                                   examples=["emerged and G > 0.8"])
    hold: Seconds | None = Field(None, alias="for", description="seconds the condition must hold")
    min_interval: Seconds | None = None
    edge: StrictBool | None = None
    params: dict[str, Any] | None = Field(None, alias="with",
                                          description="the action's parameters (all of them)")


@router.patch("/rules/{name}", dependencies=WRITE,
              summary="Change a rule now (enable/disable, when, for, min_interval, edge, with)")
def change_rule(hub: HubDep, name: str, change: RuleChange) -> dict:
    current = _find(hub, name)
    changes = change.model_dump(by_alias=True, exclude_none=True)
    if "with" in changes:  # values sent back as shown (*** for a secret) keep the secret
        changes["with"] = restore(changes["with"], current.to_table().get("with", {}))
    if not changes:
        raise HTTPException(422, "nothing to change: give any of enabled, when, for, "
                                 "min_interval, edge, with")
    try:
        rule = hub.router.edit(name, changes)
    except KeyError:
        raise HTTPException(404, f"no rule named {name!r} (GET /api/rules lists them)") from None
    except RuleError as e:
        raise HTTPException(422, str(e)) from None
    what = redact_text(", ".join(f"{k}={v!r}" for k, v in changes.items()))  # (the log too)
    what = what if len(what) <= 200 else what[:200] + "..."
    hub.event("rule", f"rule {name} changed from the web: {what}")
    return _rule(rule)


@router.post("/rules/{name}/fire", dependencies=WRITE,
             summary="Fire a rule's output now, whatever its condition (a test button)")
def fire(hub: HubDep, name: str) -> dict:
    rule = _find(hub, name)
    adapter = hub.router.adapters[rule.action]
    if hub.mesh_state is None:
        raise HTTPException(503, "the hub has not ticked yet: no STATE to fire with")
    state = hub.state(hub.clock())
    try:
        adapter.fire(rule.name, state, rule.params)
    except Exception as e:  # noqa: BLE001 - the adapter's failure is the answer
        adapter.count("failed", error=f"{rule.name}: {e}")
        hub.event("output", f"rule {rule.name} -> {rule.action} (from the web) failed: {e}")
        raise HTTPException(502, f"rule {name!r}: {rule.action} failed: {e}") from None
    hub.event("output", f"rule {rule.name} -> {rule.action} (fired from the web)")
    return {"rule": name, "action": rule.action, "ok": True}
