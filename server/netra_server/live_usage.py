"""Live usage: per-minute usage totals of the spans being written, kept current at insert, so usage
reads of the day being written do not aggregate its spans.

The daily rollups (``netra_server.rollups``) cover settled days; the day being written was read from
``netra_spans FINAL`` by every usage read, which grows with the day (at 30,000 spans/s, 100 million
spans an hour) and competes with the ingest for the CPU. ``netra_usage_live`` holds, per project,
tenant, minute (of span start), user, model and session, the same sums as ``netra_usage_daily`` (spans,
counted spans, tokens, known cost, unpriced spans), written by :class:`SpanIndex
<netra_server.billing.SpanIndex>` in the same serialised insert that decides what is stored:

* a span stored (the first version of an identity) adds one span, and its usage when it is stored
  uncovered with usage (the billing rule, ``schema.COUNTED``): the span INSERT carries a ``log_comment``
  (:meth:`LiveUsage.tag`: the epoch and the region) and a materialized view on ``netra_spans``
  (``schema.LIVE_USAGE_MV_DDL``) aggregates the inserted block into the table, in the same statement;
  other INSERTs into ``netra_spans`` (covered rewrites, migrations) carry no tag and add nothing;
* a stored span written again covered (a descendant with usage arrived later) subtracts the usage it
  counted: read from ``netra_spans FINAL`` *before* the rewrite, so exactly what was counted;
* a re-delivery, identical or conflicting, changes nothing (it is not stored).

**The live region.** The table holds the spans that start at or after ``since_ns``. At
:meth:`LiveUsage.start` (server start, under the insert lock) ``since_ns`` is the minute after the latest
stored span that started before now (on an empty store: the start of the day before yesterday); after
a failed insert, the minute after now. The stored spans that start later (a clock ahead) are added to
the table then, from ``netra_spans FINAL`` (:data:`SQL_BACKFILL`), so one span from a client with a
wrong clock does not turn the table off. Spans starting before ``since_ns`` (late arrivals, old days)
write nothing here and are read from the spans, as before. Reads also keep to ``floor_ns``: days
dropped from the table (two days after the day, see :meth:`LiveUsage.advance_floor`) and spans a
retention TTL may have deleted.

**Reads.** A read takes :meth:`LiveUsage.region` once the inserts it waits for are done, and checks
:attr:`LiveUsage.generation` after its query: a reset or a dropped day in between (the rows it read
may be gone or stale) makes it read again (``StoreBase._usage_rows``).

**Failures.** An insert that fails part-way may have written some of its statements; it is retried
(the journal), and the retry would write its deltas again. So any failure inside an insert *resets*
the table: a new ``epoch`` (rows of other epochs are never read, and are deleted) with a new region
starting at the next minute (no scan of the stored spans under the insert lock but the backfill of
those starting later). A crash is a reset at the next start (the table is emptied then). Either
way the spans stored before the reset are read from the spans until their day is rolled up.

**Scope.** Only on the embedded store (this process is the one writer; a ClickHouse server may have
others, whose inserts this process does not see), and only for usage totals and summaries by tenant,
model, user, session and day; latency, trace lists and hour/minute summaries read the spans.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Protocol

from netra_server import schema
from netra_server.schema import COUNTED, COUNTED_COST, USAGE_SUMS

__all__ = ["LiveRegion", "LiveUsage", "MINUTE_NS", "live_select"]

log = logging.getLogger("netra_server.live_usage")

MINUTE_NS = 60 * 1_000_000_000
#: The first field of a span INSERT's ``log_comment`` that the live table's materialized view counts.
TAG = "netra-live"
DAY_NS = 86_400 * 1_000_000_000
#: The end of the range the table holds: 2262-01-01, inside Int64 nanoseconds (span start times are
#: accepted up to 2261).
END_NS = (date(2262, 1, 1) - date(1970, 1, 1)).days * DAY_NS
#: Days of live rows kept behind the current day (older days are read from their rollups or spans).
KEEP_DAYS = 2
_EPOCH = date(1970, 1, 1)

#: The latest day with spans up to today (their partitions), and the latest span start of that day up to now.
SQL_LAST_DAY = """
SELECT toString(max(toDate32(partition))) AS d, count() AS n
FROM system.parts
WHERE database = currentDatabase() AND table = 'netra_spans' AND active AND toDate32(partition) <= {today:Date32}
"""
SQL_LAST_START = """
SELECT toUnixTimestamp64Nano(max(start_time)) AS last_ns, count() AS n
FROM netra_spans
WHERE toDate32(start_time) = {d:Date32} AND start_time <= fromUnixTimestamp64Nano({now:Int64}, 'UTC')
"""

#: Add the stored spans starting at or after a time (a clock ahead of the region's start) to an epoch,
#: as they count now: what the view would have added had they been inserted after the start. Only
#: spans the span index holds: rows of an insert that failed before its index rows were written are
#: inserted again by the journal's retry (or its recovery at the next start), tagged, and the view
#: counts them then; backfilling them too would count them twice.
SQL_BACKFILL = f"""
INSERT INTO netra_usage_live (project_id, tenant_id, epoch, day, minute, user_id, model, session_id, span_count,
    request_count, input_tokens, output_tokens, cached_tokens, cost, unpriced_count)
