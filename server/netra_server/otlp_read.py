"""OTLP/HTTP trace request bodies -> plain values (the first half of ingest; :mod:`netra_server.otlp`
maps the values to rows).

:func:`read_request` takes the body as sent (protobuf or JSON, gzip or not), enforces the size limits
and gives its resources, scopes and spans as tuples, dicts and scalars (:data:`PlainResource`). A
protobuf body is read by the compiled reader (``netra_server/_otlp_wire.c``) when it was built at
install and reads the body exactly; otherwise (and for JSON) the protobuf runtime parses it and
:func:`plain_request` walks its objects. Both give the same values (``tests/server/test_otlp_wire.py``).
"""

from __future__ import annotations

import base64
import binascii
import os
import zlib
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from netra_server.config import Limits

try:  # the compiled reader of protobuf bodies (built at install when a C compiler is there)
    from netra_server import _otlp_wire
except ImportError:  # without it the protobuf runtime reads every body
    _otlp_wire = None  # type: ignore[assignment]
if os.environ.get("NETRA_COMPILED_READER", "1").strip().lower() in ("0", "off", "false", "no"):
    _otlp_wire = None  # type: ignore[assignment]  # switched off (to compare, or to rule it out)

#: Whether protobuf bodies are read by the compiled reader (``netra_server/_otlp_wire.c``); without
#: it the protobuf runtime reads them, with the same result.
COMPILED_READER = _otlp_wire is not None

__all__ = [
    "COMPILED_READER", "OtlpError", "PlainResource", "PlainSpan",
    "check_sizes", "plain_request", "read_request",
]


