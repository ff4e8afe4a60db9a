"""Alert storage, metric SQL and the evaluator against a real chDB store, with spans made by the real
OpenTelemetry SDK and mapped to rows by the server's own OTLP code."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from netra_server.alerts.evaluator import AlertEvaluator
from netra_server.alerts.model import RuleInput
from netra_server.alerts.state import AlertEvent
from netra_server.alerts.storage import AlertStorage
from netra_server.config import Limits
from netra_server.otlp import build_rows
from netra_server.store import Store, open_store
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode, set_span_in_context

from netra import semconv

from .conftest import WebhookReceiver

PROJECT = "prj_test"
EVAL = "prj_eval"
NOW = time.time()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    s = open_store(f"chdb://{tmp_path_factory.mktemp('alerts')}/store", threads=2)
    s.migrate()
    _load(s)
    yield s
    s.close()


def _trace(
    tracer: object,
    tenant: str,
    start: float,
    root_ms: float,
    llm_ms: float,
    *,
    cost: float = 0.01,
    error: bool = False,
) -> None:
    t0 = int(start * 1e9)
    root = tracer.start_span("meeting-summarization", start_time=t0, attributes={semconv.TENANT_ID: tenant})  # type: ignore[attr-defined]
    child = tracer.start_span(  # type: ignore[attr-defined]
        "chat gpt-4o-mini",
        context=set_span_in_context(root),
        start_time=t0 + 1_000_000,
        attributes={
            semconv.TENANT_ID: tenant,
            semconv.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
            semconv.GEN_AI_USAGE_INPUT_TOKENS: 100,
            semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 50,
            semconv.COST: cost,
            semconv.COST_SOURCE: "provider",
        },
    )
    if error:
        child.set_status(Status(StatusCode.ERROR, "boom"))
    child.end(end_time=t0 + 1_000_000 + int(llm_ms * 1e6))
    root.set_attribute(semconv.USAGE_COVERED, True)
    root.end(end_time=t0 + int(root_ms * 1e6))


def _load(s: Store, project: str = PROJECT) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    for i in range(10):  # in the last 5 minutes
        _trace(tracer, "apex-legal", NOW - 200 + i, root_ms=2500 + i * 10, llm_ms=2400)
        _trace(tracer, "techstart-inc", NOW - 200 + i, root_ms=500, llm_ms=400, error=i < 2)
    _trace(tracer, "apex-legal", NOW - 3600, root_ms=9000, llm_ms=8000)  # outside a 5-minute window
    spans: list[ReadableSpan] = list(exporter.get_finished_spans())
    batch = build_rows(encode_spans(spans), project, Limits(), int(time.time() * 1000))
    assert batch.rejected == 0
    s.insert_spans(batch.data)


def _rule(store: Store, **body: object) -> object:
    base: dict[str, object] = {
        "name": "r",
        "scope": "trace",
        "metric": "latency",
        "aggregation": "p95",
        "condition": {"op": ">", "threshold": 2000},
        "window_seconds": 300,
    }
    base.update(body)
    if base["metric"] in ("request_count", "error_rate"):
        base.pop("aggregation")
    return AlertStorage(store).create_rule(PROJECT, RuleInput.model_validate(base))


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"filters": ["tenant_id = apex-legal"]}, pytest.approx(2580, abs=10)),
        ({"filters": ["tenant_id = techstart-inc"]}, pytest.approx(500, abs=1)),
        ({"filters": ["tenant_id = nobody"]}, None),
        (
            {"filters": ["tenant_id = apex-legal"], "scope": "span", "aggregation": "max"},
            pytest.approx(2590, abs=1),
        ),
        (
            {
                "filters": ["tenant_id = apex-legal", "model = gpt-4o-mini"],
                "scope": "span",
                "aggregation": "avg",
            },
            pytest.approx(2400),
        ),
        (
            {"metric": "cost", "aggregation": "sum", "filters": ["tenant_id = apex-legal"]},
            pytest.approx(0.10),
        ),
        ({"metric": "cost", "aggregation": "sum", "scope": "span", "filters": ["tenant_id = nobody"]}, 0.0),
        ({"metric": "tokens", "aggregation": "sum", "scope": "span"}, 20 * 150),
        ({"metric": "request_count", "scope": "span", "filters": ["tenant_id != apex-legal"]}, 10),
        ({"metric": "request_count", "filters": ["model = gpt-4o-mini"]}, 20),
        ({"metric": "request_count", "filters": ["model != gpt-4o-mini"]}, 0),
        ({"metric": "error_rate", "filters": ["tenant_id = techstart-inc"]}, pytest.approx(20.0)),
        (
            {"metric": "error_rate", "scope": "span", "filters": ["tenant_id = techstart-inc"]},
            pytest.approx(10.0),
        ),
        (
            {
                "metric": "latency",
                "aggregation": "max",
                "window_seconds": 7200,
                "filters": ["tenant_id = apex-legal"],
            },
            pytest.approx(9000),
        ),
    ],
)
def test_measure(store: Store, body: dict[str, object], expected: object) -> None:
    rule = _rule(store, **body)
    assert AlertStorage(store).measure(rule, NOW) == expected  # type: ignore[arg-type]


def test_rule_crud_round_trip(store: Store) -> None:
    storage = AlertStorage(store)
    rule = storage.create_rule(
        "prj_other",
        RuleInput.model_validate(
            {
                "name": "x",
                "metric": "cost",
                "condition": {"op": ">", "threshold": 1},
                "filters": ["tenant_id = a"],
            }
        ),
        owner_tenant="a",
    )
    assert storage.get_rule("prj_other", rule.id) == rule
    assert storage.get_rule(PROJECT, rule.id) is None
    changed = storage.update_rule(
        rule, RuleInput.model_validate({**rule.model_dump(include=set(RuleInput.model_fields)), "name": "y"})
    )
    assert [r.name for r in storage.list_rules("prj_other")] == [
        "y"
    ] and changed.created_at == rule.created_at
    storage.delete_rule(changed)
    assert storage.list_rules("prj_other") == [] and storage.get_rule("prj_other", rule.id) is None


async def test_evaluator_fires_once_retries_a_failed_webhook_and_resolves(
    store: Store, webhook: WebhookReceiver
) -> None:
    # one chDB store per process: this test uses a project of its own in the module's store
    s = store
    _load(s, EVAL)
    storage = AlertStorage(s)
    contact = {"type": "webhook", "url": webhook.url + "/hook"}
    rules = {
        tenant: storage.create_rule(
            EVAL,
            RuleInput.model_validate(
                {
                    "name": f"{tenant} SLA",
                    "scope": "trace",
                    "metric": "latency",
                    "aggregation": "p95",
                    "filters": [f"tenant_id = {tenant}"],
                    "condition": {"op": ">", "threshold": threshold},
                    "window_seconds": 300,
                    "interval_seconds": 10,
                    "contact_points": [contact],
                }
            ),
        )
        for tenant, threshold in (("apex-legal", 2000), ("techstart-inc", 3000))
    }
    evaluator = AlertEvaluator(s)
    webhook.status = 503  # the receiver is down at first
    events = await _mine(evaluator, NOW)
    assert [(e.kind, e.tenant_id) for e in events] == [("firing", "apex-legal")]
    assert webhook.requests == []
    assert await _mine(evaluator, NOW + 1) == []  # not due yet (interval 10 s)
    webhook.status = 200
    assert await _mine(evaluator, NOW + 10) == []  # still firing: no new event, the failed one retried
    assert [b["kind"] for b in webhook.bodies()] == ["firing"]
    assert webhook.bodies()[0]["rule"]["id"] == rules["apex-legal"].id
    assert await _mine(evaluator, NOW + 20) == []
    assert len(webhook.requests) == 1  # told once
    # the window moves past the slow traces: resolved, told once
    events = await _mine(evaluator, NOW + 600)
    assert [(e.kind, e.tenant_id) for e in events] == [("resolved", "apex-legal")]
    assert [b["kind"] for b in webhook.bodies()] == ["firing", "resolved"]
    history = storage.events(EVAL)
    assert [e.kind for e in history] == ["resolved", "firing"]
    assert history[0].episode_id == history[1].id
    deliveries = sorted(storage.deliveries(EVAL), key=lambda d: d.last_at)
    assert [(d.ok, d.attempts) for d in deliveries] == [(True, 2), (True, 1)]
    # a new evaluator (a restarted server) picks up the stored state: nothing is told again
    again = AlertEvaluator(s)
    assert await _mine(again, NOW + 700) == []
    assert len(webhook.requests) == 2
    assert storage.states(EVAL)[rules["apex-legal"].id].state == "ok"


async def _mine(evaluator: AlertEvaluator, now: float) -> list[AlertEvent]:
    """The events of this test's project (the module's other rules live in the same store)."""
    return [e for e in await evaluator.run_due(now) if e.project_id == EVAL]
