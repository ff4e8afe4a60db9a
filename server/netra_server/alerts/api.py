"""The alert routes (JSON; errors answer ``{"error": {"message": ...}}`` with 400/403/404).

- ``GET /api/alerts/rules`` — the project's rules, each with its current ``state``
- ``POST /api/alerts/rules`` — create (201); the body is :class:`~netra_server.alerts.model.RuleInput`
- ``GET /api/alerts/rules/{rule_id}``
- ``PUT /api/alerts/rules/{rule_id}`` — replace; ``PATCH`` — change only the given fields
- ``DELETE /api/alerts/rules/{rule_id}``

A stored rule that does not load any more (e.g. a threshold of ``inf`` that an older version accepted
and stored as null) never breaks the others: ``GET /api/alerts/rules`` lists it under ``unreadable``
with the reason, its ``GET``/``PATCH`` answer 409 saying so, and ``PUT`` (a whole valid rule) or
``DELETE`` fix it.

Contact-point secrets are write-only: the path and query of webhook and Slack URLs, webhook header
values and the SMTP password read as ``********`` for every key. ``PUT``/``PATCH`` may send them back
masked: a masked value keeps the stored secret of the same contact point.
- ``GET /api/alerts/history?ruleId=&limit=`` — firing/resolved events, newest first, with deliveries
- ``POST /api/alerts/evaluate`` — evaluate every enabled rule now (admin); returns the new events

Reading needs a read or admin key; a key limited to a tenant sees only the rules filtered on that
tenant (``tenant_id = <its tenant>``). Writing needs an admin key.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import ValidationError

from netra_server.app import ApiError, ServerState, admin_auth, read_auth, state_of
from netra_server.auth import AuthContext
from netra_server.responses import ExactJSONResponse
from netra_server.wire import errors

from . import wire
from .evaluator import AlertEvaluator
from .model import (
    AlertRule,
    RuleError,
    RuleInput,
    describe_rule,
    mask_contact,
    redact_urls,
    restore_secrets,
    validation_message,
)
from .state import AlertEvent, RuleState
from .storage import AlertStorage, BrokenRule, Delivery

__all__ = ["evaluator_of", "router", "rule_json", "visible"]

router = APIRouter(prefix="/api/alerts", tags=["alerts"], default_response_class=ExactJSONResponse)

Auth = Annotated[AuthContext, Depends(read_auth)]
Admin = Annotated[AuthContext, Depends(admin_auth)]
RuleId = Annotated[str, Path(max_length=64)]

_NO_RULE = "No such alert rule in this project (or not visible to this key's tenant)"
#: The rule bodies are read by the routes themselves (for messages that say what to fix), so their
#: schema is given here; ``RuleInput`` is added to the components by :func:`netra_server.app.create_app`.
_RULE_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": {"$ref": "#/components/schemas/RuleInput"}}}}}
_PATCH_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": {"type": "object", "description": "Some fields of RuleInput; the others keep their values"}}}}}


def evaluator_of(request: Request) -> AlertEvaluator | None:
    """The evaluator running in this process (None with ``--no-alerts``)."""
    ev: AlertEvaluator | None = getattr(request.app.state, "netra_alerts", None)
    return ev


def visible(ctx: AuthContext, rule: AlertRule) -> bool:
    """Whether the caller may see ``rule``: same project, and the key's tenant if it is limited to one."""
    if rule.project_id != ctx.project_id:
        return False
    return ctx.tenant_id is None or rule.tenant_filter() == ctx.tenant_id


def parse_rule(body: Any, existing: RuleInput | None = None) -> RuleInput:
    """Validate a rule body (masked secrets restored from ``existing``); raises ApiError(400) saying
    what is wrong."""
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object (an alert rule)")
    try:
        return restore_secrets(RuleInput.model_validate(body), existing)
    except ValidationError as exc:
        raise ApiError(400, f"invalid alert rule: {validation_message(exc)}") from None
    except RuleError as exc:
        raise ApiError(400, f"invalid alert rule: {exc}") from None


def rule_json(rule: AlertRule, state: RuleState | None) -> dict[str, Any]:
    out = rule.model_dump(mode="json")
    out["description"] = describe_rule(rule)
    out["state"] = {
        "state": state.state if state else "ok",
        "since": state.since if state and state.since else None,
        "last_value": state.last_value if state else None,
        "last_evaluated": state.last_evaluated if state and state.last_evaluated else None,
    }
    out["contact_points"] = [mask_contact(cp) for cp in out["contact_points"]]  # secrets are write-only
    return out


