"""The credit ledger: accounts, holds and an append-only journal of every movement, in SQLite.

Balances need a transactional store (check-and-spend must be atomic across concurrent requests);
ClickHouse, and so chDB, has no such transactions. The embedded deployment keeps the ledger in one
SQLite file in the server's data folder (``credits.sqlite3``): WAL mode, ``synchronous=FULL`` (a
committed movement survives a crash or a power loss) and one ``BEGIN IMMEDIATE`` transaction per
operation, so writers are serialised and every check sees every earlier commit. For a deployment on
a ClickHouse server with several Netra processes, :class:`CreditLedger` is the interface a small SQL
database beside ClickHouse implements (PostgreSQL: the same statements inside a transaction that
locks the account row with ``SELECT ... FOR UPDATE``); see ``docs/credits.md``.

Model
-----
An **account** per (project, tenant) has ``balance`` (money owned: grants + adjustments - charges),
``reserved`` (money held by open reservations) and ``overdraft_limit``;
``available = balance - reserved + overdraft_limit``. A reservation succeeds only if its amount is at
most ``available``, checked and written in one transaction: concurrent reservations can never hold
more than there is.

Every change is an **entry** (append-only: SQLite triggers refuse UPDATE and DELETE) with ``amount``
(the change of the balance) and ``hold`` (the change of ``reserved``), and the account's values after
it. Kinds: ``grant`` (+amount), ``adjustment`` (+/- amount), ``reservation`` (+hold),
``confirmation`` (-amount charged, -hold up to the amount), ``release`` (-hold: the rest of a
confirmed hold, a released or an expired reservation), ``usage`` (-amount: usage charged without a
reservation). So for every account ``sum(amount) = balance`` and ``sum(hold) = reserved``
(:meth:`CreditLedger.verify`).

Usage **lines** (model, tokens, audio seconds, cost, and the trace/span of the call) belong to a
transaction (``txn_...``, known from the reservation on); ``system`` context usage (your own work,
not billed to a customer) is recorded as lines only and moves no balance.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, TypeVar

from .errors import (
    CreditError,
    IdempotencyConflict,
    InsufficientCredits,
    InvalidCreditRequest,
    ReservationAlreadyConfirmed,
    ReservationExpired,
    ReservationNotFound,
    ReservationReleased,
)
from .pricing import MONEY_PLACES, PricedLine, UsageLine, price_line

__all__ = [
    "Account",
    "CreditLedger",
    "Entry",
    "Reservation",
    "SqliteLedger",
    "Transaction",
    "UsageGroup",
    "UsageRecord",
    "open_ledger",
]

T = TypeVar("T")
ZERO = Decimal(0)
Context = Literal["customer", "system"]
CONTEXTS = ("customer", "system")
ENTRY_KINDS = ("grant", "adjustment", "reservation", "confirmation", "release", "usage")
GROUP_BY = ("model", "context", "tenant", "day")
#: Largest single amount (USD).
MAX_AMOUNT = Decimal(10) ** 12
MIN_TTL, MAX_TTL = 1.0, 7 * 86400.0
#: How long an idempotency key is remembered.
IDEMPOTENCY_SECONDS = 7 * 86400.0


def _d(text: str | None) -> Decimal:
    return Decimal(text) if text else ZERO


def _s(value: Decimal) -> str:
    return format(value.quantize(MONEY_PLACES).normalize(), "f") if value else "0"


def check_amount(value: Any, what: str = "amount", *, allow_zero: bool = False, allow_negative: bool = False) -> Decimal:
    """A finite decimal amount in USD with at most 10 decimal places, else :class:`InvalidCreditRequest`."""
    if isinstance(value, float):
        value = Decimal(str(value))
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise InvalidCreditRequest(f"{what} must be a decimal number of USD (e.g. \"12.50\"), not {value!r}")
    try:
        d = Decimal(value)
    except ArithmeticError:
        raise InvalidCreditRequest(f"{what} must be a decimal number of USD (e.g. \"12.50\"), not {value!r}") from None
    if not d.is_finite():
        raise InvalidCreditRequest(f"{what} must be a finite number of USD, not {value!r}")
    if abs(d) >= MAX_AMOUNT:
        raise InvalidCreditRequest(f"{what} {value} is too large (the limit is {MAX_AMOUNT:,} USD)")
    if d != d.quantize(MONEY_PLACES):
        raise InvalidCreditRequest(f"{what} {value} has more than 10 decimal places")
    if d < 0 and not allow_negative:
        raise InvalidCreditRequest(f"{what} must not be negative (got {value})")
    if d == 0 and not allow_zero:
        raise InvalidCreditRequest(f"{what} must be more than 0 (got {value})")
    return d


def check_tenant(tenant_id: Any) -> str:
    if not isinstance(tenant_id, str) or not tenant_id.strip():
        raise InvalidCreditRequest("tenant_id must be a non-empty string")
    if len(tenant_id) > 256:
        raise InvalidCreditRequest("tenant_id is longer than 256 characters")
    return tenant_id


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


# --------------------------------------------------------------------------------------------------
# What the ledger answers


@dataclass(frozen=True)
class Account:
    tenant_id: str
    currency: str
    balance: Decimal
    reserved: Decimal
    available: Decimal
    overdraft_limit: Decimal
    granted: Decimal
    adjusted: Decimal
    spent: Decimal
    system_cost: Decimal
    updated_at: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Entry:
    seq: int
    id: str
    tenant_id: str
    kind: str
    amount: Decimal
    hold: Decimal
    balance_after: Decimal
    reserved_after: Decimal
    reservation_id: str
    transaction_id: str
    context: str
    note: str
    at: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Reservation:
    id: str
    tenant_id: str
    transaction_id: str
    amount: Decimal
    status: str  # held | confirmed | released | expired
    created_at: float
    expires_at: float
    settled_at: float | None
    charged: Decimal | None
    note: str
    model: str
    #: The account after this operation (for the caller's display).
    account: Account | None = None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["account"] = self.account.as_dict() if self.account else None
        return d


@dataclass(frozen=True)
class UsageRecord:
    id: str
    tenant_id: str
    transaction_id: str
    reservation_id: str
    context: str
    model: str
    provider: str
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    reasoning_tokens: int
    audio_seconds: Decimal
    cost: Decimal
    cost_source: str
    trace_id: str
    span_id: str
    at: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Transaction:
    id: str
    tenant_id: str
    reservation_id: str
    context: str
    amount: Decimal  # charged to the balance (0 in system context)
    released: Decimal  # the part of the hold given back
    at: float
    usage: list[UsageRecord] = field(default_factory=list)
    account: Account | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "tenant_id": self.tenant_id, "reservation_id": self.reservation_id,
            "context": self.context, "amount": self.amount, "released": self.released, "at": self.at,
            "usage": [u.as_dict() for u in self.usage],
            "account": self.account.as_dict() if self.account else None,
        }


@dataclass(frozen=True)
class UsageGroup:
    key: str
    requests: int
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    reasoning_tokens: int
    audio_seconds: Decimal
    cost: Decimal

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------------------------------
# The interface


class CreditLedger(ABC):
    """What the API needs from the transactional store of balances (SQLite here; PostgreSQL for a
    multi-process ClickHouse deployment). Every method is blocking (the API runs it in a thread);
    every writing method is one atomic transaction and takes an optional idempotency key."""

    @abstractmethod
    def grant(self, project_id: str, tenant_id: str, amount: Decimal, *, note: str = "", kind: str = "grant",
              idempotency_key: str | None = None, now: float | None = None) -> Entry: ...

    @abstractmethod
    def set_overdraft_limit(self, project_id: str, tenant_id: str, limit: Decimal) -> Account: ...

    @abstractmethod
    def reserve(self, project_id: str, tenant_id: str, amount: Decimal, *, ttl: float, note: str = "",
                model: str = "", idempotency_key: str | None = None, now: float | None = None) -> Reservation: ...

    @abstractmethod
    def confirm(self, project_id: str, reservation_id: str, *, amount: Decimal | None = None,
                lines: Sequence[UsageLine] = (), note: str = "", idempotency_key: str | None = None,
                now: float | None = None) -> Transaction: ...

    @abstractmethod
    def release(self, project_id: str, reservation_id: str, *, idempotency_key: str | None = None,
                now: float | None = None) -> Reservation: ...

    @abstractmethod
    def record_usage(self, project_id: str, tenant_id: str, lines: Sequence[UsageLine], *,
                     context: Context = "customer", transaction_id: str | None = None, note: str = "",
                     idempotency_key: str | None = None, now: float | None = None) -> Transaction: ...

    @abstractmethod
    def expire_due(self, now: float | None = None, limit: int = 1000) -> int: ...

    @abstractmethod
    def account(self, project_id: str, tenant_id: str) -> Account: ...

    @abstractmethod
    def accounts(self, project_id: str) -> list[Account]: ...

    @abstractmethod
    def reservation(self, project_id: str, reservation_id: str) -> Reservation: ...

    @abstractmethod
    def transaction(self, project_id: str, transaction_id: str) -> Transaction | None: ...

    @abstractmethod
    def entries(self, project_id: str, *, tenant_id: str | None = None, kinds: Sequence[str] = (),
                since: float | None = None, until: float | None = None, after_seq: int = 0,
                limit: int = 100) -> list[Entry]: ...

    @abstractmethod
    def usage(self, project_id: str, *, group_by: str, tenant_id: str | None = None, model: str | None = None,
              context: str | None = None, since: float | None = None, until: float | None = None) -> list[UsageGroup]: ...

    @abstractmethod
    def verify(self, project_id: str | None = None) -> list[str]: ...

    @abstractmethod
    def close(self) -> None: ...


# --------------------------------------------------------------------------------------------------
# SQLite

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


class SqliteLedger(CreditLedger):
    """The ledger in one SQLite file (a connection per thread; writers serialised by ``BEGIN IMMEDIATE``)."""

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

    def grant(self, project_id: str, tenant_id: str, amount: Decimal, *, note: str = "", kind: str = "grant",
              idempotency_key: str | None = None, now: float | None = None) -> Entry:
        check_tenant(tenant_id)
        if kind not in ("grant", "adjustment"):
            raise InvalidCreditRequest(f"kind must be 'grant' or 'adjustment', not {kind!r}")
        amount = check_amount(amount, allow_negative=kind == "adjustment")
        t = self.clock() if now is None else now

        def op(db: sqlite3.Connection) -> int:
            hit = self._idem_lookup(db, project_id, idempotency_key, kind,
                                    {"tenant": tenant_id, "amount": _s(amount), "note": note})
            if hit is not None:
                return int(hit[1])
            column = "granted" if kind == "grant" else "adjusted"
            seq = self._move(db, project_id, tenant_id, kind, amount=amount, note=note, now=t,
                             column=column, column_delta=amount)
            self._idem_store(db, idempotency_key, "entry", str(seq), t)
            return seq

        seq = self._write(op)
        return self._entry_by_seq(project_id, seq)

    def set_overdraft_limit(self, project_id: str, tenant_id: str, limit: Decimal) -> Account:
        check_tenant(tenant_id)
        limit = check_amount(limit, "overdraft_limit", allow_zero=True)
        t = self.clock()

        def op(db: sqlite3.Connection) -> None:
            self._account_row(db, project_id, tenant_id, t)
            db.execute("UPDATE credit_accounts SET overdraft_limit = ?, updated_at = ? WHERE project_id = ? AND "
                       "tenant_id = ?", (_s(limit), t, project_id, tenant_id))

        self._write(op)
        return self.account(project_id, tenant_id)

    # -- reservations --------------------------------------------------------------------------------

    def _expire_rows(self, db: sqlite3.Connection, rows: Sequence[sqlite3.Row], now: float) -> None:
        for r in rows:
            amount = _d(r["amount"])
            db.execute("UPDATE credit_reservations SET status = 'expired', settled_at = ? WHERE reservation_id = ?",
                       (now, r["reservation_id"]))
            self._move(db, r["project_id"], r["tenant_id"], "release", hold=-amount,
                       reservation_id=r["reservation_id"], transaction_id=r["transaction_id"],
                       note="expired: the hold's TTL passed without a confirmation", now=now)

    def reserve(self, project_id: str, tenant_id: str, amount: Decimal, *, ttl: float, note: str = "",
                model: str = "", idempotency_key: str | None = None, now: float | None = None) -> Reservation:
        check_tenant(tenant_id)
        amount = check_amount(amount)
        if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not MIN_TTL <= ttl <= MAX_TTL:
            raise InvalidCreditRequest(f"ttl must be between {MIN_TTL:g} and {MAX_TTL:g} seconds, not {ttl!r}")
        t = self.clock() if now is None else now

        def op(db: sqlite3.Connection) -> str:
            hit = self._idem_lookup(db, project_id, idempotency_key, "reserve",
                                    {"tenant": tenant_id, "amount": _s(amount), "ttl": ttl, "note": note})
            if hit is not None:
                return hit[1]
            # holds of this account whose TTL passed are released first: they never block a reservation
            due = db.execute(
                "SELECT * FROM credit_reservations WHERE project_id = ? AND tenant_id = ? AND status = 'held' "
                "AND expires_at <= ?", (project_id, tenant_id, t),
            ).fetchall()
            self._expire_rows(db, due, t)
            account = self._account(self._account_row(db, project_id, tenant_id, t))
            if amount > account.available:
                raise _Deferred(InsufficientCredits(tenant_id, amount, account.available))
            rid, txn = _new_id("res"), _new_id("txn")
            db.execute(
                "INSERT INTO credit_reservations (reservation_id, project_id, tenant_id, transaction_id, amount, "
                "status, created_at, expires_at, note, model) VALUES (?, ?, ?, ?, ?, 'held', ?, ?, ?, ?)",
                (rid, project_id, tenant_id, txn, _s(amount), t, t + float(ttl), note[:1000], model[:200]),
            )
            self._move(db, project_id, tenant_id, "reservation", hold=amount, reservation_id=rid,
                       transaction_id=txn, note=note, now=t)
            self._idem_store(db, idempotency_key, "reservation", rid, t)
            return rid

        rid = self._write(op)
        return self.reservation(project_id, rid)

    def _held(self, db: sqlite3.Connection, project_id: str, reservation_id: str, now: float,
              action: str) -> sqlite3.Row:
        """The reservation if it is still held; else a deferred typed error (expiring it if due)."""
        r = db.execute("SELECT * FROM credit_reservations WHERE project_id = ? AND reservation_id = ?",
                       (project_id, reservation_id)).fetchone()
        if r is None:
            raise _Deferred(ReservationNotFound(reservation_id))
        rid, txn = r["reservation_id"], r["transaction_id"]
        if r["status"] == "held" and r["expires_at"] <= now:
            self._expire_rows(db, [r], now)
            r = db.execute("SELECT * FROM credit_reservations WHERE reservation_id = ?", (rid,)).fetchone()
        status = r["status"]
        if status == "held":
            return r
        if status == "confirmed":
            raise _Deferred(ReservationAlreadyConfirmed(
                f"reservation {rid} was already confirmed (transaction {txn}, {_d(r['charged']):f} USD); "
                f"it cannot be {action}", rid, txn))
        if status == "expired":
            raise _Deferred(ReservationExpired(
                f"reservation {rid} expired at {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(r['expires_at']))} "
                f"UTC and its hold was released, so it cannot be {action}; record the usage without a reservation "
                f"(POST /api/credits/usage with transaction_id {txn}) or reserve again with a longer ttl", rid, txn))
        raise _Deferred(ReservationReleased(
            f"reservation {rid} was released, so it cannot be {action}; record the usage without a reservation "
            f"(POST /api/credits/usage) if the call still ran", rid, txn))

    def confirm(self, project_id: str, reservation_id: str, *, amount: Decimal | None = None,
                lines: Sequence[UsageLine] = (), note: str = "", idempotency_key: str | None = None,
                now: float | None = None) -> Transaction:
        if (amount is None) == (not lines):
            raise InvalidCreditRequest("confirm with the actual usage (\"usage\": [...]) or the actual amount "
                                       "(\"amount\"), exactly one of them")
        priced = [price_line(line) for line in lines]
        charged = check_amount(amount, allow_zero=True) if amount is not None else sum(
            (p.cost for p in priced), ZERO)
        t = self.clock() if now is None else now

        def op(db: sqlite3.Connection) -> str:
            hit = self._idem_lookup(db, project_id, idempotency_key, "confirm", {
                "reservation": reservation_id, "amount": _s(charged),
                "usage": [asdict(p.line) for p in priced], "note": note})
            if hit is not None:
                return hit[1]
            r = self._held(db, project_id, reservation_id, t, "confirmed")
            tenant, rid, txn, held = r["tenant_id"], r["reservation_id"], r["transaction_id"], _d(r["amount"])
            from_hold = min(held, charged)
            db.execute("UPDATE credit_reservations SET status = 'confirmed', settled_at = ?, charged = ? "
                       "WHERE reservation_id = ?", (t, _s(charged), rid))
            over = f" ({charged - held:f} USD over the hold)" if charged > held else ""
            self._move(db, project_id, tenant, "confirmation", amount=-charged, hold=-from_hold, reservation_id=rid,
                       transaction_id=txn, note=(note or "") + over, now=t, column="spent", column_delta=charged)
            if held > from_hold:
                self._move(db, project_id, tenant, "release", hold=-(held - from_hold), reservation_id=rid,
                           transaction_id=txn, note="the rest of the hold, after confirmation", now=t)
            self._insert_usage(db, project_id, tenant, txn, rid, "customer", priced, t)
            self._idem_store(db, idempotency_key, "transaction", txn, t)
            return str(txn)

        txn = self._write(op)
        found = self.transaction(project_id, txn)
        assert found is not None
        return found

    def release(self, project_id: str, reservation_id: str, *, idempotency_key: str | None = None,
                now: float | None = None) -> Reservation:
        t = self.clock() if now is None else now

        def op(db: sqlite3.Connection) -> None:
            if self._idem_lookup(db, project_id, idempotency_key, "release", {"reservation": reservation_id}):
                return
            try:
                r = self._held(db, project_id, reservation_id, t, "released")
            except _Deferred as d:
                if isinstance(d.error, ReservationReleased | ReservationExpired):
                    return  # already without a hold: releasing again changes nothing
                raise
            db.execute("UPDATE credit_reservations SET status = 'released', settled_at = ? WHERE reservation_id = ?",
                       (t, r["reservation_id"]))
            self._move(db, project_id, r["tenant_id"], "release", hold=-_d(r["amount"]),
                       reservation_id=r["reservation_id"], transaction_id=r["transaction_id"],
                       note="released by the caller", now=t)
            self._idem_store(db, idempotency_key, "reservation", reservation_id, t)

        self._write(op)
        return self.reservation(project_id, reservation_id)

    def record_usage(self, project_id: str, tenant_id: str, lines: Sequence[UsageLine], *,
                     context: Context = "customer", transaction_id: str | None = None, note: str = "",
                     idempotency_key: str | None = None, now: float | None = None) -> Transaction:
        if context not in CONTEXTS:
            raise InvalidCreditRequest(f"context must be 'customer' or 'system', not {context!r}")
        tenant_id = check_tenant(tenant_id)
        if not lines:
            raise InvalidCreditRequest("usage needs at least one line (model and tokens, or a cost)")
        priced = [price_line(line) for line in lines]
        total = sum((p.cost for p in priced), ZERO)
        t = self.clock() if now is None else now

        def op(db: sqlite3.Connection) -> str:
            hit = self._idem_lookup(db, project_id, idempotency_key, "usage", {
                "tenant": tenant_id, "context": context, "txn": transaction_id,
                "usage": [asdict(p.line) for p in priced], "note": note})
            if hit is not None:
                return hit[1]
            txn = transaction_id or _new_id("txn")
            rid = ""
            if transaction_id:
                r = db.execute("SELECT * FROM credit_reservations WHERE project_id = ? AND transaction_id = ?",
                               (project_id, transaction_id)).fetchone()
                if r is not None:
                    if r["status"] in ("held", "confirmed"):
                        raise _Deferred(InvalidCreditRequest(
                            f"transaction {transaction_id} belongs to reservation {r['reservation_id']} "
                            f"({r['status']}); confirm the reservation instead of recording usage on it"))
                    if r["tenant_id"] != tenant_id:
                        raise _Deferred(InvalidCreditRequest(
                            f"transaction {transaction_id} belongs to tenant {r['tenant_id']!r}, not {tenant_id!r}"))
                    rid = r["reservation_id"]
                elif db.execute("SELECT 1 FROM credit_usage WHERE project_id = ? AND transaction_id = ? LIMIT 1",
                                (project_id, transaction_id)).fetchone():
                    raise _Deferred(InvalidCreditRequest(
                        f"transaction {transaction_id} already has usage; send an idempotency key to retry safely"))
            if context == "customer":
                self._move(db, project_id, tenant_id, "usage", amount=-total, reservation_id=rid,
                           transaction_id=txn, note=note, now=t, column="spent", column_delta=total)
            else:
                self._account_row(db, project_id, tenant_id, t)
                row = db.execute("SELECT system_cost FROM credit_accounts WHERE project_id = ? AND tenant_id = ?",
                                 (project_id, tenant_id)).fetchone()
                db.execute("UPDATE credit_accounts SET system_cost = ?, updated_at = ? WHERE project_id = ? "
                           "AND tenant_id = ?", (_s(_d(row["system_cost"]) + total), t, project_id, tenant_id))
            self._insert_usage(db, project_id, tenant_id, txn, rid, context, priced, t)
            self._idem_store(db, idempotency_key, "transaction", txn, t)
            return txn

        txn = self._write(op)
        found = self.transaction(project_id, txn)
        assert found is not None
        return found

    def _insert_usage(self, db: sqlite3.Connection, project_id: str, tenant_id: str, txn: str, rid: str,
                      context: str, priced: Sequence[PricedLine], now: float) -> None:
        for p in priced:
            u = p.line
            db.execute(
                "INSERT INTO credit_usage (usage_id, project_id, tenant_id, transaction_id, reservation_id, context, "
                "model, provider, input_tokens, output_tokens, cached_tokens, reasoning_tokens, audio_seconds, cost, "
                "cost_source, trace_id, span_id, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (_new_id("use"), project_id, tenant_id, txn, rid, context, u.model, u.provider or "",
                 u.input_tokens, u.output_tokens, u.cached_tokens, u.reasoning_tokens, _s(u.audio_seconds),
                 _s(p.cost), p.source, u.trace_id, u.span_id, now),
            )

    def expire_due(self, now: float | None = None, limit: int = 1000) -> int:
        """Release the holds whose TTL passed (all projects); returns how many."""
        t = self.clock() if now is None else now

        def op(db: sqlite3.Connection) -> int:
            due = db.execute("SELECT * FROM credit_reservations WHERE status = 'held' AND expires_at <= ? "
                             "ORDER BY expires_at LIMIT ?", (t, limit)).fetchall()
            self._expire_rows(db, due, t)
            return len(due)

        return self._write(op)

    def prune_idempotency_keys(self, older_than: float = IDEMPOTENCY_SECONDS, now: float | None = None) -> int:
        """Forget idempotency keys older than ``older_than`` seconds (a retry that late is a new request)."""
        t = self.clock() if now is None else now

        def op(db: sqlite3.Connection) -> int:
            return db.execute("DELETE FROM credit_idempotency WHERE at < ?", (t - older_than,)).rowcount

        return self._write(op)

    # -- reads ---------------------------------------------------------------------------------------

    def account(self, project_id: str, tenant_id: str) -> Account:
        row = self._db().execute("SELECT * FROM credit_accounts WHERE project_id = ? AND tenant_id = ?",
                                 (project_id, tenant_id)).fetchone()
        return self._account(row, tenant_id)

    def accounts(self, project_id: str) -> list[Account]:
        rows = self._db().execute("SELECT * FROM credit_accounts WHERE project_id = ? ORDER BY tenant_id",
                                  (project_id,)).fetchall()
        return [self._account(r) for r in rows]

    def reservation(self, project_id: str, reservation_id: str) -> Reservation:
        r = self._db().execute("SELECT * FROM credit_reservations WHERE project_id = ? AND reservation_id = ?",
                               (project_id, reservation_id)).fetchone()
        if r is None:
            raise ReservationNotFound(reservation_id)
        return Reservation(
            id=r["reservation_id"], tenant_id=r["tenant_id"], transaction_id=r["transaction_id"],
            amount=_d(r["amount"]), status=r["status"], created_at=r["created_at"], expires_at=r["expires_at"],
            settled_at=r["settled_at"], charged=_d(r["charged"]) if r["charged"] is not None else None,
            note=r["note"], model=r["model"], account=self.account(project_id, r["tenant_id"]),
        )

    def transaction(self, project_id: str, transaction_id: str) -> Transaction | None:
        db = self._db()
        lines = [self._usage(u) for u in db.execute(
            "SELECT * FROM credit_usage WHERE project_id = ? AND transaction_id = ? ORDER BY at, usage_id",
            (project_id, transaction_id)).fetchall()]
        entries = db.execute("SELECT * FROM credit_entries WHERE project_id = ? AND transaction_id = ? AND kind IN "
                             "('confirmation', 'usage', 'release') ORDER BY seq", (project_id, transaction_id)).fetchall()
        charges = [e for e in entries if e["kind"] != "release"]
        if not charges and not lines:
            return None
        if charges:
            tenant, at = charges[0]["tenant_id"], float(charges[0]["at"])
        else:
            tenant, at = lines[0].tenant_id, lines[0].at
        amount = -sum((_d(e["amount"]) for e in charges), ZERO)
        after_confirm = [e for e in entries if e["kind"] == "release" and charges and e["seq"] > charges[0]["seq"]]
        released = -sum((_d(e["hold"]) for e in after_confirm), ZERO)
        rid = charges[0]["reservation_id"] if charges else (lines[0].reservation_id if lines else "")
        context = lines[0].context if lines else "customer"
        return Transaction(id=transaction_id, tenant_id=tenant, reservation_id=rid, context=context, amount=amount,
                           released=released, at=at, usage=lines, account=self.account(project_id, tenant))

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

    def _entry_by_seq(self, project_id: str, seq: int) -> Entry:
        row = self._db().execute("SELECT * FROM credit_entries WHERE project_id = ? AND seq = ?",
                                 (project_id, seq)).fetchone()
        return self._entry(row)

    def entries(self, project_id: str, *, tenant_id: str | None = None, kinds: Sequence[str] = (),
                since: float | None = None, until: float | None = None, after_seq: int = 0,
                limit: int = 100) -> list[Entry]:
        sql = "SELECT * FROM credit_entries WHERE project_id = ? AND seq > ?"
        params: list[Any] = [project_id, after_seq]
        if tenant_id is not None:
            sql += " AND tenant_id = ?"
            params.append(tenant_id)
        if kinds:
            bad = [k for k in kinds if k not in ENTRY_KINDS]
            if bad:
                raise InvalidCreditRequest(f"unknown entry kind(s) {bad}; known: {', '.join(ENTRY_KINDS)}")
            sql += f" AND kind IN ({', '.join('?' * len(kinds))})"
            params.extend(kinds)
        if since is not None:
            sql += " AND at >= ?"
            params.append(since)
        if until is not None:
            sql += " AND at <= ?"
            params.append(until)
        sql += " ORDER BY seq LIMIT ?"
        params.append(max(1, min(limit, 10_000)))
        return [self._entry(e) for e in self._db().execute(sql, params).fetchall()]

    def usage_records(self, project_id: str, *, tenant_id: str | None = None, model: str | None = None,
                      context: str | None = None, since: float | None = None, until: float | None = None,
                      limit: int = 1000) -> list[UsageRecord]:
        where, params = self._usage_where(project_id, tenant_id, model, context, since, until)
        rows = self._db().execute(f"SELECT * FROM credit_usage WHERE {where} ORDER BY at, usage_id LIMIT ?",
                                  (*params, max(1, min(limit, 10_000)))).fetchall()
        return [self._usage(u) for u in rows]

    @staticmethod
    def _usage_where(project_id: str, tenant_id: str | None, model: str | None, context: str | None,
                     since: float | None, until: float | None) -> tuple[str, list[Any]]:
        where = "project_id = ?"
        params: list[Any] = [project_id]
        for col, value in (("tenant_id", tenant_id), ("model", model), ("context", context)):
            if value is not None:
                where += f" AND {col} = ?"
                params.append(value)
        if since is not None:
            where += " AND at >= ?"
            params.append(since)
        if until is not None:
            where += " AND at <= ?"
            params.append(until)
        return where, params

    def usage(self, project_id: str, *, group_by: str, tenant_id: str | None = None, model: str | None = None,
              context: str | None = None, since: float | None = None, until: float | None = None) -> list[UsageGroup]:
        if group_by not in GROUP_BY:
            raise InvalidCreditRequest(f"group_by must be one of {', '.join(GROUP_BY)}, not {group_by!r}")
        if context is not None and context not in CONTEXTS:
            raise InvalidCreditRequest(f"context must be 'customer' or 'system', not {context!r}")
        key = {"model": "model", "context": "context", "tenant": "tenant_id",
               "day": "strftime('%Y-%m-%d', at, 'unixepoch')"}[group_by]
        where, params = self._usage_where(project_id, tenant_id, model, context, since, until)
        rows = self._db().execute(
            f"SELECT {key} AS k, count(*) AS n, sum(input_tokens) AS i, sum(output_tokens) AS o, "
            f"sum(cached_tokens) AS c, sum(reasoning_tokens) AS r, group_concat(audio_seconds, ' ') AS a, "
            f"group_concat(cost, ' ') AS cost FROM credit_usage WHERE {where} GROUP BY k ORDER BY k", params,
        ).fetchall()
        # money and seconds are summed as decimals here (SQLite would sum TEXT as floats)
        return [
            UsageGroup(key=str(r["k"]), requests=int(r["n"]), input_tokens=int(r["i"] or 0),
                       output_tokens=int(r["o"] or 0), cached_tokens=int(r["c"] or 0),
                       reasoning_tokens=int(r["r"] or 0),
                       audio_seconds=sum((Decimal(x) for x in (r["a"] or "").split()), ZERO),
                       cost=sum((Decimal(x) for x in (r["cost"] or "").split()), ZERO))
            for r in rows
        ]

    def verify(self, project_id: str | None = None) -> list[str]:
        """Problems found (empty: every account equals the sum of its entries, and every hold the sum
        of its open reservations)."""
        db = self._db()
        db.execute("BEGIN")  # one snapshot for the three reads
        try:
            accounts = db.execute("SELECT * FROM credit_accounts" + (" WHERE project_id = ?" if project_id else ""),
                                  (project_id,) if project_id else ()).fetchall()
            problems = []
            for a in accounts:
                key = (a["project_id"], a["tenant_id"])
                ents = db.execute("SELECT amount, hold FROM credit_entries WHERE project_id = ? AND tenant_id = ?",
                                  key).fetchall()
                bal = sum((_d(e["amount"]) for e in ents), ZERO)
                held = sum((_d(e["hold"]) for e in ents), ZERO)
                open_ = sum((_d(r["amount"]) for r in db.execute(
                    "SELECT amount FROM credit_reservations WHERE project_id = ? AND tenant_id = ? AND "
                    "status = 'held'", key).fetchall()), ZERO)
                if bal != _d(a["balance"]):
                    problems.append(f"{key}: balance {a['balance']} but its entries sum to {bal}")
                if held != _d(a["reserved"]) or open_ != held:
                    problems.append(f"{key}: reserved {a['reserved']}, entries' holds {held}, open holds {open_}")
        finally:
            db.execute("COMMIT")
        return problems


def open_ledger(data_dir: str | Path | None) -> CreditLedger:
    """The ledger: ``$NETRA_CREDITS_DB`` (a SQLite path) if set, else ``<data_dir>/credits.sqlite3``;
    ``$NETRA_CREDITS_SYNCHRONOUS``: ``full`` (default) or ``normal``."""
    url = os.environ.get("NETRA_CREDITS_DB", "").strip()
    sync = os.environ.get("NETRA_CREDITS_SYNCHRONOUS", "full").strip() or "full"
    if url.startswith(("postgres://", "postgresql://")):
        raise RuntimeError(
            "NETRA_CREDITS_DB names a PostgreSQL database; this version implements the credit ledger on SQLite "
            "only (see docs/credits.md, 'ClickHouse deployments'); give a SQLite file path"
        )
    if url:
        path = url.removeprefix("sqlite:///").removeprefix("sqlite://")
        return SqliteLedger(path, synchronous=sync)
    if data_dir is None:
        raise RuntimeError("the credit ledger needs a data folder or NETRA_CREDITS_DB")
    return SqliteLedger(Path(data_dir) / "credits.sqlite3", synchronous=sync)
