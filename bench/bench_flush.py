"""The journal's flush path alone: parsed spans appended to the ingest journal and inserted into a real
embedded store (chDB), in one process, with the CPU it costs per span (user and system, the part-writing
and merging threads included), its minor page faults, the rows ClickHouse's merges rewrote per span
(``MergedRows``, all tables) and the parts left active.

It compares the store as ``netra serve`` makes it with one setting put back to ClickHouse's default,
in alternating rounds of the same run, each round in a fresh process and a fresh store:

- ``--compare parts``: Compact ``netra_spans`` parts under 256 MiB (``core-0006``) against Wide from
  10 MiB (two files per column);
- ``--compare merges``: ``merge_selector_base`` 10 on the tables every flush writes (``core-0007``)
  against 5;
- ``--compare resources``: span rows that name their resource, stored once in ``netra_resources``
  (``core-0008``), against rows that each carry the resource's attributes (as before ``core-0008``).

The spans are made once by the real OpenTelemetry SDK and parsed by the receiver's ``parse_export``, as
``bench_server.py`` sends them; a flush every ``FLUSH_SPANS`` spans, ``--pause`` seconds apart (the
journal flushes about once a second under load), then 8 s for the merges they caused.

    .venv/bin/python bench/bench_flush.py [--compare parts|merges|resources] [--rounds 3] [--batches 75]
"""

from __future__ import annotations

import argparse
import json
import pickle
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from netra_server.schema import FLUSHED_TABLES

ROOT = Path(__file__).resolve().parent
#: ClickHouse's own default: parts from 10 MiB (uncompressed) on are Wide.
CLICKHOUSE_DEFAULT_WIDE_BYTES = 10 * 1024 * 1024
#: Per comparison: (name of the store as made, name of the other variant, the statements that make it).
COMPARISONS: dict[str, tuple[str, str, list[str]]] = {
    "parts": ("compact", "wide", [f"ALTER TABLE netra_spans MODIFY SETTING min_bytes_for_wide_part = {CLICKHOUSE_DEFAULT_WIDE_BYTES}"]),
    "merges": ("base10", "base5", [f"ALTER TABLE {t} MODIFY SETTING merge_selector_base = 5" for t in FLUSHED_TABLES]),
    "resources": ("apart", "inline", []),
}
FLUSH_SPANS = 20_480  # about what the journal holds after its 1 s flush interval at ~20,000 spans/s


def _build(batches: int, out: Path) -> None:
    sys.path.insert(0, str(ROOT))
    import bench_server as b
    from netra_server.config import Limits
    from netra_server.otlp import parse_export
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    now = time.time_ns() // 1_000_000
    rows = []
    for sender in range(4):
        for batch in b._make_spans(sender, batches):
            ib = parse_export(encode_spans(batch).SerializeToString(), "application/x-protobuf", "", Limits(),
                              "PROJECT", now)
            rows.append((ib.data, ib.span_count, ib.keys, ib.resources))
    out.write_bytes(pickle.dumps(rows))


def _events(store: Any) -> dict[str, int]:
    return {r["event"]: int(r["value"]) for r in store.query("SELECT event, value FROM system.events")}


def _inline(data: bytes, resources: dict[tuple[str, str], bytes]) -> bytes:
    """``data`` with each resource reference replaced by the resource's attributes (rows as written
    before ``core-0008``)."""
    from netra_server.schema import RESOURCE_REF_PREFIX

    for (_, resource_id), attrs in resources.items():
        data = data.replace(json.dumps(RESOURCE_REF_PREFIX + resource_id).encode(), attrs)
    return data


