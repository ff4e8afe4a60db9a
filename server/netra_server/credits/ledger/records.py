"""What the credit ledger answers (accounts, entries, reservations, transactions, usage lines and
groups), its limits, and the checks every amount and tenant passes before it reaches a ledger."""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any, Literal

from ..errors import InvalidCreditRequest
from ..pricing import MONEY_PLACES

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

