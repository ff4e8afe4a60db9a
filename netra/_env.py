"""The one reader of Netra's environment variables, shared by ``Netra.init`` and the usage client.

Every ``NETRA_*`` / ``OTEL_*`` setting is read here, so ``Netra.init`` and ``netra.usage.UsageClient``
always agree on what a variable means and on whether its value is usable.

Behaviour on a bad value:

- **Headers** (``NETRA_HEADERS``, ``OTEL_EXPORTER_OTLP_HEADERS``) carry credentials: an entry that is not
  ``name=value`` raises :class:`ConfigError` naming the variable, the entry and the format. Skipping it
  would send requests without the key and fail later with a 401 that points nowhere near the cause.
- **Endpoints** that are not ``http(s)://`` URLs raise :class:`ConfigError` too.
- **Tuning knobs** (booleans, numbers such as ``OTEL_BSP_MAX_QUEUE_SIZE``) are logged and the default is
  used: a typo there must not stop an application from starting.

Precedence, wherever a setting has several sources: the explicit argument, then ``NETRA_*``, then the
standard ``OTEL_*`` variable, then the default.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from urllib.parse import unquote

logger = logging.getLogger("netra")

__all__ = [
    "API_KEY",
    "DEFAULT_ENDPOINT",
    "HEADERS",
    "OTLP_ENDPOINT",
    "ConfigError",
    "api_key",
    "endpoint",
    "env_bool",
    "env_number",
    "headers",
    "parse_headers",
]

DEFAULT_ENDPOINT = "http://localhost:4318"
TRACES_PATH = "/v1/traces"

API_KEY = "NETRA_API_KEY"
OTLP_ENDPOINT = "NETRA_OTLP_ENDPOINT"
HEADERS = "NETRA_HEADERS"
OTEL_ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
OTEL_TRACES_ENDPOINT = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
OTEL_HEADERS = "OTEL_EXPORTER_OTLP_HEADERS"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class ConfigError(ValueError):
    """A ``Netra.init`` / ``UsageClient`` argument or an environment variable has a value Netra cannot use.

    The message names the setting and what to write instead.
    """


def _raw(name: str) -> str | None:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return None
    return raw


def env_bool(name: str, default: bool) -> bool:
    """A ``true/false`` variable; an unusable value is logged and ``default`` used."""
    raw = _raw(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    logger.warning("Netra: ignoring %s=%r (use true or false); using %s", name, raw, default)
    return default


def env_number(name: str, default: float, *, minimum: float = 0.0) -> float:
    """A numeric variable; an unusable value is logged and ``default`` used."""
    raw = _raw(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        logger.warning("Netra: ignoring %s=%r (not a number); using %s", name, raw, default)
        return default
    if not value >= minimum:  # also rejects nan
        logger.warning("Netra: ignoring %s=%r (must be >= %s); using %s", name, raw, minimum, default)
        return default
    return value


def parse_headers(value: str | Mapping[str, str] | None, source: str = "headers") -> dict[str, str]:
    """``"k=v,k2=v2"`` (URL-encoded, the ``OTEL_EXPORTER_OTLP_HEADERS`` format) or a mapping -> dict.

    Names are lower-cased; empty items (``"a=1,,b=2"``) are allowed. An entry without ``=`` or without a
    name raises :class:`ConfigError` that names ``source``.
    """
    if value is None:
        return {}
    if isinstance(value, Mapping):
        out: dict[str, str] = {}
        for k, v in value.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise ConfigError(f"{source}: header names and values must be strings, got {k!r}: {v!r}")
            out[k.strip().lower()] = v
        return out
    if not isinstance(value, str):
        raise ConfigError(f"{source} must be a 'k=v,k2=v2' string or a mapping, got {type(value).__name__}")
    out = {}
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, val = item.partition("=")
        name = unquote(name).strip()
        if not sep or not name:
            raise ConfigError(
                f"{source} has an entry {_redacted(item)!r} that is not 'name=value'; write e.g. "
                f"{source}='x-api-key=KEY,x-team=a%20b' (commas separate headers, values are URL-encoded)"
            )
        out[name.lower()] = unquote(val).strip()
    return out


def _redacted(item: str) -> str:
    """A malformed entry may be a bare secret: show only its start."""
    return item if len(item) <= 8 else item[:4] + "…"


def headers() -> dict[str, str]:
    """``OTEL_EXPORTER_OTLP_HEADERS`` overlaid with ``NETRA_HEADERS`` (raises :class:`ConfigError`)."""
    merged = parse_headers(_raw(OTEL_HEADERS), OTEL_HEADERS)
    merged.update(parse_headers(_raw(HEADERS), HEADERS))
    return merged


def api_key() -> str | None:
    return _raw(API_KEY)


def endpoint(given: str | None = None) -> tuple[str, str | None]:
    """(base endpoint, full traces URL if the environment gave one) -- raises :class:`ConfigError`.

    ``given`` (an argument) wins, then ``NETRA_OTLP_ENDPOINT``, then ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``
    (a full URL, used as is per the OTLP spec), then ``OTEL_EXPORTER_OTLP_ENDPOINT``, then
    ``http://localhost:4318``.
    """
    traces: str | None = None
    source = "endpoint"
    if given:
        base = given.strip()
    elif (value := _raw(OTLP_ENDPOINT)) is not None:
        base, source = value.strip(), OTLP_ENDPOINT
    elif (value := _raw(OTEL_TRACES_ENDPOINT)) is not None:
        traces, source = value.strip(), OTEL_TRACES_ENDPOINT
        base = traces.removesuffix("/").removesuffix(TRACES_PATH)
    elif (value := _raw(OTEL_ENDPOINT)) is not None:
        base, source = value.strip(), OTEL_ENDPOINT
    else:
        base = DEFAULT_ENDPOINT
    if not base.startswith(("http://", "https://")):
        raise ConfigError(
            f"Netra {source} {base!r} must start with http:// or https:// (e.g. http://localhost:4318)"
        )
    return base, traces
