"""The SQLite ledger's reads: accounts, reservations, transactions, entries, usage, and the check that
every balance equals the sum of its entries (:meth:`verify`)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from ..errors import InvalidCreditRequest, ReservationNotFound
from .records import (
    CONTEXTS,
    ENTRY_KINDS,
    GROUP_BY,
    ZERO,
    Account,
    Entry,
    Reservation,
    Transaction,
    UsageGroup,
    UsageRecord,
    _d,
)
from .sqlite_base import _SqliteBase


class _SqliteReads(_SqliteBase):
    """What :class:`~.sqlite.SqliteLedger` answers (no writes)."""

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
