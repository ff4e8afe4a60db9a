"""The OTLP/HTTP receiver: ``POST /v1/traces`` (protobuf or JSON, optionally gzip), answered per the
OTLP spec once the spans are durable (partial success, 429/503 with Retry-After), and its OpenAPI
description (:data:`OTLP_OPENAPI`). Decoding is :mod:`netra_server.otlp`; the shared insert is
:class:`netra_server.ingest.GroupCommitter`."""

from __future__ import annotations

import asyncio
import os
import threading
import time
import zlib
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response

from netra_server import priority
from netra_server.deps import ingest_auth, state_of
from netra_server.errors import ERROR_SCHEMA_REF, ApiError, error_response
from netra_server.ingest import Overloaded
from netra_server.otlp import OtlpError, parse_export
from netra_server.state import AckedBodies
from netra_server.store import StoreError

__all__ = ["INLINE_BODY_BYTES", "OTLP_OPENAPI", "receive_traces", "warm_parser"]

_PB = "application/x-protobuf"


def _otlp_error(status: int, message: str, is_json: bool, headers: dict[str, str] | None = None) -> Response:
    if is_json:
        return error_response(status, message, headers)
    from google.rpc import status_pb2

    body = status_pb2.Status(code=3 if status < 429 else 14, message=message).SerializeToString()
    return Response(body, status_code=status, media_type=_PB, headers=headers)


async def receive_traces(request: Request) -> Response:
    """OTLP/HTTP ``ExportTraceServiceRequest`` (protobuf or JSON, optionally gzip)."""
    ctype = request.headers.get("content-type", "")
    is_json = ctype.split(";")[0].strip().lower() == "application/json"
    try:
        state = state_of(request)
        ctx = await ingest_auth(request)
    except ApiError as exc:
        return _otlp_error(exc.status, exc.message, is_json, exc.headers)
    limits = state.settings.limits
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limits.max_body_bytes:
        return _otlp_error(413, f"the body is {declared} bytes, over the {limits.max_body_bytes}-byte limit; send smaller batches", is_json)
    committer = state.committer
    try:  # before the body is read: a request held while the store catches up costs no memory
        await committer.admit()
    except Overloaded as exc:
        return _otlp_error(429, str(exc), is_json, {"Retry-After": str(exc.retry_after)})
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limits.max_body_bytes:
            return _otlp_error(413, f"the body is over the {limits.max_body_bytes}-byte limit; send smaller batches", is_json)
        chunks.append(chunk)
    body = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "")
    # A tenant-bound ingest key decides the tenant of every span it sends (an admin key never is bound).
    tenant = ctx.tenant_id if ctx.role == "ingest" and ctx.tenant_id else None
    acked_key = AckedBodies.key(ctx.project_id if tenant is None else f"{ctx.project_id}\0{tenant}", ctype, encoding, body)
    seen = state.acked.get(acked_key)
    if seen is not None:  # a retry of a body whose spans are stored
        return _otlp_ok(seen[0], seen[1], is_json)
    if state.disk is not None:
        disk = state.disk.check()
        if disk.low:  # before a write could fail: 503 (exporters retry it; they drop a batch on 507)
            return _otlp_error(503, disk.message(), is_json, {"Retry-After": str(_DISK_RETRY_AFTER)})
    if committer.failing:
        return _otlp_error(503, f"the store cannot insert spans now ({committer.store_error}); retry", is_json,
                           {"Retry-After": "5"})
    now_ms = time.time_ns() // 1_000_000
    committer.decoding(+1)
    try:
        small = _small_body(body, encoding)
        if small is not None:  # decoding it here is cheaper than a hop to a thread
            batch = parse_export(small, ctype, "identity", limits, ctx.project_id, now_ms, tenant)
        elif state.parsers is not None:
            batch = await asyncio.get_running_loop().run_in_executor(
                state.parsers, parse_export, body, ctype, encoding, limits, ctx.project_id, now_ms, tenant
            )
        else:
            batch = await asyncio.to_thread(parse_export, body, ctype, encoding, limits, ctx.project_id, now_ms, tenant)
    except OtlpError as exc:
        return _otlp_error(exc.status, exc.message, is_json)
    finally:
        committer.decoding(-1)
    try:
        await committer.submit(batch.data, batch.span_count, batch.keys, batch.resources)
    except Overloaded as exc:
        return _otlp_error(429, str(exc), is_json, {"Retry-After": str(exc.retry_after)})
    except StoreError as exc:
        return _otlp_error(503, f"the store could not write the spans ({exc}); retry", is_json, {"Retry-After": "2"})
    state.acked.put(acked_key, batch.rejected, batch.rejected_message)
    return _otlp_ok(batch.rejected, batch.rejected_message, is_json)


