"""The embedded store's ingest journal (netra_server.journal): acknowledged rows are appended to a file,
inserted into chDB in batches, seen by every read, and recovered after a crash — with the real store."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from netra_server.config import Limits
from netra_server.journal import Journal, JournalError
from netra_server.otlp import build_rows
from netra_server.store import Store, StoreError, open_store
from netra_server.testing import run_server
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace.export import SpanExportResult

from netra import semconv

from ._helpers import T0, exporter, record

COUNT = "SELECT count() AS n FROM netra_spans FINAL WHERE project_id = 'p'"


def _rows(n: int, first: int = 0, tenant: str = "t") -> bytes:
    """``n`` span rows as the receiver builds them (real SDK spans through the real OTLP encoder)."""
    provider, collect = record()
    tracer = provider.get_tracer("journal")
    for i in range(first, first + n):
        tracer.start_span(f"s{i}", start_time=T0 + i, attributes={semconv.TENANT_ID: tenant}).end(end_time=T0 + i + 5)
    provider.shutdown()
    batch = build_rows(encode_spans(collect.spans), "p", Limits(), 1_767_225_600_000)
    assert batch.span_count == n
    return batch.data


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    st = open_store(f"chdb://{tmp_path / 'store'}")
    st.migrate()
    yield st
    st.close()


def _count(store: Store) -> int:
    return int(store.backend.query(COUNT)[0]["n"])  # the backend: no read barrier


def _segments(journal: Journal) -> list[Path]:
    return sorted(journal.directory.glob("segment-*.jsonl"))


def test_rows_are_on_disk_when_append_returns_and_in_the_store_after_flush(store: Store, tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal", store.insert_spans)
    a, b = _rows(3), _rows(2, first=10)
    journal.append(a, 3)
    journal.append(b, 2)
    assert [p.read_bytes() for p in _segments(journal)] == [a + b]
    assert journal.buffered_spans == journal.unflushed_spans == 5
    assert _count(store) == 0
    assert journal.flush() == 5
    assert _count(store) == 5
    assert _segments(journal) == [] and journal.unflushed_spans == 0
    assert journal.flush() == 0
    journal.append(_rows(1, first=20), 1)  # a new segment after a flush
    assert len(_segments(journal)) == 1
    journal.close()
    assert _count(store) == 6 and _segments(journal) == []


def test_a_read_through_the_store_sees_every_appended_row(store: Store, tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal", store.insert_spans)
    store.read_barrier = journal
    journal.append(_rows(4), 4)
    assert store.query(COUNT)[0]["n"] == 4  # the query flushed first
    assert journal.flushes == 1
    store.query(COUNT)  # nothing new: no flush
    assert journal.flushes == 1
    store.query("SELECT 1 AS one")  # statements that do not read spans do not flush
    journal.append(_rows(1, first=9), 1)
    store.query("SELECT count() AS n FROM netra_api_keys")
    assert journal.buffered_spans == 1
    store.flush_ingest()
    assert journal.buffered_spans == 0 and _count(store) == 5


def test_a_store_read_waits_once_for_what_was_acknowledged_before_it_began(store: Store, tmp_path: Path) -> None:
    """Store.run notes the journal's position when called: spans appended while its statements run are
    not waited for (one flush per read, not one per statement), and those appended before are seen."""
    import asyncio

    journal = Journal(tmp_path / "journal", store.insert_spans)
    store.read_barrier = journal
    journal.append(_rows(3), 3)

    def two_statements() -> tuple[int, int]:
        first = int(store.query(COUNT)[0]["n"])
        journal.append(_rows(2, first=50), 2)  # acknowledged after the read began
        second = int(store.query(COUNT)[0]["n"])
        return first, second

    async def read() -> tuple[int, int]:
        return await store.run(two_statements)

    assert asyncio.run(read()) == (3, 3)
    assert journal.flushes == 1 and journal.buffered_spans == 2
    assert asyncio.run(store.run(lambda: int(store.query(COUNT)[0]["n"]))) == 5  # a new read sees them


def test_recovery_inserts_what_a_killed_process_left_and_drops_a_torn_last_line(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    crashed = Journal(tmp_path / "journal", store.insert_spans)
    crashed.append(_rows(5), 5)
    crashed.flush()  # these 5 are in the store and their segment is gone
    crashed.append(_rows(3, first=100), 3)
    crashed.append(_rows(2, first=200), 2)
    (segment,) = _segments(crashed)
    with open(segment, "ab") as f:  # a write the kill cut short: that request was never answered
        f.write(_rows(1, first=300)[:40])
    # the process dies here: no flush, no close

    journal = Journal(tmp_path / "journal", store.insert_spans)
    with caplog.at_level(logging.WARNING, logger="netra_server.journal"):
        assert journal.recover() == 5
    assert "cut short" in caplog.text
    assert _count(store) == 10
    assert _segments(journal) == []
    journal.append(_rows(1, first=400), 1)  # numbering goes on after the recovered segments
    assert _segments(journal)[0].name > segment.name
    journal.close()
    assert _count(store) == 11


def test_recovery_after_a_crash_between_insert_and_delete_counts_each_span_once(store: Store, tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal", store.insert_spans)
    data = _rows(4)
    journal.append(data, 4)
    (segment,) = _segments(journal)
    kept = segment.read_bytes()
    journal.flush()
    segment.write_bytes(kept)  # as if the process died after the INSERT, before deleting the segment
    assert Journal(tmp_path / "journal", store.insert_spans).recover() == 4
    assert _count(store) == 4  # delivered twice, stored and counted once (ReplacingMergeTree + FINAL)


def test_a_failing_store_keeps_the_rows_until_an_insert_succeeds(store: Store, tmp_path: Path) -> None:
    failing = threading.Event()
    failing.set()

    def insert(data: bytes) -> None:
        if failing.is_set():
            raise StoreError("disk full")
        store.insert_spans(data)

    journal = Journal(tmp_path / "journal", insert)
    journal.append(_rows(3), 3)
    with pytest.raises(StoreError, match="disk full"):
        journal.flush()
    journal.append(_rows(2, first=50), 2)  # appends go on while the store is down
    assert journal.buffered_spans == journal.unflushed_spans == 5
    assert len(_segments(journal)) == 2  # the sealed one is kept, a new one was started
    assert _count(store) == 0
    failing.clear()
    assert journal.flush() == 5
    assert _count(store) == 5 and _segments(journal) == []


def test_recovery_that_cannot_insert_refuses_to_start_and_names_the_file(store: Store, tmp_path: Path) -> None:
    Journal(tmp_path / "journal", store.insert_spans).append(_rows(2), 2)

    def broken(data: bytes) -> None:
        raise StoreError("the store is read-only")

    with pytest.raises(JournalError, match=r"segment-0+1\.jsonl.*read-only.*move the file away"):
        Journal(tmp_path / "journal", broken).recover()
    assert Journal(tmp_path / "journal", store.insert_spans).recover() == 2


def test_server_answers_from_the_journal_and_a_store_outage_ends_in_503_not_in_loss(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The receiver acknowledges once spans are in the journal; when the store then refuses the INSERT,
    the journal keeps them, the failure is logged once, new spans get 503 + Retry-After (not a 200 for
    spans the store cannot take), and every acknowledged span is stored once the store is back."""
    provider, collect = record()
    tracer = provider.get_tracer("outage")
    for i in range(120):
        tracer.start_span(f"o{i}", start_time=T0 + i, attributes={semconv.TENANT_ID: "outage"}).end(end_time=T0 + i + 1)
    provider.shutdown()
    spans = collect.spans
    with caplog.at_level(logging.WARNING), run_server(tmp_path, journal_flush_seconds=0.05) as srv:
        assert srv.store is not None
        state = srv.app.state.netra
        journal = state.committer.journal
        assert journal is not None
        down = threading.Event()
        down.set()
        real_insert = journal._insert

        def insert(data: bytes, keys: object = None) -> None:
            if down.is_set():
                raise StoreError("the store is down")
            real_insert(data, keys)

        journal._insert = insert
        exp = exporter(srv, timeout=20)
        try:
            assert exp.export(spans[:80]) is SpanExportResult.SUCCESS  # answered, waiting in the journal
            deadline = time.monotonic() + 30
            while state.committer.store_error is None and time.monotonic() < deadline:
                time.sleep(0.02)  # the flusher's INSERT fails
            body = encode_spans(spans[80:]).SerializeToString()
            for _ in range(3):
                r = httpx.post(srv.otlp_endpoint, content=body,
                               headers={**srv.headers, "content-type": "application/x-protobuf"})
                assert r.status_code == 503 and r.headers["retry-after"]
            assert journal.unflushed_spans == 80
            assert httpx.get(srv.base_url + "/healthz").json()["ingest"] == "refusing"
            r = httpx.get(srv.base_url + "/usage/tenants/outage", headers=srv.headers, timeout=30)
            assert r.status_code == 503, "a read never answers 200 without acknowledged spans"
            down.clear()  # the store is back: the flusher's next attempt inserts the journal
            assert srv.wait_for_spans(80) == 80
            assert exp.export(spans[80:]) is SpanExportResult.SUCCESS  # (the exporter retries a 503)
            assert srv.wait_for_spans(120) == 120
        finally:
            exp.shutdown()
    failures = [r for r in caplog.records if "the store is down" in r.getMessage() and r.levelno >= logging.ERROR]
    assert len(failures) == 1, "logged once, not at every retry"


