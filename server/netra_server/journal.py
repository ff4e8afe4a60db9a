"""The ingest journal of the embedded store: acknowledged spans are appended to a file, then inserted
into chDB in large batches.

Why: every INSERT into a MergeTree table makes a new part, and background merges rewrite small parts
again and again. With exporters that each wait for their answer before sending the next batch, a
group commit can only join the requests in flight (four 512-span requests make a 2,048-row INSERT),
and at that size chDB spends about twice the CPU per span (insert plus merges) that it spends on
30,000-row INSERTs (``bench/bench_server.py``; docs/benchmarks.md). The journal decouples the two:
a request is answered once its rows are in the journal, and the rows reach the store in one INSERT
per second or per ``flush_spans`` rows.

Guarantees:

- **Nothing acknowledged is lost.** :meth:`Journal.append` writes the rows to the current segment file
  (one ``write`` per group commit) before the receiver answers. That is the guarantee a chDB INSERT
  gives (its parts are written, not fsynced): the rows survive the process being killed; with
  ``fsync=True`` they also survive the machine losing power. At start, :meth:`Journal.recover`
  inserts every segment left by a previous process (a torn last line, from a write cut short by a
  kill, belongs to a request that was never answered and is dropped). A segment is deleted only
  after its rows were inserted; a crash in between inserts them again at the next start, and the
  store counts a span delivered twice once (``ReplacingMergeTree`` + ``FINAL``).
- **Reads see every acknowledged span, or say how old their data is.** A strong store read
  (``Store.run``, one API request; ``netra_server.consistency``) notes the journal's
  :attr:`Journal.position` when it starts, and its first statement that reads ``netra_spans`` waits
  until everything appended before that position is in the store (:meth:`Journal.flush_to`: no wait
  if it is, the running flush if that covers it, else one flush): under heavy ingest it waits for an
  INSERT. A bounded read (the server's default) does not wait: it answers from what is inserted and
  states :meth:`Journal.inserted_as_of` (every span appended before that time is in the store), unless
  that is older than the server's ``max_read_staleness``; then it waits as a strong read does.
- **Bounded.** Rows not yet inserted stay on disk (in the segment files; in memory only their sizes
  and span keys) until a flush succeeds; a flush reads them back one INSERT of at most
  ``MAX_INSERT_BYTES`` at a time, so the journal's memory does not grow with a backlog. The receiver
  counts them against ``max_pending_spans`` and answers 429 above it. A failed INSERT is retried (the
  caller's loop backs off); the rows stay.

Only for the embedded chDB store: with a ClickHouse server every ``netra serve`` process is stateless
and answers after the INSERT (a plain group commit).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from netra_server.billing import SpanKey
from netra_server.store import StoreError

__all__ = ["Journal", "JournalError"]

log = logging.getLogger("netra_server.journal")

_PREFIX = "segment-"
_SUFFIX = ".jsonl"
#: Largest INSERT a flush or a recovery sends at once (bytes of rows): chDB parses a whole INSERT in
#: memory, so this bounds its working set; 16 MiB is about 16,000 spans, as cheap per span as larger ones.
MAX_INSERT_BYTES = 16 * 1024 * 1024


def _read_chunks(
    parts: list[tuple[Path, int]], keys: list[list[SpanKey] | None], limit: int = MAX_INSERT_BYTES
) -> Iterator[tuple[bytes, list[SpanKey] | None, int]]:
    """The rows of ``parts`` (per append: its segment file and its size, in order; each segment holds
    its appends one after the other from its start), read back from the files in pieces of at most
    ``limit`` bytes (a larger append stays whole), with their keys (None for a piece with an append
    without keys) and the number of appends read up to the end of the piece. Only one piece is in
    memory at a time. The appends of a piece that lie in one file are read with one ``read``, so the
    usual piece (one segment) is that read's bytes, not a copy joined from per-append reads."""
    group: list[bytes] = []
    group_keys: list[SpanKey] | None = []
    size = read = 0
    run = 0  # bytes of the current file's appends that belong to the piece and are not read yet
    f: BinaryIO | None = None
    current: Path | None = None

    def take_run() -> None:
        nonlocal run
        if run:
            assert f is not None
            data = f.read(run)
            if len(data) != run:
                raise OSError(f"the ingest journal {current} is shorter than what was appended to it")
            group.append(data)
            run = 0

    def piece() -> bytes:
        return group[0] if len(group) == 1 else b"".join(group)

    try:
        for (path, n), part_keys in zip(parts, keys, strict=True):
            if path != current:
                take_run()
                if f is not None:
                    f.close()
                f, current = open(path, "rb"), path
            if size and size + n > limit:
                take_run()
                yield piece(), group_keys, read
                group, group_keys, size = [], [], 0
            read += 1
            run += n
            if group_keys is not None and part_keys is not None:
                group_keys.extend(part_keys)
            else:
                group_keys = None
            size += n
        take_run()
    finally:
        if f is not None:
            f.close()
    if group:
        yield piece(), group_keys, read


class JournalError(StoreError):
    """The journal folder cannot be used, or a segment left by a previous process cannot be inserted."""


