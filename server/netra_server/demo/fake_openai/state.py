"""The mutable state of one endpoint: the prompt cache, the rate limits and the usage served."""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from netra_server.demo.fake_openai.errors import APIError
from netra_server.demo.fake_openai.models import FakeOpenAIConfig

__all__ = ["State"]


@dataclass(slots=True)
class _ModelStats:
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0


class State:
    """Mutable state of one endpoint: sequence numbers, the prompt cache, rate limits, stats."""

    _CACHE_ENTRIES: Final = 200_000

    def __init__(self, config: FakeOpenAIConfig) -> None:
        self.config = config
        self.lock = threading.Lock()
        self.prefix_cache: OrderedDict[str, None] = OrderedDict()
        self.calls: dict[str, deque[float]] = {}
        self.stats: dict[str, _ModelStats] = {}
        self.errors: dict[int, int] = {}

    def cached_prefix(self, pieces: Sequence[str]) -> int:
        """OpenAI-style prompt caching: prompts of 1,024+ tokens, in 128-token increments."""
        if len(pieces) < 1024:
            return 0
        hasher = hashlib.sha256()
        boundaries: list[tuple[int, str]] = []
        for i, piece in enumerate(pieces, start=1):
            hasher.update(piece.encode("utf-8", "surrogatepass") + b"\x00")
            if i >= 1024 and (i - 1024) % 128 == 0:
                boundaries.append((i, hasher.copy().hexdigest()))
        cached = 0
        with self.lock:
            for n, digest in boundaries:
                if digest in self.prefix_cache:
                    cached = n
                    self.prefix_cache.move_to_end(digest)
                else:
                    self.prefix_cache[digest] = None
            while len(self.prefix_cache) > self._CACHE_ENTRIES:
                self.prefix_cache.popitem(last=False)
        # the last token of the prompt is never served from the cache
        return min(cached, len(pieces) - 1)

    def admit(self, key: str) -> tuple[int, int]:
        """Count a request against the key's per-minute limit; (limit, remaining) or raise 429."""
        rpm = self.config.requests_per_minute
        if rpm is None:
            return 10_000, 9_999
        now = time.monotonic()
        with self.lock:
            window = self.calls.setdefault(key, deque())
            while window and now - window[0] >= 60.0:
                window.popleft()
            if len(window) >= rpm:
                retry = max(1, math.ceil(60.0 - (now - window[0])))
                raise APIError(
                    429,
                    f"Rate limit reached for requests per minute (RPM): Limit {rpm}, Used {len(window)}, "
                    f"Requested 1. Please try again in {retry}s.",
                    "requests",
                    "rate_limit_exceeded",
                    headers={
                        "retry-after": str(retry),
                        "x-ratelimit-limit-requests": str(rpm),
                        "x-ratelimit-remaining-requests": "0",
                        "x-ratelimit-reset-requests": f"{retry}s",
                    },
                )
            window.append(now)
            return rpm, rpm - len(window)

    def record(self, model: str, usage: Mapping[str, Any]) -> None:
        with self.lock:
            s = self.stats.setdefault(model, _ModelStats())
            s.requests += 1
            s.prompt_tokens += int(usage.get("prompt_tokens", 0))
            s.completion_tokens += int(usage.get("completion_tokens", 0))
            s.cached_tokens += int((usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0))
            s.reasoning_tokens += int(
                (usage.get("completion_tokens_details") or {}).get("reasoning_tokens", 0)
            )

    def record_error(self, status: int) -> None:
        with self.lock:
            self.errors[status] = self.errors.get(status, 0) + 1

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            models = {
                m: {
                    "requests": s.requests,
                    "prompt_tokens": s.prompt_tokens,
                    "completion_tokens": s.completion_tokens,
                    "cached_tokens": s.cached_tokens,
                    "reasoning_tokens": s.reasoning_tokens,
                }
                for m, s in self.stats.items()
            }
            return {"models": models, "errors": {str(k): v for k, v in self.errors.items()}}
