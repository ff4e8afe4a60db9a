"""Schema migrations that change ``netra_spans``: ``core-0002`` (monthly to daily partitions) keeps
every row, the duplicates' collapse and the retention TTL, and resumes a rebuild stopped midway."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from netra_server import schema
from netra_server.schema import SPAN_COLUMNS
from netra_server.store import ChdbBackend, Store, TraceQuery, Window

from .test_rollups import D0, DAY, in_window, make_spans, ref_totals, rows


def test_core_0002_moves_monthly_partitions_to_days_keeping_rows_and_ttl(tmp_path: Path) -> None:
    core2 = next(m for m in schema.MIGRATIONS if m.id == "core-0002")
    s = Store(ChdbBackend(str(tmp_path / "old")), threads=1)
    try:
        schema.MIGRATIONS.remove(core2)
        try:
            s.migrate(retention_days=3650)  # a store made before core-0002
        finally:
            schema.MIGRATIONS.insert(1, core2)
        assert not s.rollups_supported()
        spans = make_spans(5, 40, 3)
        s.insert_spans(rows("p", spans))
        s.insert_spans(rows("p", spans[:10]))  # duplicates
        w = Window(D0 * DAY, (D0 + 3) * DAY)
        before = (s.usage_totals("p", w), s.usage_summary("p", "tenant", w), s.list_traces("p", TraceQuery(window=w)))
        assert before[0] == ref_totals(in_window({(x.trace, x.span): x for x in spans}, w))
        assert s.migrate(retention_days=3650) == ["core-0002"]
        table = s.query("SELECT partition_key FROM system.tables WHERE database = currentDatabase() AND name = 'netra_spans'")
        assert table[0]["partition_key"] == "toDate32(start_time)"
        assert "TTL toDateTime(start_time) + toIntervalDay(3650)" in s.query("SHOW CREATE TABLE netra_spans")[0]["statement"]
        assert s.query("EXISTS TABLE netra_spans_monthly")[0]["result"] == 0
        assert s.count_spans("p") == len(spans)
        assert s.rollups_supported()
        s.refresh_rollups(settle_seconds=0)
        assert (s.usage_totals("p", w), s.usage_summary("p", "tenant", w), s.list_traces("p", TraceQuery(window=w))) == before

        # a rebuild stopped after the swap (the old table still there, with rows the copy missed)
        extra = replace(spans[0], trace=999, span=999)
        s.command(schema.SPANS_DDL.replace("netra_spans (", "netra_spans_monthly ("))
        s.backend.insert_rows("netra_spans_monthly", SPAN_COLUMNS, rows("p", [spans[1], extra]), "JSONCompactEachRow")
        schema.partition_spans_by_day(s)
        assert s.query("EXISTS TABLE netra_spans_monthly")[0]["result"] == 0
        assert s.count_spans("p") == len(spans) + 1
    finally:
        s.close()


def _span_part_types(s: Store) -> list[str]:
    return [r["part_type"] for r in s.query(
        "SELECT part_type FROM system.parts WHERE database = currentDatabase() AND table = 'netra_spans' AND active"
    )]


def _insert_wide_rows(s: Store, n: int = 6000) -> None:
    """One INSERT of ``n`` spans of about 2.5 KB each: over ClickHouse's 10 MiB default for a Wide part."""
    s.command(
        "INSERT INTO netra_spans (project_id, tenant_id, start_time, trace_id, span_id, attributes) "
        "SELECT 'p', 't', now64(9), hex(number), hex(number + 1), repeat('x', 2500) FROM numbers({n:UInt64})",
        {"n": n},
    )


def _store_without(path: Path, migration_id: str) -> Store:
    """A store migrated with every migration but ``migration_id`` (one made before it was written)."""
    migration = next(m for m in schema.MIGRATIONS if m.id == migration_id)
    s = Store(ChdbBackend(str(path)), threads=1)
    index = schema.MIGRATIONS.index(migration)
    schema.MIGRATIONS.remove(migration)
    try:
        s.migrate()
    except BaseException:
        s.close()
        raise
    finally:
        schema.MIGRATIONS.insert(index, migration)
    return s


def test_core_0006_writes_span_parts_compact_in_new_and_existing_stores(tmp_path: Path) -> None:
    """A journal flush writes a ~16 MiB part: ``netra_spans`` keeps such parts Compact (one data file,
    not two per column), in a new store and in one migrated before ``core-0006``."""
    fresh = Store(ChdbBackend(str(tmp_path / "new")), threads=1)
    try:
        fresh.migrate()
        _insert_wide_rows(fresh)
        assert _span_part_types(fresh) == ["Compact"]
    finally:
        fresh.close()
    s = _store_without(tmp_path / "old", "core-0006")  # ClickHouse's default
    try:
        s.command("SYSTEM STOP MERGES netra_spans")  # the two parts stay as they were written
        _insert_wide_rows(s)
        assert _span_part_types(s) == ["Wide"]
        assert s.migrate() == ["core-0006"]
        assert f"min_bytes_for_wide_part = {schema.SPANS_WIDE_PART_BYTES}" in s.query("SHOW CREATE TABLE netra_spans")[0]["statement"]
        _insert_wide_rows(s)
        assert sorted(_span_part_types(s)) == ["Compact", "Wide"]
    finally:
        s.close()


def test_core_0007_merges_the_ingest_tables_less_often_in_new_and_existing_stores(tmp_path: Path) -> None:
    """The tables each journal flush writes to get ``merge_selector_base`` 10, in a new store and in
    one migrated before ``core-0007`` (where ClickHouse's 5 applied)."""

    def bases(s: Store) -> dict[str, bool]:
        return {t: f"merge_selector_base = {schema.MERGE_SELECTOR_BASE}" in s.query(f"SHOW CREATE TABLE {t}")[0]["statement"]
                for t in schema.FLUSHED_TABLES}

    fresh = Store(ChdbBackend(str(tmp_path / "new")), threads=1)
    try:
        fresh.migrate()
        assert bases(fresh) == dict.fromkeys(schema.FLUSHED_TABLES, True)
    finally:
        fresh.close()
    s = _store_without(tmp_path / "old", "core-0007")
    try:
        assert bases(s) == dict.fromkeys(schema.FLUSHED_TABLES, False)
        assert s.migrate() == ["core-0007"]
        assert bases(s) == dict.fromkeys(schema.FLUSHED_TABLES, True)
    finally:
        s.close()


def test_core_0007_leaves_a_table_that_is_not_a_merge_tree_alone(tmp_path: Path) -> None:
    """A cluster's ``netra_spans`` is a ``Distributed`` table, which has no merges (nor the setting):
    ``core-0007`` changes the tables that merge and leaves that one as it is, without an error."""
    s = _store_without(tmp_path / "s", "core-0007")
    try:
        s.command("DROP TABLE netra_usage_live")
        s.command("CREATE TABLE netra_usage_live (project_id String) ENGINE = Memory")  # no MergeTree settings
        assert s.migrate() == ["core-0007"]
        statements = {t: s.query(f"SHOW CREATE TABLE {t}")[0]["statement"] for t in schema.FLUSHED_TABLES}
        assert "merge_selector_base" not in statements["netra_usage_live"]
        assert all(f"merge_selector_base = {schema.MERGE_SELECTOR_BASE}" in statements[t]
                   for t in ("netra_spans", "netra_span_index"))
    finally:
        s.close()
