"""Typed errors of the usage client.

Every failure raises one of these; nothing is swallowed. Catch :class:`NetraUsageError` for all of them.

``NetraUsageError``
  ``APIStatusError`` (the server answered with an error status; ``status_code``, ``server_message``)
    ``BadRequestError`` (400/422), ``AuthenticationError`` (401) and ``PermissionDeniedError`` (403),
    ``NotFoundError`` (404), ``RateLimitError`` (429), ``ServerError`` (5xx)
  ``NetworkError`` (no answer: connection refused or reset, body cut short)
    ``TimeoutError`` (also a builtin :class:`TimeoutError`)
  ``InvalidResponseError`` (the answer is not the JSON shape the wire API promises)
  ``PaginationError`` (the server repeated a cursor or promised a page it did not give)
"""

from __future__ import annotations

import builtins


class NetraUsageError(Exception):
    """Base class of every error the usage client raises."""

    def __init__(self, message: str, *, method: str | None = None, url: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.method = method
        self.url = url

    def __str__(self) -> str:
        return self.message


class APIStatusError(NetraUsageError):
    """The server answered with an HTTP error status (after any retries)."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        server_message: str | None = None,
        body: str | None = None,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(message, method=method, url=url)
        self.status_code = status_code
        #: ``error.message`` from the server's ``{"error": {"message": ...}}`` body, when it sent one.
        self.server_message = server_message
        #: The start of the raw response body (at most 2,000 characters), for debugging.
        self.body = body


class BadRequestError(APIStatusError):
    """HTTP 400/422: the server rejected the request; ``server_message`` says why."""


class AuthenticationError(APIStatusError):
    """HTTP 401: the server did not accept the API key (missing, wrong, or revoked)."""


class PermissionDeniedError(AuthenticationError):
    """HTTP 403: the key is valid but may not read this (another project, or a tenant-limited key)."""


class NotFoundError(APIStatusError):
    """HTTP 404 where "not found" is not an answer the method documents (e.g. a wrong base URL)."""


class RateLimitError(APIStatusError):
    """HTTP 429 after all retries (or a Retry-After longer than the client will wait)."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int = 429,
        retry_after: float | None = None,
        server_message: str | None = None,
        body: str | None = None,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(
            message, status_code=status_code, server_message=server_message, body=body, method=method, url=url
        )
        #: Seconds the server asked to wait (from Retry-After), if it said.
        self.retry_after = retry_after


class ServerError(APIStatusError):
    """HTTP 5xx after all retries."""


class NetworkError(NetraUsageError):
    """No complete answer from the server: connection refused or reset, or a body cut short."""


class TimeoutError(NetworkError, builtins.TimeoutError):
    """The server did not answer within the client's ``timeout`` (after all retries)."""


class InvalidResponseError(NetraUsageError):
    """The server answered 2xx, but the body is not the JSON the wire API promises."""


class PaginationError(NetraUsageError):
    """The server broke the pagination contract: a repeated cursor, or ``hasNextPage`` with no cursor."""
