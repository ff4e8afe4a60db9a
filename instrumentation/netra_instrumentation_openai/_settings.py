"""Options of the instrumentation, and the rule "under Netra, Netra's setting wins; otherwise mine"."""

from __future__ import annotations

import os
from dataclasses import dataclass
from types import ModuleType
from typing import Final

CAPTURE_CONTENT_ENV: Final = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
DEFAULT_MAX_CONTENT_LENGTH: Final = 10_000


@dataclass(frozen=True, slots=True)
class Settings:
    """What one call may record.

    ``capture_content``: record prompts and completions (off: no message text anywhere on the span).
    ``max_content_length``: the longest text (characters) recorded per message part.
    ``request_stream_usage``: add ``stream_options={"include_usage": True}`` to streamed chat and
    completion calls that did not set ``stream_options`` (the extra usage chunk is hidden from the caller).
    """

    capture_content: bool = False
    max_content_length: int = DEFAULT_MAX_CONTENT_LENGTH
    request_stream_usage: bool = True


def _env_bool(name: str) -> bool | None:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return None
    return raw.strip().lower() in ("1", "true", "yes", "on")


def own_settings(
    capture_content: bool | None, max_content_length: int | None, request_stream_usage: bool | None
) -> Settings:
    """The instrumentor's own settings: explicit arguments, else the environment, else the defaults."""
    if capture_content is None:
        capture_content = bool(_env_bool(CAPTURE_CONTENT_ENV))
    if max_content_length is None:
        max_content_length = DEFAULT_MAX_CONTENT_LENGTH
    if not isinstance(max_content_length, int) or isinstance(max_content_length, bool) or max_content_length < 0:
        raise ValueError(f"max_content_length must be a non-negative int, got {max_content_length!r}")
    if request_stream_usage is None:
        request_stream_usage = True
    return Settings(bool(capture_content), max_content_length, bool(request_stream_usage))


def _netra_config() -> ModuleType | None:
    try:
        from netra import config
    except Exception:  # netra's config module is optional for this package
        return None
    return config


class SettingsSource:
    """Gives the settings for one call: Netra's while ``Netra.init`` is active, else the instrumentor's own.

    Reading costs a few attribute look-ups (Netra's settings are read per call, so ``Netra.init`` after
    ``instrument()`` still applies).
    """

    __slots__ = ("_cached", "_config", "_own")

    def __init__(self, own: Settings) -> None:
        self._own = own
        self._config = _netra_config()
        self._cached: tuple[object, Settings] | None = None  # (Netra's runtime settings object, ours)

    def get(self) -> Settings:
        config = self._config
        if config is None or not config.active():
            return self._own
        runtime = getattr(config, "_runtime", None)  # replaced whole by each Netra.init / shutdown
        cached = self._cached
        if cached is not None and cached[0] is runtime:
            return cached[1]
        settings = Settings(
            config.trace_content_enabled(self._own.capture_content),
            config.max_content_length(self._own.max_content_length),
            config.openai_stream_usage_enabled(self._own.request_stream_usage),
        )
        if runtime is not None:
            self._cached = (runtime, settings)
        return settings