def _segment_name(seq: int) -> str:
    return f"{_PREFIX}{seq:012d}{_SUFFIX}"


def _chunks(parts: list[bytes], limit: int = MAX_INSERT_BYTES) -> list[bytes]:
    """Join ``parts`` (each whole rows) into pieces of at most ``limit`` bytes (a larger part stays whole)."""
    out: list[bytes] = []
    group: list[bytes] = []
    size = 0
    for part in parts:
        if group and size + len(part) > limit:
            out.append(b"".join(group))
            group, size = [], 0
        group.append(part)
        size += len(part)
    if group:
        out.append(b"".join(group))
    return out


class Journal:
    """Append-then-insert buffer of span rows (``JSONCompactEachRow`` lines, each ending in ``\\n``).

    ``insert(data)`` writes rows to the store (``Store.insert_spans``; ``insert(data, keys)`` when the
    appends gave the rows' ``IngestBatch.keys``, kept in memory only). Thread-safe: appends come from
    the group-commit writer thread, flushes from the flusher and from readers' threads.
    """

    def __init__(self, directory: Path, insert: Callable[..., None], *, fsync: bool = False) -> None:
        self.directory = Path(directory)
        self._insert = insert
        self.fsync = fsync
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise JournalError(f"cannot create the ingest journal folder {self.directory}: {exc}") from exc
        self._lock = threading.Lock()  # the buffer and the current segment
        self._flush_lock = threading.Lock()  # one flush at a time
        #: Per buffered append, its segment file and size: the rows stay on disk (the page cache), not
        #: in this process's memory, until a flush reads them back one INSERT-sized piece at a time.
        self._buffer: list[tuple[Path, int]] = []
        #: when each buffered append began (Unix time): a flush part-way through advances ``_as_of``
        self._times: list[float] = []
        self._keys: list[list[SpanKey] | None] = []  # per buffered append, its rows' keys (if given)
        self._buffered_spans = 0
        self._unflushed = 0  # buffered + being inserted by a flush
        self._appended = 0  # spans appended since start (a position in the journal)
        self._inserted = 0  # every span appended before this position is in the store
        self._oldest: float | None = None  # monotonic time of the oldest buffered append
        self._as_of = time.time()  # every span appended before this (Unix) time is in the store
        self._sealed: list[Path] = []  # segments whose rows are in the buffer, closed
        self._fd: int | None = None
        self._path: Path | None = None
        self._seq = max((self._seq_of(p) for p in self._segments()), default=0)
        self.flushes = 0
        self.spans_inserted = 0

    # -- state -----------------------------------------------------------------------------------

    @property
    def buffered_spans(self) -> int:
        """Spans appended and not yet handed to an INSERT."""
        return self._buffered_spans

    @property
    def position(self) -> int:
        """The journal's position now: :meth:`flush_to` it to see every span acknowledged so far."""
        return self._appended

    @property
    def unflushed_spans(self) -> int:
        """Spans appended whose INSERT has not returned yet (buffered, or in a flush running now)."""
        return self._unflushed

    def inserted_as_of(self) -> float:
        """Unix time before which every appended span is in the store: now when nothing is waiting,
        else when the last successful flush took its rows."""
        with self._lock:
            return time.time() if self._unflushed == 0 else self._as_of

    def lag(self) -> float:
        """Seconds the store is behind the acknowledged spans (0 when everything is inserted)."""
        return max(0.0, time.time() - self.inserted_as_of())

    def oldest_age(self) -> float:
        """Seconds since the oldest buffered append (0 when nothing is buffered)."""
        oldest = self._oldest
        return 0.0 if oldest is None else time.monotonic() - oldest

    def _segments(self) -> list[Path]:
        return sorted(p for p in self.directory.glob(f"{_PREFIX}*{_SUFFIX}") if self._seq_of(p) >= 0)

    @staticmethod
    def _seq_of(path: Path) -> int:
        try:
            return int(path.name[len(_PREFIX):-len(_SUFFIX)])
        except ValueError:
            return -1

    # -- recovery --------------------------------------------------------------------------------

    def recover(self) -> int:
        """Insert the rows of every segment a previous process left, then delete the segments; returns
        the number of rows inserted. Call once, before the first :meth:`append`."""
        rows = 0
        for path in self._segments():
            data = path.read_bytes()
            cut = data.rfind(b"\n") + 1
            if cut < len(data):
                log.warning("journal %s ends with %d bytes of a write cut short (never acknowledged): dropped",
                            path.name, len(data) - cut)
                data = data[:cut]
            try:
                for chunk in _chunks(data.splitlines(keepends=True) if len(data) > MAX_INSERT_BYTES else [data]):
                    if chunk:
                        self._insert(chunk)
            except Exception as exc:
                raise JournalError(
                    f"cannot insert the spans of the ingest journal {path} into the store ({exc}); "
                    "they were acknowledged, so the server does not start without them: fix the store, "
                    "or move the file away to start without those spans"
                ) from exc
            n = data.count(b"\n")
            rows += n
            path.unlink()
            log.info("journal %s: %d span(s) inserted at start", path.name, n)
        return rows

    # -- appends ---------------------------------------------------------------------------------

    def append(self, data: bytes, spans: int, keys: list[SpanKey] | None = None) -> None:
        """Write ``data`` (whole rows) to the journal; returns once the write is done (the rows are then
        acknowledged). Raises :class:`JournalError` (a ``StoreError``: the receiver answers 503 and the
        exporter retries) when the file cannot be written; nothing of ``data`` is kept then."""
        if not data:
            return
        with self._lock:
            began = time.time()
            try:
                if self._fd is None:
                    self._seq += 1
                    self._path = self.directory / _segment_name(self._seq)
                    self._fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            except OSError as exc:
                raise JournalError(f"cannot create an ingest journal file in {self.directory}: {exc}") from exc
            fd = self._fd
            size = os.fstat(fd).st_size
            try:
                view = memoryview(data)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                if self.fsync:
                    os.fsync(fd)
            except OSError as exc:
                try:  # no partial rows in the journal: a recovery must be able to read it
                    os.ftruncate(fd, size)
                except OSError:  # cannot even truncate: seal it here and start a new file next time
                    self._seal_broken(size)
                raise JournalError(f"cannot write the ingest journal {self._path}: {exc}") from exc
            assert self._path is not None
            self._buffer.append((self._path, len(data)))
            self._times.append(began)
            self._keys.append(keys if keys is not None and len(keys) == spans else None)
            self._buffered_spans += spans
            if self._unflushed == 0:  # everything appended before now is inserted
                self._as_of = time.time()
            self._unflushed += spans
            self._appended += spans
            if self._oldest is None:
                self._oldest = time.monotonic()

    def _seal_broken(self, good_size: int) -> None:
        """The current segment has a partial write that could not be removed: keep its first
        ``good_size`` bytes (the rows appended before) in a new file, and drop it."""
        assert self._fd is not None and self._path is not None
        broken, self._path = self._path, None
        os.close(self._fd)
        self._fd = None
        try:
            with open(broken, "rb") as f:
                good = f.read(good_size)
            self._seq += 1
            fixed = self.directory / _segment_name(self._seq)
            fixed.write_bytes(good)
            broken.unlink()
            self._buffer = [(fixed if path == broken else path, n) for path, n in self._buffer]
            self._sealed.append(fixed)
        except OSError:  # the file keeps its good prefix: a flush reads only the appended sizes from it
            log.exception("the ingest journal %s could not be repaired", broken)
            self._sealed.append(broken)

    # -- flushes ---------------------------------------------------------------------------------

    def flush(self) -> int:
        """Insert every row appended before this call; returns the rows this call inserted. On a store
        error the rows stay buffered (and on disk) and the error is raised."""
        with self._flush_lock:
            return self._flush_locked()

    def flush_to(self, position: int) -> None:
        """Return once every span appended before ``position`` (a :attr:`position`) is in the store:
        at once if it is, after the flush running now if that one covers it, else after a flush."""
        if self._inserted >= position:
            return
        with self._flush_lock:
            if self._inserted < position:
                self._flush_locked()

    def _flush_locked(self) -> int:
        with self._lock:
            if not self._buffer:
                self._inserted = self._appended
                if self._unflushed == 0:
                    self._as_of = time.time()
                return 0
            upto = self._appended
            taken_at = time.time()
            data, keys, times, spans = self._buffer, self._keys, self._times, self._buffered_spans
            self._buffer, self._keys, self._times, self._buffered_spans, self._oldest = [], [], [], 0, None
            if self._fd is not None:  # seal the current segment: later appends start a new one
                os.close(self._fd)
                assert self._path is not None
                self._sealed.append(self._path)
                self._fd, self._path = None, None
            sealed, self._sealed = self._sealed, []
        try:
            for chunk, chunk_keys, read in _read_chunks(data, keys, MAX_INSERT_BYTES):
                if chunk_keys is None:
                    self._insert(chunk)
                else:
                    self._insert(chunk, chunk_keys)
                if read < len(times):  # every span appended before the next append is in the store
                    with self._lock:
                        self._as_of = max(self._as_of, times[read])
        except BaseException:
            with self._lock:  # keep them, in order, for the next flush
                self._buffer[:0] = data
                self._keys[:0] = keys
                self._times[:0] = times
                self._buffered_spans += spans
                self._oldest = time.monotonic() if self._oldest is None else self._oldest
                self._sealed[:0] = sealed
            raise
        with self._lock:
            self._unflushed -= spans
            self._inserted = upto
            self._as_of = max(self._as_of, taken_at)
        self.flushes += 1
        self.spans_inserted += spans
        for path in sealed:
            try:
                path.unlink()
            except FileNotFoundError:  # pragma: no cover - nobody else deletes them
                pass
        return spans

    def close(self) -> None:
        """Flush what is buffered and close the current segment (left on disk only if the flush failed)."""
        try:
            self.flush()
        finally:
            with self._lock:
                if self._fd is not None:
                    os.close(self._fd)
                    self._fd = None
