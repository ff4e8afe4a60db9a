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
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
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
        self.backend.command(sql, params)

    def insert_json_rows(self, table: str, data: bytes) -> None:
        """Insert ``JSONEachRow`` bytes; returns once the rows are durable."""
        self.backend.insert_json_rows(table, data)

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

    def _usage_rows(self, window: Window, build: Callable[[rollups.Plan], tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
        """Rows of a usage read: ``build(plan)`` gives its statement and parameters. The read is planned
        and run again if the live usage table changed under it (a reset, a dropped day:
        ``LiveUsage.generation``); after three such changes it reads the spans alone."""
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
