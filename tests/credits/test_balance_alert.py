"""The ``credit_balance`` alert metric: a rule fires (and tells a real webhook) when a tenant's balance
drops under its threshold, and resolves when credits are granted again."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from netra_server.alerts.client import AlertsClient, AlertsError
from netra_server.testing import RunningServer

from netra.credits import CreditsClient


@pytest.fixture
def hook() -> Iterator[tuple[str, list[Any]]]:
    bodies: list[Any] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            bodies.append(json.loads(self.rfile.read(int(self.headers.get("content-length", "0")))))
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", bodies
    server.shutdown()
    server.server_close()


def test_low_balance_fires_and_resolves(netra_server: RunningServer, hook: tuple[str, list[Any]]) -> None:
    url, bodies = hook
    t = f"t-{uuid.uuid4().hex[:8]}"
    with CreditsClient(netra_server.base_url, netra_server.api_key) as credits, \
            AlertsClient(netra_server.base_url, netra_server.api_key) as alerts:
        credits.grant(t, "10")
        rule = alerts.create_rule({
            "name": f"{t} low balance", "metric": "credit_balance", "filters": [f"tenant_id = {t}"],
            "condition": {"op": "<", "threshold": 5}, "interval_seconds": 3600,
            "contact_points": [{"type": "webhook", "url": url}],
        })
        assert rule["aggregation"] == "min"
        assert alerts.evaluate() == [] and bodies == []
        credits.confirm(credits.reserve(t, "6"), amount="6")
        [event] = alerts.evaluate()
        assert event["kind"] == "firing" and event["value"] == 4.0
        deadline = time.monotonic() + 10
        while not bodies and time.monotonic() < deadline:
            time.sleep(0.05)
        assert bodies[0]["kind"] == "firing" and bodies[0]["tenant_id"] == t
        assert "credit balance of tenant_id = " + t in bodies[0]["message"]
        credits.grant(t, "10")
        [event] = alerts.evaluate()
        assert event["kind"] == "resolved"
        alerts.delete_rule(str(rule["id"]))
        with pytest.raises(AlertsError, match="400"):
            alerts.create_rule({"name": "bad", "metric": "credit_balance", "filters": ["model = gpt-4o"],
                                "condition": {"op": "<", "threshold": 5}})
