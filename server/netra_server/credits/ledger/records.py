"""What the credit ledger answers (accounts, entries, reservations, transactions, usage lines and
groups: the SDK's :mod:`netra.credits.models`), its limits, and the checks every amount and tenant
passes before it reaches a ledger."""

from __future__ import annotations

import secrets
from decimal import Decimal
from typing import Any, Literal

# What the ledger answers: the credits client's result types, so the server and the client share one
# definition of each record (the server writes them to JSON with ``as_dict``).
from netra.credits.models import Account, Entry, Reservation, Transaction, UsageGroup, UsageRecord

from ..errors import InvalidCreditRequest
from ..pricing import MONEY_PLACES

__all__ = [
    "CONTEXTS",
    "ENTRY_KINDS",
    "GROUP_BY",
    "IDEMPOTENCY_SECONDS",
    "MAX_AMOUNT",
    "MAX_TTL",
    "MIN_TTL",
    "ZERO",
    "Account",
    "Context",
    "Entry",
    "Reservation",
    "Transaction",
    "UsageGroup",
    "UsageRecord",
    "check_amount",
    "check_tenant",
]

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
