"""Span identity and the billing rule, enforced where spans enter the store (``Store.insert_spans``).

**Identity.** A span is ``(project, trace id, span id)``, whatever else a delivery carries. The first
version the store accepts is the span; a later delivery of the same identity is not stored: if its
content is the same (an exporter's retry: same bytes but the ingest time) nothing happens, and if it
differs (another tenant, start time, cost...) the store keeps the first version and records the other
version's fingerprint, so the API can say the span was delivered in ``versions`` conflicting versions.
The first version wins because it is the one that may already have been counted, reported or billed.

**Billing rule.** A span's usage does not count when a descendant in the same trace recorded usage
(``covered``). The producer's ``netra.usage.covered`` flag is honoured (our SDK sets it on open
ancestors), but the store no longer needs it: when a span with usage (or a covered span) arrives, its
parent becomes covered; the parent's stored row is written again with ``covered = 1`` (a newer version
of the same row: ``ReplacingMergeTree``), and so on up the chain; a parent that has not arrived yet
gets a *placeholder*, and is stored covered when it arrives. Spans may arrive in any order, in any
requests, on any day: a rewritten row lands in its own day partition, which invalidates that day's
rollup (``netra_server.rollups``) until it is computed again.

Both rest on ``netra_span_index`` (``schema.SPAN_INDEX_DDL``): one row per span identity (or
placeholder), looked up in batch for the spans of each insert. Exactness needs one writer per trace at
a time: ``Store`` serialises its inserts (the journal flush, or the group commit's INSERT), so one
``netra serve`` process is exact; several ingest processes writing to one ClickHouse must receive all
spans of a trace through the same process (an OpenTelemetry Collector's ``loadbalancing`` exporter with
``routing_key: traceID`` in front of them).

**Fresh traces skip the lookup.** Most spans belong to traces the index has never seen. On the embedded
store (one writer) ``SpanIndex.traces`` is a :class:`TraceFilter`: a Bloom filter in memory of every
(project, trace) with index rows, loaded from the index in the background at startup
(``load_traces``) and added to before each index write, so the lookup asks the store only for the
traces that may be indexed (a false positive costs one lookup, never a wrong answer). Until it has
loaded, every lookup asks the store. A ClickHouse server has several writers, so there every lookup
asks the store.

Crash safety: the span rows are inserted first, then the rewritten ancestors, then the index rows. A
crash in between leaves spans without index rows; inserting the same rows again (the ingest journal's
recovery, or an exporter's retry) finds no index row, so it writes the same rows, which collapse with
the first, and the same ancestor rewrites: the result is the same as one successful insert.
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from netra_server.live_usage import LiveUsage
from netra_server.schema import SPAN_COLUMNS
from netra_server.trace_filter import TraceFilter

__all__ = ["SpanIndex", "SpanKey", "fingerprint", "key_of_row"]

log = logging.getLogger("netra_server")

#: What ingest knows of a span without parsing its row again (``IngestBatch.keys``): project, trace id,
#: span id, parent span id (``""`` for a root), tenant, start (Unix ns), has_usage, covered (as the
#: producer sent it), fingerprint (:func:`fingerprint`).
SpanKey = tuple[str, str, str, str, str, int, int, int, int]

#: Most conflicting versions remembered per span (the count shown saturates there).
MAX_OTHER_VERSIONS = 32


def fingerprint(row_without_ingest_time: bytes | memoryview) -> int:
    """A 64-bit fingerprint of a span row's content (everything but ``ingested_at``, the last field)."""
    return (zlib.crc32(row_without_ingest_time) << 32) | zlib.adler32(row_without_ingest_time)


def key_of_row(line: bytes, columns: tuple[str, ...] | None = None) -> SpanKey:
    """The :data:`SpanKey` of one ``JSONCompactEachRow`` span row (what ``build_rows`` records alongside)."""
    cols = columns or SPAN_COLUMNS
    row = orjson.loads(line)
    ix = cols.index
    start = str(row[ix("start_time")])
    sec, _, frac = start.partition(".")
    start_ns = int(sec) * 1_000_000_000 + int((frac + "000000000")[:9])
    return (
        str(row[ix("project_id")]), str(row[ix("trace_id")]), str(row[ix("span_id")]),
        str(row[ix("parent_span_id")]), str(row[ix("tenant_id")]), start_ns,
        int(row[ix("has_usage")]), int(row[ix("covered")]), fingerprint(line[: line.rindex(b",")]),
    )


class _Reads(Protocol):
    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]: ...


