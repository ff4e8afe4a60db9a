"""The ASGI application: OTLP receiver, usage API, OpenAPI docs (and the dashboard, alerts when present).

Public API (stable)::

    from netra_server.app import create_app, ServerState
    app = create_app(Settings(data_dir=...))          # opens, migrates and bootstraps the store at startup
    app = create_app(settings, store=store)           # or use a store you opened (you close it)

``app.state.netra`` is the :class:`ServerState` (store, key manager, group committer, cursor codec,
default project) once the app has started.

Extensions: at creation the app imports ``netra_server.dashboard`` and ``netra_server.alerts`` if they
exist and calls their ``install(app: FastAPI, hooks: Hooks) -> None``. ``install`` may add routes and
append ``async def f(state: ServerState) -> None`` callables to ``hooks.on_startup`` /
``hooks.on_shutdown`` (run once the store is ready / before it closes), and pydantic models to
``hooks.openapi_models`` (their schemas join the OpenAPI components, for a request body a route reads
itself and refers to as ``#/components/schemas/<Model>``). In a route, the state is
``state_of(request)`` (``request.app.state.netra``; it raises ``ApiError(503)`` while the server
starts). Auth for extension routes: ``Depends(read_auth)`` / ``Depends(admin_auth)`` (they return an
:class:`~netra_server.auth.AuthContext`); ``raise ApiError(status, message)`` answers
``{"error": {"message": ...}}``.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import logging
import time
import zlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from netra_server.auth import (
    AuthContext,
    FailureLimiter,
    KeyManager,
    TooManyFailures,
    check_key,
    client_address,
)
from netra_server.config import Settings
from netra_server.consistency import ReadConsistency
from netra_server.disk import DiskGuard
from netra_server.ingest import GroupCommitter, Overloaded
from netra_server.journal import Journal
from netra_server.otlp import OtlpError, parse_export
from netra_server.security_headers import SecurityHeaders
from netra_server.store import Project, Store, StoreError, open_store
from netra_server.validation import BadRequest, CursorCodec
from netra_server.wire import ErrorResponse

__all__ = [
    "ApiError",
    "Hooks",
    "ServerState",
    "admin_auth",
    "create_app",
    "error_response",
    "ingest_auth",
    "read_auth",
    "state_of",
]

log = logging.getLogger("netra_server")

EXTENSIONS = ("netra_server.dashboard", "netra_server.alerts", "netra_server.credits")


@dataclass
class ServerState:
    settings: Settings
    store: Store
    keys: KeyManager
    committer: GroupCommitter
    cursors: CursorCodec
    project: Project
    #: The admin key created at this start (first start only), else None.
    bootstrap_key: str | None = None
    owns_store: bool = True
    #: Parser processes for large export requests (None: parse in this process).
    parsers: Any = None
    #: Bodies acknowledged lately (exporter retries are answered without parsing again).
    acked: AckedBodies = field(default_factory=lambda: AckedBodies())
    #: Free space of the embedded store's folders (None: a ClickHouse server, or the check is off).
    disk: DiskGuard | None = None


class AckedBodies:
    """Digests of export bodies whose spans are durable, with the answer given (rejected count and
    message), for ``max_age`` seconds and at most ``max_entries``.

    An exporter that timed out retries with the very same body; its spans are already stored, so
    the receiver answers again without decoding and re-inserting them (the store would count them
    once anyway). Keyed by project, content type, encoding and a 128-bit BLAKE2b digest of the body
    as received.
    """

    def __init__(self, max_entries: int = 16_384, max_age: float = 600.0) -> None:
        self.max_entries = max_entries
        self.max_age = max_age
        self._seen: OrderedDict[tuple[str, str, str, bytes], tuple[float, int, str]] = OrderedDict()
        self.hits = 0

    @staticmethod
    def key(project_id: str, ctype: str, encoding: str, body: bytes) -> tuple[str, str, str, bytes]:
        return (project_id, ctype, encoding, hashlib.blake2b(body, digest_size=16).digest())

    def get(self, key: tuple[str, str, str, bytes]) -> tuple[int, str] | None:
        hit = self._seen.get(key)
        if hit is None or time.monotonic() - hit[0] > self.max_age:
            return None
        self.hits += 1
        return hit[1], hit[2]

    def put(self, key: tuple[str, str, str, bytes], rejected: int, message: str) -> None:
        self._seen[key] = (time.monotonic(), rejected, message)
        self._seen.move_to_end(key)
        while len(self._seen) > self.max_entries:
            self._seen.popitem(last=False)


@dataclass
class Hooks:
    """Startup/shutdown callables of extensions; each gets the :class:`ServerState`."""

    on_startup: list[Callable[[ServerState], Awaitable[None]]] = field(default_factory=list)
    on_shutdown: list[Callable[[ServerState], Awaitable[None]]] = field(default_factory=list)
    #: Models whose JSON schemas (validation mode) are added to the OpenAPI components.
    openapi_models: list[type[BaseModel]] = field(default_factory=list)


class ApiError(Exception):
    """Raised in a route: the app answers ``status`` with ``{"error": {"message": message}}``."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message}}, status_code=status, headers=headers)


