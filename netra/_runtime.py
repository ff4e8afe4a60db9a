"""What ``Netra.init`` starts and ``Netra.shutdown`` stops (imports the OpenTelemetry SDK; loaded lazily).

:func:`start` turns a resolved :class:`~netra._config.NetraConfig` into a :class:`Runtime`: price
overrides, the tracer provider (Netra's own, or Netra's processor on the one the application set), the
export processor and its exporter, the instrumentors, the at-exit hook, the price-table warm-up, and
the usage and credits clients made on first use. The ``Netra`` facade validates its arguments, holds at
most one runtime, and forwards to it.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.util.types import AttributeValue

from netra import config, semconv
from netra._config import NetraConfig
from netra._exporter import BatchExportProcessor, InlineExportProcessor, QuietExporterLogs
from netra.processors import NetraSpanProcessor

if TYPE_CHECKING:
    from netra.credits import AsyncCreditsClient, CreditsClient
    from netra.usage import ClientOptions, UsageClient

logger = logging.getLogger("netra")

#: The TracerProvider Netra created, if it did: kept across ``shutdown`` and reused by the next ``init``
#: (OpenTelemetry lets the global provider be set only once).
_own_provider: TracerProvider | None = None
_atexit_registered = False


class Pipeline:
    """What one ``Netra.init`` set up; ``close`` undoes it (the provider and processor stay attached)."""

    def __init__(
        self,
        provider: Any,
        processor: NetraSpanProcessor,
        export: BatchExportProcessor | InlineExportProcessor,
        quiet: QuietExporterLogs | None,
        own_provider: bool,
    ) -> None:
        self.own_provider = own_provider
        self.provider = provider
        self.processor = processor
        self.export = export
        self.quiet = quiet

    def flush(self, timeout_s: float) -> bool:
        return self.export.force_flush(int(timeout_s * 1000))

    def close(self, timeout_s: float) -> None:
        self.processor.deactivate()
        try:
            if isinstance(self.export, BatchExportProcessor):
                self.export.shutdown(int(timeout_s * 1000))
            else:
                self.export.shutdown()
        finally:
            if self.quiet is not None:
                self.quiet.remove()


def _resource_attributes(cfg: NetraConfig) -> dict[str, AttributeValue]:
    attributes: dict[str, AttributeValue] = dict(cfg.resource_attributes)
    if cfg.app_name:
        attributes[SERVICE_NAME] = cfg.app_name
    if cfg.environment:
        attributes[semconv.ENVIRONMENT] = cfg.environment
    return attributes


def _replace_resource(provider: TracerProvider, resource: Resource) -> None:
    """Give a provider Netra created earlier the resource of this init (and its cached tracers)."""
    try:
        with provider._tracers_lock:
            provider._resource = resource
            for tracer in provider._tracers.values():
                tracer._set_resource(resource)
    except AttributeError:  # SDK internals changed: keep the first init's resource
        logger.debug("Netra: could not update the tracer provider's resource", exc_info=True)


def _find_processor(provider: Any) -> NetraSpanProcessor | None:
    multi = getattr(provider, "_active_span_processor", None)
    for processor in getattr(multi, "_span_processors", ()):
        if isinstance(processor, NetraSpanProcessor):
            return processor
    return None


def build_pipeline(cfg: NetraConfig, span_exporter: SpanExporter | None, known_provider: Any) -> Pipeline:
    """Attach (or reuse) Netra's processor on the global TracerProvider and configure export."""
    resource_attributes = _resource_attributes(cfg)
    static: dict[str, AttributeValue] | None = None
    own = True
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        provider = current
        processor = _find_processor(provider)
        if current is known_provider and processor is not None:
            # our own provider from an earlier init: keep it, refresh its resource
            _replace_resource(provider, Resource.create(resource_attributes))
        else:
            logger.warning(
                "Netra: a global TracerProvider is already set; adding Netra's span processor to it (its "
                "resource and other processors are kept; app_name and environment are added to each span)."
            )
            own = False
            static = {k: v for k, v in resource_attributes.items() if k in (SERVICE_NAME, semconv.ENVIRONMENT)}
            if processor is None:
                processor = NetraSpanProcessor()
                provider.add_span_processor(processor)
    else:
        provider = TracerProvider(resource=Resource.create(resource_attributes), shutdown_on_exit=False)
        processor = NetraSpanProcessor()
        provider.add_span_processor(processor)
        if type(current).__name__ == "ProxyTracerProvider":
            trace.set_tracer_provider(provider)
        else:
            logger.warning(
                "Netra: the global tracer provider is a %s, not an OpenTelemetry SDK TracerProvider, so Netra "
                "cannot add its processor to it. Netra's own spans are exported, but spans from other "
                "instrumentations go to that provider. Let Netra.init set up tracing, or use an SDK "
                "TracerProvider.",
                type(current).__name__,
            )

    quiet: QuietExporterLogs | None = None
    destination = "your span exporter"
    if span_exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        span_exporter = OTLPSpanExporter(
            endpoint=cfg.traces_endpoint, headers=cfg.headers, timeout=cfg.export_timeout_s
        )
        destination = cfg.traces_endpoint
        if not cfg.debug_mode:
            quiet = QuietExporterLogs()
            quiet.install()
    export: BatchExportProcessor | InlineExportProcessor
    if cfg.disable_batch:
        export = InlineExportProcessor(span_exporter, destination=destination, quiet_logs=quiet)
    else:
        export = BatchExportProcessor(
            span_exporter,
            max_queue_size=cfg.max_queue_size,
            max_queue_bytes=cfg.max_queue_bytes,
            max_export_batch_size=cfg.max_export_batch_size,
            schedule_delay_millis=cfg.schedule_delay_ms,
            destination=destination,
            quiet_logs=quiet,
        )
    processor.configure(
        export, blocked_spans=cfg.blocked_spans, trace_content=cfg.trace_content, static_attributes=static
    )
    return Pipeline(provider, processor, export, quiet, own)


