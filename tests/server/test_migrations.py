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
