"""Our ``Netra.usage`` results are the published netra-sdk's models: the same fields with the same types,
and code written for those (``.model_dump()``, float arithmetic on ``total_cost``, field names) runs
unchanged; exact money is ``total_cost_usd`` beside them."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from netra import semconv
from netra.usage import UsageClient

from .conftest import Env

MODELS = ("SessionUsageData", "TenantUsageData", "TraceSummary", "TracesPage", "TraceSpan", "SpansPage")

_SCHEMAS = """
import json, sys
from netra.usage import models
out = {}
for name in sys.argv[1:]:
    schema = getattr(models, name).model_json_schema(ref_template="{model}")
    out[name] = {"properties": schema["properties"], "required": sorted(schema.get("required", []))}
print(json.dumps(out))
"""


def _strip(schema: Any) -> Any:
    """A property's schema without its title and description (only the type matters)."""
    if isinstance(schema, dict):
        return {k: _strip(v) for k, v in schema.items() if k not in ("title", "description", "default")}
    if isinstance(schema, list):
        return [_strip(v) for v in schema]
    return schema


def test_fields_and_types_are_the_published_ones(published_python: Path) -> None:
    done = subprocess.run([str(published_python), "-c", _SCHEMAS, *MODELS], capture_output=True, text=True, check=True,
                          cwd="/")
    published = json.loads(done.stdout)
    from netra.usage import models

    for name in MODELS:
        ours = getattr(models, name).model_json_schema(ref_template="{model}")
        theirs = published[name]
        missing = set(theirs["properties"]) - set(ours["properties"])
        assert not missing, f"{name} lacks {missing}"
        for field, schema in theirs["properties"].items():
            assert _strip(ours["properties"][field]) == _strip(schema), f"{name}.{field}"
        assert sorted(ours.get("required", [])) == theirs["required"], name
        extra = set(ours["properties"]) - set(theirs["properties"])
        assert extra <= {"total_cost_usd"}, f"{name} adds {extra}"


# Code written for the published SDK's results (a billing job), verbatim.
def monthly_invoice_line(usage: Any, margin: float = 0.2, platform_fee: float = 0.5) -> dict[str, Any]:
    row = usage.model_dump()
    row["billed"] = round(usage.total_cost * (1 + margin) + platform_fee, 6)
    row["discounted"] = usage.total_cost - 0.0001 if usage.total_cost > 0.0001 else 0.0
    row["per_request"] = usage.total_cost / max(usage.request_count, 1)
    row["json"] = usage.model_dump_json()
    row["tokens_k"] = usage.token_count / 1000
    return row


@pytest.fixture(scope="module")
def tenant_data(env: Env) -> tuple[str, str, Decimal]:
    """Three priced model calls of one tenant (costs with more digits than a float keeps in a sum)."""
    provider = TracerProvider(resource=Resource.create({"service.name": "compat-models"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=env.srv.otlp_endpoint,
                                                                     headers=env.srv.headers)))
    tracer = provider.get_tracer("compat")
    costs = [Decimal("0.1"), Decimal("0.2"), Decimal("0.0000000001")]
    for i, cost in enumerate(costs):
        with tracer.start_as_current_span("chat my-llm", attributes={
            semconv.TENANT_ID: "invoice-tenant", semconv.SESSION_ID: f"inv-s{i % 2}",
            semconv.GEN_AI_REQUEST_MODEL: "my-llm", semconv.GEN_AI_USAGE_INPUT_TOKENS: 100,
            semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 10, semconv.COST: str(cost),
        }):
            pass
    provider.shutdown()
    now = datetime.now(UTC)
    return ((now - timedelta(hours=1)).isoformat(), (now + timedelta(hours=1)).isoformat(), sum(costs, Decimal(0)))


