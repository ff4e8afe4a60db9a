"""The demo's report: per-tenant usage and prepaid credits read back from the server, printed as tables.

Figures come from the server through the usage and credits clients (``Netra.usage``,
``Netra.credits``); the calls the demo made (``local``) are kept beside them to check the two agree.
Costs are exact decimals; only the printed table rounds them (:func:`money`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

__all__ = [
    "CreditsRow",
    "TenantReport",
    "money",
    "print_credits",
    "print_report",
    "read_credits",
    "read_report",
    "wait_until_stored",
]


@dataclass
class TenantReport:
    tenant_id: str
    name: str
    tier: str
    sla_ms: int | None
    requests: int
    sessions: int
    tokens: int
    cost: Decimal  # USD, exact (the server's sum of the counted calls' costs)
    p95_ms: float | None
    traces: int  # every meeting is one trace (server)
    error_traces: int  # traces with an error status: rejected or failed calls (server)
    rate_limited: int  # calls the tier's limit rejected (the app)
    no_credit: int  # calls refused because the prepaid credit ran out (the app)
    failed: int  # calls the API failed (the app)
    sla_breaches: int
    local: Any = field(repr=False, default=None)  # meetingmind.TenantTotals from the calls made

    @property
    def sla_met(self) -> bool | None:
        if self.sla_ms is None or self.p95_ms is None:
            return None
        return self.p95_ms <= self.sla_ms


def read_report(usage: Any, start: datetime, end: datetime, local: Mapping[str, Any]) -> list[TenantReport]:
    """Per-tenant figures read back through the usage client (``Netra.usage``)."""
    from netra_server.demo.meetingmind import TENANTS, percentile

    reports = []
    for tenant in TENANTS.values():
        data = usage.get_tenant_usage(tenant.id, start, end)
        latencies: list[float] = []
        errors = breaches = traces = 0
        for trace in usage.iter_traces(start, end, tenant_id=tenant.id, limit=500):
            traces += 1
            if trace.has_error:
                errors += 1
                continue
            latencies.append(float(trace.latency_ms))
            if tenant.tier.sla_p95_ms is not None and trace.latency_ms > tenant.tier.sla_p95_ms:
                breaches += 1
        totals = local.get(tenant.id)
        reports.append(TenantReport(
            tenant_id=tenant.id,
            name=tenant.name,
            tier=tenant.tier.name,
            sla_ms=tenant.tier.sla_p95_ms,
            requests=data.request_count if data else 0,
            sessions=data.session_count if data else 0,
            tokens=data.token_count if data else 0,
            cost=data.total_cost_usd if data else Decimal(0),
            p95_ms=percentile(latencies, 95) if latencies else None,
            traces=traces,
            error_traces=errors,
            rate_limited=totals.rate_limited if totals else 0,
            no_credit=totals.no_credit if totals else 0,
            failed=totals.errors if totals else 0,
            sla_breaches=breaches,
            local=totals,
        ))
    return reports


def wait_until_stored(usage: Any, start: datetime, expected: Mapping[str, int], timeout: float = 30.0) -> None:
    """Wait until the server counts as many requests per tenant as were made (spans are in flight)."""
    deadline = time.monotonic() + timeout
    while True:
        end = datetime.now(UTC) + timedelta(seconds=1)
        counts = {t: (usage.get_tenant_usage(t, start, end) or None) for t in expected}
        if all(c is not None and c.request_count >= expected[t] for t, c in counts.items()):
            return
        if time.monotonic() > deadline:
            got = {t: (c.request_count if c else 0) for t, c in counts.items()}
            raise RuntimeError(f"the server counts {got} requests after {timeout:.0f} s; expected {dict(expected)}. "
                               "Spans were lost or the exporter could not reach the server.")
        time.sleep(0.25)


def money(value: Decimal) -> str:
    """For the table only (rounded to 6 or 4 decimals); the cost check compares the exact amounts."""
    return f"${value:,.6f}" if value < 1 else f"${value:,.4f}"


def print_report(console: Any, reports: Sequence[TenantReport], notes: Sequence[str],
                 credits: Sequence[CreditsRow] = ()) -> None:
    from rich.table import Table

    table = Table(title="MeetingMind: usage per tenant, read back through Netra.usage", title_justify="left")
    for col in ("Tenant", "Tier", "Requests", "Limited", "Sessions", "Tokens", "Cost (USD)", "P95", "SLA", "Status",
                "Slow calls"):
        table.add_column(col, justify="left" if col in ("Tenant", "Tier", "SLA", "Status") else "right")
    for r in reports:
        if r.sla_ms is None:
            status, slow = "-", "-"
        else:
            status = "[green]met[/]" if r.sla_met else "[red]BREACHED[/]"
            slow = f"{r.sla_breaches:,}"
        p95 = "-" if r.p95_ms is None else f"{r.p95_ms / 1000:.2f} s"
        sla = "best effort" if r.sla_ms is None else f"P95 < {r.sla_ms / 1000:g} s"
        table.add_row(r.name, r.tier, f"{r.requests:,}", f"{r.rate_limited + r.no_credit:,}", f"{r.sessions:,}",
                      f"{r.tokens:,}", money(r.cost), p95, sla, status, slow)
    table.add_section()
    table.add_row("Total", "", f"{sum(r.requests for r in reports):,}",
                  f"{sum(r.rate_limited + r.no_credit for r in reports):,}",
                  f"{sum(r.sessions for r in reports):,}", f"{sum(r.tokens for r in reports):,}",
                  money(sum((r.cost for r in reports), Decimal(0))), "", "", "", "")
    console.print()
    console.print(table)
    console.print("Limited: calls rejected by the tier's calls-per-minute limit or refused for want of prepaid "
                  "credit (not sent, not billed). Slow calls: calls over the SLA's latency.", highlight=False)
    if credits:
        print_credits(console, reports, credits)
    for note in notes:
        console.print(note, highlight=False)


@dataclass
class CreditsRow:
    tenant_id: str
    plan: Decimal  # the prepaid plan this run started with (USD)
    charged: Decimal  # what the ledger charged in this run (confirmations)
    balance: Decimal  # left at the end
    refused: int  # calls refused for want of credit
    refusal: str  # the first refusal's message


def read_credits(credits: Any, plans: Mapping[str, Any], local: Mapping[str, Any]) -> list[CreditsRow]:
    """Each tenant's prepaid plan, what this run charged and what is left, from ``Netra.credits``."""
    rows = []
    for tenant_id, plan in plans.items():
        account = credits.get_account(tenant_id)
        totals = local.get(tenant_id)
        rows.append(CreditsRow(tenant_id, plan.plan, plan.plan - account.balance, account.balance,
                               totals.no_credit if totals else 0, ""))
    return rows


def print_credits(console: Any, reports: Sequence[TenantReport], rows: Sequence[CreditsRow]) -> None:
    from rich.table import Table

    names = {r.tenant_id: (r.name, r.tier) for r in reports}
    table = Table(title="Prepaid credits (Netra.credits): reserved before each call, confirmed with its cost",
                  title_justify="left")
    for col in ("Plan", "Customer", "Prepaid (USD)", "Charged (USD)", "Balance (USD)", "Refused"):
        table.add_column(col, justify="left" if col in ("Customer", "Plan") else "right")
    for row in rows:
        name, tier = names.get(row.tenant_id, (row.tenant_id, ""))
        table.add_row(tier, name, money(row.plan), money(row.charged), money(row.balance), f"{row.refused:,}")
    console.print(table)
    for row in rows:
        if row.refused and row.refusal:
            name = names.get(row.tenant_id, (row.tenant_id, ""))[0]
            console.print(f"{name}: {row.refused} call(s) refused, e.g. \"{row.refusal}\"", highlight=False)
