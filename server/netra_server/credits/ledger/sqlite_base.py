"""The SQLite ledger's foundation: the tables, a connection per thread, one ``BEGIN IMMEDIATE``
transaction per operation, idempotency keys, and the one way an account moves (:meth:`_move`: append
an entry and apply it). The operations are in :mod:`.sqlite` (writes) and :mod:`.sqlite_reads`."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from ..errors import CreditError, IdempotencyConflict, InvalidCreditRequest
from .records import ZERO, Account, Entry, UsageRecord, _d, _new_id, _s

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS credit_accounts (
    project_id TEXT NOT NULL, tenant_id TEXT NOT NULL, currency TEXT NOT NULL DEFAULT 'USD',
    balance TEXT NOT NULL DEFAULT '0', reserved TEXT NOT NULL DEFAULT '0',
    overdraft_limit TEXT NOT NULL DEFAULT '0', granted TEXT NOT NULL DEFAULT '0',
    adjusted TEXT NOT NULL DEFAULT '0', spent TEXT NOT NULL DEFAULT '0', system_cost TEXT NOT NULL DEFAULT '0',
    created_at REAL NOT NULL, updated_at REAL NOT NULL,
    PRIMARY KEY (project_id, tenant_id)
);
CREATE TABLE IF NOT EXISTS credit_entries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, entry_id TEXT NOT NULL UNIQUE,
    project_id TEXT NOT NULL, tenant_id TEXT NOT NULL, kind TEXT NOT NULL,
    amount TEXT NOT NULL, hold TEXT NOT NULL, balance_after TEXT NOT NULL, reserved_after TEXT NOT NULL,
    reservation_id TEXT NOT NULL DEFAULT '', transaction_id TEXT NOT NULL DEFAULT '',
    context TEXT NOT NULL DEFAULT 'customer', note TEXT NOT NULL DEFAULT '', at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS credit_entries_account ON credit_entries (project_id, tenant_id, seq);
CREATE INDEX IF NOT EXISTS credit_entries_at ON credit_entries (project_id, at);
CREATE TRIGGER IF NOT EXISTS credit_entries_no_update BEFORE UPDATE ON credit_entries
BEGIN SELECT RAISE(ABORT, 'the credit ledger is append-only: entries cannot be changed'); END;
CREATE TRIGGER IF NOT EXISTS credit_entries_no_delete BEFORE DELETE ON credit_entries
BEGIN SELECT RAISE(ABORT, 'the credit ledger is append-only: entries cannot be deleted'); END;
CREATE TABLE IF NOT EXISTS credit_reservations (
    reservation_id TEXT PRIMARY KEY, project_id TEXT NOT NULL, tenant_id TEXT NOT NULL,
    transaction_id TEXT NOT NULL UNIQUE, amount TEXT NOT NULL, status TEXT NOT NULL,
    created_at REAL NOT NULL, expires_at REAL NOT NULL, settled_at REAL, charged TEXT,
    note TEXT NOT NULL DEFAULT '', model TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS credit_reservations_due ON credit_reservations (status, expires_at);
CREATE INDEX IF NOT EXISTS credit_reservations_account ON credit_reservations (project_id, tenant_id, status);
CREATE TABLE IF NOT EXISTS credit_usage (
    usage_id TEXT PRIMARY KEY, project_id TEXT NOT NULL, tenant_id TEXT NOT NULL,
    transaction_id TEXT NOT NULL, reservation_id TEXT NOT NULL DEFAULT '', context TEXT NOT NULL,
    model TEXT NOT NULL, provider TEXT NOT NULL DEFAULT '',
    input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL, cached_tokens INTEGER NOT NULL,
    reasoning_tokens INTEGER NOT NULL, audio_seconds TEXT NOT NULL, cost TEXT NOT NULL, cost_source TEXT NOT NULL,
    trace_id TEXT NOT NULL DEFAULT '', span_id TEXT NOT NULL DEFAULT '', at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS credit_usage_at ON credit_usage (project_id, at);
CREATE INDEX IF NOT EXISTS credit_usage_txn ON credit_usage (project_id, transaction_id);
CREATE TABLE IF NOT EXISTS credit_idempotency (
    project_id TEXT NOT NULL, idem_key TEXT NOT NULL, operation TEXT NOT NULL, fingerprint TEXT NOT NULL,
    result_kind TEXT NOT NULL, result_id TEXT NOT NULL, at REAL NOT NULL,
    PRIMARY KEY (project_id, idem_key)
);
"""


