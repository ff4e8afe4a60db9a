"""Span identity and the billing rule, enforced by the store for any producer (issue 12, items 4 and 6).

Identity: a span is (project, trace id, span id); a re-delivery with other content (another tenant, a
start time 1 ns later, another cost) is the same span: the first version stored wins and the API says
how many versions were delivered. Billing rule: a span's usage does not count when a descendant in the
same trace recorded usage, whether or not the producer set ``netra.usage.covered``, in whatever order,
request or day the spans arrive, also after the parent's day was rolled up, and after a crash between
the span insert and the index insert.

Store-level tests put spans through the real ingest mapping (``otlp.build_rows``) into a real chDB
store; the HTTP tests send them with the real OpenTelemetry SDK and OTLP exporter to a real server.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from netra_server import rollups
from netra_server.config import Limits
from netra_server.journal import Journal
from netra_server.otlp import build_rows
from netra_server.store import ChdbBackend, Store, StoreError, TraceQuery, Window
from netra_server.testing import RunningServer, run_server
from netra_server.trace_filter import TraceFilter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import set_span_in_context

from netra import semconv

from ._helpers import SEC, T0, Collect, record, send

DAY = rollups.DAY_NS
HOUR = 3600 * SEC
D0 = T0 // DAY


def _req(spans: list[dict[str, Any]]) -> ExportTraceServiceRequest:
    """spans: dicts with trace, span, parent (0: root), start, tenant, cost (None: no usage), covered."""
    req = ExportTraceServiceRequest()
    out = req.resource_spans.add().scope_spans.add().spans
    for s in spans:
        p = out.add(trace_id=s["trace"].to_bytes(16, "big"), span_id=s["span"].to_bytes(8, "big"),
                    name=s.get("name", f"span-{s['span']}"), start_time_unix_nano=s["start"],
                    end_time_unix_nano=s["start"] + 5)
        if s.get("parent"):
            p.parent_span_id = s["parent"].to_bytes(8, "big")
        attrs: dict[str, Any] = {semconv.TENANT_ID: s.get("tenant", "acme"), semconv.SESSION_ID: s.get("session", "s1")}
        if s.get("cost") is not None:
            attrs[semconv.COST] = str(s["cost"])
            attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] = s.get("inp", 10)
            attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] = 2
        if s.get("covered"):
            attrs[semconv.USAGE_COVERED] = True
        for k, v in attrs.items():
            a = p.attributes.add(key=k)
            if isinstance(v, bool):
                a.value.bool_value = v
            elif isinstance(v, int):
                a.value.int_value = v
            else:
                a.value.string_value = v
    return req


def _rows(project: str, spans: list[dict[str, Any]], now_ms: int = T0 // 1_000_000) -> bytes:
    return build_rows(_req(spans), project, Limits(), now_ms).data


def _span(trace: int, span: int, parent: int = 0, *, start: int = T0, cost: Any = None, **kw: Any) -> dict[str, Any]:
    return {"trace": trace, "span": span, "parent": parent, "start": start, "cost": cost, **kw}


@pytest.fixture(params=["lookups", "trace-filter", "live-usage"])
def store(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Store]:
    """A chDB store; every store-level test runs three times: each lookup asking the store; with the
    trace filter loaded (``netra serve`` on the embedded store), where fresh traces skip the lookup; and
    with the filter and the live usage table kept from a month before T0 (usage reads take it)."""
    s = Store(ChdbBackend(str(tmp_path / "store")))
    s.migrate()
    if request.param != "lookups":
        s.span_index.load_traces(s)
    if request.param == "live-usage":
        s.start_live_usage(since_ns=T0 - 30 * DAY)
    yield s
    s.close()


def _counted(store: Store, project: str, trace: int) -> dict[int, bool]:
    spans, _ = store.trace_spans(project, format(trace, "032x"))
    return {int(s.span_id, 16): s.counted for s in spans}


# --------------------------------------------------------------------------------------------------
# Identity


@pytest.mark.parametrize("change", [
    {"tenant": "other-tenant"},
    {"start": T0 + 1},
    {"cost": "2.5"},
    {"start": T0 + DAY},  # another day partition
])
def test_a_redelivery_with_other_content_is_one_span_the_first_version_wins(store: Store, change: dict[str, Any]) -> None:
    first = _span(1, 1, cost="0.5", tenant="acme")
    store.insert_spans(_rows("p", [first]))
    store.insert_spans(_rows("p", [{**first, **change}], now_ms=T0 // 1_000_000 + 60_000))
    assert store.count_spans("p") == 1
    totals = store.usage_totals("p", Window())
    assert (totals.request_count, totals.total_cost, totals.span_count) == (1, Decimal("0.5"), 1)
    assert store.usage_totals("p", Window(), tenant_id="acme").total_cost == Decimal("0.5")
    assert store.usage_totals("p", Window(), tenant_id="other-tenant").request_count == 0
    (span,), _ = store.trace_spans("p", format(1, "032x"))
    assert (span.tenant_id, span.start_ns, span.cost, span.versions) == ("acme", T0, Decimal("0.5"), 2)
    # the same conflicting version again, and the first again: still two versions, one span
    store.insert_spans(_rows("p", [{**first, **change}], now_ms=T0 // 1_000_000 + 120_000))
    store.insert_spans(_rows("p", [first], now_ms=T0 // 1_000_000 + 180_000))
    (span,), _ = store.trace_spans("p", format(1, "032x"))
    assert (span.cost, span.versions) == (Decimal("0.5"), 2)
    assert store.query("SELECT count() AS n FROM netra_spans WHERE project_id = 'p'")[0]["n"] == 1  # nothing written again


def test_versions_within_one_insert_and_across_projects(store: Store) -> None:
    a = _span(1, 1, cost="1")
    store.insert_spans(_rows("p", [a, {**a, "tenant": "x"}, {**a, "cost": "3"}, a]))
    store.insert_spans(_rows("q", [{**a, "cost": "7"}]))  # another project: another span
    (span,), _ = store.trace_spans("p", format(1, "032x"))
    assert (span.cost, span.tenant_id, span.versions) == (Decimal("1"), "acme", 3)
    (other,), _ = store.trace_spans("q", format(1, "032x"))
    assert (other.cost, other.versions) == (Decimal("7"), 1)


def test_an_identical_redelivery_keeps_the_covered_flag_the_server_set(store: Store) -> None:
    parent = _span(1, 1, cost="1")
    store.insert_spans(_rows("p", [parent]))
    store.insert_spans(_rows("p", [_span(1, 2, 1, start=T0 + 1, cost="0.25")]))
    assert _counted(store, "p", 1) == {1: False, 2: True}
    store.insert_spans(_rows("p", [parent], now_ms=T0 // 1_000_000 + 99_000))  # the exporter's retry, uncovered
    assert _counted(store, "p", 1) == {1: False, 2: True}
    assert store.usage_totals("p", Window()).total_cost == Decimal("0.25")



def test_the_keys_read_back_from_rows_equal_the_keys_ingest_recorded() -> None:
    """A replayed journal has only the rows: the identity and fingerprint read from them must be the
    ones ``build_rows`` recorded (else a replay would look like another version of every span)."""
    from netra_server.billing import key_of_row

    nasty = 'o\'brien\\"; --\t,\n"]' + "\u00e9\u4e2d\U0001f600"
    batch = build_rows(_req([_span(1, 1, cost="1", tenant=nasty, name=nasty), _span(1, 2, 1, start=T0 + 7, covered=True),
                             _span(2, 3, cost="0.1", session=nasty)]), nasty, Limits(), T0 // 1_000_000 + 1)
    lines = batch.data.split(b"\n")[:-1]
    assert [key_of_row(line) for line in lines] == batch.keys
    assert batch.keys[0][4] == nasty and batch.keys[1][7] == 1 and batch.keys[1][3] == format(1, "016x")
    # the ingest time is not part of the fingerprint; the content is
    later = build_rows(_req([_span(1, 1, cost="1", tenant=nasty, name=nasty)]), nasty, Limits(), T0 // 1_000_000 + 99_999)
    other = build_rows(_req([_span(1, 1, cost="1.5", tenant=nasty, name=nasty)]), nasty, Limits(), T0 // 1_000_000 + 1)
    assert later.keys[0][8] == batch.keys[0][8] != other.keys[0][8]

# --------------------------------------------------------------------------------------------------
# The billing rule without the producer's covered flag


def test_parent_and_child_in_one_insert_without_the_flag(store: Store) -> None:
    store.insert_spans(_rows("p", [_span(1, 1, cost="1"), _span(1, 2, 1, start=T0 + 1, cost="0.25")]))
    assert _counted(store, "p", 1) == {1: False, 2: True}
    store.insert_spans(_rows("p", [_span(2, 2, 1, start=T0 + 1, cost="0.25"), _span(2, 1, cost="1")]))  # child first
    assert _counted(store, "p", 2) == {1: False, 2: True}
    assert store.usage_totals("p", Window()).total_cost == Decimal("0.5")


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))))
def test_every_arrival_order_of_a_chain_in_separate_inserts(store: Store, order: tuple[int, ...]) -> None:
    """root -> agent (usage) -> llm (usage) and root -> tool (no usage): only the llm call counts; the
    tool (no usage) is not covered, the root and the agent are."""
    spans = [
        _span(5, 1, 0, start=T0, cost="4"),
        _span(5, 2, 1, start=T0 + 10, cost="2"),
        _span(5, 3, 2, start=T0 + 20, cost="1"),
        _span(5, 4, 1, start=T0 + 30),
    ]
    for i in order:
        store.insert_spans(_rows("p", [spans[i]]))
    assert _counted(store, "p", 5) == {1: False, 2: False, 3: True, 4: False}
    covered = {int(s.span_id, 16): s.covered for s in store.trace_spans("p", format(5, "032x"))[0]}
    assert covered == {1: True, 2: True, 3: False, 4: False}
    totals = store.usage_totals("p", Window())
    assert (totals.request_count, totals.total_cost, totals.span_count) == (1, Decimal("1"), 4)


def test_a_grandparent_is_covered_through_a_usage_less_parent_arriving_last(store: Store) -> None:
    store.insert_spans(_rows("p", [_span(6, 3, 2, start=T0 + 2, cost="0.5")]))  # the llm call
    store.insert_spans(_rows("p", [_span(6, 1, 0, start=T0, cost="3")]))  # the root, with explicit usage
    assert _counted(store, "p", 6) == {1: True, 3: True}  # the chain is not known yet
    store.insert_spans(_rows("p", [_span(6, 2, 1, start=T0 + 1)]))  # the parent between them: no usage
    assert _counted(store, "p", 6) == {1: False, 2: False, 3: True}
    assert store.usage_totals("p", Window()).total_cost == Decimal("0.5")


def test_a_child_a_day_later_uncovers_nothing_and_covers_a_rolled_up_parent(store: Store) -> None:
    day = D0 + 3
    parent = _span(7, 1, 0, start=day * DAY + 23 * HOUR, cost="2", tenant="acme")
    store.insert_spans(_rows("p", [parent]))
    assert store.refresh_rollups(settle_seconds=0) == [rollups.day_str(day)]
    w = Window(day * DAY, (day + 2) * DAY - 1)
    assert set(store._plan(w).days) == {day}  # the parent's day is read from its rollup
    assert store.usage_totals("p", w, tenant_id="acme").total_cost == Decimal("2")

    child = _span(7, 2, 1, start=(day + 1) * DAY + HOUR, cost="0.75", tenant="acme")
    store.insert_spans(_rows("p", [child]))  # the next day, another partition, another request
    assert day not in store._plan(w).days  # the parent's row was written again: its day is read raw
    _check_one_call(store, w, Decimal("0.75"))
    store.refresh_rollups(settle_seconds=0)
    assert set(store._plan(w).days) == {day, day + 1}  # both days from their rollups again
    _check_one_call(store, w, Decimal("0.75"))


def _check_one_call(store: Store, w: Window, cost: Decimal) -> None:
    """Tenant and session usage, the trace list and the per-span view agree: one counted call."""
    for totals in (store.usage_totals("p", w, tenant_id="acme"), store.usage_totals("p", w, session_id="s1")):
        assert (totals.request_count, totals.total_cost) == (1, cost)
    (trace,) = store.list_traces("p", TraceQuery(window=w)).items
    assert (trace.total_cost, trace.span_count) == (cost, 2)
    groups = store.usage_summary("p", "day", w)
    assert sum((g.totals.total_cost for g in groups), Decimal(0)) == cost


def test_the_producer_flag_is_still_honoured(store: Store) -> None:
    # our SDK marks the parent covered before the child is exported: counted once, nothing rewritten
    store.insert_spans(_rows("p", [_span(8, 1, cost="1", covered=True)]))
    assert _counted(store, "p", 8) == {1: False}
    store.insert_spans(_rows("p", [_span(8, 2, 1, start=T0 + 1, cost="0.25")]))
    assert _counted(store, "p", 8) == {1: False, 2: True}
    assert store.span_index.rewritten == 0


def test_hostile_parent_links_do_not_cover_the_span_itself(store: Store) -> None:
    store.insert_spans(_rows("p", [_span(9, 1, 1, cost="1")]))  # its own parent
    assert _counted(store, "p", 9) == {1: True}
    store.insert_spans(_rows("p", [_span(9, 2, 3, cost="1", start=T0 + 1), _span(9, 3, 2, cost="1", start=T0 + 2)]))
    spans, _ = store.trace_spans("p", format(9, "032x"))  # a cycle: both covered, nothing loops forever
    assert len(spans) == 3


# --------------------------------------------------------------------------------------------------
# Crash between the span insert and the index insert


class _FailingIndex(ChdbBackend):
    """The real backend, except that the next insert into the span index raises (the process dies there)."""

    fail = False

    def insert_rows(self, table: str, columns: tuple[str, ...], data: bytes, fmt: str, *, comment: str = "") -> None:
        if table == "netra_span_index" and self.fail:
            self.fail = False
            raise StoreError("killed before the index insert")
        super().insert_rows(table, columns, data, fmt, comment=comment)


def test_a_replayed_journal_after_a_crash_before_the_index_insert_counts_once(tmp_path: Path) -> None:
    backend = _FailingIndex(str(tmp_path / "store"))
    store = Store(backend)
    store.migrate()
    try:
        store.insert_spans(_rows("p", [_span(1, 1, cost="1")]))  # the parent, stored before
        journal = Journal(tmp_path / "journal", store.insert_spans)
        data = _rows("p", [_span(1, 2, 1, start=T0 + 1, cost="0.25"), _span(1, 3, 0, start=T0 + 2, cost="5")])
        journal.append(data, 2, build_rows(_req([_span(1, 2, 1, start=T0 + 1, cost="0.25"),
                                                 _span(1, 3, 0, start=T0 + 2, cost="5")]), "p", Limits(),
                                           T0 // 1_000_000).keys)
        backend.fail = True
        with pytest.raises(StoreError):
            journal.flush()  # spans and the parent's rewrite written, the index not: the "crash"
        assert backend.query("SELECT count() AS n FROM netra_span_index")[0]["n"] == 1  # the parent's only
        # the next start replays the segment (a new Journal on the same folder)
        assert Journal(tmp_path / "journal", store.insert_spans).recover() == 2
        assert store.count_spans("p") == 3
        assert _counted(store, "p", 1) == {1: False, 2: True, 3: True}
        totals = store.usage_totals("p", Window())
        assert (totals.request_count, totals.total_cost) == (2, Decimal("5.25"))
        # and a later re-delivery of the parent with another cost is still one span
        store.insert_spans(_rows("p", [_span(1, 1, cost="9")]))
        assert store.usage_totals("p", Window()).total_cost == Decimal("5.25")
    finally:
        store.close()


def test_spans_stored_before_the_index_are_indexed_at_the_upgrade(store: Store) -> None:
    """``core-0003`` indexes the spans already stored: a re-delivery of one with other content is still
    one span, and a child arriving later covers its stored parent."""
    from netra_server import schema

    store._insert_span_rows(_rows("p", [_span(1, 1, cost="1"), _span(2, 1, cost="2")]))  # as before the upgrade
    store.command(schema.SPAN_INDEX_BACKFILL)
    if store.span_index.traces is not None:  # the server loads its trace filter after the migrations
        store.span_index.load_traces(store)
    if store.span_index.live is not None:  # and starts the live usage table after them too
        store.start_live_usage()
    store.insert_spans(_rows("p", [_span(1, 1, cost="7", tenant="other")]))
    store.insert_spans(_rows("p", [_span(2, 2, 1, start=T0 + 1, cost="0.5")]))
    assert store.count_spans("p") == 3
    assert _counted(store, "p", 1) == {1: True}
    assert _counted(store, "p", 2) == {1: False, 2: True}
    assert store.usage_totals("p", Window()).total_cost == Decimal("1.5")
    # a span indexed at the upgrade has no fingerprint: its first re-delivery is taken for the stored
    # version (not stored, not counted); a later different delivery shows as a second version
    (span,), _ = store.trace_spans("p", format(1, "032x"))
    assert (span.tenant_id, span.cost, span.versions) == ("acme", Decimal("1"), 1)
    store.insert_spans(_rows("p", [_span(1, 1, cost="1")]))
    (span,), _ = store.trace_spans("p", format(1, "032x"))
    assert (span.tenant_id, span.cost, span.versions) == ("acme", Decimal("1"), 2)


# --------------------------------------------------------------------------------------------------
# The trace filter: fresh traces skip the index lookup, and nothing indexed is ever taken for fresh


def test_the_trace_filter_holds_every_trace_added_past_its_capacity() -> None:
    flt = TraceFilter(capacity=64, error_rate=1e-4)
    assert flt.may_hold("p", "never-added")  # not loaded yet: everything may be indexed
    flt.ready = True
    added = [f"{i:032x}" for i in range(20_000)]  # ten filters of the chain
    for start in range(0, len(added), 999):
        flt.add("p", added[start : start + 999])
    assert all(flt.may_hold("p", t) for t in added)
    assert flt.added == len(added)
    fresh = [f"{i:032x}" for i in range(10**9, 10**9 + 20_000)]
    false_positives = sum(flt.may_hold("p", t) for t in fresh) + sum(flt.may_hold("q", t) for t in added)
    assert false_positives < 40  # under 2e-4 of 40,000 is expected: about 8
    assert flt.bytes < 200_000  # about 2.4 bytes per trace at 1e-4, not the traces themselves


def _traces(project: str, first: int, n: int, *, cost: str = "1") -> bytes:
    return _rows(project, [_span(t, 1, cost=cost) for t in range(first, first + n)])


def test_the_filter_loads_what_a_previous_process_indexed(tmp_path: Path) -> None:
    """Spans indexed by an earlier process (several projects, several pages of the load) are found
    again: a re-delivery with other content is one span; fresh traces skip the lookup."""
    before = Store(ChdbBackend(str(tmp_path / "store")))
    before.migrate()
    before.insert_spans(_traces("p", 1, 250))
    before.insert_spans(_traces("q", 1, 40))
    before.close()
    store = Store(ChdbBackend(str(tmp_path / "store")))
    try:
        store.migrate()
        flt = store.span_index.load_traces(store, page=32)
        assert flt.ready and flt.added == 290
        index = store.span_index
        lookups = index.lookups
        store.insert_spans(_traces("p", 1, 250, cost="9"))  # every one a re-delivery, other content
        store.insert_spans(_traces("q", 1, 40, cost="9"))
        assert index.lookups == lookups + 2
        assert store.count_spans("p") == 250 and store.count_spans("q") == 40
        assert store.usage_totals("p", Window()).total_cost == Decimal(250)
        (span,), _ = store.trace_spans("p", format(250, "032x"))
        assert span.versions == 2
        skipped, lookups = index.lookups_skipped, index.lookups
        store.insert_spans(_traces("p", 1000, 100))  # fresh traces: no lookup at all
        assert (index.lookups_skipped, index.lookups) == (skipped + 1, lookups)
        store.insert_spans(_traces("p", 1000, 100, cost="5"))  # and they are in the filter now
        assert store.count_spans("p") == 350
        assert store.usage_totals("p", Window()).total_cost == Decimal(350)
    finally:
        store.close()


def test_inserts_while_the_filter_loads_are_exact(tmp_path: Path) -> None:
    """The filter loads a page at a time while inserts run (as at a server's start): re-deliveries of
    traces indexed before, during and after the load are each one span."""
    store = Store(ChdbBackend(str(tmp_path / "store")))
    try:
        store.migrate()
        for first in range(1, 3001, 500):  # traces 1 to 3000 (a trace id of 0 is not valid)
            store.insert_spans(_traces("p", first, 500))
        loader = threading.Thread(target=store.span_index.load_traces, args=(store,), kwargs={"page": 50})
        loader.start()
        nxt = 3001
        while loader.is_alive() or nxt < 3401:  # new traces, and re-deliveries of old and new ones
            store.insert_spans(_traces("p", nxt, 20) + _traces("p", nxt - 2990, 20, cost="3"))
            nxt += 20
        loader.join()
        assert store.span_index.traces is not None and store.span_index.traces.ready
        store.insert_spans(_traces("p", 1, nxt - 1, cost="7"))  # everything once more, the filter loaded
        assert store.count_spans("p") == nxt - 1
        assert store.usage_totals("p", Window()).total_cost == Decimal(nxt - 1)
        assert store.span_index.lookups_skipped == 0  # every insert held an indexed trace
    finally:
        store.close()


def test_a_filter_that_fails_to_load_leaves_every_lookup_to_the_store(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    backend = _FailingIndex(str(tmp_path / "store"))
    store = Store(backend)
    try:
        store.migrate()
        store.insert_spans(_traces("p", 1, 10))

        def refuse(sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
            raise StoreError("the store refused the read")

        with caplog.at_level("WARNING", logger="netra_server"):
            store.span_index.start_trace_filter(type("Refusing", (), {"query": staticmethod(refuse)})()).join()
        assert store.span_index.traces is None
        assert "trace filter not loaded" in caplog.text
        store.insert_spans(_traces("p", 1, 10, cost="4"))
        assert store.count_spans("p") == 10 and store.usage_totals("p", Window()).total_cost == Decimal(10)
    finally:
        store.close()


def test_only_the_embedded_store_loads_a_filter(tmp_path: Path) -> None:
    store = Store(ChdbBackend(str(tmp_path / "store")))
    try:
        store.migrate()
        thread = store.start_trace_filter()
        assert thread is not None
        thread.join()
        assert store.span_index.traces is not None and store.span_index.traces.ready
    finally:
        store.close()


# --------------------------------------------------------------------------------------------------
# Over HTTP: the published netra-sdk's span shape, sent by the real OTLP exporter


@pytest.fixture(scope="module", params=[True, False], ids=["journal", "no-journal"])
def netra_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with run_server(tmp_path_factory.mktemp("netra-billing"), journal=request.param) as srv:
        yield srv


def _netra_sdk_trace(tenant: str, start: int) -> tuple[list[ReadableSpan], str]:
    """What the published netra-sdk writes around an auto-instrumented OpenAI call, as in the cookbook:
    a span with ``set_usage`` (``netra.usage`` JSON) whose child is the OpenAI span (legacy GenAI token
    attributes, no cost: priced at ingest); no covered flag anywhere."""
    provider, collect = record()
    tracer = provider.get_tracer("netra-sdk")
    parent = tracer.start_span("meeting-summarization", start_time=start, attributes={
        "netra.span.type": "SPAN", semconv.TENANT_ID: tenant, semconv.SESSION_ID: f"{tenant}-session",
        semconv.USAGE: json.dumps([{"model": "gpt-4o-mini", "usage_type": "chat", "units_used": 1700,
                                    "cost_in_usd": 0.004}]),
    })
    child = tracer.start_span("openai.chat", context=set_span_in_context(parent), start_time=start + SEC, attributes={
        "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o-mini", "gen_ai.response.model": "gpt-4o-mini",
        "gen_ai.usage.prompt_tokens": 1500, "gen_ai.usage.completion_tokens": 200,
        semconv.TENANT_ID: tenant, semconv.SESSION_ID: f"{tenant}-session", "netra.span.type": "GENERATION",
    })
    child.end(end_time=start + 2 * SEC)
    parent.end(end_time=start + 3 * SEC)
    provider.shutdown()
    spans = list(collect.spans)
    assert [s.name for s in spans] == ["openai.chat", "meeting-summarization"]
    return spans, format(parent.get_span_context().trace_id, "032x")


def _api(srv: RunningServer, path: str, **kw: Any) -> dict[str, Any]:
    with srv.client() as c:
        r = c.get(path, **kw) if "json" not in kw else c.post(path, **kw)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()["data"]
    return out


def _assert_counted_once(srv: RunningServer, tenant: str, trace_id: str) -> None:
    usage = _api(srv, f"/api/traces/{trace_id}/usage")
    by_name = {s["name"]: s for s in usage["spans"]}
    assert by_name["meeting-summarization"]["covered"] is True
    assert by_name["meeting-summarization"]["counted"] is False
    assert by_name["openai.chat"]["counted"] is True
    call_cost = Decimal(str(by_name["openai.chat"]["own"]["cost"]))
    assert call_cost > 0 and by_name["openai.chat"]["cost_source"].startswith("price_table:")
    assert usage["total"]["requestsCount"] == 1
    assert Decimal(str(usage["total"]["totalCost"])) == call_cost
    tenant_usage = _api(srv, f"/usage/tenants/{tenant}")
    assert (tenant_usage["requestsCount"], tenant_usage["tokenCount"]) == (1, 1700)
    assert Decimal(str(tenant_usage["totalCost"])) == call_cost
    session = _api(srv, f"/usage/sessions/{tenant}-session")
    assert (session["requestsCount"], Decimal(str(session["totalCost"]))) == (1, call_cost)
    listed = _api(srv, "/sdk/traces", json={"filters": [{"field": "tenant_id", "operator": "equals", "type": "string",
                                                         "value": tenant}]})
    (trace,) = listed["data"]
    assert (trace["id"], Decimal(str(trace["total_cost"])), trace["total_tokens"]) == (trace_id, call_cost, 1700)


@pytest.mark.parametrize("how", ["one-request", "child-first", "parent-first"])
def test_the_netra_sdk_span_shape_counts_the_call_once(netra_server: RunningServer, how: str) -> None:
    tenant = f"apex-{how}"
    spans, trace_id = _netra_sdk_trace(tenant, T0 + 5 * DAY + {"one-request": 0, "child-first": 1, "parent-first": 2}[how] * HOUR)
    child, parent = spans
    if how == "one-request":
        batches = [[child, parent]]
    elif how == "child-first":
        batches = [[child], [parent]]
    else:
        batches = [[parent], [child]]
    for b in batches:
        assert send(netra_server, b).name == "SUCCESS"
    _assert_counted_once(netra_server, tenant, trace_id)


class _FixedIds(IdGenerator):
    """Every span gets the same ids: the same span, produced twice."""

    def generate_span_id(self) -> int:
        return 0x5EED

    def generate_trace_id(self) -> int:
        return 0xABCDEF


class _QueuedIds(IdGenerator):
    """Root spans get the given (trace id, span id) pairs, in order: the same spans, produced again."""

    def __init__(self, pairs: list[tuple[int, int]]) -> None:
        self.pairs = list(pairs)
        self.span_id = 0

    def generate_trace_id(self) -> int:
        trace_id, self.span_id = self.pairs.pop(0)
        return trace_id

    def generate_span_id(self) -> int:
        return self.span_id


def test_a_redelivery_with_another_tenant_over_http_is_shown_not_counted(netra_server: RunningServer) -> None:
    collect = Collect()
    provider = TracerProvider(id_generator=_FixedIds())
    provider.add_span_processor(SimpleSpanProcessor(collect))
    tracer = provider.get_tracer("t")
    for tenant, cost in (("stratex", 0.5), ("techstart", 0.75)):  # the same span, sent again with another tenant
        s = tracer.start_span("call", start_time=T0 + 6 * DAY, attributes={
            semconv.TENANT_ID: tenant, semconv.COST: cost, semconv.GEN_AI_RESPONSE_MODEL: "gpt-4o-mini"})
        s.end(end_time=T0 + 6 * DAY + SEC)
    provider.shutdown()
    first, second = collect.spans
    for b in ([first], [second]):
        assert send(netra_server, b).name == "SUCCESS"
    stratex = _api(netra_server, "/usage/tenants/stratex")
    assert (stratex["requestsCount"], Decimal(str(stratex["totalCost"]))) == (1, Decimal("0.5"))
    assert _api(netra_server, "/usage/tenants/techstart")["requestsCount"] == 0
    trace_id = format(0xABCDEF, "032x")
    (span,) = _api(netra_server, f"/api/traces/{trace_id}/usage")["spans"]
    assert (span["tenant_id"], span["versions"], span["counted"]) == ("stratex", 2, True)
    with httpx.Client(base_url=netra_server.base_url, cookies={"netra_key": netra_server.api_key}) as c:
        page = c.get(f"/ui/traces/{trace_id}")
    assert page.status_code == 200, page.text
    assert "delivered in 2 conflicting versions" in page.text


def test_concurrent_exporters_sending_parents_children_and_other_versions_count_each_call_once(
    netra_server: RunningServer,
) -> None:
    """Four exporters at once, each with a shuffled share of 40 netra-sdk-shaped traces (parent with
    ``netra.usage`` and child OpenAI call in different requests) plus every parent again with another
    tenant and cost: exactly one call per trace counts, with the first versions' tenant."""
    import random
    import threading

    traces = [_netra_sdk_trace("concurrent", T0 + 7 * DAY + n * SEC) for n in range(40)]
    singles: list[list[ReadableSpan]] = [[s] for spans, _ in traces for s in spans]
    rnd = random.Random(5)
    rnd.shuffle(singles)
    firsts = list(singles)
    errors: list[BaseException] = []

    def run(share: list[list[ReadableSpan]]) -> None:
        try:
            for batch in share:
                assert send(netra_server, batch).name == "SUCCESS"
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(firsts[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    # then every parent again, as another tenant's with another cost (a producer reusing span ids)
    parents = [spans[1] for spans, _ in traces]
    ids = _QueuedIds([(p.context.trace_id, p.context.span_id) for p in parents if p.context is not None])
    collect = Collect()
    provider = TracerProvider(id_generator=ids)
    provider.add_span_processor(SimpleSpanProcessor(collect))
    tracer = provider.get_tracer("netra-sdk")
    for parent in parents:
        again = tracer.start_span("meeting-summarization", start_time=parent.start_time, attributes={
            semconv.TENANT_ID: "intruder", semconv.COST: 99.0})
        again.end(end_time=parent.end_time)
    provider.shutdown()
    assert [s.context.span_id for s in collect.spans] == [p.context.span_id for p in parents]  # type: ignore[union-attr]
    assert send(netra_server, list(collect.spans)).name == "SUCCESS"
    usage = _api(netra_server, "/usage/tenants/concurrent")
    calls = [Decimal(str(s["own"]["cost"])) for _, tid in traces for s in _api(netra_server, f"/api/traces/{tid}/usage")["spans"]
             if s["name"] == "openai.chat"]
    assert (usage["requestsCount"], usage["tokenCount"]) == (40, 40 * 1700)
    assert Decimal(str(usage["totalCost"])) == sum(calls, Decimal(0))
    assert _api(netra_server, "/usage/tenants/intruder")["requestsCount"] == 0
    for _, tid in traces[:5]:
        spans = {s["name"]: s for s in _api(netra_server, f"/api/traces/{tid}/usage")["spans"]}
        assert (spans["meeting-summarization"]["versions"], spans["meeting-summarization"]["tenant_id"]) == (2, "concurrent")
