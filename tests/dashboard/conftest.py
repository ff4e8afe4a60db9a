"""A real server with a MeetingMind-like workload exported through the real OTLP exporter, and a
headless Debian Chromium driven by Playwright."""

from __future__ import annotations

import os
import random
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from netra_server.testing import RunningServer, run_server
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Status, StatusCode, set_span_in_context

from netra import semconv

#: NETRA_TEST_CHROMIUM points the tests at another Chromium (and lets a test make it missing).
CHROMIUM = os.environ.get("NETRA_TEST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard"

#: tenant -> (users, root latency range in ms, model)
TENANTS = {
    "apex-legal": (["ava", "ben"], (1500, 3200), "gpt-4o"),
    "stratex-consulting": (["carl", "dana", "eve"], (800, 2500), "gpt-4o-mini"),
    "techstart-inc": (["finn"], (400, 1200), "gpt-4o-mini"),
}
TRACES_PER_TENANT = 30


def export_workload(srv: RunningServer, seed: int = 7) -> int:
    """Traces over the last 3 hours: meeting-summarization → (transcribe tool, chat generation); returns span count."""
    rng = random.Random(seed)
    exporter = OTLPSpanExporter(endpoint=srv.otlp_endpoint, headers={"x-api-key": srv.api_key})
    provider = TracerProvider(resource=Resource.create({"service.name": "meetingmind"}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = provider.get_tracer("meetingmind")
    now = time.time_ns()
    spans = 0
    for tenant, (users, (lo, hi), model) in TENANTS.items():
        for i in range(TRACES_PER_TENANT):
            user = users[i % len(users)]
            ctx_attrs = {semconv.TENANT_ID: tenant, semconv.USER_ID: user, semconv.SESSION_ID: f"{tenant}-s{i // 3}"}
            t0 = now - int(rng.uniform(60, 3 * 3600) * 1e9)
            total_ms = rng.uniform(lo, hi)
            root = tracer.start_span("meeting-summarization", start_time=t0,
                                     attributes={**ctx_attrs, semconv.SPAN_TYPE: "span", "meeting.id": f"m-{i}"})
            tool = tracer.start_span("transcribe", context=set_span_in_context(root), start_time=t0 + 2_000_000,
                                     attributes={**ctx_attrs, semconv.SPAN_TYPE: "tool"})
            tool_end = t0 + int(total_ms * 0.25e6)
            tool.end(end_time=tool_end)
            inp, out = rng.randint(800, 3000), rng.randint(100, 600)
            cost = (inp * 2.5 + out * 10) / 1e6 if model == "gpt-4o" else (inp * 0.15 + out * 0.6) / 1e6
            llm = tracer.start_span(
                f"chat {model}", context=set_span_in_context(root), start_time=tool_end + 1_000_000,
                attributes={**ctx_attrs, semconv.SPAN_TYPE: "generation", semconv.GEN_AI_PROVIDER_NAME: "openai",
                            semconv.GEN_AI_OPERATION_NAME: "chat", semconv.GEN_AI_REQUEST_MODEL: model,
                            semconv.GEN_AI_RESPONSE_MODEL: model, semconv.GEN_AI_USAGE_INPUT_TOKENS: inp,
                            semconv.GEN_AI_USAGE_OUTPUT_TOKENS: out, semconv.COST: cost,
                            semconv.COST_SOURCE: "provider"},
            )
            llm.add_event("gen_ai.choice", attributes={"finish_reason": "stop"}, timestamp=t0 + int(total_ms * 0.9e6))
            if tenant == "techstart-inc" and i == 3:
                llm.set_status(Status(StatusCode.ERROR, "rate limited"))
            llm.end(end_time=t0 + int(total_ms * 0.95e6))
            root.set_attribute(semconv.USAGE_COVERED, True)
            root.end(end_time=t0 + int(total_ms * 1e6))
            spans += 3
    provider.shutdown()
    return spans


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with run_server(tmp_path_factory.mktemp("dashboard")) as srv:
        n = export_workload(srv)
        srv.wait_for_spans(n)
        yield srv


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        message = (
            f"the browser tests need Chromium at {CHROMIUM}, which is not there. Install Debian's chromium: "
            "`sudo apt-get install chromium` (scripts/test does it when run as root)"
        )
        pytest.skip(message)  # a failure in CI: the suite's rule in tests/conftest.py
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )
        yield b
        b.close()
