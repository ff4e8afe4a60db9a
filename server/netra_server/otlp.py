"""OTLP/HTTP trace requests -> rows of ``netra_spans`` (``JSONCompactEachRow`` bytes).

:func:`decode_request` takes the body as sent (protobuf or JSON, gzip or not) and enforces the size
limits; :func:`build_rows` maps each span to a row of :data:`netra_server.schema.SPAN_COLUMNS`: ids,
times, context (tenant, session, user: the mapping of ``docs/design.md``, with its fallbacks for other
producers) and the usage columns that :func:`netra_server.usage_extract.extract_usage` reads (and
prices, for spans that carry tokens but no cost).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import zlib
from dataclasses import dataclass, field
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from netra import semconv
from netra_server.billing import SpanKey, fingerprint
from netra_server.config import Limits
from netra_server.schema import INLINE_RESOURCE_BYTES, RESOURCE_REF_PREFIX
from netra_server.usage_extract import SpanRejected, extract_usage
from netra_server.usage_extract import first_value as _first

log = logging.getLogger("netra_server.otlp")

__all__ = [
    "CLAIMED_TENANT", "IngestBatch", "OtlpError",
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
    #: ``JSONCompactEachRow`` rows of :data:`netra_server.schema.SPAN_COLUMNS`.
    data: bytes
    span_count: int
    rejected: int
    rejected_message: str
    #: Per row, its identity and billing fields (``netra_server.billing.SpanKey``), so the writer
    #: need not parse the rows again.
    keys: list[SpanKey] = field(default_factory=list)
    #: The resources the rows name (``@resource:<id>`` in their ``resource_attributes``):
    #: ``(project_id, resource_id) -> attributes as JSON``; they must be stored (``Store.store_resources``)
    #: before the rows are acknowledged.
    resources: dict[tuple[str, str], bytes] = field(default_factory=dict)


_KINDS = ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
_STATUS = ("UNSET", "OK", "ERROR")
_SPAN_TYPES = {"span", "generation", "tool", "embedding", "agent", "usage"}

_TENANT_KEYS = (semconv.TENANT_ID, "tenant.id")
_SESSION_KEYS = (semconv.SESSION_ID, "session.id")
_USER_KEYS = (semconv.USER_ID, "user.id", "enduser.id")
_ENV_KEYS = (semconv.ENVIRONMENT, "deployment.environment")



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


def _truthy(v: Any) -> bool:
    if isinstance(v, str):
        return v.strip().lower() in ("true", "1", "yes")
    return bool(v)


_ZERO_TRACE = bytes(16)
_ZERO_SPAN = bytes(8)
_MIN_START_NS = 946_684_800 * 1_000_000_000  # 2000-01-01
_MAX_START_NS = 9_200_000_000 * 1_000_000_000  # 2261, inside DateTime64(9)
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


@dataclass
class _Resource:
    service: str
    environment: str
    tenant: str
    session: str
    user: str
    #: The span rows' ``resource_attributes``: the resource's attributes as JSON (serialized once), or
    #: a reference to its row of ``netra_resources``.
    resource_attributes: Any


def _span_row(sp: Any, res: _Resource, scope_name: str, project_id: str, max_attr: int, max_id: int,
              bound_tenant: str | None, ingested_at: str) -> tuple[bytes, tuple[str, str, str, str, str, int, int, int]]:
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
    environment = get(semconv.ENVIRONMENT)
    if not _nonempty(environment):
        environment = _first(attrs, _ENV_KEYS) or res.environment
    else:
        environment = str(environment)
    tenant_id = get(_T_TENANT)
    if not _nonempty(tenant_id):
        tenant_id = get(_T_TENANT2)
        tenant_id = str(tenant_id) if _nonempty(tenant_id) else res.tenant
    else:
        tenant_id = str(tenant_id)
    if bound_tenant is not None:
        if tenant_id != bound_tenant or any(k in attrs for k in _TENANT_KEYS):
            _bind_tenant(attrs, bound_tenant, tenant_id)
        tenant_id = bound_tenant
    session_id = get(_T_SESSION)
    if not _nonempty(session_id):
        session_id = get(_T_SESSION2)
        session_id = str(session_id) if _nonempty(session_id) else res.session
    else:
        session_id = str(session_id)
    user_id = get(_T_USER)
    if not _nonempty(user_id):
        user_id = _first(attrs, _USER_KEYS) or res.user
    else:
        user_id = str(user_id)
    _check_id("tenant", tenant_id, max_id)
    _check_id("session", session_id, max_id)
    _check_id("user", user_id, max_id)
    u = extract_usage(attrs, start_ns)
    covered_attr = get(semconv.USAGE_COVERED)
    covered = 0 if covered_attr is None else int(_truthy(covered_attr))
    status = sp.status
    code = status.code
    psid = sp.parent_span_id
    trace_id = tid.hex()
    span_id = sid.hex()
    parent_span_id = psid.hex() if len(psid) == 8 else ""
    duration_ns = end_ns - start_ns
    # seconds.nanoseconds (both times are at least 2000-01-01: over nine digits), by slicing the digits
    # (half the time of dividing and formatting)
    digits = str(start_ns)
    start_time = f"{digits[:-9]}.{digits[-9:]}"
    digits = str(end_ns)
    end_time = f"{digits[:-9]}.{digits[-9:]}"
    kind = _KINDS[sp.kind] if 0 <= sp.kind < 6 else "UNSPECIFIED"
    status_code = _STATUS[code] if 0 <= code < 3 else "UNSET"
    status_message = status.message
    events = [
        {"name": e.name, "timestamp": e.time_unix_nano, "attributes": _attrs(e.attributes)} for e in sp.events
    ] if len(sp.events) else []
    links = [
        {"trace_id": ln.trace_id.hex(), "span_id": ln.span_id.hex(), "attributes": _attrs(ln.attributes)}
        for ln in sp.links
    ] if len(sp.links) else []
    # The values of netra_server.schema.SPAN_COLUMNS, in its order: each element is named as its column
    # (a local variable, a field of the usage record, or an attribute of the resource); written out for
    # speed, and checked against the column list by tests/server/test_architecture.py.
    attributes = attrs
    resource_attributes = res.resource_attributes
    row = [
        project_id, tenant_id, start_time, trace_id, span_id, parent_span_id, end_time, duration_ns,
        name, kind, span_type, session_id, user_id, res.service, environment, scope_name, status_code,
        status_message, u.model, u.provider, u.input_tokens, u.output_tokens, u.cached_tokens,
        u.reasoning_tokens, u.cost, u.cost_source, u.cost_unknown, u.has_usage, covered, attributes,
        resource_attributes, events, links, ingested_at,
    ]
    return orjson.dumps(row), (project_id, trace_id, span_id, parent_span_id, tenant_id, start_ns, u.has_usage, covered)


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

    Rows are ``JSONCompactEachRow`` of :data:`netra_server.schema.SPAN_COLUMNS`; the attribute maps, events and links are
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
    # The rows go into one buffer as they are made, each row's bytes freed at once (kept in a list,
    # every orjson.dumps result takes fresh memory: more page faults; ~0.5-0.8 us a span measured).
    buf = bytearray()
    keys: list[SpanKey] = []
    cut = len(ingested) + 4  # a row ends with ,"<ingested>"] : its fingerprint leaves that out
    rejections = _Rejections()
    resources: dict[tuple[str, str], bytes] = {}
    for rs in req.resource_spans:
        res_attrs = _attrs_fast(rs.resource.attributes, max_attr, "(resource)")
        res_tenant = _first(res_attrs, _TENANT_KEYS)
        if tenant is not None and any(k in res_attrs for k in _TENANT_KEYS):
            _bind_tenant(res_attrs, tenant, res_tenant)
        res_json = _resource_value(orjson.dumps(res_attrs), project_id, resources)
        ctx = _Resource(
            service=str(res_attrs.get("service.name", "")),
            environment=_first(res_attrs, _ENV_KEYS),
            tenant=res_tenant,
            session=_first(res_attrs, _SESSION_KEYS),
            user=_first(res_attrs, _USER_KEYS),
            resource_attributes=res_json,
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
                keys.append((*key, fingerprint(memoryview(line)[:-cut])))
                buf += line
                buf += b"\n"
                del row, line
    return IngestBatch(bytes(buf), len(keys), rejections.count, rejections.message(), keys, resources)


def _resource_value(res_json: bytes, project_id: str, resources: dict[tuple[str, str], bytes]) -> Any:
    """What the span rows of a resource carry as ``resource_attributes``: its JSON when short, else a
    reference (``@resource:<id>``, the id a digest of the JSON) to the row it gets in ``netra_resources``
    (added to ``resources``)."""
    if len(res_json) <= INLINE_RESOURCE_BYTES:
        return orjson.Fragment(res_json)
    resource_id = hashlib.sha256(res_json).hexdigest()[:32]
    resources[(project_id, resource_id)] = res_json
    return RESOURCE_REF_PREFIX + resource_id


def parse_export(body: bytes, content_type: str, content_encoding: str, limits: Limits, project_id: str,
                 now_ms: int, tenant: str | None = None) -> IngestBatch:
    """Body as received -> rows (what the receiver runs, in-process or in a parser process)."""
    return build_rows(decode_request(body, content_type, content_encoding, limits), project_id, limits, now_ms, tenant)

