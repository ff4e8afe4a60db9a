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
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

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


def default_demo_dir() -> Path:
    return Path(os.environ.get("NETRA_DEMO_DIR", Path.home() / ".netra" / "demo")).expanduser()


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
# The server


@dataclass
class DemoServer:
    base_url: str
    api_key: str
    started: bool  # True if this demo started it (and so may stop it)
    data_dir: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _healthy(base_url: str, timeout: float = 1.0) -> bool:
    import httpx

    try:
        return httpx.get(base_url.rstrip("/") + "/healthz", timeout=timeout, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


def _key_works(base_url: str, key: str) -> bool:
    import httpx

    try:
        r = httpx.get(base_url + "/api/me", headers={"x-api-key": key}, timeout=5, trust_env=False)
    except httpx.HTTPError:
        return False
    return r.status_code == 200


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _demo_key(data_dir: Path) -> str:
    path = data_dir / "api-key"
    if path.exists():
        key = path.read_text().strip()
        if key:
            return key
    key = f"nk_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    return key


def ensure_server(endpoint: str | None, data_dir: Path, port: int, say: Any) -> DemoServer:
    """The server to send to: the one at ``endpoint``, the demo's own if running, or a new one."""
    if endpoint:
        base = endpoint.rstrip("/").removesuffix("/v1/traces").removesuffix("/telemetry")
        key = os.environ.get("NETRA_API_KEY", "")
        if not _healthy(base, timeout=5):
            raise SystemExit(f"netra demo: no Netra server answers at {base} (from --endpoint/NETRA_OTLP_ENDPOINT); "
                             "start one with `netra serve`, or unset NETRA_OTLP_ENDPOINT to use the embedded one")
        if not key or not _key_works(base, key):
            raise SystemExit(f"netra demo: the server at {base} needs an admin API key in NETRA_API_KEY "
                             "(`netra keys create --role admin` makes one)")
        say(f"Using the Netra server at {base}")
        return DemoServer(base, key, started=False)

    key = _demo_key(data_dir)
    state = data_dir / "data" / "server.json"
    if state.exists():
        try:
            url = str(json.loads(state.read_text())["url"])
        except (OSError, ValueError, KeyError):
            url = ""
        if url and _healthy(url) and _key_works(url, key):
            say(f"Using the demo server already running at {url}")
            return DemoServer(url, key, started=False, data_dir=data_dir)

    host = "127.0.0.1"
    if port == 0:
        port = _free_port(host)
    elif not _port_free(host, port):
        other = f"http://{host}:{port}"
        if _healthy(other) and _key_works(other, key):
            say(f"Using the demo server already running at {other}")
            return DemoServer(other, key, started=False, data_dir=data_dir)
        port = _free_port(host)
    base = f"http://{host}:{port}"
    log_path = data_dir / "server.log"
    cmd = [sys.executable, "-m", "netra_server", "serve", "--data-dir", str(data_dir / "data"),
           "--host", host, "--port", str(port), "--api-key", key, "--project-name", "meetingmind-demo"]
    say(f"Starting the embedded Netra server on {base} (data in {data_dir})")
    log = open(log_path, "ab")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    log.close()
    server = DemoServer(base, key, started=True, data_dir=data_dir, process=proc, log_path=log_path)
    deadline = time.monotonic() + 120
    while not _healthy(base):
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise SystemExit(f"netra demo: the server exited with code {proc.returncode}; its log ({log_path}):\n{tail}")
        if time.monotonic() > deadline:
            server.stop()
            raise SystemExit(f"netra demo: the server did not start within 120 s; see {log_path}")
        time.sleep(0.1)
    return server


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


# --------------------------------------------------------------------------------------------------
# The report


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


def _money(value: Decimal) -> str:
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
                      f"{r.tokens:,}", _money(r.cost), p95, sla, status, slow)
    table.add_section()
    table.add_row("Total", "", f"{sum(r.requests for r in reports):,}",
                  f"{sum(r.rate_limited + r.no_credit for r in reports):,}",
                  f"{sum(r.sessions for r in reports):,}", f"{sum(r.tokens for r in reports):,}",
                  _money(sum((r.cost for r in reports), Decimal(0))), "", "", "", "")
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
        table.add_row(tier, name, _money(row.plan), _money(row.charged), _money(row.balance), f"{row.refused:,}")
    console.print(table)
    for row in rows:
        if row.refused and row.refusal:
            name = names.get(row.tenant_id, (row.tenant_id, ""))[0]
            console.print(f"{name}: {row.refused} call(s) refused, e.g. \"{row.refusal}\"", highlight=False)


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
        say("Prepaid plans renewed: " + ", ".join(f"{TENANTS[t].name} {_money(p.plan)}" for t, p in plans.items())
            + f" ({', '.join(f'{tier} {_money(v)}' for tier, v in PLANS.items())})")
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
            f"Cost check: the server's total {_money(server_cost)} {check} the sum of the "
            f"{sum(v.requests for v in local.values())} per-call costs ({_money(local_cost)}){exact}.",
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
            notes.append(f"Credits check: the ledger charged {_money(charged)} for the served calls, the same as the "
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
