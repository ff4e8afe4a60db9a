"""Rendering a large page with exact money: ExactJSONResponse (Decimal digits) vs FastAPI's default.

    .venv/bin/python bench/bench_money_json.py [--items 1000] [--rounds 30]

The page is a ``POST /sdk/traces`` answer of ``--items`` traces (1000 is the server's largest page),
with the TraceSummary keys of docs/design.md and costs with 10 decimal places, as the store has them.

* ``before``: what the routes did: money as ``float(d)``, the route returns a ``dict`` and FastAPI
  renders it as for any ``-> dict[str, Any]`` route (pydantic validates it and dumps it to JSON).
* ``after``: money stays ``Decimal``; the route returns ``ExactJSONResponse`` (orjson, each Decimal
  written as a number with its exact digits).

Measured twice, rounds of ``before`` and ``after`` interleaved, medians reported:
1. rendering alone (content -> bytes);
2. a whole request through FastAPI (httpx's ASGI transport: routing, the endpoint building the page
   from the rows, rendering, the ASGI send), so the share of rendering in a request shows.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
from fastapi import FastAPI
from netra_server.responses import ExactJSONResponse
from pydantic import TypeAdapter


def rows(n: int) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        out.append(
            {
                "trace_id": f"{i:032x}",
                "name": "meeting-summarization",
                "start_ns": 1_767_225_600_000_000_000 + i * 1_000_000,
                "tokens": (1000 + i, 200 + i % 50, 100),
                # 10 decimal places, like Decimal(18, 10) in the store
                "cost": (Decimal(1000 + i) * Decimal("0.00000015") + Decimal(200 + i % 50) * Decimal("0.0000006"))
                .quantize(Decimal("1e-10")),
            }
        )
    return out


def page(data: list[dict[str, Any]], money: Callable[[Decimal], Any]) -> dict[str, Any]:
    items = []
    for r in data:
        i, o, c = r["tokens"]
        items.append(
            {
                "id": r["trace_id"], "name": r["name"], "kind": "SPAN_KIND_SERVER", "latency_ms": 420,
                "start_time": "2026-01-01T00:00:00.000000Z", "end_time": "2026-01-01T00:00:00.420000Z",
                "cursor": "eyJ2IjpbIjIwMjYtMDEtMDFUMDA6MDA6MDBaIiwiMDAwMCJdfQ.c2lnbmF0dXJlLW9mLXRoZS1jdXJzb3I",
                "organisation_id": "org-1", "project_id": "proj-1", "session_id": "meeting-42",
                "tenant_id": "apex-legal", "user_id": "alice", "environment": "production",
                "models": ["gpt-4o-mini"], "prompt_tokens": i, "completion_tokens": o, "cached_tokens": c,
                "total_tokens": i + o, "total_cost": money(r["cost"]), "has_error": False, "service": "meetingmind",
            }
        )
    return {"data": {"data": items, "pageInfo": {"hasNextPage": True}}}


def fastapi_default_render() -> Callable[[dict[str, Any]], bytes]:
    """What FastAPI does with the dict a ``-> dict[str, Any]`` route returns (its fast path)."""
    adapter: TypeAdapter[dict[str, Any]] = TypeAdapter(dict[str, Any])

    def render(content: dict[str, Any]) -> bytes:
        return adapter.dump_json(adapter.validate_python(content))

    return render


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1e3


def bench_render(data: list[dict[str, Any]], rounds: int) -> tuple[float, float, int, int]:
    before_render = fastapi_default_render()
    before: list[float] = []
    after: list[float] = []
    floats, decimals = page(data, float), page(data, lambda d: d)
    for _ in range(rounds):
        t = time.perf_counter()
        b = before_render(floats)
        before.append(time.perf_counter() - t)
        t = time.perf_counter()
        a = ExactJSONResponse(decimals).body
        after.append(time.perf_counter() - t)
    return median_ms(before), median_ms(after), len(b), len(a)


def app_for(data: list[dict[str, Any]]) -> FastAPI:
    app = FastAPI()

    @app.post("/before")
    async def before() -> dict[str, Any]:
        return page(data, float)

    @app.post("/after", response_class=ExactJSONResponse)
    async def after() -> ExactJSONResponse:
        return ExactJSONResponse(page(data, lambda d: d))

    return app


async def bench_requests(data: list[dict[str, Any]], rounds: int) -> tuple[float, float]:
    transport = httpx.ASGITransport(app=app_for(data))
    times: dict[str, list[float]] = {"/before": [], "/after": []}
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        for path in times:  # warm up
            (await client.post(path)).raise_for_status()
        for _ in range(rounds):
            for path, samples in times.items():
                t = time.perf_counter()
                r = await client.post(path)
                samples.append(time.perf_counter() - t)
                r.raise_for_status()
        exact = json.loads((await client.post("/after")).content, parse_float=Decimal)["data"]["data"]
        assert [x["total_cost"] for x in exact] == [r["cost"] for r in data], "after: money is not exact"
    return median_ms(times["/before"]), median_ms(times["/after"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=30)
    args = ap.parse_args()
    data = rows(args.items)
    rb, ra, sb, sa = bench_render(data, args.rounds)
    print(f"page of {args.items} traces, {args.rounds} rounds, medians")
    print(f"render only      before (float, FastAPI default): {rb:7.2f} ms  {sb:,} bytes")
    print(f"                 after  (Decimal, ExactJSONResponse): {ra:7.2f} ms  {sa:,} bytes   ratio {ra / rb:.2f}")
    qb, qa = asyncio.run(bench_requests(data, args.rounds))
    print(f"whole request    before: {qb:7.2f} ms")
    print(f"                 after:  {qa:7.2f} ms   ratio {qa / qb:.2f}")


if __name__ == "__main__":
    main()
