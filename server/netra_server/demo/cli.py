"""``netra demo``: the cookbook's multi-tenant workload against a real server, then the usage report.

1. Uses the Netra server at ``--endpoint`` / ``NETRA_OTLP_ENDPOINT`` when given (with ``NETRA_API_KEY``),
   else starts the embedded one (``netra serve`` in a child process, data in ``~/.netra/demo``), or
   reuses the one a previous ``netra demo`` left running there.
2. Calls OpenAI when ``OPENAI_API_KEY`` is set, else the local OpenAI-compatible endpoint
   (:mod:`netra_server.demo.fake_openai`, a simulated model). The ``openai`` client, the
   instrumentation, the exporter and the server are the real ones either way.
3. Runs the MeetingMind workload (:mod:`netra_server.demo.meetingmind`): several hundred meetings across
   Apex Legal, Stratex Consulting and TechStart Inc, arriving over a simulated ten minutes; each
   tenant's calls-per-minute limit is applied on that simulated clock (queued calls do not really
   wait), and the admitted calls run for real, many at a time.
4. Reads usage back through ``Netra.usage`` (tenant usage, and the traces for P95 latency) and prints
   the per-tenant report next to the tier SLAs, and the dashboard address.

Steps 1 and 4 live in :mod:`netra_server.demo.server` and :mod:`netra_server.demo.report`; this module
holds the command, the alert rules, the workload and the run that ties them together.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from netra_server.demo.report import (
    TenantReport,
    money,
    print_report,
    read_credits,
    read_report,
    wait_until_stored,
)
from netra_server.demo.server import DemoServer, default_demo_dir, ensure_server

__all__ = [
    "DemoServer",
    "TenantReport",
    "add_command",
    "create_tier_alert_rules",
    "main",
    "read_report",
    "run_demo",
    "split_meetings",
]

DEFAULT_MEETINGS = 360
SIMULATED_MINUTES = 10
# the share of meetings per tenant (Apex is the biggest customer)
_SHARES: Mapping[str, float] = {"apex-legal": 0.45, "stratex-consulting": 0.33, "techstart-inc": 0.22}
# tenants whose meetings arrive in bursts (a team that uploads a day of recordings at once)
_BURSTS: Mapping[str, int] = {"stratex-consulting": 16, "techstart-inc": 12}


def add_command(sub: Any) -> None:
    """Register ``netra demo`` on the ``netra`` CLI's sub-parsers."""
    p = sub.add_parser(
        "demo",
        help="run the multi-tenant demo workload and print the per-tenant usage report",
        description=(
            "Start the embedded server (or use NETRA_OTLP_ENDPOINT), run the MeetingMind workload "
            "(three tenants, several hundred meetings) through the real openai client, and print the "
            "per-tenant report read back through Netra.usage. Offline unless OPENAI_API_KEY is set."
        ),
    )
    _arguments(p)
    p.set_defaults(func=run_demo)


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--meetings", type=int, default=DEFAULT_MEETINGS,
                   help=f"meetings to summarize across the three tenants (default {DEFAULT_MEETINGS})")
    p.add_argument("--endpoint", default=os.environ.get("NETRA_OTLP_ENDPOINT"),
                   help="a running Netra server (default: $NETRA_OTLP_ENDPOINT, else start the embedded one)")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="data folder of the embedded server (default: $NETRA_DEMO_DIR or ~/.netra/demo)")
    p.add_argument("--port", type=int, default=4318, help="port for the embedded server (default 4318, "
                   "or a free one if taken; 0 for any free port)")
    p.add_argument("--concurrency", type=int, default=24, help="meetings summarized at once (default 24)")
    p.add_argument("--latency-scale", type=float, default=1.0,
                   help="scale of the simulated model latency (1 = realistic, 0 = instant; offline only)")
    p.add_argument("--seed", type=int, default=7, help="seed of the sample meetings (default 7)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    keep = p.add_mutually_exclusive_group()
    keep.add_argument("--keep-running", dest="keep_running", action="store_true", default=None,
                      help="keep the embedded server (and its dashboard) running until Ctrl-C "
                      "(default when run in a terminal)")
    keep.add_argument("--exit", dest="keep_running", action="store_false",
                      help="stop the embedded server after the report")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m netra_server.demo.cli``: the same as ``netra demo``."""
    parser = argparse.ArgumentParser(prog="netra demo", description="the Netra multi-tenant demo")
    _arguments(parser)
    args = parser.parse_args(list(argv) if argv is not None else None)
    try:
        return run_demo(args)
    except KeyboardInterrupt:
        return 130


# --------------------------------------------------------------------------------------------------
# Alert rules


def tier_alert_rules() -> list[dict[str, Any]]:
    """One rule per tier with an SLA: P95 trace latency of the tenant over its threshold, 5-minute window."""
    from netra_server.demo.meetingmind import TENANTS

    rules = []
    for tenant in TENANTS.values():
        sla = tenant.tier.sla_p95_ms
        if sla is None:
            continue  # best effort: no alert
        rules.append({
            "name": f"{tenant.id} P95 latency over its {tenant.tier.name} SLA ({sla} ms)",
            "scope": "trace",
            "metric": "latency",
            "aggregation": "p95",
            "filters": [f"tenant_id = {tenant.id}"],
            "condition": {"op": ">", "threshold": sla},
            "window_seconds": 300,
            "interval_seconds": 60,
        })
    return rules


def create_tier_alert_rules(base_url: str, api_key: str) -> list[str]:
    """Create the cookbook's alert rules (apex-legal > 2000 ms, stratex-consulting > 3000 ms) once.

    Returns the names of the rules that exist afterwards; rules already there (same name) are kept.
    """
    from netra_server.alerts.client import AlertsClient

    with AlertsClient(base_url, api_key) as client:
        existing = {r.get("name") for r in client.list_rules()}
        for rule in tier_alert_rules():
            if rule["name"] not in existing:
                client.create_rule(rule)
        return sorted(str(r.get("name")) for r in client.list_rules())


# --------------------------------------------------------------------------------------------------
# The workload


def split_meetings(total: int) -> dict[str, int]:
    """Meetings per tenant for ``total`` meetings (45% / 33% / 22%, at least one each)."""
    if total < 3:
        raise ValueError("--meetings must be at least 3 (one per tenant)")
    counts = {t: max(1, int(total * share)) for t, share in _SHARES.items()}
    counts["apex-legal"] += total - sum(counts.values())
    return counts


@contextmanager
def openai_client(latency_scale: float, say: Any) -> Iterator[tuple[Any, str]]:
    """The OpenAI client: the real API with ``OPENAI_API_KEY``, else the local simulated endpoint."""
    import openai

    if os.environ.get("OPENAI_API_KEY"):
        say("Calling OpenAI (OPENAI_API_KEY is set): these are real, billed API calls")
        yield openai.OpenAI(), "OpenAI API"
        return
    from netra_server.demo.fake_openai import serve_fake_openai_process

    # in its own process, so the demo's many client threads do not slow the simulated model down
    with serve_fake_openai_process(latency_scale=latency_scale) as base_url:
        client = openai.OpenAI(base_url=base_url, api_key="sk-local-demo", max_retries=2, timeout=60)
        say(f"No OPENAI_API_KEY: calling the local OpenAI-compatible endpoint {base_url} "
            "(simulated model, realistic tokens and latency)")
        yield client, f"local simulated endpoint ({base_url})"


def run_workload(
    summarizer: Any, meetings: Sequence[Any], concurrency: int, progress: Any | None
) -> list[Any]:
    """Admit meetings in arrival order (rate limits on the simulated clock), run them concurrently."""
    from netra_server.demo.meetingmind import SummaryResult

    def one(meeting: Any, admission: Any) -> SummaryResult:
        try:
            result: SummaryResult = summarizer.summarize(meeting, admission)
            return result
        except Exception as exc:  # an API error: recorded on the span by Netra, reported here
            return SummaryResult(meeting.id, meeting.tenant_id, meeting.session_id, meeting.user_id, "error",
                                 error=f"{type(exc).__name__}: {exc}", queued_s=admission.wait)

    results: list[SummaryResult] = []
    task = progress.add_task("Summarizing meetings", total=len(meetings)) if progress is not None else None
    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="meetingmind") as pool:
        futures: list[Future[SummaryResult]] = []
        for meeting in meetings:  # already in arrival order
            admission = summarizer.admit(meeting, meeting.arrival_s)
            futures.append(pool.submit(one, meeting, admission))
        for fut in as_completed(futures):
            results.append(fut.result())
            if progress is not None:
                progress.advance(task)
    return results


def run_demo(args: argparse.Namespace) -> int:
    """The ``netra demo`` command."""
    from rich.console import Console

    from netra import Netra

    console = Console(highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(highlight=False, width=150)  # a log file or a pipe: room for the report table

    def say(msg: str) -> None:
        console.print(f"[dim]·[/] {msg}")

    counts = split_meetings(args.meetings)
    data_dir = (args.data_dir or default_demo_dir()).expanduser()
    if Netra.is_initialized():
        raise SystemExit("netra demo: Netra is already initialised in this process; run the demo on its own")

    # SIGTERM stops the demo like Ctrl-C does, so the server it started never outlives it
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _interrupt)
    server = ensure_server(args.endpoint, data_dir, args.port, say)
    try:
        failed = _run(args, server, counts, data_dir, console, say)
        keep = args.keep_running
        if keep is None:
            keep = sys.stdin.isatty() and sys.stdout.isatty()
        if server.started and keep and server.process is not None:
            try:
                console.print(f"\nThe server keeps running for the dashboard at {server.base_url}/ — "
                              "press Ctrl-C to stop it.")
                server.process.wait()
            except KeyboardInterrupt:
                console.print("Stopping the server.")
        return 1 if failed else 0
    finally:
        if server.started:
            server.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _run(args: argparse.Namespace, server: DemoServer, counts: Mapping[str, int], data_dir: Path, console: Any,
         say: Any) -> int:
    """Run the workload and print the report; the number of failed calls."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from netra import Netra
    from netra.pricing import price_table_version
    from netra_server.demo.meetingmind import (
        TENANTS,
        SimulatedClock,
        sample_meetings,
        totals_by_tenant,
    )

    with ExitStack() as stack:
        try:
            rules = create_tier_alert_rules(server.base_url, server.api_key)
            say(f"Alert rules: {len(rules)} ({'; '.join(rules)})")
        except Exception as exc:  # the alerts API is optional for the demo
            say(f"Alert rules not created: {exc}")
        client, model_source = stack.enter_context(openai_client(args.latency_scale, say))

        from netra.instrumentation.instruments import InstrumentSet

        Netra.init(app_name="meetingmind", environment="demo", endpoint=server.base_url, api_key=server.api_key,
                   instruments={InstrumentSet.OPENAI})
        stack.callback(Netra.shutdown)

        meetings = sample_meetings(counts, seed=args.seed, duration_s=SIMULATED_MINUTES * 60, bursty=_BURSTS)
        clock = SimulatedClock()
        from netra_server.demo.prepaid import PLANS, PrepaidMeetingSummarizer, renew_plans

        plans = renew_plans(Netra.credits)
        say("Prepaid plans renewed: " + ", ".join(f"{TENANTS[t].name} {money(p.plan)}" for t, p in plans.items())
            + f" ({', '.join(f'{tier} {money(v)}' for tier, v in PLANS.items())})")
        summarizer = PrepaidMeetingSummarizer(client, Netra.credits, clock=clock)
        start = datetime.now(UTC) - timedelta(seconds=1)
        say(f"Summarizing {len(meetings)} meetings: " + ", ".join(f"{TENANTS[t].name} {n}" for t, n in counts.items()))
        wall = time.perf_counter()
        if args.no_progress:
            results = run_workload(summarizer, meetings, args.concurrency, None)
        else:
            columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
            with Progress(*columns, console=console, transient=False) as progress:
                results = run_workload(summarizer, meetings, args.concurrency, progress)
        wall = time.perf_counter() - wall
        if not Netra.flush(timeout=30):
            say("The exporter did not confirm every span within 30 s; waiting for the server to count them")
        local = totals_by_tenant(results)
        expected = {t: v.requests for t, v in local.items()}
        usage = Netra.usage
        wait_until_stored(usage, start, expected)
        end = datetime.now(UTC) + timedelta(seconds=1)
        reports = read_report(usage, start, end, local)

        queued = sum(v.queued for v in local.values())
        rejected = sum(v.rate_limited for v in local.values())
        failed = sum(v.errors for v in local.values())
        local_cost = sum((v.cost_usd for v in local.values()), Decimal(0))
        server_cost = sum((r.cost for r in reports), Decimal(0))
        # Exact: the server keeps and sends costs as decimals, and Netra.usage reads them as Decimal.
        if server_cost == local_cost:
            check, exact = "matches", f", to the last digit: {server_cost:f} USD"
        else:
            check, exact = "DOES NOT match", f": {server_cost:f} USD vs {local_cost:f} USD"
        notes = [
            f"Model: {model_source}; prices: netra.pricing ({price_table_version()}).",
            f"Cost check: the server's total {money(server_cost)} {check} the sum of the "
            f"{sum(v.requests for v in local.values())} per-call costs ({money(local_cost)}){exact}.",
            f"Rate limits were applied on a simulated {SIMULATED_MINUTES}-minute arrival schedule "
            f"(bursts from {', '.join(TENANTS[t].name for t in _BURSTS)}): {queued} calls waited for a slot "
            f"(the wait is simulated, not slept), {rejected} were rejected (no slot within the tier's queue time: "
            + ", ".join(f"{t.tier.name} {t.tier.max_queue_seconds:g} s" for t in TENANTS.values())
            + f"). The model calls ran for real, {args.concurrency} at a time, in {wall:.1f} s.",
            "P95 latency: the meeting-summarization traces' latency, excluding rate-limited ones.",
        ]
        if failed:
            notes.append(f"[red]{failed} calls failed[/]: " + next(r.error for r in results if r.status == "error"))
        for r in reports:  # every meeting is one trace; rejected, refused and failed ones have an error status
            refused_or_failed = r.rate_limited + r.no_credit + r.failed
            if r.traces != r.requests + refused_or_failed or r.error_traces != refused_or_failed:
                notes.append(f"[red]{r.name}: the server has {r.traces} traces ({r.error_traces} with errors) for "
                             f"{r.requests} served, {r.rate_limited} rejected, {r.no_credit} refused for credit "
                             f"and {r.failed} failed calls[/]")
        credit_rows = read_credits(Netra.credits, plans, local)
        for row in credit_rows:
            row.refusal = next((x.error for x in results if x.tenant_id == row.tenant_id and x.status == "no_credit"),
                               "")
        charged = sum((row.charged for row in credit_rows), Decimal(0))
        if charged == server_cost:
            notes.append(f"Credits check: the ledger charged {money(charged)} for the served calls, the same as the "
                         f"server's cost, to the last digit: {charged:f} USD.")
        else:
            notes.append(f"[red]Credits check: the ledger charged {charged:f} USD, the server counts "
                         f"{server_cost:f} USD[/]")
        notes.append(f"Window: {start:%Y-%m-%d %H:%M:%S} - {end:%H:%M:%S} UTC, server {server.base_url}")
        key_hint = "$NETRA_API_KEY" if server.data_dir is None else str(data_dir / "api-key")
        notes.append(f"Dashboard: {server.base_url}/   (API key: {key_hint})")
        print_report(console, reports, notes, credit_rows)
        return failed


if __name__ == "__main__":
    raise SystemExit(main())
