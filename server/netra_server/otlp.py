"""OTLP/HTTP trace requests -> rows of ``netra_spans`` (``JSONEachRow`` bytes).

:func:`decode_request` takes the body as sent (protobuf or JSON, gzip or not) and enforces the size
limits; :func:`build_rows` maps each span's attributes to the promoted columns (the mapping of
``docs/design.md``, with its fallbacks for other producers) and prices spans that carry tokens but no
cost, with the SDK's price table (``netra.pricing``).
"""

from __future__ import annotations

import base64
import binascii
import gzip
import logging
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from netra import semconv
from netra_server.billing import SpanKey, fingerprint
from netra_server.config import Limits

log = logging.getLogger("netra_server.otlp")

__all__ = [
    "CLAIMED_TENANT", "MAX_COST", "MAX_TOKENS", "SPAN_COLUMNS", "IngestBatch", "OtlpError", "SpanRejected",
    "build_rows", "decode_request", "parse_export",
]


class OtlpError(Exception):
    """A request the receiver refuses: ``status`` is the HTTP status (400 or 413)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def __reduce__(self) -> tuple[Any, ...]:  # picklable across the parser processes
        return (OtlpError, (self.status, self.message))


@dataclass
class IngestBatch:
    #: ``JSONCompactEachRow`` rows of :data:`SPAN_COLUMNS`.
    data: bytes
    span_count: int
    rejected: int
    rejected_message: str
    #: Per row, its identity and billing fields (``netra_server.billing.SpanKey``), so the writer
    #: need not parse the rows again.
    keys: list[SpanKey] = field(default_factory=list)


#: The columns of a row built by :func:`build_rows`, in order (``JSONCompactEachRow``).
SPAN_COLUMNS: tuple[str, ...] = (
    "project_id",
    "tenant_id",
    "start_time",
    "trace_id",
    "span_id",
    "parent_span_id",
    "end_time",
    "duration_ns",
    "name",
    "kind",
    "span_type",
    "session_id",
    "user_id",
    "service",
    "environment",
    "scope_name",
    "status_code",
    "status_message",
    "model",
    "provider",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "cost",
    "cost_source",
    "cost_unknown",
    "has_usage",
    "covered",
    "attributes",
    "resource_attributes",
    "events",
    "links",
    "ingested_at",
)

_KINDS = ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
_STATUS = ("UNSET", "OK", "ERROR")
_SPAN_TYPES = {"span", "generation", "tool", "embedding", "agent", "usage"}

_TENANT_KEYS = (semconv.TENANT_ID, "tenant.id")
_SESSION_KEYS = (semconv.SESSION_ID, "session.id")
_USER_KEYS = (semconv.USER_ID, "user.id", "enduser.id")
_INPUT_KEYS = (
    semconv.GEN_AI_USAGE_INPUT_TOKENS,
    semconv.LEGACY_PROMPT_TOKENS,
    semconv.OPENINFERENCE_PROMPT_TOKENS,
)
_OUTPUT_KEYS = (
    semconv.GEN_AI_USAGE_OUTPUT_TOKENS,
    semconv.LEGACY_COMPLETION_TOKENS,
    semconv.OPENINFERENCE_COMPLETION_TOKENS,
)
_PROVIDER_KEYS = (semconv.GEN_AI_PROVIDER_NAME, "gen_ai.system")
_ENV_KEYS = (semconv.ENVIRONMENT, "deployment.environment")
_USAGE_BEARING = frozenset(semconv.USAGE_BEARING_ATTRIBUTES)


# -- decoding ---------------------------------------------------------------------------------------


def _gunzip(body: bytes, limit: int, encoding: str) -> bytes:
    d = zlib.decompressobj(16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS)
    try:
        out = d.decompress(body, limit + 1)
    except zlib.error as exc:
        raise OtlpError(400, f"the body is not valid {encoding} ({exc})") from exc
    if len(out) > limit:
        raise OtlpError(413, f"the decompressed body is over the {limit}-byte limit; send smaller batches")
    return out


def _hex_to_b64(value: Any, field: str) -> Any:
    if not isinstance(value, str) or not value:
        return value
    if len(value) in (16, 32) and all(c in "0123456789abcdefABCDEF" for c in value):
        return base64.b64encode(bytes.fromhex(value)).decode()
    try:  # not hex: accept base64 (some producers send it), reject anything else
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise OtlpError(400, f"{field} {value!r} is neither hex (OTLP/JSON) nor base64") from exc
    return value


def _json_request(body: bytes) -> ExportTraceServiceRequest:
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise OtlpError(400, f"the body is not valid JSON ({exc})") from exc
    if not isinstance(obj, dict):
        raise OtlpError(400, "the body must be a JSON object with resourceSpans (OTLP/JSON)")
    try:
        for rs in obj.get("resourceSpans") or obj.get("resource_spans") or []:
            for ss in rs.get("scopeSpans") or rs.get("scope_spans") or []:
                for sp in ss.get("spans") or []:
                    for f in ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"):
                        if f in sp:
                            sp[f] = _hex_to_b64(sp[f], f)
                    for link in sp.get("links") or []:
                        for f in ("traceId", "spanId", "trace_id", "span_id"):
                            if f in link:
                                link[f] = _hex_to_b64(link[f], f)
        return json_format.ParseDict(obj, ExportTraceServiceRequest(), ignore_unknown_fields=True)
    except OtlpError:
        raise
    except (json_format.ParseError, AttributeError, TypeError, ValueError) as exc:
        raise OtlpError(400, f"the body is not an OTLP/JSON ExportTraceServiceRequest ({exc})") from exc


def decode_request(body: bytes, content_type: str, content_encoding: str, limits: Limits) -> ExportTraceServiceRequest:
    """Parse an export request body; raises :class:`OtlpError` (400/413) with a message."""
    if len(body) > limits.max_body_bytes:
        raise OtlpError(413, f"the body is {len(body)} bytes, over the {limits.max_body_bytes}-byte limit; send smaller batches")
    encoding = (content_encoding or "").strip().lower()
    if encoding in ("gzip", "deflate"):
        body = _gunzip(body, limits.max_decompressed_bytes, encoding)
    elif encoding not in ("", "identity"):
        raise OtlpError(415, f"Content-Encoding {encoding!r} is not supported; use gzip or none")
    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype == "application/json":
        return _json_request(body)
    if ctype in ("application/x-protobuf", "application/protobuf", "application/octet-stream", ""):
        req = ExportTraceServiceRequest()
        try:
            req.ParseFromString(body)
        except DecodeError as exc:
            raise OtlpError(400, f"the body is not an OTLP protobuf ExportTraceServiceRequest ({exc})") from exc
        return req
    raise OtlpError(415, f"Content-Type {ctype!r} is not supported; use application/x-protobuf or application/json")


# -- values -----------------------------------------------------------------------------------------


_SCALARS = frozenset(("string_value", "int_value", "double_value", "bool_value"))


def _any(v: Any) -> Any:
    kind = v.WhichOneof("value")
    if kind in _SCALARS:
        return getattr(v, kind)
    if kind == "array_value":
        return [_any(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _any(kv.value) for kv in v.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(v.bytes_value).decode()
    return None


def _attrs(kvs: Any) -> dict[str, Any]:
    return {kv.key: _any(kv.value) for kv in kvs}


def _attrs_checked(kvs: Any, limit: int, span_name: str) -> dict[str, Any]:
    """Attributes as a dict, raising OtlpError for a value over ``limit`` bytes."""
    out: dict[str, Any] = {}
    quarter = limit // 4
    for kv in kvs:
        v = kv.value
        kind = v.WhichOneof("value")
        if kind == "string_value":
            s = v.string_value
            if len(s) > quarter:
                _check_size(kv.key, s, limit, span_name)
            out[kv.key] = s
        elif kind in _SCALARS:
            out[kv.key] = getattr(v, kind)
        else:
            value = _any(v)
            _check_size(kv.key, value, limit, span_name)
            out[kv.key] = value
    return out


def _first(attrs: dict[str, Any], keys: tuple[str, ...], fallback: dict[str, Any] | None = None) -> str:
    for k in keys:
        v = attrs.get(k)
        if v is not None and v != "":
            return str(v)
    if fallback:
        for k in keys:
            v = fallback.get(k)
            if v is not None and v != "":
                return str(v)
    return ""


#: Largest token count (or ``units_used``) of one span or one usage item: no model call comes near
#: it (context windows are a few million tokens), and with it a sum over billions of spans fits an
#: unsigned 64-bit integer. A span over it is rejected (partial success), never clamped.
MAX_TOKENS = 1_000_000_000
#: Largest cost of one span, in USD: the ``cost`` column is ``Decimal(18, 10)``.
MAX_COST = Decimal("99999999.9999999999")


class SpanRejected(ValueError):
    """A value of a span that cannot be stored as sent: the span is rejected alone (partial success)."""


def _int(v: Any) -> int | None:
    """A count (tokens, units): None when absent; raises :class:`SpanRejected` for a value that is not
    a finite number in ``[0, MAX_TOKENS]`` (a fraction is truncated)."""
    if v is None or isinstance(v, bool):
        return None
    if isinstance(v, int):
        if 0 <= v <= MAX_TOKENS:
            return v
        raise SpanRejected(f"{v} is {'negative' if v < 0 else f'over the {MAX_TOKENS:,} bound'}")
    if isinstance(v, str):
        text = v.strip()
        if not text:
            return None
        try:
            f = float(text)
        except ValueError:
            raise SpanRejected(f"{v[:40]!r} is not a number") from None
    elif isinstance(v, float):
        f = v
    else:
        raise SpanRejected(f"{type(v).__name__} is not a number")
    if f != f or f in (float("inf"), float("-inf")):
        raise SpanRejected(f"{v!r} is not a finite number")
    if f < 0:
        raise SpanRejected(f"{v!r} is negative")
    if f > MAX_TOKENS:
        raise SpanRejected(f"{v!r} is over the {MAX_TOKENS:,} bound")
    return int(f)


def _named_int(v: Any, key: str) -> int | None:
    try:
        return _int(v)
    except SpanRejected as exc:
        raise SpanRejected(f"{key} = {exc}") from None


def _first_int(attrs: dict[str, Any], keys: tuple[str, ...]) -> int | None:
    for k in keys:
        n = _named_int(attrs.get(k), k)
        if n is not None:
            return n
    return None


def _decimal(v: Any, key: str = "cost") -> Decimal | None:
    """A cost in USD: None when absent; raises :class:`SpanRejected` for one that is not a finite
    number in ``[0, MAX_COST]``."""
    if v is None or isinstance(v, bool) or v == "":
        return None
    if isinstance(v, list | dict):
        raise SpanRejected(f"{key} is not a number")
    try:
        d = Decimal(v.strip() if isinstance(v, str) else str(v))
    except (InvalidOperation, ValueError):
        raise SpanRejected(f"{key} = {str(v)[:40]!r} is not a number") from None
    if not d.is_finite():
        raise SpanRejected(f"{key} = {v!r} is not a finite number")
    if d < 0:
        raise SpanRejected(f"{key} = {v!r} is negative")
    if d > MAX_COST:
        raise SpanRejected(f"{key} = {v!r} is over the {MAX_COST} USD bound of one span")
    return d


def _truthy(v: Any) -> bool:
    if isinstance(v, str):
        return v.strip().lower() in ("true", "1", "yes")
    return bool(v)


def _ts(ns: int) -> str:
    return f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"


_ZERO_TRACE = bytes(16)
_ZERO_SPAN = bytes(8)
_MIN_START_NS = 946_684_800 * 1_000_000_000  # 2000-01-01
_MAX_START_NS = 9_200_000_000 * 1_000_000_000  # 2261, inside DateTime64(9)
_COST_Q = Decimal("1e-10")


def _cost_str(d: Decimal, what: str = "cost") -> str:
    if d > MAX_COST:
        raise SpanRejected(f"the {what} {d} USD is over the {MAX_COST} USD bound of one span")
    return str(d.quantize(_COST_Q))


def _parse_usage(raw: Any) -> list[dict[str, Any]]:
    if isinstance(raw, str):
        try:
            raw = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return []
    if isinstance(raw, dict):
        raw = [raw]
    if not isinstance(raw, list):
        return []
    out: list[dict[str, Any]] = []
    for item in raw:
        if isinstance(item, str):
            try:
                item = orjson.loads(item)
            except orjson.JSONDecodeError:
                continue
        if isinstance(item, dict):
            out.append(item)
    return out


def _price(model: str, provider: str, start_ns: int, i: int, o: int, c: int, r: int) -> tuple[Decimal | None, str]:
    from netra.pricing import price_tokens

    at = datetime.fromtimestamp(start_ns / 1e9, tz=UTC) if start_ns > 0 else None
    try:
        cost = price_tokens(
            model, provider=provider or None, input_tokens=i, output_tokens=o,
            cached_input_tokens=min(c, i), reasoning_tokens=min(r, o), at=at,
        )
        if cost.cost is None and provider:
            cost = price_tokens(
                model, provider=None, input_tokens=i, output_tokens=o,
                cached_input_tokens=min(c, i), reasoning_tokens=min(r, o), at=at,
            )
    except (TypeError, ValueError, LookupError):
        return None, "unknown"
    return cost.cost, cost.source


# -- rows -------------------------------------------------------------------------------------------


def _check_size(key: str, value: Any, limit: int, span_name: str) -> None:
    if isinstance(value, str):
        n = len(value) if len(value) * 4 <= limit else len(value.encode())
    elif isinstance(value, list | dict):
        n = len(orjson.dumps(value))
    else:
        return
    if n > limit:
        raise OtlpError(
            400,
            f"attribute {key!r} of span {span_name!r} is {n} bytes, over the {limit}-byte limit "
            "(truncate it in the producer, or raise the server's --max-attribute-bytes)",
        )


def _attrs_fast(kvs: Any, limit: int, span_name: str) -> dict[str, Any]:
    """Attributes as a dict (the hot path: scalars inline, anything else through :func:`_any`);
    raises OtlpError for a value over ``limit`` bytes."""
    out: dict[str, Any] = {}
    quarter = limit >> 2
    for kv in kvs:
        v = kv.value
        s = v.string_value  # most values are non-empty strings: no WhichOneof for them
        if s:
            if len(s) > quarter:
                _check_size(kv.key, s, limit, span_name)
            out[kv.key] = s
            continue
        kind = v.WhichOneof("value")
        if kind == "string_value":
            out[kv.key] = s
        elif kind == "int_value":
            out[kv.key] = v.int_value
        elif kind == "double_value":
            out[kv.key] = v.double_value
        elif kind == "bool_value":
            out[kv.key] = v.bool_value
        elif kind == "array_value":  # e.g. gen_ai.response.finish_reasons: mostly short string arrays
            items: list[Any] = []
            bound = 2  # an upper bound of the array's JSON size: at most 6 bytes per character (\u001f)
            for x in v.array_value.values:
                xs = x.string_value
                if xs:
                    items.append(xs)
                    bound += 6 * len(xs) + 3
                else:
                    item = _any(x)
                    items.append(item)
                    bound += limit if isinstance(item, list | dict | str) else 32
            if bound > limit:  # only then can it be over the limit: measure it
                _check_size(kv.key, items, limit, span_name)
            out[kv.key] = items
        else:
            value = _any(v)
            _check_size(kv.key, value, limit, span_name)
            out[kv.key] = value
    return out


def _nonempty(v: Any) -> bool:
    return v is not None and v != ""


_T_TENANT, _T_TENANT2 = _TENANT_KEYS
_T_SESSION, _T_SESSION2 = _SESSION_KEYS
_T_USER, _T_USER2, _T_USER3 = _USER_KEYS
_T_IN1, _T_IN2, _T_IN3 = _INPUT_KEYS
_T_OUT1, _T_OUT2, _T_OUT3 = _OUTPUT_KEYS


_ITEM_TOKEN_KEYS = ("input_tokens", "output_tokens", "cached_tokens")

#: ``usage_type`` values whose ``units_used`` are tokens of a model call without saying which (the
#: Netra SDK's docs and cookbook record ``usage_type="chat", units_used=total_tokens``). They count in
#: ``token_count``, as input tokens (the split is not known). Another kind is a token kind when it ends
#: in ``token`` / ``tokens`` (e.g. ``"rerank_tokens"``), or names a direction (below).
TOKEN_USAGE_TYPES = frozenset({
    "chat", "chat_completion", "chat_completions", "chat.completions", "completion", "completions",
    "text_completion", "generation", "llm", "text", "token", "tokens", "total_tokens", "responses", "response",
})
#: Kinds whose tokens are all input tokens.
INPUT_USAGE_TYPES = frozenset({"embedding", "embeddings", "input", "prompt"})


def token_direction(usage_type: str) -> str | None:
    """What the ``units_used`` of a ``usage_type`` are: ``"input"`` / ``"output"`` tokens, ``"tokens"``
    (tokens of both directions, split unknown), or ``None`` (not tokens: minutes, pages, requests...).

    In order: a kind of :data:`TOKEN_USAGE_TYPES` is ``"tokens"``; one of :data:`INPUT_USAGE_TYPES`, or
    one containing ``input`` or ``prompt``, is input; one containing ``output`` or ``completion`` is
    output (``"completion_tokens"``); any other kind ending in ``token`` or ``tokens`` is ``"tokens"``."""
    kind = usage_type.strip().lower().replace("-", "_").replace(" ", "_")
    if kind in TOKEN_USAGE_TYPES:
        return "tokens"
    if kind in INPUT_USAGE_TYPES or "input" in kind or "prompt" in kind or "embedding" in kind:
        return "input"
    if "output" in kind or "completion" in kind:
        return "output"
    if kind.endswith(("token", "tokens")):
        return "tokens"
    return None


def _item_tokens(item: dict[str, Any]) -> tuple[int | None, int | None, int | None, int]:
    """Input, output, cached tokens of one ``netra.usage`` item (None: not given) and how many of its
    input tokens have no known direction (the units of a kind like ``chat``)."""
    explicit = [_int(item.get(k)) for k in _ITEM_TOKEN_KEYS]
    if any(v is not None for v in explicit):
        return explicit[0], explicit[1], explicit[2], 0
    units = _int(item.get("units_used"))
    if units is None:
        return None, None, None, 0
    direction = token_direction(str(item.get("usage_type", "")))
    if direction == "input":
        return units, None, None, 0
    if direction == "output":
        return None, units, None, 0
    if direction == "tokens":
        return units, None, None, units
    return None, None, None, 0


def _usage_item_tokens(items: list[dict[str, Any]]) -> tuple[int | None, int | None, int | None, int]:
    """Input, output and cached tokens of ``netra.usage`` items, summed (None: no item gave any), and
    the part of the input tokens whose direction is unknown.

    An item with ``input_tokens`` / ``output_tokens`` / ``cached_tokens`` gives those (its
    ``units_used`` is then not read as tokens). Otherwise its ``units_used`` are tokens when its
    ``usage_type`` is a token kind (:func:`token_direction`): input/prompt/embedding -> input,
    output/completion_tokens -> output, chat/completion/tokens/... -> tokens of an unknown split,
    counted as input. Units of any other kind ("audio_minutes", "requests", "images") are not tokens.
    See docs/concepts.md."""
    i_tok = o_tok = cached = None
    undirected = 0
    for item in items:
        i, o, c, u = _item_tokens(item)
        if i is not None:
            i_tok = (i_tok or 0) + i
        if o is not None:
            o_tok = (o_tok or 0) + o
        if c is not None:
            cached = (cached or 0) + c
        undirected += u
    return i_tok, o_tok, cached, undirected


def _items_cost(items: list[dict[str, Any]], model: str, provider: str, start_ns: int) -> tuple[Decimal | None, str]:
    """The cost of ``netra.usage`` items of which at least one has ``cost_in_usd``: the given costs,
    plus each item without one priced from its own tokens (its model, else the span's) with the price
    table. ``None`` when an item cannot be priced (no tokens, tokens of an unknown split, or a model
    whose price is unknown): never a partial sum shown as the cost."""
    total = Decimal(0)
    sources: set[str] = set()
    for item in items:
        c = _decimal(item.get("cost_in_usd"))
        if c is not None:
            total += c
            sources.add(semconv.COST_SOURCE_USER)
            continue
        i, o, cached, undirected = _item_tokens(item)
        item_model = str(item.get("model") or model)
        if undirected or not (i or o) or not item_model:
            return None, "unknown"
        price, source = _price(item_model, provider, start_ns, i or 0, o or 0, cached or 0, 0)
        if price is None:
            return None, "unknown"
        total += price
        sources.add(source)
    return total, semconv.COST_SOURCE_USER if sources == {semconv.COST_SOURCE_USER} else ",".join(sorted(sources))


_ITEM_NUMBERS = ("units_used", *_ITEM_TOKEN_KEYS)


def _check_usage_items(items: list[dict[str, Any]]) -> None:
    """Raise :class:`SpanRejected` naming the first impossible number of ``netra.usage`` items."""
    for n, item in enumerate(items):
        for k in _ITEM_NUMBERS:
            if k in item:
                _named_int(item[k], f"{semconv.USAGE}[{n}].{k}")
        if "cost_in_usd" in item:
            _decimal(item["cost_in_usd"], f"{semconv.USAGE}[{n}].cost_in_usd")


def _span_usage(attrs: dict[str, Any], start_ns: int) -> tuple[str, str, int, int, int, int, str | None, str, int, int]:
    """model, provider, input/output/cached/reasoning tokens, cost (text), cost source, cost_unknown,
    has_usage of a span that has a usage-bearing attribute."""
    get = attrs.get
    usage_items = _parse_usage(get(semconv.USAGE)) if semconv.USAGE in attrs else []
    if usage_items:
        _check_usage_items(usage_items)
    i_tok = _first_int(attrs, _INPUT_KEYS)
    o_tok = _first_int(attrs, _OUTPUT_KEYS)
    cached_tok = _named_int(get(semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS), semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS)
    undirected = 0
    if i_tok is None and o_tok is None and usage_items:
        i_tok, o_tok, item_cached, undirected = _usage_item_tokens(usage_items)
        if cached_tok is None:
            cached_tok = item_cached
    i_tok = i_tok or 0
    o_tok = o_tok or 0
    cached = cached_tok or 0
    reasoning = _named_int(get(semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS), semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS) or 0
    for what, n in (("input", i_tok), ("output", o_tok), ("cached", cached)):
        if n > MAX_TOKENS:  # items' counts add up
            raise SpanRejected(f"the span's {what} tokens ({n:,}, summed over {semconv.USAGE}) are over the {MAX_TOKENS:,} bound")
    model = _first(attrs, (semconv.GEN_AI_RESPONSE_MODEL, semconv.GEN_AI_REQUEST_MODEL))
    if not model:
        for item in usage_items:
            if item.get("model"):
                model = str(item["model"])
                break
    provider = _first(attrs, _PROVIDER_KEYS)

    cost = _decimal(get(semconv.COST), semconv.COST)
    cost_source = str(get(semconv.COST_SOURCE, "")) if cost is not None else ""
    if cost is None and any(_decimal(item.get("cost_in_usd")) is not None for item in usage_items):
        cost, cost_source = _items_cost(usage_items, model, provider, start_ns)
        if cost is not None and get(semconv.COST_SOURCE):
            cost_source = str(get(semconv.COST_SOURCE))
    elif cost is None and (i_tok or o_tok):
        if model and not undirected:
            cost, cost_source = _price(model, provider, start_ns, i_tok, o_tok, cached, reasoning)
        else:  # no model, or tokens whose input/output split is unknown: not priced, never $0
            cost_source = "unknown"
    elif cost is None and usage_items:  # usage of something without a cost or tokens to price
        cost_source = "unknown"
    cost_unknown = cost is None
    if cost_unknown and not cost_source:
        cost_source = "unknown"
    return (model, provider, i_tok, o_tok, cached, reasoning, _cost_str(cost) if cost is not None else None,
            cost_source, int(cost_unknown), 1)


def _plain_usage(attrs: dict[str, Any]) -> tuple[str, str, int, int, int, int, str | None, str, int, int]:
    """The same for a span without usage-bearing attributes (it may still name a model)."""
    get = attrs.get
    model = _first(attrs, (semconv.GEN_AI_RESPONSE_MODEL, semconv.GEN_AI_REQUEST_MODEL))
    cached = _named_int(get(semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS), semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS) or 0
    reasoning = _named_int(get(semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS), semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS) or 0
    return (model, _first(attrs, _PROVIDER_KEYS), 0, 0, cached, reasoning, None, "", 0, 0)


@dataclass
class _Resource:
    service: str
    environment: str
    tenant: str
    session: str
    user: str
    json: Any


def _span_row(sp: Any, res: _Resource, scope_name: str, project_id: str, max_attr: int, max_id: int,
              bound_tenant: str | None, ingested: str) -> tuple[bytes, tuple[str, str, str, str, str, int, int, int]]:
    """One span's row, and its identity and billing fields (a ``SpanKey`` without the fingerprint);
    raises :class:`SpanRejected` when the span cannot be stored as sent."""
    tid = sp.trace_id
    sid = sp.span_id
    if len(tid) != 16 or len(sid) != 8 or tid == _ZERO_TRACE or sid == _ZERO_SPAN:
        raise SpanRejected("spans need a 16-byte trace_id and an 8-byte span_id (not all zeros)")
    start_ns = sp.start_time_unix_nano
    if not _MIN_START_NS <= start_ns <= _MAX_START_NS:
        raise SpanRejected("spans need a start time between 2000 and 2261 (start_time_unix_nano)")
    end_ns = sp.end_time_unix_nano
    if end_ns < start_ns:
        end_ns = start_ns
    elif end_ns > _MAX_START_NS:
        end_ns = _MAX_START_NS
    name = sp.name
    attrs = _attrs_fast(sp.attributes, max_attr, name)
    get = attrs.get
    span_type = get(semconv.SPAN_TYPE)
    if span_type is None:
        span_type = ""
    else:
        span_type = str(span_type).strip().lower()
        if span_type not in _SPAN_TYPES:
            span_type = span_type[:32]
    env = get(semconv.ENVIRONMENT)
    if not _nonempty(env):
        env = _first(attrs, _ENV_KEYS) or res.environment
    else:
        env = str(env)
    tenant = get(_T_TENANT)
    if not _nonempty(tenant):
        tenant = get(_T_TENANT2)
        tenant = str(tenant) if _nonempty(tenant) else res.tenant
    else:
        tenant = str(tenant)
    if bound_tenant is not None:
        if tenant != bound_tenant or any(k in attrs for k in _TENANT_KEYS):
            _bind_tenant(attrs, bound_tenant, tenant)
        tenant = bound_tenant
    session = get(_T_SESSION)
    if not _nonempty(session):
        session = get(_T_SESSION2)
        session = str(session) if _nonempty(session) else res.session
    else:
        session = str(session)
    user = get(_T_USER)
    if not _nonempty(user):
        user = _first(attrs, _USER_KEYS) or res.user
    else:
        user = str(user)
    _check_id("tenant", tenant, max_id)
    _check_id("session", session, max_id)
    _check_id("user", user, max_id)
    if _USAGE_BEARING.isdisjoint(attrs):
        usage = _plain_usage(attrs)
    else:
        usage = _span_usage(attrs, start_ns)
    covered = get(semconv.USAGE_COVERED)
    covered_flag = 0 if covered is None else int(_truthy(covered))
    status = sp.status
    status_code = status.code
    psid = sp.parent_span_id
    tid_hex = tid.hex()
    sid_hex = sid.hex()
    psid_hex = psid.hex() if len(psid) == 8 else ""
    row = [
        project_id,
        tenant,
        f"{start_ns // 1_000_000_000}.{start_ns % 1_000_000_000:09d}",
        tid_hex,
        sid_hex,
        psid_hex,
        f"{end_ns // 1_000_000_000}.{end_ns % 1_000_000_000:09d}",
        end_ns - start_ns,
        name,
        _KINDS[sp.kind] if 0 <= sp.kind < 6 else "UNSPECIFIED",
        span_type,
        session,
        user,
        res.service,
        env,
        scope_name,
        _STATUS[status_code] if 0 <= status_code < 3 else "UNSET",
        status.message,
        *usage,
        covered_flag,
        attrs,
        res.json,
        [
            {"name": e.name, "timestamp": e.time_unix_nano, "attributes": _attrs(e.attributes)}
            for e in sp.events
        ] if len(sp.events) else [],
        [
            {"trace_id": ln.trace_id.hex(), "span_id": ln.span_id.hex(), "attributes": _attrs(ln.attributes)}
            for ln in sp.links
        ] if len(sp.links) else [],
        ingested,
    ]
    return orjson.dumps(row), (project_id, tid_hex, sid_hex, psid_hex, tenant, start_ns, usage[9], covered_flag)


class _Rejections:
    """Spans rejected alone, and the partial-success message naming the first few."""

    SHOWN = 5

    def __init__(self) -> None:
        self.count = 0
        self.reasons: list[str] = []

    def add(self, reason: str) -> None:
        self.count += 1
        if len(self.reasons) < self.SHOWN:
            self.reasons.append(reason)

    def message(self) -> str:
        if not self.count:
            return ""
        more = self.count - len(self.reasons)
        return "; ".join(self.reasons) + (f"; and {more} more span(s)" if more > 0 else "")


def _span_ref(name: str, sid: bytes) -> str:
    return f"span {name[:100]!r} ({sid.hex()})"


def _check_id(kind: str, value: str, limit: int) -> None:
    if len(value) * 4 > limit and len(value.encode()) > limit:
        raise SpanRejected(
            f"its {kind} id is {len(value.encode()):,} bytes, over the {limit}-byte limit of ids "
            f"(--max-id-bytes; ids must be nameable in a URL path)"
        )


#: Set on a span sent with a tenant-bound ingest key that named another tenant (the one it named).
CLAIMED_TENANT = "netra.tenant_id.claimed"


def _bind_tenant(attrs: dict[str, Any], tenant: str, claimed: str) -> None:
    """Stamp the key's tenant on the span's attributes (the stored map shows what was billed)."""
    for k in _TENANT_KEYS:
        if k in attrs:
            attrs[k] = tenant
    attrs[semconv.TENANT_ID] = tenant
    if claimed and claimed != tenant:
        attrs[CLAIMED_TENANT] = claimed


def build_rows(req: ExportTraceServiceRequest, project_id: str, limits: Limits, now_ms: int,
               tenant: str | None = None) -> IngestBatch:
    """Map every span of ``req`` to a row; raises :class:`OtlpError` for a limit of the request.

    A span that cannot be stored as sent (no ids or start time, an impossible number, an id over
    ``limits.max_id_bytes``) is rejected alone: it counts in ``rejected`` and the message names it
    (OTLP partial success); the other spans are stored. ``tenant`` (a tenant-bound ingest key's) is
    stamped on every span whatever tenant attribute it carries; a span that named another one keeps
    that name in :data:`CLAIMED_TENANT`.

    Rows are ``JSONCompactEachRow`` of :data:`SPAN_COLUMNS`; the attribute maps, events and links are
    written as JSON objects/arrays in place and stored as their text (the insert reads objects and
    arrays as strings), so each span is serialized once.
    """
    n_spans = sum(len(ss.spans) for rs in req.resource_spans for ss in rs.scope_spans)
    if n_spans > limits.max_spans_per_request:
        raise OtlpError(
            413, f"the request has {n_spans} spans, over the {limits.max_spans_per_request}-span limit; send smaller batches"
        )
    max_attr = limits.max_attribute_bytes
    max_id = limits.max_id_bytes
    ingested = f"{now_ms // 1000}.{now_ms % 1000:03d}"
    out: list[bytes] = []
    keys: list[SpanKey] = []
    cut = len(ingested) + 4  # a row ends with ,"<ingested>"] : its fingerprint leaves that out
    rejections = _Rejections()
    for rs in req.resource_spans:
        res_attrs = _attrs_checked(rs.resource.attributes, max_attr, "(resource)")
        res_tenant = _first(res_attrs, _TENANT_KEYS)
        if tenant is not None and any(k in res_attrs for k in _TENANT_KEYS):
            _bind_tenant(res_attrs, tenant, res_tenant)
        res_json = orjson.Fragment(orjson.dumps(res_attrs))  # the same for every span of the resource: once
        ctx = _Resource(
            service=str(res_attrs.get("service.name", "")),
            environment=_first(res_attrs, _ENV_KEYS),
            tenant=res_tenant,
            session=_first(res_attrs, _SESSION_KEYS),
            user=_first(res_attrs, _USER_KEYS),
            json=res_json,
        )
        for ss in rs.scope_spans:
            scope_name = ss.scope.name
            for sp in ss.spans:
                try:
                    row = _span_row(sp, ctx, scope_name, project_id, max_attr, max_id, tenant, ingested)
                except SpanRejected as exc:
                    rejections.add(f"{_span_ref(sp.name, sp.span_id)}: {exc}")
                    continue
                except OtlpError:
                    raise
                except Exception as exc:  # never a 500 for what a span contains
                    log.exception("span %s could not be mapped", _span_ref(sp.name, sp.span_id))
                    rejections.add(f"{_span_ref(sp.name, sp.span_id)}: could not be read ({type(exc).__name__}: {exc})")
                    continue
                line, key = row
                out.append(line)
                keys.append((*key, fingerprint(memoryview(line)[:-cut])))
    data = b"\n".join(out) + b"\n" if out else b""
    return IngestBatch(data, len(out), rejections.count, rejections.message(), keys)


def parse_export(body: bytes, content_type: str, content_encoding: str, limits: Limits, project_id: str,
                 now_ms: int, tenant: str | None = None) -> IngestBatch:
    """Body as received -> rows (what the receiver runs, in-process or in a parser process)."""
    return build_rows(decode_request(body, content_type, content_encoding, limits), project_id, limits, now_ms, tenant)


def gzip_bytes(data: bytes) -> bytes:
    """gzip ``data`` (for tests and the bench)."""
    return gzip.compress(data)