#: Retry-After (seconds) of a refusal for lack of disk space.
_DISK_RETRY_AFTER = 5
#: Bodies decoded on the event loop: at most this many bytes once decompressed (larger ones, or
#: compressed ones that expand past it, are decoded in a thread or a parser process).
INLINE_BODY_BYTES = 65536


def _small_body(body: bytes, encoding: str) -> bytes | None:
    """``body`` decompressed when that is at most :data:`INLINE_BODY_BYTES` (decompressing at most
    that much here: a small gzip body that expands to megabytes is not inflated on the event loop),
    else None. A body that is not valid gzip/deflate raises the same 400 as the full decoder."""
    enc = (encoding or "").strip().lower()
    if enc in ("", "identity"):
        return body if len(body) <= INLINE_BODY_BYTES else None
    if enc not in ("gzip", "deflate") or len(body) > INLINE_BODY_BYTES:
        return None
    d = zlib.decompressobj(16 + zlib.MAX_WBITS if enc == "gzip" else zlib.MAX_WBITS)
    try:
        out = d.decompress(body, INLINE_BODY_BYTES + 1)
    except zlib.error:
        return None  # the decoder (off the loop) answers 400 with its message
    if len(out) > INLINE_BODY_BYTES or d.unconsumed_tail or not d.eof:
        return None
    return out


def _otlp_ok(rejected: int, message: str, is_json: bool) -> Response:
    if is_json:
        out: dict[str, Any] = {}
        if rejected:
            out["partialSuccess"] = {"rejectedSpans": str(rejected), "errorMessage": message}
        return Response(orjson.dumps(out), media_type="application/json")
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

    resp = ExportTraceServiceResponse()
    if rejected:
        resp.partial_success.rejected_spans = rejected
        resp.partial_success.error_message = message
    return Response(resp.SerializeToString(), media_type=_PB)


#: An OTLP error: google.rpc.Status for a protobuf request, ``{"error": {"message"}}`` for a JSON one.
_OTLP_ERROR = {
    "application/x-protobuf": {"schema": {"type": "string", "format": "binary", "description": "google.rpc.Status"}},
    "application/json": {"schema": ERROR_SCHEMA_REF},
}

OTLP_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}},
            "application/json": {"schema": {"type": "object", "description": "OTLP/JSON ExportTraceServiceRequest"}},
        },
    },
    "responses": {
        "200": {
            "description": "ExportTraceServiceResponse (in the request's encoding); the spans are durable",
            "content": {
                "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}},
                "application/json": {"schema": {
                    "type": "object",
                    "properties": {"partialSuccess": {
                        "type": "object",
                        "description": ("Present when some spans were rejected alone (no trace id, span id or start "
                                        "time; an impossible number; an id over the length limit); the others are stored"),
                        "properties": {"rejectedSpans": {"type": "string", "description": "A count (int64 as a string)"},
                                       "errorMessage": {"type": "string"}},
                    }},
                }},
            },
        },
        "400": {"description": "not an OTLP request, or an attribute over the limit", "content": _OTLP_ERROR},
        "401": {"description": "missing or wrong API key", "content": _OTLP_ERROR},
        "403": {"description": "the key may not send spans (a read key)", "content": _OTLP_ERROR},
        "413": {"description": "body or span count over the limit", "content": _OTLP_ERROR},
        "415": {"description": "another content type or encoding", "content": _OTLP_ERROR},
        "429": {"description": "overloaded; retry after Retry-After seconds", "content": _OTLP_ERROR},
        "503": {"description": ("the store cannot write (or the disk is under the free-space floor); nothing of "
                                "the request was kept: retry after Retry-After seconds"), "content": _OTLP_ERROR},
    },
}



def start_parser_process(server_pid: int, nice: int = 0) -> None:
    """Initializer of a parse worker: the worker runs at the ingest priority ``nice``
    (``netra_server.priority``) and exits once the server that started it is gone.

    A server stopped normally shuts its workers down; one killed (SIGKILL, the OOM killer) cannot, and
    its workers would otherwise wait on their queue for good, each holding its memory. A daemon thread
    checks once a second whether the worker's parent is still the server (an orphan is adopted by
    another process). Not PR_SET_PDEATHSIG: that fires when the *thread* that started the worker ends,
    and the executor starts workers from whichever thread submits."""
    priority.lower_this_process(nice)
    threading.Thread(target=_exit_with_server, args=(server_pid,), name="netra-server-watch", daemon=True).start()


def _exit_with_server(server_pid: int) -> None:
    while True:
        time.sleep(1.0)
        if os.getppid() != server_pid:
            os._exit(0)


def warm_parser() -> None:
    """Import the parser (and the price table) in a parser process before the first request."""
    import netra_server.otlp  # noqa: F401
    from netra.pricing import warm_up

    warm_up()
