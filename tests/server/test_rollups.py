"""Daily rollups are exact: every aggregate read from rollups + spans equals the same aggregate computed
in Python from the distinct spans, before and after rollups exist, after late spans and duplicates
land in rolled-up days, and for windows that cut days at any nanosecond.

Spans go through the real ingest mapping (``otlp.build_rows``) into a real chDB store. The reference
applies the billing rule itself: a span counts iff it has usage and is not covered; a span delivered
twice (same trace id + span id, in another insert) counts once.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from decimal import Decimal

import pytest
from netra_server import rollups
from netra_server.config import Limits
from netra_server.otlp import build_rows
from netra_server.store import (
    ChdbBackend,
    LatencyStats,
    Store,
    TraceQuery,
    TraceSummary,
    UsageGroup,
    UsageTotals,
    Window,
    span_type_name,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from netra import semconv

from ._helpers import T0
from .test_store import NASTY, Recording

DAY = rollups.DAY_NS
HOUR = 3600 * 1_000_000_000
D0 = T0 // DAY  # 2026-01-01


@dataclass(frozen=True)
class Span:
    trace: int
    span: int
    parent: int  # 0: a root
    start: int
    dur: int
    tenant: str = ""
    user: str = ""
    session: str = ""
    model: str = ""
    usage: bool = False
    inp: int = 0
    out: int = 0
    cached: int = 0
    cost: Decimal | None = None  # with usage and no cost: an unknown price (netra-test-model-a/b are in no price table)
    covered: bool = False
    error: bool = False
    name: str = "step"

    @property
    def counted(self) -> bool:
        return self.usage and not self.covered

    @property
    def trace_id(self) -> str:
        return format(self.trace, "032x")

    @property
    def span_id(self) -> str:
        return format(self.span, "016x")


def rows(project: str, spans: list[Span]) -> bytes:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    kv = rs.resource.attributes.add(key="service.name")
    kv.value.string_value = "svc"
    out = rs.scope_spans.add().spans
    for s in spans:
        p = out.add(trace_id=s.trace.to_bytes(16, "big"), span_id=s.span.to_bytes(8, "big"), name=s.name,
                    start_time_unix_nano=s.start, end_time_unix_nano=s.start + s.dur)
        if s.parent:
            p.parent_span_id = s.parent.to_bytes(8, "big")
        if s.error:
            p.status.code = Status.STATUS_CODE_ERROR
        attrs: dict[str, object] = {semconv.TENANT_ID: s.tenant, semconv.USER_ID: s.user, semconv.SESSION_ID: s.session,
                                    semconv.GEN_AI_RESPONSE_MODEL: s.model}
        if s.usage:
            attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] = s.inp
            attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] = s.out
            attrs[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = s.cached
            if s.cost is not None:
                attrs[semconv.COST] = str(s.cost)
        if s.covered:
            attrs[semconv.USAGE_COVERED] = True
        for k, v in attrs.items():
            if v == "":
                continue
            a = p.attributes.add(key=k)
            if isinstance(v, bool):
                a.value.bool_value = v
            elif isinstance(v, int):
                a.value.int_value = v
            else:
                a.value.string_value = str(v)
    return build_rows(req, project, Limits(), T0 // 1_000_000).data


def make_spans(seed: int, n_traces: int, days: int) -> list[Span]:
    """Traces over ``days`` days, many of them close to midnight (some cross it): a root without usage
    (sometimes covered, with its own explicit usage), LLM calls with known or unknown prices."""
    rnd = random.Random(seed)
    out: list[Span] = []
    sid = 1
    for t in range(1, n_traces + 1):
        day = rnd.randrange(days)
        near_midnight = rnd.random() < 0.3
        offset = DAY - rnd.randrange(1, 3 * HOUR) if near_midnight else rnd.randrange(DAY)
        start = (D0 + day) * DAY + offset
        tenant = rnd.choice(["apex", "stratex", "techstart", ""])
        user = rnd.choice(["u1", "u2", "u3", ""]) if tenant else ""
        session = f"s-{tenant}-{rnd.randrange(4)}" if tenant and rnd.random() < 0.8 else ""
        root_covered = rnd.random() < 0.3
        root = Span(t, sid, 0, start, rnd.randrange(1, 4 * HOUR), tenant, user, session, name=f"root-{t % 5}",
                    usage=root_covered, inp=rnd.randrange(1000), out=rnd.randrange(200),
                    cost=Decimal(rnd.randrange(1, 10**6)) / 10**10 if root_covered else None, covered=root_covered,
                    error=rnd.random() < 0.1)
        out.append(root)
        sid += 1
        for _ in range(rnd.randrange(0, 4)):
            priced = rnd.random() < 0.85
            out.append(Span(
                t, sid, root.span, start + rnd.randrange(0, 3 * HOUR), rnd.randrange(1, HOUR),
                tenant if rnd.random() < 0.9 else "", user, session, model=rnd.choice(["netra-test-model-a", "netra-test-model-b"]),
                usage=True, inp=rnd.randrange(5000), out=rnd.randrange(1000), cached=rnd.randrange(100),
                cost=Decimal(rnd.randrange(1, 10**7)) / 10**10 if priced else None, covered=rnd.random() < 0.1,
                error=rnd.random() < 0.05, name="chat",
            ))
            sid += 1
    return out


# --------------------------------------------------------------------------------------------------
# The reference, from distinct spans


def covered_by_descendants(spans: dict[tuple[int, int], Span]) -> dict[tuple[int, int], Span]:
    """The billing rule as the server applies it: a span with a descendant with usage is covered
    (whatever its producer marked)."""
    covered: set[tuple[int, int]] = set()
    for s in spans.values():
        if not (s.usage or s.covered):
            continue
        parent = spans.get((s.trace, s.parent)) if s.parent else None
        seen: set[tuple[int, int]] = set()
        while parent is not None and (parent.trace, parent.span) not in seen:
            seen.add((parent.trace, parent.span))
            covered.add((parent.trace, parent.span))
            parent = spans.get((parent.trace, parent.parent)) if parent.parent else None
    return {k: replace(s, covered=True) if k in covered else s for k, s in spans.items()}


def in_window(spans: dict[tuple[int, int], Span], w: Window, **f: str | None) -> list[Span]:
    out = []
    for s in spans.values():
        if not w.start_ns <= s.start <= w.end_ns:
            continue
        if any(v is not None and getattr(s, k) != v for k, v in f.items()):
            continue
        out.append(s)
    return out


def ref_totals(spans: list[Span], *, counted_only: bool = False) -> UsageTotals:
    c = [s for s in spans if s.counted]
    base = c if counted_only else spans
    return UsageTotals(
        request_count=len(c), token_count=sum(s.inp + s.out for s in c), input_tokens=sum(s.inp for s in c),
        output_tokens=sum(s.out for s in c), cached_tokens=sum(s.cached for s in c),
        total_cost=sum((s.cost for s in c if s.cost is not None), Decimal(0)),
        unpriced_count=sum(1 for s in c if s.cost is None),
        session_count=len({s.session for s in base if s.session}), span_count=len(base),
    )


def day_of(ns: int) -> str:
    return rollups.day_str(ns // DAY)


def ref_summary(spans: list[Span], group_by: str) -> list[UsageGroup]:
    key = {"tenant": lambda s: s.tenant, "user": lambda s: s.user, "model": lambda s: s.model,
           "session": lambda s: s.session, "day": lambda s: day_of(s.start)}[group_by]
    pool = [s for s in spans if s.counted] if group_by == "model" else spans
    groups: dict[str, list[Span]] = {}
    for s in pool:
        groups.setdefault(key(s), []).append(s)
    out = [UsageGroup(k, ref_totals(v, counted_only=group_by == "model")) for k, v in groups.items()]
    if group_by == "day":
        return sorted(out, key=lambda g: g.key)
    return sorted(out, key=lambda g: (-g.totals.total_cost, -g.totals.token_count, g.key))


def ref_latency(spans: list[Span], scope: str) -> list[LatencyStats]:
    pick = {"root": lambda s: s.parent == 0, "llm": lambda s: s.counted and s.model != "", "all": lambda s: True}[scope]
    by: dict[str, list[Span]] = {}
    for s in spans:
        if pick(s):
            by.setdefault(s.tenant, []).append(s)
    out = []
    for tenant in sorted(by):
        ss = by[tenant]
        d = sorted(s.dur for s in ss)
        q = [d[int(level * len(d))] / 1e6 for level in (0.5, 0.95, 0.99)]  # quantileExact: the floor(level*n)-th
        errors = sum(1 for s in ss if s.error)
        out.append(LatencyStats(tenant, len(ss), errors, errors / len(ss), *q))
    return out


def ref_traces(spans: list[Span]) -> list[TraceSummary]:
    by: dict[int, list[Span]] = {}
    for s in spans:
        by.setdefault(s.trace, []).append(s)
    out = []
    for ss in by.values():
        first = min(ss, key=lambda s: (s.parent != 0, s.start, s.span_id))
        start, end = min(s.start for s in ss), max(s.start + s.dur for s in ss)
        c = [s for s in ss if s.counted]

        def one(attr: str, ss: list[Span] = ss) -> str:
            values = {getattr(s, attr) for s in ss} - {""}
            assert len(values) <= 1
            return values.pop() if values else ""

        prompt, completion = sum(s.inp for s in c), sum(s.out for s in c)
        out.append(TraceSummary(
            trace_id=first.trace_id, name=first.name, kind="UNSPECIFIED", start_ns=start, end_ns=end, latency_ns=end - start,
            session_id=one("session"), tenant_id=one("tenant"), user_id=one("user"), environment="", service="svc",
            models=sorted({s.model for s in ss} - {""}), prompt_tokens=prompt, completion_tokens=completion,
            cached_tokens=sum(s.cached for s in c), total_tokens=prompt + completion,
            total_cost=sum((s.cost for s in c if s.cost is not None), Decimal(0)),
            unpriced_count=sum(1 for s in c if s.cost is None), has_error=any(s.error for s in ss), span_count=len(ss),
            span_type=span_type_name("", first.name, first.model, first.inp + first.out if first.usage else 0),  # the root span's type
        ))
    return out


def ref_page(traces: list[TraceSummary], sort: str, order: str, direction: str,
             after: tuple[str, str] | None, limit: int) -> tuple[list[TraceSummary], bool]:
    def key(t: TraceSummary) -> tuple[object, str]:
        v = {"start_time": t.start_ns, "latency": t.latency_ns, "tokens": t.total_tokens, "cost": t.total_cost}[sort]
        return v, t.trace_id

    ascending = (order == "asc") == (direction == "down")
    ordered = sorted(traces, key=key, reverse=not ascending)
    if after is not None:
        raw = after[0]
        cval: object = Decimal(raw) if sort == "cost" else int(raw)
        ordered = [t for t in ordered if (key(t) > (cval, after[1])) == ascending and key(t) != (cval, after[1])]
    return ordered[:limit], len(ordered) > limit


# --------------------------------------------------------------------------------------------------
# Fixtures


DAYS = 4


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    s = Store(ChdbBackend(str(tmp_path_factory.mktemp("rollups"))), threads=2)
    s.migrate()
    yield s
    s.close()


def windows(seed: int) -> list[Window]:
    rnd = random.Random(seed)
    a, b = D0 * DAY, (D0 + DAYS) * DAY
    out = [
        Window(a - DAY, b + DAY),  # every day whole
        Window(a, b - 1),  # exactly the days
        Window(a + DAY, a + 2 * DAY - 1),  # exactly one day
        Window(a + DAY, a + 2 * DAY),  # one day and the first nanosecond of the next
        Window(a + DAY + 1, a + 3 * DAY - 1),  # one nanosecond short of two days
    ]
    for _ in range(2):  # cut in the middle of days, anywhere
        x, y = sorted(rnd.randrange(a - HOUR, b + HOUR) for _ in range(2))
        out.append(Window(x, y))
    return out


FILTERS: list[dict[str, str | None]] = [{}, {"tenant": "apex"}, {"user": "u2"}, {"session": "s-stratex-1"}, {"tenant": ""}]


def check_all(store: Store, pid: str, truth: dict[tuple[int, int], Span], ws: list[Window]) -> None:
    """Every aggregate of the store == the reference, for every window and filter (trace lists: for
    the first, a one-day and the cut windows)."""
    for i, w in enumerate(ws):
        for f in FILTERS:
            got = store.usage_totals(pid, w, tenant_id=f.get("tenant"), user_id=f.get("user"), session_id=f.get("session"))
            assert got == ref_totals(in_window(truth, w, **f)), (w, f)
        for tenant in (None, "apex"):
            spans = in_window(truth, w, tenant=tenant)
            for g in ("tenant", "model", "user", "session", "day"):
                assert store.usage_summary(pid, g, w, tenant_id=tenant) == ref_summary(spans, g), (w, g, tenant)  # type: ignore[arg-type]
            for scope in ("root", "llm", "all"):
                assert store.latency_stats(pid, w, tenant_id=tenant, scope=scope) == ref_latency(spans, scope), (w, scope)  # type: ignore[arg-type]
        if i in (1, 2, 3):
            continue
        for f in ({}, {"tenant": "stratex"}):
            traces = ref_traces(in_window(truth, w, **f))
            for sort in ("start_time", "latency", "cost", "tokens"):
                for order in ("desc", "asc"):
                    after = None
                    for direction in ("down", "down", "up"):  # page 1, page 2, back up from page 2
                        q = TraceQuery(window=w, tenant_id=f.get("tenant"), user_id=f.get("user"), sort_field=sort,  # type: ignore[arg-type]
                                       sort_order=order, direction=direction, after=after, limit=7)  # type: ignore[arg-type]
                        page = store.list_traces(pid, q)
                        items, more = ref_page(traces, sort, order, direction, after, 7)
                        assert (page.items, page.has_more) == (items, more), (w, f, sort, order, direction, after)
                        if page.items and direction == "down":
                            after = (page.items[-1].sort_value(sort), page.items[-1].trace_id)  # type: ignore[arg-type]


def insert(store: Store, pid: str, spans: list[Span], batch: int = 97) -> None:
    for i in range(0, len(spans), batch):
        store.insert_spans(rows(pid, spans[i:i + batch]))


def valid_days(store: Store) -> set[int]:
    return set(store._plan(Window((D0 - 1) * DAY, (D0 + DAYS + 1) * DAY)).days)


# --------------------------------------------------------------------------------------------------
# Tests


def test_every_aggregate_is_exact_before_and_after_rollups_late_spans_and_duplicates(store: Store) -> None:
    pid = "p-exact"
    spans = make_spans(7, 160, DAYS)
    truth = covered_by_descendants({(s.trace, s.span): s for s in spans})
    rnd = random.Random(11)
    insert(store, pid, spans)
    insert(store, pid, rnd.sample(spans, 60), batch=13)  # duplicates, in other inserts than the originals
    ws = windows(3)
    check_all(store, pid, truth, ws)  # no rollup yet: all from the spans

    computed = store.refresh_rollups(settle_seconds=0)
    assert len(computed) >= DAYS
    assert valid_days(store) >= {D0 + d for d in range(DAYS)}  # the reads use the rollups
    check_all(store, pid, truth, ws)

    # after the rollup: duplicates of day 1's spans and a late new trace in day 2 (new parts there)
    day1 = [s for s in spans if s.start // DAY == D0 + 1]
    insert(store, pid, rnd.sample(day1, 20))
    late = [Span(10_000, 900_001, 0, (D0 + 2) * DAY + 5 * HOUR, HOUR, "apex", "u2", "s-apex-9", "netra-test-model-a", True, 77, 7, 1,
                 Decimal("0.0123456789"), error=True, name="late"),
            Span(10_000, 900_002, 900_001, (D0 + 2) * DAY + 5 * HOUR + 1, 2, "apex", "u2", "s-apex-9", "netra-test-model-b", True,
                 5, 5, 0, None)]
    insert(store, pid, late)
    truth.update({(s.trace, s.span): s for s in late})
    truth = covered_by_descendants(truth)  # the late root: its child recorded usage
    days = valid_days(store)
    # re-deliveries write nothing (day 1 keeps its rollup); the changed day is read from the spans
    assert D0 + 1 in days and D0 + 2 not in days and D0 + 3 in days
    check_all(store, pid, truth, ws)

    assert sorted(store.refresh_rollups(settle_seconds=0)) == [rollups.day_str(D0 + 2)]
    assert valid_days(store) >= {D0 + d for d in range(DAYS)}
    check_all(store, pid, truth, [ws[0], ws[-1]])

    # merged (what background merges reach): the fingerprints change, the figures do not
    store.command("OPTIMIZE TABLE netra_spans FINAL")
    assert not valid_days(store) & {D0 + 1, D0 + 2}
    store.refresh_rollups(settle_seconds=0)
    assert valid_days(store) >= {D0 + d for d in range(DAYS)}
    check_all(store, pid, truth, ws[:1])


def test_a_duplicate_of_a_counted_span_in_a_rolled_up_day_counts_once(store: Store) -> None:
    pid = "p-dup"
    day = D0 + 10
    call = Span(1, 2, 1, day * DAY + 23 * HOUR, HOUR, "apex", "u1", "s1", "netra-test-model-a", True, 100, 10, 0, Decimal("0.25"))
    parent = Span(1, 1, 0, day * DAY + 22 * HOUR, 3 * HOUR, "apex", "u1", "s1", usage=True, inp=100, out=10,
                  cost=Decimal("0.25"), covered=True)  # covered by the call: never counted
    insert(store, pid, [parent, call])
    store.refresh_rollups(settle_seconds=0)
    w = Window(day * DAY, (day + 1) * DAY - 1)
    assert set(store._plan(w).days) == {day}
    want = store.usage_totals(pid, w)
    assert (want.request_count, want.total_cost, want.span_count) == (1, Decimal("0.25"), 2)
    for _ in range(3):  # the exporter retried: the same span in three more inserts
        insert(store, pid, [call])
        assert set(store._plan(w).days) == {day}  # a re-delivery writes nothing: the rollup stays valid
        assert store.usage_totals(pid, w) == want
    store.refresh_rollups(settle_seconds=0)
    assert set(store._plan(w).days) == {day}
    assert store.usage_totals(pid, w) == want
    assert store.usage_summary(pid, "model", w) == [UsageGroup("netra-test-model-a", ref_totals([call], counted_only=True))]
    page = store.list_traces(pid, TraceQuery(window=w))
    assert [(t.total_cost, t.span_count, t.prompt_tokens) for t in page.items] == [(Decimal("0.25"), 2, 100)]


def test_a_rollup_is_only_used_for_whole_days_of_the_window(store: Store) -> None:
    pid = "p-edges"
    day = D0 + 20
    spans = [Span(i, i, 0, day * DAY + i * HOUR, 1, "t", usage=True, inp=1, cost=Decimal(i)) for i in range(24)]
    spans += [Span(100 + i, 100 + i, 0, (day + 1) * DAY + i * HOUR, 1, "t", usage=True, inp=1, cost=Decimal(i))
              for i in range(24)]
    insert(store, pid, spans)
    store.refresh_rollups(settle_seconds=0)
    # a window from 05:00 on the first day to 05:00 on the next: neither day is whole
    w = Window(day * DAY + 5 * HOUR, (day + 1) * DAY + 5 * HOUR)
    plan = store._plan(w)
    assert plan.days == {} and plan.raw == ((w.start_ns, w.end_ns),)
    assert store.usage_totals(pid, w).total_cost == sum(Decimal(i) for i in range(5, 24)) + sum(Decimal(i) for i in range(6))
    w2 = Window(day * DAY - 1, (day + 1) * DAY + 5 * HOUR)  # the first day whole, the second cut
    plan = store._plan(w2)
    assert set(plan.days) == {day} and plan.raw == (((day + 1) * DAY, w2.end_ns),)
    assert store.usage_totals(pid, w2).total_cost == sum(Decimal(i) for i in range(24)) + sum(Decimal(i) for i in range(6))


def test_superseded_rollups_are_deleted_after_the_grace_period(store: Store) -> None:
    pid = "p-gc"
    day = D0 + 30
    insert(store, pid, [Span(1, 1, 0, day * DAY + HOUR, 5, "t", usage=True, inp=3, cost=Decimal("1"))])
    store.refresh_rollups(settle_seconds=0)
    first = store._plan(Window(day * DAY, (day + 1) * DAY - 1)).days[day]
    insert(store, pid, [Span(2, 2, 0, day * DAY + 2 * HOUR, 5, "t", usage=True, inp=4, cost=Decimal("2"))])
    rollups.refresh(store, settle_seconds=0, gc_grace_seconds=3600)
    second = store._plan(Window(day * DAY, (day + 1) * DAY - 1)).days[day]
    assert second != first

    def ids() -> set[int]:
        return {int(r["rollup_id"]) for r in store.query(
            "SELECT DISTINCT rollup_id FROM netra_usage_daily WHERE project_id = 'p-gc'")}

    assert ids() == {first, second}  # within the grace period both stay (a query may still read the first)
    deadline = time.monotonic() + 60
    while first in ids() and time.monotonic() < deadline:
        rollups.refresh(store, settle_seconds=0, gc_grace_seconds=0)
        time.sleep(0.2)
    assert ids() == {second}
    assert store.usage_totals(pid, Window(day * DAY, (day + 1) * DAY - 1)).total_cost == Decimal("3")


def test_rollup_reads_use_server_side_parameters(store: Store) -> None:
    backend = Recording(store.backend)  # type: ignore[arg-type]
    s = Store(backend, threads=1)  # the same chDB folder (one per process), every statement recorded
    try:
        day = D0 + 40
        spans = [Span(1, 1, 0, day * DAY + HOUR, 5, NASTY, NASTY, NASTY, usage=True, inp=1, cost=Decimal("0.5")),
                 Span(1, 2, 0, day * DAY + 2 * HOUR, 5, NASTY, NASTY, NASTY, "netra-test-model-a", True, 2, 1, 0,
                      Decimal("0.25"))]
        s.insert_spans(rows("p1", spans))
        s.refresh_rollups(settle_seconds=0)
        backend.statements.clear()
        for w in (Window(day * DAY - 1, (day + 1) * DAY), Window(day * DAY + 1, (day + 1) * DAY)):  # rollup, raw
            assert s.usage_totals("p1", w, tenant_id=NASTY, user_id=NASTY, session_id=NASTY).request_count == 2
            for g in ("tenant", "model", "user", "session", "day"):
                assert s.usage_summary("p1", g, w, tenant_id=NASTY)  # type: ignore[arg-type]
            assert s.latency_stats("p1", w, tenant_id=NASTY, scope="all")[0].span_count == 2
            for sort in ("start_time", "cost"):
                page = s.list_traces("p1", TraceQuery(window=w, tenant_id=NASTY, user_id=NASTY, session_id=NASTY,
                                                      sort_field=sort, after=("4" + "0" * 18, NASTY)))  # type: ignore[arg-type]
                assert [t.span_count for t in page.items] == [2]
        assert any("netra_usage_daily" in sql for sql, _ in backend.statements)
        for sql, params in backend.statements:
            assert NASTY not in sql and "o'brien" not in sql, sql
            assert set(re.findall(r"\{(\w+):[^}]+\}", sql)) == set(params), (sql, params)
    finally:
        s._executor.shutdown()  # not s.close(): the backend is the module's store's
