"""The live usage table (issue 14, item 8): usage reads of the day being written take its per-minute sums,
kept at insert, instead of aggregating the spans; every answer must equal the answer from the spans.

Each test compares the store's usage reads with the live table in use against the same reads from
``netra_spans FINAL`` alone, after workloads that try to make them differ: nested usage covered later
(the stored span's usage must be subtracted), children before parents, identical and conflicting
re-deliveries, spans before the live region and ahead of it, unpriced calls, days rolled up and then
changed, a store that raises in the middle of an insert (then the retry), a restart, a retention TTL,
and old days dropped from the table. Spans go through the real ingest mapping (``otlp.build_rows``)
into a real chDB store.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from netra_server import live_usage, rollups
from netra_server.config import Limits
from netra_server.journal import Journal
from netra_server.otlp import build_rows
from netra_server.store import ChdbBackend, Store, StoreError, Window
from netra_server.testing import RunningServer, run_server
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.trace import set_span_in_context

from netra import semconv

from ._helpers import SEC, T0, record, send

DAY = rollups.DAY_NS
MINUTE = live_usage.MINUTE_NS
SINCE = T0 - DAY  # the live region of these tests starts here (a fresh store: nothing stored yet)
GROUPS = ("tenant", "model", "user", "session", "day")


def _req(spans: list[dict[str, Any]]) -> ExportTraceServiceRequest:
    """spans: dicts with trace, span, parent (0: root), start, tenant, user, session, model, and usage:
    ``cost`` (text), ``unpriced`` (tokens without a cost or a known model) or neither (no usage)."""
    req = ExportTraceServiceRequest()
    out = req.resource_spans.add().scope_spans.add().spans
    for s in spans:
        p = out.add(trace_id=s["trace"].to_bytes(16, "big"), span_id=s["span"].to_bytes(8, "big"),
                    name=f"span-{s['span']}", start_time_unix_nano=s["start"], end_time_unix_nano=s["start"] + 5)
        if s.get("parent"):
            p.parent_span_id = s["parent"].to_bytes(8, "big")
        attrs: dict[str, Any] = {semconv.TENANT_ID: s.get("tenant", "acme"), semconv.SESSION_ID: s.get("session", "s1"),
                                 semconv.USER_ID: s.get("user", "u1")}
        if s.get("cost") is not None or s.get("unpriced"):
            if s.get("cost") is not None:
                attrs[semconv.COST] = str(s["cost"])
                attrs[semconv.GEN_AI_REQUEST_MODEL] = s.get("model", "gpt-4o-mini")
            else:
                attrs[semconv.GEN_AI_REQUEST_MODEL] = "no-such-model-" + s.get("model", "x")
            attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] = s.get("inp", 10)
            attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] = s.get("out", 2)
        for k, v in attrs.items():
            a = p.attributes.add(key=k)
            if isinstance(v, int):
                a.value.int_value = v
            else:
                a.value.string_value = v
    return req


def _insert(store: Store, project: str, spans: list[dict[str, Any]]) -> None:
    batch = build_rows(_req(spans), project, Limits(), T0 // 1_000_000)
    store.insert_spans(batch.data, batch.keys)


def _open(path: Path, since: int | None = SINCE) -> Store:
    s = Store(ChdbBackend(str(path)))
    s.migrate()
    s.start_live_usage(since_ns=since)
    return s


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = _open(tmp_path / "store")
    yield s
    s.close()


def _reads(store: Store, project: str, window: Window) -> dict[str, Any]:
    out: dict[str, Any] = {"totals": store.usage_totals(project, window)}
    for tenant in ("acme", "globex", "initech"):
        out[f"tenant {tenant}"] = store.usage_totals(project, window, tenant_id=tenant)
    out["user u2"] = store.usage_totals(project, window, user_id="u2")
    out["session s3"] = store.usage_totals(project, window, session_id="s3")
    for g in GROUPS:
        out[f"by {g}"] = store.usage_summary(project, g, window)  # type: ignore[arg-type]
    out["by model, acme"] = store.usage_summary(project, "model", window, tenant_id="acme")
    return out


ALL = Window()


def assert_live_equals_spans(store: Store, project: str, window: Window = ALL, *, uses_live: bool = True) -> None:
    """Every usage read answers the same with the live table as from the spans alone (and, unless
    told otherwise, the live table was read: the comparison is not between two reads of the spans).
    Both are computed (the usage read cache is off: it would answer the second from the first)."""
    plan = store._plan(window, live=True)
    assert bool(plan.live) == uses_live, plan
    live = _uncached(store, lambda: _reads(store, project, window))
    spans = _spans_only(store, lambda: (store._plan(window, live=True).live, _reads(store, project, window)))
    assert not spans[0]
    for what in live:
        assert live[what] == spans[1][what], what


def _uncached(store: Store, read: Any) -> Any:
    saved, store.usage_cache_seconds = store.usage_cache_seconds, 0
    try:
        return read()
    finally:
        store.usage_cache_seconds = saved


def _spans_only(store: Store, read: Any) -> Any:
    """``read()`` from the spans alone: no live table, no usage read cache."""
    saved, store.span_index.live = store.span_index.live, None
    try:
        return _uncached(store, read)
    finally:
        store.span_index.live = saved


def _workload(rng: random.Random, first_trace: int, n_traces: int, start: int) -> list[dict[str, Any]]:
    """Traces of 1-4 nested spans; any span may have usage (so later usage covers earlier usage)."""
    spans = []
    for t in range(first_trace, first_trace + n_traces):
        parent = 0
        at = start + rng.randrange(0, 20 * MINUTE)
        for depth in range(rng.randint(1, 4)):
            span = t * 10 + depth + 1
            usage: dict[str, Any] = {}
            kind = rng.random()
            if kind < 0.5:
                usage = {"cost": f"{rng.randint(0, 10**6)}.{rng.randint(0, 10**10 - 1):010d}"}
            elif kind < 0.6:
                usage = {"unpriced": True}
            spans.append({"trace": t, "span": span, "parent": parent, "start": at + depth * SEC,
                          "tenant": rng.choice(("acme", "globex", "initech")), "user": rng.choice(("u1", "u2", "u3")),
                          "session": rng.choice(("s1", "s2", "s3", "")), "model": rng.choice(("gpt-4o-mini", "gpt-4o")),
                          "inp": rng.randint(0, 5000), "out": rng.randint(0, 500), **usage})
            parent = span
    return spans


def _deliver(store: Store, project: str, rng: random.Random, spans: list[dict[str, Any]]) -> None:
    """In random order and batches, with identical and conflicting re-deliveries."""
    spans = spans[:]
    rng.shuffle(spans)
    extra = [dict(s) for s in rng.sample(spans, len(spans) // 5)]
    for s in extra[: len(extra) // 2]:
        s["cost"] = "999"  # a conflicting version: never counted
        s["tenant"] = "initech"
    spans += extra
    while spans:
        n = rng.randint(1, 40)
        _insert(store, project, spans[:n])
        spans = spans[n:]


@pytest.mark.parametrize("seed", range(4))
def test_random_traces_in_any_order_read_the_same_live_and_from_the_spans(store: Store, seed: int) -> None:
    rng = random.Random(seed)
    _deliver(store, "p", rng, _workload(rng, 1, 150, T0))
    assert store.span_index.live is not None and store.span_index.live.active
    assert_live_equals_spans(store, "p")
    # windows cut inside minutes and days: the cut minutes come from the spans
    for a, b in ((T0 + 7 * SEC, T0 + 13 * MINUTE + 5), (T0 - DAY, T0 + 2 * MINUTE - 1), (T0 + 1, T0 + 30 * MINUTE)):
        assert_live_equals_spans(store, "p", Window(a, b))
    # a window inside one minute reads no live rows at all
    assert_live_equals_spans(store, "p", Window(T0 + 5 * SEC, T0 + 50 * SEC), uses_live=False)
    assert store.usage_totals("p", Window()).span_count == store.count_spans("p")


def test_usage_covered_later_is_subtracted_and_an_unpriced_call_stays_unpriced(store: Store) -> None:
    _insert(store, "p", [{"trace": 1, "span": 1, "start": T0, "cost": "1.5"},
                         {"trace": 2, "span": 1, "start": T0, "unpriced": True}])
    t = store.usage_totals("p", Window())
    assert (t.request_count, str(t.total_cost), t.unpriced_count) == (2, "1.5", 1)
    # children with usage arrive later: both stored parents stop counting, in the live table too
    _insert(store, "p", [{"trace": 1, "span": 2, "parent": 1, "start": T0 + SEC, "cost": "0.25"},
                         {"trace": 2, "span": 2, "parent": 1, "start": T0 + SEC, "unpriced": True}])
    t = store.usage_totals("p", Window())
    assert (t.request_count, str(t.total_cost), t.unpriced_count, t.span_count) == (2, "0.25", 1, 4)
    assert_live_equals_spans(store, "p")


def test_spans_before_the_region_come_from_the_spans_and_a_clock_ahead_does_not_stop_the_table(tmp_path: Path) -> None:
    s = Store(ChdbBackend(str(tmp_path / "store")))
    s.migrate()
    try:
        ahead = T0 + 10 * DAY + 30 * SEC  # a client clock far ahead, stored before the table starts
        _insert(s, "p", [{"trace": 1, "span": 1, "start": T0, "cost": "1"},  # stored before the region
                         {"trace": 2, "span": 1, "start": ahead, "cost": "2"},
                         {"trace": 4, "span": 1, "start": ahead + MINUTE, "unpriced": True}])
        assert s.start_live_usage(since_ns=T0 + 1)
        live = s.span_index.live
        assert live is not None
        region = live.region()
        assert region is not None
        # the region does not end at that span (it would turn the table off for ten days): it is added
        assert (region.lo_ns, region.hi_ns) == (T0 + MINUTE, live_usage.END_NS)
        assert_live_equals_spans(s, "p", Window(ahead - MINUTE, ahead + DAY))
        # late arrivals before the region, spans inside it, a child covering the span stored ahead
        _insert(s, "p", [{"trace": 1, "span": 2, "parent": 1, "start": T0 + SEC, "cost": "0.5"},
                         {"trace": 3, "span": 1, "start": T0 + 5 * MINUTE, "cost": "3"},
                         {"trace": 3, "span": 2, "parent": 1, "start": T0 + 6 * MINUTE, "cost": "4"},
                         {"trace": 2, "span": 2, "parent": 1, "start": ahead + 10 * SEC, "cost": "0.75"}])
        assert_live_equals_spans(s, "p")
        assert_live_equals_spans(s, "p", Window(ahead - MINUTE, ahead + DAY))
        t = s.usage_totals("p", Window())
        assert (str(t.total_cost), t.unpriced_count) == ("5.25", 1)
    finally:
        s.close()


def test_days_rolled_up_and_changed_later_stay_exact(tmp_path: Path) -> None:
    yesterday = (time.time_ns() // DAY - 1) * DAY  # days the floor keeps (it follows the clock)
    store = _open(tmp_path / "store", since=yesterday - DAY)
    try:
        rng = random.Random(7)
        window = Window(yesterday - DAY, yesterday + 2 * DAY - 1)
        _deliver(store, "p", rng, _workload(rng, 1, 60, yesterday) + _workload(rng, 100, 30, yesterday + DAY))
        assert store.refresh_rollups(settle_seconds=0)
        assert_live_equals_spans(store, "p", window, uses_live=False)  # every day from its rollup
        # a late child covers a stored parent of the first day: its rollup is no longer valid
        _insert(store, "p", [{"trace": 1, "span": 99, "parent": 11, "start": yesterday + 2 * SEC, "cost": "0.5"}])
        assert_live_equals_spans(store, "p", window)
        assert store.refresh_rollups(settle_seconds=0)
        assert_live_equals_spans(store, "p", window, uses_live=False)
    finally:
        store.close()


class _Failing(ChdbBackend):
    """The real backend, except that one chosen statement raises once (the store refused it)."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.fail_on: str | None = None

    def _maybe_fail(self, what: str) -> None:
        if self.fail_on is not None and self.fail_on in what:
            self.fail_on = None
            raise StoreError(f"refused: {what[:60]!r}")

    def insert_rows(self, table: str, columns: tuple[str, ...], data: bytes, fmt: str, *, comment: str = "") -> None:
        self._maybe_fail(table)
        super().insert_rows(table, columns, data, fmt, comment=comment)

    def command(self, sql: str, params: dict[str, Any] | None = None) -> None:
        self._maybe_fail(sql)
        super().command(sql, params)

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        self._maybe_fail(sql)
        return super().query(sql, params)