def state_of(request: Request) -> ServerState:
    """The running server's :class:`ServerState` (for routes of extensions); answers 503 while the
    server is starting."""
    state: ServerState | None = getattr(request.app.state, "netra", None)
    if state is None:
        raise ApiError(503, "the server is starting; retry in a moment", {"Retry-After": "1"})
    return state


def _key_from(request: Request) -> str | None:
    key = request.headers.get("x-api-key")
    if key:
        return key.strip()
    authz = request.headers.get("authorization", "")
    if authz[:7].lower() == "bearer ":
        return authz[7:].strip()
    return None


async def _auth(request: Request) -> AuthContext:
    state = state_of(request)
    key = _key_from(request)
    if not key:
        raise ApiError(401, "missing API key: send it as `x-api-key: <key>` or `Authorization: Bearer <key>`")
    client = client_address(request.client.host if request.client else None, request.headers,
                            state.settings.trusted_proxy_header)
    try:
        ctx = await check_key(state.keys, key, client)  # caches, and a limit on failures per client
    except TooManyFailures as exc:
        raise ApiError(429, str(exc), {"Retry-After": str(exc.retry_after)}) from None
    if ctx is None:
        raise ApiError(401, "invalid or revoked API key")
    return ctx


async def read_auth(request: Request) -> AuthContext:
    """FastAPI dependency: a key that may read (admin or read)."""
    ctx = await _auth(request)
    if not ctx.can_read:
        raise ApiError(403, f"this API key has role {ctx.role!r} and cannot read; use a read or admin key")
    return ctx


async def ingest_auth(request: Request) -> AuthContext:
    """FastAPI dependency: a key that may send spans (admin or ingest)."""
    ctx = await _auth(request)
    if not ctx.can_ingest:
        raise ApiError(403, f"this API key has role {ctx.role!r} and cannot send spans; use an ingest or admin key")
    return ctx


async def admin_auth(request: Request) -> AuthContext:
    """FastAPI dependency: an admin key."""
    ctx = await _auth(request)
    if not ctx.is_admin:
        raise ApiError(403, "this route needs an admin API key")
    return ctx


# -- the receiver ------------------------------------------------------------------------------------

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
    committer = state.committer
    if state.disk is not None:
        disk = state.disk.check()
        if disk.low:  # before a write could fail: 503 (exporters retry it; they drop a batch on 507)
            return _otlp_error(503, disk.message(), is_json, {"Retry-After": str(_DISK_RETRY_AFTER)})
    if committer.store_error is not None and committer.journal is not None:
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
        await committer.submit(batch.data, batch.span_count, batch.keys)
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


_ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}
#: An OTLP error: google.rpc.Status for a protobuf request, ``{"error": {"message"}}`` for a JSON one.
_OTLP_ERROR = {
    "application/x-protobuf": {"schema": {"type": "string", "format": "binary", "description": "google.rpc.Status"}},
    "application/json": {"schema": _ERROR_REF},
}

