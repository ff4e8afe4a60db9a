"""Settings that instrumentations read while running under Netra.

Public, stable, cheap to call (no imports, no locks):

- :func:`active` -> ``True`` between ``Netra.init(...)`` and ``Netra.shutdown()``.
- :func:`trace_content_enabled` -> whether prompt / completion text may be recorded. Under Netra this is
  ``Netra.init(trace_content=...)`` (env ``NETRA_TRACE_CONTENT``, default ``True``). When Netra is not
  initialised it returns ``default`` (an instrumentation used without Netra passes its own option).
- :func:`max_content_length` -> the longest text (characters) an instrumentation may record per message
  (``Netra.init(max_content_length=...)``, env ``NETRA_MAX_CONTENT_LENGTH``, default 10 000).
- :func:`openai_stream_usage_enabled` -> whether the OpenAI instrumentation may add
  ``stream_options={"include_usage": True}`` to streamed calls so usage is measured
  (``Netra.init(openai_stream_usage=...)``, default ``True``).

An instrumentation should apply the rule "under Netra, Netra's setting wins; otherwise my own option".
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["active", "max_content_length", "openai_stream_usage_enabled", "trace_content_enabled"]

DEFAULT_MAX_CONTENT_LENGTH = 10_000


@dataclass(frozen=True, slots=True)
class _Runtime:
    trace_content: bool
    max_content_length: int
    openai_stream_usage: bool


_runtime: _Runtime | None = None


def _set(runtime: _Runtime | None) -> None:
    global _runtime
    _runtime = runtime


def active() -> bool:
    """True while Netra is initialised."""
    return _runtime is not None


def trace_content_enabled(default: bool = True) -> bool:
    """May prompt and completion text be recorded? Netra's setting when initialised, else ``default``."""
    runtime = _runtime
    return default if runtime is None else runtime.trace_content


def max_content_length(default: int = DEFAULT_MAX_CONTENT_LENGTH) -> int:
    """Longest text (in characters) to record per message; longer text is truncated."""
    runtime = _runtime
    return default if runtime is None else runtime.max_content_length


def openai_stream_usage_enabled(default: bool = True) -> bool:
    """May the OpenAI instrumentation request usage on streamed calls (``include_usage``)?"""
    runtime = _runtime
    return default if runtime is None else runtime.openai_stream_usage


def truncate(text: str, limit: int | None = None) -> str:
    """Cut ``text`` to :func:`max_content_length` characters (a marker says how much was cut)."""
    limit = max_content_length() if limit is None else limit
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…[truncated {len(text) - limit} chars]"
