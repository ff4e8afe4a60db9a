"""The ASGI application, assembled: the OTLP receiver, the usage API, the dashboard, alerts and credits
routes, the error handlers, ``/healthz`` and the OpenAPI document.

Public API (stable)::

    from netra_server.app import create_app, ServerState
    app = create_app(Settings(data_dir=...))          # opens, migrates and bootstraps the store at startup
    app = create_app(settings, store=store)           # or use a store you opened (you close it)

``app.state.netra`` is the :class:`~netra_server.state.ServerState` (store, key manager, group
committer, cursor codec, default project) once the app has started.

Where the parts live: errors in :mod:`netra_server.errors`, the auth dependencies and ``state_of``
in :mod:`netra_server.deps`, the state in :mod:`netra_server.state`, the receiver in
:mod:`netra_server.receiver`, startup and shutdown in :mod:`netra_server.lifecycle`. A part with its
own routes has an ``install(app: FastAPI, hooks: Hooks) -> None`` that this module calls: it adds
routes and appends ``async def f(state: ServerState) -> None`` callables to ``hooks.on_startup`` /
``hooks.on_shutdown`` (run once the store is ready / before it closes), and pydantic models to
``hooks.openapi_models`` (their schemas join the OpenAPI components, for a request body a route reads
itself and refers to as ``#/components/schemas/<Model>``).
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from netra_server import alerts, credits, dashboard
from netra_server.api import router as api_router
from netra_server.config import Settings
from netra_server.consistency import ReadConsistency
from netra_server.errors import ERROR_SCHEMA_REF, ApiError, error_response
from netra_server.lifecycle import lifespan, prepare_store
from netra_server.receiver import OTLP_OPENAPI, receive_traces
from netra_server.security_headers import SecurityHeaders
from netra_server.state import Hooks, ServerState
from netra_server.store import Store, StoreError
from netra_server.validation import BadRequest
from netra_server.wire import ErrorResponse

__all__ = ["ServerState", "create_app", "prepare_store"]

log = logging.getLogger("netra_server")


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
                                    "content": {"application/json": {"schema": ERROR_SCHEMA_REF}}}
    for name in ("HTTPValidationError", "ValidationError"):  # unused once the 422s are gone
        if b'"#/components/schemas/' + name.encode() + b'"' not in orjson.dumps(schema):
            components.pop(name, None)


def create_app(settings: Settings, *, store: Store | None = None) -> FastAPI:
    """The server as an ASGI app. Without ``store`` the app opens the configured one at startup."""
    hooks = Hooks()

    app = FastAPI(
        title="Netra server",
        version="0.1.0",
        summary="OTLP receiver, usage API and trace queries for per-tenant AI cost tracking.",
        description=(
            "Every route needs an API key: `x-api-key: <key>` or `Authorization: Bearer <key>`. "
            "Errors answer `{\"error\": {\"message\": ...}}`."
        ),
        lifespan=lifespan(settings, store, hooks),
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
            openapi_extra=OTLP_OPENAPI, include_in_schema=path == "/v1/traces",
        )

    @app.get("/healthz", tags=["meta"], summary="Liveness, and whether ingest accepts spans (no key needed)")
    async def healthz() -> dict[str, Any]:
        """``status`` is ``ok``, or ``degraded`` while the receiver refuses new spans (``ingest``:
        ``refusing``, with the ``reason``: free disk space under the floor, or a store that cannot
        insert). ``liveUsage`` (embedded store): whether usage reads take the day being written from
        the live usage table, for spans started from ``from`` on, and how often it was reset. Always 200
        while the process serves (a liveness check)."""
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
        live = state.store.span_index.live
        if live is not None:  # usage reads of spans that started from `from` on read the live usage table
            out["liveUsage"] = live.describe()
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

    for part in (dashboard, alerts, credits):
        part.install(app, hooks)
    return app
