"""The JSON shapes of the credit routes, for the OpenAPI document (see :mod:`netra_server.wire`).

The routes return their answers themselves (:class:`~netra_server.responses.ExactJSONResponse`);
these models document them, and ``tests/server/test_openapi.py`` checks that real answers agree.
Money is :data:`~netra.usage.wire.Money`: a JSON number with the exact digits of the decimal.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from netra.usage.wire import EXACT_MONEY, Money
from netra_server.wire import ErrorResponse, errors

__all__ = [
    "AccountOut", "AccountResponse", "AccountsResponse", "EntriesPage", "EntriesResponse", "EntryOut", "GrantOut",
    "GrantResponse", "ReservationOut", "ReservationResponse", "TransactionOut", "TransactionResponse",
    "UsageGroupOut", "UsageRecordOut", "UsageReportOut", "UsageReportResponse", "UsageTotalOut", "VerifyOut",
    "VerifyResponse", "credit_errors",
]


def _m(text: str) -> Any:
    return Field(description=f"{text}. {EXACT_MONEY}")


_AT = "Unix seconds"


class AccountOut(BaseModel):
    tenant_id: str
    currency: str = Field(description="Always USD")
    balance: Money = _m("Money owned: grants + adjustments - charges")
    reserved: Money = _m("Held by open reservations")
    available: Money = _m("balance - reserved + overdraft_limit: the most a new reservation may hold")
    overdraft_limit: Money = _m("How far below zero the balance may go")
    granted: Money = _m("Sum of the grants")
    adjusted: Money = _m("Sum of the adjustments (signed)")
    spent: Money = _m("Charged for customer-context usage")
    system_cost: Money = _m("System-context usage recorded for this tenant (not billed)")
    updated_at: float = Field(description=f"{_AT}; 0 for a tenant without an account")


class AccountResponse(BaseModel):
    data: AccountOut


class AccountsResponse(BaseModel):
    data: list[AccountOut]


class EntryOut(BaseModel):
    seq: int = Field(description="Position in the project's ledger (increasing)")
    id: str
    tenant_id: str
    kind: str = Field(description="grant, adjustment, reservation, confirmation, release or usage")
    amount: Money = _m("Change of the balance")
    hold: Money = _m("Change of the reserved credit")
    balance_after: Money = _m("The balance after this movement")
    reserved_after: Money = _m("The reserved credit after this movement")
    reservation_id: str
    transaction_id: str
    context: str = Field(description="customer or system")
    note: str
    at: float = Field(description=_AT)


class GrantOut(BaseModel):
    entry: EntryOut
    account: AccountOut


class GrantResponse(BaseModel):
    data: GrantOut


class ReservationOut(BaseModel):
    id: str
    tenant_id: str
    transaction_id: str = Field(description="The transaction the confirmation (or late usage) becomes")
    amount: Money = _m("Held")
    status: str = Field(description="held, confirmed, released or expired")
    created_at: float = Field(description=_AT)
    expires_at: float = Field(description=_AT)
    settled_at: float | None = Field(description=f"{_AT}; null while held")
    charged: Money | None = _m("Charged at confirmation; null unless confirmed")
    note: str
    model: str = Field(description="The model of a reservation by model, else empty")
    account: AccountOut | None


class ReservationResponse(BaseModel):
    data: ReservationOut


class UsageRecordOut(BaseModel):
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
    audio_seconds: Money = Field(description="Seconds of audio (a decimal number)")
    cost: Money = _m("Of this line: the price table's, or the cost sent with it")
    cost_source: str = Field(description="price_table:<version>, provider or user")
    trace_id: str
    span_id: str
    at: float = Field(description=_AT)


class TransactionOut(BaseModel):
    id: str
    tenant_id: str
    reservation_id: str
    context: str
    amount: Money = _m("Charged to the balance (0 in system context)")
    released: Money = _m("The part of the hold given back at confirmation")
    at: float = Field(description=_AT)
    usage: list[UsageRecordOut]
    account: AccountOut | None


class TransactionResponse(BaseModel):
    data: TransactionOut


class EntriesPage(BaseModel):
    entries: list[EntryOut]
    next_after: int | None = Field(description="Pass as ?after= for the next page; null at the end")


class EntriesResponse(BaseModel):
    data: EntriesPage


class UsageGroupOut(BaseModel):
    key: str
    requests: int
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    reasoning_tokens: int
    audio_seconds: Money = Field(description="Seconds of audio (a decimal number)")
    cost: Money = _m("Sum of the group's usage lines")


class UsageTotalOut(BaseModel):
    requests: int
    cost: Money = _m("Sum over the groups")
    input_tokens: int
    output_tokens: int


class UsageReportOut(BaseModel):
    group_by: str
    groups: list[UsageGroupOut]
    total: UsageTotalOut


class UsageReportResponse(BaseModel):
    data: UsageReportOut


class VerifyOut(BaseModel):
    ok: bool
    problems: list[str]


class VerifyResponse(BaseModel):
    data: VerifyOut


_CODES = (" The error object also carries `code` (insufficient_credits, reservation_not_found, "
          "reservation_already_confirmed, reservation_expired, reservation_released, idempotency_key_reused, "
          "unknown_price, invalid_request) and its details.")


def credit_errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of a credit route (402 is not among the server's generic statuses)."""
    out = errors(*(s for s in statuses if s != 402))
    for status in out:
        out[status] = {**out[status], "description": out[status]["description"] + _CODES}
    if 402 in statuses:
        out[402] = {"model": ErrorResponse, "description": "Insufficient credits: balance - reserved + overdraft "
                    "limit is less than the amount." + _CODES}
    return out