def test_a_failed_write_leaves_no_partial_row_and_is_a_store_error(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write cut short (disk full) raises a StoreError (the receiver answers 503, the exporter retries)
    and leaves the segment as it was, so a recovery can still read it; also when it cannot even be
    truncated (then the good rows move to a new segment)."""
    import netra_server.journal as journal_module

    real_write = journal_module.os.write

    def half_then_full(fd: int, data: memoryview) -> int:
        if len(data) > 1 and not half_then_full.cut:  # type: ignore[attr-defined]
            half_then_full.cut = True  # type: ignore[attr-defined]
            return real_write(fd, data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    for truncate_fails in (False, True):
        directory = tmp_path / f"journal-{truncate_fails}"
        journal = Journal(directory, store.insert_spans)
        first = _rows(2, first=1000 if truncate_fails else 0)
        journal.append(first, 2)
        half_then_full.cut = False  # type: ignore[attr-defined]
        monkeypatch.setattr(journal_module.os, "write", half_then_full)
        if truncate_fails:
            def no_truncate(fd: int, size: int) -> None:
                raise OSError(5, "I/O error")

            monkeypatch.setattr(journal_module.os, "ftruncate", no_truncate)
        with pytest.raises(StoreError, match="cannot write the ingest journal.*No space left"):
            journal.append(_rows(3, first=2000), 3)
        monkeypatch.undo()
        assert b"".join(p.read_bytes() for p in _segments(journal)) == first
        assert journal.buffered_spans == 2
        journal.append(_rows(1, first=3000), 1)  # the disk has room again
        # the process dies here: the next start reads every segment without a torn row
        assert Journal(directory, store.insert_spans).recover() == 3
    assert _count(store) == 6


def test_a_start_without_the_journal_still_inserts_what_a_crashed_run_left_in_it(tmp_path: Path) -> None:
    """Spans acknowledged from the journal by a process that died are inserted at the next start, also
    when that start says --no-journal (they were acknowledged); the folder is left empty."""
    from netra_server.config import Settings

    data_dir = tmp_path / "netra-data"
    store_dir = data_dir / "store"
    journal_dir = Settings(data_dir=data_dir).journal_dir(str(store_dir.resolve()))
    st = open_store(f"chdb://{store_dir}")
    st.migrate()
    crashed = Journal(journal_dir, st.insert_spans)
    crashed.append(_rows(6, tenant="left-behind"), 6)  # acknowledged, never inserted: the process died
    st.close()
    with run_server(tmp_path, journal=False) as srv:
        assert srv.store is not None and srv.store.read_barrier is None
        n = srv.store.query("SELECT count() AS n FROM netra_spans FINAL WHERE tenant_id = 'left-behind'")[0]["n"]
        assert n == 6
    assert list(journal_dir.iterdir()) == []


def test_the_lag_after_an_idle_while_starts_at_the_first_new_append(store: Store, tmp_path: Path) -> None:
    """After a quiet spell the store is not behind: a new append must not look as old as the last
    flush (a bounded read would wait as a strong one, and ingest would be refused as lagging)."""
    journal = Journal(tmp_path / "journal", store.insert_spans)
    journal.append(_rows(2), 2)
    assert journal.flush() == 2
    assert journal.lag() == 0.0
    time.sleep(1.5)  # idle
    journal.append(_rows(1, first=5), 1)
    assert journal.lag() < 1.0
    assert time.time() - journal.inserted_as_of() < 1.0
    journal.close()


def _lag_spans(n: int = 60) -> list[Any]:
    provider, collect = record()
    tracer = provider.get_tracer("lag")
    for i in range(n):
        tracer.start_span(f"l{i}", start_time=T0 + i, attributes={semconv.TENANT_ID: "lag"}).end(end_time=T0 + i + 1)
    provider.shutdown()
    return collect.spans


class _StalledStore:
    """Makes the journal's INSERTs wait for :meth:`release`, and the store fall behind: returns once the
    store is more than ``max_lag_seconds`` (shortened to 1 s) behind the spans acknowledged."""

    def __init__(self, srv: Any) -> None:
        self.srv = srv
        self.committer = srv.app.state.netra.committer
        self.journal = self.committer.journal
        assert self.journal is not None
        self.committer.max_lag_seconds = 1.0  # (the setting's value, shortened for the test)
        self.stalled = threading.Event()
        self._release = threading.Event()
        real_insert = self.journal._insert

        def insert(data: bytes, keys: object = None) -> None:
            self.stalled.set()
            self._release.wait(60)
            real_insert(data, keys)

        self.journal._insert = insert

    def fall_behind(self, spans: list[Any]) -> None:
        r = httpx.post(self.srv.otlp_endpoint, content=encode_spans(spans).SerializeToString(), headers=self.post_headers)
        assert r.status_code == 200
        assert self.stalled.wait(30)
        deadline = time.monotonic() + 30
        while self.journal.lag() <= 1.0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.journal.lag() > 1.0

    @property
    def post_headers(self) -> dict[str, str]:
        return {**self.srv.headers, "content-type": "application/x-protobuf"}

    def release(self) -> None:
        self._release.set()


def test_ingest_is_refused_while_the_store_lags_and_reads_do_not_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store that inserts slower than spans arrive (here: an INSERT that stalls): once the store is
    more than ``max_ingest_lag`` behind, a new export is held up to ``ingest_wait_seconds``, then answered
    429 + Retry-After without its body being decoded; bounded reads keep answering at once (stating how
    far behind they are), and every span acknowledged is stored once it catches up."""
    import netra_server.receiver as receiver

    spans = _lag_spans()
    with run_server(tmp_path, journal_flush_seconds=0.05, max_read_staleness=30.0, read_consistency="bounded",
                    ingest_wait_seconds=0.3) as srv:
        assert srv.app.state.netra.settings.max_ingest_lag == 15.0
        stall = _StalledStore(srv)
        decoded: list[int] = []
        real_parse = receiver.parse_export

        def parse_export(body: bytes, *args: Any) -> Any:
            decoded.append(len(body))
            return real_parse(body, *args)

        monkeypatch.setattr(receiver, "parse_export", parse_export)
        try:
            stall.fall_behind(spans[:20])
            assert len(decoded) == 1
            t = time.monotonic()
            r = httpx.post(srv.otlp_endpoint, content=encode_spans(spans[20:40]).SerializeToString(),
                           headers=stall.post_headers)
            assert r.status_code == 429 and r.headers["retry-after"] == "1"
            assert "behind" in r.text
            assert time.monotonic() - t >= 0.3  # held for ingest_wait_seconds first
            assert len(decoded) == 1  # the refused request was never decoded
            t = time.monotonic()
            read = httpx.get(srv.base_url + "/usage/tenants/lag", headers=srv.headers, timeout=30)
            assert time.monotonic() - t < 5.0 and read.status_code == 200  # answered without waiting
            assert read.json()["data"]["requestsCount"] == 0  # nothing inserted yet, and it says so:
            assert read.headers["x-netra-consistency"] == "bounded" and read.headers["x-netra-data-as-of"]
        finally:
            stall.release()
        assert srv.wait_for_spans(20) == 20
        deadline = time.monotonic() + 30
        while stall.journal.lag() > 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        r = httpx.post(srv.otlp_endpoint, content=encode_spans(spans[20:]).SerializeToString(), headers=stall.post_headers)
        assert r.status_code == 200
        assert srv.wait_for_spans(60) == 60


def test_an_export_held_while_the_store_lags_is_stored_once_it_catches_up(tmp_path: Path) -> None:
    """A short overload slows an exporter down instead of refusing it: the export that arrives while
    the store is behind is held (its body unread) and answered 200 once the store has caught up, within
    ``ingest_wait_seconds``. Past ``max_waiting`` held requests, the next one is refused at once."""
    spans = _lag_spans()
    with run_server(tmp_path, journal_flush_seconds=0.05, max_read_staleness=30.0, ingest_wait_seconds=60.0) as srv:
        stall = _StalledStore(srv)
        committer = stall.committer
        committer.max_waiting = 1
        answers: list[httpx.Response] = []
        try:
            stall.fall_behind(spans[:20])
            held = threading.Thread(target=lambda: answers.append(httpx.post(
                srv.otlp_endpoint, content=encode_spans(spans[20:40]).SerializeToString(), headers=stall.post_headers,
                timeout=60)))
            held.start()
            deadline = time.monotonic() + 30
            while committer.waiting == 0 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert committer.waiting == 1 and held.is_alive() and not answers
            # a second one while the first is held: over max_waiting, refused without waiting
            r = httpx.post(srv.otlp_endpoint, content=encode_spans(spans[40:]).SerializeToString(),
                           headers=stall.post_headers)
            assert r.status_code == 429 and "behind" in r.text
            assert held.is_alive() and committer.waiting == 1
        finally:
            stall.release()
        held.join(60)
        assert [a.status_code for a in answers] == [200]
        assert committer.waiting == 0
        assert srv.wait_for_spans(40) == 40
        r = httpx.post(srv.otlp_endpoint, content=encode_spans(spans[40:]).SerializeToString(), headers=stall.post_headers)
        assert r.status_code == 200
        assert srv.wait_for_spans(60) == 60


def test_a_long_flush_advances_as_of_after_each_insert(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A flush of several INSERTs states the time of the first append not yet inserted after each one,
    so the lag (and the 429s it causes) measures what is really waiting, not the whole flush."""
    inserted: list[bytes] = []
    second = threading.Event()
    release = threading.Event()

    def insert(data: bytes, keys: Any = None) -> None:
        inserted.append(data)
        if len(inserted) == 2:
            second.set()
            assert release.wait(30)

    import netra_server.journal as journal_module

    monkeypatch.setattr(journal_module, "MAX_INSERT_BYTES", 1)  # one INSERT per append
    journal = Journal(tmp_path / "journal", insert)
    journal.append(_rows(2), 2)
    time.sleep(0.05)
    before_second = time.time()
    journal.append(_rows(2, first=10), 2)
    journal.append(_rows(2, first=20), 2)
    flushing = threading.Thread(target=journal.flush, daemon=True)
    flushing.start()
    try:
        assert second.wait(30)
        # the first append is in the store, the second is being inserted: as of when the second began
        assert before_second <= journal.inserted_as_of() <= time.time()
        assert journal.unflushed_spans == 6
    finally:
        release.set()
        flushing.join(30)
    assert len(inserted) == 3 and journal.unflushed_spans == 0
    journal.close()


def test_reading_back_splits_at_the_limit_across_segments_and_keeps_every_byte(tmp_path: Path) -> None:
    """A flush reads its appends back in pieces of at most the limit (a larger append whole), across
    segment files, each piece's rows in order with their keys and the count of appends read so far;
    a short segment is an error, not a short piece."""
    import random

    from netra_server.journal import _read_chunks

    rnd = random.Random(7)
    for trial in range(60):
        appends: list[tuple[Path, bytes, list[Any] | None]] = []
        for seg in range(rnd.randint(1, 3)):
            path = tmp_path / f"t{trial}-s{seg}"
            blobs = [bytes([65 + rnd.randint(0, 25)]) * rnd.randint(1, 40) + b"\n" for _ in range(rnd.randint(1, 6))]
            path.write_bytes(b"".join(blobs))
            appends += [(path, b, None if rnd.random() < 0.1 else [("k", len(b))]) for b in blobs]
        limit = rnd.randint(1, 120)
        pieces = list(_read_chunks([(p, len(b)) for p, b, _ in appends], [k for _, _, k in appends], limit))
        assert b"".join(piece for piece, _, _ in pieces) == b"".join(b for _, b, _ in appends)
        done = 0
        for piece, keys, read in pieces:
            taken = appends[done:read]
            assert piece == b"".join(b for _, b, _ in taken) and taken
            assert len(piece) <= limit or len(taken) == 1
            if all(k is not None for _, _, k in taken):
                assert keys == [x for _, _, k in taken for x in (k or [])]
            else:
                assert keys is None
            done = read
        assert done == len(appends)
    short = tmp_path / "short"
    short.write_bytes(b"abc\n")
    with pytest.raises(OSError, match="shorter than what was appended"):
        list(_read_chunks([(short, 4), (short, 4)], [None, None]))
