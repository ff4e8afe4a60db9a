"""The usage read cache (``StoreBase._usage_rows``): while no write through the store begins or ends, a
usage read with the same arguments answers from the last answer instead of querying again. These tests
try to make it answer something the store would not: writes between reads, a write running while the
answer was computed, a strong read of spans still in the ingest journal, expiry, other arguments."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from netra_server.config import Limits
from netra_server.journal import Journal
from netra_server.otlp import build_rows
from netra_server.schema import SPAN_COLUMNS
from netra_server.store import ChdbBackend, Store, Window

from ._helpers import SEC, T0
from .test_live_usage import SINCE, _req, _uncached


class _Counting(ChdbBackend):
    """The real backend; counts the usage statements it runs, and runs ``hook`` once inside the next."""

    usage_queries = 0
    hook: Any = None

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        if "u_request_count" in sql:
            self.usage_queries += 1
            if self.hook is not None:
                hook, self.hook = self.hook, None
                hook()
        return super().query(sql, params)


@pytest.fixture(autouse=True)
def _any_read_is_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reads are computed ahead only when fast: here whatever they take (no timing in these tests)."""
    import netra_server.store.base as base

    monkeypatch.setattr(base, "_REFRESH_SECONDS", 3600.0)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(_Counting(str(tmp_path / "store")))
    s.migrate()
    assert s.start_live_usage(since_ns=SINCE)
    yield s
    s.close()


