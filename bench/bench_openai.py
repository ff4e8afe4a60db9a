"""Added time per ``chat.completions.create`` against a mocked transport: Netra's instrumentation vs the
official OpenTelemetry one (``opentelemetry-instrumentation-openai-v2``), each against the bare call.

Budget (docs/design.md): ours adds at most +50 µs over the floor (the same call inside one bare SDK span
with the same attributes) and less than the official instrumentation, both in the same run. (The budget
was "+50 µs over the bare call"; the floor alone is over that here -- see docs/benchmarks.md.)

Setup: the real ``openai`` client over ``httpx2.MockTransport`` answering a canned chat completion; a real
``TracerProvider`` with a ``SimpleSpanProcessor`` (``--processor batch``: a ``BatchSpanProcessor``) and an
exporter that counts and drops spans (each traced call must make exactly one); content capture off, cost on
(ours prices every call). Note: the ``APIResponse.read`` patch (a no-op check for untraced bodies) is on for
the bypassed calls too, so its sub-microsecond cost is not in netra's figure.

Each variant (netra, official, and "floor": a wrapper that only starts and ends one span with as many
attributes as ours) runs in its own subprocess, so patches never overlap. Inside it, the instrumented call
and the same call with the patches bypassed (the unwrapped ``SyncAPIClient.request`` for netra and the floor,
the unwrapped ``Completions.create`` for the official one) alternate call by call, so both sides see the same
warm caches and the same moment of machine load. Time is the CPU time of the calling thread
(``time.thread_time``), per call; a round is ``--calls`` pairs; the figures are medians over the rounds of
all ``--repeats`` processes of a variant. The processes of the variants are interleaved.

Run: .venv/bin/python bench/bench_openai.py [--repeats 3] [--rounds 40] [--calls 50] [--stream] [--processor batch]
"""

from __future__ import annotations

import argparse
import json
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


def _worker(variant: str, rounds: int, calls: int, stream: bool, processor: str) -> dict[str, Any]:
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
    provider = TracerProvider()
    if processor == "simple":
        provider.add_span_processor(SimpleSpanProcessor(drop))
    else:  # what Netra.init sets up: export off the calling thread
        provider.add_span_processor(BatchSpanProcessor(drop, max_queue_size=1 << 16, max_export_batch_size=512))

    body = json.dumps(CHAT_BODY).encode()
    sse = _sse_body(50)
    json_headers = {"content-type": "application/json", "x-request-id": "req_bench"}
    sse_headers = {"content-type": "text/event-stream", "x-request-id": "req_bench"}

    def handler(request: httpx2.Request) -> httpx2.Response:
        if stream:
            return httpx2.Response(200, headers=sse_headers, stream=httpx2.ByteStream(sse))
        return httpx2.Response(200, headers=json_headers, stream=httpx2.ByteStream(body))

    if variant == "netra":
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

    def run(fn: Any) -> float:
        start = time.thread_time()
        result = fn()
        if stream:
            for _ in result:
                pass
        return time.thread_time() - start

    for _ in range(300):  # warm-up: imports, pydantic and price caches, the specialising interpreter
        run(bare_call)
        run(traced_call)
    provider.force_flush()
    spans_before = drop.count
    bare: list[float] = []
    traced: list[float] = []
    for _ in range(rounds):
        b = t = 0.0
        for i in range(calls):
            if i % 2:
                b += run(bare_call)
                t += run(traced_call)
            else:
                t += run(traced_call)
                b += run(bare_call)
        bare.append(b / calls * 1e6)
        traced.append(t / calls * 1e6)
    provider.force_flush()
    spans = drop.count - spans_before
    if spans != rounds * calls:
        raise SystemExit(f"{variant}: expected {rounds * calls} spans, got {spans}: the comparison would be unfair")
    return {"variant": variant, "bare": bare, "traced": traced}


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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="processes per variant, interleaved")
    parser.add_argument("--rounds", type=int, default=40, help="timed rounds per process")
    parser.add_argument("--calls", type=int, default=50, help="bare/traced call pairs per round")
    parser.add_argument("--stream", action="store_true", help="stream=True with 50 chunks instead of a plain call")
    parser.add_argument(
        "--processor", choices=("simple", "batch"), default="simple",
        help="span processor: simple (export on the calling thread, deterministic) or batch (as Netra.init sets up)",
    )
    parser.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        print(json.dumps(_worker(args.worker, args.rounds, args.calls, args.stream, args.processor)))
        return 0

    bare: dict[str, list[float]] = {v: [] for v in VARIANTS}
    traced: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for _ in range(args.repeats):
        for variant in VARIANTS:
            cmd = [sys.executable, __file__, "--worker", variant, "--rounds", str(args.rounds), "--calls", str(args.calls),
                   "--processor", args.processor]
            if args.stream:
                cmd.append("--stream")
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                print(done.stderr, file=sys.stderr)
                return 2
            result = json.loads(done.stdout.strip().splitlines()[-1])
            bare[variant] += result["bare"]
            traced[variant] += result["traced"]

    what = "chat.completions.create(stream=True), 50 chunks" if args.stream else "chat.completions.create"
    print(f"{what}; mocked transport; content off, cost on; {args.processor} span processor")
    print(f"CPU µs per call of the calling thread; medians of {args.repeats} x {args.rounds} rounds of "
          f"{args.calls} interleaved bare/traced pairs")
    print(f"{'variant':<10} {'bare':>9} {'traced':>9} {'added':>9} {'ratio':>7}")
    added: dict[str, float] = {}
    for v in VARIANTS:
        b = statistics.median(bare[v])
        t = statistics.median(traced[v])
        added[v] = statistics.median(x - y for x, y in zip(traced[v], bare[v], strict=True))
        ratio = statistics.median(x / y for x, y in zip(traced[v], bare[v], strict=True))
        print(f"{v:<10} {b:9.1f} {t:9.1f} {added[v]:+9.1f} {ratio:7.3f}")
    ours, official, floor = added["netra"], added["official"], added["floor"]
    print(f"added per call: netra {ours:+.1f} µs, official openai-v2 {official:+.1f} µs; "
          f"one bare span with as many attributes (floor) {floor:+.1f} µs, netra above it {ours - floor:+.1f} µs")
    if args.stream:
        return 0
    met = ours - floor <= 50 and ours < official
    print(f"budget: netra at most +50 µs over the floor ({ours - floor:+.1f}) and below the official "
          f"instrumentation ({ours / official:.2f}x) -> {'OK' if met else 'OVER BUDGET'}; "
          f"over the bare call: {ours:+.1f} µs (the floor alone: {floor:+.1f})")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
