"""Alert tables and every SQL statement on them (same dialect on chDB and ClickHouse); the metric
query a rule evaluates over the spans is in :mod:`.metric`.

Tables (registered as migration ``alerts-0001``):

``netra_alert_rules``
    One row per rule version (``ReplacingMergeTree(version)``); the rule's JSON in ``body``; a delete is
    a newer version with ``deleted = 1``.
``netra_alert_state``
    The state machine per rule (``ok``/``firing``), written on each transition only.
``netra_alert_events``
    History: one row per ``firing`` or ``resolved`` event, kept.
``netra_alert_deliveries``
    One row per notification attempt (event × contact point), so failed ones are retried by the
    next evaluation and the page shows what was sent.

All of it lives in the store, so several server processes share rules and history (see
``docs/dashboard.md`` for which process evaluates).
"""

from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError

from netra_server.schema import register_migration
from netra_server.store import Store

from .metric import metric_sql
from .model import AlertRule, ContactPoint, RuleInput, validation_message
from .state import AlertEvent, RuleState

__all__ = ["AlertStorage", "BrokenRule", "Delivery", "contact_key"]

RULES_DDL = """
CREATE TABLE IF NOT EXISTS netra_alert_rules (
    project_id String,
    rule_id String,
    body String,
    owner_tenant String,
    created_at Float64,
    updated_at Float64,
    deleted UInt8,
    version UInt64
) ENGINE = ReplacingMergeTree(version) ORDER BY (project_id, rule_id)
"""

STATE_DDL = """
CREATE TABLE IF NOT EXISTS netra_alert_state (
    project_id String,
    rule_id String,
    state LowCardinality(String),
    since Float64,
    last_value Nullable(Float64),
    last_evaluated Float64,
    episode_id String,
    version UInt64
) ENGINE = ReplacingMergeTree(version) ORDER BY (project_id, rule_id)
"""

EVENTS_DDL = """
CREATE TABLE IF NOT EXISTS netra_alert_events (
    project_id String,
    rule_id String,
    event_id String,
    rule_name String,
    kind LowCardinality(String),
    at Float64,
    value Nullable(Float64),
    threshold Float64,
    episode_id String,
    tenant_id String,
    message String
) ENGINE = ReplacingMergeTree ORDER BY (project_id, rule_id, at, event_id)
"""

DELIVERIES_DDL = """
CREATE TABLE IF NOT EXISTS netra_alert_deliveries (
    project_id String,
    rule_id String,
    event_id String,
    contact_key String,
    contact String,
    ok UInt8,
    error String,
    at Float64
) ENGINE = MergeTree ORDER BY (project_id, rule_id, event_id, at)
"""

register_migration("alerts-0001", [RULES_DDL, STATE_DDL, EVENTS_DDL, DELIVERIES_DDL])

SQL_RULES = """
SELECT rule_id, project_id, body, owner_tenant, created_at, updated_at
FROM netra_alert_rules FINAL
WHERE deleted = 0 {where}
ORDER BY created_at, rule_id
"""
SQL_PUT_RULE = """
INSERT INTO netra_alert_rules (project_id, rule_id, body, owner_tenant, created_at, updated_at, deleted, version)
VALUES ({p:String}, {r:String}, {b:String}, {o:String}, {c:Float64}, {u:Float64}, {d:UInt8}, {v:UInt64})
"""
SQL_STATES = """
SELECT project_id, rule_id, state, since, last_value, last_evaluated, episode_id
FROM netra_alert_state FINAL {where}
"""
SQL_EVENTS = """
SELECT project_id, rule_id, event_id, rule_name, kind, at, value, threshold, episode_id, tenant_id, message
FROM netra_alert_events FINAL
WHERE project_id = {{p:String}} {where}
ORDER BY at DESC, event_id
LIMIT {{limit:UInt32}}
"""
SQL_DELIVERIES = """
SELECT event_id, contact_key, any(contact) AS contact, max(ok) AS ok, count() AS attempts,
       argMax(error, at) AS last_error, max(at) AS last_at
FROM netra_alert_deliveries
WHERE project_id = {{p:String}} {where}
GROUP BY event_id, contact_key
ORDER BY event_id, contact_key
"""

#: Failed notifications are retried on each evaluation for this long, at most this many times.
RETRY_SECONDS = 24 * 3600
MAX_ATTEMPTS = 20