class _Deferred(Exception):
    """An error to raise after the transaction commits (its writes, e.g. an expiry, must stay)."""

    def __init__(self, error: CreditError) -> None:
        self.error = error


class _SqliteBase:
    """Connections, transactions, idempotency and account movements of :class:`~.sqlite.SqliteLedger`."""

    def __init__(self, path: str | Path, *, clock: Callable[[], float] = time.time, synchronous: str = "FULL") -> None:
        self.path = str(path)
        self.clock = clock
        if synchronous.upper() not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous must be FULL or NORMAL, not {synchronous!r}")
        #: FULL: a commit is fsynced (survives a power loss); NORMAL (WAL): survives a crash of the
        #: process (SIGKILL), a power loss may undo the last commits; several times faster (docs/credits.md).
        self.synchronous = synchronous.upper()
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db().executescript(_SCHEMA)

    # -- connections and transactions ----------------------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        if self._closed:
            raise RuntimeError("the credit ledger is closed")
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, isolation_level=None, timeout=60.0, check_same_thread=False)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={self.synchronous}")
            db.execute("PRAGMA busy_timeout=60000")
            self._local.db = db
            with self._lock:
                self._conns.append(db)
        return db

    def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in one ``BEGIN IMMEDIATE`` transaction; a :class:`_Deferred` error commits what
        ``fn`` wrote (an expiry) and is raised after the commit, any other error rolls back."""
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        deferred: CreditError | None = None
        try:
            try:
                result = fn(db)
            except _Deferred as d:
                deferred = d.error
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        if deferred is not None:
            raise deferred
        return result

    def close(self) -> None:
        with self._lock:
            self._closed = True
            conns, self._conns = self._conns, []
        for db in conns:
            try:
                db.close()
            except sqlite3.Error:
                pass

    # -- idempotency ---------------------------------------------------------------------------------

    def _idem_lookup(self, db: sqlite3.Connection, project_id: str, key: str | None, operation: str,
                     request: dict[str, Any]) -> tuple[str, str] | None:
        if key is None:
            return None
        if not isinstance(key, str) or not key or len(key) > 255:
            raise InvalidCreditRequest("an idempotency key must be a non-empty string of at most 255 characters")
        fingerprint = hashlib.sha256(
            json.dumps([operation, request], sort_keys=True, default=str).encode()
        ).hexdigest()
        row = db.execute(
            "SELECT operation, fingerprint, result_kind, result_id FROM credit_idempotency "
            "WHERE project_id = ? AND idem_key = ?", (project_id, key),
        ).fetchone()
        if row is None:
            self._local.pending = (project_id, key, operation, fingerprint)
            return None
        if row["operation"] != operation or row["fingerprint"] != fingerprint:
            raise IdempotencyConflict(
                f"the idempotency key {key!r} was used for another request ({row['operation']}); "
                "use a new key for each distinct request and the same key only to retry the same request",
                idempotency_key=key,
            )
        return str(row["result_kind"]), str(row["result_id"])

    def _idem_store(self, db: sqlite3.Connection, key: str | None, kind: str, result_id: str, now: float) -> None:
        if key is None:
            return
        project_id, k, operation, fingerprint = self._local.pending
        db.execute(
            "INSERT INTO credit_idempotency (project_id, idem_key, operation, fingerprint, result_kind, result_id, at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)", (project_id, k, operation, fingerprint, kind, result_id, now),
        )

    # -- accounts ------------------------------------------------------------------------------------

    def _account_row(self, db: sqlite3.Connection, project_id: str, tenant_id: str, now: float,
                     create: bool = True) -> sqlite3.Row | None:
        row = db.execute(
            "SELECT * FROM credit_accounts WHERE project_id = ? AND tenant_id = ?", (project_id, tenant_id)
        ).fetchone()
        if row is None and create:
            db.execute(
                "INSERT INTO credit_accounts (project_id, tenant_id, created_at, updated_at) VALUES (?, ?, ?, ?)",
                (project_id, tenant_id, now, now),
            )
            row = db.execute(
                "SELECT * FROM credit_accounts WHERE project_id = ? AND tenant_id = ?", (project_id, tenant_id)
            ).fetchone()
        return row

    @staticmethod
    def _account(row: sqlite3.Row | None, tenant_id: str = "") -> Account:
        if row is None:
            return Account(tenant_id, "USD", ZERO, ZERO, ZERO, ZERO, ZERO, ZERO, ZERO, ZERO, 0.0)
        balance, reserved, limit = _d(row["balance"]), _d(row["reserved"]), _d(row["overdraft_limit"])
        return Account(
            tenant_id=row["tenant_id"], currency=row["currency"], balance=balance, reserved=reserved,
            available=balance - reserved + limit, overdraft_limit=limit, granted=_d(row["granted"]),
            adjusted=_d(row["adjusted"]), spent=_d(row["spent"]), system_cost=_d(row["system_cost"]),
            updated_at=float(row["updated_at"]),
        )

    def _move(self, db: sqlite3.Connection, project_id: str, tenant_id: str, kind: str, *, amount: Decimal = ZERO,
              hold: Decimal = ZERO, reservation_id: str = "", transaction_id: str = "", context: str = "customer",
              note: str = "", now: float, column: str | None = None, column_delta: Decimal = ZERO) -> int:
        """Append one entry and apply it to the account (in the caller's transaction); returns its seq."""
        row = self._account_row(db, project_id, tenant_id, now)
        assert row is not None
        balance = _d(row["balance"]) + amount
        reserved = _d(row["reserved"]) + hold
        sets = "balance = ?, reserved = ?, updated_at = ?"
        params: list[Any] = [_s(balance), _s(reserved), now]
        if column is not None:
            sets += f", {column} = ?"
            params.append(_s(_d(row[column]) + column_delta))
        db.execute(f"UPDATE credit_accounts SET {sets} WHERE project_id = ? AND tenant_id = ?",
                   (*params, project_id, tenant_id))
        cur = db.execute(
            "INSERT INTO credit_entries (entry_id, project_id, tenant_id, kind, amount, hold, balance_after, "
            "reserved_after, reservation_id, transaction_id, context, note, at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (_new_id("ent"), project_id, tenant_id, kind, _s(amount), _s(hold), _s(balance), _s(reserved),
             reservation_id, transaction_id, context, note[:1000], now),
        )
        return int(cur.lastrowid or 0)

    @staticmethod
    def _usage(u: sqlite3.Row) -> UsageRecord:
        return UsageRecord(
            id=u["usage_id"], tenant_id=u["tenant_id"], transaction_id=u["transaction_id"],
            reservation_id=u["reservation_id"], context=u["context"], model=u["model"], provider=u["provider"],
            input_tokens=u["input_tokens"], output_tokens=u["output_tokens"], cached_tokens=u["cached_tokens"],
            reasoning_tokens=u["reasoning_tokens"], audio_seconds=_d(u["audio_seconds"]), cost=_d(u["cost"]),
            cost_source=u["cost_source"], trace_id=u["trace_id"], span_id=u["span_id"], at=float(u["at"]),
        )

    @staticmethod
    def _entry(e: sqlite3.Row) -> Entry:
        return Entry(
            seq=int(e["seq"]), id=e["entry_id"], tenant_id=e["tenant_id"], kind=e["kind"], amount=_d(e["amount"]),
            hold=_d(e["hold"]), balance_after=_d(e["balance_after"]), reserved_after=_d(e["reserved_after"]),
            reservation_id=e["reservation_id"], transaction_id=e["transaction_id"], context=e["context"],
            note=e["note"], at=float(e["at"]),
        )
