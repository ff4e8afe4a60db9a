"""The compiled reader of OTLP protobuf bodies (``netra_server/_otlp_wire.c``) gives what the protobuf
runtime gives, for any body: the same values for every body it reads, and a refusal (``Unsupported``,
so the protobuf runtime reads it) for every body it does not model exactly, malformed ones among
them. Then the rows, the rejections and the 4xx of a request are the same with or without it.

Checked on hypothesis-built requests (every attribute value kind, nesting, events, links, fields the
mapping ignores, fields unknown to the schema), on random byte mutations of them, and on hand-made
wire forms where protobuf's rules are subtle (merged messages, oneof order, wrong wire types, invalid
UTF-8)."""

from __future__ import annotations

import os
import struct
from typing import Any

import netra_server.otlp as otlp
import netra_server.otlp_read as otlp_read
import pytest
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from netra_server.config import Limits
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from ._helpers import T0

wire = pytest.importorskip(
    "netra_server._otlp_wire",
    reason="the compiled OTLP reader is not built (no C compiler at install; run scripts/install again)",
)

FUZZ = settings(max_examples=int(os.environ.get("NETRA_FUZZ_EXAMPLES", "300")), deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def test_ci_builds_the_compiled_reader() -> None:
    """CI installs with a compiler: there, the reader must be built and used (a build that failed
    quietly would leave every server on the slower path)."""
    assert otlp_read.COMPILED_READER
    if os.environ.get("CI"):
        assert otlp_read._otlp_wire is wire


# -- requests -------------------------------------------------------------------------------------

_text = st.text(st.characters(codec="utf-8"), max_size=12)  # control characters, non-BMP, NUL included
_keys = st.sampled_from(["netra.tenant_id", "tenant.id", "netra.session_id", "user.id", "gen_ai.request.model",
                         "gen_ai.response.model", "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens",
                         "gen_ai.provider.name", "netra.cost.usd", "netra.usage", "netra.span.type", "k", ""]) | _text


def _scalar(v: AnyValue, draw: Any) -> None:
    kind = draw(st.sampled_from(["string", "bool", "int", "double", "bytes", "strindex", "unset", "empty_string"]))
    if kind == "string":
        v.string_value = draw(_text | st.sampled_from(["gpt-4o-mini", "openai", "0.0025", "12", " 3 ", "t-1"]))
    elif kind == "empty_string":
        v.string_value = ""
    elif kind == "bool":
        v.bool_value = draw(st.booleans())
    elif kind == "int":
        v.int_value = draw(st.integers(-(1 << 63), (1 << 63) - 1) | st.integers(-5, 2_000_000_000))
    elif kind == "double":
        v.double_value = draw(st.floats(allow_nan=True, allow_infinity=True) | st.floats(0, 5))
    elif kind == "bytes":
        v.bytes_value = draw(st.binary(max_size=10))
    elif kind == "strindex":
        v.string_value_strindex = draw(st.integers(-3, 1000))


def _any_value(v: AnyValue, draw: Any, depth: int = 0) -> None:
    kind = draw(st.sampled_from(["scalar"] * 4 + ["array", "kvlist"])) if depth < 3 else "scalar"
    if kind == "scalar":
        _scalar(v, draw)
    elif kind == "array":
        v.array_value.SetInParent()
        for _ in range(draw(st.integers(0, 4))):
            _any_value(v.array_value.values.add(), draw, depth + 1)
    else:
        v.kvlist_value.SetInParent()
        for _ in range(draw(st.integers(0, 3))):
            kv = v.kvlist_value.values.add(key=draw(_keys))
            _any_value(kv.value, draw, depth + 1)


def _attributes(kvs: Any, draw: Any, most: int = 6) -> None:
    for _ in range(draw(st.integers(0, most))):
        kv = kvs.add(key=draw(_keys))
        _any_value(kv.value, draw)
        if draw(st.integers(0, 9)) == 0:
            kv.ClearField("value")
        if draw(st.integers(0, 19)) == 0:
            kv.key_strindex = draw(st.integers(0, 9))


_ids16 = st.sampled_from([b"", bytes(16), b"\x01" * 15]) | st.binary(min_size=16, max_size=16)
_ids8 = st.sampled_from([b"", bytes(8), b"\x02" * 9]) | st.binary(min_size=8, max_size=8)
_times = st.sampled_from([0, T0, T0 + 1, 9_300_000_000 * 10**9, (1 << 64) - 1]) | st.integers(0, (1 << 64) - 1)


@st.composite
def requests(draw: Any) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    for _ in range(draw(st.integers(0, 2))):
        rs = req.resource_spans.add()
        if draw(st.booleans()):
            _attributes(rs.resource.attributes, draw, 4)
            rs.resource.dropped_attributes_count = draw(st.integers(0, 3))
        if draw(st.integers(0, 7)) == 0:
            ref = rs.resource.entity_refs.add(type=draw(_text), schema_url=draw(_text))
            ref.id_keys.extend(draw(st.lists(_text, max_size=2)))
        if draw(st.integers(0, 3)) == 0:
            rs.schema_url = draw(_text)
        for _ in range(draw(st.integers(0, 2))):
            ss = rs.scope_spans.add()
            if draw(st.booleans()):
                ss.scope.name = draw(_text | st.just("netra"))
                ss.scope.version = draw(_text)
                _attributes(ss.scope.attributes, draw, 2)
            for _ in range(draw(st.integers(0, 3))):
                sp = ss.spans.add(
                    trace_id=draw(_ids16), span_id=draw(_ids8), parent_span_id=draw(_ids8 | st.just(b"")),
                    name=draw(_text), kind=draw(st.integers(-2, 7)), start_time_unix_nano=draw(_times),
                    end_time_unix_nano=draw(_times), trace_state=draw(st.just("") | _text),
                    flags=draw(st.integers(0, (1 << 32) - 1)), dropped_attributes_count=draw(st.integers(0, 2)),
                )
                _attributes(sp.attributes, draw)
                for _ in range(draw(st.integers(0, 2))):
                    ev = sp.events.add(name=draw(_text), time_unix_nano=draw(_times))
                    _attributes(ev.attributes, draw, 2)
                for _ in range(draw(st.integers(0, 2))):
                    ln = sp.links.add(trace_id=draw(_ids16), span_id=draw(_ids8), trace_state=draw(_text),
                                      flags=draw(st.integers(0, 3)))
                    _attributes(ln.attributes, draw, 2)
                if draw(st.booleans()):
                    sp.status.code = draw(st.integers(-1, 4))
                    sp.status.message = draw(_text)
    return req


# -- comparing the two readers --------------------------------------------------------------------


def _values(request: list[Any]) -> str:
    """The plain values without the lists of attributes to measure (each reader flags its own
    superset), as text (so NaN equals NaN and -0.0 differs from 0.0)."""
    return repr([
        (attrs, [(name, [(*sp[:8], *sp[9:]) for sp in spans]) for name, spans in scopes])
        for attrs, _checks, scopes in request
    ])


def _rows(request: list[Any], limits: Limits, tenant: str | None) -> Any:
    try:
        batch = otlp.rows(request, "p", limits, T0 // 1_000_000, tenant)
    except otlp_read.OtlpError as exc:
        return ("error", exc.status, exc.message)
    return (batch.data, batch.span_count, batch.rejected, batch.rejected_message, batch.keys, batch.resources)


def _same_as_runtime(body: bytes, limits: Limits, tenant: str | None = None) -> bool:
    """Assert the compiled reader reads ``body`` as the protobuf runtime does (or leaves it to it);
    whether it read it."""
    try:
        reference = ExportTraceServiceRequest.FromString(body)
    except DecodeError:
        with pytest.raises(wire.Unsupported):  # never accepts a body the runtime refuses
            wire.decode(body, limits.max_attribute_bytes)
        return False
    plain = otlp_read.plain_request(reference, limits.max_attribute_bytes)
    try:
        fast = wire.decode(body, limits.max_attribute_bytes)
    except wire.Unsupported:
        return False
    assert _values(fast) == _values(plain)
    assert _rows(fast, limits, tenant) == _rows(plain, limits, tenant)
    return True


_limits = st.sampled_from([Limits(), Limits(max_attribute_bytes=24), Limits(max_attribute_bytes=60, max_id_bytes=8)])


@FUZZ
@given(requests(), _limits, st.sampled_from([None, "bound-tenant"]))
def test_any_request_reads_the_same(req: ExportTraceServiceRequest, limits: Limits, tenant: str | None) -> None:
    assert _same_as_runtime(req.SerializeToString(), limits, tenant)  # every well-formed request: read, not left


@FUZZ
@given(requests(), st.data())
def test_mutated_bodies_read_the_same_or_are_left_to_the_runtime(req: ExportTraceServiceRequest, data: Any) -> None:
    body = bytearray(req.SerializeToString())
    assume(body)
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        i = data.draw(st.integers(0, max(len(body) - 1, 0)))
        if not body:
            break
        if op == "flip":
            body[i] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "set":
            body[i] = data.draw(st.sampled_from([0x00, 0x7F, 0x80, 0xFF, 0xC0, 0x0A, 0x0B, 0x12]))
        elif op == "insert":
            body[i:i] = data.draw(st.binary(min_size=1, max_size=3))
        elif op == "delete":
            del body[i]
        else:
            del body[i:]
    _same_as_runtime(bytes(body), Limits())


# -- hand-made wire forms -------------------------------------------------------------------------


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, wire_type: int, payload: bytes) -> bytes:
    tag = _varint(number << 3 | wire_type)
    return tag + (_varint(len(payload)) + payload if wire_type == 2 else payload)


def _len(number: int, payload: bytes) -> bytes:
    return _field(number, 2, payload)


def _span(*fields: bytes) -> bytes:
    base = _len(1, bytes(range(1, 17))) + _len(2, bytes(range(1, 9))) + _field(7, 1, struct.pack("<Q", T0))
    return base + b"".join(fields)


def _body(*span_fields: bytes, resource: bytes = b"", scope: bytes = b"", extra: bytes = b"") -> bytes:
    return _len(1, resource + _len(2, scope + _len(2, _span(*span_fields))) + extra)


def _kv(key: bytes, value: bytes | None) -> bytes:
    return _len(9, _len(1, key) + (b"" if value is None else _len(2, value)))


@pytest.mark.parametrize("body, read", [
    # read by the compiled reader
    (_body(_kv(b"a", _len(1, b"x") + _field(3, 0, _varint(5)))), True),  # oneof: the last member wins
    (_body(_kv(b"a", _len(5, _len(1, _len(1, b"x"))) + _len(1, b"y") + _len(5, b""))), True),  # array, string, array
    (_body(_kv(b"a", _field(3, 0, _varint(-1)))), True),  # a negative int: a 10-byte varint
    (_body(_kv(b"a", _field(8, 0, _varint(3)))), True),  # string_value_strindex: no value
    (_body(_kv(b"a", None)), True),  # a key without a value
    (_body(_kv(b"a", _len(1, b"1")), _kv(b"a", _field(2, 0, b"\x01"))), True),  # a key twice: the last wins
    (_body(_field(6, 0, _varint(-7)), _len(15, _field(3, 0, _varint(1 << 33)))), True),  # enums out of range
    (_body(_field(99, 0, b"\x01"), _field(98, 1, bytes(8)), _field(97, 5, bytes(4)), _len(96, b"\xff\xfe")), True),
    (_body(_len(5, b"first"), _len(5, b"second")), True),  # a string twice: the last wins
    (_body(_kv(b"b", _len(7, b"\x00\xff\x10"))), True),  # bytes: base64
    (b"", True),
    # left to the protobuf runtime, which merges or refuses
    (_body(_len(15, _len(2, b"m1")), _len(15, _field(3, 0, b"\x02"))), False),  # status twice: merged
    (_body(_kv(b"a", _len(5, _len(1, _len(1, b"x"))) + _len(5, _len(1, _len(1, b"y"))))), False),  # arrays merged
    (_body(_len(5, b"\xff\xfe")), False),  # a name that is not UTF-8
    (_body(_len(3, b"\xc0\x80")), False),  # an unused string (trace_state) that is not UTF-8
    (_body(resource=_len(1, b"") + _len(1, b"")), False),  # a resource twice
    (_body(_field(6, 2, b"\x01")), False),  # a known field with another wire type
    (_body(_field(5, 3, b"") + _field(5, 4, b"")), False),  # a group
    (_body(_kv(b"a", _len(5, _len(1, _len(5, b""))))), True),  # an array holding an empty array
    (_body(_kv(b"deep", _len(5, _len(1, _len(6, _len(1, _len(1, b"k") + _len(2, _len(1, b"leaf")))))))), True),
    (_body(extra=_field(2, 2, b"")[:1]), False),  # truncated
])
def test_wire_forms(body: bytes, read: bool) -> None:
    assert _same_as_runtime(body, Limits()) is read


def test_nesting_deeper_than_the_fast_reader_goes_is_left_to_the_runtime() -> None:
    value = _len(1, b"leaf")
    for _ in range(40):
        value = _len(5, _len(1, value))
    assert not _same_as_runtime(_body(_kv(b"deep", value)), Limits())


def test_parse_export_is_the_same_with_and_without_the_compiled_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole mapping (the receiver's entry point), for a body of an SDK-like batch, protobuf and JSON."""
    from google.protobuf import json_format

    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    for k, v in (("service.name", "svc"), ("netra.tenant_id", "acme"), ("deployment.environment", "prod")):
        rs.resource.attributes.add(key=k).value.string_value = v
    ss = rs.scope_spans.add()
    ss.scope.name = "netra"
    for n in range(1, 40):
        sp = ss.spans.add(trace_id=n.to_bytes(16, "big"), span_id=n.to_bytes(8, "big"), name=f"chat {n}",
                          start_time_unix_nano=T0 + n, end_time_unix_nano=T0 + n + 5, kind=3)
        for k, v in (("gen_ai.request.model", "gpt-4o-mini"), ("gen_ai.provider.name", "openai"),
                     ("netra.session_id", f"s{n % 3}")):
            sp.attributes.add(key=k).value.string_value = v
        sp.attributes.add(key="gen_ai.usage.input_tokens").value.int_value = 10 * n
        sp.attributes.add(key="gen_ai.usage.output_tokens").value.int_value = n
        sp.attributes.add(key="gen_ai.response.finish_reasons").value.array_value.values.add().string_value = "stop"
        if n % 5 == 0:
            sp.events.add(name="exception", time_unix_nano=T0 + n).attributes.add(key="m").value.string_value = "x"
            sp.status.code = 2
    body = req.SerializeToString()
    as_json = json_format.MessageToJson(req).encode()

    def parse(data: bytes, ctype: str) -> Any:
        b = otlp.parse_export(data, ctype, "", Limits(), "p", T0 // 1_000_000, None)
        return (b.data, b.keys, b.rejected, b.resources)

    fast = parse(body, "application/x-protobuf")
    monkeypatch.setattr(otlp_read, "_otlp_wire", None)
    assert parse(body, "application/x-protobuf") == fast
    assert parse(as_json, "application/json") == fast


def test_the_compiled_reader_can_be_switched_off() -> None:
    """``NETRA_COMPILED_READER=0`` (in the server's environment; parse workers inherit it) leaves every
    body to the protobuf runtime."""
    import subprocess
    import sys

    code = "import netra_server.otlp_read as r; print(r.COMPILED_READER)"
    for value, expected in (("0", "False"), ("off", "False"), ("1", "True")):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60,
                             env={**os.environ, "NETRA_COMPILED_READER": value}).stdout.strip()
        assert out == expected, (value, out)


def test_reading_leaks_nothing_on_any_path() -> None:
    """Every object the reader makes is freed, on the paths that read a body and on those that leave
    it to the runtime part-way (a reference leaked per span would grow the parse workers forever)."""
    import gc
    import sys

    pair = _len(1, b"key") + _len(2, _len(1, b"value"))  # a KeyValue
    good = _body(_kv(b"a", _len(5, _len(1, _len(1, b"xx")) + _len(1, _len(6, _len(1, pair))))),
                 _kv(b"big", _len(1, b"y" * 100)), _kv(b"b", _len(7, b"\x00\x01")),
                 _len(11, _len(2, b"ev") + _len(3, pair)), _len(13, _len(1, bytes(16)) + _len(4, pair)),
                 _len(15, _len(2, b"msg")))
    assert [k for k, _ in wire.decode(good, 24)[0][2][0][1][0][8]] == ["a", "big", "b"]  # read; three to measure
    left = [good[:cut] for cut in range(len(good))]  # truncated at every point
    bad = b"\x07"  # wire type 7: no such thing; at the end of each kind of message, after what it holds
    full = _kv(b"ok", _len(1, b"fine")), _len(11, _len(2, b"ev") + _len(3, pair)), _len(15, _len(2, b"msg"))
    left += [_body(*full, tail) for tail in (
        _len(9, pair + bad), _kv(b"a", _len(1, b"xx") + bad), _kv(b"a", _len(5, _len(1, _len(1, b"xx")) + bad)),
        _kv(b"a", _len(6, _len(1, pair) + bad)), _len(11, _len(2, b"ev") + _len(3, pair) + bad),
        _len(13, _len(1, bytes(16)) + _len(4, pair) + bad), _len(15, _len(2, b"msg") + bad), bad,
    )]
    left += [_body(*full, scope=_len(1, _len(1, b"sc") + bad)), _body(*full, resource=_len(1, _len(1, pair) + bad)),
             _body(*full, extra=bad)]
    left += [_body(_len(15, b""), _len(15, b"")), _body(_kv(b"a", _len(1, b"\xff")))]
    bodies = [good, *left]
    for body in bodies:  # warm up (interned strings, caches)
        try:
            wire.decode(body, 24)
        except wire.Unsupported:
            pass
    gc.collect()
    before = sys.getallocatedblocks()
    for _ in range(400):
        for body in bodies:
            try:
                wire.decode(body, 24)
            except wire.Unsupported:
                pass
    gc.collect()
    assert sys.getallocatedblocks() - before < 100  # 400 decodes of each: a leak on any path would be more
