"""``/healthz`` latency while small gzip bodies that inflate to tens of megabytes arrive.

    .venv/bin/python bench/bench_gzip_bombs.py [--seconds 10] [--bomb-mb 58]

`netra serve` runs in its own process. One thread polls ``GET /healthz`` (a route that does no I/O:
its latency is the event loop's) for ``--seconds`` without bombs, then as long again while
``--senders`` threads POST a gzip body of under 64 KiB to ``/v1/traces`` in a loop: an OTLP request
whose one span has a ``--bomb-mb`` MB attribute of one repeated byte (the server answers 400: the
attribute is over its limit, once the body is inflated and decoded). Prints p50/p99/max of the
``/healthz`` latency in both phases (the ratio is what matters on a shared machine).
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from netra_server.launch import free_port

KEY = "bench-bombs-key-0123456789abcdef"
T0 = 1_767_225_600_000_000_000


def _bomb(mb: int) -> bytes:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    req = ExportTraceServiceRequest()
    sp = req.resource_spans.add().scope_spans.add().spans.add(
        trace_id=b"\1" * 16, span_id=b"\2" * 8, name="bomb", start_time_unix_nano=T0, end_time_unix_nano=T0 + 1)
    sp.attributes.add(key="pad").value.string_value = "a" * (mb * 1_000_000)
    return gzip.compress(req.SerializeToString(), 9)


def _poll(url: str, seconds: float) -> list[float]:
    out: list[float] = []
    end = time.monotonic() + seconds
    with httpx.Client(timeout=30) as c:
        while time.monotonic() < end:
            t = time.perf_counter()
            c.get(url + "/healthz").raise_for_status()
            out.append((time.perf_counter() - t) * 1000)
            time.sleep(0.005)
    return out


def _stats(ms: list[float]) -> str:
    q = statistics.quantiles(ms, n=100)
    return f"n={len(ms):5d}  p50 {q[49]:7.2f} ms  p99 {q[98]:7.2f} ms  max {max(ms):7.2f} ms"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--bomb-mb", type=int, default=58)
    ap.add_argument("--senders", type=int, default=2)
    ap.add_argument("--serve-args", default="--parse-workers 0",
                    help="extra `netra serve` flags (default: decode in threads of the server process)")
    args = ap.parse_args()
    bomb = _bomb(args.bomb_mb)
    print(f"gzip body: {len(bomb):,} bytes, inflating to about {args.bomb_mb} MB")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="netra-bombs-") as d:
        proc = subprocess.Popen([sys.executable, "-m", "netra_server", "serve", "--data-dir", str(Path(d)), "--port",
                                 str(port), "--api-key", KEY, "--rollup-interval", "0", "--no-alerts",
                                 *args.serve_args.split()], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError("netra serve did not start")
                time.sleep(0.1)
            idle = _poll(url, args.seconds)
            stop = threading.Event()
            answers: list[int] = []

            def send() -> None:
                with httpx.Client(timeout=60) as c:
                    while not stop.is_set():
                        r = c.post(url + "/v1/traces", content=bomb, headers={
                            "x-api-key": KEY, "content-type": "application/x-protobuf", "content-encoding": "gzip"})
                        answers.append(r.status_code)

            senders = [threading.Thread(target=send) for _ in range(args.senders)]
            for t in senders:
                t.start()
            loaded = _poll(url, args.seconds)
            stop.set()
            for t in senders:
                t.join()
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    print(f"/healthz idle:        {_stats(idle)}")
    print(f"/healthz under bombs: {_stats(loaded)}   ({len(answers)} bombs answered: {sorted(set(answers))})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
