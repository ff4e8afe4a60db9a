"""What one HTTP answer of the usage API means, shared by the sync and async clients (no I/O).

:func:`interpret` turns a status, headers and body into a value or a typed error and says whether a
retry may help; :func:`retry_delay` says how long to wait before it.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any

from netra.usage._calls import Call
from netra.usage._config import ENV_API_KEY, ENV_OTLP_ENDPOINT, Settings
from netra.usage._read import json_dumps
from netra.usage.errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    InvalidResponseError,
    NetraUsageError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
)

_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_BODY_SNIPPET = 2000


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one HTTP answer means: a decoded body, a documented not-found, or an error."""

    body: Any = None
    not_found: bool = False
    error: NetraUsageError | None = None
    retryable: bool = False
    retry_after: float | None = None


def _server_message(body: Any, text: str) -> str | None:
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, Mapping) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(error, str):
            return error
        for key in ("detail", "message"):
            value = body.get(key)
            if isinstance(value, str):
                return value
            if value is not None:
                return json_dumps(value)[:500]
    snippet = text.strip()
    return snippet[:300] if snippet else None


def _is_resource_not_found(body: Any, server_message: str | None) -> bool:
    """A 404 that says "this session/tenant/trace does not exist", not "no such route".

    The Netra server answers both with ``{"error": {"message": ...}}``; a route miss says only the
    generic "Not Found" (as do proxies and other servers, often without the error object).
    """
    if not isinstance(body, Mapping) or "error" not in body:
        return False
    return (server_message or "").strip().lower() not in ("", "not found")


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); ``None`` if absent or bad."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def interpret(
    call: Call[Any],
    settings: Settings,
    status: int,
    headers: Mapping[str, str],
    content: bytes,
    url: str,
    attempts: int,
) -> Outcome:
    """Read one HTTP answer. ``attempts`` counts this one, for the messages."""
    text = content.decode("utf-8", errors="replace")
    try:
        # Fractional numbers as Decimal: money stays exact (the models read it as Decimal); integers
        # stay int. No other number the models read is fractional.
        body: Any = json.loads(text, parse_float=Decimal) if text.strip() else None
        decoded = text.strip() != ""
    except ValueError:
        body, decoded = None, False

    if 200 <= status < 300:
        if not decoded:
            # Empty or cut-short JSON: a proxy or a dying server; a read is safe to repeat.
            return Outcome(
                error=InvalidResponseError(
                    f"the answer to {call.what} ({call.method} {url}, HTTP {status}) is not valid JSON "
                    f"after {attempts} attempt(s): {text[:200]!r}",
                    method=call.method,
                    url=url,
                ),
                retryable=True,
            )
        return Outcome(body=body)

    server_message = _server_message(body, text)
    detail = f": {server_message}" if server_message else ""
    common: dict[str, Any] = {
        "status_code": status,
        "server_message": server_message,
        "body": text[:_BODY_SNIPPET],
        "method": call.method,
        "url": url,
    }
    if status == 404 and call.none_if_not_found and _is_resource_not_found(body, server_message):
        return Outcome(not_found=True)
    if status in (400, 422):
        return Outcome(
            error=BadRequestError(f"the server rejected the request for {call.what} (HTTP {status}){detail}", **common)
        )
    if status == 401:
        if settings.has_api_key:
            hint = (
                f"check {ENV_API_KEY} (or api_key=): the key must exist on this server and belong to the "
                f"project you are reading"
            )
        else:
            hint = f"no API key was sent: set {ENV_API_KEY} or pass api_key="
        return Outcome(
            error=AuthenticationError(
                f"the Netra server at {settings.base_url} rejected the API key (HTTP 401){detail}; {hint}",
                **common,
            )
        )
    if status == 403:
        return Outcome(
            error=PermissionDeniedError(
                f"the API key may not read {call.what} (HTTP 403){detail}; a key reads only its own project, "
                f"and a tenant-limited key only its tenant: check {ENV_API_KEY} / the key's project",
                **common,
            )
        )
    if status == 404:
        slash = (
            " (An id in this request contains '/', sent escaped as %2F. The Netra server takes it, but a proxy "
            "in front of it that decodes %2F before passing the request on makes another path: have the "
            "proxy pass the path unchanged, e.g. nginx `proxy_pass http://host:port;` without a URI part.)"
            if "%2F" in call.path
            else ""
        )
        return Outcome(
            error=NotFoundError(
                f"{call.method} {url} answered 404{detail}. Is {settings.base_url} the Netra server's base URL? "
                f"It is the OTLP endpoint without '/telemetry' or '/v1/traces' ({ENV_OTLP_ENDPOINT} or base_url=)"
                f"{slash}",
                **common,
            )
        )
    retry_after = parse_retry_after(headers.get("retry-after"))
    if status == 429:
        waited = f"; it asked to wait {retry_after:g} s" if retry_after is not None else ""
        return Outcome(
            error=RateLimitError(
                f"the server is rate limiting {call.what} (HTTP 429) after {attempts} attempt(s){waited}{detail}",
                retry_after=retry_after,
                **common,
            ),
            retryable=True,
            retry_after=retry_after,
        )
    if status >= 500 or status == 408:
        return Outcome(
            error=ServerError(
                f"the server failed on {call.what} with HTTP {status} after {attempts} attempt(s){detail}",
                **common,
            ),
            retryable=status in _RETRY_STATUSES,
            retry_after=retry_after,
        )
    if 300 <= status < 400:
        location = headers.get("location", "?")
        return Outcome(
            error=APIStatusError(
                f"{call.method} {url} answered a redirect (HTTP {status}) to {location}; set base_url "
                f"(or {ENV_OTLP_ENDPOINT}) to the server's final address",
                **common,
            )
        )
    return Outcome(error=APIStatusError(f"{call.method} {url} answered HTTP {status}{detail}", **common))


def retry_delay(attempt: int, retry_after: float | None, settings: Settings) -> float | None:
    """Seconds to wait before retry number ``attempt + 1``, or ``None`` when waiting is not worth it.

    Exponential backoff with jitter (``backoff_factor * 2**attempt``, times 0.5-1.5, capped at
    ``max_retry_wait``); a server's Retry-After is honoured as given, unless it is longer than
    ``max_retry_wait``, in which case the error is raised at once instead of sleeping for it.
    """
    if retry_after is not None:
        if retry_after > settings.options.max_retry_wait:
            return None
        return retry_after
    base = settings.options.backoff_factor * (2**attempt)
    return min(settings.options.max_retry_wait, base * random.uniform(0.5, 1.5))
