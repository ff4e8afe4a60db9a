"""The server backend: a ClickHouse server through clickhouse-connect (HTTP), one client per thread."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlparse

from netra_server.store.backend import SESSION_SETTINGS, PerThread, StoreError, parse_rows, statement_errors

__all__ = ["ClickHouseBackend"]


class ClickHouseBackend:
    """A ClickHouse server through clickhouse-connect (HTTP). One client per thread."""

    kind = "clickhouse"

    def __init__(self, url: str) -> None:
        import clickhouse_connect  # noqa: F401

        u = urlparse(url)
        self._kwargs: dict[str, Any] = {
            "host": u.hostname or "localhost",
            "port": u.port or (8443 if u.scheme == "clickhouses" else 8123),
            "username": unquote(u.username or "default"),
            "password": unquote(u.password or ""),
            "database": (u.path or "/").strip("/") or "default",
            "secure": u.scheme == "clickhouses",
            "settings": dict(SESSION_SETTINGS),
            "autogenerate_session_id": False,
        }
        self.url = url
        self._clients: PerThread[Any] = PerThread(self._connect)
        self._clients.get()

    def _connect(self) -> Any:
        import clickhouse_connect

        try:
            return clickhouse_connect.get_client(**self._kwargs)
        except Exception as exc:
            raise StoreError(f"cannot connect to ClickHouse at {self._kwargs['host']}:{self._kwargs['port']}: {exc}") from exc

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        with statement_errors():
            raw = self._clients.get().raw_query(sql, parameters=params or None, fmt="JSONEachRow")
        return parse_rows(raw)

    def command(self, sql: str, params: dict[str, Any] | None = None) -> None:
        with statement_errors():
            self._clients.get().command(sql, parameters=params or None)

    def insert_json_rows(self, table: str, data: bytes) -> None:
        self.insert_rows(table, (), data, "JSONEachRow")

    def insert_rows(self, table: str, columns: tuple[str, ...], data: bytes, fmt: str, *, comment: str = "") -> None:
        with statement_errors():
            self._clients.get().raw_insert(table, column_names=list(columns) or None, insert_block=data, fmt=fmt,
                                           settings={"log_comment": comment} if comment else None)

    def close(self) -> None:
        self._clients.close()
