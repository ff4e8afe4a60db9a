"""Read usage, traces and spans back from a Netra server.

``Netra.usage`` (after ``Netra.init``) is a :class:`UsageClient` using the SDK's endpoint and key; a
billing job that does not trace builds one itself::

    from netra.usage import UsageClient

    with UsageClient() as usage:  # NETRA_OTLP_ENDPOINT / NETRA_API_KEY
        tenant = usage.get_tenant_usage("acme", "2025-01-01T00:00:00Z", "2025-02-01T00:00:00Z")

This package imports no ``httpx`` until the first request.
"""

from __future__ import annotations

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
from netra.usage.models import (
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

__all__ = [
    "APIStatusError",
    "AsyncUsageClient",
    "AuthenticationError",
    "BadRequestError",
    "InvalidResponseError",
    "NetraUsageError",
    "NetworkError",
    "NotFoundError",
    "PaginationError",
    "PermissionDeniedError",
    "RateLimitError",
    "ServerError",
    "SessionUsageData",
    "SpanOwnUsage",
    "SpanUsage",
    "SpansPage",
    "TenantUsageData",
    "TimeoutError",
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
