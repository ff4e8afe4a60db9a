"""The ``Netra`` facade: init / shutdown, request context, spans, the usage client.

Kept import-light: the OpenTelemetry SDK, the exporter, pricing and the usage client are imported on
first use (``Netra.init``, ``Netra.usage``), so ``import netra`` stays cheap.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from opentelemetry import trace
from opentelemetry.util.types import AttributeValue

from netra import _context, config, semconv
from netra._types import SpanType
from netra.span_wrapper import SpanWrapper

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

    from netra._config import NetraConfig
    from netra._pipeline import Pipeline
    from netra.credits import AsyncCreditsClient, CreditsClient
    from netra.usage import UsageClient

logger = logging.getLogger("netra")

_P = ParamSpec("_P")
_R = TypeVar("_R")

DEFAULT_MODULE_NAME = "netra"
_TYPE_VALUES: dict[Any, str] = {t: t.value for t in SpanType}
_TYPE_VALUES.update({t.value: t.value for t in SpanType})


class _State:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.config: NetraConfig | None = None
        self.pipeline: Pipeline | None = None
        self.provider: Any = None  # the SDK provider Netra's processor lives on (kept across inits)
        self.own_provider: Any = None  # the provider Netra created, if it did
        self.instrumentors: list[Any] = []
        self.usage_client: UsageClient | None = None
        self.credits_clients: tuple[CreditsClient, AsyncCreditsClient] | None = None
        self.prices_set = False
        self.atexit_registered = False
        self.tracers: dict[str, trace.Tracer] = {}


_state = _State()


def _tracer(module_name: str) -> trace.Tracer:
    tracer = _state.tracers.get(module_name)
    if tracer is None:
        provider = _state.provider
        tracer = provider.get_tracer(module_name) if provider is not None else trace.get_tracer(module_name)
        if len(_state.tracers) < 512:  # bounded: module names are normally a handful
            _state.tracers[module_name] = tracer
    return tracer


def _span_type(as_type: SpanType | str) -> str:
    value = _TYPE_VALUES.get(as_type)
    if value is None:
        try:
            value = SpanType(str(as_type).lower()).value
        except ValueError:
            raise ValueError(
                f"as_type must be one of {', '.join(t.value for t in SpanType)} (SpanType), got {as_type!r}"
            ) from None
    return value


def start_span(
    name: str,
    attributes: Mapping[str, AttributeValue] | None = None,
    module_name: str = DEFAULT_MODULE_NAME,
    as_type: SpanType | str = SpanType.SPAN,
) -> SpanWrapper:
    attrs: dict[str, AttributeValue] = {semconv.SPAN_TYPE: _span_type(as_type)}
    if attributes:
        attrs.update(attributes)
    return SpanWrapper(name, attrs, _tracer(module_name))


def _atexit_shutdown() -> None:
    try:
        Netra.shutdown()
    except Exception:  # pragma: no cover - interpreter teardown
        pass


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


class _NetraMeta(type):
    @property
    def usage(cls) -> UsageClient:
        """A :class:`netra.usage.UsageClient` for the server Netra exports to (created on first use)."""
        with _state.lock:
            client = _state.usage_client
            if client is None:
                cfg = _state.config
                if cfg is None:
                    raise RuntimeError(
                        "Netra.usage needs Netra.init(...) first (it uses the same endpoint and API key); "
                        "or create netra.usage.UsageClient(base_url=..., api_key=...) yourself"
                    )
                from netra.usage import UsageClient, base_url_from_endpoint

                headers = {k: v for k, v in cfg.headers.items() if k != "x-api-key"}
                client = UsageClient(
                    base_url_from_endpoint(cfg.endpoint), cfg.api_key, headers=headers or None
                )
                _state.usage_client = client
            return client

    @property
    def credits(cls) -> CreditsClient:
        """A :class:`netra.credits.CreditsClient` for the server Netra exports to (see docs/credits.md)."""
        return cls._credits()[0]

    @property
    def async_credits(cls) -> AsyncCreditsClient:
        """The async twin of :attr:`credits` (:class:`netra.credits.AsyncCreditsClient`)."""
        return cls._credits()[1]

    def _credits(cls) -> tuple[CreditsClient, AsyncCreditsClient]:
        with _state.lock:
            clients = _state.credits_clients
            if clients is None:
                cfg = _state.config
                if cfg is None:
                    raise RuntimeError(
                        "Netra.credits needs Netra.init(...) first (it uses the same endpoint and API key); "
                        "or create netra.credits.CreditsClient(base_url=..., api_key=...) yourself"
                    )
                from netra.credits import AsyncCreditsClient, CreditsClient
                from netra.usage import base_url_from_endpoint

                headers = {k: v for k, v in cfg.headers.items() if k != "x-api-key"}
                base = base_url_from_endpoint(cfg.endpoint)
                clients = (CreditsClient(base, cfg.api_key, headers=headers or None),
                           AsyncCreditsClient(base, cfg.api_key, headers=headers or None))
                _state.credits_clients = clients
            return clients


class Netra(metaclass=_NetraMeta):
    """Entry point of the SDK. All methods are class methods; there is nothing to instantiate."""

    def __init__(self) -> None:
        raise TypeError("Netra is not instantiated: call Netra.init(...), Netra.start_span(...) ...")

    # -- lifecycle -------------------------------------------------------------------------------

    @classmethod
    def init(
        cls,
        app_name: str | None = None,
        headers: str | Mapping[str, str] | None = None,
        environment: str | None = None,
        trace_content: bool | None = None,
        instruments: Iterable[Any] | None = None,
        *,
        endpoint: str | None = None,
        api_key: str | None = None,
        disable_batch: bool = False,
        resource_attributes: Mapping[str, Any] | None = None,
        blocked_spans: Iterable[str] | None = None,
        block_instruments: Iterable[Any] | None = None,
        debug_mode: bool = False,
        prices: Mapping[str, Any] | None = None,
        openai_stream_usage: bool = True,
        max_content_length: int | None = None,
        max_queue_size: int | None = None,
        export_timeout: float | None = None,
        span_exporter: SpanExporter | None = None,
        max_queue_bytes: int | None = None,
    ) -> None:
        """Set up tracing and export. See ``docs/sdk.md`` for every argument and environment variable.

        A second call while initialised logs a warning and changes nothing (``Netra.shutdown()`` first).
        """
        with _state.lock:
            if _state.config is not None:
                logger.warning(
                    "Netra.init() called again while Netra is already initialised: ignored, the first "
                    "settings stay. Call Netra.shutdown() first to initialise with other settings."
                )
                return
            from netra._config import env_bool

            if env_bool("OTEL_SDK_DISABLED", False):
                logger.warning("Netra: OTEL_SDK_DISABLED is true; Netra.init does nothing")
                return
            from netra import _config, _install, _pipeline
            from netra.instrumentation import instruments as _instruments

            _install.warn_on_conflict()  # netra-sdk installed beside us: one `netra` folder, two packages

            cfg = _config.resolve(
                app_name=app_name,
                headers=headers,
                environment=environment,
                trace_content=trace_content,
                endpoint=endpoint,
                api_key=api_key,
                disable_batch=disable_batch,
                resource_attributes=resource_attributes,
                blocked_spans=blocked_spans,
                debug_mode=debug_mode,
                openai_stream_usage=openai_stream_usage,
                max_content_length=max_content_length,
                max_queue_size=max_queue_size,
                max_queue_bytes=max_queue_bytes,
                export_timeout=export_timeout,
                instruments=instruments,
                block_instruments=block_instruments,
            )
            if cfg.debug_mode:
                _configure_debug_logging()
            if prices:
                from netra import pricing

                pricing.set_price_overrides(prices)  # validates: a bad price raises before anything starts
                _state.prices_set = True
            try:
                pipeline = _pipeline.build(cfg, span_exporter, _state.own_provider)
            except BaseException:
                if _state.prices_set:
                    _state.prices_set = False
                    from netra import pricing

                    pricing.clear_price_overrides()
                raise
            _state.pipeline = pipeline
            _state.provider = pipeline.provider
            if pipeline.own_provider:
                _state.own_provider = pipeline.provider
            _state.tracers.clear()
            _state.config = cfg
            config._set(
                config._Runtime(
                    trace_content=cfg.trace_content,
                    max_content_length=cfg.max_content_length,
                    openai_stream_usage=cfg.openai_stream_usage,
                )
            )
            _state.instrumentors = _instruments.instrument(
                cfg.instruments, cfg.block_instruments, tracer_provider=pipeline.provider
            )
            if not _state.atexit_registered:
                atexit.register(_atexit_shutdown)
                _state.atexit_registered = True
            if _state.instrumentors:  # they price each call: load the price table now, off the hot path
                threading.Thread(target=_warm_prices, name="netra-price-warmup", daemon=True).start()
            logger.debug("Netra: initialised, exporting to %s", cfg.traces_endpoint)

    @classmethod
    def is_initialized(cls) -> bool:
        return _state.config is not None

    @classmethod
    def flush(cls, timeout: float = 10.0) -> bool:
        """Export every finished span now; False if ``timeout`` seconds passed first."""
        pipeline = _state.pipeline
        return pipeline.flush(timeout) if pipeline is not None else True

    @classmethod
    def shutdown(cls, timeout: float = 5.0) -> None:
        """Flush (at most ``timeout`` seconds), stop exporting, switch instrumentations off.

        Idempotent. ``Netra.init`` may be called again afterwards.
        """
        with _state.lock:
            pipeline, _state.pipeline = _state.pipeline, None
            if _state.config is None and pipeline is None:
                return
            from netra.instrumentation import instruments as _instruments

            _instruments.uninstrument(_state.instrumentors)
            _state.instrumentors = []
            client, _state.usage_client = _state.usage_client, None
            credits, _state.credits_clients = _state.credits_clients, None
            _state.config = None
            config._set(None)
            _state.tracers.clear()
            try:
                if pipeline is not None:
                    pipeline.close(timeout)
            finally:
                if client is not None:
                    try:
                        client.close()
                    except Exception:
                        logger.debug("Netra: closing the usage client failed", exc_info=True)
                if credits is not None:
                    try:
                        credits[0].close()  # the async client's pool closes with its event loop
                    except Exception:
                        logger.debug("Netra: closing the credits client failed", exc_info=True)
                if _state.prices_set:
                    _state.prices_set = False
                    try:
                        from netra import pricing

                        pricing.clear_price_overrides()
                    except Exception:
                        logger.debug("Netra: clearing price overrides failed", exc_info=True)

    @classmethod
    def export_stats(cls) -> dict[str, int]:
        """Spans exported and dropped since ``init`` (all zero when not initialised)."""
        pipeline = _state.pipeline
        if pipeline is None:
            return {"exported": 0, "dropped_queue_full": 0, "dropped_export_failed": 0,
                    "dropped_after_shutdown": 0, "dropped": 0}
        return pipeline.export.stats.as_dict()

    # -- request context -------------------------------------------------------------------------

    @staticmethod
    def set_tenant_id(tenant_id: str | None) -> None:
        """Tenant for every span started from now on in this context (None clears)."""
        _context.set_id("tenant_id", tenant_id)

    @staticmethod
    def set_session_id(session_id: str | None) -> None:
        _context.set_id("session_id", session_id)

    @staticmethod
    def set_user_id(user_id: str | None) -> None:
        _context.set_id("user_id", user_id)

    @staticmethod
    def set_custom_attributes(
        key: str | Mapping[str, AttributeValue | None], value: AttributeValue | None = None
    ) -> None:
        """``set_custom_attributes("tier", "enterprise")`` or ``set_custom_attributes({"tier": ...})``.

        Stamped as ``netra.custom.<key>`` on every span started afterwards in this context.
        """
        if isinstance(key, Mapping):
            _context.set_custom(key)
        else:
            _context.set_custom({key: value})

    @staticmethod
    def clear_context() -> None:
        """Forget tenant, session, user and custom attributes in the current context."""
        _context.clear()

    @staticmethod
    def get_context() -> dict[str, _context.AttributeValue]:
        """The current request context as the span attributes it stamps."""
        return _context.get()

    @staticmethod
    def context(
        tenant_id: str | None = None,
        session_id: str | None = None,
        user_id: str | None = None,
        *,
        custom: Mapping[str, AttributeValue] | None = None,
        inherit: bool = True,
    ) -> _context.ScopedContext:
        """``with Netra.context(tenant_id="apex-legal"):`` sets request context for the block only."""
        return _context.ScopedContext(
            _context.build(
                tenant_id=tenant_id,
                session_id=session_id,
                user_id=user_id,
                custom=custom,
                inherit=_context.REQUEST_CONTEXT.get() if inherit else None,
            )
        )

    @staticmethod
    def bind_context(fn: Callable[_P, _R]) -> Callable[_P, _R]:
        """``fn`` bound to a copy of the current context, for thread pools: ``pool.submit(Netra.bind_context(f))``."""
        return _context.bind(fn)

    # -- spans -----------------------------------------------------------------------------------

    @staticmethod
    def start_span(
        name: str,
        attributes: Mapping[str, AttributeValue] | None = None,
        module_name: str = DEFAULT_MODULE_NAME,
        as_type: SpanType | str = SpanType.SPAN,
    ) -> SpanWrapper:
        """A span as a (sync or async) context manager: ``with Netra.start_span("summarize") as span:``."""
        return start_span(name, attributes, module_name, as_type)

    @staticmethod
    def set_custom_event(name: str, attributes: Mapping[str, AttributeValue] | None = None) -> None:
        """Add an event to the current span (nothing happens when no span is recording)."""
        trace.get_current_span().add_event(name, attributes)

    # -- tests -----------------------------------------------------------------------------------

    @classmethod
    def _reset_for_tests(cls) -> None:
        from netra._testing import reset

        reset()


