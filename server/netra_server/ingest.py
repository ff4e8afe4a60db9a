"""Group commit: concurrent export requests share one INSERT; each is answered after it returned.

A request hands its rows to :meth:`GroupCommitter.submit` and waits. One writer task takes everything
pending (up to ``max_batch_spans``), writes it in one INSERT on a dedicated thread, then wakes every
request of the batch: with success once the INSERT returned (the rows are durable: chDB has written
its parts, a ClickHouse server acknowledged the insert), or with the store's error (the receiver then
answers 503 and the exporter retries; nothing acknowledged is ever dropped).

When more than ``max_pending_spans`` are waiting, :meth:`submit` refuses at once with
:class:`Overloaded` (429 + Retry-After) instead of queueing without bound.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from netra_server.store import Store

__all__ = ["GroupCommitter", "Overloaded"]

log = logging.getLogger("netra_server.ingest")


class Overloaded(Exception):
    """Too many spans are waiting to be written; retry after ``retry_after`` seconds."""

    def __init__(self, retry_after: int = 1) -> None:
        super().__init__(f"the server is busy writing; retry in {retry_after}s")
        self.retry_after = retry_after


@dataclass
class _Pending:
    data: bytes
    spans: int
    future: asyncio.Future[None] = field(repr=False)


class GroupCommitter:
    def __init__(
        self,
        store: Store,
        *,
        max_batch_spans: int = 100_000,
        max_pending_spans: int = 500_000,
        linger_seconds: float = 0.01,
        linger_spans: int = 8192,
    ) -> None:
        self.store = store
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
        self._stopping = False
        self.batches = 0
        self.spans_written = 0
        self._lock = threading.Lock()

    def start(self) -> None:
        self._wakeup = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="netra-group-commit")

    async def stop(self) -> None:
        """Write what is pending, then stop."""
        self._stopping = True
        if self._wakeup is not None:
            self._wakeup.set()
        if self._task is not None:
            await self._task
        self._writer.shutdown(wait=True)

    def decoding(self, delta: int) -> None:
        """Count a request that is being decoded (+1) and will :meth:`submit` soon, or is done (-1)."""
        self._decoding += delta
        if delta < 0 and self._wakeup is not None:
            self._wakeup.set()

    @property
    def pending_spans(self) -> int:
        return self._pending_spans

    async def submit(self, data: bytes, spans: int) -> None:
        """Write ``data`` (rows from build_rows) in the next group commit; returns when it is durable."""
        if spans == 0:
            return
        if self._stopping or self._wakeup is None:
            raise Overloaded(1)
        if self._pending_spans and self._pending_spans + spans > self.max_pending_spans:
            raise Overloaded(1)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(data, spans, fut))
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
                await self._linger(loop)
                batch: list[_Pending] = []
                n = 0
                while self._pending and (not batch or n + self._pending[0].spans <= self.max_batch_spans):
                    item = self._pending.pop(0)
                    batch.append(item)
                    n += item.spans
                data = b"".join(p.data for p in batch)
                try:
                    await loop.run_in_executor(self._writer, self.store.insert_spans, data)
                except Exception as exc:  # the store failed: every request of the batch is told
                    log.warning("group commit of %d spans failed: %s", n, exc)
                    for p in batch:
                        if not p.future.done():
                            p.future.set_exception(exc)
                else:
                    self.batches += 1
                    self.spans_written += n
                    for p in batch:
                        if not p.future.done():
                            p.future.set_result(None)
                finally:
                    self._pending_spans -= n
            if self._stopping:
                return

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