SELECT project_id, tenant_id, {{b_epoch:UInt64}}, toDate32(start_time) AS b_day,
    intDiv(toUnixTimestamp64Nano(start_time), {MINUTE_NS}) AS b_minute, user_id, model, session_id, {USAGE_SUMS}
FROM netra_spans FINAL
WHERE start_time >= fromUnixTimestamp64Nano({{b_since:Int64}}, 'UTC')
    AND (project_id, trace_id, span_id) IN (
        SELECT project_id, trace_id, span_id FROM netra_span_index FINAL
        WHERE present = 1 AND (project_id, trace_id) IN (
            SELECT project_id, trace_id FROM netra_spans
            WHERE start_time >= fromUnixTimestamp64Nano({{b_since:Int64}}, 'UTC')))
GROUP BY project_id, tenant_id, b_day, b_minute, user_id, model, session_id
"""

#: The materialized view that adds tagged span INSERTs (``schema.LIVE_USAGE_MV_DDL``), created while
#: the table is kept and dropped otherwise (a ClickHouse server, ``--no-live-usage``).
MV = "netra_usage_live_mv"

#: Subtract what some stored spans count now (those about to be written again covered, inside the
#: region): one negative row each. ``{where}``: the condition naming them (``billing.STORED_WHERE``).
SQL_UNCOUNT = f"""
INSERT INTO netra_usage_live (project_id, tenant_id, epoch, day, minute, user_id, model, session_id, span_count,
    request_count, input_tokens, output_tokens, cached_tokens, cost, unpriced_count)
SELECT project_id, tenant_id, {{{{u_epoch:UInt64}}}}, toDate32(start_time),
    intDiv(toUnixTimestamp64Nano(start_time), {MINUTE_NS}), user_id, model, session_id, 0, -1,
    -toInt64(input_tokens), -toInt64(output_tokens), -toInt64(cached_tokens), -{COUNTED_COST}, -toInt64(cost IS NULL)
FROM netra_spans FINAL
WHERE {{where}} AND {COUNTED}
    AND start_time >= fromUnixTimestamp64Nano({{{{u_since:Int64}}}}, 'UTC')
