"""One traced OpenAI call: its span from ``request()`` to the end of the response (or stream)."""

from __future__ import annotations

import time
from typing import Any

from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.semconv.attributes.http_attributes import HTTP_REQUEST_RESEND_COUNT
from opentelemetry.semconv.attributes.server_attributes import SERVER_ADDRESS, SERVER_PORT
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from netra import semconv as sc

from . import _streams
from ._attributes import (
    ENDPOINTS,
    Attributes,
    Endpoint,
    PriceFn,
    Tokens,
    cost_attributes,
    input_content,
    log_failure,
    request_attributes,
    response_attributes,
    usage_attributes,
)
from ._settings import SettingsSource

_RETRY_HEADER = "x-stainless-retry-count"
_AZURE_PROVIDER = "azure.ai.openai"
_OPENAI_HOST = "api.openai.com"
#: where :func:`set_price_provider` keeps a client's provider (in the client's ``__dict__``)
CLIENT_PRICE_PROVIDER = "_netra_price_provider"
_ROUTES_LIMIT = 256
_FALLBACK_PROVIDER = "openai"


class Route:
    """How calls through one base URL are described and priced (computed once per base URL)."""

    __slots__ = ("azure", "base_url", "fallback", "host", "port", "provider")

    def __init__(
        self, base_url: Any, azure: bool, host: str, port: int | None, provider: str | None, fallback: str | None
    ) -> None:
        self.base_url = base_url
        self.azure = azure
        self.host = host
        self.port = port
        self.provider = provider
        self.fallback = fallback


def price_route(
    url: str, host: str, port: int | None, azure: bool, by_host: dict[str, str]
) -> tuple[str | None, str | None]:
    """(provider, fallback provider) to price calls through ``url`` with.

    The instrumentor's ``price_providers`` (``host:port``, then ``host``); an Azure client: ``azure``;
    ``api.openai.com``: ``openai``; a provider whose API lives at the URL (genai-prices' URL patterns:
    Groq, OpenRouter, an Azure endpoint used with the plain client, ...); otherwise a proxy, gateway or
    local server: the model's own provider if the price table can tell from the name, else ``openai``
    (an OpenAI client's model names are OpenAI's unless the user says otherwise).
    """
    if by_host:
        chosen = by_host.get(f"{host}:{port}") if port is not None else None
        if chosen is None:
            chosen = by_host.get(host)
        if chosen is not None:
            return chosen, None
    if azure:
        return "azure", None
    if host == _OPENAI_HOST:
        return "openai", None
    try:
        from netra.pricing import provider_for_api_url

        matched = provider_for_api_url(url)
    except Exception as exc:  # the price table failed to load: price by model name alone
        log_failure("matching the base URL to a provider", exc)
        matched = None
    if matched is not None:
        return matched, None
    return None, _FALLBACK_PROVIDER


