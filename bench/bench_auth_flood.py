"""A real read's latency while an attacker sends requests with random API keys (issue 14, item 6).

    .venv/bin/python bench/bench_auth_flood.py                      # this checkout
    .venv/bin/python bench/bench_auth_flood.py --server-path DIR    # another version's server/ folder

`netra serve` runs in its own process (embedded chDB in a temporary folder) with a few traces. The
reader times ``GET /usage/tenants/apex`` with a valid key, one request at a time, for ``--seconds``:
first idle, then while an attacker process sends ``--rate`` requests/s (each with a new random
``nk_...`` key, over ``--connections`` keep-alive connections, from the same address) to
``GET /api/me``. Between the phases the attack runs alone for half as long, to measure the server's
CPU time per attacker request. It prints the reader's median and p90 in both phases, that CPU time,
and what the attacker's requests were answered (401: looked up or cached as wrong; 429: refused by the failure limit before
any lookup). The machine is shared: compare the two phases of one run, and runs of two versions made
one after the other, as ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import secrets
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from netra_server.auth import new_key
from netra_server.launch import free_port, start_serve, stop_child


def _start(data_dir: Path, port: int, key: str, server_path: str | None) -> subprocess.Popen[bytes]:
    env = {"NETRA_ALERTS": "off"}
    if server_path:
        env["PYTHONPATH"] = server_path + os.pathsep + os.environ.get("PYTHONPATH", "")
    return start_serve(data_dir, port=port, api_key=key, args=["--parse-workers", "0"], env=env, timeout=90)


def _seed(base: str, key: str) -> None:
    """A few traces of tenant apex (OTLP/JSON), so the read aggregates something."""
    now = time.time_ns()
    spans = [
        {"traceId": secrets.token_hex(16), "spanId": secrets.token_hex(8), "name": "chat", "kind": 1,
         "startTimeUnixNano": str(now - i * 1_000_000_000), "endTimeUnixNano": str(now - i * 1_000_000_000 + 5_000_000),
         "attributes": [{"key": "netra.tenant_id", "value": {"stringValue": "apex"}},
                        {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o-mini"}},
                        {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "100"}},
                        {"key": "gen_ai.usage.output_tokens", "value": {"intValue": "20"}}]}
        for i in range(200)
    ]
    body = {"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"scope": {"name": "b"}, "spans": spans}]}]}
    r = httpx.post(base + "/v1/traces", json=body, headers={"x-api-key": key}, timeout=30)
    r.raise_for_status()


def _read(base: str, key: str, seconds: float) -> list[float]:
    times: list[float] = []
    with httpx.Client(base_url=base, headers={"x-api-key": key}, timeout=30) as c:
        c.get("/usage/tenants/apex").raise_for_status()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            t0 = time.perf_counter()
            r = c.get("/usage/tenants/apex")
            times.append((time.perf_counter() - t0) * 1000)
            assert r.status_code == 200, r.text
    return times


def _attack(base: str, rate: float, connections: int, seconds: float, out: Any) -> None:
    async def run() -> Counter[int]:
        statuses: Counter[int] = Counter()
        interval = connections / rate
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as c:
            end = time.monotonic() + seconds

            async def worker(i: int) -> None:
                next_at = time.monotonic() + i * interval / connections
                while time.monotonic() < end:
                    await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                    next_at += interval
                    key = new_key()
                    try:
                        r = await c.get("/api/me", headers={"x-api-key": key})
                        statuses[r.status_code] += 1
                    except httpx.HTTPError:
                        statuses[-1] += 1

            await asyncio.gather(*(worker(i) for i in range(connections)))
        return statuses

    out.put(dict(asyncio.run(run())))


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _summary(times: list[float]) -> str:
    q = statistics.quantiles(times, n=10)
    return f"median {statistics.median(times):6.1f} ms   p90 {q[8]:6.1f} ms   ({len(times)} reads)"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=15.0, help="length of each phase")
    ap.add_argument("--rate", type=float, default=374.0, help="attacker requests per second")
    ap.add_argument("--connections", type=int, default=16, help="attacker connections")
    ap.add_argument("--server-path", default=None, help="import netra_server from this folder (another version)")
    args = ap.parse_args()
    key = new_key()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="netra-bench-auth-") as tmp:
        proc = _start(Path(tmp) / "data", port, key, args.server_path)
        try:
            _seed(base, key)
            idle = _read(base, key, args.seconds)
            # the attack alone: the server's CPU time per attacker request (robust on a loaded machine)
            out: Any = mp.Queue()
            cpu0 = _cpu_seconds(proc.pid)
            _attack(base, args.rate, args.connections, args.seconds / 2, out)
            alone = out.get()
            cpu_per_request = (_cpu_seconds(proc.pid) - cpu0) / max(1, sum(alone.values()))
            attacker = mp.Process(target=_attack, args=(base, args.rate, args.connections, args.seconds + 2, out))
            attacker.start()
            time.sleep(1.0)  # the attack is under way
            attacked = _read(base, key, args.seconds)
            statuses = out.get(timeout=args.seconds + 60)
            attacker.join()
        finally:
            stop_child(proc)
    sent = sum(statuses.values())
    print(f"server: {args.server_path or 'this checkout'}")
    print(f"idle:            {_summary(idle)}")
    print(f"under attack:    {_summary(attacked)}")
    print(f"ratio of medians: {statistics.median(attacked) / statistics.median(idle):.2f}x")
    print(f"server CPU per attacker request (attack alone, {sum(alone.values())} requests, answers {alone}): "
          f"{cpu_per_request * 1e6:.0f} us")
    print(f"attacker: {sent} requests in {args.seconds + 2:.0f} s ({sent / (args.seconds + 2):.0f}/s), answers {dict(statuses)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
