"""Credits: reserve + confirm round trips per second against `netra serve`, and the ledger check after.

    .venv/bin/python bench/bench_credits.py                  # 8 client threads, 10 s
    .venv/bin/python bench/bench_credits.py --threads 16 --seconds 20 --tenants 4

`netra serve` runs in its own process (embedded chDB and the SQLite credit ledger in a temporary
folder). Each client thread loops: reserve 0.01 USD for one of ``--tenants`` tenants, confirm it with
0.004 USD (the rest is released). Prints the operations per second (one operation = reserve + confirm,
two HTTP requests, four ledger entries), the latency of reserve and of confirm (p50, p99), and the
server's ``/api/credits/verify`` verdict. Shared machine: compare runs made in the same time window.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))

from netra_server.testing import run_server

from netra.credits import CreditsClient


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--tenants", type=int, default=1, help="tenants the threads spread over (1: all contend)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, run_server(tmp, subprocess=True) as srv:
        tenants = [f"bench-{i}" for i in range(args.tenants)]
        with CreditsClient(srv.base_url, srv.api_key) as admin:
            for t in tenants:
                admin.grant(t, "1000000")
        reserve_ms: list[float] = []
        confirm_ms: list[float] = []
        lock = threading.Lock()
        stop = time.monotonic() + args.seconds

        def worker(i: int) -> None:
            mine_r, mine_c = [], []
            tenant = tenants[i % len(tenants)]
            with CreditsClient(srv.base_url, srv.api_key, max_retries=0) as c:
                while time.monotonic() < stop:
                    t0 = time.perf_counter()
                    r = c.reserve(tenant, "0.01")
                    t1 = time.perf_counter()
                    c.confirm(r, amount="0.004")
                    t2 = time.perf_counter()
                    mine_r.append((t1 - t0) * 1000)
                    mine_c.append((t2 - t1) * 1000)
            with lock:
                reserve_ms.extend(mine_r)
                confirm_ms.extend(mine_c)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(args.threads)]
        start = time.monotonic()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        wall = time.monotonic() - start
        ops = len(reserve_ms)

        def pct(xs: list[float], q: int) -> float:
            return statistics.quantiles(xs, n=100)[q - 1] if len(xs) > 1 else float("nan")

        print(f"{args.threads} threads, {args.tenants} tenant(s), {wall:.1f} s: {ops} reserve+confirm, "
              f"{ops / wall:,.0f} per second")
        print(f"reserve p50 {pct(reserve_ms, 50):.1f} ms, p99 {pct(reserve_ms, 99):.1f} ms; "
              f"confirm p50 {pct(confirm_ms, 50):.1f} ms, p99 {pct(confirm_ms, 99):.1f} ms")
        with srv.client() as http:
            verdict = http.get("/api/credits/verify").json()["data"]
        with CreditsClient(srv.base_url, srv.api_key) as c:
            spent = sum((c.get_account(t).spent for t in tenants), Decimal(0))
        ok = verdict["ok"] and spent == Decimal("0.004") * ops
        print(f"ledger: verify {'ok' if verdict['ok'] else verdict['problems']}; spent {spent} USD "
              f"{'=' if spent == Decimal('0.004') * ops else '!='} {ops} x 0.004")
        return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