def broken_json(rule: BrokenRule) -> dict[str, Any]:
    return {"id": rule.id, "error": rule.error, "created_at": rule.created_at, "updated_at": rule.updated_at,
            "fix": f"DELETE /api/alerts/rules/{rule.id} (or `netra alerts delete {rule.id}`), or PUT a whole rule"}


def _broken_message(rule: BrokenRule) -> str:
    return (f"alert rule {rule.id} is stored but does not load ({rule.error}); delete it "
            f"(DELETE /api/alerts/rules/{rule.id} or `netra alerts delete {rule.id}`) or PUT a whole rule")


def event_json(event: AlertEvent, deliveries: list[Delivery]) -> dict[str, Any]:
    return {
        "id": event.id, "rule_id": event.rule_id, "rule_name": event.rule_name, "kind": event.kind,
        "at": event.at, "value": event.value, "threshold": event.threshold, "episode_id": event.episode_id or None,
        "tenant_id": event.tenant_id or None, "message": event.message,
        "deliveries": [
            {"contact": redact_urls(d.contact), "ok": d.ok, "attempts": d.attempts,
             "last_error": redact_urls(d.last_error) or None,
             "last_at": d.last_at}
            for d in deliveries
            if d.event_id == event.id
        ],
    }


async def _body(request: Request) -> Any:
    raw = await request.body()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"the body is not JSON ({exc}); send an alert rule as a JSON object") from None


async def _any_rule_or_404(state: ServerState, ctx: AuthContext, rule_id: str) -> AlertRule | BrokenRule:
    """The rule, or the stored rule that does not load (seen only by keys not limited to a tenant)."""
    storage = AlertStorage(state.store)
    rule = await state.store.run(storage.get_any_rule, ctx.project_id, rule_id)
    if rule is None or not (visible(ctx, rule) if isinstance(rule, AlertRule) else ctx.tenant_id is None):
        raise ApiError(404, f"no alert rule {rule_id!r} in this project; GET /api/alerts/rules lists them")
    return rule


async def _rule_or_404(state: ServerState, ctx: AuthContext, rule_id: str) -> AlertRule:
    rule = await _any_rule_or_404(state, ctx, rule_id)
    if isinstance(rule, BrokenRule):
        raise ApiError(409, _broken_message(rule))
    return rule


async def _states(request: Request, state: ServerState, project_id: str) -> dict[str, RuleState]:
    stored = await state.store.run(AlertStorage(state.store).states, project_id)
    ev = evaluator_of(request)
    if ev is not None:  # the in-process evaluator knows the latest measured values
        stored.update(ev.known_states())
    return stored


@router.get("/rules", summary="List alert rules",
            response_model=wire.AlertRulesResponse, responses=errors(401, 403, 503))
async def list_rules(request: Request, ctx: Auth) -> ExactJSONResponse:
    state = state_of(request)
    rules, broken = await state.store.run(AlertStorage(state.store).load_rules, ctx.project_id)
    states = await _states(request, state, ctx.project_id)
    return ExactJSONResponse({
        "data": [rule_json(r, states.get(r.id)) for r in rules if visible(ctx, r)],
        "unreadable": [broken_json(b) for b in broken] if ctx.tenant_id is None else [],
    })


@router.post("/rules", summary="Create an alert rule (admin)", status_code=201,
             response_model=wire.AlertRuleResponse, responses=errors(400, 401, 403, 503), openapi_extra=_RULE_BODY)
async def create_rule(request: Request, ctx: Admin) -> ExactJSONResponse:
    state = state_of(request)
    rule = parse_rule(await _body(request))
    stored = await state.store.run(AlertStorage(state.store).create_rule, ctx.project_id, rule)
    return ExactJSONResponse({"data": rule_json(stored, None)}, status_code=201)


_BROKEN = "The rule is stored but does not load; the message says why and how to fix it"


@router.get("/rules/{rule_id}", summary="One alert rule",
            response_model=wire.AlertRuleResponse,
            responses=errors(400, 401, 403, 404, 409, 503, e404=_NO_RULE, e409=_BROKEN))
async def get_rule(request: Request, ctx: Auth, rule_id: RuleId) -> ExactJSONResponse:
    state = state_of(request)
    rule = await _rule_or_404(state, ctx, rule_id)
    states = await _states(request, state, ctx.project_id)
    return ExactJSONResponse({"data": rule_json(rule, states.get(rule.id))})


