"""The :class:`Store`: its reads (:mod:`~netra_server.store.reads`, :mod:`~netra_server.store.traces`)
and what it writes: the schema and its migrations, the retention TTL, the rollup refresh, settings
(``netra_meta``), projects and API keys, and spans (through the span index: ``netra_server.billing``).
"""

from __future__ import annotations

import secrets
import time

import orjson

from netra_server import billing, live_usage, rollups, schema
from netra_server.live_usage import LiveUsage
from netra_server.store import sql
from netra_server.store.reads import SpanReads
from netra_server.store.records import ApiKeyRecord, Project, api_key_of
from netra_server.store.traces import TraceReads

__all__ = ["KNOWN_RESOURCES", "Store"]

#: How many stored resources a :class:`Store` remembers (to store each once, not with every request).
KNOWN_RESOURCES = 65_536


def _version() -> int:
    return time.time_ns()


class Store(TraceReads, SpanReads):
    """All reads and writes of the server. Construct with :func:`~netra_server.store.open_store`."""

    # -- schema ----------------------------------------------------------------------------------

    def migrate(self, retention_days: int | None = None) -> list[str]:
        """Apply pending migrations (and the retention TTL); returns the ids applied now."""
        self.command(schema.CREATE_MIGRATIONS_TABLE)
        done = {r["id"] for r in self.query(sql.SQL_APPLIED_MIGRATIONS)}
        applied: list[str] = []
        for migration in list(schema.MIGRATIONS):
            if migration.id in done:
                continue
            for statement in migration.statements:
                self.command(statement)
            if migration.run is not None:
                migration.run(self)
            self.command(sql.SQL_RECORD_MIGRATION, {"id": migration.id})
            applied.append(migration.id)
        self.set_retention(retention_days)
        self._rollups_supported = None
        return applied

    # -- rollups and retention ------------------------------------------------------------------------

    def refresh_rollups(self, *, settle_seconds: float = 60.0, max_days: int | None = None) -> list[str]:
        """Compute the daily rollups of days that changed and have settled (no new part for
        ``settle_seconds``); returns the days computed. See ``netra_server.rollups``."""
        if not self.rollups_supported():
            return []
        live = self.span_index.live
        if live is not None:  # days older than the day before yesterday: from their rollups, not the live table
            live.advance_floor(self.backend)
        return rollups.refresh(self, settle_seconds=settle_seconds, max_days=max_days)

    def set_retention(self, retention_days: int | None) -> None:
        """Set (or remove, with None) the TTL of ``netra_spans``; a no-op when unchanged."""
        wanted = str(retention_days or 0)
        if (self.get_meta("retention_days") or "0") == wanted:
            return
        if retention_days:
            self.command(sql.SQL_SET_TTL.format(days=int(retention_days)))
        else:
            self.command(sql.SQL_REMOVE_TTL)
        schema.span_index_retention(self, retention_days or 0)
        self.set_meta("retention_days", wanted)
        if self.span_index.live is not None:
            self.span_index.live.set_retention(retention_days)

    def start_live_usage(self, *, since_ns: int | None = None) -> bool:
        """On the embedded store (this process is its one writer) with rollups, begin keeping the live
        usage table (``netra_server.live_usage``, emptied first): usage reads of the day being written
        then read its per-minute sums instead of the spans. Returns whether it is kept. ``since_ns``:
        see ``LiveUsage.start`` (tests)."""
        if self.kind != "chdb" or not self.rollups_supported():
            return False
        retention = self.get_meta("retention_days") or "0"
        live = LiveUsage()
        live.set_retention(int(retention) if retention.isdigit() else 0)
        with self.span_index.lock:  # no insert runs while the region is chosen
            live.start(self.backend, since_ns=since_ns)
            self.span_index.live = live
        return True

    def stop_live_usage(self) -> None:
        """Stop keeping the live usage table and drop its view (span INSERTs no longer run it)."""
        with self.span_index.lock:
            if self.span_index.live is not None:
                self.span_index.live.stop()
                self.span_index.live = None
            # (on the backend: a read of the store would wait for the journal, whose flush needs this lock)
            self.backend.command(f"DROP VIEW IF EXISTS {live_usage.MV}")

    # -- meta ------------------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        rows = self.query(sql.SQL_GET_META, {"k": key})
        return str(rows[0]["value"]) if rows else None

    def set_meta(self, key: str, value: str) -> None:
        self.command(sql.SQL_SET_META, {"k": key, "v": value, "ver": _version()})

    def secret(self, key: str = "cursor_secret") -> bytes:
        """A server-wide random secret, created once and shared by every process on this store."""
        value = self.get_meta(key)
        if value is None:
            self.command(sql.SQL_SET_META, {"k": key, "v": secrets.token_hex(32), "ver": secrets.randbits(62)})
            value = self.get_meta(key)  # FINAL: every process converges on the same row
        assert value is not None
        return bytes.fromhex(value)

    # -- projects and keys -----------------------------------------------------------------------

    def create_project(self, name: str, *, project_id: str | None = None, organisation_id: str | None = None) -> Project:
        pid = project_id or "prj_" + secrets.token_hex(8)
        org = organisation_id or "org_" + pid.removeprefix("prj_")
        self.command(sql.SQL_INSERT_PROJECT, {"p": pid, "n": name, "o": org, "v": _version()})
        return Project(pid, name, org)

    def list_projects(self) -> list[Project]:
        return [Project(**r) for r in self.query(sql.SQL_GET_PROJECTS.format(where=""))]

    def get_project(self, project_id: str) -> Project | None:
        rows = self.query(sql.SQL_GET_PROJECTS.format(where="WHERE project_id = {p:String}"), {"p": project_id})
        return Project(**rows[0]) if rows else None

    def put_key(self, rec: ApiKeyRecord) -> None:
        created = rec.created_at or time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
        self.command(
            sql.SQL_INSERT_KEY,
            {
                "k": rec.key_id, "p": rec.project_id, "h": rec.key_hash, "n": rec.name, "r": rec.role,
                "t": rec.tenant_id, "c": created, "rv": int(rec.revoked), "v": _version(),
            },
        )

    def get_key(self, key_id: str) -> ApiKeyRecord | None:
        rows = self.query(sql.SQL_GET_KEYS.format(where="WHERE key_id = {k:String}"), {"k": key_id})
        return api_key_of(rows[0]) if rows else None

    def list_keys(self, project_id: str | None = None) -> list[ApiKeyRecord]:
        if project_id is None:
            rows = self.query(sql.SQL_GET_KEYS.format(where=""))
        else:
            rows = self.query(sql.SQL_GET_KEYS.format(where="WHERE project_id = {p:String}"), {"p": project_id})
        return [api_key_of(r) for r in rows]

    # -- spans: writes -----------------------------------------------------------------------------

    def store_resources(self, resources: dict[tuple[str, str], bytes]) -> None:
        """Store the resources span rows name (``IngestBatch.resources``: ``(project_id, resource_id)`` ->
        attributes as JSON) that are not known to be stored; returns once they are durable (call it
        before the rows are acknowledged: a row never names a resource the store may not have)."""
        if not resources:
            return
        with self._resources_lock:
            known = self._known_resources
            new = [(key, attrs) for key, attrs in resources.items() if key not in known]
            if new:
                data = b"".join(
                    orjson.dumps([project_id, resource_id, orjson.Fragment(attrs)]) + b"\n"
                    for (project_id, resource_id), attrs in new
                )
                with self._writing():
                    self.backend.insert_rows("netra_resources", ("project_id", "resource_id", "attributes"), data,
                                             "JSONCompactEachRow")
            for key in resources:  # each one named now is the most recently used
                known[key] = None
                known.move_to_end(key)
            while len(known) > KNOWN_RESOURCES:
                known.popitem(last=False)

    def insert_spans(self, data: bytes, keys: list[billing.SpanKey] | None = None) -> None:
        """Insert span rows (``IngestBatch.data`` from ``netra_server.otlp.build_rows``:
        ``JSONCompactEachRow`` of ``SPAN_COLUMNS``, attribute maps as JSON objects; ``keys``: its
        ``IngestBatch.keys``, else read from the rows); returns once they are durable.

        A span already stored (same project, trace id and span id) is not stored again, and ancestors
        of spans with usage are stored covered (``netra_server.billing``). Rows that name a resource
        (``IngestBatch.resources``) need it stored first (:meth:`store_resources`; the receiver does it
        before it acknowledges them)."""
        with self._writing():
            self.span_index.insert(self.backend, data, keys, self._insert_span_rows)
        self._refresh_usage_reads()  # usage reads polled during ingest: ready before they are asked

    def _insert_span_rows(self, data: bytes, comment: str = "") -> None:
        with self._writing():
            self.backend.insert_rows("netra_spans", schema.SPAN_COLUMNS, data, "JSONCompactEachRow", comment=comment)
