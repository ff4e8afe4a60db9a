"""ASGI / WSGI middleware: each request gets its own context; one request's tenant never reaches the next."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, make_server

import httpx
import pytest
from netra_server.launch import AppThread
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from netra import Netra, semconv
from netra.middleware import NetraASGIMiddleware, NetraWSGIMiddleware


def _handle(path: str, query: str) -> bytes:
    """The app's work for one request: maybe set a tenant, start a span, report what it saw."""
    params = parse_qs(query)
    if "tenant" in params:
        Netra.set_tenant_id(params["tenant"][0])
    with Netra.start_span(f"handle {path}?{query}"):
        seen = Netra.get_context()
    return json.dumps(seen).encode()


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    assert scope["type"] == "http"
    body = _handle(scope["path"], scope["query_string"].decode())
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    body = _handle(environ["PATH_INFO"], environ.get("QUERY_STRING", ""))
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


@contextmanager
def serve_asgi(app: Any) -> Iterator[str]:
    server = AppThread(app, lifespan="off", what="the test ASGI app")
    server.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.stop(timeout=10)


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serve_wsgi(app: Any) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, handler_class=_Quiet)  # one thread serves every request
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def _tenant_by_span(exporter: InMemorySpanExporter) -> dict[str, object]:
    return {s.name: (s.attributes or {}).get(semconv.TENANT_ID) for s in exporter.get_finished_spans()}


def test_wsgi_without_middleware_leaks_and_with_middleware_does_not(netra_memory: InMemorySpanExporter) -> None:
    with serve_wsgi(wsgi_app) as url:
        assert httpx.get(f"{url}/a", params={"tenant": "apex-legal"}).json() == {semconv.TENANT_ID: "apex-legal"}
        leaked = httpx.get(f"{url}/b").json()
    assert leaked == {semconv.TENANT_ID: "apex-legal"}  # the hazard the middleware exists for

    with serve_wsgi(NetraWSGIMiddleware(wsgi_app)) as url:
        assert httpx.get(f"{url}/c", params={"tenant": "stratex"}).json() == {semconv.TENANT_ID: "stratex"}
        assert httpx.get(f"{url}/d").json() == {}
    tenants = _tenant_by_span(netra_memory)
    assert tenants["handle /c?tenant=stratex"] == "stratex"
    assert tenants["handle /d?"] is None


def test_wsgi_context_from_request(netra_memory: InMemorySpanExporter) -> None:
    keys = {"key-apex": "apex-legal", "key-tech": "techstart"}

    def resolve(environ: dict[str, Any]) -> dict[str, Any] | None:
        tenant = keys.get(environ.get("HTTP_X_API_KEY", ""))
        return {"tenant_id": tenant, "custom": {"plan": "pro"}} if tenant else None

    with serve_wsgi(NetraWSGIMiddleware(wsgi_app, context_from_request=resolve)) as url:
        seen = [httpx.get(f"{url}/r{i}", headers={"x-api-key": k}).json()
                for i, k in enumerate(["key-apex", "key-tech", "unknown"])]
    assert seen == [
        {semconv.TENANT_ID: "apex-legal", "netra.custom.plan": "pro"},
        {semconv.TENANT_ID: "techstart", "netra.custom.plan": "pro"},
        {},
    ]


def test_asgi_under_uvicorn_keep_alive(netra_memory: InMemorySpanExporter) -> None:
    def resolve(scope: dict[str, Any]) -> dict[str, Any] | None:
        headers = dict(scope["headers"])
        session = headers.get(b"x-session")
        return {"session_id": session.decode()} if session else None

    with serve_asgi(NetraASGIMiddleware(asgi_app, context_from_request=resolve)) as url, httpx.Client() as client:
        first = client.get(f"{url}/one", params={"tenant": "apex-legal"}, headers={"x-session": "s1"}).json()
        second = client.get(f"{url}/two").json()  # same connection
    assert first == {semconv.TENANT_ID: "apex-legal", semconv.SESSION_ID: "s1"}
    assert second == {}
    tenants = _tenant_by_span(netra_memory)
    assert tenants["handle /one?tenant=apex-legal"] == "apex-legal" and tenants["handle /two?"] is None


async def test_asgi_requests_served_in_one_task_do_not_leak(netra_memory: InMemorySpanExporter) -> None:
    """A server that runs several requests in the same task (HTTP/2 style multiplexers do)."""

    async def call(app: Any, path: str, query: str) -> dict[str, Any]:
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "http", "path": path, "query_string": query.encode(), "headers": []}
        await app(scope, receive, send)
        return dict(json.loads(sent[1]["body"]))

    assert await call(asgi_app, "/x", "tenant=apex-legal") == {semconv.TENANT_ID: "apex-legal"}
    assert await call(asgi_app, "/y", "") == {semconv.TENANT_ID: "apex-legal"}  # leaks without middleware
    Netra.clear_context()
    wrapped = NetraASGIMiddleware(asgi_app)
    assert await call(wrapped, "/z", "tenant=stratex") == {semconv.TENANT_ID: "stratex"}
    assert await call(wrapped, "/w", "") == {}
    assert Netra.get_context() == {}
    # lifespan and other scope types pass straight through
    seen: list[str] = []

    async def lifespan_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    await NetraASGIMiddleware(lifespan_app)({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    assert seen == ["lifespan"]
    await asyncio.sleep(0)


def test_context_from_request_errors_do_not_break_requests(
    netra_memory: InMemorySpanExporter, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(environ: dict[str, Any]) -> dict[str, Any]:
        raise KeyError("no auth header")

    with serve_wsgi(NetraWSGIMiddleware(wsgi_app, context_from_request=broken)) as url:
        assert httpx.get(f"{url}/e").json() == {}
    assert "context_from_request raised" in caplog.text
