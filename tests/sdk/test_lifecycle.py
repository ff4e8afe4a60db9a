"""Netra.init / shutdown / re-init / reset, an existing global TracerProvider, Netra.usage, prices."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from netra import Netra, config, semconv
from netra._testing import reset

from .conftest import by_name


def test_second_init_is_a_noop_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    first, second = InMemorySpanExporter(), InMemorySpanExporter()
    Netra.init(app_name="first", span_exporter=first, disable_batch=True, instruments=set())
    with caplog.at_level(logging.WARNING, logger="netra"):
        Netra.init(app_name="second", span_exporter=second, disable_batch=True, instruments=set())
    assert "already initialised" in caplog.text and "Netra.shutdown() first" in caplog.text
    with Netra.start_span("s"):
        pass
    assert len(first.get_finished_spans()) == 1 and not second.get_finished_spans()
    assert first.get_finished_spans()[0].resource.attributes["service.name"] == "first"


def test_shutdown_flushes_the_batch_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "600000")  # the worker would wait ten minutes
    exporter = InMemorySpanExporter()
    Netra.init(span_exporter=exporter, instruments=set())
    for i in range(5):
        with Netra.start_span(f"s{i}"):
            pass
    assert exporter.get_finished_spans() == ()
    assert Netra.flush(timeout=5)
    assert len(exporter.get_finished_spans()) == 5
    with Netra.start_span("last"):
        pass
    Netra.shutdown()
    assert len(exporter.get_finished_spans()) == 6
    assert Netra.export_stats()["exported"] == 0  # stats are per init; after shutdown: zeros
    Netra.shutdown()  # idempotent


def test_init_after_shutdown_works_and_applies_new_settings() -> None:
    first, second = InMemorySpanExporter(), InMemorySpanExporter()
    Netra.init(app_name="one", span_exporter=first, disable_batch=True, instruments=set())
    with Netra.start_span("a"):
        pass
    Netra.shutdown()
    assert not Netra.is_initialized() and not config.active()
    with Netra.start_span("between"):  # not exported anywhere
        pass
    Netra.init(app_name="two", span_exporter=second, disable_batch=True, instruments=set(), trace_content=False)
    assert config.active() and not config.trace_content_enabled()
    with Netra.start_span("b"):
        pass
    Netra.shutdown()
    assert [s.name for s in first.get_finished_spans()] == ["a"]
    (b,) = second.get_finished_spans()
    assert b.name == "b" and b.resource.attributes["service.name"] == "two"


def test_existing_global_provider_gets_netra_processor(caplog: pytest.LogCaptureFixture) -> None:
    theirs = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(theirs))
    trace.set_tracer_provider(provider)
    ours = InMemorySpanExporter()
    with caplog.at_level(logging.WARNING, logger="netra"):
        Netra.init(app_name="svc", environment="prod", span_exporter=ours, disable_batch=True, instruments=set())
    assert "already set" in caplog.text
    assert trace.get_tracer_provider() is provider
    Netra.set_tenant_id("t1")
    with trace.get_tracer("their.lib").start_as_current_span("their-span"):
        pass
    Netra.shutdown()
    (mine,) = ours.get_finished_spans()
    attrs = mine.attributes or {}
    assert attrs[semconv.TENANT_ID] == "t1"
    assert attrs["service.name"] == "svc" and attrs[semconv.ENVIRONMENT] == "prod"
    assert [s.name for s in theirs.get_finished_spans()] == ["their-span"]
    # re-init on the same provider reuses the processor instead of adding a second one
    again = InMemorySpanExporter()
    Netra.init(span_exporter=again, disable_batch=True, instruments=set())
    with trace.get_tracer("their.lib").start_as_current_span("again"):
        pass
    Netra.shutdown()
    assert len(again.get_finished_spans()) == 1


def test_reset_gives_a_blank_state(memory_exporter: InMemorySpanExporter) -> None:
    Netra.init(span_exporter=memory_exporter, disable_batch=True, instruments=set())
    Netra.set_tenant_id("t")
    reset()
    assert not Netra.is_initialized()
    assert Netra.get_context() == {}
    assert type(trace.get_tracer_provider()).__name__ == "ProxyTracerProvider"
    Netra._reset_for_tests()


def test_otel_sdk_disabled(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    with caplog.at_level(logging.WARNING, logger="netra"):
        Netra.init(span_exporter=InMemorySpanExporter(), instruments=set())
    assert not Netra.is_initialized() and "OTEL_SDK_DISABLED" in caplog.text


def test_usage_client_is_lazy_and_closed_on_shutdown() -> None:
    with pytest.raises(RuntimeError, match="Netra.init"):
        Netra.usage  # noqa: B018
    Netra.init(endpoint="http://127.0.0.1:9/telemetry", api_key="k-123", span_exporter=InMemorySpanExporter(),
               instruments=set())
    client = Netra.usage
    assert client is Netra.usage
    assert type(client).__name__ == "UsageClient"
    assert "127.0.0.1:9" in repr(client) and "/telemetry" not in repr(client)
    Netra.shutdown()
    assert client.closed


def test_usage_and_credits_clients_use_the_endpoint_key_and_headers_of_init() -> None:
    from netra.usage import ClientOptions

    with pytest.raises(RuntimeError, match="Netra.credits needs Netra.init"):
        Netra.async_credits  # noqa: B018
    Netra.init(endpoint="http://127.0.0.1:9/telemetry/v1/traces", api_key="k-1", headers="x-team=a",
               span_exporter=InMemorySpanExporter(), instruments=set())
    expected = ClientOptions("http://127.0.0.1:9", "k-1", {"x-team": "a"})
    usage, credits, async_credits = Netra.usage, Netra.credits, Netra.async_credits
    assert usage.options == expected
    assert credits._http.options == expected and async_credits._http.options == expected
    assert usage.base_url == credits.base_url == async_credits.base_url == "http://127.0.0.1:9"
    assert credits is Netra.credits and async_credits is Netra.async_credits
    Netra.shutdown()
    assert usage.closed and credits._http.closed
    Netra.init(endpoint="http://127.0.0.1:10", span_exporter=InMemorySpanExporter(), instruments=set())
    assert Netra.usage is not usage and Netra.usage.base_url == "http://127.0.0.1:10"
    assert Netra.credits is not credits and Netra.credits.base_url == "http://127.0.0.1:10"


def test_an_init_interrupted_after_export_started_leaves_nothing_running(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from netra import pricing
    from netra.instrumentation import instruments

    def interrupted(*args: object, **kwargs: object) -> list[object]:
        raise KeyboardInterrupt  # e.g. Ctrl-C while the instrumentations load

    monkeypatch.setattr(instruments, "instrument", interrupted)
    exporter = InMemorySpanExporter()
    with pytest.raises(KeyboardInterrupt):
        Netra.init(span_exporter=exporter, prices={"my-finetune": {"input_per_mtok": 1, "output_per_mtok": 2}})
    assert not Netra.is_initialized() and not config.active()
    assert pricing.calculate_cost("my-finetune", input_tokens=1).cost is None
    assert not any(t.name == "NetraSpanExporter" and t.is_alive() for t in threading.enumerate())
    with Netra.start_span("after"):
        pass
    assert exporter.get_finished_spans() == ()
    monkeypatch.undo()
    fresh = InMemorySpanExporter()  # the first one was shut down with the interrupted runtime
    Netra.init(span_exporter=fresh, disable_batch=True, instruments=set())
    with Netra.start_span("again"):
        pass
    assert [s.name for s in fresh.get_finished_spans()] == ["again"]


def test_prices_are_passed_to_the_price_table() -> None:
    from netra import pricing

    Netra.init(span_exporter=InMemorySpanExporter(), instruments=set(),
               prices={"my-finetune": {"input_per_mtok": 1, "output_per_mtok": 2}})
    cost = pricing.calculate_cost("my-finetune", input_tokens=1_000_000, output_tokens=1_000_000)
    assert cost.cost == Decimal(3)
    Netra.shutdown()  # overrides set by init are cleared by shutdown
    assert pricing.calculate_cost("my-finetune", input_tokens=1).cost is None


def test_bad_arguments_say_what_to_fix() -> None:
    from netra import pricing
    from netra._config import ConfigError

    with pytest.raises(ValueError, match="input_per_mtok"):
        Netra.init(prices={"x": {"input_per_mtok": 1}}, span_exporter=InMemorySpanExporter(), instruments=set())
    assert pricing.calculate_cost("x", input_tokens=1).cost is None

    with pytest.raises(ConfigError, match="http:// or https://"):
        Netra.init(endpoint="localhost:4318", instruments=set())
    with pytest.raises(ConfigError, match="max_queue_size"):
        Netra.init(max_queue_size=0, span_exporter=InMemorySpanExporter(), instruments=set())
    with pytest.raises(ConfigError, match="blocked_spans"):
        Netra.init(blocked_spans="health", span_exporter=InMemorySpanExporter(), instruments=set())
    assert not Netra.is_initialized()


def test_netra_is_not_instantiated() -> None:
    with pytest.raises(TypeError, match="not instantiated"):
        Netra()


def test_debug_mode_keeps_exporter_logs(memory_exporter: InMemorySpanExporter) -> None:
    Netra.init(debug_mode=True, span_exporter=memory_exporter, instruments=set(), disable_batch=True)
    assert logging.getLogger("netra").level == logging.DEBUG
    with Netra.start_span("dbg"):
        pass
    Netra.shutdown()
    logging.getLogger("netra").setLevel(logging.NOTSET)
    assert by_name(memory_exporter)["dbg"]
