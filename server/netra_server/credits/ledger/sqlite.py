"""The SQLite ledger's movements: grants and adjustments, reservations (reserve, confirm, release,
expiry) and usage recorded without a reservation; each one atomic transaction with an optional
idempotency key."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import asdict
from decimal import Decimal

from ..errors import (
    InsufficientCredits,
    InvalidCreditRequest,
    ReservationAlreadyConfirmed,
    ReservationExpired,
    ReservationNotFound,
    ReservationReleased,
)
from ..pricing import PricedLine, UsageLine, price_line
from .interface import CreditLedger
from .records import (
    CONTEXTS,
    IDEMPOTENCY_SECONDS,
    MAX_TTL,
    MIN_TTL,
    ZERO,
    Account,
    Context,
    Entry,
    Reservation,
    Transaction,
    _d,
    _new_id,
    _s,
    check_amount,
    check_tenant,
)
from .sqlite_base import _Deferred
from .sqlite_reads import _SqliteReads

__all__ = ["SqliteLedger"]


class SqliteLedger(_SqliteReads, CreditLedger):
    """The ledger in one SQLite file (a connection per thread; writers serialised by ``BEGIN IMMEDIATE``)."""

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
