"""What one journal flush costs inside the embedded store, taken apart. First ``Store.insert_spans`` as
the journal calls it (a store made by ``netra serve``'s start-up, the live usage table kept, merges
stopped): its CPU and wall time per span, and the part of it in each table's INSERT. Then chDB parsing the rows alone
(into a ``Null`` table with the columns of ``netra_spans``), parsing them into String columns only (no
type conversion), and the real INSERT into ``netra_spans`` (parsing, sorting, compressing, writing the
part; merges stopped), for the rows as the receiver writes them (``JSONCompactEachRow``, attribute maps
as JSON objects) and as some other text formats would carry the same rows, and as Arrow columns. CPU of this process per span
(chDB's pipeline threads included); best of ``--repeats``.

The rows are real SDK spans from ``bench_server.py``'s generator, mapped by the receiver's
``parse_export``; the other formats are written by chDB itself from the stored rows.

    .venv/bin/python bench/bench_insert_formats.py [--batches 96] [--repeats 3]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _best_cpu(insert: Callable[[], None], spans: int, repeats: int) -> float:
    """Best CPU per span, in microseconds, of ``repeats`` calls of ``insert``."""
    best = float("inf")
    for _ in range(repeats):
        c0 = _cpu()
        insert()
        best = min(best, (_cpu() - c0) / spans * 1e6)
    return best


def _insert_cpu(backend: Any, table: str, fmt: str, data: bytes, spans: int, repeats: int) -> float:
    """Best CPU per span of inserting ``data`` (``fmt``) into ``table`` the way the journal inserts
    (``ChdbBackend.insert_rows``: its settings, one thread)."""
    from netra_server.schema import SPAN_COLUMNS

    return _best_cpu(lambda: backend.insert_rows(table, SPAN_COLUMNS, data, fmt), spans, repeats)


def _stored_as(backend: Any, fmt: str, spans: int) -> bytes:
    """The first ``spans`` rows of ``netra_spans`` in ``fmt``, as chDB writes them."""
    from netra_server.schema import SPAN_COLUMNS

    return bytes(backend._conns.get().query(f"SELECT {', '.join(SPAN_COLUMNS)} FROM netra_spans LIMIT {spans}", fmt).bytes())


def _arrow_insert_cpu(backend: Any, spans: int, repeats: int) -> float:
    """Best CPU per span of inserting the stored rows, as an Arrow table (written by chDB), into the typed
    ``Null`` table through ``Python()`` with the journal's INSERT settings: no text to parse."""
    import pyarrow as pa
    from netra_server.schema import SPAN_COLUMNS
    from netra_server.store.chdb import _CHDB_INSERT_SETTINGS

    conn = backend._conns.get()
    bench_rows = pa.ipc.open_file(pa.py_buffer(_stored_as(backend, "Arrow", spans))).read_all()
    statement = f"INSERT INTO typed_null ({', '.join(SPAN_COLUMNS)}) {_CHDB_INSERT_SETTINGS} SELECT * FROM Python(bench_rows)"

    def insert() -> None:
        assert bench_rows.num_rows == spans  # Python() finds the table by its name among this frame's variables
        conn.query(statement)

    return _best_cpu(insert, spans, repeats)


