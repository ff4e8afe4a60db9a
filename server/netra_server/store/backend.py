"""What the store asks of a backend (:class:`Backend`) and what the two backends share.

Both backends (:mod:`netra_server.store.chdb`, embedded; :mod:`netra_server.store.clickhouse`, a
server) run the same SQL (ClickHouse dialect, server-side parameters ``{name:Type}``) with the same
session settings (:data:`SESSION_SETTINGS`), hand rows back as ``JSONEachRow`` (:func:`parse_rows`),
keep one connection per thread (:class:`PerThread`: chDB deadlocks when threads share one) and raise
:class:`StoreError` when a statement cannot run (:func:`statement_errors`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, Protocol, TypeVar

import orjson

__all__ = ["SESSION_SETTINGS", "Backend", "PerThread", "StoreError", "parse_rows", "statement_errors"]

#: Applied to every connection of both backends.
SESSION_SETTINGS: dict[str, int] = {
    "output_format_json_quote_decimals": 1,
    "output_format_json_quote_64bit_integers": 0,
    "do_not_merge_across_partitions_select_final": 1,
    # span rows carry the attribute maps, events and links as JSON objects/arrays: store their text
    "input_format_json_read_objects_as_strings": 1,
    "input_format_json_read_arrays_as_strings": 1,
    # spans are partitioned by day: one export may carry spans of many days (backfills, odd clocks)
    "max_partitions_per_insert_block": 0,
}


class StoreError(RuntimeError):
    """The store could not run a statement (unreachable, locked data folder, bad SQL)."""


class Backend(Protocol):
    kind: str

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]: ...

    def command(self, sql: str, params: dict[str, Any] | None = None) -> None: ...

    def insert_json_rows(self, table: str, data: bytes) -> None: ...

    def insert_rows(self, table: str, columns: tuple[str, ...], data: bytes, fmt: str, *, comment: str = "") -> None:
        """Insert ``data`` (rows in format ``fmt``); ``comment``: the INSERT's ``log_comment`` setting
        (what a materialized view on the table may read, ``netra_server.live_usage``)."""

    def close(self) -> None: ...


def parse_rows(raw: bytes | str) -> list[dict[str, Any]]:
    """``JSONEachRow`` output as dicts."""
    if isinstance(raw, str):
        raw = raw.encode()
    return [orjson.loads(line) for line in raw.splitlines() if line]


@contextmanager
def statement_errors() -> Iterator[None]:
    """Whatever a driver raises while a statement runs, as a :class:`StoreError` with its message."""
    try:
        yield
    except StoreError:
        raise
    except Exception as exc:
        raise StoreError(str(exc).strip()) from exc


C = TypeVar("C")


class PerThread(Generic[C]):
    """One connection per thread, opened on the thread's first use; :meth:`close` closes them all and
    refuses new ones."""

    def __init__(self, open_one: Callable[[], C]) -> None:
        self._open = open_one
        self._local = threading.local()
        self._all: list[C] = []
        self._lock = threading.Lock()
        self._closed = False

    def get(self) -> C:
        conn: C | None = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise StoreError("the store is closed")
            conn = self._open()
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def close(self) -> None:
        with self._lock:
            self._closed = True
            conns, self._all = self._all, []
        for conn in conns:
            try:
                conn.close()  # type: ignore[attr-defined]
            except Exception:  # pragma: no cover - closing is best effort
                pass
