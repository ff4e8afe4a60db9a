"""Where the usage client connects and what it sends: arguments first, then environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote

DEFAULT_ENDPOINT = "http://localhost:4318"
ENV_API_KEY = "NETRA_API_KEY"
ENV_OTLP_ENDPOINT = "NETRA_OTLP_ENDPOINT"
ENV_HEADERS = "NETRA_HEADERS"
API_KEY_HEADER = "x-api-key"

_ENDPOINT_SUFFIXES = ("/v1/traces", "/telemetry")


def base_url_from_endpoint(otlp_endpoint: str) -> str:
    """The usage API's base URL for an OTLP endpoint.

    The OTLP endpoint with a trailing ``/v1/traces`` and then a trailing ``/telemetry`` removed
    (and no trailing slash): ``https://api.example.com/telemetry`` → ``https://api.example.com``,
    ``http://localhost:4318/v1/traces`` → ``http://localhost:4318``.
    """
    url = otlp_endpoint.strip()
    if not url:
        raise ValueError("the OTLP endpoint is empty; pass e.g. 'http://localhost:4318'")
    if "://" not in url:
        raise ValueError(f"the OTLP endpoint {otlp_endpoint!r} has no scheme; write e.g. 'http://{url}'")
    url = url.rstrip("/")
    for suffix in _ENDPOINT_SUFFIXES:
        if url.endswith(suffix):
            url = url[: -len(suffix)].rstrip("/")
    return url


def parse_headers(text: str) -> dict[str, str]:
    """Parse ``k1=v1,k2=v2`` (the OTEL_EXPORTER_OTLP_HEADERS format; values URL-decoded)."""
    headers: dict[str, str] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        key = unquote(key).strip()
        if not sep or not key:
            raise ValueError(
                f"{ENV_HEADERS} has an entry {item!r} that is not 'key=value'; "
                f"write e.g. {ENV_HEADERS}='x-api-key=KEY,x-team=a%20b'"
            )
        headers[key.lower()] = unquote(value).strip()
    return headers


@dataclass(frozen=True)
class Settings:
    base_url: str
    headers: dict[str, str]
    timeout: float
    max_retries: int
    backoff_factor: float
    max_retry_wait: float

    @property
    def has_api_key(self) -> bool:
        return bool(self.headers.get(API_KEY_HEADER) or self.headers.get("authorization"))


def resolve(
    base_url: str | None,
    api_key: str | None,
    headers: Mapping[str, str] | None,
    timeout: float,
    max_retries: int,
    backoff_factor: float,
    max_retry_wait: float,
    user_agent: str,
) -> Settings:
    """Arguments win over ``NETRA_*`` environment variables, which win over the defaults."""
    if base_url is None:
        endpoint = os.environ.get(ENV_OTLP_ENDPOINT) or DEFAULT_ENDPOINT
        base_url = base_url_from_endpoint(endpoint)
    else:
        base_url = base_url_from_endpoint(base_url)
    if timeout <= 0:
        raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
    if max_retries < 0:
        raise ValueError(f"max_retries must be 0 or more, not {max_retries!r}")
    if backoff_factor < 0 or max_retry_wait < 0:
        raise ValueError("backoff_factor and max_retry_wait must be 0 or more")

    merged: dict[str, str] = {"user-agent": user_agent, "accept": "application/json"}
    env_headers = os.environ.get(ENV_HEADERS)
    if env_headers:
        merged.update(parse_headers(env_headers))
    if headers:
        merged.update({k.lower(): v for k, v in headers.items()})
    key = api_key if api_key is not None else os.environ.get(ENV_API_KEY)
    if key:
        merged[API_KEY_HEADER] = key
    return Settings(
        base_url=base_url,
        headers=merged,
        timeout=float(timeout),
        max_retries=int(max_retries),
        backoff_factor=float(backoff_factor),
        max_retry_wait=float(max_retry_wait),
    )
