"""Read usage, traces and spans back from a Netra server.

``Netra.usage`` (after ``Netra.init``) is a :class:`UsageClient` using the SDK's endpoint and key; a
billing job that does not trace builds one itself::

    from netra.usage import UsageClient

    with UsageClient() as usage:  # NETRA_OTLP_ENDPOINT / NETRA_API_KEY
        tenant = usage.get_tenant_usage("acme", "2025-01-01T00:00:00Z", "2025-02-01T00:00:00Z")

This package imports no ``httpx`` until the first request, and no ``pydantic`` until the first answer
(the result models, :mod:`netra.usage.models`, are pydantic models with the published netra-sdk's
field names: ``total_cost`` is a float, ``total_cost_usd`` the exact Decimal to invoice with). The
JSON the server answers is defined in :mod:`netra.usage.wire`, which the server builds its answers
with and the client reads them by.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from netra.usage._config import base_url_from_endpoint
from netra.usage.client import AsyncUsageClient, UsageClient
from netra.usage.errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    InvalidResponseError,
    NetraUsageError,
    NetworkError,
    NotFoundError,
    PaginationError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    TimeoutError,
)
from netra.usage.options import ClientOptions, SpanQuery, TraceQuery

if TYPE_CHECKING:
    from netra.usage.models import (
        CallUsage,
        CallUsageResult,
        ModelUsage,
        SessionUsageData,
        SpanOwnUsage,
        SpansPage,
        SpanUsage,
        TenantUsageData,
        TracesPage,
        TraceSpan,
        TraceSummary,
        TraceUsage,
        UsageGroup,
        UsageRollup,
        UsageSummary,
        UsageTotals,
    )

#: The result models live in ``netra.usage.models``, which imports pydantic: loaded on first use.
_MODELS = frozenset({
    "CallUsage", "CallUsageResult", "ModelUsage", "SessionUsageData", "SpanOwnUsage", "SpanUsage", "SpansPage",
    "TenantUsageData", "TraceSpan", "TraceSummary", "TraceUsage", "TracesPage", "UsageGroup", "UsageRollup",
    "UsageSummary", "UsageTotals",
})


def __getattr__(name: str) -> Any:
    if name in _MODELS:
        from netra.usage import models

        return getattr(models, name)
    raise AttributeError(f"module 'netra.usage' has no attribute {name!r}")


__all__ = [
    "APIStatusError",
    "AsyncUsageClient",
    "AuthenticationError",
    "BadRequestError",
    "CallUsage",
    "CallUsageResult",
    "ClientOptions",
    "InvalidResponseError",
    "ModelUsage",
    "NetraUsageError",
    "NetworkError",
    "NotFoundError",
    "PaginationError",
    "PermissionDeniedError",
    "RateLimitError",
    "ServerError",
    "SessionUsageData",
    "SpanOwnUsage",
    "SpanQuery",
    "SpanUsage",
    "SpansPage",
    "TenantUsageData",
    "TimeoutError",
    "TraceQuery",
    "TraceSpan",
    "TraceSummary",
    "TraceUsage",
    "TracesPage",
    "UsageClient",
    "UsageGroup",
    "UsageRollup",
    "UsageSummary",
    "UsageTotals",
    "base_url_from_endpoint",
]
