"""SDK overhead, as ratios measured in one run (budgets from docs/design.md):

1. a ``Netra.start_span`` span with tenant / session / user context vs a plain OpenTelemetry span
   (``tracer.start_as_current_span`` on an SDK ``TracerProvider`` with a ``BatchSpanProcessor``); both
   export to the same no-op exporter, rounds interleaved, median of per-round ratios. Budget <= 1.3x.
2. ``import netra`` vs ``import opentelemetry.sdk.trace`` + the OTLP/HTTP span exporter, each timed inside
   a fresh interpreter, runs interleaved, median. Budget <= 1.2x. Also checks that ``import netra``
   imports neither ``openai`` nor ``genai_prices`` nor ``httpx2``.

Informational lines: ``import netra`` + ``Netra.init()`` (what an app pays before its first span) against
the same setup done by hand with OpenTelemetry (provider, batch processor, OTLP exporter), and
``@task`` and a span with ``set_usage`` inside a parent.

Run: .venv/bin/python bench/bench_sdk.py [--quick] [--check]   (--check: exit 1 if a budget is exceeded)
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

SPAN_BUDGET = 1.3
IMPORT_BUDGET = 1.2
MUST_NOT_IMPORT = ("openai", "genai_prices", "httpx2")

BASELINE_IMPORT = (
    "import opentelemetry.sdk.trace\nimport opentelemetry.exporter.otlp.proto.http.trace_exporter\n"
)
NETRA_IMPORT = "import netra\n"
OTEL_SETUP = (
    "from opentelemetry import trace\n"
    "from opentelemetry.sdk.resources import Resource\n"
    "from opentelemetry.sdk.trace import TracerProvider\n"
    "from opentelemetry.sdk.trace.export import BatchSpanProcessor\n"
    "from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter\n"
    "p = TracerProvider(resource=Resource.create({'service.name': 'bench'}))\n"
    "p.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint='http://127.0.0.1:9/v1/traces')))\n"
    "trace.set_tracer_provider(p)\n"
)
NETRA_IMPORT_AND_INIT = (
    "import netra\nnetra.Netra.init(app_name='bench', endpoint='http://127.0.0.1:9', instruments=set())\n"
)


def _time_import(body: str) -> tuple[float, list[str]]:
    code = (
        "import sys, time, json\n"
        "t0 = time.perf_counter()\n"
        f"{body}"
        "t1 = time.perf_counter()\n"
        f"bad = [m for m in {MUST_NOT_IMPORT!r} if m in sys.modules]\n"
        "print(json.dumps([t1 - t0, bad]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    seconds, bad = json.loads(out.stdout.strip().splitlines()[-1])
    return float(seconds), list(bad)


@dataclass
class ImportTimes:
    baseline: float
    netra: float
    netra_init: float
    otel_setup: float
    leaked: list[str]

    @property
    def ratio(self) -> float:
        return self.netra / self.baseline

    @property
    def ratio_init(self) -> float:
        return self.netra_init / self.otel_setup


def bench_imports(runs: int) -> ImportTimes:
    times: dict[str, list[float]] = {"baseline": [], "netra": [], "netra_init": [], "otel_setup": []}
    leaked: set[str] = set()
    bodies = (("baseline", BASELINE_IMPORT), ("netra", NETRA_IMPORT), ("otel_setup", OTEL_SETUP),
              ("netra_init", NETRA_IMPORT_AND_INIT))
    for r in range(runs):
        for key, body in bodies if r % 2 == 0 else bodies[::-1]:
            seconds, bad = _time_import(body)
            times[key].append(seconds)
            if key == "netra":
                leaked.update(bad)
    med = {k: statistics.median(v) for k, v in times.items()}
    return ImportTimes(med["baseline"], med["netra"], med["netra_init"], med["otel_setup"], sorted(leaked))


def bench_spans(n: int, rounds: int) -> dict[str, float]:
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    from netra import Netra, UsageModel, task

    class NullExporter(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

        def shutdown(self) -> None:
            pass

    queue = 1 << 20  # large enough that neither side drops spans during a round
    plain_provider = TracerProvider()
    plain_provider.add_span_processor(BatchSpanProcessor(NullExporter(), max_queue_size=queue, schedule_delay_millis=200))
    plain_tracer = plain_provider.get_tracer("bench.plain")
    Netra.init(app_name="bench", span_exporter=NullExporter(), instruments=set(), max_queue_size=queue)
    Netra.set_tenant_id("apex-legal")
    Netra.set_session_id("3f0c9a7e-5d1b-4f0e-9a51-0b6f3c2d8e11")
    Netra.set_user_id("john@apex.example")
    usage = [UsageModel(model="gpt-4o-mini", usage_type="chat", units_used=1580, cost_in_usd=0.0004)]

    @task
    def decorated() -> None:
        pass

    def plain() -> None:
        for _ in range(n):
            with plain_tracer.start_as_current_span("op"):
                pass

    def netra_span() -> None:
        for _ in range(n):
            with Netra.start_span("op"):
                pass

    def netra_task() -> None:
        for _ in range(n):
            decorated()

    def netra_usage() -> None:
        for _ in range(n // 2):
            with Netra.start_span("parent"), Netra.start_span("child") as child:
                child.set_usage(usage)

    def per_span_us(fn: Callable[[], None], spans: int) -> float:
        start = time.perf_counter()
        fn()
        return (time.perf_counter() - start) / spans * 1e6

    for fn in (plain, netra_span, netra_task, netra_usage):  # warm up
        fn()
    results: dict[str, list[float]] = {"plain": [], "netra": [], "task": [], "usage": [], "ratio": []}
    for r in range(rounds):
        # alternate the order (ABBA) so drift in machine load does not favour one side
        if r % 2 == 0:
            p = per_span_us(plain, n)
            s = per_span_us(netra_span, n)
        else:
            s = per_span_us(netra_span, n)
            p = per_span_us(plain, n)
        results["plain"].append(p)
        results["netra"].append(s)
        results["ratio"].append(s / p)
        results["task"].append(per_span_us(netra_task, n))
        results["usage"].append(per_span_us(netra_usage, (n // 2) * 2))
    Netra.shutdown()
    plain_provider.shutdown()
    return {k: statistics.median(v) for k, v in results.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a budget is exceeded")
    args = parser.parse_args()
    n, rounds, runs = (2_000, 5, 5) if args.quick else (5_000, 61, 21)

    spans = bench_spans(n, rounds)
    imports = bench_imports(runs)
    span_ok = spans["ratio"] <= SPAN_BUDGET
    import_ok = imports.ratio <= IMPORT_BUDGET

    print(f"spans: {n} per round, {rounds} rounds interleaved (median); imports: {runs} fresh interpreters each")
    print(f"  plain OpenTelemetry span            {spans['plain']:8.2f} µs")
    print(f"  Netra.start_span + tenant context   {spans['netra']:8.2f} µs")
    print(f"  @task + tenant context              {spans['task']:8.2f} µs   (info)")
    print(f"  parent/child span with set_usage    {spans['usage']:8.2f} µs/span (info)")
    print(f"  RATIO start_span / plain span       {spans['ratio']:8.3f}x   budget <= {SPAN_BUDGET}x -> "
          f"{'OK' if span_ok else 'OVER'}")
    print(f"  import otel sdk.trace + OTLP http   {imports.baseline * 1e3:8.1f} ms")
    print(f"  import netra                        {imports.netra * 1e3:8.1f} ms")
    print(f"  plain OTel setup (provider, batch, OTLP exporter) {imports.otel_setup * 1e3:8.1f} ms   (info)")
    print(f"  import netra + Netra.init()         {imports.netra_init * 1e3:8.1f} ms   "
          f"({imports.ratio_init:.3f}x the plain setup, info)")
    print(f"  RATIO import netra / otel           {imports.ratio:8.3f}x   budget <= {IMPORT_BUDGET}x -> "
          f"{'OK' if import_ok else 'OVER'}")
    print(f"  import netra loads {', '.join(MUST_NOT_IMPORT)}: {', '.join(imports.leaked) or 'none'}")
    ok = span_ok and import_ok and not imports.leaked
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