def _failing_store(backend: _Failing, tmp_path: Path) -> tuple[Store, live_usage.LiveUsage, Journal]:
    """A store on ``backend`` keeping the live table from SINCE, and a journal inserting into it."""
    store = Store(backend)
    store.migrate()
    assert store.start_live_usage(since_ns=SINCE)
    live = store.span_index.live
    assert live is not None
    return store, live, Journal(tmp_path / "journal", store.insert_spans)


@pytest.mark.parametrize("statement", [
    "netra_usage_live",  # subtracting what the stored spans about to be covered count
    "netra_span_index",  # after the spans and the rewrites
    "INSERT INTO netra_spans\nSELECT",  # the covered rewrite, after the live table subtracted what it counted
    "AND (has_usage = 1 AND covered = 0)",  # the first statement reading what stored spans count
    "netra_spans",  # the spans (and, through the view, their live rows)
])
def test_a_store_failing_inside_an_insert_resets_the_table_and_the_retry_counts_once(
    tmp_path: Path, statement: str
) -> None:
    backend = _Failing(str(tmp_path / "store"))
    store, live, journal = _failing_store(backend, tmp_path)
    try:
        rng = random.Random(3)
        first = _workload(rng, 1, 40, T0)
        first += [{"trace": 9001, "span": 1, "start": T0, "cost": "7"}, {"trace": 9002, "span": 1, "start": T0, "unpriced": True}]
        _deliver(store, "p", rng, first)
        # the failing batch: children with usage under stored parents with usage (rewrites) and new traces
        batch = [{"trace": 9001, "span": 2, "parent": 1, "start": T0 + 3 * SEC, "cost": "0.125"},
                 {"trace": 9002, "span": 2, "parent": 1, "start": T0 + 3 * SEC, "cost": "0.5"},
                 *_workload(rng, 500, 5, T0 + 2 * MINUTE)]
        keys = build_rows(_req(batch), "p", Limits(), T0 // 1_000_000)
        journal.append(keys.data, len(batch), keys.keys)
        backend.fail_on = statement
        with pytest.raises(StoreError):
            journal.flush()
        assert backend.fail_on is None, "the statement did not run"
        assert live.resets == 1 and live.active
        journal.flush()  # the retry
        _deliver(store, "p", rng, _workload(rng, 700, 20, T0 + 3 * MINUTE))  # and more after it
        # the table restarted after the latest stored span: the spans before come from the spans
        region = live.region()
        assert region is not None and region.lo_ns > T0
        assert_live_equals_spans(store, "p", uses_live=False)
        _insert(store, "p", [{"trace": 9000, "span": 1, "start": region.lo_ns + SEC, "cost": "1"}])
        assert_live_equals_spans(store, "p")
    finally:
        store.close()


class _Hooked(ChdbBackend):
    """The real backend; ``hook`` runs once, just before the next read of the live usage table (what
    happens between a read's plan and its query)."""

    hook: Any = None

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        if self.hook is not None and "FROM netra_usage_live WHERE" in sql:
            hook, self.hook = self.hook, None
            hook()
        return super().query(sql, params)


def _hooked(path: Path) -> tuple[Store, _Hooked]:
    backend = _Hooked(str(path))
    s = Store(backend)
    s.migrate()
    assert s.start_live_usage(since_ns=SINCE)
    return s, backend


def test_a_reset_between_a_reads_plan_and_its_query_reads_again(tmp_path: Path) -> None:
    store, backend = _hooked(tmp_path / "store")
    live = store.span_index.live
    assert live is not None
    try:
        rng = random.Random(21)
        _deliver(store, "p", rng, _workload(rng, 1, 60, T0))
        soon = -(-time.time_ns() // MINUTE) * MINUTE + 2 * MINUTE  # inside the next epoch's region

        def reset_and_insert() -> None:  # a failed insert elsewhere, then a span of the new epoch
            live.reset(backend)
            _insert(store, "p", [{"trace": 5000, "span": 1, "start": soon, "cost": "11"}])

        backend.hook = reset_and_insert
        got = store.usage_totals("p", Window())
        assert backend.hook is None, "the hook did not run"
        assert got == _spans_only(store, lambda: store.usage_totals("p", Window()))
        assert_live_equals_spans(store, "p")
    finally:
        store.close()


def test_a_day_dropped_between_a_reads_plan_and_its_query_reads_again(tmp_path: Path) -> None:
    store, backend = _hooked(tmp_path / "store")
    live = store.span_index.live
    assert live is not None
    try:
        rng = random.Random(22)
        _deliver(store, "p", rng, _workload(rng, 1, 40, T0) + _workload(rng, 100, 40, T0 + 3 * DAY))
        backend.hook = lambda: live.advance_floor(backend, now_ns=T0 + 4 * DAY + SEC)
        got = store.usage_summary("p", "day", Window())
        assert backend.hook is None, "the hook did not run"
        assert got == _spans_only(store, lambda: store.usage_summary("p", "day", Window()))
    finally:
        store.close()


@contextmanager
def _journaled(tmp_path: Path) -> Iterator[tuple[Store, Journal]]:
    """A store with the live table and an ingest journal its reads wait for (as the server runs it)."""
    store = _open(tmp_path / "store")
    journal = Journal(tmp_path / "journal", store.insert_spans)
    store.read_barrier = journal
    try:
        yield store, journal
    finally:
        store.read_barrier = None
        journal.close()
        store.close()


def test_a_strong_read_sees_the_first_spans_of_a_day_still_in_the_journal(tmp_path: Path) -> None:
    """The read's plan (which days have spans) is made after the inserts it waits for."""
    with _journaled(tmp_path) as (store, journal):
        _insert(store, "p", [{"trace": 1, "span": 1, "start": T0, "cost": "1"}])
        batch = build_rows(_req([{"trace": 2, "span": 1, "start": T0 + 2 * DAY + SEC, "cost": "2"}]), "p", Limits(),
                           T0 // 1_000_000)
        journal.append(batch.data, 1, batch.keys)  # acknowledged, not inserted: its day has no partition yet
        t = store.usage_totals("p", Window())
        assert (str(t.total_cost), t.span_count) == ("3", 2)


def test_without_the_table_span_inserts_do_not_run_its_view(tmp_path: Path) -> None:
    store = _open(tmp_path / "store")
    try:
        views = "SELECT count() AS n FROM system.tables WHERE database = currentDatabase() AND name = 'netra_usage_live_mv'"
        assert int(store.query(views)[0]["n"]) == 1
        store.stop_live_usage()
        assert store.span_index.live is None and int(store.query(views)[0]["n"]) == 0
        _insert(store, "p", [{"trace": 1, "span": 1, "start": T0, "cost": "1"}])
        assert str(store.usage_totals("p", Window()).total_cost) == "1"
        assert store.start_live_usage(since_ns=SINCE)  # back on: the span stored meanwhile is added
        assert_live_equals_spans(store, "p")
    finally:
        store.close()


class _FailingIndexWrite(_Failing):
    """Fails only the write of index rows (not the lookups that read the index first)."""

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        return ChdbBackend.query(self, sql, params)


@pytest.mark.parametrize("statement", ["INSERT INTO netra_spans\nSELECT", "netra_usage_live", "netra_span_index",
                                       "index write"])
def test_a_span_ahead_stored_by_a_failed_insert_counts_once_after_the_retry(tmp_path: Path, statement: str) -> None:
    """The failed insert stored the span (its index rows not written yet); the reset's backfill must not
    count it, since the journal's retry inserts it again and the view counts it then."""
    if statement == "index write":
        backend: _Failing = _FailingIndexWrite(str(tmp_path / "store"))
        statement = "netra_span_index"
    else:
        backend = _Failing(str(tmp_path / "store"))
    store, live, journal = _failing_store(backend, tmp_path)
    try:
        ahead = time.time_ns() + 3600 * SEC  # a client clock an hour ahead
        _insert(store, "p", [{"trace": 1, "span": 1, "start": T0, "cost": "7"}])  # so the batch rewrites a parent
        batch = [{"trace": 1, "span": 2, "parent": 1, "start": T0 + SEC, "cost": "1"},
                 {"trace": 2, "span": 1, "start": ahead, "cost": "5"}]
        rows = build_rows(_req(batch), "p", Limits(), T0 // 1_000_000)
        journal.append(rows.data, len(batch), rows.keys)
        backend.fail_on = statement
        with pytest.raises(StoreError):
            journal.flush()
        assert backend.fail_on is None and live.resets == 1 and live.active
        journal.flush()  # the retry
        window = Window(ahead - 10 * MINUTE, ahead + 10 * MINUTE)
        assert_live_equals_spans(store, "p", window)
        assert str(_uncached(store, lambda: store.usage_totals("p", window)).total_cost) == "5"
    finally:
        store.close()


def test_a_span_ahead_left_by_a_crash_counts_once_after_the_recovery(tmp_path: Path) -> None:
    """A crash after the spans were stored and before their index rows: at the next start the table is
    backfilled from the indexed spans only, and the journal's recovery inserts the rest, counted once."""
    path = tmp_path / "store"
    backend = _FailingIndexWrite(str(path))
    store = Store(backend)
    store.migrate()
    journal = Journal(tmp_path / "journal", store.insert_spans)
    ahead = time.time_ns() + 3600 * SEC
    _insert(store, "p", [{"trace": 1, "span": 1, "start": ahead, "cost": "2"}])  # indexed
    rows = build_rows(_req([{"trace": 2, "span": 1, "start": ahead + SEC, "cost": "5"}]), "p", Limits(), T0 // 1_000_000)
    journal.append(rows.data, 1, rows.keys)
    backend.fail_on = "netra_span_index"  # the process dies here: the span is stored, not indexed
    with pytest.raises(StoreError):
        journal.flush()
    assert backend.fail_on is None
    assert int(store.query("SELECT count() AS n FROM netra_spans WHERE trace_id LIKE '%2'")[0]["n"]) == 1
    store.close()  # (the journal keeps the batch on disk)
    store = Store(ChdbBackend(str(path)))
    store.migrate()
    try:
        assert store.start_live_usage()
        recovered = Journal(tmp_path / "journal", store.insert_spans)
        recovered.recover()
        window = Window(ahead - MINUTE, ahead + 10 * MINUTE)
        assert_live_equals_spans(store, "p", window)
        assert str(_uncached(store, lambda: store.usage_totals("p", window)).total_cost) == "7"
    finally:
        store.close()


def test_stopping_the_table_with_spans_in_the_journal_does_not_wait_for_them(tmp_path: Path) -> None:
    """Stopping holds the insert lock; a statement that waited for the journal would never end."""
    with _journaled(tmp_path) as (store, journal):
        rows = build_rows(_req([{"trace": 1, "span": 1, "start": T0, "cost": "1"}]), "p", Limits(), T0 // 1_000_000)
        journal.append(rows.data, 1, rows.keys)
        stopping = threading.Thread(target=store.stop_live_usage, daemon=True)
        stopping.start()
        stopping.join(30)
        assert not stopping.is_alive(), "stop_live_usage hangs"
        assert str(store.usage_totals("p", Window()).total_cost) == "1"


def test_a_restart_empties_the_table_and_starts_after_the_stored_spans(tmp_path: Path) -> None:
    path = tmp_path / "store"
    store = _open(path)
    rng = random.Random(11)
    _deliver(store, "p", rng, _workload(rng, 1, 50, T0))
    before = store.usage_totals("p", Window())
    store.close()
    store = Store(ChdbBackend(str(path)))  # a new process: default region
    store.migrate()
    try:
        assert store.start_live_usage()
        live = store.span_index.live
        assert live is not None
        assert int(store.query("SELECT count() AS n FROM netra_usage_live")[0]["n"]) == 0
        region = live.region()
        assert region is not None and region.lo_ns > T0 + 20 * MINUTE
        assert store.usage_totals("p", Window()) == before
        # a span now: in the region; a late one of January: from the spans
        now = -(-region.lo_ns // MINUTE) * MINUTE + 2 * SEC
        _insert(store, "p", [{"trace": 800, "span": 1, "start": now, "cost": "2"},
                             {"trace": 801, "span": 1, "start": T0 + 5 * SEC, "cost": "3"}])
        assert_live_equals_spans(store, "p", Window(T0 - DAY, now + MINUTE))
    finally:
        store.close()


def test_retention_and_the_floor_keep_reads_off_rows_that_may_be_gone(store: Store) -> None:
    live = store.span_index.live
    assert live is not None
    rng = random.Random(5)
    _deliver(store, "p", rng, _workload(rng, 1, 40, T0) + _workload(rng, 100, 40, T0 + 3 * DAY))
    assert_live_equals_spans(store, "p")
    # the floor two days before "today" (T0 + 4 days): January's first day leaves the table
    live.advance_floor(store.backend, now_ns=T0 + 4 * DAY + SEC)
    days = {r["partition"] for r in store.query(
        "SELECT DISTINCT partition FROM system.parts WHERE database = currentDatabase() "
        "AND table = 'netra_usage_live' AND active")}
    assert days == {"2026-01-04"}
    region = live.region()
    assert region is not None and region.lo_ns == T0 + 2 * DAY
    assert_live_equals_spans(store, "p")
    # a retention of 30 days from today (December): every January span may be gone, none read live
    store.set_retention(30)
    assert_live_equals_spans(store, "p", uses_live=False)


def test_only_the_embedded_store_with_rollups_keeps_the_table(tmp_path: Path) -> None:
    s = Store(ChdbBackend(str(tmp_path / "store")))
    s.migrate()
    try:
        s._rollups_supported = False  # e.g. a cluster's Distributed table: the parts are elsewhere
        assert not s.start_live_usage() and s.span_index.live is None
        s._rollups_supported = None
        assert s.start_live_usage() and s.span_index.live is not None
    finally:
        s.close()


# --------------------------------------------------------------------------------------------------
# Through `netra serve`: the real OpenTelemetry SDK and OTLP exporter, the HTTP usage routes


def _sdk_spans(now: int) -> tuple[list[Any], list[Any]]:
    """Two batches from the real SDK: an agent step with its own usage and another tenant's call (sent
    first), then two LLM calls under the step (sent later: the stored step stops counting)."""
    provider, collect = record()
    tracer = provider.get_tracer("t")
    attrs = {semconv.TENANT_ID: "acme", semconv.SESSION_ID: "s1", semconv.USER_ID: "u1"}
    usage = {semconv.GEN_AI_REQUEST_MODEL: "gpt-4o-mini", semconv.GEN_AI_USAGE_INPUT_TOKENS: 100,
             semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 10}
    start = now - 5 * MINUTE  # whole minutes before now: read from the live table
    step = tracer.start_span("agent step", start_time=start, attributes={**attrs, **usage, semconv.COST: "0.5"})
    ctx = set_span_in_context(step)
    other = tracer.start_span("chat", start_time=start + 3 * SEC,
                              attributes={**attrs, semconv.TENANT_ID: "globex", **usage, semconv.COST: "1"})
    other.end(end_time=start + 4 * SEC)
    step.end(end_time=start + 7 * SEC)
    first = list(collect.spans)
    collect.spans.clear()
    call1 = tracer.start_span("chat", context=ctx, start_time=start + SEC, attributes={**attrs, **usage, semconv.COST: "0.25"})
    call1.end(end_time=start + 2 * SEC)
    call2 = tracer.start_span("chat", context=ctx, start_time=start + 5 * SEC,
                              attributes={**attrs, **{**usage, semconv.GEN_AI_REQUEST_MODEL: "unknown-model"}})
    call2.end(end_time=start + 6 * SEC)
    return first, list(collect.spans)


def _usage(srv: RunningServer) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    with srv.client() as c:
        acme = c.get("/usage/tenants/acme", params={"consistency": "strong"}).raise_for_status().json()["data"]
        by_model = c.get("/api/usage/summary", params={"groupBy": "model", "consistency": "strong"}).raise_for_status().json()["data"]
        health = c.get("/healthz").json()
    return acme, by_model, health


def test_the_server_reads_the_live_table_and_answers_as_without_it(tmp_path: Path) -> None:
    now = time.time_ns()
    first, later = _sdk_spans(now)
    with run_server(tmp_path) as srv:
        assert send(srv, first).name == "SUCCESS"
        assert _usage(srv)[0]["totalCost"] == 0.5  # the step counts until a call under it arrives
        assert send(srv, later).name == "SUCCESS"
        acme, by_model, health = _usage(srv)
        assert health["liveUsage"]["active"] and health["liveUsage"]["resets"] == 0
        store = srv.app.state.netra.store
        assert store._plan(Window(now - DAY, now), live=True).live  # the whole minutes came from the table
        live = store.query("SELECT sum(span_count) AS n, sum(request_count) AS r FROM netra_usage_live")[0]
        assert (live["n"], live["r"]) == (4, 3)  # the step added, then subtracted when covered
    # the step stopped counting when the second call arrived; that call's price is unknown (not 0)
    assert (acme["requestsCount"], acme["totalCost"], acme["tokenCount"]) == (2, 0.25, 220)
    with run_server(tmp_path, live_usage=False) as srv:  # the same store, every read from the spans
        assert srv.app.state.netra.store.span_index.live is None
        acme2, by_model2, health2 = _usage(srv)
        assert "liveUsage" not in health2
    assert (acme2, by_model2) == (acme, by_model)
    with run_server(tmp_path) as srv:  # a restart: the table starts after the stored spans
        acme3, by_model3, health3 = _usage(srv)
        assert health3["liveUsage"]["from"] > time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime((now - 5 * MINUTE) // SEC))
    assert (acme3, by_model3) == (acme, by_model)


def test_without_the_journal_the_server_does_not_keep_the_table(tmp_path: Path) -> None:
    """--no-journal: a failed insert is not inserted again by anyone, so the table could not know
    whether to count its rows; the server reads the spans and says so."""
    with run_server(tmp_path, journal=False) as srv:
        assert srv.app.state.netra.store.span_index.live is None
        assert "liveUsage" not in httpx.get(f"{srv.base_url}/healthz").json()
        views = "SELECT count() AS n FROM system.tables WHERE database = currentDatabase() AND name = 'netra_usage_live_mv'"
        assert int(srv.app.state.netra.store.query(views)[0]["n"]) == 0  # and span INSERTs do not run its view
