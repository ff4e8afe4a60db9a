"""Typed errors of the credits client.

They are :class:`netra.usage.APIStatusError` subclasses (so ``except NetraUsageError`` still catches
everything); ``code`` is the server's error code.

``CreditsError``
  ``InsufficientCredits`` (402: the account cannot cover the amount; ``available``, ``requested``)
  ``ReservationNotFound`` (404)
  ``ReservationStateError`` (409; ``reservation_id``, ``transaction_id``)
    ``ReservationAlreadyConfirmed``, ``ReservationExpired``, ``ReservationReleased``
  ``IdempotencyConflict`` (409: a key reused for another request)
  ``UnknownPrice`` (400: no price for the model and no cost sent)
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from netra.usage.errors import APIStatusError

__all__ = [
    "CreditsError",
    "IdempotencyConflict",
    "InsufficientCredits",
    "ReservationAlreadyConfirmed",
    "ReservationExpired",
    "ReservationNotFound",
    "ReservationReleased",
    "ReservationStateError",
    "UnknownPrice",
    "from_status_error",
]


class CreditsError(APIStatusError):
    """The server refused a credits operation; ``code`` says why (``message`` says what to do)."""

    code = "credit_error"

    def __init__(self, message: str, *, details: dict[str, Any], status_code: int, **kw: Any) -> None:
        super().__init__(message, status_code=status_code, **kw)
        self.details = details


class InsufficientCredits(CreditsError):
    code = "insufficient_credits"

    @property
    def tenant_id(self) -> str:
        return str(self.details.get("tenant_id", ""))

    @property
    def available(self) -> Decimal:
        return Decimal(str(self.details.get("available", "0")))

    @property
    def requested(self) -> Decimal:
        return Decimal(str(self.details.get("requested", "0")))


class ReservationNotFound(CreditsError):
    code = "reservation_not_found"


class ReservationStateError(CreditsError):
    @property
    def reservation_id(self) -> str:
        return str(self.details.get("reservation_id", ""))

    @property
    def transaction_id(self) -> str:
        return str(self.details.get("transaction_id", ""))


class ReservationAlreadyConfirmed(ReservationStateError):
    code = "reservation_already_confirmed"


class ReservationExpired(ReservationStateError):
    code = "reservation_expired"


class ReservationReleased(ReservationStateError):
    code = "reservation_released"


class IdempotencyConflict(CreditsError):
    code = "idempotency_key_reused"


class UnknownPrice(CreditsError):
    code = "unknown_price"


_BY_CODE: dict[str, type[CreditsError]] = {
    cls.code: cls
    for cls in (InsufficientCredits, ReservationNotFound, ReservationAlreadyConfirmed, ReservationExpired,
                ReservationReleased, IdempotencyConflict, UnknownPrice)
}


def from_status_error(exc: APIStatusError) -> APIStatusError:
    """The typed credits error for a server answer with a known ``code``, else ``exc`` itself."""
    try:
        body = json.loads(exc.body or "")
        error = body["error"]
        code = error.get("code")
    except (ValueError, KeyError, TypeError, AttributeError):
        return exc
    cls = _BY_CODE.get(code) if isinstance(code, str) else None
    if cls is None:
        return exc
    details = {k: v for k, v in error.items() if k not in ("message", "code")}
    return cls(str(error.get("message") or exc.message), details=details, status_code=exc.status_code,
               server_message=exc.server_message, body=exc.body, method=exc.method, url=exc.url)
