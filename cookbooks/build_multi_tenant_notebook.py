"""Builds ``multi_tenant_cost_tracking.ipynb`` (outputs cleared) from this script.

The notebook shows the tier configs, the rate limiter and ``MultiTenantMeetingSummarizer`` inline; that
code is copied from the ``# region notebook:<name>`` blocks of ``netra_server/demo/meetingmind.py``,
so the cookbook and ``netra demo`` run the same code. Rebuild after changing either::

    .venv/bin/python cookbooks/build_multi_tenant_notebook.py          # writes the notebook
    .venv/bin/python cookbooks/build_multi_tenant_notebook.py --check  # exit 1 if it is stale
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
NOTEBOOK = HERE / "multi_tenant_cost_tracking.ipynb"
SOURCE = HERE.parent / "server" / "netra_server" / "demo" / "meetingmind.py"


def region(name: str) -> str:
    """The code between ``# region notebook:<name>`` and the next ``# endregion``."""
    text = SOURCE.read_text()
    m = re.search(rf"^# region notebook:{re.escape(name)}\n(.*?)^# endregion\n", text, re.MULTILINE | re.DOTALL)
    if m is None:
        raise SystemExit(f"{SOURCE}: no '# region notebook:{name}' ... '# endregion' block")
    return m.group(1).strip("\n")


def md(text: str) -> nbformat.NotebookNode:
    return new_markdown_cell(text.strip("\n"))


def code(text: str) -> nbformat.NotebookNode:
    return new_code_cell(text.strip("\n"))


