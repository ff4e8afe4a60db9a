"""What a parse worker spends per span, in one process: ``parse_export`` (an OTLP protobuf body to
rows, what the receiver's parse workers run) with the compiled OTLP reader (``netra_server/_otlp_wire.c``)
and with the protobuf runtime, and the reading step alone (body to plain values) for each. Rounds
alternate the two, so the ratio is measured in one run; CPU time of this process, best round.

The bodies are real SDK spans from ``bench_server.py``'s generator, 512 per request.

    .venv/bin/python bench/bench_parse.py [--batches 4] [--rounds 7]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", type=int, default=4, help="512-span requests")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=10, help="passes over the bodies per round")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    import bench_server as b
    import netra_server.otlp_read as otlp_read
    from netra_server.config import Limits
    from netra_server.otlp import parse_export
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    from netra.pricing import warm_up

    if otlp_read._otlp_wire is None:
        print("the compiled OTLP reader is not built here (scripts/install with a C compiler); nothing to compare")
        return 1
    compiled = otlp_read._otlp_wire
    warm_up()
    bodies = [encode_spans(batch).SerializeToString() for batch in b._make_spans(0, args.batches)]
    spans = args.batches * b.BATCH
    limits = Limits()
    now_ms = time.time_ns() // 1_000_000

    def rows(reader: object) -> Callable[[], None]:
        def run() -> None:
            otlp_read._otlp_wire = reader  # type: ignore[assignment]
            for body in bodies:
                parse_export(body, "application/x-protobuf", "", limits, "PROJECT", now_ms)
        return run

    def read(reader: object) -> Callable[[], None]:
        def run() -> None:
            otlp_read._otlp_wire = reader  # type: ignore[assignment]
            for body in bodies:
                otlp_read.read_request(body, "application/x-protobuf", "", limits)
        return run

    cases = {
        "parse_export, compiled reader": rows(compiled), "parse_export, protobuf runtime": rows(None),
        "reading alone, compiled reader": read(compiled), "reading alone, protobuf runtime": read(None),
    }
    for run in cases.values():  # warm up
        run()
    best = dict.fromkeys(cases, float("inf"))
    for _ in range(args.rounds):
        for name, run in cases.items():
            c0 = time.process_time()
            for _ in range(args.repeat):
                run()
            best[name] = min(best[name], (time.process_time() - c0) / (args.repeat * spans) * 1e6)
    otlp_read._otlp_wire = compiled
    print(f"python {sys.version.split()[0]}; {spans:,} spans in {args.batches} bodies, best of {args.rounds} rounds")
    for name, us in best.items():
        print(f"  {name:34} {us:6.2f} us/span")
    ratio = best["parse_export, compiled reader"] / best["parse_export, protobuf runtime"]
    print(f"parse_export: compiled reader / protobuf runtime = {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
