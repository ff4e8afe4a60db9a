"""Group commit: concurrent export requests share one INSERT; each is answered after it returned.

A request hands its rows to :meth:`GroupCommitter.submit` and waits. One writer task takes everything
pending (up to ``max_batch_spans``), writes it in one INSERT on a dedicated thread, then wakes every
request of the batch: with success once the INSERT returned (the rows are durable: chDB has written
its parts, a ClickHouse server acknowledged the insert), or with the store's error (the receiver then
answers 503 and the exporter retries; nothing acknowledged is ever dropped).

With an ingest journal (``netra_server.journal``, the embedded chDB store), "written" means appended
to the journal: the writer appends each group with one write and answers its requests, and a flusher
task inserts the journal into the store in large INSERTs (every ``flush_seconds``, or at once past
``flush_spans``), retrying with a back-off when the store fails.

Back-pressure: a request is *admitted* (:meth:`admit`, before the receiver reads and decodes its body)
only while fewer than ``max_pending_spans`` spans wait (to be written, or in the journal and not yet in
the store) and, with a journal, while the store is at most ``max_lag_seconds`` behind the spans
acknowledged (``Journal.lag``). Past either bound the request is held, its body unread (the client's
bytes wait in the socket), until the store catches up, for at most ``admit_wait_seconds``; then, or at
once when ``max_waiting`` requests are held already, it is refused with :class:`Overloaded` (429 +
Retry-After). So spans arriving faster than the store inserts them wait in the exporters rather than
in the journal, a bounded read stays within its staleness bound and never waits for a backlog, and a
short overload slows exporters down instead of costing each refused request a retry a second later
(and its body sent and decoded again). :meth:`submit` still refuses past ``max_pending_spans`` (the
memory bound: requests admitted together may all be decoded at once).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from netra_server.billing import SpanKey
from netra_server.journal import Journal
from netra_server.store import Store, StoreError

__all__ = ["GroupCommitter", "Overloaded", "StoreFailing"]

log = logging.getLogger("netra_server.ingest")


class Overloaded(Exception):
    """Too many spans are waiting to be written; retry after ``retry_after`` seconds."""

    def __init__(self, retry_after: int = 1, why: str = "the server is busy writing") -> None:
        super().__init__(f"{why}; retry in {retry_after}s")
        self.retry_after = retry_after


class StoreFailing(StoreError):
    """The last INSERT of journaled spans failed (disk full, a folder that cannot be written): new
    spans are refused (503 + Retry-After) until an INSERT succeeds again; the journal keeps the rows."""


@dataclass
class _Pending:
    data: bytes
    spans: int
    future: asyncio.Future[None] = field(repr=False)
    keys: list[SpanKey] | None = field(default=None, repr=False)
    resources: dict[tuple[str, str], bytes] | None = field(default=None, repr=False)


class GroupCommitter:
    def __init__(
        self,
        store: Store,
        *,
        max_batch_spans: int = 100_000,
        max_pending_spans: int = 500_000,
        linger_seconds: float = 0.01,
        linger_spans: int = 8192,
        journal: Journal | None = None,
        flush_seconds: float = 1.0,
        flush_spans: int = 50_000,
        max_lag_seconds: float | None = None,
        admit_wait_seconds: float = 2.0,
        max_waiting: int = 64,
    ) -> None:
        self.store = store
        self.journal = journal
        #: With a journal: insert what it holds once its oldest rows are this old, or at once past
        #: ``flush_spans`` rows.
        self.flush_seconds = flush_seconds
        self.flush_spans = flush_spans
        #: With a journal: refuse new spans while the store is more than this many seconds behind.
        self.max_lag_seconds = max_lag_seconds
        #: How long :meth:`admit` holds a request while the store is behind (0: refuse at once), and
        #: how many it holds at most.
        self.admit_wait_seconds = admit_wait_seconds
        self.max_waiting = max_waiting
        self.waiting = 0
        #: Set when spans leave the pending count (a group written, a journal flush done): what held
        #: requests wait for.
        self._progress: asyncio.Event | None = None
        #: While requests are being decoded (:meth:`incoming`), the writer waits up to this long for
        #: them before an INSERT of fewer than ``linger_spans`` spans: every INSERT has a fixed cost
        #: (a new part, its merge later), so fewer, larger ones write more spans per second.
        self.linger_seconds = linger_seconds
        self.linger_spans = linger_spans
        self._decoding = 0
        self.max_batch_spans = max_batch_spans
        self.max_pending_spans = max_pending_spans
        self._pending: list[_Pending] = []
        self._pending_spans = 0
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="netra-writer")
        self._flusher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="netra-flusher")
        self._flush_wakeup: asyncio.Event | None = None
        self._flush_task: asyncio.Task[None] | None = None
        self._stopping = False
        self.batches = 0
        self.spans_written = 0
        self._lock = threading.Lock()
        #: The store's error while INSERTs fail (logged once, cleared by the next INSERT that succeeds).
        self.store_error: str | None = None
        self._journal_failing = False

    def _store_failed(self, exc: BaseException, spans: int, what: str) -> None:
        if self.store_error is None:
            log.error("%s %d span(s) into the store failed; they are kept (nothing acknowledged is dropped) and "
                      "new spans get 503 until an insert succeeds: %s", what, spans, exc)
        self.store_error = str(exc) or type(exc).__name__

    def _store_ok(self) -> None:
        if self.store_error is not None:
            self.store_error = None
            log.warning("the store accepts inserts again: ingest resumed")

    def start(self) -> None:
        self._wakeup = asyncio.Event()
        self._progress = asyncio.Event()
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._run(), name="netra-group-commit")
        if self.journal is not None:
            self._flush_wakeup = asyncio.Event()
            self._flush_task = loop.create_task(self._flush_loop(), name="netra-journal-flush")

    async def stop(self) -> None:
        """Write what is pending (and insert what the journal holds), then stop."""
        self._stopping = True
        self._progressed()  # held requests are refused now
        if self._wakeup is not None:
            self._wakeup.set()
        if self._task is not None:
            await self._task
        self._writer.shutdown(wait=True)
        if self._flush_task is not None:
            self._flush_task.cancel()
            try:
                await self._flush_task
            except asyncio.CancelledError:
                pass
        if self.journal is not None:
            try:  # left on disk if the store fails now: the next start inserts it
                await asyncio.get_running_loop().run_in_executor(self._flusher, self.journal.close)
            except Exception as exc:
                log.warning("the ingest journal could not be inserted at shutdown (kept for the next start): %s", exc)
        self._flusher.shutdown(wait=True)

    def decoding(self, delta: int) -> None:
        """Count a request that is being decoded (+1) and will :meth:`submit` soon, or is done (-1)."""
        self._decoding += delta
        if delta < 0 and self._wakeup is not None:
            self._wakeup.set()

    @property
    def pending_spans(self) -> int:
        """Spans accepted and not yet in the store (waiting to be written, or in the journal)."""
        journal = self.journal
        return self._pending_spans + (journal.unflushed_spans if journal is not None else 0)

    @property
    def failing(self) -> bool:
        """The journal's last INSERT failed: new spans are refused (503) until one succeeds."""
        return self.store_error is not None and self.journal is not None

    def _check_store(self) -> None:
        if self.failing:
            raise StoreFailing(f"the store cannot insert what the ingest journal holds ({self.store_error})")

    def _behind(self) -> str | None:
        """Why a new request would have to wait now, or None."""
        if self._stopping or self._wakeup is None:
            return "the server is stopping"
        if self.pending_spans >= self.max_pending_spans:
            return f"{self.pending_spans} spans are waiting to be written"
        journal = self.journal
        if journal is not None and self.max_lag_seconds is not None:
            lag = journal.lag()
            if lag > self.max_lag_seconds:
                return f"the store is {lag:.1f}s behind the spans acknowledged"
        return None

    async def admit(self) -> None:
        """Return once a new request may be decoded and submitted: at once unless the store is behind
        (see the module doc), else when it has caught up; raise :class:`Overloaded` if it has not
        within ``admit_wait_seconds`` (or too many requests wait already). While the store refuses
        inserts it returns at once: :meth:`submit` (and the receiver before it) answers those with 503."""
        if self.failing:
            return
        why = self._behind()
        if why is None:
            return
        if self._stopping or self.admit_wait_seconds <= 0 or self.waiting >= self.max_waiting:
            raise Overloaded(1, why)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.admit_wait_seconds
        self.waiting += 1
        try:
            while why is not None:
                left = deadline - loop.time()
                if left <= 0 or self._stopping or self._progress is None:
                    raise Overloaded(1, why)
                self._progress.clear()
                try:  # woken by progress; the lag also shrinks with time alone: look again every 50 ms
                    await asyncio.wait_for(self._progress.wait(), min(left, 0.05))
                except TimeoutError:
                    pass
                if self.failing:
                    return
                why = self._behind()
        finally:
            self.waiting -= 1

    def _progressed(self) -> None:
        if self._progress is not None:
            self._progress.set()

    async def submit(self, data: bytes, spans: int, keys: list[SpanKey] | None = None,
                     resources: dict[tuple[str, str], bytes] | None = None) -> None:
        """Write ``data`` (rows from build_rows; ``keys``, ``resources``: their ``IngestBatch.keys`` and
        ``IngestBatch.resources``) in the next group commit; returns when it is durable (the resources
        the rows name are stored first)."""
        if spans == 0:
            return
        if self._stopping or self._wakeup is None:
            raise Overloaded(1)
        self._check_store()
        pending = self.pending_spans
        if pending and pending + spans > self.max_pending_spans:
            raise Overloaded(1)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(data, spans, fut, keys if keys and len(keys) == spans else None, resources or None))
        self._pending_spans += spans
        self._wakeup.set()
        await asyncio.shield(fut)

    async def _run(self) -> None:
        assert self._wakeup is not None
        loop = asyncio.get_running_loop()
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                if self.journal is None:  # a journal append is cheap: no reason to wait for more
                    await self._linger(loop)
                batch: list[_Pending] = []
                n = 0
                while self._pending and (not batch or n + self._pending[0].spans <= self.max_batch_spans):
                    item = self._pending.pop(0)
                    batch.append(item)
                    n += item.spans
                data = b"".join(p.data for p in batch)
                keys: list[SpanKey] | None = None
                if all(p.keys is not None for p in batch):
                    keys = [k for p in batch for k in p.keys or ()]
                resources: dict[tuple[str, str], bytes] = {}
                for p in batch:
                    if p.resources:
                        resources.update(p.resources)
                try:
                    await loop.run_in_executor(self._writer, self._write, data, n, keys, resources)
                except Exception as exc:  # the store failed: every request of the batch is told
                    if self.journal is None:
                        self._store_failed(exc, n, "inserting a group commit of")
                    elif not self._journal_failing:  # once per outage (each request gets its 503)
                        self._journal_failing = True
                        log.error("writing %d span(s) (the resources they name into the store, then the rows into "
                                  "the ingest journal) failed (answered 503; logged once until a write succeeds): %s", n, exc)
                    for p in batch:
                        if not p.future.done():
                            p.future.set_exception(exc)
                else:
                    if self.journal is None:
                        self._store_ok()
                    elif self._journal_failing:
                        self._journal_failing = False
                        log.warning("the ingest journal accepts writes again")
                    self.batches += 1
                    self.spans_written += n
                    for p in batch:
                        if not p.future.done():
                            p.future.set_result(None)
                finally:
                    self._pending_spans -= n
                    self._progressed()
                    if self._flush_wakeup is not None:
                        self._flush_wakeup.set()
            if self._stopping:
                return

    def _write(self, data: bytes, spans: int, keys: list[SpanKey] | None, resources: dict[tuple[str, str], bytes]) -> None:
        """One group commit, in the writer thread: the resources its rows name into the store, then the
        rows into the journal (or the store)."""
        self.store.store_resources(resources)
        if self.journal is not None:
            self.journal.append(data, spans, keys)
        else:
            self.store.insert_spans(data, keys)

    async def _flush_loop(self) -> None:
        """Insert the journal into the store: once its oldest rows are ``flush_seconds`` old less the
        time the last insert took (so they are in the store about ``flush_seconds`` after they were
        acknowledged even when the inserts are slow: under load the store would otherwise fall behind
        by the wait plus the insert, and answer 429), at once past ``flush_spans`` rows; after a store
        error, again after a back-off (0.5 s doubling to 5 s)."""
        journal = self.journal
        assert journal is not None and self._flush_wakeup is not None
        loop = asyncio.get_running_loop()
        backoff = 0.0
        took = 0.0  # seconds the last insert took
        while True:
            await self._flush_wakeup.wait()
            self._flush_wakeup.clear()
            while journal.buffered_spans:
                if backoff:
                    await asyncio.sleep(backoff)
                elif journal.buffered_spans < self.flush_spans:
                    wait = self.flush_seconds - took - journal.oldest_age()
                    if wait > 0:  # until the time comes, or more rows arrive (then check again)
                        self._flush_wakeup.clear()
                        try:
                            await asyncio.wait_for(self._flush_wakeup.wait(), wait)
                        except TimeoutError:
                            pass
                        continue
                try:
                    began = time.monotonic()
                    await loop.run_in_executor(self._flusher, journal.flush)
                    took = min(time.monotonic() - began, self.flush_seconds)
                    backoff = 0.0
                    self._store_ok()
                    self._progressed()
                except Exception as exc:
                    backoff = min(5.0, max(0.5, backoff * 2))
                    self._store_failed(exc, journal.buffered_spans, "inserting journaled")
                    log.debug("journal flush failed, retrying in %.0fs: %s", backoff, exc)
            if not journal.buffered_spans:  # (a read's flush may have inserted them)
                backoff = 0.0
                self._store_ok()

    async def _linger(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wait (briefly) for requests being decoded, so they join this INSERT."""
        assert self._wakeup is not None
        deadline = loop.time() + self.linger_seconds
        while self._decoding > 0 and self._pending_spans < self.linger_spans and not self._stopping:
            left = deadline - loop.time()
            if left <= 0:
                return
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), left)
            except TimeoutError:
                return
