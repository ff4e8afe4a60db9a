"""OTLP/HTTP trace requests -> rows of ``netra_spans`` (``JSONCompactEachRow`` bytes).

:func:`netra_server.otlp_read.read_request` reads the body as sent (protobuf or JSON, gzip or not)
and enforces the size limits; :func:`rows` maps each span to a row of :data:`netra_server.schema.SPAN_COLUMNS`: ids,
times, context (tenant, session, user: the mapping of ``docs/design.md``, with its fallbacks for other
producers) and the usage columns that :func:`netra_server.usage_extract.extract_usage` reads (and
prices, for spans that carry tokens but no cost).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any

import orjson
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from netra import semconv
from netra_server.billing import SpanKey, fingerprint
from netra_server.config import Limits
from netra_server.otlp_read import (
    OtlpError,
    PlainResource,
    PlainSpan,
    check_sizes,
    plain_request,
    read_request,
)
from netra_server.schema import INLINE_RESOURCE_BYTES, RESOURCE_REF_PREFIX
from netra_server.usage_extract import SpanRejected, extract_usage
from netra_server.usage_extract import first_value as _first

log = logging.getLogger("netra_server.otlp")

__all__ = ["CLAIMED_TENANT", "IngestBatch", "OtlpError", "build_rows", "parse_export", "rows"]


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



def _truthy(v: Any) -> bool:
    if isinstance(v, str):
        return v.strip().lower() in ("true", "1", "yes")
    return bool(v)


_ZERO_TRACE = bytes(16)
_ZERO_SPAN = bytes(8)
_MIN_START_NS = 946_684_800 * 1_000_000_000  # 2000-01-01
_MAX_START_NS = 9_200_000_000 * 1_000_000_000  # 2261, inside DateTime64(9)
# -- rows -------------------------------------------------------------------------------------------


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


def _span_row(sp: PlainSpan, res: _Resource, scope_name: str, project_id: str, max_attr: int, max_id: int,
              bound_tenant: str | None, ingested_at: str) -> tuple[bytes, tuple[str, str, str, str, str, int, int, int]]:
    """One span's row, and its identity and billing fields (a ``SpanKey`` without the fingerprint);
    raises :class:`SpanRejected` when the span cannot be stored as sent, :class:`OtlpError` for an
    attribute over ``max_attr`` bytes."""
    tid, sid, psid, name, kind_no, start_ns, end_ns, attrs, checks, sp_events, sp_links, code, status_message = sp
    if len(tid) != 16 or len(sid) != 8 or tid == _ZERO_TRACE or sid == _ZERO_SPAN:
        raise SpanRejected("spans need a 16-byte trace_id and an 8-byte span_id (not all zeros)")
    if not _MIN_START_NS <= start_ns <= _MAX_START_NS:
        raise SpanRejected("spans need a start time between 2000 and 2261 (start_time_unix_nano)")
    if end_ns < start_ns:
        end_ns = start_ns
    elif end_ns > _MAX_START_NS:
        end_ns = _MAX_START_NS
    if checks:
        check_sizes(checks, max_attr, name)
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
    kind = _KINDS[kind_no] if 0 <= kind_no < 6 else "UNSPECIFIED"
    status_code = _STATUS[code] if 0 <= code < 3 else "UNSET"
    events = [
        {"name": e_name, "timestamp": e_time, "attributes": e_attrs} for e_name, e_time, e_attrs in sp_events
    ] if sp_events else []
    links = [
        {"trace_id": l_trace.hex(), "span_id": l_span.hex(), "attributes": l_attrs} for l_trace, l_span, l_attrs in sp_links
    ] if sp_links else []
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
    """Map every span of ``req`` to a row (:func:`rows`)."""
    return rows(plain_request(req, limits.max_attribute_bytes), project_id, limits, now_ms, tenant)


def rows(request: list[PlainResource], project_id: str, limits: Limits, now_ms: int,
         tenant: str | None = None) -> IngestBatch:
    """Map every span of ``request`` (:func:`netra_server.otlp_read.read_request`) to a row; raises :class:`OtlpError` for a
    limit of the request.

    A span that cannot be stored as sent (no ids or start time, an impossible number, an id over
    ``limits.max_id_bytes``) is rejected alone: it counts in ``rejected`` and the message names it
    (OTLP partial success); the other spans are stored. ``tenant`` (a tenant-bound ingest key's) is
    stamped on every span whatever tenant attribute it carries; a span that named another one keeps
    that name in :data:`CLAIMED_TENANT`.

    Rows are ``JSONCompactEachRow`` of :data:`netra_server.schema.SPAN_COLUMNS`; the attribute maps, events and links are
    written as JSON objects/arrays in place and stored as their text (the insert reads objects and
    arrays as strings), so each span is serialized once.
    """
    n_spans = sum(len(spans) for _, _, scopes in request for _, spans in scopes)
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
    for res_attrs, res_checks, scopes in request:
        if res_checks:
            check_sizes(res_checks, max_attr, "(resource)")
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
        for scope_name, spans in scopes:
            for sp in spans:  # sp[3], sp[1]: its name and span id (PlainSpan)
                try:
                    row = _span_row(sp, ctx, scope_name, project_id, max_attr, max_id, tenant, ingested)
                except SpanRejected as exc:
                    rejections.add(f"{_span_ref(sp[3], sp[1])}: {exc}")
                    continue
                except OtlpError:
                    raise
                except Exception as exc:  # never a 500 for what a span contains
                    log.exception("span %s could not be mapped", _span_ref(sp[3], sp[1]))
                    rejections.add(f"{_span_ref(sp[3], sp[1])}: could not be read ({type(exc).__name__}: {exc})")
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
    return rows(read_request(body, content_type, content_encoding, limits), project_id, limits, now_ms, tenant)

