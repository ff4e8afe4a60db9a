"""Soak: `netra serve` under sustained ingest -- server memory over time, and tenant-usage reads meanwhile.

    .venv/bin/python bench/bench_soak.py                      # 15 minutes at 30,000 spans/s (the budgets)
    .venv/bin/python bench/bench_soak.py --minutes 2 --rate 20000 --sample-seconds 10
    .venv/bin/python bench/bench_soak.py --serve-args=--parse-workers=2

`netra serve` runs in its own process (embedded chDB in a temporary folder). ``--senders`` client
processes post 512-span OTLP/protobuf requests (bodies made by the real OTLP encoder from real SDK
spans, as in bench_server.py) at ``--rate`` spans/s in total, every span new: each request gets fresh
trace and span ids and current timestamps. Every ``--sample-seconds`` the bench records the server's
resident memory (RSS of the server process and its children, e.g. parse workers), the spans
acknowledged so far, and the tenant-usage route's latency (``GET /usage/tenants/{id}``, read every
0.2 s by the main process) over that interval: p50, p99, max.

Verdicts (docs/design.md): memory levels off -- the highest RSS of the last third of the run is at most
5% above the highest RSS of the middle third -- and stays under ``--rss-bound-mb``; reads p99 under
200 ms while ingesting at least 30,000 spans/s. At the end every acknowledged span must be counted once
(the project's request count equals the spans acknowledged).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from netra_server.launch import free_port, stop_child

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_server as bs  # the server start and the SDK-made spans are shared


def _sender(args: tuple[int, float, str, float, Any, Any]) -> tuple[int, int]:
    """Post fresh 512-span requests at ``rate`` spans/s until ``stop_at``; (acknowledged, failed requests)."""
    sender, rate, url, stop_at, go, progress = args
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    req = encode_spans(bs._make_spans(sender, 1)[0])
    spans = [sp for rs in req.resource_spans for ss in rs.scope_spans for sp in ss.spans]
    client = httpx.Client(headers={"x-api-key": bs.KEY, "content-type": "application/x-protobuf"}, timeout=120)
    go.wait()
    interval = bs.BATCH / rate
    seq = 0
    ok = failed = 0
    next_at = time.monotonic()
    while time.monotonic() < stop_at:
        now_ns = time.time_ns()
        for i, sp in enumerate(spans):
            seq += 1
            sp.trace_id = sender.to_bytes(4, "big") + (seq // 4 + 1).to_bytes(12, "big")
            sp.span_id = (seq + 1).to_bytes(8, "big")
            sp.start_time_unix_nano = now_ns - 50_000_000 + i
            sp.end_time_unix_nano = now_ns
        try:
            r = client.post(url, content=req.SerializeToString())
            if r.status_code == 200:
                ok += bs.BATCH
                progress[sender] = ok
            else:
                failed += 1
        except httpx.HTTPError:
            failed += 1
        next_at += interval
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:
            next_at = time.monotonic()  # behind: send as fast as the server answers, no catch-up burst
    return ok, failed


def _rss_mb(pid: int) -> float:
    import psutil

    proc = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)]) / 2**20


def _journal_bytes(data_dir: Path) -> int:
    """Bytes in the ingest journal's segment files (spans acknowledged, not yet inserted)."""
    return sum(p.stat().st_size for p in data_dir.glob("*-journal/segment-*.jsonl") if p.exists())


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=15.0)
    ap.add_argument("--rate", type=float, default=30_000.0, help="target spans/s, all senders together")
    ap.add_argument("--senders", type=int, default=4)
    ap.add_argument("--sample-seconds", type=float, default=30.0)
    ap.add_argument("--rss-bound-mb", type=float, default=1536.0, help="the documented memory bound to check")
    ap.add_argument("--consistency", choices=("bounded", "strong"), default=None,
                    help="the reads ask for this consistency (default: the server's, bounded)")
    ap.add_argument("--serve-args", default="", help="extra `netra serve` flags, space-separated")
    opts = ap.parse_args()
    bs.SERVE_ARGS[:] = opts.serve_args.split()

    tmp = Path(tempfile.mkdtemp(prefix="netra-soak-"))
    port = free_port()
    proc = bs._start_server(tmp / "data", port)
    api = httpx.Client(headers={"x-api-key": bs.KEY}, timeout=120)
    rows: list[dict[str, float]] = []
    try:
        ctx = mp.get_context("spawn")
        with ctx.Manager() as mgr:
            go = mgr.Event()
            acked = mgr.dict()  # spans acknowledged so far, per sender
            duration = opts.minutes * 60
            with ctx.Pool(opts.senders) as pool:
                url = f"http://127.0.0.1:{port}/v1/traces"
                stop_at_wall = time.time() + 5 + duration  # senders get their own monotonic clock: pass an offset
                res = pool.map_async(_sender_wall, [
                    (i, opts.rate / opts.senders, url, stop_at_wall, go, acked) for i in range(opts.senders)])
                time.sleep(5)  # the senders build their spans
                go.set()
                t0 = time.monotonic()
                last_t, last_acked = t0, 0
                reads: list[float] = []
                lags: list[float] = []  # staleness of each read: its start - its data_as_of, seconds
                waited = 0  # reads answered strong (they waited for the journal's INSERT)
                params = {"consistency": opts.consistency} if opts.consistency else {}
                next_sample = t0 + opts.sample_seconds
                print(f"{'t (s)':>7} {'RSS MB':>8} {'ingest/s':>9} {'reads':>6} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} "
                      f"{'stale s':>8} {'strong':>6} {'journal':>9}")
                while not res.ready():
                    t, wall = time.perf_counter(), time.time()
                    try:
                        r = api.get(f"http://127.0.0.1:{port}/usage/tenants/tenant-1", params=params)
                        r.raise_for_status()
                        reads.append((time.perf_counter() - t) * 1000)
                        waited += r.headers.get("x-netra-consistency") == "strong"
                        as_of = r.headers.get("x-netra-data-as-of")
                        if as_of:
                            lags.append(max(0.0, wall - datetime.fromisoformat(as_of.replace("Z", "+00:00")).timestamp()))
                    except httpx.HTTPError as exc:
                        print(f"read failed: {exc}", file=sys.stderr)
                    time.sleep(0.2)
                    now = time.monotonic()
                    if now >= next_sample:
                        a = sum(acked.values())
                        row = {"t": now - t0, "rss": _rss_mb(proc.pid), "rate": (a - last_acked) / (now - last_t),
                               "n": len(reads), "p50": _pct(reads, 0.5), "p99": _pct(reads, 0.99),
                               "max": max(reads, default=float("nan")), "stale": max(lags, default=float("nan")),
                               "journal": _journal_bytes(tmp / "data") / 2**20, "strong": waited}
                        rows.append(row)
                        print(f"{row['t']:7.0f} {row['rss']:8.0f} {row['rate']:9.0f} {row['n']:6d} "
                              f"{row['p50']:7.1f} {row['p99']:7.1f} {row['max']:7.1f} {row['stale']:8.2f} {waited:6d} "
                              f"{row['journal']:7.0f}MB", flush=True)
                        reads, lags, last_t, last_acked, waited = [], [], now, a, 0
                        next_sample += opts.sample_seconds
                results = res.get(timeout=600)
        ok = sum(r[0] for r in results)
        failed = sum(r[1] for r in results)
        counted = int(api.get(f"http://127.0.0.1:{port}/api/usage/summary",
                              params={"groupBy": "day", "consistency": "strong"})
                      .json()["data"]["total"]["requestsCount"])
        third = max(1, len(rows) // 3)
        mid = max((r["rss"] for r in rows[third:2 * third]), default=float("nan"))
        last = max((r["rss"] for r in rows[2 * third:]), default=float("nan"))
        busy = [r for r in rows if r["rate"] >= 30_000]
        print(f"\nacknowledged {ok:,} spans ({failed} requests refused or failed), counted {counted:,}: "
              f"{'OK' if counted == ok else 'MISMATCH'}")
        print(f"memory: highest RSS middle third {mid:.0f} MB, last third {last:.0f} MB "
              f"({last / mid:.3f}x): {'levels off' if last <= mid * 1.05 else 'still growing'}; "
              f"bound {opts.rss_bound_mb:.0f} MB: {'met' if max(r['rss'] for r in rows) <= opts.rss_bound_mb else 'NOT met'}")
        if busy:
            worst = max(r["p99"] for r in busy)
            print(f"reads while ingesting >= 30,000 spans/s ({len(busy)} of {len(rows)} intervals): "
                  f"median of interval p50s {statistics.median(r['p50'] for r in busy):.1f} ms, "
                  f"worst interval p99 {worst:.1f} ms (budget < 200 ms: {'met' if worst < 200 else 'NOT met'})")
        else:
            print("no interval ingested 30,000 spans/s: the read budget was not exercised at its rate")
        return 0 if counted == ok else 1
    finally:
        api.close()
        stop_child(proc, timeout=120)
        shutil.rmtree(tmp, ignore_errors=True)


def _sender_wall(args: tuple[int, float, str, float, Any, Any]) -> tuple[int, int]:
    sender, rate, url, stop_at_wall, go, progress = args
    return _sender((sender, rate, url, time.monotonic() + (stop_at_wall - time.time()), go, progress))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
