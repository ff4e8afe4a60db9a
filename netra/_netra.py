"""The ``Netra`` facade: init / shutdown, request context, spans, the usage client.

Kept import-light: the OpenTelemetry SDK, the exporter, pricing and the usage client are imported on
first use (``Netra.init``, ``Netra.usage``), so ``import netra`` stays cheap.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from opentelemetry import trace
from opentelemetry.util.types import AttributeValue

from netra import _context, semconv
from netra._types import SpanType
from netra.span_wrapper import SpanWrapper

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

    from netra._runtime import Runtime
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
        self.runtime: Runtime | None = None  # what Netra.init started (netra/_runtime.py)
        self.provider: Any = None  # the SDK provider Netra's processor lives on (kept across inits)
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
    """A span as a (sync or async) context manager: ``with Netra.start_span("summarize") as span:``."""
    attrs: dict[str, AttributeValue] = {semconv.SPAN_TYPE: _span_type(as_type)}
    if attributes:
        attrs.update(attributes)
    return SpanWrapper(name, attrs, _tracer(module_name))


def _atexit_shutdown() -> None:
    try:
        Netra.shutdown()
    except Exception:  # pragma: no cover - interpreter teardown
        pass


def _running(what: str, client: str) -> Runtime:
    runtime = _state.runtime
    if runtime is None:
        raise RuntimeError(
            f"Netra.{what} needs Netra.init(...) first (it uses the same endpoint and API key); "
            f"or create {client}(base_url=..., api_key=...) yourself"
        )
    return runtime


class _NetraMeta(type):
    @property
    def usage(cls) -> UsageClient:
        """A :class:`netra.usage.UsageClient` for the server Netra exports to (created on first use)."""
        with _state.lock:
            return _running("usage", "netra.usage.UsageClient").usage_client()

    @property
    def credits(cls) -> CreditsClient:
        """A :class:`netra.credits.CreditsClient` for the server Netra exports to (see docs/credits.md)."""
        with _state.lock:
            return _running("credits", "netra.credits.CreditsClient").credits_clients()[0]

    @property
    def async_credits(cls) -> AsyncCreditsClient:
        """The async twin of :attr:`credits` (:class:`netra.credits.AsyncCreditsClient`)."""
        with _state.lock:
            return _running("credits", "netra.credits.CreditsClient").credits_clients()[1]


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
        # every argument above, by name, passed through as given: this signature is their one declaration
        arguments = {name: value for name, value in locals().items() if name != "cls"}
        with _state.lock:
            if _state.runtime is not None:
                logger.warning(
                    "Netra.init() called again while Netra is already initialised: ignored, the first "
                    "settings stay. Call Netra.shutdown() first to initialise with other settings."
                )
                return
            from netra._config import env_bool

            if env_bool("OTEL_SDK_DISABLED", False):
                logger.warning("Netra: OTEL_SDK_DISABLED is true; Netra.init does nothing")
                return
            from netra import _config, _install, _runtime

            _install.warn_on_conflict()  # netra-sdk installed beside us: one `netra` folder, two packages

            cfg = _config.resolve(arguments)
            runtime = _runtime.start(cfg, prices=prices, span_exporter=span_exporter, at_exit=_atexit_shutdown)
            _state.runtime = runtime
            _state.provider = runtime.provider
            _state.tracers.clear()

    @classmethod
    def is_initialized(cls) -> bool:
        return _state.runtime is not None

    @classmethod
    def flush(cls, timeout: float = 10.0) -> bool:
        """Export every finished span now; False if ``timeout`` seconds passed first."""
        runtime = _state.runtime
        return runtime.flush(timeout) if runtime is not None else True

    @classmethod
    def shutdown(cls, timeout: float = 5.0) -> None:
        """Flush (at most ``timeout`` seconds), stop exporting, switch instrumentations off.

        Idempotent. ``Netra.init`` may be called again afterwards.
        """
        with _state.lock:
            runtime, _state.runtime = _state.runtime, None
            if runtime is None:
                return
            _state.tracers.clear()
            runtime.close(timeout)

    @classmethod
    def export_stats(cls) -> dict[str, int]:
        """Spans exported and dropped since ``init`` (all zero when not initialised)."""
        runtime = _state.runtime
        if runtime is None:
            return {"exported": 0, "dropped_queue_full": 0, "dropped_export_failed": 0,
                    "dropped_after_shutdown": 0, "dropped": 0}
        return runtime.export_stats()

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

    start_span = staticmethod(start_span)

    @staticmethod
    def set_custom_event(name: str, attributes: Mapping[str, AttributeValue] | None = None) -> None:
        """Add an event to the current span (nothing happens when no span is recording)."""
        trace.get_current_span().add_event(name, attributes)

    # -- tests -----------------------------------------------------------------------------------

    @classmethod
    def _reset_for_tests(cls) -> None:
        from netra._testing import reset

        reset()