"""


class _Runs(Protocol):
    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]: ...

    def command(self, sql: str, params: dict[str, Any] | None = None) -> None: ...

    def insert_rows(self, table: str, columns: tuple[str, ...], data: bytes, fmt: str, *, comment: str = "") -> None: ...


def _day_str(day: int) -> str:
    return (_EPOCH + timedelta(days=day)).isoformat()


@dataclass(frozen=True)
class LiveRegion:
    """What a read may take from ``netra_usage_live``: rows of ``epoch`` for spans started in
    ``[lo_ns, hi_ns)`` (minute boundaries; empty when ``lo_ns >= hi_ns``), while the table's
    :attr:`~LiveUsage.generation` is still ``generation``."""

    epoch: int
    lo_ns: int
    hi_ns: int
    generation: int = 0
    owner: LiveUsage | None = field(default=None, compare=False, repr=False)

    @property
    def current(self) -> bool:
        """Whether what a read took from the table still holds (no reset or dropped day since)."""
        return self.owner is None or self.owner.generation == self.generation

    def split(self, a: int, b: int) -> tuple[list[tuple[int, int]], tuple[int, int] | None]:
        """The inclusive interval ``[a, b]`` as (raw intervals, the live interval of whole minutes)."""
        la = max(a, self.lo_ns)
        la = -(-la // MINUTE_NS) * MINUTE_NS  # the first whole minute inside
        lb = min(b + 1, self.hi_ns) // MINUTE_NS * MINUTE_NS - 1  # the end of the last whole minute inside
        if la > lb:
            return [(a, b)], None
        raw = [(x, y) for x, y in ((a, la - 1), (lb + 1, b)) if x <= y]
        return raw, (la, lb)


class LiveUsage:
    """The live usage table of one store and its region (see the module doc). The insert path
    (``SpanIndex``) calls :meth:`tag`/:meth:`uncount` under its lock; reads take
    :meth:`region`."""

    def __init__(self) -> None:
        self._epoch = 0
        self._since = 0
        self._floor = 0
        self._retention_ns = 0
        self._active = False
        self._guard = threading.Lock()
        #: changes whenever what a read planned may no longer hold (a reset, a dropped day): a read
        #: that began under another generation reads again
        self.generation = 0
        #: resets after a failed insert (for tests and the log)
        self.resets = 0
        #: a reset failed: the next insert tries again
        self.broken = False

    # -- the region --------------------------------------------------------------------------------

    def start(self, runner: _Runs, *, fresh: bool = True, since_ns: int | None = None) -> None:
        """Begin an epoch: a region from the minute after the latest stored span that started before
        now (``fresh``, at startup: the table is emptied first) or from the next minute (after a failed
        insert: rows of other epochs are deleted), with the stored spans starting later added. Call with
        no insert running (the span index's lock). ``since_ns``: start the region there instead (tests)."""
        with self._guard:
            self._active = False
            self.generation += 1
        epoch = secrets.randbits(63)
        runner.command(schema.LIVE_USAGE_MV_DDL)
        now = time.time_ns()
        since = -(-(now + 1) // MINUTE_NS) * MINUTE_NS  # the next minute: nothing after it is stored, but a clock ahead
        if fresh:
            runner.command("TRUNCATE TABLE IF EXISTS netra_usage_live")
            since = (now // DAY_NS - KEEP_DAYS) * DAY_NS  # nothing stored yet: from the floor on
            last = runner.query(SQL_LAST_DAY, {"today": _day_str(now // DAY_NS)})
            if last and int(last[0]["n"]):
                rows = runner.query(SQL_LAST_START, {"d": str(last[0]["d"]), "now": now})
                if rows and rows[0]["last_ns"] is not None:
                    since = max(since, -(-(int(rows[0]["last_ns"]) + 1) // MINUTE_NS) * MINUTE_NS)
        else:  # rows of earlier epochs are never read again
            runner.command("ALTER TABLE netra_usage_live DELETE WHERE epoch != {e:UInt64}", {"e": epoch})
        if since_ns is not None:
            since = -(-since_ns // MINUTE_NS) * MINUTE_NS
        runner.command(SQL_BACKFILL, {"b_epoch": epoch, "b_since": since})  # the spans stored ahead of it
        with self._guard:
            self._epoch = epoch
            self._since = since
            self._active = True
            self.generation += 1
        log.info("live usage: epoch started; spans from %s are counted at insert",
                 time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(since / 1e9)))

    def reset(self, runner: _Runs) -> None:
        """After a failed insert: stop using the table now; begin a new epoch (best effort: if that
        fails too, the table stays unused and the next insert tries again)."""
        with self._guard:
            self._active = False
            self.generation += 1
        self.resets += 1
        try:
            self.start(runner, fresh=False)
            self.broken = False
        except Exception as exc:
            self.broken = True  # the next insert tries again
            log.warning("live usage: not restarted after a failed insert (usage reads use the spans): %s", exc)

    def stop(self) -> None:
        """Reads stop using the table (the caller drops the view)."""
        with self._guard:
            self._active = False
            self.generation += 1

    @property
    def active(self) -> bool:
        return self._active

    def describe(self) -> dict[str, Any]:
        """For ``/healthz``: whether reads use the table, from when on (UTC), and the resets so far."""
        region = self.region()
        out: dict[str, Any] = {"active": region is not None, "resets": self.resets}
        if region is not None:
            out["from"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(region.lo_ns // 1_000_000_000))
        return out

    def set_retention(self, days: int | None) -> None:
        self._retention_ns = int(days or 0) * DAY_NS

    def region(self) -> LiveRegion | None:
        """What reads may take from the table now, or None."""
        with self._guard:
            if not self._active:
                return None
            lo = max(self._since, self._floor)
            if self._retention_ns:  # spans a TTL may have deleted are read from what is left of them
                lo = max(lo, time.time_ns() - self._retention_ns + MINUTE_NS)
            return LiveRegion(self._epoch, lo, END_NS, self.generation, self)

    def advance_floor(self, runner: _Runs, now_ns: int | None = None) -> None:
        """Drop the table's days older than ``KEEP_DAYS`` before today (reads stop using them first,
        and a read planned before reads again: :attr:`generation`)."""
        today = (now_ns or time.time_ns()) // DAY_NS
        floor = (today - KEEP_DAYS) * DAY_NS
        with self._guard:
            if floor <= self._floor:
                return
            self._floor = floor
            self.generation += 1
        for row in runner.query(
            "SELECT DISTINCT partition FROM system.parts WHERE database = currentDatabase() "
            "AND table = 'netra_usage_live' AND active AND toDate32(partition) < {d:Date32}",
            {"d": _day_str(today - KEEP_DAYS)},
        ):
            runner.command("ALTER TABLE netra_usage_live DROP PARTITION {p:String}", {"p": str(row["partition"])})

    # -- the deltas ----------------------------------------------------------------------------------

    def tag(self) -> str:
        """The ``log_comment`` of a span INSERT whose rows the live table adds (its materialized view,
        ``schema.LIVE_USAGE_MV_DDL``, reads the epoch and the region from it)."""
        return f"{TAG}:{self._epoch}:{self._since}:{END_NS}"

    def uncount(self, runner: _Runs, where: str, params: dict[str, Any]) -> None:
        """Subtract what the stored spans named by ``where`` (with ``params``) count now, for those
        inside the region; call before they are written again covered."""
        runner.command(SQL_UNCOUNT.format(where=where),
                       {**params, "u_epoch": self._epoch, "u_since": self._since})


def live_select(region: LiveRegion, interval: list[tuple[int, int]], where: list[str], params: dict[str, Any],
                *, counted_only: bool) -> str:
    """The ``usage_source`` rows (``r_*``) of the live table for whole-minute intervals (inclusive ns)."""
    params["lv_epoch"] = region.epoch
    ranges = []
    for i, (a, b) in enumerate(interval):
        params[f"lv{i}_a"], params[f"lv{i}_b"] = a // MINUTE_NS, b // MINUTE_NS
        params[f"lv{i}_da"], params[f"lv{i}_db"] = _day_str(a // DAY_NS), _day_str(b // DAY_NS)
        ranges.append(f"(day >= {{lv{i}_da:Date32}} AND day <= {{lv{i}_db:Date32}} "
                      f"AND minute >= {{lv{i}_a:Int64}} AND minute <= {{lv{i}_b:Int64}})")
    cond = [*where, "epoch = {lv_epoch:UInt64}", f"({' OR '.join(ranges)})"]
    having = " HAVING r_requests > 0" if counted_only else ""
    # the sums of a group are never negative (a span's usage is subtracted only after it was added)
    return (
        "SELECT tenant_id AS r_tenant, user_id AS r_user, model AS r_model, session_id AS r_session, day AS r_day, "
        "toUInt64(sum(span_count)) AS r_spans, toUInt64(sum(request_count)) AS r_requests, "
        "toUInt64(sum(input_tokens)) AS r_input, toUInt64(sum(output_tokens)) AS r_output, "
        "toUInt64(sum(cached_tokens)) AS r_cached, sum(cost) AS r_cost, toUInt64(sum(unpriced_count)) AS r_unpriced "
        f"FROM netra_usage_live WHERE {' AND '.join(cond)} "
        f"GROUP BY r_tenant, r_user, r_model, r_session, r_day{having}"
    )
