"""Shared fixtures: a real TracerProvider with an in-memory exporter, the instrumentor switched on per
test, the real ``openai`` client over ``httpx2.MockTransport``, and the recorded OpenAI exchanges."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
import yaml
from netra_instrumentation_openai import OpenAIInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

# Recorded OpenAI exchanges, vendored with their licence and origin (cassettes/README.md, NOTICE)
CASSETTES = Path(__file__).resolve().parent / "cassettes"
BASE_URL = "https://api.openai.com/v1"

# Response headers that describe the recorded transfer, not the body we replay.
_TRANSFER_HEADERS = {"content-length", "transfer-encoding", "content-encoding", "connection"}


def cassette_path(name: str) -> Path:
    if not CASSETTES.is_dir():
        raise RuntimeError(
            f"The recorded OpenAI exchanges are missing: expected the folder {CASSETTES.resolve()} "
            "(tests/instrumentation/cassettes in the repository). Restore it; these tests must not be skipped."
        )
    path = CASSETTES / f"{name}.yaml"
    if not path.is_file():
        raise RuntimeError(f"cassette {path} does not exist")
    return path


@dataclass
class Interaction:
    method: str
    path: str
    request_body: dict[str, Any]
    status: int
    headers: list[tuple[str, str]]
    body: str

    @property
    def is_sse(self) -> bool:
        return self.body.lstrip().startswith(("data:", "event:"))

    def events(self) -> list[dict[str, Any]]:
        """The JSON payloads of an SSE body (``[DONE]`` left out)."""
        out = []
        for line in self.body.splitlines():
            if line.startswith("data:"):
                data = line[5:].strip()
                if data and data != "[DONE]":
                    out.append(json.loads(data))
        return out

    def usage(self) -> dict[str, Any] | None:
        """The usage object the server reported (last one in a stream)."""
        if not self.is_sse:
            return json.loads(self.body).get("usage")
        usage = None
        for event in self.events():
            if event.get("usage"):
                usage = event["usage"]
            response = event.get("response")
            if isinstance(response, dict) and response.get("usage"):
                usage = response["usage"]
        return usage


@dataclass
class Replay:
    """Serves recorded responses in order and keeps what the real client sent."""

    interactions: list[Interaction]
    sent: list[httpx2.Request] = field(default_factory=list)

    def handler(self, request: httpx2.Request) -> httpx2.Response:
        index = len(self.sent)
        self.sent.append(request)
        if index >= len(self.interactions):
            raise AssertionError(f"unexpected request #{index + 1}: {request.method} {request.url}")
        it = self.interactions[index]
        assert request.method == it.method, (request.method, it.method)
        assert request.url.path.endswith(it.path), (request.url.path, it.path)
        return httpx2.Response(it.status, headers=it.headers, stream=httpx2.ByteStream(it.body.encode()))

    def sent_json(self, index: int = -1) -> dict[str, Any]:
        return json.loads(self.sent[index].content)


def load_cassette(name: str) -> Replay:
    data = yaml.safe_load(cassette_path(name).read_text())
    interactions = []
    for item in data["interactions"]:
        request, response = item["request"], item["response"]
        headers: list[tuple[str, str]] = []
        for key, value in (response.get("headers") or {}).items():
            if key.lower() in _TRANSFER_HEADERS:
                continue
            for v in value if isinstance(value, list) else [value]:
                headers.append((key, str(v)))
        body = request.get("body")
        interactions.append(
            Interaction(
                method=request["method"],
                path="/v1" + request["uri"].split("/v1", 1)[1],
                request_body=json.loads(body) if body else {},
                status=response["status"]["code"],
                headers=headers,
                body=response["body"]["string"],
            )
        )
    return Replay(interactions)


def sync_client(handler: Callable[[httpx2.Request], httpx2.Response], **kwargs: Any) -> openai.OpenAI:
    kwargs.setdefault("max_retries", 0)
    return openai.OpenAI(
        api_key="test-key",
        base_url=kwargs.pop("base_url", BASE_URL),
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
        **kwargs,
    )


def async_client(handler: Callable[[httpx2.Request], Any], **kwargs: Any) -> openai.AsyncOpenAI:
    kwargs.setdefault("max_retries", 0)
    return openai.AsyncOpenAI(
        api_key="test-key",
        base_url=kwargs.pop("base_url", BASE_URL),
        http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(handler)),
        **kwargs,
    )


class Traced:
    """The exporter of the test's TracerProvider, and a way to re-instrument with other options."""

    def __init__(self, provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
        self.provider = provider
        self.exporter = exporter

    def instrument(self, **options: Any) -> None:
        instrumentor = OpenAIInstrumentor()
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()
        instrumentor.instrument(tracer_provider=self.provider, **options)

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def one(self) -> ReadableSpan:
        spans = self.spans()
        assert len(spans) == 1, [s.name for s in spans]
        return spans[0]

    def clear(self) -> None:
        self.exporter.clear()


@pytest.fixture
def traced() -> Iterator[Traced]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    t = Traced(provider, exporter)
    t.instrument(capture_content=False)
    try:
        yield t
    finally:
        instrumentor = OpenAIInstrumentor()
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()
        provider.shutdown()
