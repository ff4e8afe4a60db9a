"""kill -9 the server while the real OTLP exporter sends: every acknowledged span is there after restart."""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from netra_server.testing import run_server
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import set_span_in_context

from netra import semconv

from ._helpers import T0, children, exporter, record

BATCHES = 60
PER_BATCH = 250


@pytest.mark.slow
@pytest.mark.parametrize("journal", [True, False], ids=["journal", "no-journal"])
def test_acknowledged_spans_survive_kill_9(tmp_path: Path, journal: bool) -> None:
    """With the ingest journal (flushed only at shutdown here, so every acknowledged span is still in
    it at the kill and must come back from it), and without (answered after each INSERT)."""
    provider, collect = record()
    tr = provider.get_tracer("t")
    batches: list[list[ReadableSpan]] = []
    for b in range(BATCHES):
        # the root records usage of its own and is never marked covered (as the published netra-sdk
        # writes it): the server covers it, so it must never count, also after a replayed journal
        root = tr.start_span(f"batch-{b}", start_time=T0 + b, attributes={semconv.TENANT_ID: "crash", semconv.COST: 1.0})
        for i in range(PER_BATCH - 1):
            s = tr.start_span(f"s-{i}", context=set_span_in_context(root), start_time=T0 + b,
                              attributes={semconv.TENANT_ID: "crash", semconv.GEN_AI_USAGE_INPUT_TOKENS: 1,
                                          semconv.COST: 0.001, "payload": "x" * 200})
            s.end(end_time=T0 + b + 10)
        root.end(end_time=T0 + b + 20)
        batches.append(collect.spans[-PER_BATCH:])
    provider.shutdown()

    with run_server(tmp_path, subprocess=True, journal=journal, journal_flush_seconds=3600) as srv:
        acked: list[list[ReadableSpan]] = []
        failed = 0
        stop = threading.Event()

        def send_all() -> None:
            nonlocal failed
            exp = exporter(srv, timeout=3)  # once the server is dead, give up quickly
            for batch in batches:
                if stop.is_set():
                    break
                if exp.export(batch) is SpanExportResult.SUCCESS:
                    acked.append(batch)
                else:
                    failed += 1
            exp.shutdown()

        sender = threading.Thread(target=send_all)
        sender.start()
        deadline = time.monotonic() + 60
        while len(acked) < 8 and time.monotonic() < deadline:
            time.sleep(0.005)
        srv.kill()  # SIGKILL while the exporter keeps sending
        stop.set()
        sender.join(timeout=60)
        assert 8 <= len(acked) < BATCHES, "the kill must land while the exporter sends"
        journal_dir = srv.settings.journal_dir(str(srv.data_dir / "store"))
        left = b"".join(p.read_bytes() for p in journal_dir.glob("segment-*.jsonl")) if journal else b""
        if journal:  # nothing was inserted yet: the acknowledged spans are only in the journal
            assert left.count(b"\n") >= len(acked) * PER_BATCH
        srv.restart()
        if journal:
            assert not list(journal_dir.glob("segment-*.jsonl")), "the restart inserts the journal and deletes it"
        with httpx.Client(base_url=srv.base_url, headers=srv.headers, timeout=30) as c:
            for batch in acked:
                tid = format(batch[0].context.trace_id, "032x")
                got = c.get(f"/sdk/traces/{tid}/spans", params={"limit": 1000}).json()["data"]["data"]
                assert {s["id"] for s in got} == {format(s.context.span_id, "016x") for s in batch}
            usage = c.get("/usage/tenants/crash").json()["data"]
            total = usage["requestsCount"]
            assert total >= len(acked) * (PER_BATCH - 1)
            assert total % (PER_BATCH - 1) == 0, "a root (covered by its children) was counted"
            assert Decimal(str(usage["totalCost"])) == total * Decimal("0.001")
        # the exporter retries what it sent: nothing changes
        exp = exporter(srv)
        for batch in acked:
            assert exp.export(batch) is SpanExportResult.SUCCESS
        exp.shutdown()
        with httpx.Client(base_url=srv.base_url, headers=srv.headers, timeout=30) as c:
            again = c.get("/usage/tenants/crash").json()["data"]
        assert again == usage




def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc (Linux)")
def test_parse_workers_exit_when_the_server_is_killed(tmp_path: Path) -> None:
    """A SIGKILLed server cannot stop its parse workers; they must not live on (each holds its memory)."""
    from netra_server.auth import new_key
    from netra_server.launch import free_port, start_serve, stop_child

    key, port = new_key(), free_port()
    proc = start_serve(tmp_path / "data", port=port, api_key=key, args=["--parse-workers", "2"],
                       log_path=tmp_path / "serve.log")
    try:
        workers = {p for p in children(proc.pid) if "spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes().decode(
            errors="replace")}
        assert len(workers) >= 2, f"expected the parse workers among the children of {proc.pid}"
        proc.kill()
        proc.wait(timeout=30)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(_alive(p) for p in workers):
            time.sleep(0.2)
        assert not [p for p in workers if _alive(p)], "parse workers outlived the killed server"
    finally:
        stop_child(proc)
