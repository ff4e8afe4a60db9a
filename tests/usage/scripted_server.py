"""A real HTTP server on a free loopback port whose answers a test scripts.

It misbehaves on purpose (errors, slow answers, bodies cut short, dropped connections, repeated
cursors) so the usage client can be checked against real sockets, not a mocked transport.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict/list -> JSON; str/bytes sent as is
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering
    truncate: bool = False  # promise more bytes than sent, then close
    drop: bool = False  # close the connection without any answer

    def payload(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


@dataclass
class Seen:
    method: str
    raw_path: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Handler = Callable[[Seen], Reply]


class ScriptedServer:
    """``server.handler`` answers each request; ``server.seen`` records them in order."""

    def __init__(self) -> None:
        self.handler: Handler = lambda seen: Reply(500, {"error": {"message": "no handler scripted"}})
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        outer = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True
            wbufsize = 1 << 16  # one write per answer (flushed after each request)

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                split = urlsplit(self.path)
                seen = Seen(
                    method=self.command,
                    raw_path=split.path,
                    path=split.path,
                    query=dict(parse_qsl(split.query, keep_blank_values=True)),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                with outer._lock:
                    outer.seen.append(seen)
                reply = outer.handler(seen)
                if reply.delay and outer._stop.wait(reply.delay):
                    self.close_connection = True
                    return
                try:
                    if reply.drop:
                        self.close_connection = True
                        return
                    payload = reply.payload()
                    self.send_response(reply.status)
                    headers = {"content-type": "application/json", **reply.headers}
                    for key, value in headers.items():
                        self.send_header(key, value)
                    if reply.truncate:
                        self.send_header("content-length", str(len(payload) + 100))
                        self.send_header("connection", "close")
                        self.end_headers()
                        self.wfile.write(payload)
                        self.wfile.flush()
                        self.close_connection = True
                        return
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            do_GET = _handle
            do_POST = _handle

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()

    def script(self, replies: Iterable[Reply], then: Reply | None = None) -> None:
        """Answer with ``replies`` in order, then ``then`` (or fail loudly) forever."""
        queue = list(replies)
        lock = threading.Lock()

        def handler(seen: Seen) -> Reply:
            with lock:
                if queue:
                    return queue.pop(0)
            if then is None:
                return Reply(599, {"error": {"message": "script exhausted"}})
            return then

        self.handler = handler

    def close(self) -> None:
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def traces_server_handler(items: list[dict[str, Any]]) -> Handler:
    """A correct ``POST /sdk/traces`` + spans paginator over ``items`` (ordered by their ``cursor``)."""

    def page(request: Seen, pagination: dict[str, Any]) -> Reply:
        direction = pagination.get("direction", "down")
        limit = int(pagination.get("limit") or 10)
        cursor = pagination.get("cursor")
        ordered = items if direction == "down" else list(reversed(items))
        start = 0
        if cursor:
            positions = [i for i, item in enumerate(ordered) if item["cursor"] == cursor]
            if not positions:
                return Reply(400, {"error": {"message": f"unknown cursor {cursor!r}"}})
            start = positions[0] + 1
        chunk = ordered[start : start + limit]
        return Reply(200, {"data": {"data": chunk, "pageInfo": {"hasNextPage": start + limit < len(ordered)}}})

    def handler(request: Seen) -> Reply:
        if request.method == "POST" and request.path == "/sdk/traces":
            return page(request, request.json().get("pagination", {}))
        if request.method == "GET" and request.path.endswith("/spans"):
            return page(request, request.query)
        return Reply(404, {"detail": "Not Found"})

    return handler