# ---------------------------------------------------------------------------------------------------
# The runtime of one Netra.init


class Runtime:
    """What one ``Netra.init`` started; :meth:`close` undoes it (the provider and processor stay attached)."""

    def __init__(self, cfg: NetraConfig, pipeline: Pipeline, instrumentors: list[Any], prices_set: bool) -> None:
        self.config = cfg
        self.pipeline = pipeline
        self.instrumentors = instrumentors
        self._prices_set = prices_set
        self._lock = threading.Lock()
        self._usage: UsageClient | None = None
        self._credits: tuple[CreditsClient, AsyncCreditsClient] | None = None

    @property
    def provider(self) -> Any:
        return self.pipeline.provider

    def client_options(self) -> ClientOptions:
        """The usage and credits clients' options: the server Netra exports to, with the same key and headers."""
        from netra.usage import ClientOptions, base_url_from_endpoint

        cfg = self.config
        headers = {k: v for k, v in cfg.headers.items() if k != "x-api-key"}
        return ClientOptions(base_url_from_endpoint(cfg.endpoint), cfg.api_key, headers or None)

    def usage_client(self) -> UsageClient:
        with self._lock:
            if self._usage is None:
                from netra.usage import UsageClient

                self._usage = UsageClient.from_options(self.client_options())
            return self._usage

    def credits_clients(self) -> tuple[CreditsClient, AsyncCreditsClient]:
        with self._lock:
            if self._credits is None:
                from netra.credits import AsyncCreditsClient, CreditsClient

                options = self.client_options()
                self._credits = (CreditsClient.from_options(options), AsyncCreditsClient.from_options(options))
            return self._credits

    def flush(self, timeout_s: float) -> bool:
        return self.pipeline.flush(timeout_s)

    def export_stats(self) -> dict[str, int]:
        return self.pipeline.export.stats.as_dict()

    def close(self, timeout_s: float) -> None:
        """Switch the instrumentations off, flush (at most ``timeout_s``), stop exporting, close the clients."""
        from netra.instrumentation import instruments

        instruments.uninstrument(self.instrumentors)
        self.instrumentors = []
        config._set(None)
        with self._lock:
            usage, self._usage = self._usage, None
            credits, self._credits = self._credits, None
        try:
            self.pipeline.close(timeout_s)
        finally:
            if usage is not None:
                _quietly(usage.close, "closing the usage client")
            if credits is not None:
                _quietly(credits[0].close, "closing the credits client")  # the async one closes with its loop
            if self._prices_set:
                self._prices_set = False
                _quietly(_clear_prices, "clearing price overrides")


def start(
    cfg: NetraConfig,
    *,
    prices: Mapping[str, Any] | None,
    span_exporter: SpanExporter | None,
    at_exit: Callable[[], None],
) -> Runtime:
    """Start tracing and export for ``cfg``; ``at_exit`` is registered once per process (``Netra.shutdown``).

    A bad price raises before anything starts; a failure (or an interrupt) after export started stops
    what this call started before it propagates, so nothing is left half-initialised.
    """
    global _own_provider, _atexit_registered
    from netra.instrumentation import instruments

    if cfg.debug_mode:
        _configure_debug_logging()
    prices_set = False
    if prices:
        from netra import pricing

        pricing.set_price_overrides(prices)  # validates: a bad price raises before anything starts
        prices_set = True
    try:
        pipeline = build_pipeline(cfg, span_exporter, _own_provider)
    except BaseException:
        if prices_set:
            _clear_prices()
        raise
    if pipeline.own_provider:
        _own_provider = pipeline.provider
    runtime = Runtime(cfg, pipeline, [], prices_set)
    try:
        config._set(
            config._Runtime(
                trace_content=cfg.trace_content,
                max_content_length=cfg.max_content_length,
                openai_stream_usage=cfg.openai_stream_usage,
            )
        )
        runtime.instrumentors = instruments.instrument(
            cfg.instruments, cfg.block_instruments, tracer_provider=pipeline.provider
        )
    except BaseException:  # nobody else holds this runtime yet: stop what it started
        runtime.close(0.1)
        raise
    if not _atexit_registered:
        atexit.register(at_exit)
        _atexit_registered = True
    if runtime.instrumentors:  # they price each call: load the price table now, off the hot path
        threading.Thread(target=_warm_prices, name="netra-price-warmup", daemon=True).start()
    logger.debug("Netra: initialised, exporting to %s", cfg.traces_endpoint)
    return runtime


def forget_own_provider() -> TracerProvider | None:
    """Forget (and return) the provider Netra created, so the next init makes a new one (tests)."""
    global _own_provider
    provider, _own_provider = _own_provider, None
    return provider


def _configure_debug_logging() -> None:
    netra_logger = logging.getLogger("netra")
    netra_logger.setLevel(logging.DEBUG)
    if not netra_logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        netra_logger.addHandler(handler)


def _warm_prices() -> None:
    try:
        from netra import pricing

        pricing.warm_up()
    except Exception:
        logger.debug("Netra: price table warm-up failed", exc_info=True)


def _clear_prices() -> None:
    from netra import pricing

    pricing.clear_price_overrides()


def _quietly(action: Callable[[], object], what: str) -> None:
    try:
        action()
    except Exception:
        logger.debug("Netra: %s failed", what, exc_info=True)
