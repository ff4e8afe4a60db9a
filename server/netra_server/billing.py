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

Crash safety: the span rows are inserted first, then the rewritten ancestors, then the index rows. A
crash in between leaves spans without index rows; inserting the same rows again (the ingest journal's
recovery, or an exporter's retry) finds no index row, so it writes the same rows, which collapse with
the first, and the same ancestor rewrites: the result is the same as one successful insert.
"""

from __future__ import annotations

import threading
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

__all__ = ["SpanIndex", "SpanKey", "fingerprint", "key_of_row"]

#: What ingest knows of a span without parsing its row again (``IngestBatch.keys``): project, trace id,
#: span id, parent span id (``""`` for a root), tenant, start (Unix ns), has_usage, covered (as the
#: producer sent it), fingerprint (:func:`fingerprint`).
SpanKey = tuple[str, str, str, str, str, int, int, int, int]

#: Most conflicting versions remembered per span (the count shown saturates there).
MAX_OTHER_VERSIONS = 32


def fingerprint(row_without_ingest_time: bytes | memoryview) -> int:
    """A 64-bit fingerprint of a span row's content (everything but ``ingested_at``, the last field)."""
    return (zlib.crc32(row_without_ingest_time) << 32) | zlib.adler32(row_without_ingest_time)


def _columns() -> tuple[str, ...]:
    from netra_server.otlp import SPAN_COLUMNS

    return SPAN_COLUMNS


def key_of_row(line: bytes, columns: tuple[str, ...] | None = None) -> SpanKey:
    """The :data:`SpanKey` of one ``JSONCompactEachRow`` span row (what ``build_rows`` records alongside)."""
    cols = columns or _columns()
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

    def insert_rows(self, table: str, columns: tuple[str, ...], data: bytes, fmt: str) -> None: ...


INDEX_COLUMNS: tuple[str, ...] = (
    "project_id", "trace_id", "span_id", "parent_span_id", "tenant_id", "start_time", "present",
    "fingerprint", "has_usage", "covered", "other_versions", "version",
)

#: Every stored version of the index rows of some spans of one project (the newest wins: in Python).
SQL_LOOKUP = """
SELECT trace_id, span_id, parent_span_id, tenant_id, toUnixTimestamp64Nano(start_time) AS start_ns, present,
    fingerprint, has_usage, covered, other_versions, version
FROM netra_span_index
WHERE project_id = {p:String}
    AND trace_id IN (SELECT arrayJoin(splitByChar(',', {traces:String})))
    AND concat(trace_id, ':', span_id) IN (SELECT arrayJoin(splitByChar(',', {ids:String})))
"""

#: Write stored spans again with ``covered = 1``, as a newer version of the same row. (No condition
#: on ``covered`` or ``ingested_at`` here: in WHERE they would name the replaced values.)
SQL_COVER = """
INSERT INTO netra_spans
SELECT * REPLACE (toUInt8(1) AS covered,
    greatest(now64(3, 'UTC'), ingested_at + toIntervalMillisecond(1)) AS ingested_at)
FROM netra_spans FINAL
WHERE project_id = {p:String}
    AND tenant_id IN (SELECT arrayJoin(JSONExtract({tenants:String}, 'Array(String)')))
    AND start_time >= fromUnixTimestamp64Nano({lo:Int64}, 'UTC')
    AND start_time <= fromUnixTimestamp64Nano({hi:Int64}, 'UTC')
    AND trace_id IN (SELECT arrayJoin(splitByChar(',', {traces:String})))
    AND concat(trace_id, ':', span_id) IN (SELECT arrayJoin(splitByChar(',', {ids:String})))
"""

#: Distinct versions delivered per span of a trace (only spans delivered in more than one).
SQL_VERSIONS = """
SELECT span_id, 1 + length(argMax(other_versions, version)) AS versions
FROM netra_span_index
WHERE project_id = {p:String} AND trace_id = {t:String}
GROUP BY span_id
HAVING versions > 1
"""


@dataclass
class _Entry:
    """The index state of one span identity."""

    parent: str
    tenant: str
    start_ns: int
    present: bool
    fingerprint: int
    has_usage: bool
    covered: bool
    others: list[int] = field(default_factory=list)
    #: -1: stored before this insert; else the position of its row in this insert
    line: int = -1
    dirty: bool = False


def _ts(ns: int) -> str:
    return f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"


class SpanIndex:
    """Applies identity and the billing rule to the span rows of one insert (see the module doc).

    One instance per store; :meth:`insert` runs one insert at a time (a lock), so everything written
    through one ``Store`` is exact."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._version = 0
        #: counters (for tests and the log): spans dropped as identical re-deliveries, as conflicting
        #: versions, and stored rows rewritten as covered
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
        insert_spans: Callable[[bytes], None],
    ) -> None:
        """Insert the span rows ``data`` (``JSONCompactEachRow`` of ``SPAN_COLUMNS``) through
        ``insert_spans``, applying identity and coverage; ``keys``: their :data:`SpanKey` (computed
        from the rows when missing)."""
        lines = data.split(b"\n")
        if lines and not lines[-1]:
            lines.pop()
        if not lines:
            return
        if keys is None or len(keys) != len(lines):
            cols = _columns()
            keys = [key_of_row(line, cols) for line in lines]
        with self._lock:
            self._insert(runner, lines, keys, insert_spans)

    def _insert(
        self, runner: _Runs, lines: list[bytes], keys: list[SpanKey], insert_spans: Callable[[bytes], None]
    ) -> None:
        projects: dict[str, list[int]] = {}
        for i, k in enumerate(keys):
            projects.setdefault(k[0], []).append(i)
        out: list[bytes] = []
        index_rows: list[bytes] = []
        covers: list[tuple[str, dict[str, _Entry]]] = []
        covered_col = _columns().index("covered")
        for project, positions in projects.items():
            state, rewrite = self._resolve(runner, project, positions, keys)
            for ident, e in state.items():
                if e.line >= 0:
                    line = lines[e.line]
                    if e.covered != bool(keys[e.line][7]):  # stored covered by the server's rule
                        row = orjson.loads(line)
                        row[covered_col] = int(e.covered)
                        line = orjson.dumps(row)
                    out.append(line)
                if e.dirty:
                    index_rows.append(self._index_row(project, ident, e))
            if rewrite:
                covers.append((project, {i: state[i] for i in rewrite}))
        # spans first, index rows last: see the module doc (crash safety)
        if out:
            insert_spans(b"\n".join(out) + b"\n")
        for project, stored in covers:
            self._cover(runner, project, stored)
        if index_rows:
            runner.insert_rows("netra_span_index", INDEX_COLUMNS, b"\n".join(index_rows) + b"\n", "JSONCompactEachRow")

    def _resolve(
        self, runner: _Runs, project: str, positions: list[int], keys: list[SpanKey]
    ) -> tuple[dict[str, _Entry], set[str]]:
        """The index state of the spans at ``positions`` (one project) and of the ancestors they cover,
        after this insert (new spans get ``line``; changed entries are ``dirty``), and the stored spans
        that became covered (their rows are written again)."""
        rewrite: set[str] = set()
        wanted: set[str] = set()
        for i in positions:
            k = keys[i]
            wanted.add(f"{k[1]}:{k[2]}")
            if k[3] and (k[6] or k[7]):
                wanted.add(f"{k[1]}:{k[3]}")
        state = self._lookup(runner, project, wanted)
        # identity: the first version of each span wins
        contributing: list[str] = []
        for i in positions:
            _, trace, span, parent, tenant, start_ns, has_usage, covered, fp = keys[i]
            ident = f"{trace}:{span}"
            e = state.get(ident)
            if e is not None and e.present:
                if fp == e.fingerprint or fp in e.others:
                    self.duplicates += 1
                elif e.fingerprint == 0 and e.line < 0:  # a span indexed before fingerprints: adopt this one
                    e.fingerprint, e.dirty = fp, True
                    self.duplicates += 1
                else:
                    self.conflicts += 1
                    if len(e.others) < MAX_OTHER_VERSIONS:
                        e.others.append(fp)
                        e.dirty = True
                continue
            # new (or a placeholder left by a descendant that arrived first: then covered)
            cov = bool(covered) or (e is not None and e.covered)
            state[ident] = _Entry(parent, tenant, start_ns, True, fp, bool(has_usage), cov,
                                  e.others if e is not None else [], line=i, dirty=True)
            if has_usage or cov:
                contributing.append(ident)
        # coverage: each contributing span covers its parent, and a newly covered parent its own
        while contributing:
            missing = {self._parent_ident(c, state[c].parent) for c in contributing if state[c].parent}
            missing -= state.keys()
            if missing:
                state.update(self._lookup(runner, project, missing))
            nxt: list[str] = []
            for c in contributing:
                e = state[c]
                if not e.parent:
                    continue
                pid = self._parent_ident(c, e.parent)
                if pid == c:  # its own parent (hostile input): covers nothing
                    continue
                p = state.get(pid)
                if p is None:  # not arrived yet: a placeholder, so it is stored covered when it arrives
                    state[pid] = _Entry("", "", time.time_ns(), False, 0, False, True, dirty=True)
                    continue
                if p.covered:
                    continue
                p.covered = p.dirty = True
                if p.present:
                    if p.line < 0:
                        rewrite.add(pid)
                    nxt.append(pid)
            contributing = nxt
        return state, rewrite

    @staticmethod
    def _parent_ident(ident: str, parent: str) -> str:
        return f"{ident.split(':', 1)[0]}:{parent}"

    def _lookup(self, runner: _Runs, project: str, idents: Iterable[str]) -> dict[str, _Entry]:
        idents = sorted(idents)
        if not idents:
            return {}
        traces = sorted({i.split(":", 1)[0] for i in idents})
        rows = runner.query(SQL_LOOKUP, {"p": project, "traces": ",".join(traces), "ids": ",".join(idents)})
        newest: dict[str, dict[str, Any]] = {}
        for r in rows:
            ident = f"{r['trace_id']}:{r['span_id']}"
            seen = newest.get(ident)
            if seen is None or int(r["version"]) > int(seen["version"]):
                newest[ident] = r
        return {
            ident: _Entry(r["parent_span_id"], r["tenant_id"], int(r["start_ns"]), bool(r["present"]),
                          int(r["fingerprint"]), bool(r["has_usage"]), bool(r["covered"]),
                          [int(x) for x in r["other_versions"]])
            for ident, r in newest.items()
        }

    def _index_row(self, project: str, ident: str, e: _Entry) -> bytes:
        trace, span = ident.split(":", 1)
        return orjson.dumps([
            project, trace, span, e.parent, e.tenant, _ts(e.start_ns), int(e.present), e.fingerprint,
            int(e.has_usage), int(e.covered), e.others, self._next_version(),
        ])

    def _cover(self, runner: _Runs, project: str, stored: dict[str, _Entry]) -> None:
        """Write the stored rows of ``stored`` again, covered."""
        idents = sorted(stored)
        entries = [stored[i] for i in idents]
        runner.command(SQL_COVER, {
            "p": project,
            "tenants": orjson.dumps(sorted({e.tenant for e in entries})).decode(),
            "lo": min(e.start_ns for e in entries),
            "hi": max(e.start_ns for e in entries),
            "traces": ",".join(sorted({i.split(":", 1)[0] for i in idents})),
            "ids": ",".join(idents),
        })
        self.rewritten += len(idents)

    @staticmethod
    def versions(runner: _Reads, project: str, trace_id: str) -> dict[str, int]:
        """Span id -> distinct versions delivered, for the spans of a trace delivered in more than one."""
        rows = runner.query(SQL_VERSIONS, {"p": project, "t": trace_id})
        return {r["span_id"]: int(r["versions"]) for r in rows}
