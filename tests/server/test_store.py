"""The store on chDB: migrations, retention TTL, dedup, and the SQL that the ClickHouse backend shares.

There is no ClickHouse server in CI; the ClickHouse path runs the *same* SQL strings (one ``Store``
class over both backends), so this module runs every query method through a recording backend on chDB
and checks that each statement is a fixed string with server-side ``{name:Type}`` parameters (what
clickhouse-connect sends as ``param_<name>``), never values formatted into the SQL.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from netra_server import schema
from netra_server.config import Limits
from netra_server.otlp import build_rows
from netra_server.store import ChdbBackend, Store, StoreError, TraceQuery, Window, open_store
from netra_server.testing import free_port
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from ._helpers import T0

NASTY = "o'brien\\\"; DROP TABLE netra_spans; --\ttab\nline"


class Recording:
    kind = "chdb"

    def __init__(self, inner: ChdbBackend) -> None:
        self.inner = inner
        self.statements: list[tuple[str, dict[str, Any]]] = []

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        self.statements.append((sql, dict(params or {})))
        return self.inner.query(sql, params)

    def command(self, sql: str, params: dict[str, Any] | None = None) -> None:
        self.statements.append((sql, dict(params or {})))
        self.inner.command(sql, params)

    def insert_json_rows(self, table: str, data: bytes) -> None:
        self.inner.insert_json_rows(table, data)

    def insert_rows(self, table: str, columns: tuple[str, ...], data: bytes, fmt: str, *, comment: str = "") -> None:
        self.inner.insert_rows(table, columns, data, fmt, comment=comment)

    def close(self) -> None:
        self.inner.close()


@pytest.fixture(scope="module")
def rec(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, Recording]]:
    backend = Recording(ChdbBackend(str(tmp_path_factory.mktemp("store"))))
    store = Store(backend, threads=2)
    store.migrate()
    yield store, backend
    store.close()


def _rows(project: str, spans: list[tuple[int, int, str]]) -> bytes:
    req = ExportTraceServiceRequest()
    out = req.resource_spans.add().scope_spans.add().spans
    for trace, span, tenant in spans:
        s = out.add(trace_id=trace.to_bytes(16, "big"), span_id=span.to_bytes(8, "big"), name="n",
                    start_time_unix_nano=T0 + span, end_time_unix_nano=T0 + span + 5)
        for k, v in (("netra.tenant_id", tenant), ("netra.session_id", tenant + "-s")):
            kv = s.attributes.add(key=k)
            kv.value.string_value = v
        kv = s.attributes.add(key="gen_ai.usage.cost")
        kv.value.double_value = 0.1
    return build_rows(req, project, Limits(), T0 // 1_000_000).data


def test_every_query_method_uses_server_side_parameters(rec: tuple[Store, Recording]) -> None:
    store, backend = rec
    store.insert_spans(_rows("p1", [(1, 1, NASTY), (1, 2, NASTY), (2, 3, "plain")]))
    backend.statements.clear()
    w = Window(T0, T0 + 10**12)
    assert store.usage_totals("p1", w, tenant_id=NASTY).request_count == 2
    assert store.usage_totals("p1", w, session_id=NASTY + "-s").request_count == 2
    for g in ("tenant", "model", "user", "session", "day"):
        store.usage_summary("p1", g, w, tenant_id=NASTY)  # type: ignore[arg-type]
    assert [s.tenant_id for s in store.latency_stats("p1", w, tenant_id=NASTY, scope="all")] == [NASTY]
    for sort in ("start_time", "latency", "cost", "tokens"):
        page = store.list_traces("p1", TraceQuery(window=w, tenant_id=NASTY, sort_field=sort, limit=1))  # type: ignore[arg-type]
        assert len(page.items) == 1
        store.list_traces("p1", TraceQuery(window=w, sort_field=sort, after=(page.items[0].sort_value(sort), NASTY)))  # type: ignore[arg-type]
    spans, _ = store.trace_spans("p1", format(1, "032x"), tenant_id=NASTY, span_name=NASTY, after=(0, NASTY))
    assert spans == []
    assert store.get_key(NASTY) is None and store.get_project(NASTY) is None and store.get_meta(NASTY) is None
    assert backend.statements
    for sql, params in backend.statements:
        assert NASTY not in sql and "o'brien" not in sql, sql
        placeholders = set(re.findall(r"\{(\w+):[^}]+\}", sql))
        assert placeholders == set(params), (sql, params)


def test_duplicates_are_one_row_under_final_and_after_merge(rec: tuple[Store, Recording]) -> None:
    store, _ = rec
    data = _rows("p2", [(7, i, "t") for i in range(1, 51)])
    for _ in range(3):
        store.insert_spans(data)
    assert store.count_spans("p2") == 50
    assert store.usage_totals("p2", Window()).request_count == 50
    store.command("OPTIMIZE TABLE netra_spans FINAL")
    physical = store.query("SELECT count() AS n FROM netra_spans WHERE project_id = 'p2'")[0]["n"]
    assert physical == 50


def test_migrations_are_recorded_and_idempotent_and_extensible(rec: tuple[Store, Recording]) -> None:
    store, _ = rec
    assert store.migrate() == []
    schema.register_migration("test-0001", ["CREATE TABLE IF NOT EXISTS netra_test_ext (a UInt8) ENGINE = MergeTree ORDER BY a"])
    try:
        assert store.migrate() == ["test-0001"]
        assert store.migrate() == []
        assert store.query("EXISTS TABLE netra_test_ext")[0]["result"] == 1
    finally:
        schema.MIGRATIONS[:] = [m for m in schema.MIGRATIONS if m.id != "test-0001"]


def test_retention_sets_and_removes_the_ttl(rec: tuple[Store, Recording]) -> None:
    store, _ = rec
    store.migrate(retention_days=30)
    ddl = store.query("SHOW CREATE TABLE netra_spans")[0]["statement"]
    assert "TTL toDateTime(start_time) + toIntervalDay(30)" in ddl
    store.migrate(retention_days=None)
    assert "TTL" not in store.query("SHOW CREATE TABLE netra_spans")[0]["statement"]


def test_clickhouse_store_unreachable_is_a_clear_error() -> None:
    port = free_port()
    with pytest.raises(StoreError, match=f"ClickHouse at 127.0.0.1:{port}"):
        open_store(f"clickhouse://netra:secret@127.0.0.1:{port}/netra")
    with pytest.raises(StoreError, match="unknown store URL"):
        open_store("postgres://x")


def test_a_second_process_cannot_open_the_folder(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = ("from netra_server.store import open_store, StoreError\n"
            "import sys\n"
            "try:\n    open_store('chdb://' + sys.argv[1])\nexcept StoreError as e:\n    print(e); sys.exit(3)\n")
    folder = tmp_path / "held"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom netra_server.store import open_store\n"
                               "s = open_store('chdb://' + sys.argv[1]); print('ok', flush=True); time.sleep(60)", str(folder)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ok"
        r = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 3 and "another process" in r.stdout
    finally:
        holder.kill()
        holder.wait()
