"""The span index's cost per insert as the store grows: every lookup asking the store, against the trace
filter (``netra_server.trace_filter.TraceFilter``) that lets fresh traces skip the lookup.

    .venv/bin/python bench/bench_span_index.py                    # 120 inserts of 16,384 spans (2M spans)
    .venv/bin/python bench/bench_span_index.py --inserts 40 --redeliver 0.02

Two stores on one embedded chDB (one data folder per process), each writing its own project, fed the
same inserts in turn (so the machine's load and the merges fall on both alike): ``lookups`` asks the
index for every insert, as a ClickHouse server deployment does; ``filter`` has the trace filter
loaded, as ``netra serve`` on the embedded store does.
Each insert is ``--spans`` span rows as the ingest journal flushes them (the real ingest mapping,
``otlp.build_rows``, of real SDK spans made by ``bench_server.py``'s generator, one span per trace),
with fresh trace ids; ``--redeliver`` of them are re-deliveries of spans inserted before (an
exporter's retry: those traces must be looked up in both stores). Reported per tenth of the run: the
median wall time of ``Store.insert_spans`` and of its index lookups, both stores, and their ratio.
At the end both stores must hold the same spans, each once.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import bench_server
from netra_server import otlp
from netra_server.billing import key_of_row
from netra_server.config import Limits
from netra_server.store import ChdbBackend, Store
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

TRACE = re.compile(rb'"([0-9a-f]{32})"')


def _base_rows(spans: int) -> list[bytes]:
    """``spans`` span rows (JSONCompactEachRow lines) of one-span traces."""
    batches = bench_server._make_spans(0, -(-spans // bench_server.BATCH))
    lines: list[bytes] = []
    now_ms = int(time.time() * 1000)
    for batch in batches:
        lines += otlp.build_rows(encode_spans(batch), "prj_bench", Limits(), now_ms).data.split(b"\n")[:-1]
    return lines[:spans]


def _insert_of(lines: list[bytes], n: int, earlier: list[bytes], redeliver: float, rng: random.Random) -> bytes:
    """Insert ``n``: the base rows with fresh trace ids (prefix ``n``), some re-deliveries of earlier rows."""
    prefix = b"%08x" % n
    fresh = [TRACE.sub(lambda m: b'"' + prefix + m.group(1)[8:] + b'"', line, count=1) for line in lines]
    k = int(len(fresh) * redeliver) if earlier else 0
    if k:
        fresh[:k] = rng.sample(earlier, k)
    return b"\n".join(fresh) + b"\n"


class Timed:
    """A store whose index lookups (``netra_span_index`` reads) are timed."""

    def __init__(self, path: str, project: str, trace_filter: bool) -> None:
        self.project = project.encode()
        self.store = Store(ChdbBackend(path))
        self.store.migrate()
        if trace_filter:
            self.store.span_index.load_traces(self.store)
        self.lookup = 0.0
        backend = self.store.backend
        query = backend.query

        def timed(sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
            t = time.perf_counter()
            try:
                return query(sql, params)
            finally:
                if "netra_span_index" in sql:
                    self.lookup += time.perf_counter() - t

        backend.query = timed  # type: ignore[method-assign]

    def insert(self, data: bytes) -> tuple[float, float]:
        data = data.replace(b'["prj_bench",', b'["' + self.project + b'",')
        self.lookup = 0.0
        t = time.perf_counter()
        self.store.insert_spans(data, [key_of_row(line) for line in data.split(b"\n")[:-1]])
        return time.perf_counter() - t, self.lookup


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--inserts", type=int, default=120, help="inserts per store (default 120)")
    ap.add_argument("--spans", type=int, default=16_384, help="spans per insert (default 16,384)")
    ap.add_argument("--redeliver", type=float, default=0.0, help="share of re-delivered spans per insert")
    args = ap.parse_args()
    rng = random.Random(7)
    print(f"making {args.spans:,} base span rows ...", flush=True)
    lines = _base_rows(args.spans)
    root = Path(tempfile.mkdtemp(prefix="netra-bench-index-"))
    stores = {"lookups": Timed(str(root), "prj_a", False), "filter": Timed(str(root), "prj_b", True)}
    timings: dict[str, list[tuple[float, float]]] = {name: [] for name in stores}
    earlier: list[bytes] = []
    for n in range(args.inserts):
        data = _insert_of(lines, n, earlier, args.redeliver, rng)
        order = list(stores) if n % 2 == 0 else list(reversed(stores))  # neither always goes first
        for name in order:
            timings[name].append(stores[name].insert(data))
        earlier = data.split(b"\n")[:-1][: args.spans // 4]
    tenth = max(1, args.inserts // 10)
    print(f"\n{args.spans:,} spans per insert, {args.redeliver:.0%} re-delivered; median ms per insert "
          "(wall), index lookups inside it")
    print(f"{'spans stored':>14} | {'lookups: insert':>15} {'lookup':>8} | {'filter: insert':>14} {'lookup':>8} | ratio")
    for start in range(0, args.inserts, tenth):
        part = {name: timings[name][start : start + tenth] for name in stores}
        med = {name: (statistics.median(t for t, _ in p), statistics.median(q for _, q in p)) for name, p in part.items()}
        stored = (start + len(part["lookups"])) * args.spans
        print(f"{stored:>14,} | {med['lookups'][0] * 1e3:>15.1f} {med['lookups'][1] * 1e3:>8.1f} | "
              f"{med['filter'][0] * 1e3:>14.1f} {med['filter'][1] * 1e3:>8.1f} | "
              f"{med['filter'][0] / med['lookups'][0]:.2f}x")
    total = {name: sum(t for t, _ in timings[name]) for name in stores}
    print(f"whole run: lookups {total['lookups']:.1f} s, filter {total['filter']:.1f} s "
          f"({total['filter'] / total['lookups']:.2f}x); spans/s in insert_spans: "
          f"{args.inserts * args.spans / total['lookups']:,.0f} vs {args.inserts * args.spans / total['filter']:,.0f}")
    flt = stores["filter"].store.span_index
    print(f"filter: {flt.lookups_skipped} insert(s) without a lookup, {flt.lookups} with one; "
          f"{flt.traces.bytes / 1e6 if flt.traces else 0:.1f} MB")
    counts = {name: t.store.count_spans(t.project.decode()) for name, t in stores.items()}
    for t in stores.values():
        t.store.close()
    ok = counts["lookups"] == counts["filter"] == args.inserts * args.spans - (
        (args.inserts - 1) * int(args.spans * args.redeliver)
    )
    print(f"spans stored: {counts} ({'OK' if ok else 'MISMATCH'})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