_OTLP_OPENAPI: dict[str, Any] = {
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


def _finish_openapi(schema: dict[str, Any], models: list[type[BaseModel]]) -> None:
    """Fix up FastAPI's document: the server answers a request that fails validation with ``400``
    and :class:`~netra_server.wire.ErrorResponse`, never FastAPI's ``422``; ``models`` (and the
    error model) join the components."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    extra: list[type[BaseModel]] = [ErrorResponse, *models]
    for model in extra:
        js = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, sub in js.pop("$defs", {}).items():
            components.setdefault(name, sub)
        components.setdefault(model.__name__, js)
    for ops in schema.get("paths", {}).values():
        for op in ops.values():
            responses = op.get("responses", {})
            if responses.pop("422", None) is not None and "400" not in responses:
                responses["400"] = {"description": "Bad input; the message says what to send",
                                    "content": {"application/json": {"schema": _ERROR_REF}}}
    for name in ("HTTPValidationError", "ValidationError"):  # unused once the 422s are gone
        if b'"#/components/schemas/' + name.encode() + b'"' not in orjson.dumps(schema):
            components.pop(name, None)


def _warm_parser() -> None:
    """Import the parser (and the price table) in a parser process before the first request."""
    import netra_server.otlp  # noqa: F401
    from netra.pricing import warm_up

    warm_up()


# -- lifecycle ---------------------------------------------------------------------------------------


def prepare_store(settings: Settings, store: Store | None = None) -> tuple[Store, Project, str | None]:
    """Open (unless given), migrate and bootstrap the store; returns it, the default project and the
    admin key created now (first start) or None."""
    if store is None:
        store = open_store(settings.resolved_store_url(), threads=settings.query_threads,
                           memory_limit_bytes=settings.store_memory_bytes)
    try:
        _import_extensions()
        store.migrate(settings.retention_days)
        recover_journal(settings, store)  # what a previous process acknowledged, before anything else
        keys = KeyManager(store, cache_seconds=settings.key_cache_seconds)
        project, key = keys.bootstrap(project_name=settings.project_name, seed_key=settings.api_key)
    except Exception:
        store.close()
        raise
    return store, project, key


def _journal_dir(settings: Settings, store: Store) -> Path | None:
    path = getattr(store.backend, "path", None)
    return settings.journal_dir(path) if store.kind == "chdb" and path else None


def _disk_guard(settings: Settings, store: Store) -> DiskGuard | None:
    path = getattr(store.backend, "path", None)
    if store.kind != "chdb" or not path or settings.min_free_disk_bytes <= 0:
        return None
    guard = DiskGuard([Path(path), settings.journal_dir(path)], settings.min_free_disk_bytes)
    guard.check()  # logs now if the disk is already under the floor
    return guard


def recover_journal(settings: Settings, store: Store) -> int:
    """Insert what a previous process left in the embedded store's ingest journal (also when this one
    runs with ``journal=False``: those spans were acknowledged); returns the spans inserted."""
    directory = _journal_dir(settings, store)
    if directory is None or not directory.is_dir():
        return 0
    recovered = Journal(directory, store.insert_spans).recover()
    if recovered:
        log.warning("inserted %d acknowledged span(s) that the previous run left in the ingest journal", recovered)
    return recovered


def open_journal(settings: Settings, store: Store) -> Journal | None:
    """The ingest journal of an embedded store (None for a ClickHouse server: its processes keep no
    state); reads of the store wait for it (``Store.read_barrier``). Call after :func:`recover_journal`
    (``prepare_store`` does), which inserted what a previous process left."""
    directory = _journal_dir(settings, store)
    if directory is None:
        return None
    journal = Journal(directory, store.insert_spans, fsync=settings.journal_fsync)
    store.read_barrier = journal
    store.read_consistency, store.max_read_staleness = settings.read_consistency, settings.max_read_staleness
    return journal


_extension_modules: list[Any] = []


def _import_extensions() -> list[Any]:
    if _extension_modules:
        return _extension_modules
    for name in EXTENSIONS:
        try:
            _extension_modules.append(importlib.import_module(name))
        except ModuleNotFoundError as exc:
            if exc.name != name:
                log.exception("extension %s failed to import", name)
        except Exception:
            log.exception("extension %s failed to import", name)
    return _extension_modules


async def _refresh_rollups(state: ServerState, days_per_call: int = 4) -> None:
    """Keep the daily rollups current (``Store.refresh_rollups``) while the server runs: a few days per
    call (so a shutdown waits for at most those), again at once while days are left."""
    settings = state.settings
    while True:
        days: list[str] = []
        try:
            days = await state.store.run(
                state.store.refresh_rollups, settle_seconds=settings.rollup_settle_seconds, max_days=days_per_call
            )
            if days:
                log.info("rolled up %d day(s): %s", len(days), ", ".join(days))
        except StoreError as exc:
            log.warning("rollup refresh failed (reads stay exact, from the spans): %s", exc)
        except Exception:
            log.exception("rollup refresh failed")
        await asyncio.sleep(0 if len(days) == days_per_call else settings.rollup_interval)


def create_app(settings: Settings, *, store: Store | None = None) -> FastAPI:
    """The server as an ASGI app. Without ``store`` the app opens the configured one at startup."""
    from netra_server.api import router as api_router

    hooks = Hooks()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owns = store is None
        st, project, key = await asyncio.to_thread(prepare_store, settings, store)
        keys = KeyManager(
            st, cache_seconds=settings.key_cache_seconds, negative_cache_seconds=settings.negative_key_cache_seconds,
            limiter=FailureLimiter(settings.auth_failure_burst, settings.auth_failures_per_second),
        )
        try:
            journal = await asyncio.to_thread(open_journal, settings, st) if settings.journal else None
        except Exception:
            if owns:
                st.close()
            raise
        committer = GroupCommitter(
            st, max_batch_spans=settings.limits.max_batch_spans, max_pending_spans=settings.limits.max_pending_spans,
            journal=journal, flush_seconds=settings.journal_flush_seconds,
        )
        committer.start()
        cursors = CursorCodec(await st.run(st.secret))
        state = ServerState(settings, st, keys, committer, cursors, project, key, owns)
        state.disk = _disk_guard(settings, st)
        workers = settings.resolved_parse_workers()
        if workers:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            state.parsers = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
            loop = asyncio.get_running_loop()
            await asyncio.gather(*(loop.run_in_executor(state.parsers, _warm_parser) for _ in range(workers)))
        app.state.netra = state
        refresher = (
            asyncio.get_running_loop().create_task(_refresh_rollups(state), name="netra-rollups")
            if settings.rollup_interval > 0 else None
        )
        try:
            for fn in hooks.on_startup:
                await fn(state)
            yield
        finally:
            if refresher is not None:
                refresher.cancel()
            for fn in hooks.on_shutdown:
                try:
                    await fn(state)
                except Exception:
                    log.exception("shutdown hook failed")
            await committer.stop()
            st.read_barrier = None
            if state.parsers is not None:
                state.parsers.shutdown(wait=True, cancel_futures=True)
            app.state.netra = None
            if owns:
                await asyncio.to_thread(st.close)

    app = FastAPI(
        title="Netra server",
        version="0.1.0",
        summary="OTLP receiver, usage API and trace queries for per-tenant AI cost tracking.",
        description=(
            "Every route needs an API key: `x-api-key: <key>` or `Authorization: Bearer <key>`. "
            "Errors answer `{\"error\": {\"message\": ...}}`."
        ),
        lifespan=lifespan,
        # FastAPI's built-in tracing uses the global TracerProvider: with Netra.init in the same process
        # (the demo, the cookbook) the server would trace its own OTLP requests and export them to itself.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.netra = None
    app.add_middleware(SecurityHeaders)  # CSP, nosniff, framing, referrer (netra_server.security_headers)
    app.add_middleware(ReadConsistency)  # consistency= / X-Netra-Consistency, X-Netra-Data-As-Of

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        return error_response(exc.status, exc.message, exc.headers)

    @app.exception_handler(BadRequest)
    async def _bad_request(request: Request, exc: BadRequest) -> Response:
        return error_response(400, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        parts = []
        for err in exc.errors():
            loc = ".".join(str(x) for x in err.get("loc", ()) if x not in ("body", "query", "path"))
            parts.append(f"{loc or 'body'}: {err.get('msg', 'invalid')}")
        return error_response(400, "; ".join(parts) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        return error_response(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(StoreError)
    async def _store(request: Request, exc: StoreError) -> Response:
        log.warning("store error on %s: %s", request.url.path, exc)
        return error_response(503, f"the store is unavailable: {exc}", {"Retry-After": "2"})

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> Response:
        log.exception("internal error on %s", request.url.path)
        return error_response(500, "internal server error; see the server log")

    for path in ("/v1/traces", "/telemetry/v1/traces"):
        app.add_api_route(
            path, receive_traces, methods=["POST"], tags=["ingest"], summary="OTLP/HTTP traces",
            openapi_extra=_OTLP_OPENAPI, include_in_schema=path == "/v1/traces",
        )

    @app.get("/healthz", tags=["meta"], summary="Liveness, and whether ingest accepts spans (no key needed)")
    async def healthz() -> dict[str, Any]:
        """``status`` is ``ok``, or ``degraded`` while the receiver refuses new spans (``ingest``:
        ``refusing``, with the ``reason``: free disk space under the floor, or a store that cannot
        insert). Always 200 while the process serves (a liveness check)."""
        state: ServerState | None = getattr(app.state, "netra", None)
        if state is None:
            return {"status": "starting"}
        reasons: list[str] = []
        out: dict[str, Any] = {"status": "ok", "ingest": "accepting"}
        if state.disk is not None:
            disk = state.disk.check()
            out["disk"] = {"path": disk.path, "freeBytes": disk.free_bytes, "floorBytes": disk.floor_bytes}
            if disk.low:
                reasons.append(disk.message())
        if state.committer.store_error is not None:
            reasons.append(f"the store cannot insert spans: {state.committer.store_error}")
        if reasons:
            out.update(status="degraded", ingest="refusing", reason="; ".join(reasons))
        return out

    app.include_router(api_router)

    fastapi_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _finish_openapi(fastapi_openapi(), hooks.openapi_models)
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]

    for module in _import_extensions():
        install = getattr(module, "install", None)
        if install is not None:
            try:
                install(app, hooks)
            except Exception:
                log.exception("extension %s failed to install", module.__name__)
    return app