def _round(rows_path: Path, statements: list[str], pause: float, inline: bool = False) -> dict[str, Any]:
    """One round in this process: a fresh store changed by ``statements``, every request appended (four
    per group commit, as four exporters would; the resources its rows name stored first, as the
    receiver does, or, with ``inline``, in every row instead) and flushed every ``FLUSH_SPANS`` spans,
    ``pause`` seconds apart, then 8 s for the merges it caused."""
    from netra_server.config import Settings
    from netra_server.lifecycle import open_journal, prepare_store

    tmp = Path(tempfile.mkdtemp(prefix="netra-bench-flush-"))
    settings = Settings(data_dir=tmp, announce=False)
    store, project, _ = prepare_store(settings)
    pid = project.project_id
    rows: list[tuple[bytes, int, list[Any], dict[tuple[str, str], bytes]]] = pickle.loads(rows_path.read_bytes())
    rows = [((_inline(d, res) if inline else d).replace(b'"PROJECT"', f'"{pid}"'.encode()), n,
             [(pid, *k[1:]) for k in keys], {(pid, rid): a for (_, rid), a in res.items()})
            for d, n, keys, res in rows]
    for sql in statements:
        store.command(sql)
    journal = open_journal(settings, store)
    assert journal is not None
    ev0 = _events(store)
    most_parts = 0
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    spans = since_flush = 0
    for i in range(0, len(rows), 4):
        group = rows[i:i + 4]
        n = sum(g[1] for g in group)
        if not inline:
            store.store_resources({k: a for g in group for k, a in g[3].items()})
        journal.append(b"".join(g[0] for g in group), n, [k for g in group for k in g[2]])
        spans += n
        since_flush += n
        if since_flush >= FLUSH_SPANS:
            journal.flush()
            since_flush = 0
            most_parts = max(most_parts, _span_parts(store))
            time.sleep(pause)
    journal.flush()
    wall = time.perf_counter() - t0
    time.sleep(8)  # the merges these parts cause
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    ev1 = _events(store)
    parts_left = _span_parts(store)
    stored = store.query("SELECT count() AS n FROM netra_spans FINAL")[0]["n"]
    assert stored == spans, (stored, spans)
    store.close()
    shutil.rmtree(tmp, ignore_errors=True)
    return {"spans": spans, "wall_us": wall / spans * 1e6,
            "user_us": (r1.ru_utime - r0.ru_utime) / spans * 1e6, "sys_us": (r1.ru_stime - r0.ru_stime) / spans * 1e6,
            "minflt": (r1.ru_minflt - r0.ru_minflt) / spans,
            "merged_rows": (ev1.get("MergedRows", 0) - ev0.get("MergedRows", 0)) / spans,
            "most_parts": most_parts, "parts_left": parts_left}


def _span_parts(store: Any) -> int:
    """Active parts of ``netra_spans`` (what a read of spans opens)."""
    return int(store.query("SELECT count() AS n FROM system.parts WHERE active AND table = 'netra_spans'")[0]["n"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3, help="rounds of each variant, alternating")
    ap.add_argument("--batches", type=int, default=75, help="512-span requests per sender (4 senders)")
    ap.add_argument("--compare", choices=sorted(COMPARISONS), default="parts",
                    help="parts: Compact against Wide span parts; merges: merge_selector_base 10 against 5; "
                         "resources: resources stored apart against in every row")
    ap.add_argument("--pause", type=float, default=0.5, help="seconds between flushes")
    ap.add_argument("--round", help=argparse.SUPPRESS)
    ap.add_argument("--rows", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    ours, other, statements = COMPARISONS[args.compare]
    if args.round:
        print(json.dumps(_round(args.rows, statements if args.round == other else [], args.pause,
                                inline=args.compare == "resources" and args.round == other)))
        return 0
    print(f"python: {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory(prefix="netra-bench-flush-rows-") as d:
        rows = Path(d) / "rows.pickle"
        _build(args.batches, rows)
        results: dict[str, list[dict[str, Any]]] = {ours: [], other: []}
        for _ in range(args.rounds):
            for variant in (other, ours):
                out = subprocess.run([sys.executable, __file__, "--compare", args.compare, "--pause", str(args.pause),
                                      "--round", variant, "--rows", str(rows)],
                                     check=True, capture_output=True, text=True).stdout
                r = json.loads(out.strip().splitlines()[-1])
                results[variant].append(r)
                print(f"  {variant:7} {r['spans']:,.0f} spans: CPU {r['user_us'] + r['sys_us']:.1f} us/span "
                      f"(system {r['sys_us']:.1f}), wall {r['wall_us']:.1f} us/span, {r['minflt']:.2f} page faults/span, "
                      f"merges rewrote {r['merged_rows']:.2f} rows/span, span parts: at most {r['most_parts']} "
                      f"after a flush, {r['parts_left']} at the end")
    med = {v: statistics.median(x["user_us"] + x["sys_us"] for x in rs) for v, rs in results.items()}
    sys_med = {v: statistics.median(x["sys_us"] for x in rs) for v, rs in results.items()}
    merged = {v: statistics.median(x["merged_rows"] for x in rs) for v, rs in results.items()}
    print(f"flush path CPU per span, median of {args.rounds}: {ours} {med[ours]:.1f} us (system {sys_med[ours]:.1f}), "
          f"{other} {med[other]:.1f} us (system {sys_med[other]:.1f}): {med[ours] / med[other]:.2f}x; "
          f"rows rewritten by merges per span: {merged[ours]:.2f} against {merged[other]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
