"""The interface of the credit ledger: what the API needs from a transactional store of balances."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from decimal import Decimal

from ..pricing import UsageLine
from .records import Account, Context, Entry, Reservation, Transaction, UsageGroup

__all__ = ["CreditLedger"]


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
