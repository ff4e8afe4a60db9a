"""OpenTelemetry instrumentation of the ``openai`` client (3.x): one span per call, with tokens and cost.

Works with any ``TracerProvider``, with or without Netra::

    from netra_instrumentation_openai import OpenAIInstrumentor

    OpenAIInstrumentor().instrument(tracer_provider=provider, capture_content=False)

Under ``Netra.init(instruments={InstrumentSet.OPENAI})`` Netra calls this for you, and Netra's settings
(``trace_content``, ``max_content_length``, ``openai_stream_usage``) win over the options below.

Options (constructor or ``instrument()`` keywords):

- ``capture_content`` (default: env ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``, else off):
  record prompts and completions; off means no message text anywhere on the span.
- ``max_content_length`` (default 10 000): longest text recorded per message part.
- ``request_stream_usage`` (default on): ask for ``include_usage`` on streamed chat / completion calls
  that did not set ``stream_options``; the extra usage chunk is hidden from the caller.
- ``record_cost`` (default on): price each call with :mod:`netra.pricing` (``gen_ai.usage.cost``).
- ``price_providers`` (default none): ``{"host" or "host:port": "<genai-prices provider id>"}``, the
  provider whose prices apply to calls through that base URL (a gateway, proxy or self-hosted server).
  Without it, a base URL that is neither OpenAI's, Azure's nor a known provider's API is priced by the
  model's own provider when the price table can tell it from the name, else as ``openai``.
  :func:`set_price_provider` sets it for one client.
- ``warm_prices`` (``instrument()`` keyword, default on): with ``record_cost``, load the price table in
  ``instrument()`` (about 0.3 s, once) rather than in the first call. ``Netra.init`` passes ``False``
  and loads it on a background thread.
- ``tracer_provider``: the provider to use (default: the global one).

How it hooks in: ``SyncAPIClient.request``/``AsyncAPIClient.request`` (the one choke point all resources,
``with_raw_response`` and ``with_streaming_response`` go through) and ``_process_response`` (retries and
the HTTP response), plus ``Stream.__iter__``/``AsyncStream.__aiter__`` and ``APIResponse.read`` which only
act on instrumented objects. Patches are class-level, so clients made before ``instrument()`` (and
``AzureOpenAI``, and any ``base_url``) are covered; ``uninstrument()`` removes every patch.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from contextvars import ContextVar
from typing import Any

from opentelemetry import context, trace
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.instrumentation.utils import unwrap
from wrapt import wrap_function_wrapper

from . import _streams
from ._calls import CLIENT_PRICE_PROVIDER, RESULT_TYPES, Call, CallTracer
from ._settings import Settings, SettingsSource, own_settings

__all__ = ["OpenAIInstrumentor", "Settings", "__version__", "set_price_provider"]

__version__ = "0.1.0"

_INSTRUMENTS = ("openai >= 3.40, < 4",)
_SCHEMA_URL = "https://opentelemetry.io/schemas/1.37.0"

# The call whose request() is running in this context (read by the _process_response hook).
_CURRENT: ContextVar[Call | None] = ContextVar("netra_openai_call", default=None)

# (module, attribute path) of every patch; uninstrument() undoes exactly these.
_PATCHES = (
    ("openai._base_client", "SyncAPIClient", "request"),
    ("openai._base_client", "AsyncAPIClient", "request"),
    ("openai._base_client", "SyncAPIClient", "_process_response"),
    ("openai._base_client", "AsyncAPIClient", "_process_response"),
    ("openai._streaming", "Stream", "__iter__"),
    ("openai._streaming", "AsyncStream", "__aiter__"),
    ("openai._response", "APIResponse", "read"),
    ("openai._response", "AsyncAPIResponse", "read"),
)

_OPTION_NAMES = ("capture_content", "max_content_length", "request_stream_usage", "record_cost", "price_providers")


def _check_provider(provider: str, where: str) -> str:
    if not isinstance(provider, str) or not provider:
        raise ValueError(f"{where}: a provider is a genai-prices provider id such as 'openai', got {provider!r}")
    from netra.pricing import providers

    known = providers()
    if provider not in known:
        raise ValueError(
            f"{where}: unknown provider {provider!r}; use one the price table knows, e.g. "
            f"{', '.join(sorted(p for p in known if p in ('openai', 'azure', 'anthropic', 'groq', 'openrouter')))} "
            "(netra.pricing.providers() lists them all)"
        )
    return provider


def set_price_provider(client: Any, provider: str | None) -> Any:
    """Price the calls of this ``openai`` client as ``provider``'s (a genai-prices id: ``openai``, ``groq``...).

    For a client whose ``base_url`` is a gateway, proxy or self-hosted server: without it such calls are
    priced by the model's own provider when the price table can tell it from the name, else as OpenAI's.
    ``None`` goes back to that automatic choice. Returns the client. A copy made with
    ``client.with_options(...)`` does not inherit the setting (call this on the copy too).

    Raises ``ValueError`` for a provider the price table does not know.
    """
    if provider is None:
        client.__dict__.pop(CLIENT_PRICE_PROVIDER, None)
    else:
        client.__dict__[CLIENT_PRICE_PROVIDER] = _check_provider(provider, "set_price_provider")
    return client


class OpenAIInstrumentor(BaseInstrumentor):
    """Traces ``openai`` calls: chat, responses, completions, embeddings, images and audio."""

    def __init__(
        self,
        *,
        capture_content: bool | None = None,
        max_content_length: int | None = None,
        request_stream_usage: bool | None = None,
        record_cost: bool | None = None,
        price_providers: Mapping[str, str] | None = None,
    ) -> None:
        # BaseInstrumentor is a singleton: a later OpenAIInstrumentor() must not reset given options.
        given = {
            "capture_content": capture_content,
            "max_content_length": max_content_length,
            "request_stream_usage": request_stream_usage,
            "record_cost": record_cost,
            "price_providers": price_providers,
        }
        options: dict[str, Any] = dict(getattr(self, "_options", {}))
        options.update({k: v for k, v in given.items() if v is not None})
        self._options = options

    def instrumentation_dependencies(self) -> Collection[str]:
        return _INSTRUMENTS

    def _instrument(self, **kwargs: Any) -> None:
        options = {**self._options, **{k: kwargs[k] for k in _OPTION_NAMES if kwargs.get(k) is not None}}
        settings = own_settings(
            options.get("capture_content"), options.get("max_content_length"), options.get("request_stream_usage")
        )
        tracer = trace.get_tracer(
            __name__, __version__, tracer_provider=kwargs.get("tracer_provider"), schema_url=_SCHEMA_URL
        )
        price = None
        by_host: dict[str, str] = {}
        if options.get("record_cost", True):
            from netra.pricing import price_valid_counts, warm_up

            price = price_valid_counts
            for host, provider in (options.get("price_providers") or {}).items():
                by_host[str(host).strip().lower()] = _check_provider(provider, f"price_providers[{host!r}]")
            if kwargs.get("warm_prices", True):  # start-up, not the first call, pays for loading the table
                warm_up()

        import openai._legacy_response as legacy_response
        import openai._models as models
        import openai._response as api_response
        import openai._streaming as streaming
        import openai.lib.azure as azure
        from openai._httpx2 import http_response_types

        RESULT_TYPES.update(
            model=models.BaseModel,
            stream=(streaming.Stream, streaming.AsyncStream),
            legacy=legacy_response.LegacyAPIResponse,
            api_response=api_response.BaseAPIResponse,
            http_response=tuple(http_response_types()),
        )
        calls = CallTracer(
            tracer, SettingsSource(settings), price, (azure.AzureOpenAI, azure.AsyncAzureOpenAI), by_host
        )

        wrap_function_wrapper("openai._base_client", "SyncAPIClient.request", _sync_request(calls))
        wrap_function_wrapper("openai._base_client", "AsyncAPIClient.request", _async_request(calls))
        wrap_function_wrapper("openai._base_client", "SyncAPIClient._process_response", _process_response)
        wrap_function_wrapper("openai._base_client", "AsyncAPIClient._process_response", _process_response)
        wrap_function_wrapper("openai._streaming", "Stream.__iter__", _streams.iter_wrapper)
        wrap_function_wrapper("openai._streaming", "AsyncStream.__aiter__", _streams.aiter_wrapper)
        wrap_function_wrapper("openai._response", "APIResponse.read", _streams.read_wrapper)
        wrap_function_wrapper("openai._response", "AsyncAPIResponse.read", _streams.aread_wrapper)

    def _uninstrument(self, **kwargs: Any) -> None:
        import importlib

        for module_name, class_name, method in _PATCHES:
            unwrap(getattr(importlib.import_module(module_name), class_name), method)


def _process_response(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    call = _CURRENT.get()
    if call is not None:
        call.http_response = kwargs.get("response")
        call.retries = kwargs.get("retries_taken") or 0
    return wrapped(*args, **kwargs)


def _sync_request(calls: CallTracer) -> Any:
    def request(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        options = args[1] if len(args) > 1 else kwargs.get("options")
        call = calls.start(instance, options, bool(kwargs.get("stream"))) if options is not None else None
        if call is None:
            token = _CURRENT.set(None)
            try:
                return wrapped(*args, **kwargs)
            finally:
                _CURRENT.reset(token)
        call_token = _CURRENT.set(call)
        context_token = context.attach(trace.set_span_in_context(call.span))
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            call.fail(exc)
            raise
        finally:
            context.detach(context_token)
            _CURRENT.reset(call_token)
        calls.on_result(call, result)
        return result

    return request


def _async_request(calls: CallTracer) -> Any:
    async def request(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        options = args[1] if len(args) > 1 else kwargs.get("options")
        call = calls.start(instance, options, bool(kwargs.get("stream"))) if options is not None else None
        if call is None:
            token = _CURRENT.set(None)
            try:
                return await wrapped(*args, **kwargs)
            finally:
                _CURRENT.reset(token)
        call_token = _CURRENT.set(call)
        context_token = context.attach(trace.set_span_in_context(call.span))
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            call.fail(exc)
            raise
        finally:
            context.detach(context_token)
            _CURRENT.reset(call_token)
        await calls.on_result_async(call, result)
        return result

    return request
