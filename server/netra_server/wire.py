"""The JSON shapes of the server's own routes that the usage client does not read, as pydantic models.

The usage answers (``/usage``, ``/sdk``, ``/api/usage/summary``, ``/api/traces/{id}/usage``,
``/trace/usage``) are :mod:`netra.usage.wire`'s models, shared with the client. Here: the error body
(:class:`ErrorResponse`, and :func:`errors`, which builds a route's ``responses=``), the calling key
(``/api/me``), latency percentiles (``/api/latency``, read by the dashboard and alert rules, not by the
client) and API keys (``/api/keys``). The routes build these models and return them as
:class:`~netra_server.responses.ExactJSONResponse`; FastAPI's OpenAPI document is generated from the
same models (``response_model=``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

__all__ = [
    "ApiKey",
    "ApiKeyResponse",
    "ApiKeysResponse",
    "ErrorMessage",
    "ErrorResponse",
    "LatencyResponse",
    "LatencyStats",
    "Me",
    "MeResponse",
    "NewApiKey",
    "NewApiKeyResponse",
    "Role",
    "errors",
]


#: An API key's role (``netra_server.auth.ROLES``).
Role = Literal["admin", "ingest", "read"]


# -- errors ---------------------------------------------------------------------------------------------


class ErrorMessage(BaseModel):
    message: str = Field(description="What went wrong and what to send instead")


class ErrorResponse(BaseModel):
    """Every error answer (4xx, 5xx) of the JSON routes."""

    error: ErrorMessage


_ERRORS: dict[int, str] = {
    400: "Bad input (a time, an id, a query parameter, the body, a cursor); the message says what to send",
    401: "Missing, wrong or revoked API key",
    403: "The key's role may not use this route, or the key is limited to another tenant",
    404: "Not found in this project",
    409: "Conflict with the server's state",
    429: "Overloaded; retry after Retry-After seconds",
    503: "The server is starting or the store is unavailable; retry after Retry-After seconds",
}


def errors(*statuses: int, **descriptions: str) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: each status with :class:`ErrorResponse`; ``descriptions`` (keyed
    ``e404=...``) replace the generic text of a status."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        out[status] = {"model": ErrorResponse, "description": descriptions.get(f"e{status}", _ERRORS[status])}
    return out


# -- the key and latency ------------------------------------------------------------------------


class Me(BaseModel):
    key_id: str
    project_id: str
    organisation_id: str
    project_name: str
    role: Role
    tenant_id: str | None = Field(description="Read key: the only tenant it may read; ingest key: the tenant stamped on every span it sends; null when not limited")


class MeResponse(BaseModel):
    data: Me


class LatencyStats(BaseModel):
    tenant_id: str = Field(description="Empty for spans without a tenant")
    spanCount: int
    errorCount: int = Field(description="Spans with status ERROR")
    errorRate: float = Field(description="errorCount / spanCount, from 0 to 1")
    p50Ms: float = Field(description="Median span duration, milliseconds")
    p95Ms: float = Field(description="95th percentile of span duration, milliseconds")
    p99Ms: float = Field(description="99th percentile of span duration, milliseconds")


class LatencyResponse(BaseModel):
    data: list[LatencyStats]


class ApiKey(BaseModel):
    key_id: str = Field(description="The public part of the key (nk_<key_id>_...)")
    project_id: str
    name: str
    role: Role
    tenant_id: str = Field(description="Read key: the only tenant it may read; ingest key: the tenant stamped on every span it sends; empty when not limited")
    created_at: str = Field(description="UTC, YYYY-MM-DD HH:MM:SS.mmm")
    revoked: bool


class NewApiKey(ApiKey):
    key: str = Field(description="The secret key; shown only in this answer")


class ApiKeysResponse(BaseModel):
    data: list[ApiKey]


class ApiKeyResponse(BaseModel):
    data: ApiKey


class NewApiKeyResponse(BaseModel):
    data: NewApiKey