@router.put("/rules/{rule_id}", summary="Replace an alert rule (admin)",
            response_model=wire.AlertRuleResponse, responses=errors(400, 401, 403, 404, 503, e404=_NO_RULE),
            openapi_extra=_RULE_BODY)
async def replace_rule(request: Request, ctx: Admin, rule_id: RuleId) -> ExactJSONResponse:
    state = state_of(request)
    found = await _any_rule_or_404(state, ctx, rule_id)
    if isinstance(found, BrokenRule):  # a whole valid rule replaces one that does not load
        existing = AlertRule.model_construct(
            id=found.id, project_id=found.project_id, created_at=found.created_at, updated_at=found.updated_at,
            owner_tenant=found.owner_tenant, contact_points=[],
        )
    else:
        existing = found
    rule = parse_rule(await _body(request), existing)
    updated = await state.store.run(AlertStorage(state.store).update_rule, existing, rule)
    return ExactJSONResponse({"data": rule_json(updated, None)})


@router.patch("/rules/{rule_id}", summary="Change some fields of an alert rule (admin)",
              response_model=wire.AlertRuleResponse,
              responses=errors(400, 401, 403, 404, 409, 503, e404=_NO_RULE, e409=_BROKEN), openapi_extra=_PATCH_BODY)
async def patch_rule(request: Request, ctx: Admin, rule_id: RuleId) -> ExactJSONResponse:
    state = state_of(request)
    existing = await _rule_or_404(state, ctx, rule_id)
    changes = await _body(request)
    if not isinstance(changes, dict):
        raise ApiError(400, "the body must be a JSON object of the fields to change")
    current = existing.model_dump(mode="json", include=set(RuleInput.model_fields))
    if "metric" in changes and "aggregation" not in changes:
        current.pop("aggregation", None)  # let a metric change pick its own aggregation
    rule = parse_rule({**current, **changes}, existing)
    updated = await state.store.run(AlertStorage(state.store).update_rule, existing, rule)
    return ExactJSONResponse({"data": rule_json(updated, None)})


@router.delete("/rules/{rule_id}", summary="Delete an alert rule (admin); its history is kept",
               response_model=wire.DeletedRuleResponse,
               responses=errors(400, 401, 403, 404, 503, e404=_NO_RULE))
async def delete_rule(request: Request, ctx: Admin, rule_id: RuleId) -> ExactJSONResponse:
    state = state_of(request)
    rule = await _any_rule_or_404(state, ctx, rule_id)
    await state.store.run(AlertStorage(state.store).delete_rule, rule)
    return ExactJSONResponse({"data": {"id": rule.id, "deleted": True}})


@router.get("/history", summary="Alert history: firing and resolved events, newest first",
            response_model=wire.AlertEventsResponse,
            responses=errors(400, 401, 403, 503))
async def history(
    request: Request,
    ctx: Auth,
    rule_id: Annotated[str | None, Query(alias="ruleId", max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> ExactJSONResponse:
    state = state_of(request)
    storage = AlertStorage(state.store)
    rule_ids: list[str] | None = None
    if ctx.tenant_id is not None:  # only the events of the rules this key can see
        rules = await state.store.run(storage.list_rules, ctx.project_id)
        rule_ids = [r.id for r in rules if visible(ctx, r)]
    events = await state.store.run(storage.events, ctx.project_id, rule_id=rule_id, rule_ids=rule_ids, limit=limit)
    ids = sorted({e.rule_id for e in events})
    deliveries = await state.store.run(storage.deliveries, ctx.project_id, rule_ids=ids) if ids else []
    return ExactJSONResponse({"data": [event_json(e, deliveries) for e in events]})


@router.post("/evaluate", summary="Evaluate every enabled rule now (admin); returns the new events",
             response_model=wire.AlertEventsResponse,
             responses=errors(401, 403, 409, 503, e409="Alert evaluation is off in this process (--no-alerts)"))
async def evaluate_now(request: Request, ctx: Admin) -> ExactJSONResponse:
    ev = evaluator_of(request)
    if ev is None:
        raise ApiError(409, "alert evaluation is off in this server process (started with --no-alerts)")
    events = await ev.run_due(force=True)
    return ExactJSONResponse({"data": [event_json(e, []) for e in events if e.project_id == ctx.project_id]})

