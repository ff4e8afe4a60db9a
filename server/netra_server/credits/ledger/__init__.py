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

Modules
-------
``records`` (what the ledger answers, limits, amount and tenant checks), ``interface``
(:class:`CreditLedger`), ``sqlite_base`` (tables, connections, transactions, idempotency, account
movements), ``sqlite_reads`` (reads and :meth:`~CreditLedger.verify`), ``sqlite`` (the movements:
grant, reserve, confirm, release, usage, expiry).
"""

from __future__ import annotations

import os
from pathlib import Path

from . import records
from .interface import CreditLedger
from .records import *  # noqa: F403  (its __all__: the records, limits and checks)
from .sqlite import SqliteLedger

__all__ = [*records.__all__, "CreditLedger", "SqliteLedger", "open_ledger"]


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
