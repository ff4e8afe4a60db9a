"""A small HTTP client for the ``/api/alerts`` routes (the CLI and the demo use it).

::

    from netra_server.alerts.client import AlertsClient, create_rule
    rule = create_rule("http://localhost:4318", api_key, {
        "name": "apex-legal SLA", "scope": "trace", "metric": "latency", "aggregation": "p95",
        "filters": ["tenant_id = apex-legal"], "condition": {"op": ">", "threshold": 2000},
        "window_seconds": 300, "interval_seconds": 60,
    })
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import httpx

__all__ = ["AlertsClient", "AlertsError", "base_url_of", "create_rule"]


class AlertsError(RuntimeError):
    """The server refused or could not be reached; the message is the server's."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def base_url_of(endpoint: str) -> str:
    """The server's base URL from an OTLP endpoint (``.../v1/traces`` and ``/telemetry`` removed)."""
    url = endpoint.rstrip("/")
    for suffix in ("/v1/traces", "/telemetry"):
        url = url.removesuffix(suffix)
    return url


class AlertsClient:
    def __init__(self, base_url: str, api_key: str, *, timeout: float = 30.0) -> None:
        self._http = httpx.Client(
            base_url=base_url_of(base_url), headers={"x-api-key": api_key}, timeout=timeout, trust_env=False
        )

    def __enter__(self) -> AlertsClient:
        return self

    def __exit__(self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            r = self._http.request(method, "/api/alerts" + path, **kwargs)
        except httpx.HTTPError as exc:
            raise AlertsError(f"cannot reach the Netra server at {self._http.base_url}: {exc}") from exc
        if r.status_code >= 400:
            try:
                message = r.json()["error"]["message"]
            except Exception:
                message = r.text[:500]
            raise AlertsError(f"{r.status_code}: {message}", r.status_code)
        return r.json()["data"]

    def list_rules(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/rules"))

    def get_rule(self, rule_id: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/rules/{rule_id}"))

    def create_rule(self, rule: dict[str, Any]) -> dict[str, Any]:
        return dict(self._call("POST", "/rules", json=rule))

    def update_rule(self, rule_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Change the given fields (PATCH)."""
        return dict(self._call("PATCH", f"/rules/{rule_id}", json=changes))

    def replace_rule(self, rule_id: str, rule: dict[str, Any]) -> dict[str, Any]:
        return dict(self._call("PUT", f"/rules/{rule_id}", json=rule))

    def delete_rule(self, rule_id: str) -> None:
        self._call("DELETE", f"/rules/{rule_id}")

    def history(self, rule_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"limit": limit}
        if rule_id:
            params["ruleId"] = rule_id
        return list(self._call("GET", "/history", params=params))

    def evaluate(self) -> list[dict[str, Any]]:
        return list(self._call("POST", "/evaluate"))


def create_rule(base_url: str, api_key: str, rule: dict[str, Any]) -> dict[str, Any]:
    """Create one rule; returns it as stored (with its ``id``). Raises :class:`AlertsError`."""
    with AlertsClient(base_url, api_key) as client:
        return client.create_rule(rule)