def _insert(store: Store, trace: int, cost: str, start: int = T0) -> None:
    batch = build_rows(_req([{"trace": trace, "span": 1, "start": start, "cost": cost}]), "p", Limits(), T0 // 1_000_000)
    store.insert_spans(batch.data, batch.keys)


def _queries(store: Store) -> int:
    backend = store.backend
    assert isinstance(backend, _Counting)
    return backend.usage_queries


def test_a_read_repeated_without_a_write_does_not_query_again_and_a_write_invalidates_it(store: Store) -> None:
    _insert(store, 1, "1.5")
    first = store.usage_totals("p", Window(), tenant_id="acme")
    n = _queries(store)
    assert store.usage_totals("p", Window(), tenant_id="acme") == first and _queries(store) == n
    # other arguments are other reads
    assert store.usage_totals("p", Window(), tenant_id="globex").request_count == 0 and _queries(store) == n + 1
    by_tenant = store.usage_summary("p", "tenant", Window())
    assert store.usage_summary("p", "tenant", Window()) == by_tenant and _queries(store) == n + 2
    # a span arrives: the reads asked for twice are computed again right after the insert (ahead of
    # the next read), the one asked for once is not; each sees the span
    _insert(store, 2, "2.25", T0 + SEC)
    assert _queries(store) == n + 4
    t = store.usage_totals("p", Window(), tenant_id="acme")
    assert str(t.total_cost) == "3.75" and _queries(store) == n + 4
    assert store.usage_totals("p", Window(), tenant_id="globex").request_count == 0 and _queries(store) == n + 5
    assert t == _uncached(store, lambda: store.usage_totals("p", Window(), tenant_id="acme"))
    assert store.usage_summary("p", "tenant", Window()) == _uncached(store, lambda: store.usage_summary("p", "tenant", Window()))
    # any write through the store counts, not only span inserts (a statement may change what is read)
    n = _queries(store)
    store.set_meta("anything", "1")
    store.usage_totals("p", Window(), tenant_id="acme")
    assert _queries(store) == n + 1


def test_an_answer_computed_while_a_write_ran_is_not_kept(store: Store) -> None:
    _insert(store, 1, "1")
    backend = store.backend
    assert isinstance(backend, _Counting)
    backend.hook = lambda: _insert(store, 2, "10", T0 + SEC)  # lands while the read is computed
    store.usage_totals("p", Window())
    assert backend.hook is None, "the hook did not run"
    n = _queries(store)
    t = store.usage_totals("p", Window())  # computed again, not the answer from before the write
    assert str(t.total_cost) == "11" and _queries(store) == n + 1
    assert store.usage_totals("p", Window()) == t and _queries(store) == n + 1  # this one is kept


def test_a_strong_read_sees_spans_acknowledged_after_the_answer_was_kept(store: Store, tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal", store.insert_spans)
    store.read_barrier = journal
    try:
        _insert(store, 1, "1")
        assert str(store.usage_totals("p", Window()).total_cost) == "1"
        batch = build_rows(_req([{"trace": 2, "span": 1, "start": T0 + SEC, "cost": "4"}]), "p", Limits(), T0 // 1_000_000)
        journal.append(batch.data, 1, batch.keys)  # acknowledged, still in the journal
        assert str(store.usage_totals("p", Window()).total_cost) == "5"
    finally:
        store.read_barrier = None
        journal.close()


def test_a_kept_answer_expires(store: Store) -> None:
    store.usage_cache_seconds = 0.05
    _insert(store, 1, "1")
    store.usage_totals("p", Window())
    n = _queries(store)
    time.sleep(0.1)
    store.usage_totals("p", Window())
    assert _queries(store) == n + 1


def test_an_answer_computed_inside_a_running_write_is_not_kept(store: Store) -> None:
    """A write that began before the read and ends after it: what the read saw may be half of it."""
    _insert(store, 1, "1")
    with store._writing():  # a write has begun (e.g. an insert's first statements)
        assert str(store.usage_totals("p", Window()).total_cost) == "1"
        batch = build_rows(_req([{"trace": 2, "span": 1, "start": T0 + SEC, "cost": "10"}]), "p", Limits(), T0 // 1_000_000)
        store.span_index.insert(store.backend, batch.data, batch.keys, lambda data, comment="": store.backend.insert_rows(
            "netra_spans", SPAN_COLUMNS, data, "JSONCompactEachRow", comment=comment))  # the rest of it
        assert str(store.usage_totals("p", Window()).total_cost) == "11"


def test_reads_computed_ahead_inside_a_journal_flush_do_not_wait_for_it(store: Store, tmp_path: Path) -> None:
    """The journal's flush inserts on its thread and holds its lock: the reads computed after that
    insert must not wait for the journal (a deadlock), and the next read answers from them."""
    journal = Journal(tmp_path / "journal", store.insert_spans)
    store.read_barrier = journal
    try:
        _insert(store, 1, "1")
        for _ in range(2):
            store.usage_totals("p", Window())
        batch = build_rows(_req([{"trace": 2, "span": 1, "start": T0 + SEC, "cost": "4"}]), "p", Limits(), T0 // 1_000_000)
        journal.append(batch.data, 1, batch.keys)
        flushing = threading.Thread(target=journal.flush, daemon=True)
        flushing.start()
        flushing.join(60)
        assert not flushing.is_alive(), "the journal's flush hangs"
        n = _queries(store)
        assert str(store.usage_totals("p", Window()).total_cost) == "5" and _queries(store) == n
    finally:
        store.read_barrier = None
        journal.close()


def test_a_slow_read_is_not_computed_ahead(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Computing ahead runs on the inserting thread: a read slower than the bound is left to its readers."""
    import netra_server.store.base as base

    monkeypatch.setattr(base, "_REFRESH_SECONDS", 0.0)  # every read is "slow"
    _insert(store, 1, "1")
    for _ in range(2):
        store.usage_totals("p", Window())
    n = _queries(store)
    _insert(store, 2, "2", T0 + SEC)
    assert _queries(store) == n  # not computed after the insert
    assert str(store.usage_totals("p", Window()).total_cost) == "3" and _queries(store) == n + 1


def test_the_answers_kept_hold_a_bounded_number_of_rows(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    import netra_server.store.base as base

    monkeypatch.setattr(base, "_USAGE_CACHE_ROWS", 8)  # answers of at most 2 rows are kept, 8 rows in all
    batch = build_rows(_req([{"trace": t, "span": 1, "start": T0 + t, "cost": "1", "session": f"s{t}"} for t in range(1, 6)]),
                       "p", Limits(), T0 // 1_000_000)
    store.insert_spans(batch.data, batch.keys)
    store.usage_summary("p", "session", Window())  # 5 rows: not kept
    n = _queries(store)
    store.usage_summary("p", "session", Window())
    assert _queries(store) == n + 1
    for tenant in ("a", "b", "c", "d", "e", "f", "g", "h", "i", "j"):  # one row each: the oldest go
        store.usage_totals("p", Window(), tenant_id=tenant)
    assert store._usage_cache_rows <= 8 and len(store._usage_cache) <= 8
    n = _queries(store)
    store.usage_totals("p", Window(), tenant_id="j")  # the latest is still kept
    assert _queries(store) == n
