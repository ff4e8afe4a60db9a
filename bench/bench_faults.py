"""Fault injection: nothing acknowledged is lost, nothing is counted twice (kill -9, full disk).

    .venv/bin/python bench/bench_faults.py                 # every run (the disk runs need root)
    .venv/bin/python bench/bench_faults.py --runs kill9-journal,disk-full --seconds 20

`netra serve` runs in its own process (embedded chDB). ``--senders`` threads each export spans of
their own tenant through the real ``OTLPSpanExporter`` (protobuf; its own retries: 429/502/503/504
and connection errors, honouring Retry-After) in batches of ``--batch`` spans, one trace per batch;
a batch whose export fails is exported again (as a persistent queue would), up to ``--attempts``
times. Every span but a batch's root carries usage (3 input + 2 output tokens, $0.001), so every
stored span with usage counts once.

Runs:
  * ``kill9-journal`` / ``kill9-no-journal``: the server is SIGKILLed (``--kills``, once by default) while the exporters
    send, and restarted at once (with the ingest journal: acknowledged spans are only in the journal
    at the kill; without: answered after their INSERT).
  * ``disk-full``: the data folder is a 20 MiB tmpfs and the free-space floor is off: the disk fills
    while the exporters send (the store's INSERTs and the journal's appends fail); after a while
    the server is SIGKILLed, the tmpfs grows (an operator freeing space), the server restarts.
  * ``disk-floor``: the same with a floor of half the tmpfs: the receiver refuses before a write can fail; the
    tmpfs grows while the server runs, and ingest resumes by itself.

At the end of a run, usage is read through the API (``/usage/tenants/{id}`` per tenant: what a
bill would say), the server stops, and the store is read directly (every row, duplicates included)
in a separate process. Printed per run: spans sent, acknowledged (export SUCCESS), stored (distinct
span ids), counted (requestsCount; tokens and cost checked against it), acknowledged but not stored
(must be 0), double counted (counted - stored spans with usage, must be 0), and the exporters' failed exports.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from netra_server.launch import free_port

KEY = "bench-faults-key-0123456789abcdef"
T0 = 1_767_225_600_000_000_000
MiB = 1024 * 1024


@dataclass
class Server:
    data_dir: Path
    port: int
    args: list[str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120) -> None:
        cmd = [sys.executable, "-m", "netra_server", "serve", "--data-dir", str(self.data_dir), "--port",
               str(self.port), "--api-key", KEY, "--rollup-interval", "0", "--no-alerts", "--log-level", "warning",
               *self.args]
        self.proc = subprocess.Popen(cmd, stdout=open(self.log, "ab"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"netra serve exited {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise TimeoutError("netra serve did not start")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=120)

    def healthz(self) -> dict[str, Any]:
        try:
            return dict(httpx.get(self.url + "/healthz", timeout=2).json())
        except (httpx.HTTPError, ValueError):
            return {}


@dataclass
class Sender:
    tenant: str
    first: int
    pad: int
    batch: int
    sent: set[str] = field(default_factory=set)
    acked: set[str] = field(default_factory=set)
    #: spans with usage (every span of a batch but its root)
    usage: set[str] = field(default_factory=set)
    failed_exports: int = 0
    gave_up: int = 0


class _Batches:
    """Batches of real SDK spans (one trace each) of one tenant, made as they are sent."""

    def __init__(self, s: Sender) -> None:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

        class Collect(SpanExporter):
            def __init__(self) -> None:
                self.spans: list[Any] = []

            def export(self, spans: Any) -> SpanExportResult:
                self.spans.extend(spans)
                return SpanExportResult.SUCCESS

        self.s = s
        self.collect = Collect()
        self.provider = TracerProvider(resource=Resource.create({"service.name": "bench-faults"}))
        self.provider.add_span_processor(SimpleSpanProcessor(self.collect))
        self.tracer = self.provider.get_tracer("bench-faults")
        self.attrs: dict[str, Any] = {"netra.tenant_id": s.tenant, "gen_ai.usage.input_tokens": 3, "gen_ai.usage.output_tokens": 2,
                      "gen_ai.usage.cost": "0.001", "gen_ai.response.model": "bench-model"}
        self.n = 0

    def next(self) -> list[Any]:
        from opentelemetry.trace import set_span_in_context

        s, tr, attrs = self.s, self.tracer, self.attrs
        start = T0 + (s.first + self.n) * 1_000_000
        self.n += 1
        # the root has no usage of its own (under the billing rule a parent's usage would not count anyway)
        root = tr.start_span(f"{s.tenant}-{self.n}", start_time=start, attributes={"netra.tenant_id": s.tenant})
        for i in range(s.batch - 1):
            extra = {"pad": base64.b64encode(os.urandom(s.pad * 3 // 4)).decode()} if s.pad else {}
            tr.start_span("call", context=set_span_in_context(root), start_time=start + i,
                          attributes={**attrs, **extra}).end(end_time=start + i + 1000)
        root.end(end_time=start + s.batch + 1000)
        out, self.collect.spans = self.collect.spans, []
        return out


def _send(server: Server, sender: Sender, stop: threading.Event, attempts: int, pace: float) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import SpanExportResult

    batches = _Batches(sender)
    exp = OTLPSpanExporter(endpoint=server.url + "/v1/traces", headers={"x-api-key": KEY}, timeout=30)
    try:
        while not stop.is_set():
            batch = batches.next()
            ids = {format(s.context.span_id, "016x") for s in batch}
            sender.sent |= ids
            sender.usage |= {format(s.context.span_id, "016x") for s in batch if s.parent is not None}
            for _ in range(attempts):
                if exp.export(batch) is SpanExportResult.SUCCESS:
                    sender.acked |= ids
                    break
                sender.failed_exports += 1
            else:
                sender.gave_up += 1
            if pace:
                time.sleep(pace)
    finally:
        exp.shutdown()
        batches.provider.shutdown()


_CHECK = r"""
import json, sys
from netra_server.store import open_store
st = open_store("chdb://" + sys.argv[1])
rows = st.backend.query("SELECT span_id, count() AS n FROM netra_spans GROUP BY span_id")
final = st.backend.query("SELECT count() AS n FROM netra_spans FINAL")[0]["n"]
print(json.dumps({"ids": [r["span_id"] for r in rows], "raw": sum(r["n"] for r in rows), "final": final}))
st.close()
"""


def _read_store(store_dir: Path) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", _CHECK, str(store_dir)], check=True, capture_output=True, text=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _mount(path: Path, mib: int) -> None:
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={mib}m", "tmpfs", str(path)], check=True)


def _resize(path: Path, mib: int) -> None:
    subprocess.run(["mount", "-o", f"remount,size={mib}m", str(path)], check=True)


def run(name: str, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    disk = name.startswith("disk")
    folder = root / name
    folder.mkdir()
    if disk:
        _mount(folder, args.tmpfs_mb)
    data_dir = folder / "data"
    flags = ["--journal-flush-seconds", "0.5", *args.serve_args.split()]
    if name == "kill9-no-journal":
        flags.append("--no-journal")
    flags += ["--min-free-disk-mb", str(args.tmpfs_mb // 2) if name == "disk-floor" else "0"]
    server = Server(data_dir, free_port(), flags, root / f"{name}.log")
    senders = [Sender(f"{name}-t{i}", i * 100_000, 3000 if disk else 0, args.batch) for i in range(args.senders)]
    events: list[str] = []
    stop = threading.Event()
    try:
        server.start()
        threads = [threading.Thread(target=_send, args=(server, s, stop, args.attempts, 0.0)) for s in senders]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        if name.startswith("kill9"):
            for k in range(args.kills):
                at = args.seconds * (k + 1) / (args.kills + 1)
                time.sleep(max(0.0, t0 + at - time.monotonic()))
                server.kill()
                events.append(f"SIGKILL at {time.monotonic() - t0:.1f}s")
                server.start()
        else:
            refused_since = None
            while time.monotonic() - t0 < args.seconds:
                h = server.healthz()
                full = h.get("ingest") == "refusing" or shutil.disk_usage(folder).free < 4 * MiB
                if full and refused_since is None:
                    refused_since = time.monotonic()
                    events.append(f"disk full/refusing at {refused_since - t0:.1f}s ({h.get('reason', 'no space')[:60]})")
                if refused_since is not None and time.monotonic() - refused_since > 2:
                    break
                time.sleep(0.2)
            if name == "disk-full":
                server.kill()
                events.append(f"SIGKILL at {time.monotonic() - t0:.1f}s (disk full)")
                _resize(folder, 1024)
                events.append("tmpfs grown to 1 GiB")
                server.start()
            else:
                _resize(folder, 1024)
                events.append(f"tmpfs grown to 1 GiB at {time.monotonic() - t0:.1f}s (server running)")
        time.sleep(max(0.0, t0 + args.seconds - time.monotonic()))
        stop.set()  # each sender finishes the batch it is sending (its exporter retries included)
        for t in threads:
            t.join(timeout=300)
        counted: dict[str, Any] = {"requests": 0, "tokens": 0, "cost": Decimal(0)}
        with httpx.Client(base_url=server.url, headers={"x-api-key": KEY}, timeout=120) as c:
            for s in senders:
                d = c.get(f"/usage/tenants/{s.tenant}", params={"consistency": "strong"}).raise_for_status().json()["data"]
                counted["requests"] += d["requestsCount"]
                counted["tokens"] += d["tokenCount"]
                counted["cost"] += Decimal(str(d["totalCost"]))
        server.stop()
        store = _read_store(data_dir / "store")
        log = server.log.read_text(errors="replace")
        write_failures = log.count("into the store failed") + log.count("to the ingest journal failed")
        floor_refusals = log.count("--min-free-disk-mb")
    finally:
        stop.set()
        server.stop()
        if disk:
            subprocess.run(["umount", "-l", str(folder)], check=False)
    sent = set().union(*(s.sent for s in senders))
    acked = set().union(*(s.acked for s in senders))
    stored = set(store["ids"]) & sent
    billable = stored & set().union(*(s.usage for s in senders))
    return {
        "run": name,
        "sent": len(sent),
        "acked": len(acked),
        "stored": len(stored),
        "counted": counted["requests"],
        "lost": len(acked - stored),
        "double": counted["requests"] - len(billable),
        "tokens_ok": counted["tokens"] == 5 * len(billable),
        "cost_ok": counted["cost"] == Decimal("0.001") * len(billable),
        "raw_rows": store["raw"],
        "failed_exports": sum(s.failed_exports for s in senders),
        "gave_up": sum(s.gave_up for s in senders),
        "write_failures": write_failures,
        "floor_logged": floor_refusals,
        "events": events,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", default="kill9-journal,kill9-no-journal,disk-full,disk-floor")
    ap.add_argument("--senders", type=int, default=4)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--seconds", type=float, default=10.0, help="sending time of one run (default 10)")
    ap.add_argument("--keep", action="store_true", help="keep the server logs (kept anyway when a run fails)")
    ap.add_argument("--kills", type=int, default=1, help="SIGKILLs in a kill9 run (default 1)")
    ap.add_argument("--tmpfs-mb", type=int, default=20, help="size of the disk runs' tmpfs (default 20)")
    ap.add_argument("--attempts", type=int, default=3, help="exports of one batch before giving up (default 3)")
    ap.add_argument("--serve-args", default="--parse-workers 0",
                    help="extra `netra serve` flags (default '--parse-workers 0': a quicker start on a busy machine)")
    args = ap.parse_args()
    results = []
    root = Path(tempfile.mkdtemp(prefix="netra-faults-"))
    try:
        for name in args.runs.split(","):
            if name.startswith("disk") and os.geteuid() != 0:
                print(f"{name}: skipped (mounting a tmpfs needs root)")
                continue
            t = time.monotonic()
            r = run(name, args, root)
            r["seconds"] = round(time.monotonic() - t, 1)
            results.append(r)
            print(f"{name}: {'; '.join(r['events'])} ({r['seconds']} s)", flush=True)
    finally:
        if args.keep or any(r["lost"] or r["double"] for r in results):
            print(f"server logs kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    cols = ["run", "sent", "acked", "stored", "counted", "lost", "double", "tokens_ok", "cost_ok", "raw_rows",
            "failed_exports", "gave_up", "write_failures", "floor_logged"]
    print()
    print(" | ".join(f"{c:>16}" if i == 0 else f"{c:>9}" for i, c in enumerate(cols)))
    for r in results:
        print(" | ".join(f"{r[c]!s:>16}" if i == 0 else f"{r[c]!s:>9}" for i, c in enumerate(cols)))
    print("\nlost = acknowledged but not stored; double = counted - stored spans with usage (all but each batch's root); raw_rows = rows in the store "
          "before FINAL (re-deliveries after a kill are stored again and counted once); failed_exports = exports that "
          "failed after the exporter's own retries (the batch is exported again); write_failures = failed "
          "journal writes / INSERTs the server logged (once per outage); floor_logged = 'under the free-space floor' "
          "log lines (once per episode)")
    bad = [r["run"] for r in results if r["lost"] or r["double"] or not r["tokens_ok"] or not r["cost_ok"]]
    if bad:
        print(f"FAILED: {', '.join(bad)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
