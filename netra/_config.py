"""``Netra.init`` arguments and environment variables resolved into one :class:`NetraConfig`.

Precedence for each setting: the ``Netra.init`` argument, then ``NETRA_*``, then the standard ``OTEL_*``
variable, then the default.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from netra import _env
from netra._env import ConfigError, env_bool, parse_headers
from netra.config import DEFAULT_MAX_CONTENT_LENGTH

logger = logging.getLogger("netra")

DEFAULT_ENDPOINT = _env.DEFAULT_ENDPOINT
TRACES_PATH = _env.TRACES_PATH
DEFAULT_EXPORT_TIMEOUT_S = 5.0
DEFAULT_MAX_QUEUE_SIZE = 32_768  # spans; see netra/_exporter.py and docs/sdk.md ("Export queue")
DEFAULT_MAX_QUEUE_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_EXPORT_BATCH_SIZE = 512
DEFAULT_SCHEDULE_DELAY_MS = 1000.0

__all__ = ["ConfigError", "NetraConfig", "env_bool", "parse_headers", "resolve", "traces_url"]


def _env_number(name: str, default: float, *, minimum: float = 0.0) -> float:
    return _env.env_number(name, default, minimum=minimum)


def traces_url(endpoint: str) -> str:
    """``http://host:4318`` -> ``http://host:4318/v1/traces`` (an endpoint already ending so is kept)."""
    base = endpoint.rstrip("/")
    if base.endswith(TRACES_PATH):
        return base
    return base + TRACES_PATH


@dataclass(frozen=True)
class NetraConfig:
    app_name: str | None
    environment: str | None
    endpoint: str
    traces_endpoint: str
    headers: dict[str, str]
    api_key: str | None
    trace_content: bool
    max_content_length: int
    disable_batch: bool
    resource_attributes: dict[str, Any]
    blocked_spans: tuple[str, ...]
    debug_mode: bool
    openai_stream_usage: bool
    max_queue_size: int
    max_queue_bytes: int
    max_export_batch_size: int
    schedule_delay_ms: float
    export_timeout_s: float | None
    instruments: frozenset[str] | None
    block_instruments: frozenset[str] = field(default_factory=frozenset)


def resolve(arguments: Mapping[str, Any]) -> NetraConfig:
    """``Netra.init``'s arguments, by name and as the caller gave them (its signature is where they are
    declared; each is read here where it is interpreted), resolved with the environment.
    ``prices`` and ``span_exporter`` are objects, not settings: :func:`netra._runtime.start` takes them."""
    a = arguments
    env = os.environ
    base, explicit_traces_endpoint = _env.endpoint(a["endpoint"])
    merged_headers = _env.headers()
    merged_headers.update(parse_headers(a["headers"], "Netra.init(headers=...)"))
    key = a["api_key"] or _env.api_key()
    if key:
        merged_headers["x-api-key"] = key
    else:
        key = merged_headers.get("x-api-key")

    trace_content = a["trace_content"]
    content = trace_content if trace_content is not None else env_bool("NETRA_TRACE_CONTENT", True)
    max_content_length = a["max_content_length"]
    if max_content_length is None:
        max_len = int(_env_number("NETRA_MAX_CONTENT_LENGTH", DEFAULT_MAX_CONTENT_LENGTH, minimum=1))
    elif isinstance(max_content_length, int) and max_content_length > 0:
        max_len = max_content_length
    else:
        raise ConfigError(f"max_content_length must be a positive int, got {max_content_length!r}")

    max_queue_size = a["max_queue_size"]
    if max_queue_size is None:
        queue = int(_env_number("OTEL_BSP_MAX_QUEUE_SIZE", DEFAULT_MAX_QUEUE_SIZE, minimum=1))
    elif isinstance(max_queue_size, int) and max_queue_size > 0:
        queue = max_queue_size
    else:
        raise ConfigError(f"max_queue_size must be a positive int, got {max_queue_size!r}")
    max_queue_bytes = a["max_queue_bytes"]
    if max_queue_bytes is None:
        queue_bytes = int(_env_number("NETRA_MAX_QUEUE_BYTES", DEFAULT_MAX_QUEUE_BYTES, minimum=1))
    elif isinstance(max_queue_bytes, int) and not isinstance(max_queue_bytes, bool) and max_queue_bytes > 0:
        queue_bytes = max_queue_bytes
    else:
        raise ConfigError(f"max_queue_bytes must be a positive int (bytes), got {max_queue_bytes!r}")
    batch = int(_env_number("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", DEFAULT_MAX_EXPORT_BATCH_SIZE, minimum=1))
    batch = min(batch, queue)

    export_timeout = a["export_timeout"]
    if export_timeout is not None:
        if export_timeout <= 0:
            raise ConfigError(f"export_timeout must be > 0 seconds, got {export_timeout!r}")
        timeout: float | None = float(export_timeout)
    elif env.get("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT") or env.get("OTEL_EXPORTER_OTLP_TIMEOUT"):
        timeout = None  # the OTLP exporter reads the standard variables itself
    else:
        timeout = DEFAULT_EXPORT_TIMEOUT_S

    blocked: tuple[str, ...] = ()
    blocked_spans = a["blocked_spans"]
    if blocked_spans is not None:
        if isinstance(blocked_spans, str):
            raise ConfigError("blocked_spans must be a list of span names or patterns, not a single string")
        blocked = tuple(str(b) for b in blocked_spans)

    def _names(values: Iterable[Any] | None, arg: str) -> frozenset[str] | None:
        if values is None:
            return None
        if isinstance(values, str):
            raise ConfigError(f"{arg} must be a set of InstrumentSet values, e.g. {{InstrumentSet.OPENAI}}")
        return frozenset(str(getattr(v, "value", v)).lower() for v in values)

    return NetraConfig(
        app_name=a["app_name"] or env.get("NETRA_APP_NAME") or None,
        environment=a["environment"] or env.get("NETRA_ENV") or None,
        endpoint=base.rstrip("/"),
        traces_endpoint=explicit_traces_endpoint or traces_url(base),
        headers=merged_headers,
        api_key=key,
        trace_content=content,
        max_content_length=max_len,
        disable_batch=a["disable_batch"],
        resource_attributes=dict(a["resource_attributes"] or {}),
        blocked_spans=blocked,
        debug_mode=a["debug_mode"] or env_bool("NETRA_DEBUG", False),
        openai_stream_usage=a["openai_stream_usage"],
        max_queue_size=queue,
        max_queue_bytes=queue_bytes,
        max_export_batch_size=batch,
        schedule_delay_ms=_env_number("OTEL_BSP_SCHEDULE_DELAY", DEFAULT_SCHEDULE_DELAY_MS, minimum=1),
        export_timeout_s=timeout,
        instruments=_names(a["instruments"], "instruments"),
        block_instruments=_names(a["block_instruments"], "block_instruments") or frozenset(),
    )
