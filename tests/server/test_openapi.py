"""The OpenAPI document of a running server: every JSON route under /usage, /sdk and /api documents
its answer (and its errors), and the documented shapes are what the routes really answer.

Spans are sent with the real OpenTelemetry SDK and OTLP exporter; each route is called over HTTP and
its answer is checked against the schema served at ``/openapi.json`` strictly: every declared field
present, no undeclared field, types as declared. The same answers are read into the pydantic models
of ``netra.usage.wire`` and ``netra_server.wire`` (as a client would, money through ``Decimal``)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from netra_server import wire as server_wire
from netra_server.alerts import wire as alert_wire
from netra_server.credits import wire as credit_wire
from netra_server.testing import RunningServer
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import Status, StatusCode, set_span_in_context
from pydantic import BaseModel

from netra import semconv
from netra.usage import wire

from ._helpers import record, send

PREFIXES = ("/usage/", "/sdk/", "/api/", "/trace/")

TRACE_SUMMARY = {  # docs/design.md, "Wire API of the server"
    "id",
    "name",
    "kind",
    "latency_ms",
    "start_time",
    "end_time",
    "cursor",
    "organisation_id",
    "project_id",
    "session_id",
    "tenant_id",
    "user_id",
    "environment",
    "models",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "total_tokens",
    "total_cost",
    "has_error",
    "service",
}
TRACE_SPAN = {
    "otel_kind",
    "links",
    "resources",
    "has_error",
    "environment",
    "id",
    "trace_id",
    "name",
    "kind",
    "parent_span_id",
    "latency_ms",
    "start_time_ms",
    "end_time_ms",
    "organisation_id",
    "project_id",
    "session_id",
    "tenant_id",
    "user_id",
    "model_name",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "total_tokens",
    "total_cost",
    "status",
    "attributes",
    "events",
    "created_at",
    "cursor",
}
TOTALS = {
    "requestsCount",
    "tokenCount",
    "inputTokens",
    "outputTokens",
    "cachedTokens",
    "totalCost",
    "unpricedCount",
    "sessionsCount",
    "spanCount",
}
KEY = {"key_id", "project_id", "name", "role", "tenant_id", "created_at", "revoked"}
RULE = {
    "name",
    "scope",
    "metric",
    "aggregation",
    "filters",
    "condition",
    "window_seconds",
    "interval_seconds",
    "contact_points",
    "enabled",
    "id",
    "project_id",
    "created_at",
    "updated_at",
    "owner_tenant",
    "description",
    "state",
}
EVENT = {
    "id",
    "rule_id",
    "rule_name",
    "kind",
    "at",
    "value",
    "threshold",
    "episode_id",
    "tenant_id",
    "message",
    "deliveries",
}

ACCOUNT = {"tenant_id", "currency", "balance", "reserved", "available", "overdraft_limit", "granted", "adjusted",
           "spent", "system_cost", "updated_at"}
ENTRY = {"seq", "id", "tenant_id", "kind", "amount", "hold", "balance_after", "reserved_after", "reservation_id",
         "transaction_id", "context", "note", "at"}
RESERVATION = {"id", "tenant_id", "transaction_id", "amount", "status", "created_at", "expires_at", "settled_at",
               "charged", "note", "model", "account"}
TRANSACTION = {"id", "tenant_id", "reservation_id", "context", "amount", "released", "at", "usage", "account"}
CREDIT_USAGE_GROUP = {"key", "requests", "input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens",
                      "audio_seconds", "cost"}

#: (method, path) -> the documented fields of ``data`` (of each item when ``data`` is a list) and,
#: for a page, of its items.
DOCUMENTED: dict[tuple[str, str], dict[str, set[str]]] = {
    ("GET", "/usage/sessions/{session_id}"): {
        "data": {"session_id", "tokenCount", "requestsCount", "totalCost"}
    },
    ("GET", "/usage/tenants/{tenant_id}"): {
        "data": {"tenant_id", "organisation_id", "tokenCount", "requestsCount", "sessionsCount", "totalCost"}
    },
    ("POST", "/sdk/traces"): {
        "data": {"data", "pageInfo"},
        "item": TRACE_SUMMARY,
        "pageInfo": {"hasNextPage"},
    },
    ("GET", "/sdk/traces/{trace_id}/spans"): {
        "data": {"data", "pageInfo"},
        "item": TRACE_SPAN,
        "pageInfo": {"hasNextPage"},
    },
    ("POST", "/trace/usage"): {"data": {"call_usage", "truncated"}},
    ("GET", "/api/me"): {
        "data": {"key_id", "project_id", "organisation_id", "project_name", "role", "tenant_id"}
    },
    ("GET", "/api/usage/summary"): {
        "data": {"groupBy", "groups", "total"},
        "total": TOTALS,
        "groups": TOTALS | {"key"},
    },
    ("GET", "/api/latency"): {
        "data": {"tenant_id", "spanCount", "errorCount", "errorRate", "p50Ms", "p95Ms", "p99Ms"}
    },
    ("GET", "/api/traces/{trace_id}/usage"): {"data": {"trace_id", "spans", "total"}},
    ("GET", "/api/keys"): {"data": KEY},
    ("POST", "/api/keys"): {"data": KEY | {"key"}},
    ("DELETE", "/api/keys/{key_id}"): {"data": KEY},
    ("GET", "/api/alerts/rules"): {"data": RULE},
    ("POST", "/api/alerts/rules"): {"data": RULE},
    ("GET", "/api/alerts/rules/{rule_id}"): {"data": RULE},
    ("PUT", "/api/alerts/rules/{rule_id}"): {"data": RULE},
    ("PATCH", "/api/alerts/rules/{rule_id}"): {"data": RULE},
    ("DELETE", "/api/alerts/rules/{rule_id}"): {"data": {"id", "deleted"}},
    ("GET", "/api/alerts/history"): {"data": EVENT},
    ("POST", "/api/alerts/evaluate"): {"data": EVENT},
    ("GET", "/api/credits/accounts"): {"data": ACCOUNT},
    ("GET", "/api/credits/accounts/{tenant_id}"): {"data": ACCOUNT},
    ("PUT", "/api/credits/accounts/{tenant_id}"): {"data": ACCOUNT},
    ("POST", "/api/credits/accounts/{tenant_id}/grants"): {"data": {"entry", "account"}},
    ("POST", "/api/credits/reservations"): {"data": RESERVATION},
    ("GET", "/api/credits/reservations/{reservation_id}"): {"data": RESERVATION},
    ("POST", "/api/credits/reservations/{reservation_id}/confirm"): {"data": TRANSACTION},
    ("POST", "/api/credits/reservations/{reservation_id}/release"): {"data": RESERVATION},
    ("POST", "/api/credits/usage"): {"data": TRANSACTION},
    ("GET", "/api/credits/transactions/{transaction_id}"): {"data": TRANSACTION},
    ("GET", "/api/credits/entries"): {"data": {"entries", "next_after"}},
    ("GET", "/api/credits/usage"): {
        "data": {"group_by", "groups", "total"},
        "total": {"requests", "cost", "input_tokens", "output_tokens"},
        "groups": CREDIT_USAGE_GROUP,
    },
    ("GET", "/api/credits/verify"): {"data": {"ok", "problems"}},
}

#: The money fields: a JSON number carrying the stored Decimal's exact digits.
MONEY = {"totalCost", "total_cost", "cost"}

RULE_BODY = {
    "name": "apex requests",
    "metric": "request_count",
    "condition": {"op": ">", "threshold": 0},
    "filters": ["tenant_id = apex"],
    "window_seconds": 86400,
    "interval_seconds": 3600,
    "contact_points": [
        {"type": "webhook", "url": "http://127.0.0.1:9/hook", "headers": {"x-team": "billing"}},
        {"type": "slack", "url": "http://127.0.0.1:9/slack"},
        {
            "type": "email",
            "smtp_host": "127.0.0.1",
            "smtp_port": 9,
            "from_addr": "netra@example.com",
            "to": ["oncall@example.com"],
            "username": "u",
            "password": "secret",
        },
    ],
}


@pytest.fixture(scope="module")
def data(netra_server: RunningServer) -> Iterator[dict[str, Any]]:
    """Two traces near now: apex (a covered parent over two priced calls, 0.1 + 0.2 USD) and stratex
    (an unknown model that failed); an alert rule on apex."""
    provider, collect = record()
    tr = provider.get_tracer("t")
    now = time.time_ns()
    apex = {semconv.TENANT_ID: "apex", semconv.SESSION_ID: "s-1", semconv.USER_ID: "alice"}
    root = tr.start_span(
        "meeting-summarization",
        start_time=now - 3_000_000_000,
        attributes={
            **apex,
            semconv.USAGE_COVERED: True,
            semconv.USAGE: json.dumps(
                [{"model": "gpt-4o-mini", "usage_type": "tokens", "units_used": 1500, "cost_in_usd": 0.3}]
            ),
        },
    )
    for i, cost in enumerate((0.1, 0.2)):
        call = tr.start_span(
            f"chat {i}",
            context=set_span_in_context(root),
            start_time=now - 2_900_000_000 + i,
            attributes={
                **apex,
                semconv.GEN_AI_RESPONSE_MODEL: "gpt-4o-mini",
                semconv.GEN_AI_USAGE_INPUT_TOKENS: 500,
                semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 250,
                semconv.COST: cost,
                semconv.COST_SOURCE: "provider",
            },
        )
        call.add_event("retry", {"attempt": 1})
        call.end(end_time=now - 2_000_000_000)
    root.end(end_time=now - 1_000_000_000)
    failed = tr.start_span(
        "chat mystery",
        start_time=now - 2_000_000_000,
        attributes={
            semconv.TENANT_ID: "stratex",
            semconv.GEN_AI_RESPONSE_MODEL: "mystery-model-1",
            semconv.GEN_AI_USAGE_INPUT_TOKENS: 10,
            semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 5,
        },
    )
    failed.set_status(Status(StatusCode.ERROR, "boom"))
    failed.end(end_time=now - 1_500_000_000)
    assert send(netra_server, collect.spans) is SpanExportResult.SUCCESS
    provider.shutdown()
    with netra_server.client() as c:
        traces = c.post("/sdk/traces", json={"filters": [{"field": "tenant_id", "value": "apex"}]}).json()[
            "data"
        ]["data"]
    yield {
        "srv": netra_server,
        "apex_trace": traces[0]["id"],
        "spec": httpx.get(netra_server.base_url + "/openapi.json").json(),
    }


# -- a strict check of a JSON value against the served schema ---------------------------------------


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        schema = spec["components"]["schemas"][name]
    return schema


def _type_ok(value: Any, kind: str) -> bool:
    if kind == "null":
        return value is None
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)
    if kind == "string":
        return isinstance(value, str)
    if kind == "array":
        return isinstance(value, list)
    if kind == "object":
        return isinstance(value, dict)
    raise AssertionError(f"schema type {kind!r} not handled by this check")


def conforms(spec: dict[str, Any], schema: dict[str, Any], value: Any, where: str = "$") -> list[str]:
    """Problems of ``value`` against ``schema`` (empty: it conforms). Objects must carry exactly the
    declared properties: every one present (nullable ones as null), none undeclared."""
    schema = _resolve(spec, schema)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            results = [conforms(spec, option, value, where) for option in schema[key]]
            if not any(not r for r in results):
                return [f"{where}: matches none of {key}: " + " | ".join("; ".join(r) for r in results)]
            return []
    if "const" in schema and value != schema["const"]:
        return [f"{where}: {value!r} is not {schema['const']!r}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{where}: {value!r} not in {schema['enum']}"]
    kind = schema.get("type")
    if kind is None:
        return [f"{where}: the schema declares no type"]
    if not _type_ok(value, kind):
        return [f"{where}: {value!r} is not of type {kind}"]
    problems: list[str] = []
    if kind == "object":
        props: dict[str, Any] = schema.get("properties", {})
        if props:
            missing, extra = set(props) - set(value), set(value) - set(props)
            if missing:
                problems.append(f"{where}: declared but missing: {sorted(missing)}")
            if extra:
                problems.append(f"{where}: answered but not declared: {sorted(extra)}")
            for name, sub in props.items():
                if name in value:
                    problems += conforms(spec, sub, value[name], f"{where}.{name}")
        elif isinstance(schema.get("additionalProperties"), dict):
            for name, item in value.items():
                problems += conforms(spec, schema["additionalProperties"], item, f"{where}.{name}")
        else:
            problems.append(f"{where}: an object schema without properties documents nothing")
    elif kind == "array":
        for i, item in enumerate(value):
            problems += conforms(spec, schema["items"], item, f"{where}[{i}]")
    return problems


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, ops in spec["paths"].items()
        if path.startswith(PREFIXES)
        for method, op in ops.items()
    ]


def _success(op: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    status = "201" if "201" in op["responses"] else "200"
    return status, op["responses"][status]["content"]["application/json"]["schema"]


def _fields(spec: dict[str, Any], schema: dict[str, Any]) -> set[str]:
    schema = _resolve(spec, schema)
    if schema.get("type") == "array":
        schema = _resolve(spec, schema["items"])
    return set(schema["properties"])


# -- the document ------------------------------------------------------------------------------------


def test_every_json_route_documents_its_answer_and_errors(data: dict[str, Any]) -> None:
    spec = data["spec"]
    ops = _operations(spec)
    assert {(m, p) for m, p, _ in ops} == set(DOCUMENTED), (
        "a route under /usage, /sdk, /api or /trace is not in DOCUMENTED"
    )
    for method, path, op in ops:
        status, schema = _success(op)
        top = _resolve(spec, schema)
        # the rules listing also names the stored rules that do not load (beside its data)
        extra = {"unreadable"} if (method, path) == ("GET", "/api/alerts/rules") else set()
        assert set(top["properties"]) == {"data"} | extra and top["required"] == ["data"], (method, path)
        data_schema = top["properties"]["data"]
        expected = DOCUMENTED[(method, path)]
        assert _fields(spec, data_schema) == expected["data"], (method, path)
        inner = _resolve(spec, data_schema)
        if "item" in expected:  # a page: {"data": [...], "pageInfo": {...}}
            assert _fields(spec, inner["properties"]["data"]) == expected["item"], (method, path)
            assert _fields(spec, inner["properties"]["pageInfo"]) == expected["pageInfo"], (method, path)
        for name in ("total", "groups"):
            if name in expected:
                assert _fields(spec, inner["properties"][name]) == expected[name], (method, path, name)
        # errors: every route needs a key (401, 403); each documented error is {"error": {"message"}};
        # FastAPI's 422 is never answered (a bad request is a 400) so it is not documented
        assert "422" not in op["responses"], (method, path)
        assert {"401", "403", "503"} <= set(op["responses"]), (method, path)
        if op.get("parameters") or op.get("requestBody"):
            assert "400" in op["responses"], (method, path)
        for code, response in op["responses"].items():
            if code >= "400":
                err = response["content"]["application/json"]["schema"]
                assert err == {"$ref": "#/components/schemas/ErrorResponse"}, (method, path, code)
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    err = spec["components"]["schemas"]["ErrorResponse"]
    assert err["required"] == ["error"]
    assert _fields(spec, err["properties"]["error"]) == {"message"}


def test_money_is_documented_as_an_exact_number(data: dict[str, Any]) -> None:
    spec = data["spec"]
    seen = 0
    for name, schema in spec["components"]["schemas"].items():
        for field, prop in schema.get("properties", {}).items():
            if field not in MONEY:
                continue
            seen += 1
            kinds = {_resolve(spec, o).get("type") for o in prop.get("anyOf", [prop])}
            assert kinds in ({"number"}, {"number", "null"}), (name, field, prop)
            assert "exact digits" in prop["description"] and "decimal" in prop["description"], (name, field)
    # SessionUsage, TenantUsage, TraceSummary, TraceSpan, UsageTotals, UsageGroup, SpanOwnUsage, UsageRollup
    assert seen >= 8


def test_alert_rule_bodies_are_documented(data: dict[str, Any]) -> None:
    spec = data["spec"]
    for method in ("post", "put"):
        path = "/api/alerts/rules" if method == "post" else "/api/alerts/rules/{rule_id}"
        body = spec["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
        rule_input = _resolve(spec, body)
        assert {"name", "metric", "condition", "filters", "contact_points"} <= set(rule_input["properties"])
        assert set(rule_input["required"]) == {"name", "metric", "condition"}
        refs = json.dumps(rule_input)
        for ref in ("Filter", "Condition", "EmailContact"):  # the nested schemas resolve
            assert f'"#/components/schemas/{ref}"' in refs and ref in spec["components"]["schemas"]


# -- the answers -------------------------------------------------------------------------------------


def _check(
    data: dict[str, Any],
    method: str,
    template: str,
    response: httpx.Response,
    model: type[BaseModel] | None = None,
) -> Any:
    """The answer conforms to the schema documented for its status; returns its JSON (money as Decimal)."""
    spec = data["spec"]
    op = spec["paths"][template][method.lower()]
    status = str(response.status_code)
    assert status in op["responses"], (method, template, status, response.text)
    assert response.headers["content-type"] == "application/json"
    body = json.loads(response.content, parse_float=Decimal)
    schema = op["responses"][status]["content"]["application/json"]["schema"]
    problems = conforms(spec, schema, body)
    assert not problems, (method, template, problems)
    if model is not None:  # the pydantic models agree too (what a Python client would use)
        model.model_validate(body)
    return body


def test_every_answer_matches_its_schema(data: dict[str, Any]) -> None:
    srv: RunningServer = data["srv"]
    tid = data["apex_trace"]
    called: set[tuple[str, str]] = set()

    def call(
        c: httpx.Client,
        method: str,
        template: str,
        path: str,
        model: type[BaseModel] | None = None,
        status: int = 200,
        **kw: Any,
    ) -> Any:
        r = c.request(method, path, **kw)
        assert r.status_code == status, (method, path, r.text)
        called.add((method, template))
        return _check(data, method, template, r, model)

    with srv.client() as c:
        session = call(
            c, "GET", "/usage/sessions/{session_id}", "/usage/sessions/s-1", wire.SessionUsageResponse
        )
        tenant = call(c, "GET", "/usage/tenants/{tenant_id}", "/usage/tenants/apex", wire.TenantUsageResponse)
        call(c, "GET", "/usage/tenants/{tenant_id}", "/usage/tenants/nobody", wire.TenantUsageResponse)
        traces = call(c, "POST", "/sdk/traces", "/sdk/traces", wire.TracesResponse, json={})
        spans = call(
            c, "GET", "/sdk/traces/{trace_id}/spans", f"/sdk/traces/{tid}/spans", wire.TraceSpansResponse
        )
        call(c, "GET", "/api/me", "/api/me", server_wire.MeResponse)
        call(c, "POST", "/trace/usage", "/trace/usage", wire.CallUsageResponse,
             json={"trace_ids": [tid], "include_costs": True})
        for group in ("tenant", "model", "user", "session", "day"):
            call(
                c,
                "GET",
                "/api/usage/summary",
                f"/api/usage/summary?groupBy={group}",
                wire.UsageSummaryResponse,
            )
        for scope in ("root", "llm", "all"):
            call(c, "GET", "/api/latency", f"/api/latency?scope={scope}", server_wire.LatencyResponse)
        usage = call(
            c, "GET", "/api/traces/{trace_id}/usage", f"/api/traces/{tid}/usage", wire.TraceUsageResponse
        )
        new = call(
            c,
            "POST",
            "/api/keys",
            "/api/keys",
            server_wire.NewApiKeyResponse,
            json={"role": "read", "tenantId": "apex"},
        )
        keys = call(c, "GET", "/api/keys", "/api/keys", server_wire.ApiKeysResponse)
        call(c, "DELETE", "/api/keys/{key_id}", f"/api/keys/{new['data']['key_id']}", server_wire.ApiKeyResponse)

        rule = call(
            c,
            "POST",
            "/api/alerts/rules",
            "/api/alerts/rules",
            alert_wire.AlertRuleResponse,
            201,
            json=RULE_BODY,
        )
        rid = rule["data"]["id"]
        call(
            c, "GET", "/api/alerts/rules/{rule_id}", f"/api/alerts/rules/{rid}", alert_wire.AlertRuleResponse
        )
        call(
            c,
            "PUT",
            "/api/alerts/rules/{rule_id}",
            f"/api/alerts/rules/{rid}",
            alert_wire.AlertRuleResponse,
            json=RULE_BODY,
        )
        call(
            c,
            "PATCH",
            "/api/alerts/rules/{rule_id}",
            f"/api/alerts/rules/{rid}",
            alert_wire.AlertRuleResponse,
            json={"name": "apex requests (renamed)"},
        )
        call(c, "POST", "/api/alerts/evaluate", "/api/alerts/evaluate", alert_wire.AlertEventsResponse)
        rules = call(c, "GET", "/api/alerts/rules", "/api/alerts/rules", alert_wire.AlertRulesResponse)
        deadline = time.monotonic() + 30  # the notifications are attempted in the background
        while True:
            history = call(
                c, "GET", "/api/alerts/history", "/api/alerts/history", alert_wire.AlertEventsResponse
            )
            if history["data"] and len(history["data"][0]["deliveries"]) == 3 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        call(
            c,
            "DELETE",
            "/api/alerts/rules/{rule_id}",
            f"/api/alerts/rules/{rid}",
            alert_wire.DeletedRuleResponse,
        )
        _call_credit_routes(c, call)
    assert called == set(DOCUMENTED)

    # the answers carried what the checks above are about (not empty lists)
    assert traces["data"]["data"] and spans["data"]["data"] and keys["data"] and usage["data"]["spans"]
    assert [s["total_cost"] for s in spans["data"]["data"]] == [
        Decimal("0.3"),
        Decimal("0.1"),
        Decimal("0.2"),
    ]
    assert rules["data"][0]["state"]["state"] == "firing"
    assert rules["data"][0]["contact_points"][2]["password"] == "********"
    event = history["data"][0]
    assert event["kind"] == "firing" and len(event["deliveries"]) == 3
    # money: exact decimal sums written as JSON numbers (0.1 + 0.2 is 0.30000000000000004 in floats;
    # a route whose answer went through the Money (Decimal) model would write the string "0.3")
    assert b'"totalCost":0.3}' in httpx.get(srv.base_url + "/usage/tenants/apex", headers=srv.headers).content
    assert tenant["data"]["totalCost"] == session["data"]["totalCost"] == Decimal("0.3")
    assert usage["data"]["total"]["totalCost"] == Decimal("0.3")


def _call_credit_routes(c: httpx.Client, call: Any) -> None:
    base = "/api/credits"
    acc = f"{base}/accounts/{{tenant_id}}"
    call(c, "POST", f"{acc}/grants", f"{base}/accounts/apex/grants", credit_wire.GrantResponse, 201,
         json={"amount": "2.50", "note": "plan"})
    call(c, "PUT", acc, f"{base}/accounts/apex", credit_wire.AccountResponse, json={"overdraft_limit": "1"})
    call(c, "GET", acc, f"{base}/accounts/apex", credit_wire.AccountResponse)
    call(c, "GET", f"{base}/accounts", f"{base}/accounts", credit_wire.AccountsResponse)
    held = call(c, "POST", f"{base}/reservations", f"{base}/reservations", credit_wire.ReservationResponse, 201,
                json={"tenant_id": "apex", "model": "gpt-4o-mini", "input_tokens": 100, "max_output_tokens": 50})
    rid = held["data"]["id"]
    res = f"{base}/reservations/{{reservation_id}}"
    call(c, "GET", res, f"{base}/reservations/{rid}", credit_wire.ReservationResponse)
    txn = call(c, "POST", f"{res}/confirm", f"{base}/reservations/{rid}/confirm", credit_wire.TransactionResponse,
               json={"usage": [{"model": "gpt-4o-mini", "input_tokens": 90, "output_tokens": 40}]})
    other = call(c, "POST", f"{base}/reservations", f"{base}/reservations", credit_wire.ReservationResponse, 201,
                 json={"tenant_id": "apex", "amount": "0.1"})["data"]["id"]
    call(c, "POST", f"{res}/release", f"{base}/reservations/{other}/release", credit_wire.ReservationResponse)
    call(c, "POST", f"{base}/usage", f"{base}/usage", credit_wire.TransactionResponse, 201,
         json={"tenant_id": "apex", "context": "system", "usage": [{"model": "whisper-1", "audio_seconds": "30"}]})
    call(c, "GET", f"{base}/transactions/{{transaction_id}}", f"{base}/transactions/{txn['data']['id']}",
         credit_wire.TransactionResponse)
    page = call(c, "GET", f"{base}/entries", f"{base}/entries", credit_wire.EntriesResponse, params={"limit": 2})
    assert page["data"]["next_after"] is not None
    call(c, "GET", f"{base}/usage", f"{base}/usage", credit_wire.UsageReportResponse, params={"group_by": "context"})
    call(c, "GET", f"{base}/verify", f"{base}/verify", credit_wire.VerifyResponse)


def test_error_answers_match_the_error_schema(data: dict[str, Any]) -> None:
    srv: RunningServer = data["srv"]
    apex_reader = srv.create_key("read", tenant_id="apex")
    ingest = srv.create_key("ingest")
    with srv.client() as c:
        _check(
            data,
            "GET",
            "/usage/tenants/{tenant_id}",
            c.get("/usage/tenants/apex?startTime=yesterday"),
            server_wire.ErrorResponse,
        )
        _check(
            data,
            "POST",
            "/sdk/traces",
            c.post("/sdk/traces", json={"pagination": {"limit": 0}}),
            server_wire.ErrorResponse,
        )
        _check(data, "GET", "/api/latency", c.get("/api/latency?scope=nope"), server_wire.ErrorResponse)
        _check(
            data,
            "GET",
            "/api/traces/{trace_id}/usage",
            c.get("/api/traces/" + "ab" * 16 + "/usage"),
            server_wire.ErrorResponse,
        )
        _check(
            data, "GET", "/api/alerts/rules/{rule_id}", c.get("/api/alerts/rules/nope"), server_wire.ErrorResponse
        )
        _check(
            data,
            "POST",
            "/api/alerts/rules",
            c.post("/api/alerts/rules", json={"name": "x"}),
            server_wire.ErrorResponse,
        )
    with srv.client("nk_000000000000_wrongwrongwrongwrongwrongwrong") as c:
        _check(data, "GET", "/usage/sessions/{session_id}", c.get("/usage/sessions/s-1"), server_wire.ErrorResponse)
    with srv.client(apex_reader) as c:
        _check(data, "GET", "/usage/tenants/{tenant_id}", c.get("/usage/tenants/stratex"), server_wire.ErrorResponse)
        _check(data, "GET", "/api/keys", c.get("/api/keys"), server_wire.ErrorResponse)
    with srv.client(ingest) as c:
        r = c.get("/api/me")
        assert r.status_code == 403
        _check(data, "GET", "/api/me", r, server_wire.ErrorResponse)
