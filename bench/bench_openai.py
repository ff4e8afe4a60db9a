"""Added time per ``chat.completions.create`` against a mocked transport: Netra's instrumentation vs the
official OpenTelemetry one (``opentelemetry-instrumentation-openai-v2``), each against the bare call.

Budget (docs/design.md): ours adds at most +50 µs over the floor (the same call inside one bare SDK span
with the same attributes, exported the same way) and less than the official instrumentation, both in the
same run, measured as the host feels it: **wall time per call** with the real export pipeline running.

Setup: the real ``openai`` client over ``httpx2.MockTransport`` answering a canned chat completion; content
capture off, cost on (ours prices every call). The export pipeline (``--pipeline``):

- ``otel`` (default): a ``TracerProvider`` with OpenTelemetry's ``BatchSpanProcessor`` and the real
  ``OTLPSpanExporter`` (protobuf over HTTP) sending to a receiver in ANOTHER process (started by this
  script; it decodes every request and counts the spans, which must equal the traced calls).
- ``netra``: ``Netra.init(...)``: Netra's span processor (request context), its batch export processor and
  the same OTLP exporter, to the same receiver; the floor and the official instrumentation run on it too.
- ``drop`` (the former setup): a ``SimpleSpanProcessor`` with an exporter that counts and drops spans.

Each variant (netra, official, and "floor": a wrapper that only starts and ends one span with as many
attributes as ours) runs in its own subprocess, so patches never overlap. Inside it, the instrumented call
and the same call with the patches bypassed (the unwrapped ``SyncAPIClient.request`` for netra and the floor,
the unwrapped ``Completions.create`` for the official one) alternate call by call, so both sides see the same
warm caches, the same export thread and the same moment of machine load. Each call is timed twice: wall
time (``time.perf_counter``: what the host waits, including the export thread's share of the GIL) and the
CPU time of the calling thread (``time.thread_time``). A round is ``--calls`` pairs; the figures are medians
over the rounds of all ``--repeats`` processes of a variant. The processes of the variants are interleaved.

Run: .venv/bin/python bench/bench_openai.py [--repeats 3] [--rounds 30] [--calls 50] [--pipeline otel|netra|drop]
     [--stream] [--variants floor,netra,official]
     .venv/bin/python bench/bench_openai.py --instructions 300 [--pipeline ...] [--variants ...]
       (instructions per call counted by valgrind's callgrind: deterministic on a loaded machine, slow)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

CHAT_BODY = {
    "id": "chatcmpl-bench",
    "object": "chat.completion",
    "created": 1,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello there"}, "finish_reason": "stop"}],
    "usage": {
        "prompt_tokens": 11,
        "completion_tokens": 7,
        "total_tokens": 18,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    },
}
MESSAGES = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say hello"}]
VARIANTS = ("floor", "netra", "official")


def _sse_body(chunks: int) -> bytes:
    base = {"id": "chatcmpl-s", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini"}
    events = [{**base, "choices": [{"index": 0, "delta": {"content": f"w{i} "}, "finish_reason": None}]} for i in range(chunks)]
    events.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    events.append({**base, "choices": [], "usage": CHAT_BODY["usage"]})
    return ("".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n").encode()


class _Receiver:
    """An OTLP/HTTP receiver in another process: ``POST /v1/traces`` (counts spans), ``GET /count``."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--receiver"], stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()
        if not self.url.startswith("http://"):
            raise SystemExit(f"the receiver did not start: {self.url!r}")

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def _serve_receiver() -> None:
    import gzip
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
        ExportTraceServiceResponse,
    )

    lock = threading.Lock()
    count = [0]
    ok = ExportTraceServiceResponse().SerializeToString()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a real collector

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            n = sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
            with lock:
                count[0] += n
            self._answer(ok, "application/x-protobuf")

        def do_GET(self) -> None:
            with lock:
                value = count[0]
            self._answer(str(value).encode(), "text/plain")

        def _answer(self, payload: bytes, kind: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


def _received(url: str) -> int:
    import urllib.request

    with urllib.request.urlopen(url + "/count", timeout=10) as answer:
        return int(answer.read())


def _worker(
    variant: str, rounds: int, calls: int, stream: bool, pipeline: str, receiver: str, count: str = ""
) -> dict[str, Any]:
    import httpx2
    import openai
    from openai._base_client import SyncAPIClient
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SimpleSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    class Drop(SpanExporter):
        """Counts spans (to check each traced call made exactly one) and keeps none."""

        def __init__(self) -> None:
            self.count = 0

        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            self.count += len(spans)
            return SpanExportResult.SUCCESS

    drop = Drop()
    provider: Any
    if pipeline == "drop":
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(drop))
    elif pipeline == "otel":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=receiver + "/v1/traces")))
    else:
        from opentelemetry import trace

        from netra import Netra
        from netra.instrumentation.instruments import InstrumentSet

        Netra.init(
            app_name="bench",
            endpoint=receiver,
            trace_content=False,
            instruments={InstrumentSet.OPENAI} if variant == "netra" else set(),
        )
        Netra.set_tenant_id("apex-legal")
        Netra.set_session_id("meeting-42")
        Netra.set_user_id("alice@apex.example")
        provider = trace.get_tracer_provider()

    def sent() -> int:
        if pipeline == "drop":
            return drop.count
        provider.force_flush()
        return _received(receiver)

    body = json.dumps(CHAT_BODY).encode()
    sse = _sse_body(50)
    json_headers = {"content-type": "application/json", "x-request-id": "req_bench"}
    sse_headers = {"content-type": "text/event-stream", "x-request-id": "req_bench"}

    def handler(request: httpx2.Request) -> httpx2.Response:
        if stream:
            return httpx2.Response(200, headers=sse_headers, stream=httpx2.ByteStream(sse))
        return httpx2.Response(200, headers=json_headers, stream=httpx2.ByteStream(body))

    if variant == "netra":
        if pipeline != "netra":  # under Netra.init, Netra instrumented the client
            from netra_instrumentation_openai import OpenAIInstrumentor

            OpenAIInstrumentor().instrument(tracer_provider=provider, capture_content=False, record_cost=True)
    elif variant == "floor":
        _install_floor(provider)
    else:
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor as Official

        Official().instrument(tracer_provider=provider)

    def make(cls: type[openai.OpenAI]) -> openai.OpenAI:
        return cls(
            api_key="bench",
            base_url="https://api.openai.com/v1",
            max_retries=0,
            http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
        )

    completions = make(openai.OpenAI).chat.completions
    kwargs: dict[str, Any] = {"model": "gpt-4o-mini", "messages": MESSAGES}
    if stream:
        kwargs["stream"] = True

    def unwrapped(attr: str) -> Any:
        value = SyncAPIClient.__dict__[attr]
        return getattr(value, "__wrapped__", value)

    if variant == "official":
        from openai.resources.chat.completions import Completions

        raw_create = Completions.__dict__["create"].__wrapped__
        bare_completions = make(openai.OpenAI).chat.completions

        def bare_call() -> Any:
            return raw_create(bare_completions, **kwargs)
    else:
        # the same client class with our patches bypassed
        bare_cls = type("BareOpenAI", (openai.OpenAI,), {
            "request": unwrapped("request"), "_process_response": unwrapped("_process_response"),
        })
        bare_completions = make(bare_cls).chat.completions

        def bare_call() -> Any:
            return bare_completions.create(**kwargs)

    def traced_call() -> Any:
        return completions.create(**kwargs)

    perf_counter, thread_time = time.perf_counter, time.thread_time

    def run(fn: Any) -> tuple[float, float]:
        wall, cpu = perf_counter(), thread_time()
        result = fn()
        if stream:
            for _ in result:
                pass
        return perf_counter() - wall, thread_time() - cpu

    for _ in range(300):  # warm-up: imports, pydantic and price caches, the specialising interpreter
        run(bare_call)
        run(traced_call)
    if count:  # --instructions: only ``calls`` calls of one side, counted by callgrind around this process
        fn = traced_call if count == "traced" else bare_call
        for _ in range(calls):
            run(fn)
        provider.force_flush()
        return {"variant": variant, "count": count, "calls": calls}
    spans_before = sent()
    out: dict[str, Any] = {"variant": variant, "bare": [], "traced": [], "bare_cpu": [], "traced_cpu": []}
    for _ in range(rounds):
        bw = bc = tw = tc = 0.0
        for i in range(calls):
            if i % 2:
                w, c = run(bare_call)
                bw, bc = bw + w, bc + c
                w, c = run(traced_call)
                tw, tc = tw + w, tc + c
            else:
                w, c = run(traced_call)
                tw, tc = tw + w, tc + c
                w, c = run(bare_call)
                bw, bc = bw + w, bc + c
        out["bare"].append(bw / calls * 1e6)
        out["traced"].append(tw / calls * 1e6)
        out["bare_cpu"].append(bc / calls * 1e6)
        out["traced_cpu"].append(tc / calls * 1e6)
    spans = sent() - spans_before
    if spans != rounds * calls:
        raise SystemExit(f"{variant}: expected {rounds * calls} spans, got {spans}: the comparison would be unfair")
    if pipeline == "netra":
        from netra import Netra

        stats = Netra.export_stats()
        if stats["dropped"]:
            raise SystemExit(f"{variant}: Netra dropped spans: {stats}")
        Netra.shutdown()
    return out