class OtlpError(Exception):
    """A request the receiver refuses: ``status`` is the HTTP status (400 or 413)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def __reduce__(self) -> tuple[Any, ...]:  # picklable across the parser processes
        return (OtlpError, (self.status, self.message))


#: An attribute whose size must be measured against the limit: ``(key, value)``.
Check = tuple[str, Any]
#: A span as plain values, read from the protobuf objects (:func:`plain_request`) or straight from the
#: body's bytes (``netra_server/_otlp_wire.c``): ``(trace_id, span_id, parent_span_id, name, kind,
#: start_ns, end_ns, attributes, checks, events, links, status_code, status_message)``; ``checks``:
#: None or the attributes that may be over the size limit (:func:`check_sizes` decides); ``events``:
#: None or ``[(name, time_unix_nano, attributes)]``; ``links``: None or ``[(trace_id, span_id, attributes)]``.
PlainSpan = tuple[bytes, bytes, bytes, str, int, int, int, dict[str, Any], list[Check] | None,
                  list[tuple[str, int, dict[str, Any]]] | None, list[tuple[bytes, bytes, dict[str, Any]]] | None,
                  int, str]
#: A resource and its spans: ``(attributes, checks, [(scope_name, [PlainSpan, ...]), ...])``.
PlainResource = tuple[dict[str, Any], list[Check] | None, list[tuple[str, list[PlainSpan]]]]


def _plain_attrs(kvs: Any, limit: int) -> tuple[dict[str, Any], list[Check] | None]:
    """Attributes as a dict (scalars inline, anything else through :func:`_any`), and those that may be
    over ``limit`` bytes (a superset: :func:`check_sizes` measures them when the span is mapped)."""
    out: dict[str, Any] = {}
    checks: list[Check] = []
    quarter = limit >> 2
    for kv in kvs:
        v = kv.value
        s = v.string_value  # most values are non-empty strings: no WhichOneof for them
        if s:
            if len(s) > quarter:
                checks.append((kv.key, s))
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
            if bound > limit:  # only then can it be over the limit
                checks.append((kv.key, items))
            out[kv.key] = items
        else:
            value = _any(v)
            if value is not None:
                checks.append((kv.key, value))
            out[kv.key] = value
    return out, checks or None


def plain_request(req: ExportTraceServiceRequest, limit: int) -> list[PlainResource]:
    """``req`` as plain values (what the compiled reader gives from the body's bytes)."""
    out: list[PlainResource] = []
    for rs in req.resource_spans:
        scopes: list[tuple[str, list[PlainSpan]]] = []
        for ss in rs.scope_spans:
            spans: list[PlainSpan] = []
            for sp in ss.spans:
                attrs, checks = _plain_attrs(sp.attributes, limit)
                events = [(e.name, e.time_unix_nano, _attrs(e.attributes)) for e in sp.events] if len(sp.events) else None
                links = [(ln.trace_id, ln.span_id, _attrs(ln.attributes)) for ln in sp.links] if len(sp.links) else None
                status = sp.status
                spans.append((sp.trace_id, sp.span_id, sp.parent_span_id, sp.name, sp.kind, sp.start_time_unix_nano,
                              sp.end_time_unix_nano, attrs, checks, events, links, status.code, status.message))
            scopes.append((ss.scope.name, spans))
        out.append((*_plain_attrs(rs.resource.attributes, limit), scopes))
    return out


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


def _body(body: bytes, content_type: str, content_encoding: str, limits: Limits) -> tuple[bytes, bool]:
    """The body decompressed and within the size limits, and whether it is JSON (else protobuf);
    raises :class:`OtlpError` (400/413/415) with a message."""
    if len(body) > limits.max_body_bytes:
        raise OtlpError(413, f"the body is {len(body)} bytes, over the {limits.max_body_bytes}-byte limit; send smaller batches")
    encoding = (content_encoding or "").strip().lower()
    if encoding in ("gzip", "deflate"):
        body = _gunzip(body, limits.max_decompressed_bytes, encoding)
    elif encoding not in ("", "identity"):
        raise OtlpError(415, f"Content-Encoding {encoding!r} is not supported; use gzip or none")
    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype == "application/json":
        return body, True
    if ctype in ("application/x-protobuf", "application/protobuf", "application/octet-stream", ""):
        return body, False
    raise OtlpError(415, f"Content-Type {ctype!r} is not supported; use application/x-protobuf or application/json")


def _parse(body: bytes, is_json: bool) -> ExportTraceServiceRequest:
    if is_json:
        return _json_request(body)
    req = ExportTraceServiceRequest()
    try:
        req.ParseFromString(body)
    except DecodeError as exc:
        raise OtlpError(400, f"the body is not an OTLP protobuf ExportTraceServiceRequest ({exc})") from exc
    return req


def read_request(body: bytes, content_type: str, content_encoding: str, limits: Limits) -> list[PlainResource]:
    """An export request body as plain values (:data:`PlainResource`): a protobuf body through the
    compiled reader when it is built and reads the body exactly (else, and for JSON, through the
    protobuf runtime and :func:`plain_request`; the same values either way)."""
    raw, is_json = _body(body, content_type, content_encoding, limits)
    if not is_json and _otlp_wire is not None:
        try:
            return _otlp_wire.decode(raw, limits.max_attribute_bytes)
        except ValueError:  # a body it leaves to the protobuf runtime (malformed ones among them)
            pass
    return plain_request(_parse(raw, is_json), limits.max_attribute_bytes)


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


def check_sizes(checks: list[Check], limit: int, span_name: str) -> None:
    """Raise :class:`OtlpError` (400) for the first of ``checks`` (a span's or a resource's attributes
    that may be over ``limit`` bytes) that is."""
    for key, value in checks:
        if isinstance(value, str):
            n = len(value) if len(value) * 4 <= limit else len(value.encode())
        elif isinstance(value, list | dict):
            n = len(orjson.dumps(value))
        else:
            continue
        if n > limit:
            raise OtlpError(
                400,
                f"attribute {key!r} of span {span_name!r} is {n} bytes, over the {limit}-byte limit "
                "(truncate it in the producer, or raise the server's --max-attribute-bytes)",
            )
