"""``POST /trace/usage``: per-call usage by model, own and rolled up over descendants (each unit once),
and ``UsageClient.get_call_usage``; plus how ``netra.usage`` items without a cost or with token-kind
units are counted and priced at ingest."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from netra import semconv
from netra.pricing import price_tokens
from netra.usage import BadRequestError, UsageClient

from .conftest import Env


def _tracer(env: Env) -> tuple[TracerProvider, trace.Tracer]:
    provider = TracerProvider(resource=Resource.create({"service.name": "compat-call-usage"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=env.srv.otlp_endpoint,
                                                                     headers=env.srv.headers)))
    return provider, provider.get_tracer("compat")


def _llm(model: str, i: int, o: int, cost: str | None = None) -> dict[str, Any]:
    attrs: dict[str, Any] = {semconv.GEN_AI_REQUEST_MODEL: model, semconv.GEN_AI_USAGE_INPUT_TOKENS: i,
                             semconv.GEN_AI_USAGE_OUTPUT_TOKENS: o, semconv.TENANT_ID: "calls"}
    if cost is not None:
        attrs[semconv.COST] = cost
    return attrs


@pytest.fixture(scope="module")
def agent_trace(env: Env) -> dict[str, str]:
    """agent -> (plan: model a, 2 calls of model b under a tool, a tool with its own set_usage covered by
    its child), and a second trace."""
    provider, tracer = _tracer(env)
    ids: dict[str, str] = {}

    def sid(span: trace.Span) -> str:
        return format(span.get_span_context().span_id, "016x")

    with tracer.start_as_current_span("agent", attributes={semconv.TENANT_ID: "calls"}) as agent:
        ids["trace"] = format(agent.get_span_context().trace_id, "032x")
        ids["agent"] = sid(agent)
        with tracer.start_as_current_span("plan", attributes=_llm("model-a", 100, 10, "0.001")) as s:
            ids["plan"] = sid(s)
        with tracer.start_as_current_span("search", attributes={semconv.TENANT_ID: "calls"}) as tool:
            ids["search"] = sid(tool)
            for n in range(2):
                with tracer.start_as_current_span(f"call-{n}", attributes=_llm("model-b", 50, 5, "0.0002")) as s:
                    ids[f"call-{n}"] = sid(s)
        usage = json.dumps([{"model": "model-c", "usage_type": "chat", "units_used": 99, "cost_in_usd": 1.0}])
        wrapper_attrs = {semconv.USAGE: usage, semconv.TENANT_ID: "calls", semconv.USAGE_COVERED: True}
        with tracer.start_as_current_span("wrapper", attributes=wrapper_attrs) as w:
            ids["wrapper"] = sid(w)
            with tracer.start_as_current_span("inner", attributes=_llm("model-a", 7, 3, "0.0005")) as s:
                ids["inner"] = sid(s)
    with tracer.start_as_current_span("other", attributes=_llm("model-b", 1, 1, "0.25")) as other:
        ids["other_trace"] = format(other.get_span_context().trace_id, "032x")
        ids["other"] = sid(other)
    provider.shutdown()
    return ids


def _post(env: Env, body: dict[str, Any]) -> Any:
    with env.srv.client() as c:
        return c.post("/trace/usage", json=body)


def test_own_and_rolled_up_usage_per_model(env: Env, agent_trace: dict[str, str]) -> None:
    r = _post(env, {"trace_ids": [agent_trace["trace"]], "include_costs": True})
    assert r.status_code == 200
    data = r.json()["data"]
    calls = data["call_usage"]
    assert data["truncated"] is False and len(calls) == 7
    assert list(calls)[0] == agent_trace["agent"]  # trace order, depth first
    agent = calls[agent_trace["agent"]]
    assert agent["own"] == {} and agent["parent_id"] is None and agent["kind"] == "SPAN"
    rollup = agent["rollup"]
    # each unit once: the wrapper's own usage (model-c) is covered by its child's and not rolled up;
    # model-a: plan + inner, model-b: both calls
    assert set(rollup) == {"model-a", "model-b"}
    assert rollup["model-b"] == {"requests": 2, "prompt_tokens": 100, "completion_tokens": 10, "cached_tokens": 0,
                                 "total_tokens": 110, "total_cost": 0.0004, "unpriced_requests": 0}
    assert rollup["model-a"]["requests"] == 2 and rollup["model-a"]["total_tokens"] == 120
    search = calls[agent_trace["search"]]
    assert search["own"] == {} and set(search["rollup"]) == {"model-b"} and search["rollup"]["model-b"]["requests"] == 2
    plan = calls[agent_trace["plan"]]
    assert plan["counted"] and plan["own"] == plan["rollup"] and plan["kind"] == "GENERATION"
    assert plan["own"]["model-a"]["total_cost"] == 0.001
    wrapper = calls[agent_trace["wrapper"]]
    assert set(wrapper["own"]) == {"model-c"} and wrapper["own"]["model-c"]["total_tokens"] == 99  # "chat" units: tokens
    assert not wrapper["counted"] and set(wrapper["rollup"]) == {"model-a"}


def test_filters_limit_and_costs_off(env: Env, agent_trace: dict[str, str]) -> None:
    only = _post(env, {"filter": {"call_ids": [agent_trace["search"], agent_trace["other"]]}}).json()["data"]
    assert set(only["call_usage"]) == {agent_trace["search"], agent_trace["other"]}
    usage = only["call_usage"][agent_trace["other"]]["own"]["model-b"]
    assert "total_cost" not in usage and usage["requests"] == 1  # include_costs defaults to false
    both = _post(env, {"trace_ids": [agent_trace["trace"], agent_trace["other_trace"]], "limit": 3}).json()["data"]
    assert both["truncated"] is True and len(both["call_usage"]) == 3


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "trace_ids and/or call_ids"),
        ({"trace_ids": ["nothex"]}, "32 hexadecimal"),
        ({"call_ids": ["12"]}, "16 hexadecimal"),
        ({"trace_ids": ["ab" * 16], "limit": 0}, "limit"),
        ({"trace_ids": ["ab" * 16] * 1001}, "1000"),
        ({"trace_ids": "ab" * 16}, "trace_ids"),
    ],
)
def test_bad_requests_answer_400_with_a_message(env: Env, body: dict[str, Any], message: str) -> None:
    r = _post(env, body)
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]["message"]


def test_the_client_method(env: Env, agent_trace: dict[str, str]) -> None:
    with UsageClient(env.srv.base_url, env.srv.api_key) as usage:
        result = usage.get_call_usage([agent_trace["trace"]], include_costs=True)
        assert result.truncated is False and len(result.call_usage) == 7
        agent = result.call_usage[agent_trace["agent"]]
        assert agent.rollup["model-b"].total_cost == Decimal("0.0004") and agent.rollup["model-b"].requests == 2
        none = usage.get_call_usage(call_ids=["cd" * 8])
        assert none.call_usage == {}
        with pytest.raises(ValueError, match="trace_ids and/or call_ids"):
            usage.get_call_usage()
        with pytest.raises(TypeError, match="list of ids"):
            usage.get_call_usage(agent_trace["trace"])  # type: ignore[arg-type]
        with pytest.raises(BadRequestError, match="16 hexadecimal"):
            usage.get_call_usage(call_ids=["xyz"])


def test_openapi_documents_the_route(env: Env) -> None:
    with env.srv.client() as c:
        spec = c.get("/openapi.json").json()
    op = spec["paths"]["/trace/usage"]["post"]
    assert "200" in op["responses"] and "400" in op["responses"]


# -- netra.usage items at ingest -------------------------------------------------------------------------


def _usage_span(env: Env, items: list[dict[str, Any]], **attrs: Any) -> dict[str, Any]:
    provider, tracer = _tracer(env)
    with tracer.start_as_current_span("explicit", attributes={semconv.USAGE: json.dumps(items), **attrs}) as s:
        tid = format(s.get_span_context().trace_id, "032x")
    provider.shutdown()
    with env.srv.client() as c:
        (span,) = c.get(f"/sdk/traces/{tid}/spans").json()["data"]["data"]
    return span


def test_a_usage_model_without_cost_is_priced_from_its_tokens(env: Env) -> None:
    span = _usage_span(env, [{"model": "gpt-4o-mini", "usage_type": "chat", "input_tokens": 1000,
                              "output_tokens": 200, "units_used": None, "cost_in_usd": None}])
    expected = price_tokens("gpt-4o-mini", input_tokens=1000, output_tokens=200).cost
    assert expected is not None and expected > 0
    assert Decimal(str(span["total_cost"])) == expected and span["prompt_tokens"] == 1000
    # directional kinds price too; one item with a cost and one without: both parts
    span = _usage_span(env, [{"model": "gpt-4o-mini", "usage_type": "input_tokens", "units_used": 1000},
                             {"model": "gpt-4o-mini", "usage_type": "completion_tokens", "units_used": 200},
                             {"model": "whisper-1", "usage_type": "audio_minutes", "units_used": 3,
                              "cost_in_usd": 0.018}])
    assert Decimal(str(span["total_cost"])) == expected + Decimal("0.018")
    assert (span["prompt_tokens"], span["completion_tokens"]) == (1000, 200)


@pytest.mark.parametrize(
    "items",
    [
        [{"model": "gpt-4o-mini", "usage_type": "chat", "units_used": 1200}],  # tokens, split unknown
        [{"model": "dall-e-3", "usage_type": "images", "units_used": 1}],  # not tokens, no price
        [{"model": "secret-model-xyz", "usage_type": "chat", "input_tokens": 10, "output_tokens": 5}],
        [{"model": "gpt-4o-mini", "usage_type": "chat", "cost_in_usd": 0.5},
         {"model": "dall-e-3", "usage_type": "images", "units_used": 2}],  # a part without a price
    ],
)
def test_usage_that_cannot_be_priced_is_unknown_never_zero(env: Env, items: list[dict[str, Any]]) -> None:
    span = _usage_span(env, items)
    assert span["total_cost"] is None
    with env.srv.client() as c:
        tu = c.get(f"/api/traces/{span['trace_id']}/usage").json()["data"]
    (s,) = tu["spans"]
    assert s["costUnknown"] is True and s["counted"] and tu["total"]["unpricedCount"] == 1


@pytest.mark.parametrize(
    ("usage_type", "tokens"),
    [
        ("chat", (500, 0)), ("completion", (500, 0)), ("tokens", (500, 0)), ("embedding", (500, 0)),
        ("embeddings", (500, 0)), ("prompt_tokens", (500, 0)), ("output", (0, 500)), ("completion_tokens", (0, 500)),
        ("rerank_tokens", (500, 0)), ("Chat", (500, 0)), ("audio_minutes", (0, 0)), ("requests", (0, 0)),
    ],
)
def test_units_of_token_kinds_are_tokens(env: Env, usage_type: str, tokens: tuple[int, int]) -> None:
    span = _usage_span(env, [{"model": "m", "usage_type": usage_type, "units_used": 500, "cost_in_usd": 0.01}])
    assert (span["prompt_tokens"], span["completion_tokens"]) == tokens
    assert span["total_tokens"] == sum(tokens) and Decimal(str(span["total_cost"])) == Decimal("0.01")
