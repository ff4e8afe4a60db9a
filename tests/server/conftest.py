"""Fixtures for the server tests: a real server per module, the real OpenTelemetry SDK and OTLP exporter."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from netra_server.testing import netra_server  # noqa: F401  (module-scoped fixture)
from opentelemetry.sdk.trace import TracerProvider

from ._helpers import Collect, record


@pytest.fixture
def recorder() -> Iterator[Callable[..., tuple[TracerProvider, Collect]]]:
    providers: list[TracerProvider] = []

    def make(service: str = "test-svc") -> tuple[TracerProvider, Collect]:
        p, c = record(service)
        providers.append(p)
        return p, c

    yield make
    for p in providers:
        p.shutdown()