class _Runs(_Reads, Protocol):
    def command(self, sql: str, params: dict[str, Any] | None = None) -> None: ...

    def insert_rows(self, table: str, columns: tuple[str, ...], data: bytes, fmt: str, *, comment: str = "") -> None: ...


INDEX_COLUMNS: tuple[str, ...] = (
    "project_id", "trace_id", "span_id", "parent_span_id", "tenant_id", "start_ns", "present",
    "fingerprint", "has_usage", "covered", "other_versions", "version",
)

#: Every stored version of the index rows of some traces of one project (the newest wins, and the
#: spans asked for are picked, in Python). ``IN (SELECT ...)``: a hash set, and the primary key narrows
#: the read to the traces' granules (``IN splitByChar(...)`` is a per-row array search: slow).
SQL_LOOKUP = """
SELECT trace_id, span_id, parent_span_id, tenant_id, start_ns, present, fingerprint, has_usage, covered,
    other_versions, version
FROM netra_span_index
WHERE project_id = {p:String}
    AND trace_id IN (SELECT arrayJoin(splitByChar(',', {traces:String})))
"""

#: The stored rows of some spans of one project (``_stored_params``): what a covered rewrite writes
#: again, and what the live usage table subtracts first.
STORED_WHERE = """project_id = {p:String}
    AND tenant_id IN (SELECT arrayJoin(JSONExtract({tenants:String}, 'Array(String)')))
    AND start_time >= fromUnixTimestamp64Nano({lo:Int64}, 'UTC')
    AND start_time <= fromUnixTimestamp64Nano({hi:Int64}, 'UTC')
    AND trace_id IN (SELECT arrayJoin(splitByChar(',', {traces:String})))
    AND concat(trace_id, ':', span_id) IN (SELECT arrayJoin(splitByChar(',', {ids:String})))"""

#: Write stored spans again with ``covered = 1``, as a newer version of the same row. (No condition
#: on ``covered`` or ``ingested_at`` here: in WHERE they would name the replaced values.)
SQL_COVER = f"""
INSERT INTO netra_spans
SELECT * REPLACE (toUInt8(1) AS covered,
    greatest(now64(3, 'UTC'), ingested_at + toIntervalMillisecond(1)) AS ingested_at)
FROM netra_spans FINAL
WHERE {STORED_WHERE}
"""

#: Distinct versions delivered per span of a trace (only spans delivered in more than one).
SQL_VERSIONS = """
SELECT span_id, 1 + length(argMax(other_versions, version)) AS versions
FROM netra_span_index
WHERE project_id = {p:String} AND trace_id = {t:String}
GROUP BY span_id
HAVING versions > 1
"""


#: The traces of one project in the index, a page at a time in key order (``load_traces``).
SQL_INDEXED_TRACES = """
SELECT DISTINCT trace_id FROM netra_span_index
WHERE project_id = {p:String} AND trace_id > {after:String}
ORDER BY trace_id
LIMIT {n:UInt32}
"""

SQL_INDEXED_PROJECTS = "SELECT DISTINCT project_id FROM netra_span_index"


@dataclass
class _Entry:
    """The index state of a span stored before this insert, or of a placeholder."""

    parent: str
    tenant: str
    start_ns: int
    present: bool
    fingerprint: int
    has_usage: bool
    covered: bool
    others: list[int] = field(default_factory=list)
    dirty: bool = False


@dataclass
class _Plan:
    """What one insert writes for one project."""

    keep: list[int]  # positions of the rows to store (first versions of new spans)
    covered: dict[int, int]  # position -> covered flag to store, where it differs from the producer's
    others: dict[int, list[int]]  # position -> fingerprints of other versions in this insert
    stored: dict[str, _Entry]  # changed index entries of spans stored before (or placeholders)
    rewrite: set[str]  # stored spans to write again, covered