def test_code_written_for_the_published_results_runs_with_ours(env: Env, tenant_data: tuple[str, str, Decimal]) -> None:
    start, end, total = tenant_data
    with UsageClient(env.srv.base_url, env.srv.api_key) as usage:
        tenant = usage.get_tenant_usage("invoice-tenant", start, end)
        session = usage.get_session_usage("inv-s0", start, end)
        page = usage.list_traces(start, end, tenant_id="invoice-tenant")
        spans = usage.list_spans_by_trace_id(page.traces[0].id)
    assert tenant is not None and session is not None and spans is not None
    line = monthly_invoice_line(tenant)
    assert line["tenant_id"] == "invoice-tenant" and line["request_count"] == 3 and line["session_count"] == 2
    assert isinstance(tenant.total_cost, float) and tenant.total_cost == float(total)
    assert line["billed"] == round(float(total) * 1.2 + 0.5, 6)
    assert json.loads(line["json"])["total_cost"] == float(total)
    # Exact money for invoices: total_cost_usd, a Decimal with every digit the server stored.
    assert tenant.total_cost_usd == total == Decimal("0.3000000001")
    assert json.loads(line["json"])["total_cost_usd"] == "0.3000000001"
    assert monthly_invoice_line(session)["request_count"] == 2
    for trace in page.traces:  # float arithmetic on the optional costs, as the docs' code does
        assert trace.total_cost is not None and trace.total_cost * 2 > 0
        assert trace.model_dump()["kind"] == "GENERATION" and trace.total_cost_usd in (Decimal("0.1"), Decimal("0.2"),
                                                                                       Decimal("0.0000000001"))
    (span,) = spans.spans
    assert span.model_dump()["start_time_ms"].isdigit() and span.kind == "GENERATION"
    assert page.model_dump()["has_next_page"] is False and vars(page)["traces"] == page.traces


def test_the_published_models_can_be_built_and_validated_as_there() -> None:
    """Code that builds the results itself (tests, caches) keeps working: the published constructor
    (keywords), validation, and total_cost_usd filled in from total_cost (its decimal)."""
    from netra.usage import SessionUsageData, TenantUsageData, TraceSpan

    s = SessionUsageData(session_id="s", token_count=1, request_count=1, total_cost=0.1)
    assert s.total_cost_usd == Decimal("0.1") and s.model_dump()["total_cost"] == 0.1
    t = TenantUsageData.model_validate({"tenant_id": "t", "organisation_id": "o", "token_count": 0,
                                        "request_count": 0, "session_count": 0, "total_cost_usd": "1.25"})
    assert t.total_cost == 1.25
    with pytest.raises(ValueError):
        TraceSpan.model_validate({"id": "x"})
    with pytest.raises(ValueError):  # frozen, as results should be
        s.total_cost = 2.0  # type: ignore[misc]


def test_usage_model_units_and_cost_are_optional_as_published() -> None:
    from netra import UsageModel

    bare = UsageModel(model="gpt-4o-mini", usage_type="chat")
    assert (bare.units_used, bare.cost_in_usd) == (None, None)
    assert bare.to_dict() == {"model": "gpt-4o-mini", "usage_type": "chat"}  # what set_usage writes
    assert bare.model_dump() == {"model": "gpt-4o-mini", "usage_type": "chat", "units_used": None,
                                 "cost_in_usd": None, "input_tokens": None, "output_tokens": None,
                                 "cached_tokens": None}
    tokens = UsageModel(model="gpt-4o-mini", usage_type="chat", input_tokens=10, output_tokens=2)
    assert tokens.model_dump(exclude_none=True) == {"model": "gpt-4o-mini", "usage_type": "chat",
                                                    "input_tokens": 10, "output_tokens": 2}
    # the published SDK's model_dump() output (nulls included) is accepted back
    assert UsageModel.from_mapping({"model": "m", "usage_type": "images", "units_used": 1, "cost_in_usd": None}) == \
        UsageModel(model="m", usage_type="images", units_used=1)
    with pytest.raises(ValueError):
        UsageModel(model="m", usage_type="chat", cost_in_usd=-1)
    with pytest.raises(TypeError):
        UsageModel(model="m", usage_type="chat", units_used="3")  # type: ignore[arg-type]
