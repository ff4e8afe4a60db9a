"""The store's plumbing, shared by its reads and writes (:class:`StoreBase`).

Statements run on the backend's per-thread connections; :meth:`StoreBase.run` runs a store method in
the store's worker threads for async code, with the read consistency the request asked for (a read
of ``netra_spans`` first waits for the ingest journal, unless it may be bounded-stale:
``netra_server.consistency``). Also here: whether and how a window is read from the daily rollups
(:meth:`StoreBase._plan`, ``netra_server.rollups``) and the conditions every span read starts from
(:meth:`StoreBase.span_filter`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ParamSpec, Protocol, TypeVar

from netra_server import billing, consistency, rollups
from netra_server.store import sql
from netra_server.store.backend import Backend, StoreError
from netra_server.store.records import Window

__all__ = ["ReadBarrier", "StoreBase"]

P = ParamSpec("P")
T = TypeVar("T")


class ReadBarrier(Protocol):
    """What the store needs of the ingest journal (``netra_server.journal.Journal``)."""

    @property
    def position(self) -> int: ...

    def flush_to(self, position: int) -> None: ...

    def inserted_as_of(self) -> float: ...


log = logging.getLogger("netra_server.store")

#: Usage answers kept by the read cache (the least recently stored go first), and the rows they may
#: hold together (a summary by session can have thousands: its memory stays bounded).
_USAGE_CACHE_ENTRIES = 256
_USAGE_CACHE_ROWS = 20_000
#: Usage reads remembered for computing ahead after an insert (``StoreBase._refresh_usage_reads``),
#: and how many of them at most are computed after one insert, each taking at most _REFRESH_SECONDS
#: when it was last computed.
_HOT_READS = 64
_REFRESHED = 8
_REFRESH_SECONDS = 0.05


@dataclass
class _Hot:
    """A usage read asked for lately: how to compute it, how often it was asked since it was computed."""

    window: Window
    build: Callable[[rollups.Plan], tuple[str, dict[str, Any]]]
    reads: int = 0
    last: float = 0.0
    #: seconds its last computation took (a slow read is not computed ahead: it would hold the inserts)
    took: float = 0.0


class StoreBase:
    """Statements on a backend, run in the store's threads with the read consistency asked for."""

    def __init__(self, backend: Backend, *, threads: int = 4, use_rollups: bool = True) -> None:
        self.backend = backend
        self._executor = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="netra-store")
        self._closed = False
        #: Read whole days from the daily rollups when they are valid (False: every read from the spans).
        self.use_rollups = use_rollups
        self._rollups_supported: bool | None = None
        #: The ingest journal (``netra_server.journal``), when there is one: a statement that names
        #: ``netra_spans`` first waits until the spans acknowledged before its read began are inserted.
        self.read_barrier: ReadBarrier | None = None
        #: What a read through :meth:`run` sees when its request does not say (``netra_server.consistency``):
        #: ``strong`` waits for the journal; ``bounded`` answers from what is inserted (at most
        #: ``max_read_staleness`` seconds behind the acknowledgements, else it waits too).
        self.read_consistency: str = consistency.STRONG
        self.max_read_staleness: float = 5.0
        self._reads = threading.local()
        #: Span identity and the billing rule on every insert of spans (``netra_server.billing``).
        self.span_index = billing.SpanIndex()
        #: Usage reads answered again from the last answer until a write ends, for at most this many
        #: seconds (the embedded store only; 0: off). See :meth:`_usage_rows`.
        self.usage_cache_seconds = 1.0
        self._writes_lock = threading.Lock()
        self._writes_started = 0
        self._writes_done = 0
        self._usage_cache: OrderedDict[Hashable, tuple[int, float, list[dict[str, Any]]]] = OrderedDict()
        #: ``(project_id, resource_id)`` of resources known to be in ``netra_resources`` (the most recent
        #: :data:`KNOWN_RESOURCES`; one forgotten is stored again, which is harmless).
        self._known_resources: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._resources_lock = threading.Lock()
        self._usage_cache_rows = 0
        self._hot: OrderedDict[Hashable, _Hot] = OrderedDict()

    @property
    def kind(self) -> str:
        return self.backend.kind

    # -- plumbing ------------------------------------------------------------------------------

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a store method in the store's worker threads (for async code). A strong read sees every
        span acknowledged before this call (one wait for the ingest journal, however many statements);
        a bounded one every span acknowledged before its ``as_of``, without waiting (see
        ``netra_server.consistency``; the request's choice, else :attr:`read_consistency`). The
        request's :class:`~netra_server.consistency.ReadContext` records what the read got."""
        loop = asyncio.get_running_loop()
        position, used, as_of = self._read_position()
        ctx = consistency.current()
        if ctx is not None:
            ctx.saw(used, as_of)
        return await loop.run_in_executor(self._executor, lambda: self._call(position, fn, args, kwargs))

    def _read_position(self) -> tuple[int | None, str, float]:
        """(the journal position a read waits for, the consistency it gets, its as_of)."""
        barrier = self.read_barrier
        now = time.time()
        if barrier is None:  # every acknowledged span is inserted already
            return None, consistency.STRONG, now
        ctx = consistency.current()
        wanted = (ctx.consistency if ctx is not None else None) or self.read_consistency
        if wanted == consistency.BOUNDED:
            as_of = barrier.inserted_as_of()
            if now - as_of <= self.max_read_staleness:
                return 0, consistency.BOUNDED, as_of  # position 0: no wait
        return barrier.position, consistency.STRONG, now

    def _call(self, position: int | None, fn: Callable[..., T], args: Any, kwargs: Any) -> T:
        self._reads.position = position
        try:
            return fn(*args, **kwargs)
        finally:
            self._reads.position = None

    def _before(self, sql: str) -> None:
        if "netra_spans" in sql or "netra_usage_live" in sql:
            self._wait_for_inserts()

    def _wait_for_inserts(self) -> None:
        """Return once the spans this read must see are inserted (none to wait for: a bounded read)."""
        barrier = self.read_barrier
        if barrier is not None:
            position = getattr(self._reads, "position", None)
            if position == 0:  # a bounded read (run): no wait
                return
            barrier.flush_to(barrier.position if position is None else position)

    def flush_ingest(self) -> None:
        """Return once every span acknowledged so far is in the store (the ingest journal's)."""
        barrier = self.read_barrier
        if barrier is not None:
            barrier.flush_to(barrier.position)

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run a SELECT; rows as dicts (Decimals as strings, integers as ints)."""
        self._before(sql)
        return self.backend.query(sql, params)

    def command(self, sql: str, params: dict[str, Any] | None = None) -> None:
        self._before(sql)
        with self._writing():
            self.backend.command(sql, params)

    def insert_json_rows(self, table: str, data: bytes) -> None:
        """Insert ``JSONEachRow`` bytes; returns once the rows are durable."""
        with self._writing():
            self.backend.insert_json_rows(table, data)

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """Around every write through the store (span inserts, commands): what the usage read cache
        (:meth:`_usage_rows`) knows of the data changing."""
        with self._writes_lock:
            self._writes_started += 1
        try:
            yield
        finally:
            with self._writes_lock:
                self._writes_done += 1

    def start_trace_filter(self) -> threading.Thread | None:
        """On the embedded store (this process is its one writer), load the span index's trace filter in
        the background (``netra_server.trace_filter.TraceFilter``): spans of fresh traces then skip the index
        lookup. A ClickHouse server may have other writers: there every lookup asks it (None)."""
        if self.kind != "chdb":
            return None
        return self.span_index.start_trace_filter(self, closed=lambda: self._closed)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._executor.shutdown(wait=True, cancel_futures=False)
        self.backend.close()

    # -- rollups -----------------------------------------------------------------------------------

    def rollups_supported(self) -> bool:
        """Whether ``netra_spans`` is partitioned by day in this store (so rollups can be used)."""
        if self._rollups_supported is None:
            try:
                self._rollups_supported = rollups.supported(self)
            except StoreError:
                return False
        return self._rollups_supported

    def _plan(self, window: Window, *, live: bool = False) -> rollups.Plan:
        """How to read ``window``; ``live``: a usage read, which may take whole minutes of what is not
        rolled up from the live usage table (``netra_server.live_usage``) while it is kept. Planned once
        the inserts the read must see are done: the days they created, the live table's state."""
        self._wait_for_inserts()
        if not self.rollups_supported():
            return rollups.Plan.all_raw(window.start_ns, window.end_ns)
        table = self.span_index.live
        region = table.region() if live and table is not None and self.use_rollups else None
        return rollups.plan(self, window.start_ns, window.end_ns, use_rollups=self.use_rollups, live=region)

    def _usage_rows(self, window: Window, build: Callable[[rollups.Plan], tuple[str, dict[str, Any]]],
                    key: Hashable = None) -> list[dict[str, Any]]:
        """Rows of a usage read: ``build(plan)`` gives its statement and parameters. The read is planned
        and run again if the live usage table changed under it (a reset, a dropped day:
        ``LiveUsage.generation``); after three such changes it reads the spans alone.

        ``key`` (the read and its arguments): on the embedded store (this process is the one writer),
        the rows are kept until a write through the store ends, for at most
        :attr:`usage_cache_seconds`, and a read with the same key answers from them. They are kept only
        when no write ran while they were computed, so they are the store's state after the last write
        that ended: what a strong read waits for is in it (it waited before), and a bounded read's
        ``data_as_of`` (when the last insert took its spans) describes it. A dashboard or billing job
        polling during heavy ingest then costs one computation per insert, not one per read."""
        if key is None or not self._usage_cache_on:
            return self._usage_rows_uncached(window, build)
        self._wait_for_inserts()  # what this read must see is written before the cache is looked at
        now = time.monotonic()
        with self._writes_lock:
            hot = self._hot.get(key)
            if hot is None:
                self._hot[key] = hot = _Hot(window, build)
                while len(self._hot) > _HOT_READS:
                    self._hot.popitem(last=False)
            self._hot.move_to_end(key)
            hot.reads += 1
            hot.last = now
            hit = self._usage_cache.get(key)
            if hit is not None and hit[0] == self._writes_done and now - hit[1] < self.usage_cache_seconds:
                return hit[2]
        return self._keep_usage_rows(key, window, build)

    @property
    def _usage_cache_on(self) -> bool:
        """Whether usage answers are kept: on the embedded store (this process is its one writer)."""
        return self.usage_cache_seconds > 0 and self.kind == "chdb"

    def _keep_usage_rows(self, key: Hashable, window: Window,
                         build: Callable[[rollups.Plan], tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
        """Compute a usage read; keep it when no write ran while it was computed."""
        now = time.monotonic()
        with self._writes_lock:
            done, clean = self._writes_done, self._writes_started == self._writes_done
        rows = self._usage_rows_uncached(window, build)
        with self._writes_lock:
            hot = self._hot.get(key)
            if hot is not None:
                hot.took = time.monotonic() - now
            if clean and self._writes_started == self._writes_done == done:  # no write ran meanwhile
                old = self._usage_cache.pop(key, None)
                if old is not None:
                    self._usage_cache_rows -= len(old[2])
                if len(rows) <= _USAGE_CACHE_ROWS // 4:  # a larger answer is not kept
                    self._usage_cache[key] = (done, now, rows)
                    self._usage_cache_rows += len(rows)
                while len(self._usage_cache) > _USAGE_CACHE_ENTRIES or self._usage_cache_rows > _USAGE_CACHE_ROWS:
                    self._usage_cache_rows -= len(self._usage_cache.popitem(last=False)[1][2])
        return rows

    def _refresh_usage_reads(self) -> None:
        """After a span insert (on the inserting thread, before it inserts anything else): compute again
        the usage reads asked for at least twice since their last computation and lately (at most
        :data:`_REFRESHED` of them, each of which took at most :data:`_REFRESH_SECONDS` last time: a
        slow one would hold the inserts back), so the next reads of a polling dashboard or billing job
        answer at once. Never more computations than those reads would have run; a failure only leaves
        them to the reads."""
        if not self._hot or not self._usage_cache_on:
            return
        now = time.monotonic()
        with self._writes_lock:
            picks = [(k, h) for k, h in reversed(self._hot.items())
                     if h.reads >= 2 and now - h.last < 2 * self.usage_cache_seconds
                     and h.took <= _REFRESH_SECONDS][:_REFRESHED]
            for _, h in picks:
                h.reads = 0
        saved = getattr(self._reads, "position", None)
        self._reads.position = 0  # what was inserted so far, no wait (this thread may be the journal's flush)
        try:
            for k, h in picks:
                if time.monotonic() - now > 2 * _REFRESH_SECONDS:  # the inserts wait meanwhile: the rest is left to the reads
                    h.reads = 2
                    continue
                self._keep_usage_rows(k, h.window, h.build)
        except Exception as exc:
            log.debug("usage reads not computed ahead: %s", exc)
        finally:
            self._reads.position = saved

    def _usage_rows_uncached(self, window: Window, build: Callable[[rollups.Plan], tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
        for _ in range(3):
            plan = self._plan(window, live=True)
            statement, params = build(plan)
            rows = self.query(statement, params)
            if plan.region is None or plan.region.current:
                return rows
        statement, params = build(self._plan(window))
        return self.query(statement, params)

    # -- conditions of span reads ------------------------------------------------------------------

    @staticmethod
    def _filters(
        project_id: str,
        *,
        tenant_id: str | None = None,
        session_id: str | None = None,
        user_id: str | None = None,
        trace_id: str | None = None,
    ) -> tuple[list[str], dict[str, Any]]:
        """Conditions on columns that ``netra_spans`` and the rollup tables share (``trace_id``: not
        ``netra_usage_daily``)."""
        parts = ["project_id = {w_project:String}"]
        params: dict[str, Any] = {"w_project": project_id}
        for column, name, value in (("tenant_id", "w_tenant", tenant_id), ("session_id", "w_session", session_id),
                                    ("user_id", "w_user", user_id), ("trace_id", "w_trace", trace_id)):
            if value is not None:
                parts.append(f"{column} = {{{name}:String}}")
                params[name] = value
        return parts, params

    @staticmethod
    def span_filter(
        project_id: str,
        window: Window | None = None,
        *,
        tenant_id: str | None = None,
        session_id: str | None = None,
        user_id: str | None = None,
        trace_id: str | None = None,
        extra: Iterable[str] = (),
    ) -> tuple[str, dict[str, Any]]:
        """The WHERE condition (without ``WHERE``) and its parameters for a read of ``netra_spans``:
        the project, the window on span start, the given ids, and the ``extra`` SQL conditions (ANDed).
        Parameter names start with ``w_``: the caller's own must not."""
        parts, params = StoreBase._filters(
            project_id, tenant_id=tenant_id, session_id=session_id, user_id=user_id, trace_id=trace_id
        )
        if window is not None:
            parts.append(sql.WINDOW_SQL)
            params.update(window.params())
        parts.extend(extra)
        return " AND ".join(parts), params