def _flush_split(data: bytes, keys: list[Any], chunk: int) -> None:
    """``Store.insert_spans`` of ``chunk`` spans at a time into a store as ``netra serve`` makes it."""
    from netra_server.config import Settings
    from netra_server.lifecycle import prepare_store
    from netra_server.schema import FLUSHED_TABLES

    tmp = Path(tempfile.mkdtemp(prefix="netra-bench-flush-split-"))
    try:
        store, project, _ = prepare_store(Settings(data_dir=tmp, announce=False))
        pid = project.project_id
        data = data.replace(b'"PROJECT"', f'"{pid}"'.encode())
        keys = [(pid, *k[1:]) for k in keys]
        for table in FLUSHED_TABLES:
            store.command(f"SYSTEM STOP MERGES {table}")
        spent: dict[str, list[float]] = {}
        backend = store.backend
        insert_rows = backend.insert_rows

        def timed(table: str, *args: Any, **kwargs: Any) -> None:
            t0, c0 = time.perf_counter(), time.thread_time()
            try:
                insert_rows(table, *args, **kwargs)
            finally:
                e = spent.setdefault(table, [0.0, 0.0])
                e[0] += time.perf_counter() - t0
                e[1] += time.thread_time() - c0

        backend.insert_rows = timed  # type: ignore[method-assign]
        lines = data.split(b"\n")[:-1]
        t0, c0, p0 = time.perf_counter(), time.thread_time(), _cpu()
        for i in range(0, len(lines), chunk):
            store.insert_spans(b"\n".join(lines[i:i + chunk]) + b"\n", keys[i:i + chunk])
        n = len(lines)
        wall, here, cpu = time.perf_counter() - t0, time.thread_time() - c0, _cpu() - p0
        print(f"  Store.insert_spans, {chunk:,} spans at a time (merges stopped): CPU {cpu / n * 1e6:.1f} us/span, "
              f"wall {wall / n * 1e6:.1f} us/span ({here / n * 1e6:.1f} on the calling thread)")
        for table, (w, c) in spent.items():
            print(f"    INSERT into {table}: wall {w / n * 1e6:.1f} us/span ({c / n * 1e6:.1f} on the calling thread)")
        store.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", type=int, default=96, help="512-span requests (the flush: 16,384 spans at a time)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    import bench_server as b
    from netra_server.config import Limits
    from netra_server.otlp import parse_export
    from netra_server.schema import SPAN_COLUMNS
    from netra_server.store import Store
    from netra_server.store.chdb import ChdbBackend
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    batches = [parse_export(encode_spans(batch).SerializeToString(), "application/x-protobuf", "", Limits(),
                            "PROJECT", time.time_ns() // 1_000_000) for batch in b._make_spans(0, args.batches)]
    data = b"".join(ib.data for ib in batches)
    spans = data.count(b"\n")
    print(f"python: {sys.version.split()[0]}; {spans:,} spans, {len(data) / spans:.0f} bytes per JSONCompactEachRow row")
    _flush_split(data, [k for ib in batches for k in ib.keys], 16_384)
    tmp = tempfile.mkdtemp(prefix="netra-bench-formats-")
    try:
        backend = ChdbBackend(tmp)
        store = Store(backend, threads=1)
        store.migrate()  # netra_spans as `netra serve` makes it
        store.command("SYSTEM STOP MERGES netra_spans")
        types = {r["name"]: r["type"] for r in store.query(
            "SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = 'netra_spans'")}
        store.command("CREATE TABLE typed_null (" + ", ".join(f"{c} {types[c]}" for c in SPAN_COLUMNS) + ") ENGINE = Null")
        store.command("CREATE TABLE strings_null (" + ", ".join(f"{c} String" for c in SPAN_COLUMNS) + ") ENGINE = Null")
        stored = _insert_cpu(backend, "netra_spans", "JSONCompactEachRow", data, spans, 1)  # also fills the table
        parse = _insert_cpu(backend, "typed_null", "JSONCompactEachRow", data, spans, args.repeats)
        strings = _insert_cpu(backend, "strings_null", "JSONCompactEachRow", data, spans, args.repeats)
        print(f"  INSERT into netra_spans (merges stopped): {stored:.1f} us/span")
        print(f"  parsing alone (Null table, the same column types): {parse:.1f} us/span")
        print(f"  parsing into String columns only (Null table): {strings:.1f} us/span")
        for fmt in ("TabSeparated", "CSV", "JSONCompactStringsEachRow"):
            # the same rows in another format, as chDB writes them (through the backend's own connection)
            other = _stored_as(backend, fmt, spans)
            cpu = _insert_cpu(backend, "typed_null", fmt, other, spans, args.repeats)
            print(f"  parsing {fmt} ({len(other) / spans:.0f} bytes/row): {cpu:.1f} us/span ({cpu / parse:.2f}x)")
        cpu = _arrow_insert_cpu(backend, spans, args.repeats)
        print(f"  the same rows as Arrow columns, through chDB's Python() table function: {cpu:.1f} us/span "
              f"({cpu / parse:.2f}x; building them in the parse workers costs more than this saves, see docs/benchmarks.md)")
        store.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