def _install_floor(provider: Any) -> None:
    from opentelemetry import trace
    from wrapt import wrap_function_wrapper

    tracer = trace.get_tracer("floor", tracer_provider=provider)
    start_attrs = {
        "gen_ai.provider.name": "openai",
        "gen_ai.operation.name": "chat",
        "netra.span.type": "generation",
        "gen_ai.request.model": "gpt-4o-mini",
        "server.address": "api.openai.com",
    }
    end_attrs = {
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.response.id": "chatcmpl-bench",
        "gen_ai.response.finish_reasons": ("stop",),
        "openai.request.id": "req_bench",
        "gen_ai.usage.input_tokens": 11,
        "gen_ai.usage.output_tokens": 7,
        "gen_ai.usage.cost": 6e-06,
        "netra.cost.source": "price_table:0.2.3",
    }

    def floor(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        span = tracer.start_span("chat gpt-4o-mini", attributes=start_attrs)
        try:
            return wrapped(*args, **kwargs)
        finally:
            span.set_attributes(end_attrs)
            span.end()

    wrap_function_wrapper("openai._base_client", "SyncAPIClient.request", floor)
    wrap_function_wrapper("openai._base_client", "SyncAPIClient._process_response", lambda w, i, a, k: w(*a, **k))


def _summary(label: str, bare: dict[str, list[float]], traced: dict[str, list[float]],
             variants: Sequence[str]) -> dict[str, float]:
    print(label)
    print(f"{'variant':<10} {'bare':>9} {'traced':>9} {'added':>9} {'ratio':>7}")
    added: dict[str, float] = {}
    for v in variants:
        b = statistics.median(bare[v])
        t = statistics.median(traced[v])
        added[v] = statistics.median(x - y for x, y in zip(traced[v], bare[v], strict=True))
        ratio = statistics.median(x / y for x, y in zip(traced[v], bare[v], strict=True))
        print(f"{v:<10} {b:9.1f} {t:9.1f} {added[v]:+9.1f} {ratio:7.3f}")
    return added


def _count_instructions(args: argparse.Namespace, variants: Sequence[str]) -> int:
    """Instructions per call from callgrind: (warm-up + N calls) - (warm-up + 0 calls), bare and traced."""
    import re

    receiver = _Receiver() if args.pipeline != "drop" else None

    def collected(variant: str, side: str, calls: int) -> int:
        cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, __file__,
               "--worker", variant, "--calls", str(calls), "--count", side, "--pipeline", args.pipeline]
        if receiver is not None:
            cmd += ["--receiver-url", receiver.url]
        if args.stream:
            cmd.append("--stream")
        done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"})
        found = re.search(r"Collected : (\d+)", done.stderr)
        if done.returncode != 0 or found is None:
            raise SystemExit(f"callgrind run failed: {done.stderr[-2000:]}")
        return int(found.group(1))

    n = args.instructions
    per_call: dict[str, dict[str, float]] = {}
    try:
        for variant in variants:
            base = collected(variant, "bare", 0)
            per_call[variant] = {side: (collected(variant, side, n) - base) / n for side in ("bare", "traced")}
    finally:
        if receiver is not None:
            receiver.close()
    print(f"instructions per call (callgrind, all threads; {n} calls after the warm-up; export: {args.pipeline})")
    print(f"{'variant':<10} {'bare':>12} {'traced':>12} {'added':>12}")
    for variant, sides in per_call.items():
        print(f"{variant:<10} {sides['bare']:12,.0f} {sides['traced']:12,.0f} {sides['traced'] - sides['bare']:+12,.0f}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="processes per variant, interleaved")
    parser.add_argument("--rounds", type=int, default=30, help="timed rounds per process")
    parser.add_argument("--calls", type=int, default=50, help="bare/traced call pairs per round")
    parser.add_argument("--stream", action="store_true", help="stream=True with 50 chunks instead of a plain call")
    parser.add_argument(
        "--pipeline", choices=("otel", "netra", "drop"), default="otel",
        help="export: otel (BatchSpanProcessor + OTLP to a receiver in another process, the default), "
        "netra (Netra.init to the same receiver) or drop (SimpleSpanProcessor, spans dropped)",
    )
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset of " + ",".join(VARIANTS))
    parser.add_argument(
        "--instructions", type=int, default=0, metavar="N",
        help="instead of timing: count the CPU instructions per call (all threads) under valgrind's callgrind, "
        "N bare and N traced calls per variant after the warm-up (deterministic, load does not change it; slow)",
    )
    parser.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--count", choices=("", "bare", "traced"), default="", help=argparse.SUPPRESS)
    parser.add_argument("--receiver", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--receiver-url", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.receiver:
        _serve_receiver()
        return 0
    if args.worker:
        result = _worker(
            args.worker, args.rounds, args.calls, args.stream, args.pipeline, args.receiver_url, args.count
        )
        print(json.dumps(result))
        return 0

    variants = [v for v in args.variants.split(",") if v]
    if args.instructions:
        return _count_instructions(args, variants)
    keys = ("bare", "traced", "bare_cpu", "traced_cpu")
    data: dict[str, dict[str, list[float]]] = {k: {v: [] for v in variants} for k in keys}
    receiver = _Receiver() if args.pipeline != "drop" else None
    try:
        for _ in range(args.repeats):
            for variant in variants:
                cmd = [sys.executable, __file__, "--worker", variant, "--rounds", str(args.rounds), "--calls",
                       str(args.calls), "--pipeline", args.pipeline]
                if receiver is not None:
                    cmd += ["--receiver-url", receiver.url]
                if args.stream:
                    cmd.append("--stream")
                done = subprocess.run(cmd, capture_output=True, text=True)
                if done.returncode != 0:
                    print(done.stdout[-2000:], done.stderr[-4000:], file=sys.stderr)
                    return 2
                result = json.loads(done.stdout.strip().splitlines()[-1])
                for k in keys:
                    data[k][variant] += result[k]
    finally:
        if receiver is not None:
            receiver.close()

    what = "chat.completions.create(stream=True), 50 chunks" if args.stream else "chat.completions.create"
    export = {
        "otel": "BatchSpanProcessor + OTLPSpanExporter to a receiver in another process",
        "netra": "Netra.init (Netra's processors + OTLPSpanExporter) to a receiver in another process",
        "drop": "SimpleSpanProcessor, spans dropped",
    }[args.pipeline]
    print(f"{what}; mocked transport; content off, cost on; export: {export}")
    print(f"medians of {args.repeats} processes x {args.rounds} rounds of {args.calls} interleaved bare/traced pairs")
    wall = _summary("WALL µs per call (what the host waits; the headline)", data["bare"], data["traced"], variants)
    cpu = _summary("CPU µs per call of the calling thread", data["bare_cpu"], data["traced_cpu"], variants)
    if set(variants) != set(VARIANTS):
        return 0
    for label, added in (("wall", wall), ("cpu", cpu)):
        ours, official, floor = added["netra"], added["official"], added["floor"]
        print(f"{label}: added per call: netra {ours:+.1f} µs, official openai-v2 {official:+.1f} µs; "
              f"one bare span with as many attributes (floor) {floor:+.1f} µs, netra above it {ours - floor:+.1f} µs")
    if args.stream:
        return 0
    ours, official, floor = wall["netra"], wall["official"], wall["floor"]
    met = ours - floor <= 50 and ours < official
    print(f"budget (wall): netra at most +50 µs over the floor ({ours - floor:+.1f}) and below the official "
          f"instrumentation ({ours / official:.2f}x) -> {'OK' if met else 'OVER BUDGET'}")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
