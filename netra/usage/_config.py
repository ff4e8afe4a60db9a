"""Where the usage client connects and what it sends: arguments first, then environment variables."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from netra import _env
from netra._env import ConfigError

if TYPE_CHECKING:
    from netra.usage.options import ClientOptions

DEFAULT_ENDPOINT = _env.DEFAULT_ENDPOINT
ENV_API_KEY = _env.API_KEY
ENV_OTLP_ENDPOINT = _env.OTLP_ENDPOINT
ENV_HEADERS = _env.HEADERS
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
        raise ConfigError("the OTLP endpoint is empty; pass e.g. 'http://localhost:4318'")
    if "://" not in url:
        raise ConfigError(f"the OTLP endpoint {otlp_endpoint!r} has no scheme; write e.g. 'http://{url}'")
    url = url.rstrip("/")
    for suffix in _ENDPOINT_SUFFIXES:
        if url.endswith(suffix):
            url = url[: -len(suffix)].rstrip("/")
    return url


CONSISTENCY_HEADER = "x-netra-consistency"


def parse_headers(text: str) -> dict[str, str]:
    """Parse ``k1=v1,k2=v2`` as ``NETRA_HEADERS`` (the same reader as ``Netra.init``; raises :class:`ConfigError`)."""
    return _env.parse_headers(text, ENV_HEADERS)


@dataclass(frozen=True, slots=True)
class Settings:
    """:class:`ClientOptions` resolved against the environment: where requests go and what they carry."""

    base_url: str
    headers: dict[str, str]
    options: ClientOptions

    @property
    def has_api_key(self) -> bool:
        return bool(self.headers.get(API_KEY_HEADER) or self.headers.get("authorization"))


def resolve(options: ClientOptions, user_agent: str) -> Settings:
    """Arguments win over the environment, read exactly as ``Netra.init`` reads it (:mod:`netra._env`).

    The endpoint: ``NETRA_OTLP_ENDPOINT``, then ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, then
    ``OTEL_EXPORTER_OTLP_ENDPOINT``; headers: ``OTEL_EXPORTER_OTLP_HEADERS`` overlaid with ``NETRA_HEADERS``;
    the key: ``NETRA_API_KEY``. A malformed value raises :class:`ConfigError` (a ``ValueError``).
    """
    base_url = base_url_from_endpoint(options.base_url if options.base_url is not None else _env.endpoint()[0])
    # read-your-writes: every span acknowledged before the call is counted (the server's default for
    # other clients is bounded staleness; headers={"x-netra-consistency": "bounded"} opts into it)
    merged: dict[str, str] = {"user-agent": user_agent, "accept": "application/json", CONSISTENCY_HEADER: "strong"}
    merged.update(_env.headers())
    if options.headers:
        merged.update({k.lower(): v for k, v in options.headers.items()})
    key = options.api_key if options.api_key is not None else _env.api_key()
    if key:
        merged[API_KEY_HEADER] = key
    return Settings(base_url=base_url, headers=merged, options=options)
