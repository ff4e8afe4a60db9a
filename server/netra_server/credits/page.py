"""The dashboard's Credits page (``/ui/credits``): every account, or one tenant's balance over time,
ledger and usage by model and context. Same login and tenant limits as the other pages."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from netra_server.dashboard import views
from netra_server.dashboard.guards import page_auth
from netra_server.dashboard.routes import _env, _page, _query

from .api import ledger_of
from .ledger import CreditLedger, Entry

__all__ = ["router"]

router = APIRouter(prefix="/ui", include_in_schema=False)
_env.filters.setdefault("epoch", lambda t: time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)) if t else "—")
_env.filters["usd"] = lambda v: f"{Decimal(v):,.10f}".rstrip("0").rstrip(".") if v is not None else "—"

WIDTH, HEIGHT = 900.0, 180.0


@dataclass
class BalanceChart:
    """A step line of the balance after each movement in the range (SVG coordinates)."""

    points: str
    width: float
    height: float
    max_label: str
    min_label: str
    first_label: str
    last_label: str
    zero_y: float | None
    count: int


def balance_chart(before: Decimal, entries: list[Entry], start: float, end: float) -> BalanceChart | None:
    moves = [e for e in entries if e.amount != 0]
    if not moves and before == 0:
        return None
    values = [before] + [e.balance_after for e in moves]
    hi, lo = max(max(values), Decimal(0)), min(min(values), Decimal(0))
    span = (hi - lo) or Decimal(1)

    def y(v: Decimal) -> float:
        return float((hi - v) / span) * HEIGHT

    def x(t: float) -> float:
        return max(0.0, min(WIDTH, (t - start) / max(end - start, 1e-9) * WIDTH))

    pts = [(0.0, y(before))]
    for e in moves:
        px = x(e.at)
        pts.append((px, pts[-1][1]))
        pts.append((px, y(e.balance_after)))
    pts.append((WIDTH, pts[-1][1]))
    fmt = lambda t: time.strftime("%m-%d %H:%M", time.gmtime(t))  # noqa: E731
    return BalanceChart(
        points=" ".join(f"{a:.1f},{b:.1f}" for a, b in pts), width=WIDTH, height=HEIGHT,
        max_label=views.fmt_money(hi), min_label=views.fmt_money(lo), first_label=fmt(start), last_label=fmt(end),
        zero_y=y(Decimal(0)) if lo < 0 else None, count=len(moves),
    )


def _tenant_view(ledger: CreditLedger, project_id: str, tenant: str, start: float, end: float) -> dict[str, Any]:
    account = ledger.account(project_id, tenant)
    older = ledger.entries(project_id, tenant_id=tenant, until=start, limit=10_000)
    before = older[-1].balance_after if older else Decimal(0)
    in_range = ledger.entries(project_id, tenant_id=tenant, since=start, until=end, limit=10_000)
    return {
        "account": account,
        "chart": balance_chart(before, in_range, start, end),
        "entries": list(reversed(in_range))[:500],
        "by_model": ledger.usage(project_id, group_by="model", tenant_id=tenant, since=start, until=end),
        "by_context": ledger.usage(project_id, group_by="context", tenant_id=tenant, since=start, until=end),
    }


@router.get("/credits")
async def credits_page(request: Request) -> HTMLResponse:
    state, ctx = await page_auth(request)
    tenant, rng = _query(request, ctx)
    ledger = ledger_of(request)
    window = views.window_of(rng)
    start, end = window.start_ns / 1e9, window.end_ns / 1e9
    if tenant:
        data = await asyncio.to_thread(_tenant_view, ledger, ctx.project_id, tenant, start, end)
    else:
        data = {"accounts": await asyncio.to_thread(ledger.accounts, ctx.project_id)}
    return await _page(request, state, ctx, "credits.html", "credits", **data)
