"""Helpers of the server tests: the real OpenTelemetry SDK and OTLP exporter against a running server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from netra_server.testing import RunningServer
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

T0 = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z in ns
SEC = 1_000_000_000


class Collect(SpanExporter):
    """Keeps finished spans (to export them later, or twice)."""

    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Any) -> SpanExportResult:
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def exporter(srv: RunningServer, key: str | None = None, *, gzip: bool = False, path: str = "/v1/traces",
             timeout: float = 10) -> OTLPSpanExporter:
    return OTLPSpanExporter(
        endpoint=srv.base_url + path,
        headers={"x-api-key": key or srv.api_key},
        compression=Compression.Gzip if gzip else Compression.NoCompression,
        timeout=timeout,
    )


def record(service: str = "test-svc") -> tuple[TracerProvider, Collect]:
    """A tracer provider whose finished spans are collected (then sent with :func:`send`)."""
    collect = Collect()
    provider = TracerProvider(resource=Resource.create({"service.name": service, "deployment.environment.name": "test"}))
    provider.add_span_processor(SimpleSpanProcessor(collect))
    return provider, collect


def send(srv: RunningServer, spans: list[ReadableSpan], key: str | None = None, **kw: Any) -> SpanExportResult:
    exp = exporter(srv, key, **kw)
    try:
        return exp.export(spans)
    finally:
        exp.shutdown()


def children(pid: int) -> set[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    found: set[int] = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found
