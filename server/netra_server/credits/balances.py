"""The credit balances the alert evaluator reads (the ``credit_balance`` metric): the open ledger of
each running server, by its store."""

from __future__ import annotations

import weakref
from typing import Any

__all__ = ["LEDGERS", "current_balance"]

#: The open ledger of each running server, by its store (what the alert evaluator holds).
LEDGERS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def current_balance(store: Any, project_id: str, tenant_id: str | None) -> float | None:
    """The credit balance (USD) of ``tenant_id``, or the lowest of the project's accounts; None when
    the ledger is not open or there is no account (for the ``credit_balance`` alert metric)."""
    ledger = LEDGERS.get(store)
    if ledger is None:
        return None
    if tenant_id is not None:
        account = ledger.account(project_id, tenant_id)
        return None if account.updated_at == 0 else float(account.balance)
    balances = [a.balance for a in ledger.accounts(project_id)]
    return float(min(balances)) if balances else None