class SpanIndex:
    """Applies identity and the billing rule to the span rows of one insert (see the module doc).

    One instance per store; :meth:`insert` runs one insert at a time (a lock), so everything written
    through one ``Store`` is exact. :attr:`traces`: the traces known to be indexed (None: every lookup
    asks the store); set it only where this process is the store's one writer."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.traces: TraceFilter | None = None
        #: lookups asked of the store, and lookups the trace filter answered (for tests and the bench)
        self.lookups = 0
        self.lookups_skipped = 0
        #: the live usage table, kept by the inserts once set (``Store.start_live_usage``, the embedded store)
        self.live: LiveUsage | None = None
        self._version = 0
        #: counters (for tests and the log): spans dropped as identical re-deliveries, as conflicting
        #: versions, and stored rows written again covered
        self.duplicates = 0
        self.conflicts = 0
        self.rewritten = 0

    def _next_version(self) -> int:
        self._version = max(self._version + 1, time.time_ns())
        return self._version

    def insert(
        self,
        runner: _Runs,
        data: bytes,
        keys: list[SpanKey] | None,
        insert_spans: Callable[..., None],
    ) -> None:
        """Insert the span rows ``data`` (``JSONCompactEachRow`` of ``SPAN_COLUMNS``) through
        ``insert_spans(rows)`` (``insert_spans(rows, comment)`` while the live usage table is kept: the
        INSERT's ``log_comment``), applying identity and coverage; ``keys``: their :data:`SpanKey`
        (computed from the rows when missing)."""
        if not data:
            return
        lines: list[bytes] | None = None
        if keys is None or len(keys) != data.count(b"\n"):
            lines = data.split(b"\n")
            if lines and not lines[-1]:
                lines.pop()
            cols = SPAN_COLUMNS
            keys = [key_of_row(line, cols) for line in lines]
        if not keys:
            return
        with self._lock:
            self._insert(runner, data, lines, keys, insert_spans)

    def _insert(
        self,
        runner: _Runs,
        data: bytes,
        lines: list[bytes] | None,
        keys: list[SpanKey],
        insert_spans: Callable[..., None],
    ) -> None:
        projects = {k[0] for k in keys}
        if len(projects) == 1:
            groups = [(keys[0][0], list(range(len(keys))))]
        else:
            by: dict[str, list[int]] = {}
            for i, k in enumerate(keys):
                by.setdefault(k[0], []).append(i)
            groups = list(by.items())
        live = self.live
        if live is not None and live.broken:
            live.reset(runner)
        if live is None or not live.active:
            self._apply(runner, data, lines, keys, groups, insert_spans, None)
            return
        try:
            self._apply(runner, data, lines, keys, groups, insert_spans, live)
        except BaseException:  # some statements may have run: the live table can no longer be trusted
            live.reset(runner)
            raise

    def _apply(self, runner: _Runs, data: bytes, lines: list[bytes] | None, keys: list[SpanKey],
               groups: list[tuple[str, list[int]]], insert_spans: Callable[..., None], live: LiveUsage | None) -> None:
        plans = [(project, self._plan(runner, positions, keys)) for project, positions in groups]
        keep = sorted(i for _, plan in plans for i in plan.keep)
        covered = {i: c for _, plan in plans for i, c in plan.covered.items()}
        # spans first, ancestors written again next, index rows last: see the module doc (crash safety);
        # tagged, the span INSERT also adds its rows to the live usage table (its materialized view)
        tag = (live.tag(),) if live is not None else ()
        if len(keep) == len(keys) and not covered:
            insert_spans(data, *tag)  # the common case: every row as it came
        elif keep:
            if lines is None:
                lines = data.split(b"\n")
            covered_col = SPAN_COLUMNS.index("covered")
            out = []
            for i in keep:
                line = lines[i]
                if i in covered:  # stored covered (or not) by the server's rule
                    row = orjson.loads(line)
                    row[covered_col] = covered[i]
                    line = orjson.dumps(row)
                out.append(line)
            insert_spans(b"\n".join(out) + b"\n", *tag)
        for project, plan in plans:
            if plan.rewrite:
                targets = {i: plan.stored[i] for i in plan.rewrite}
                counting = {i: e for i, e in targets.items() if e.has_usage}
                if live is not None and counting:  # what they count, before they are written covered
                    live.uncount(runner, STORED_WHERE, _stored_params(project, counting))
                runner.command(SQL_COVER, _stored_params(project, targets))
                self.rewritten += len(targets)
        for project, plan in plans:
            self._write_index(runner, project, plan, keys)

    def _plan(self, runner: _Runs, positions: list[int], keys: list[SpanKey]) -> _Plan:
        """Which rows of one project's spans at ``positions`` are stored, and covered; which stored
        spans and placeholders change."""
        project = keys[positions[0]][0]
        idents = [keys[i][1] + ":" + keys[i][2] for i in positions]
        first: dict[str, int] = {}
        for ident, i in zip(reversed(idents), reversed(positions), strict=True):
            first[ident] = i  # the first occurrence in the insert wins
        others: dict[int, list[int]] = {}
        if len(first) != len(idents):  # the same span more than once in this insert
            for ident, i in zip(idents, positions, strict=True):
                j = first[ident]
                if i != j:
                    self._other_version(keys[j][8], keys[i][8], others.setdefault(j, []))
        wanted = set(first)
        for i in positions:
            k = keys[i]
            if k[3] and (k[6] or k[7]):
                wanted.add(k[1] + ":" + k[3])
        stored = self._lookup(runner, project, wanted)
        keep: list[int] = []
        cov: dict[int, int] = {}
        for ident, i in first.items():
            e = stored.get(ident)
            if e is None:
                keep.append(i)
                continue
            if e.present:  # a re-delivery: the stored version stays
                fps = [keys[i][8]] + [fp for fp in others.get(i, ()) if fp != keys[i][8]]
                for fp in fps:
                    if e.fingerprint == 0:  # indexed before fingerprints: this one is the first's
                        e.fingerprint, e.dirty = fp, True
                    self._other_version(e.fingerprint, fp, e.others, e)
                continue
            keep.append(i)  # arrives after a descendant with usage left a placeholder: covered
            del stored[ident]
            if not keys[i][7]:
                cov[i] = 1
        kept = {ident: i for ident, i in first.items() if ident not in stored}
        # coverage: each contributing span covers its parent, a newly covered parent its own parent
        rewrite: set[str] = set()
        todo = [(keys[i][1], keys[i][2], keys[i][3]) for i in keep if keys[i][3] and (keys[i][6] or keys[i][7] or cov.get(i))]
        while todo:
            missing = {t + ":" + p for t, _, p in todo} - kept.keys() - stored.keys()
            if missing:
                stored.update(self._lookup(runner, project, missing))
            nxt: list[tuple[str, str, str]] = []
            for trace, span, parent in todo:
                if parent == span:  # its own parent (hostile input): covers nothing
                    continue
                pid = trace + ":" + parent
                here = kept.get(pid)
                if here is not None:  # the parent is in this insert
                    if keys[here][7] or cov.get(here):
                        continue
                    cov[here] = 1
                    if keys[here][3]:
                        nxt.append((trace, parent, keys[here][3]))
                    continue
                e = stored.get(pid)
                if e is None:  # not arrived yet: a placeholder, so it is stored covered when it arrives
                    stored[pid] = _Entry("", "", time.time_ns(), False, 0, False, True, dirty=True)
                    continue
                if e.covered:
                    continue
                e.covered = e.dirty = True
                if e.present:
                    rewrite.add(pid)
                    if e.parent:
                        nxt.append((trace, parent, e.parent))
            todo = nxt
        return _Plan(keep, cov, others, {k: e for k, e in stored.items() if e.dirty}, rewrite)

    def _other_version(self, first: int, fp: int, others: list[int], entry: _Entry | None = None) -> None:
        if fp == first or fp in others:
            self.duplicates += 1
            return
        self.conflicts += 1
        if len(others) < MAX_OTHER_VERSIONS:
            others.append(fp)
            if entry is not None:
                entry.dirty = True

    @property
    def lock(self) -> threading.Lock:
        """Held while an insert runs (take it to change what inserts do, e.g. :attr:`live`)."""
        return self._lock

    def load_traces(self, runner: _Reads, page: int = 100_000) -> TraceFilter:
        """Start a :class:`TraceFilter` (:attr:`traces`) and fill it from the index: every trace indexed
        before now is read, a page at a time; traces indexed meanwhile are added by the inserts. Call
        once, before inserts begin or while they run (a background thread does: ``start_trace_filter``),
        only where this process is the store's one writer."""
        flt = TraceFilter()
        with self._lock:  # no insert in progress: every index write from here on adds to it
            self.traces = flt
        started = time.monotonic()
        for row in runner.query(SQL_INDEXED_PROJECTS):
            project, after = str(row["project_id"]), ""
            while True:
                rows = runner.query(SQL_INDEXED_TRACES, {"p": project, "after": after, "n": page})
                if not rows:
                    break
                flt.add(project, (str(r["trace_id"]) for r in rows))
                after = str(rows[-1]["trace_id"])
        flt.ready = True
        log.info("trace filter: %d indexed trace(s) loaded in %.1f s (%.1f MB)",
                 flt.added, time.monotonic() - started, flt.bytes / 1e6)
        return flt

    def start_trace_filter(self, runner: _Reads, closed: Callable[[], bool] = lambda: False) -> threading.Thread:
        """:meth:`load_traces` in a daemon thread; a failure leaves the lookups asking the store
        (``closed``: whether the store was closed meanwhile, which is no failure to report)."""

        def load() -> None:
            try:
                self.load_traces(runner)
            except Exception as exc:  # the filter is an optimisation: without it every lookup asks
                self.traces = None
                if not closed():
                    log.warning("trace filter not loaded (every span-index lookup asks the store): %s", exc)

        thread = threading.Thread(target=load, name="netra-trace-filter", daemon=True)
        thread.start()
        return thread

    def _lookup(self, runner: _Runs, project: str, idents: Collection[str]) -> dict[str, _Entry]:
        if not idents:
            return {}
        all_traces = {i[: i.index(":")] for i in idents}
        flt = self.traces
        if flt is not None and flt.ready:
            maybe = flt.may_hold_some(project, all_traces)
            if not maybe:  # a fresh trace (the common case): nothing indexed to read
                self.lookups_skipped += 1
                return {}
            if len(maybe) < len(all_traces):
                all_traces = set(maybe)
                idents = [i for i in idents if i[: i.index(":")] in all_traces]
        idents = sorted(idents)
        traces = sorted(all_traces)
        self.lookups += 1
        wanted = set(idents)
        rows = runner.query(SQL_LOOKUP, {"p": project, "traces": ",".join(traces)})
        newest: dict[str, dict[str, Any]] = {}
        for r in rows:
            ident = f"{r['trace_id']}:{r['span_id']}"
            if ident not in wanted:
                continue
            seen = newest.get(ident)
            if seen is None or int(r["version"]) > int(seen["version"]):
                newest[ident] = r
        return {
            ident: _Entry(r["parent_span_id"], r["tenant_id"], int(r["start_ns"]), bool(r["present"]),
                          int(r["fingerprint"]), bool(r["has_usage"]), bool(r["covered"]),
                          [int(x) for x in r["other_versions"]])
            for ident, r in newest.items()
        }

    def _write_index(self, runner: _Runs, project: str, plan: _Plan, keys: list[SpanKey]) -> None:
        """One index row per new span and per changed stored span or placeholder (``JSONCompactColumns``)."""
        new = [keys[i] for i in plan.keep]
        stored = list(plan.stored.items())
        n = len(new) + len(stored)
        if not n:
            return
        cov = plan.covered
        others = plan.others
        traces = self.traces
        if traces is not None:  # before the write: a failed write leaves a false positive, never a miss
            traces.add(project, {k[1] for k in new} | {i[: i.index(":")] for i, _ in stored})
        columns = [
            [project] * n,
            [k[1] for k in new] + [i[: i.index(":")] for i, _ in stored],
            [k[2] for k in new] + [i[i.index(":") + 1:] for i, _ in stored],
            [k[3] for k in new] + [e.parent for _, e in stored],
            [k[4] for k in new] + [e.tenant for _, e in stored],
            [k[5] for k in new] + [e.start_ns for _, e in stored],
            [1] * len(new) + [int(e.present) for _, e in stored],
            [k[8] for k in new] + [e.fingerprint for _, e in stored],
            [k[6] for k in new] + [int(e.has_usage) for _, e in stored],
            [cov.get(i, keys[i][7]) for i in plan.keep] + [int(e.covered) for _, e in stored],
            [others.get(i, []) for i in plan.keep] + [e.others for _, e in stored],
            [self._next_version()] * n,
        ]
        runner.insert_rows("netra_span_index", INDEX_COLUMNS, orjson.dumps(columns), "JSONCompactColumns")

    @staticmethod
    def versions(runner: _Reads, project: str, trace_id: str) -> dict[str, int]:
        """Span id -> distinct versions delivered, for the spans of a trace delivered in more than one."""
        rows = runner.query(SQL_VERSIONS, {"p": project, "t": trace_id})
        return {r["span_id"]: int(r["versions"]) for r in rows}


def _stored_params(project: str, stored: dict[str, _Entry]) -> dict[str, Any]:
    """The parameters of :data:`STORED_WHERE` for the stored spans ``stored`` (``trace:span`` -> entry)."""
    idents = sorted(stored)
    return {
        "p": project,
        "tenants": orjson.dumps(sorted({e.tenant for e in stored.values()})).decode(),
        "lo": min(e.start_ns for e in stored.values()),
        "hi": max(e.start_ns for e in stored.values()),
        "traces": ",".join(sorted({i[: i.index(":")] for i in idents})),
        "ids": ",".join(idents),
    }