def contact_key(contact: ContactPoint) -> str:
    """A stable id of a contact point (so an edited rule's unchanged contacts are not told twice)."""
    return hashlib.sha256(orjson.dumps(contact.model_dump(), option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


@dataclass(frozen=True)
class BrokenRule:
    """A stored rule that does not load (its body is not a valid rule any more, e.g. a threshold of
    ``inf`` stored as null by an older version). It is skipped by the evaluator and the pages, listed
    apart by the API, and can be deleted like any rule."""

    id: str
    project_id: str
    error: str
    body: str
    owner_tenant: str | None
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class Delivery:
    event_id: str
    contact_key: str
    contact: str
    ok: bool
    attempts: int
    last_error: str
    last_at: float


class AlertStorage:
    """Rules, state, history and deliveries in the store. Synchronous; call through ``store.run``."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- rules -------------------------------------------------------------------------------------

    def list_rules(self, project_id: str | None = None) -> list[AlertRule]:
        """The rules that load (of one project, or of all); see :meth:`load_rules` for the others."""
        return self.load_rules(project_id)[0]

    def load_rules(self, project_id: str | None = None) -> tuple[list[AlertRule], list[BrokenRule]]:
        """The rules, and apart the stored rules that do not load (never an exception for one row)."""
        if project_id is None:
            rows = self.store.query(SQL_RULES.format(where=""))
        else:
            rows = self.store.query(SQL_RULES.format(where="AND project_id = {p:String}"), {"p": project_id})
        rules: list[AlertRule] = []
        broken: list[BrokenRule] = []
        for r in rows:
            rule = _rule(r)
            (broken if isinstance(rule, BrokenRule) else rules).append(rule)  # type: ignore[arg-type]
        return rules, broken

    def get_rule(self, project_id: str, rule_id: str) -> AlertRule | None:
        """The rule (None when there is none, or it does not load: see :meth:`get_any_rule`)."""
        rule = self.get_any_rule(project_id, rule_id)
        return rule if isinstance(rule, AlertRule) else None

    def get_any_rule(self, project_id: str, rule_id: str) -> AlertRule | BrokenRule | None:
        rows = self.store.query(
            SQL_RULES.format(where="AND project_id = {p:String} AND rule_id = {r:String}"),
            {"p": project_id, "r": rule_id},
        )
        return _rule(rows[0]) if rows else None

    def create_rule(self, project_id: str, rule: RuleInput, *, owner_tenant: str | None = None) -> AlertRule:
        now = time.time()
        stored = AlertRule(
            **rule.model_dump(),
            id="rul_" + uuid.uuid4().hex[:16],
            project_id=project_id,
            created_at=now,
            updated_at=now,
            owner_tenant=owner_tenant,
        )
        self._put(stored, deleted=False)
        return stored

    def update_rule(self, existing: AlertRule, rule: RuleInput) -> AlertRule:
        updated = AlertRule(
            **rule.model_dump(),
            id=existing.id,
            project_id=existing.project_id,
            created_at=existing.created_at,
            updated_at=time.time(),
            owner_tenant=existing.owner_tenant,
        )
        self._put(updated, deleted=False)
        return updated

    def delete_rule(self, rule: AlertRule | BrokenRule) -> None:
        if isinstance(rule, BrokenRule):  # its body as stored: it does not load
            self._put_row(rule.project_id, rule.id, rule.body, rule.owner_tenant, rule.created_at,
                          time.time(), deleted=True)
        else:
            self._put(rule, deleted=True)

    def _put(self, rule: AlertRule, *, deleted: bool) -> None:
        body = RuleInput.model_validate(
            rule.model_dump(include=set(RuleInput.model_fields))
        ).model_dump_json()
        self._put_row(rule.project_id, rule.id, body, rule.owner_tenant, rule.created_at, rule.updated_at,
                      deleted=deleted)

    def _put_row(
        self, project_id: str, rule_id: str, body: str, owner_tenant: str | None, created_at: float,
        updated_at: float, *, deleted: bool,
    ) -> None:
        self.store.command(
            SQL_PUT_RULE,
            {
                "p": project_id,
                "r": rule_id,
                "b": body,
                "o": owner_tenant or "",
                "c": created_at,
                "u": updated_at,
                "d": int(deleted),
                "v": time.time_ns(),
            },
        )

    # -- state ---------------------------------------------------------------------------------------

    def states(self, project_id: str | None = None) -> dict[str, RuleState]:
        if project_id is None:
            rows = self.store.query(SQL_STATES.format(where=""))
        else:
            rows = self.store.query(
                SQL_STATES.format(where="WHERE project_id = {p:String}"), {"p": project_id}
            )
        return {
            r["rule_id"]: RuleState(
                rule_id=r["rule_id"],
                state=r["state"],
                since=float(r["since"]),
                last_value=None if r["last_value"] is None else float(r["last_value"]),
                last_evaluated=float(r["last_evaluated"]),
                episode_id=r["episode_id"],
            )
            for r in rows
        }

    def put_state(self, project_id: str, state: RuleState) -> None:
        self.store.insert_json_rows(
            "netra_alert_state",
            orjson.dumps(
                {
                    "project_id": project_id,
                    "rule_id": state.rule_id,
                    "state": state.state,
                    "since": state.since,
                    "last_value": state.last_value,
                    "last_evaluated": state.last_evaluated,
                    "episode_id": state.episode_id,
                    "version": time.time_ns(),
                }
            ),
        )

    # -- history -------------------------------------------------------------------------------------

    def add_event(self, event: AlertEvent) -> None:
        self.store.insert_json_rows(
            "netra_alert_events",
            orjson.dumps(
                {
                    "project_id": event.project_id,
                    "rule_id": event.rule_id,
                    "event_id": event.id,
                    "rule_name": event.rule_name,
                    "kind": event.kind,
                    "at": event.at,
                    "value": event.value,
                    "threshold": event.threshold,
                    "episode_id": event.episode_id,
                    "tenant_id": event.tenant_id,
                    "message": event.message,
                }
            ),
        )

    def events(
        self,
        project_id: str,
        *,
        rule_id: str | None = None,
        rule_ids: list[str] | None = None,
        since: float | None = None,
        limit: int = 200,
    ) -> list[AlertEvent]:
        where, params = _filters(rule_id=rule_id, rule_ids=rule_ids, since=since)
        params.update({"p": project_id, "limit": limit})
        rows = self.store.query(SQL_EVENTS.format(where=where), params)
        return [
            AlertEvent(
                id=r["event_id"],
                rule_id=r["rule_id"],
                project_id=r["project_id"],
                rule_name=r["rule_name"],
                kind=r["kind"],
                at=float(r["at"]),
                value=None if r["value"] is None else float(r["value"]),
                threshold=float(r["threshold"]),
                episode_id=r["episode_id"],
                tenant_id=r["tenant_id"],
                message=r["message"],
            )
            for r in rows
        ]

    def add_delivery(
        self, event: AlertEvent, key: str, contact: str, *, ok: bool, error: str = "", at: float | None = None
    ) -> None:
        self.store.insert_json_rows(
            "netra_alert_deliveries",
            orjson.dumps(
                {
                    "project_id": event.project_id,
                    "rule_id": event.rule_id,
                    "event_id": event.id,
                    "contact_key": key,
                    "contact": contact,
                    "ok": int(ok),
                    "error": error[:2000],
                    "at": time.time() if at is None else at,
                }
            ),
        )

    def deliveries(
        self,
        project_id: str,
        *,
        rule_id: str | None = None,
        rule_ids: list[str] | None = None,
        since: float | None = None,
    ) -> list[Delivery]:
        where, params = _filters(rule_id=rule_id, rule_ids=rule_ids, since=since)
        params["p"] = project_id
        return [
            Delivery(
                event_id=r["event_id"],
                contact_key=r["contact_key"],
                contact=r["contact"],
                ok=bool(r["ok"]),
                attempts=int(r["attempts"]),
                last_error=r["last_error"],
                last_at=float(r["last_at"]),
            )
            for r in self.store.query(SQL_DELIVERIES.format(where=where), params)
        ]

    # -- the metric a rule watches -------------------------------------------------------------------

    def measure(self, rule: AlertRule, now: float) -> float | None:
        """The rule's metric over ``[now - window, now]``; None when there is nothing to aggregate."""
        if rule.metric == "credit_balance":  # not a span metric: the ledger's current balance
            from netra_server.credits.balances import current_balance

            return current_balance(self.store, rule.project_id, rule.tenant_filter())
        sql, params = metric_sql(rule, now)
        rows = self.store.query(sql, params)
        if not rows or int(rows[0]["n"]) == 0:
            return 0.0 if rule.aggregation in ("sum", "count") else None
        value = rows[0]["value"]
        return None if value is None else float(value)


def _filters(
    *, rule_id: str | None, rule_ids: list[str] | None, since: float | None
) -> tuple[str, dict[str, Any]]:
    parts: list[str] = []
    params: dict[str, Any] = {}
    if rule_id is not None:
        parts.append("rule_id = {r:String}")
        params["r"] = rule_id
    if rule_ids is not None:
        # a comma-joined string: array parameters are spelled differently by chDB and clickhouse-connect
        parts.append("has(splitByChar(',', {rs:String}), rule_id)")
        params["rs"] = ",".join(rule_ids)
    if since is not None:
        parts.append("at >= {since:Float64}")
        params["since"] = since
    return "".join(f" AND {p}" for p in parts), params


def _rule(r: dict[str, Any]) -> AlertRule | BrokenRule:
    """A stored row as a rule, or as a :class:`BrokenRule` saying why it does not load."""
    try:
        body = orjson.loads(r["body"])
        if not isinstance(body, dict):
            raise TypeError("the stored body is not a JSON object")
        return AlertRule(
            **body,
            id=r["rule_id"],
            project_id=r["project_id"],
            created_at=float(r["created_at"]),
            updated_at=float(r["updated_at"]),
            owner_tenant=r["owner_tenant"] or None,
        )
    except ValidationError as exc:
        error = validation_message(exc)
    except (orjson.JSONDecodeError, TypeError, ValueError) as exc:
        error = str(exc)
    return BrokenRule(
        id=r["rule_id"], project_id=r["project_id"], error=error, body=r["body"], owner_tenant=r["owner_tenant"] or None,
        created_at=float(r["created_at"]), updated_at=float(r["updated_at"]),
    )