def build() -> nbformat.NotebookNode:
    cells = [
        md("""
# Multi-tenant cost tracking with Netra: MeetingMind

**MeetingMind** is a B2B product that summarizes meetings. It serves three customers on three tiers:

| tenant | tier | latency SLA | calls per minute |
|---|---|---|---|
| Apex Legal | enterprise | P95 < 2 s | 60 |
| Stratex Consulting | professional | P95 < 3 s | 30 |
| TechStart Inc | starter | best effort | 10 |

Each customer must be billed for what it used, each tier's rate limit enforced and each tier's latency SLA
watched. In this notebook you will:

1. connect to a Netra server and instrument the `openai` client;
2. define the tiers and a `MultiTenantMeetingSummarizer` that sets tenant, session and user, enforces the
   tier's rate limit, calls OpenAI inside `Netra.start_span("meeting-summarization")`, records the usage
   with `set_usage` and flags slow calls with an `sla-breach` event;
3. summarize sample meetings for each tenant;
4. break usage and cost down per tenant, and check the SLAs;
5. read each tenant's usage back from Netra (`Netra.usage.get_tenant_usage`) for the last 24 hours, and
   check that every call was counted exactly once.

**It runs offline.** With `OPENAI_API_KEY` set it calls OpenAI. Without it, it calls a local
OpenAI-compatible endpoint that ships with Netra and simulates the model (deterministic output, realistic
token usage and latency). The `openai` client, the instrumentation, the exporter and the Netra server
are the real ones either way. With `NETRA_OTLP_ENDPOINT` and `NETRA_API_KEY` set it sends to that server;
without them it starts an embedded one with its data in a temporary folder.
"""),
        md("## 1. Setup"),
        code("""
import os
import tempfile
import threading
import time
from collections import deque
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, Protocol

import openai

from netra import Netra, UsageModel
from netra.instrumentation.instruments import InstrumentSet
from netra.pricing import price_table_version, price_tokens
from netra_server.demo.meetingmind import Meeting, percentile, sample_meetings
"""),
        code("""
resources = ExitStack()  # what this notebook starts; closed in the last cell

NETRA_ENDPOINT = os.environ.get("NETRA_OTLP_ENDPOINT")
NETRA_API_KEY = os.environ.get("NETRA_API_KEY")
if not NETRA_ENDPOINT:
    # No server given: start the embedded one (`netra serve` in a child process, data in a temp folder).
    from netra_server.testing import run_server

    server = resources.enter_context(run_server(tempfile.mkdtemp(prefix="meetingmind-"), subprocess=True))
    NETRA_ENDPOINT, NETRA_API_KEY = server.base_url, server.api_key
    print(f"Started an embedded Netra server at {NETRA_ENDPOINT}")
else:
    print(f"Sending to the Netra server at {NETRA_ENDPOINT}")

if os.environ.get("OPENAI_API_KEY"):
    client = openai.OpenAI()
    print("Calling the OpenAI API")
else:
    from netra_server.demo.fake_openai import FakeOpenAIConfig, FakeOpenAIServer

    latency_scale = float(os.environ.get("NETRA_FAKE_OPENAI_LATENCY_SCALE", "1"))
    fake = resources.enter_context(FakeOpenAIServer(config=FakeOpenAIConfig(latency_scale=latency_scale)))
    client = openai.OpenAI(base_url=fake.base_url, api_key="sk-local-notebook")
    print(f"No OPENAI_API_KEY: calling the local OpenAI-compatible endpoint at {fake.base_url} (simulated model)")

# Tracing and export; the OpenAI instrumentation traces every call of the client above.
Netra.init(app_name="meetingmind", environment="cookbook", endpoint=NETRA_ENDPOINT, api_key=NETRA_API_KEY,
           instruments={InstrumentSet.OPENAI})
"""),
        md("""
## 2. Tiers and tenants

A tier decides the model, what the summary contains (its *features*, which go into the prompt), how long
it may be, the latency SLA and the calls-per-minute limit. An over-limit call may wait for a free slot
for up to `max_queue_seconds` (paid tiers) or is rejected at once (starter).
"""),
        code(region("tiers")),
        md("""
## 3. Rate limits

`SlidingWindowLimiter` lets at most `calls_per_minute` calls start in any 60-second window, first come first
served. A call over the limit gets the next free slot when that slot is within the tier's queue time, and
is rejected (`RateLimitExceeded`) otherwise. Time comes from a `Clock`: the real one here; `netra demo`
uses a simulated clock to push several hundred meetings through in seconds.
"""),
        code(region("rate-limits")),
        md("""
## 4. The summarizer

For each meeting, `summarize`:

1. sets the **request context** with `Netra.set_tenant_id / set_session_id / set_user_id`: every span
   started afterwards in this context carries them, including the OpenAI instrumentation's span;
2. applies the tier's **rate limit** (a rejected call is recorded on the span and never sent);
3. builds the prompt from the tier's features and calls OpenAI inside
   `Netra.start_span("meeting-summarization")`;
4. prices the call from the **price table** (`netra.pricing.price_tokens`: real per-model prices, cached
   input tokens included) and records it on the span with `set_usage`;
5. compares the latency with the tier's **SLA** and adds an `sla-breach` event when it is over.

The OpenAI call is a child span that carries the same usage. Netra's **billing rule** counts every unit of
usage once: a span's usage counts unless a descendant recorded usage. So the tenant pays for the OpenAI
call once, and `meeting-summarization` still shows its own numbers in the trace view.
"""),
        code(region("summarizer")),
        md("""
## 5. Sample meetings

Eight meetings for Apex Legal, six for Stratex Consulting and twelve for TechStart Inc, all arriving now.
TechStart is on the starter tier (10 calls per minute, no queueing), so two of its twelve are rejected.
"""),
        code("""
meetings = sample_meetings({"apex-legal": 8, "stratex-consulting": 6, "techstart-inc": 12}, seed=11)
summarizer = MultiTenantMeetingSummarizer(client)

run_started = datetime.now(UTC)
results = [summarizer.summarize(meeting) for meeting in meetings]
run_ended = datetime.now(UTC)

print(f"{'meeting':28} {'status':12} {'model':24} {'in':>5} {'out':>5} {'cost (USD)':>11} {'latency':>9}")
for r in results:
    cost = f"{r.cost_usd:.6f}" if r.status == "ok" else "-"
    latency = f"{r.latency_ms:.0f} ms" if r.status == "ok" else "-"
    flag = "  SLA breach" if r.sla_breached else ""
    print(f"{r.meeting_id:28} {r.status:12} {r.model or '-':24} {r.input_tokens:>5} {r.output_tokens:>5} "
          f"{cost:>11} {latency:>9}{flag}")
"""),
        code("""
first = next(r for r in results if r.tenant_id == "apex-legal" and r.status == "ok")
print(f"{first.meeting_id} ({first.model}):\\n")
print(first.summary)
"""),
        md("""
## 6. Usage and cost per tenant

What the application measured, call by call. Prices come from the price table for the model each call
actually ran on (the dated model name the API answered with).
"""),
        code("""
models = sorted({r.model for r in results if r.status == "ok"})
print(f"Price table {price_table_version()}, USD per million tokens:")
for model in models:
    per_input = price_tokens(model, provider="openai", input_tokens=1_000_000).cost
    per_output = price_tokens(model, provider="openai", output_tokens=1_000_000).cost
    per_cached = price_tokens(model, provider="openai", input_tokens=1_000_000, cached_input_tokens=1_000_000).cost
    print(f"  {model:28} input {per_input:>7}   cached input {per_cached:>7}   output {per_output:>7}")

local = {}
for tenant in TENANTS.values():
    calls = [r for r in results if r.tenant_id == tenant.id and r.status == "ok"]
    local[tenant.id] = {
        "requests": len(calls),
        "rejected": sum(r.status == "rate_limited" for r in results if r.tenant_id == tenant.id),
        # sessions: every session with a request, served or not (a session is a unit of use)
        "sessions": len({r.session_id for r in results if r.tenant_id == tenant.id}),
        "tokens": sum(r.total_tokens for r in calls),
        "cost": sum((r.cost_usd for r in calls), Decimal(0)),
    }

print()
print(f"{'tenant':20} {'tier':13} {'requests':>8} {'rejected':>8} {'sessions':>8} {'tokens':>8} {'cost (USD)':>12}")
for tenant in TENANTS.values():
    t = local[tenant.id]
    print(f"{tenant.name:20} {tenant.tier.name:13} {t['requests']:>8} {t['rejected']:>8} {t['sessions']:>8} "
          f"{t['tokens']:>8} {t['cost']:>12.6f}")
"""),
        md("""
## 7. SLA monitoring

Each tier's SLA is on the 95th percentile of latency. Every call over the threshold carries an
`sla-breach` event, which the dashboard and alert rules can use.
"""),
        code("""
sla = {}
for tenant in TENANTS.values():
    latencies = [r.latency_ms for r in results if r.tenant_id == tenant.id and r.status == "ok"]
    p95 = percentile(latencies, 95)
    breaches = sum(r.sla_breached for r in results if r.tenant_id == tenant.id)
    limit = tenant.tier.sla_p95_ms
    verdict = "best effort" if limit is None else ("met" if p95 <= limit else "BREACHED")
    sla[tenant.id] = {"p95_ms": p95, "breaches": breaches, "verdict": verdict}
    print(f"{tenant.name:20} {tenant.tier.sla_label:12} P95 {p95:7.0f} ms   slow calls: {breaches:>2}   {verdict}")
"""),
        md("""
Alert rules turn this into notifications: one per tier with an SLA, on the tenant's P95 trace latency over a
five-minute window (TechStart is best effort and gets none).
"""),
        code("""
from netra_server.alerts.client import AlertsClient

alert_rules = [
    {"name": f"{t.id} P95 latency over {t.tier.sla_p95_ms} ms", "scope": "trace", "metric": "latency",
     "aggregation": "p95", "filters": [f"tenant_id = {t.id}"],
     "condition": {"op": ">", "threshold": t.tier.sla_p95_ms}, "window_seconds": 300, "interval_seconds": 60}
    for t in TENANTS.values()
    if t.tier.sla_p95_ms is not None
]
with AlertsClient(NETRA_ENDPOINT, NETRA_API_KEY) as alerts:
    existing = {rule["name"] for rule in alerts.list_rules()}
    for rule in alert_rules:
        if rule["name"] not in existing:
            alerts.create_rule(rule)
    print("\\n".join(sorted(rule["name"] for rule in alerts.list_rules())))
"""),
        md("""
## 8. Per-tenant usage from Netra, last 24 hours

`Netra.flush()` sends the spans still queued; the server acknowledges a batch only once it is stored. Then
`Netra.usage` reads each tenant's usage back: requests (calls whose usage counts), sessions, tokens and cost.
The cost is a `Decimal` in USD with every digit the server stored: money is never a float on the way, so a
bill added up from these amounts is exact.
"""),
        code("""
Netra.flush()
end = datetime.now(UTC)
start = end - timedelta(hours=24)

server_usage = {}
print(f"{'tenant':20} {'requests':>8} {'sessions':>8} {'tokens':>8} {'cost (USD)':>12}")
for tenant in TENANTS.values():
    usage = Netra.usage.get_tenant_usage(tenant.id, start_time=start, end_time=end)
    server_usage[tenant.id] = usage
    print(f"{tenant.name:20} {usage.request_count:>8} {usage.session_count:>8} {usage.token_count:>8} "
          f"{usage.total_cost:>12.6f}")
"""),
        md("""
Traces give the latency per request as the server saw it (the `meeting-summarization` span is the root of
each trace), so the SLA can be checked from the stored data too. Rate-limited requests are traces with an
error status and no usage.
"""),
        code("""
server_p95 = {}
for tenant in TENANTS.values():
    traces = list(Netra.usage.iter_traces(start, end, tenant_id=tenant.id))
    served = [t.latency_ms for t in traces if not t.has_error]
    server_p95[tenant.id] = percentile(served, 95)
    print(f"{tenant.name:20} traces {len(traces):>3}  rejected {sum(t.has_error for t in traces):>2}  "
          f"P95 {server_p95[tenant.id]:7.0f} ms  (measured in the app: {sla[tenant.id]['p95_ms']:.0f} ms)")
"""),
        md("""
## 9. Every call counted once

Each served request has two spans with usage: `meeting-summarization` (its `set_usage`) and the OpenAI call
below it. The trace's usage shows which one counts. Then each tenant's figures from the server are compared
with the application's own sums, the cost to the last digit (`==` on `Decimal`s, no tolerance).
"""),
        code("""
trace = Netra.usage.get_trace_usage(first.trace_id)
for span in trace.spans:
    print(f"{span.name:24} counted={span.counted!s:5}  tokens={span.own.total_tokens:>5}  cost={span.own.cost}")
print(f"trace total: {trace.total.request_count} request, {trace.total.total_tokens} tokens, {trace.total.total_cost} USD")

for tenant in TENANTS.values():
    mine, theirs = local[tenant.id], server_usage[tenant.id]
    same = (theirs.request_count == mine["requests"] and theirs.token_count == mine["tokens"]
            and theirs.total_cost_usd == mine["cost"])  # total_cost_usd: the exact Decimal (invoices)
    print(f"{tenant.name:20} server {theirs.request_count} requests / {theirs.total_cost:.6f} USD, "
          f"app {mine['requests']} / {mine['cost']:.6f}: {'consistent' if same else 'MISMATCH'}")
"""),
        md("""
## 10. Clean up

`Netra.shutdown()` flushes and stops the exporter; then the local endpoint and the embedded server (if this
notebook started them) stop.
"""),
        code("""
Netra.shutdown()
resources.close()
"""),
    ]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def _normalized(nb: nbformat.NotebookNode) -> str:
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:02d}"
    return nbformat.writes(nb) + "\n"


def main(argv: list[str]) -> int:
    text = _normalized(build())
    if "--check" in argv:
        if not NOTEBOOK.exists() or NOTEBOOK.read_text() != text:
            print(f"{NOTEBOOK.name} is stale: run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    NOTEBOOK.write_text(text)
    print(f"wrote {NOTEBOOK}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
