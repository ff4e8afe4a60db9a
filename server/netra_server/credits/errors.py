"""Typed errors of the credit ledger, each with the HTTP status and the stable ``code`` the API sends.

The API answers ``{"error": {"message": ..., "code": ..., <details>}}``; the SDK's
``netra.credits`` maps ``code`` back to the exception of the same name.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

__all__ = [
    "CreditError",
    "IdempotencyConflict",
    "InsufficientCredits",
    "InvalidCreditRequest",
    "ReservationAlreadyConfirmed",
    "ReservationExpired",
    "ReservationNotFound",
    "ReservationReleased",
    "UnknownPrice",
]


def _fmt(d: Decimal) -> str:
    return format(d.normalize(), "f") if d else "0"


class CreditError(Exception):
    """Base class: ``status`` is the HTTP status, ``code`` the machine-readable error code."""

    status = 400
    code = "credit_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "code": self.code, **self.details}}


class InvalidCreditRequest(CreditError):
    """Bad input (an amount that is not a positive decimal, a TTL out of range, ...)."""

    status = 400
    code = "invalid_request"


class UnknownPrice(CreditError):
    """Usage of a model whose price is not in the price table, without an explicit cost."""

    status = 400
    code = "unknown_price"


class InsufficientCredits(CreditError):
    """The account cannot cover the amount (balance - reserved + overdraft limit < amount)."""

    status = 402
    code = "insufficient_credits"

    def __init__(self, tenant_id: str, requested: Decimal, available: Decimal) -> None:
        super().__init__(
            f"tenant {tenant_id!r} has {_fmt(available)} USD of credit available and {_fmt(requested)} USD was "
            f"requested; grant credits (`netra credits grant {tenant_id} AMOUNT`) or raise its overdraft limit",
            tenant_id=tenant_id, requested=_fmt(requested), available=_fmt(available),
        )
        self.tenant_id = tenant_id
        self.requested = requested
        self.available = available


class ReservationNotFound(CreditError):
    status = 404
    code = "reservation_not_found"

    def __init__(self, reservation_id: str) -> None:
        super().__init__(f"no reservation {reservation_id!r} in this project", reservation_id=reservation_id)


class _ReservationState(CreditError):
    status = 409

    def __init__(self, message: str, reservation_id: str, transaction_id: str) -> None:
        super().__init__(message, reservation_id=reservation_id, transaction_id=transaction_id)
        self.reservation_id = reservation_id
        self.transaction_id = transaction_id


class ReservationAlreadyConfirmed(_ReservationState):
    code = "reservation_already_confirmed"


class ReservationExpired(_ReservationState):
    code = "reservation_expired"


class ReservationReleased(_ReservationState):
    code = "reservation_released"


class IdempotencyConflict(CreditError):
    """An idempotency key reused for a different request."""

    status = 409
    code = "idempotency_key_reused"
