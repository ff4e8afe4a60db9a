"""The embedded backend: chDB (ClickHouse in this process) on a data folder.

One connection per thread; one process per data folder (a second process fails to open it, with a
message that says so). :data:`CHDB_SERVER_SETTINGS` bounds chDB's caches and memory.
"""

from __future__ import annotations

from typing import Any

from netra_server.store.backend import SESSION_SETTINGS, PerThread, StoreError, parse_rows, statement_errors

__all__ = ["CHDB_SERVER_SETTINGS", "ChdbBackend"]


def _chdb_params(params: dict[str, Any] | None) -> dict[str, Any]:
    """chDB parses parameter values in ClickHouse's escaped text form (as the HTTP ``param_`` interface
    does): escape strings as clickhouse-connect does for the server, so both backends bind the same value."""
    if not params:
        return {}
    return {
        k: v.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n") if isinstance(v, str) else v
        for k, v in params.items()
    }


#: Server settings of the embedded chDB (ClickHouse in this process), passed when it starts. ClickHouse's
#: defaults size the caches for a dedicated server (5 GiB mark and primary-index caches, a memory limit
#: of 90% of RAM); ``netra serve`` shares the machine with its application, so they are bounded here.
#: ``max_server_memory_usage`` (``--store-memory-mb``) caps what chDB tracks (caches, inserts, merges,
#: queries): a query or INSERT past it fails (an INSERT of the journal is retried, nothing is lost).
CHDB_SERVER_SETTINGS: dict[str, int] = {
    "max_server_memory_usage": 1024 * 1024 * 1024,
    "mark_cache_size": 128 * 1024 * 1024,
    "primary_index_cache_size": 64 * 1024 * 1024,
    "index_mark_cache_size": 32 * 1024 * 1024,
    "compiled_expression_cache_size": 32 * 1024 * 1024,
    "query_condition_cache_size": 16 * 1024 * 1024,
}

_CHDB_INSERT_SETTINGS = "SETTINGS max_threads = 1, max_insert_threads = 1, input_format_parallel_parsing = 0"


class ChdbBackend:
    """Embedded ClickHouse (chDB) on a data folder. One connection per thread; one process per folder."""

    kind = "chdb"

    def __init__(self, path: str, *, memory_limit_bytes: int | None = None) -> None:
        import chdb  # noqa: F401  (fail early with a clear error if the extra is missing)

        self.path = path
        server = dict(CHDB_SERVER_SETTINGS)
        if memory_limit_bytes is not None:
            server["max_server_memory_usage"] = memory_limit_bytes  # 0: ClickHouse's default (90% of RAM)
        settings = "&".join(f"{k}={v}" for k, v in {**SESSION_SETTINGS, **server}.items())
        self._dsn = f"file:{path}?{settings}"
        self._conns: PerThread[Any] = PerThread(self._connect)
        self._conns.get()  # open now: a locked folder fails here, not on the first request

    def _connect(self) -> Any:
        import chdb

        try:
            return chdb.connect(self._dsn)
        except Exception as exc:  # chdb raises RuntimeError with ClickHouse's message
            msg = str(exc)
            if "lock" in msg.lower() or "EmbeddedServer" in msg:
                raise StoreError(
                    f"cannot open the data folder {self.path}: another process (a running `netra serve`?) "
                    f"has it open; stop it, or use another --data-dir ({msg.strip()})"
                ) from exc
            raise StoreError(f"cannot open chDB store at {self.path}: {msg}") from exc

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        with statement_errors():
            res = self._conns.get().query(sql, "JSONEachRow", params=_chdb_params(params))
        return parse_rows(res.bytes())

    def command(self, sql: str, params: dict[str, Any] | None = None) -> None:
        with statement_errors():
            self._conns.get().query(sql, "CSV", params=_chdb_params(params))

    def insert_json_rows(self, table: str, data: bytes) -> None:
        self.insert_rows(table, (), data, "JSONEachRow")

    def insert_rows(self, table: str, columns: tuple[str, ...], data: bytes, fmt: str, *, comment: str = "") -> None:
        cols = f" ({', '.join(columns)})" if columns else ""
        settings = _CHDB_INSERT_SETTINGS
        if table == "netra_spans":  # rows of distinct spans (SpanIndex drops repeats): no collapsing pass
            settings += ", optimize_on_insert = 0"
        if comment:
            if not comment.replace(":", "").replace("-", "").isalnum():
                raise ValueError(f"an INSERT comment is letters, digits, '-' and ':', not {comment!r}")
            settings += f", log_comment = '{comment}'"
        # A plain INSERT with the rows inline, not chDB's streaming ``send_insert``: that one reports
        # the rows as written and raises nothing when the part cannot be written (disk full, a folder
        # that cannot be written), so the caller would drop rows it believes stored. This statement
        # raises (NOT_ENOUGH_SPACE, filesystem errors). One thread: parallel parsing doubles the CPU.
        head = f"INSERT INTO {table}{cols} {settings} FORMAT {fmt}\n".encode()
        with statement_errors():
            self._conns.get().query(head + data)

    def close(self) -> None:
        self._conns.close()
