"""Builds and tears down the OpenTelemetry pipeline for ``Netra.init`` (imports the SDK; loaded lazily)."""

from __future__ import annotations

import logging
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.util.types import AttributeValue

from netra import semconv
from netra._config import NetraConfig
from netra._exporter import BatchExportProcessor, InlineExportProcessor, QuietExporterLogs
from netra.processors import NetraSpanProcessor

logger = logging.getLogger("netra")


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


def build(cfg: NetraConfig, span_exporter: SpanExporter | None, known_provider: Any) -> Pipeline:
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
