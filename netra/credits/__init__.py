"""Tenant credits: prepaid balances, reservations before a call, confirmation with the actual usage.

``Netra.credits`` (after ``Netra.init``) is a :class:`CreditsClient` on the server Netra exports to
(``Netra.async_credits`` the async one); a billing job builds one itself::

    from netra.credits import CreditsClient, InsufficientCredits

    credits = CreditsClient()                      # NETRA_OTLP_ENDPOINT / NETRA_API_KEY
    credits.grant("acme", "50.00", note="March plan")
    try:
        with credits.reservation("acme", model="gpt-4o-mini", max_output_tokens=800) as r:
            client.chat.completions.create(...)    # confirmed with this call's cost at the end
    except InsufficientCredits as exc:
        ...                                         # exc.available, exc.requested

See ``docs/credits.md``. This package imports no ``httpx`` until the first request.
"""

from __future__ import annotations

from netra.credits.client import AsyncCreditsClient, CreditsClient
from netra.credits.errors import (
    CreditsError,
    IdempotencyConflict,
    InsufficientCredits,
    ReservationAlreadyConfirmed,
    ReservationExpired,
    ReservationNotFound,
    ReservationReleased,
    ReservationStateError,
    UnknownPrice,
)
from netra.credits.models import (
    Account,
    Entry,
    Reservation,
    Transaction,
    Usage,
    UsageGroup,
    UsageRecord,
    UsageReport,
)

__all__ = [
    "Account",
    "AsyncCreditsClient",
    "CreditsClient",
    "CreditsError",
    "Entry",
    "IdempotencyConflict",
    "InsufficientCredits",
    "Reservation",
    "ReservationAlreadyConfirmed",
    "ReservationExpired",
    "ReservationNotFound",
    "ReservationReleased",
    "ReservationStateError",
    "Transaction",
    "UnknownPrice",
    "Usage",
    "UsageGroup",
    "UsageRecord",
    "UsageReport",
]
