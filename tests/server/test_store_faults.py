"""The store cannot write (a full disk, a folder that cannot be written): nothing acknowledged is lost.

With the real chDB store on a small tmpfs (mounted here when the tests run as root, as in CI) and a
table folder made immutable with ``chattr +i``: every insert that did not store its rows raises, the
journal keeps them, the receiver answers 503 with Retry-After instead of 200, and once the disk has
room again every acknowledged span is in the store exactly once. Below the free-space floor the
receiver refuses new spans before a write can fail, and says so in the log and on ``/healthz``.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from netra_server.config import Limits
from netra_server.journal import Journal
from netra_server.otlp import build_rows
from netra_server.store import Store, StoreError, open_store
from netra_server.testing import RunningServer, run_server
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from netra import semconv

from ._helpers import T0, record

MiB = 1024 * 1024


def _need_root(what: str) -> None:
    if os.geteuid() != 0:  # CI runs as root: there this never skips (a skip fails in CI)
        pytest.skip(f"{what} needs root")


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 40 MiB tmpfs (grow it with ``_resize``)."""
    _need_root("mounting a tmpfs")
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _resize(mnt: Path, mib: int) -> None:
    subprocess.run(["mount", "-o", f"remount,size={mib}m", str(mnt)], check=True)


def _rows(n: int, first: int = 0, pad: int = 2000) -> bytes:
    """``n`` real span rows (real SDK spans, real OTLP encoder, the receiver's mapping), each with a
    ``pad``-byte random attribute (so they compress badly and fill the disk)."""
    provider, collect = record()
    tracer = provider.get_tracer("faults")
    for i in range(first, first + n):
        tracer.start_span(f"s{i}", start_time=T0 + i, attributes={
            semconv.TENANT_ID: "t", semconv.GEN_AI_USAGE_INPUT_TOKENS: 1, semconv.COST: "0.001",
            "pad": os.urandom(pad // 2).hex(),
        }).end(end_time=T0 + i + 5)
    provider.shutdown()
    batch = build_rows(encode_spans(collect.spans), "p", Limits(), 1_767_225_600_000)
    assert batch.span_count == n
    return batch.data


def _count(store: Store) -> int:
    return int(store.backend.query("SELECT count() AS n FROM netra_spans FINAL WHERE project_id = 'p'")[0]["n"])


def _raw_count(store: Store) -> int:
    """Rows stored, duplicates included (a span inserted twice shows here)."""
    return int(store.backend.query("SELECT count() AS n FROM netra_spans WHERE project_id = 'p'")[0]["n"])


def test_an_insert_into_a_full_disk_raises_and_the_journal_keeps_its_rows(tmpfs: Path) -> None:
    """Before: chDB's streaming insert reported the rows as written and the journal deleted them."""
    store = open_store(f"chdb://{tmpfs / 'store'}")
    try:
        store.migrate()
        journal = Journal(tmpfs / "store-journal", store.insert_spans)
        appended = 0
        failure: StoreError | None = None
        for b in range(200):  # 2,000 spans of ~2 KiB per flush: the disk fills within a few flushes
            data = _rows(1000, first=b * 1000)
            try:
                journal.append(data, 1000)
            except StoreError:  # the journal itself no longer fits: not acknowledged, fine
                break
            appended += 1000
            try:
                journal.flush()
            except StoreError as exc:
                failure = exc
                break
        assert failure is not None, "the disk never filled"
        assert "space" in str(failure).lower() or "No space" in str(failure)
        assert journal.buffered_spans > 0, "a failed insert keeps the journal's rows"
        assert list(journal.directory.glob("segment-*.jsonl")), "and their segment on disk"
        assert _count(store) < appended
        _resize(tmpfs, 400)
        journal.flush()
        assert journal.buffered_spans == 0 and not list(journal.directory.glob("segment-*.jsonl"))
        assert _count(store) == appended
        store.command("OPTIMIZE TABLE netra_spans FINAL")
        assert _raw_count(store) == appended, "each span once"
    finally:
        store.close()


def _table_dir(store: Store) -> Path:
    rows = store.backend.query("SELECT data_paths FROM system.tables WHERE name = 'netra_spans' AND database = currentDatabase()")
    return Path(rows[0]["data_paths"][0])


def test_an_insert_into_a_folder_that_cannot_be_written_raises(tmp_path: Path) -> None:
    _need_root("chattr +i")
    if shutil.which("chattr") is None:
        pytest.fail("chattr (e2fsprogs) is needed")
    store = open_store(f"chdb://{tmp_path / 'store'}")
    folder: Path | None = None
    try:
        store.migrate()
        journal = Journal(tmp_path / "journal", store.insert_spans)
        journal.append(_rows(50, pad=10), 50)
        folder = _table_dir(store)
        subprocess.run(["chattr", "+i", str(folder)], check=True)
        with pytest.raises(StoreError):
            journal.flush()
        assert journal.buffered_spans == 50 and _count(store) == 0
        subprocess.run(["chattr", "-i", str(folder)], check=True)
        folder = None
        journal.flush()
        assert _count(store) == 50
    finally:
        if folder is not None:
            subprocess.run(["chattr", "-i", str(folder)], check=False)
        store.close()


def _post(srv: RunningServer, body: bytes) -> httpx.Response:
    return httpx.post(srv.otlp_endpoint, content=body, timeout=30,
                      headers={**srv.headers, "content-type": "application/x-protobuf"})


def _request(first: int, n: int, pad: int = 4000) -> tuple[bytes, set[str]]:
    provider, collect = record()
    tracer = provider.get_tracer("faults")
    for i in range(first, first + n):
        tracer.start_span(f"s{i}", start_time=T0 + i, attributes={
            semconv.TENANT_ID: "full", semconv.GEN_AI_USAGE_INPUT_TOKENS: 1, semconv.COST: "0.001",
            "pad": os.urandom(pad // 2).hex(),
        }).end(end_time=T0 + i + 5)
    provider.shutdown()
    req: ExportTraceServiceRequest = encode_spans(collect.spans)
    return req.SerializeToString(), {format(s.context.span_id, "016x") for s in collect.spans}


def _stored_ids(srv: RunningServer) -> set[str]:
    assert srv.store is not None
    rows = srv.store.query("SELECT span_id FROM netra_spans FINAL WHERE project_id = {p:String}", {"p": srv.project_id})
    return {r["span_id"] for r in rows}


@pytest.mark.slow
@pytest.mark.parametrize("journal", [True, False], ids=["journal", "no-journal"])
def test_server_on_a_full_disk_acknowledges_only_what_it_stored(tmpfs: Path, journal: bool,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    """No free-space floor: the disk fills while spans arrive. Before: 200 to every export, 74% lost."""
    acked: set[str] = set()
    refused = 0
    retry_after: set[str] = set()
    with caplog.at_level(logging.WARNING), run_server(tmpfs, journal=journal, journal_flush_seconds=0.2,
                                                      min_free_disk_bytes=0, rollup_interval=0) as srv:
        for b in range(120):
            body, ids = _request(b * 250, 250)
            r = _post(srv, body)
            if r.status_code == 200:
                acked |= ids
            else:
                assert r.status_code == 503, (r.status_code, r.content[:300])
                retry_after.add(r.headers.get("retry-after", ""))
                refused += 1
                if refused >= 5:
                    break
        assert refused, "the disk never filled"
        assert "" not in retry_after
        _resize(tmpfs, 600)
        state = srv.app.state.netra
        state.store.flush_ingest()
        assert acked <= _stored_ids(srv), f"{len(acked - _stored_ids(srv))} acknowledged span(s) lost"
        failures = [r for r in caplog.records if "failed; they are kept" in r.getMessage()]
        assert len(failures) <= 2, "logged once per outage, not once per retry"
        assert failures or not journal
        # writable again: new spans are accepted and stored
        body, ids = _request(10_000_000, 50, pad=10)
        end = time.monotonic() + 30
        while (r := _post(srv, body)).status_code == 503 and time.monotonic() < end:
            time.sleep(0.2)
        assert r.status_code == 200
        state.store.flush_ingest()
        assert ids <= _stored_ids(srv)


def test_below_the_free_space_floor_new_spans_get_503_and_healthz_says_why(tmpfs: Path,
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    def floor_errors() -> int:
        return len([r for r in caplog.records if "MiB floor" in r.getMessage() and r.levelno >= logging.ERROR])

    floor = 16 * MiB
    with caplog.at_level(logging.WARNING), run_server(tmpfs, min_free_disk_bytes=floor, journal_flush_seconds=0.2,
                                                      rollup_interval=0) as srv:
        h = httpx.get(srv.base_url + "/healthz").json()
        assert h["status"] == "ok" and h["disk"]["floorBytes"] == floor
        acked: set[str] = set()
        first_refusal: httpx.Response | None = None
        for b in range(100):
            body, ids = _request(b * 250, 250)
            r = _post(srv, body)
            if r.status_code != 200:
                first_refusal = r
                break
            acked |= ids
        assert first_refusal is not None, "the floor was never reached"
        assert first_refusal.status_code == 503 and first_refusal.headers["retry-after"]
        from google.rpc import status_pb2

        message = status_pb2.Status.FromString(first_refusal.content).message
        assert "floor" in message and "--min-free-disk-mb" in message
        assert floor_errors() >= 1
        # refused before the disk filled: the store still takes everything acknowledged
        srv.app.state.netra.store.flush_ingest()
        assert acked <= _stored_ids(srv)
        # inserting the journal freed its segments: hold the disk under the floor with a ballast file
        free = shutil.disk_usage(tmpfs).free
        ballast = tmpfs / "ballast"
        if free > floor - 2 * MiB:
            ballast.write_bytes(b"\0" * (free - floor + 2 * MiB))
        h = httpx.get(srv.base_url + "/healthz")
        assert h.status_code == 200
        assert h.json()["status"] == "degraded" and h.json()["ingest"] == "refusing" and "floor" in h.json()["reason"]
        logged = floor_errors()
        for _ in range(3):
            assert _post(srv, _request(5_000_000, 1)[0]).status_code == 503
        assert floor_errors() == logged, "said once in the log, not once per refused request"
        ballast.unlink(missing_ok=True)
        _resize(tmpfs, 600)
        assert _post(srv, _request(6_000_000, 1)[0]).status_code == 200
        assert httpx.get(srv.base_url + "/healthz").json()["status"] == "ok"


def test_a_server_restarted_after_a_full_disk_inserts_the_journal_exactly_once(tmpfs: Path) -> None:
    """The journal holds acknowledged spans the store could not take; the server is killed; after the
    disk grows, the next start inserts them, once."""
    with run_server(tmpfs, subprocess=True, min_free_disk_bytes=0, journal_flush_seconds=0.2) as srv:
        acked: set[str] = set()
        refused = 0
        for b in range(120):
            body, ids = _request(b * 250, 250)
            r = _post(srv, body)
            if r.status_code == 200:
                acked |= ids
            else:
                refused += 1
                if refused >= 3:
                    break
        assert refused
        srv.kill()
        _resize(tmpfs, 600)
        srv.restart()
        with srv.client() as c:
            total = c.get("/usage/tenants/full").json()["data"]
        assert total["requestsCount"] == len(acked), "every acknowledged span counted, once"