class Call:
    """The span of one call and what is known about it before the response arrives."""

    __slots__ = (
        "capture",
        "endpoint",
        "http_response",
        "injected",
        "limit",
        "price",
        "price_fallback",
        "price_provider",
        "request_model",
        "retries",
        "span",
        "start_ns",
    )

    def __init__(
        self,
        endpoint: Endpoint,
        span: Span,
        capture: bool,
        limit: int,
        request_model: str | None,
        price: PriceFn | None,
        price_provider: str | None,
        start_ns: int,
        price_fallback: str | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.span = span
        self.capture = capture
        self.limit = limit
        self.request_model = request_model
        self.price = price
        self.price_provider = price_provider
        self.price_fallback = price_fallback
        self.start_ns = start_ns
        self.injected = False
        self.http_response: Any = None
        self.retries = 0

    # -- outcomes ------------------------------------------------------------------------------------

    def finish_result(self, result: Any, attrs: Attributes, exc: BaseException | None = None) -> None:
        """End the span from a response object (a model, or ``None`` when there is none)."""
        tokens: Tokens | None = None
        model: str | None = None
        if result is not None:
            tokens, model = response_attributes(self.endpoint, result, self.capture, self.limit, attrs)
        self.finish_with(attrs, tokens, model, exc, result)

    def finish_with(
        self,
        attrs: Attributes,
        tokens: Tokens | None,
        model: str | None,
        exc: BaseException | None,
        result: Any = None,
    ) -> None:
        request_id = None
        values = getattr(result, "__dict__", None) if result is not None else None
        if values:
            request_id = values.get("_request_id")  # openai copies x-request-id onto the model
        if request_id is None:
            response = self.http_response
            if response is not None:
                request_id = response.headers.get("x-request-id")
        if request_id:
            attrs[sc.OPENAI_REQUEST_ID] = request_id
        if self.retries:
            attrs[HTTP_REQUEST_RESEND_COUNT] = self.retries
        if tokens is not None:
            usage_attributes(
                tokens, model or self.request_model, self.price_provider, self.price, attrs, self.price_fallback
            )
        elif exc is None:
            if self.endpoint.reports_tokens:
                attrs[sc.USAGE_MISSING] = True  # never invent tokens
            else:
                cost_attributes(
                    model or self.request_model, self.price_provider, self.price, attrs, None, self.price_fallback
                )
        span = self.span
        if exc is not None:
            attrs[ERROR_TYPE] = type(exc).__qualname__
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        elif ERROR_TYPE in attrs:
            span.set_status(Status(StatusCode.ERROR, str(attrs[ERROR_TYPE])))
        span.set_attributes(attrs)
        span.end()

    def mark_error(self, error_type: str, attrs: Attributes) -> None:
        attrs[ERROR_TYPE] = error_type

    def fail(self, exc: BaseException) -> None:
        """The request raised: record it (the caller re-raises the same exception)."""
        try:
            attrs: Attributes = {}
            response = getattr(exc, "response", None)
            if response is not None and self.http_response is None:
                self.http_response = response
            request = getattr(exc, "request", None)
            if request is not None:
                retries = _retries(request)
                if retries:
                    self.retries = retries
            # chat.completions.parse raises LengthFinishReasonError with the (billed) completion
            self.finish_result(getattr(exc, "completion", None), attrs, exc)
        except Exception as error:
            log_failure("recording an error", error)
            self.end_quietly()

    def end_quietly(self) -> None:
        try:
            self.span.end()
        except Exception as exc:  # pragma: no cover - the SDK does not raise here
            log_failure("ending a span", exc)


def _sdk_chose_encoding(options: Any) -> bool:
    """openai asks for base64 embeddings itself (and decodes them) when the caller gave no encoding_format."""
    parser = getattr(options, "post_parser", None)
    keywords = getattr(parser, "keywords", None)
    if not isinstance(keywords, dict) or "encoding_format" not in keywords:
        return False
    return type(keywords["encoding_format"]).__name__ in ("Omit", "NotGiven")


def _retries(request: Any) -> int:
    try:
        return int(request.headers.get(_RETRY_HEADER) or 0)
    except (AttributeError, TypeError, ValueError):
        return 0


class CallTracer:
    """Starts a span for each traced route and follows the result until the call is over."""

    __slots__ = ("_azure", "_by_host", "_last_route", "_price", "_routes", "_settings", "_tracer")

    def __init__(
        self,
        tracer: Tracer,
        settings: SettingsSource,
        price: PriceFn | None,
        azure: tuple[type, ...],
        price_providers: dict[str, str] | None = None,
    ) -> None:
        self._tracer = tracer
        self._settings = settings
        self._price = price
        self._azure = azure
        self._by_host = dict(price_providers or {})
        # the route of the last client seen (most processes talk to one endpoint), then a bounded cache
        self._last_route = Route(None, False, "", None, None, None)
        self._routes: dict[tuple[str, bool], Route] = {}

    def _route(self, base_url: Any, azure: bool) -> Route:
        key = (str(base_url), azure)
        route = self._routes.get(key)
        if route is None:
            host, port = base_url.host, base_url.port
            if self._price is None:
                provider, fallback = None, None
            else:
                provider, fallback = price_route(key[0], host, port, azure, self._by_host)
            route = Route(base_url, azure, host, port, provider, fallback)
            if len(self._routes) >= _ROUTES_LIMIT:
                self._routes.clear()
            self._routes[key] = route
        return route

    def start(self, client: Any, options: Any, stream: bool) -> Call | None:
        """A :class:`Call` with its span started, or ``None`` when the route is not traced."""
        try:
            if options.method != "post":
                return None
            endpoint = ENDPOINTS.get(options.url)
            if endpoint is None:
                return None
            body = options.json_data
            if not isinstance(body, dict):
                body = {}
            settings = self._settings.get()
            azure = isinstance(client, self._azure)
            attrs: Attributes = {
                sc.GEN_AI_PROVIDER_NAME: _AZURE_PROVIDER if azure else "openai",
                sc.GEN_AI_OPERATION_NAME: endpoint.operation,
                sc.SPAN_TYPE: endpoint.span_type,
            }
            if endpoint.kind == "embeddings" and "encoding_format" in body and _sdk_chose_encoding(options):
                body = {k: v for k, v in body.items() if k != "encoding_format"}  # not the caller's choice
            request_attributes(endpoint, body, attrs)
            # openai's ``_base_url`` is a property calling another that imports a module on each call
            base_url = client.__dict__.get("_configured_base_url") or client._base_url
            route = self._last_route  # one object, replaced whole: safe across threads
            if route.base_url is not base_url or route.azure is not azure:
                route = self._route(base_url, azure)
                self._last_route = route
            host, port = route.host, route.port
            if host:
                attrs[SERVER_ADDRESS] = host
                if port is not None:
                    attrs[SERVER_PORT] = port
            capture = settings.capture_content
            if capture:
                input_content(endpoint, body, settings.max_content_length, attrs)
            model = attrs.get(sc.GEN_AI_REQUEST_MODEL)
            name = f"{endpoint.operation} {model}" if model else endpoint.operation
            start_ns = time.time_ns()
            span = self._tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attrs, start_time=start_ns)
            price_provider, price_fallback = route.provider, route.fallback
            chosen = client.__dict__.get(CLIENT_PRICE_PROVIDER)  # set_price_provider(client, ...)
            if chosen is not None:
                price_provider, price_fallback = chosen, None
            call = Call(
                endpoint,
                span,
                capture,
                settings.max_content_length,
                model,
                self._price,
                price_provider,
                start_ns,
                price_fallback,
            )
            if (
                stream
                and endpoint.stream_usage_option
                and settings.request_stream_usage
                and body.get("stream") is True
                and "stream_options" not in body
                and "stream_options" not in (options.extra_json or ())
                and span.is_recording()
            ):
                options.json_data = {**body, "stream_options": {"include_usage": True}}
                call.injected = True
            return call
        except Exception as exc:
            log_failure("starting a span", exc)
            return None

    def on_result(self, call: Call, result: Any) -> None:
        """The request returned ``result`` (sync client): end the span now or follow the stream."""
        try:
            kind = _result_kind(result)
            if kind == _MODEL:
                call.finish_result(result, {})
            elif kind == _STREAM:
                self._stream(call, result, False)
            elif kind == _LEGACY:
                self._legacy(call, result)
            elif kind == _API_SSE:
                self._stream(call, result.parse(), False)
            elif kind == _API_BODY:
                call.http_response = result.http_response
                _streams.track_body(call, result, False)
            else:  # an httpx2.Response (cast_to=httpx2.Response)
                call.finish_result(None, {})
        except Exception as exc:
            log_failure("reading a response", exc)
            call.end_quietly()

    async def on_result_async(self, call: Call, result: Any) -> None:
        try:
            kind = _result_kind(result)
            if kind == _MODEL:
                call.finish_result(result, {})
            elif kind == _STREAM:
                self._stream(call, result, True)
            elif kind == _LEGACY:
                self._legacy(call, result)
            elif kind == _API_SSE:
                self._stream(call, await result.parse(), True)  # no I/O for an SSE stream
            elif kind == _API_BODY:
                call.http_response = result.http_response
                _streams.track_body(call, result, True)
            else:
                call.finish_result(None, {})
        except Exception as exc:
            log_failure("reading a response", exc)
            call.end_quietly()

    def _stream(self, call: Call, stream: Any, is_async: bool) -> None:
        call.http_response = stream.response
        if not call.span.is_recording():
            call.span.end()
            return
        _streams.track_stream(call, stream, is_async)

    def _legacy(self, call: Call, raw: Any) -> None:
        """``with_raw_response``: parse now (openai caches it, so ``raw.parse()`` returns this very object)."""
        call.http_response = raw.http_response
        call.retries = raw.retries_taken or call.retries
        if raw._stream:
            parsed = raw.parse()
            from openai import AsyncStream

            self._stream(call, parsed, isinstance(parsed, AsyncStream))
            return
        try:
            parsed = raw.parse()
        except Exception as exc:  # the caller's own parse() will raise it again
            parsed = getattr(exc, "completion", None)
        call.finish_result(parsed, {})


_MODEL, _STREAM, _LEGACY, _API_SSE, _API_BODY, _HTTP = range(6)

# filled by the instrumentor when it patches openai (openai is imported only then)
RESULT_TYPES: dict[str, Any] = {}


def _result_kind(result: Any) -> int:
    types = RESULT_TYPES
    if isinstance(result, types["model"]):
        return _MODEL
    if isinstance(result, types["stream"]):
        return _STREAM
    if isinstance(result, types["legacy"]):
        return _LEGACY
    if isinstance(result, types["api_response"]):
        return _API_SSE if result._is_sse_stream else _API_BODY
    if isinstance(result, types["http_response"]):
        return _HTTP
    return _MODEL
