"""The latency model: a per-model profile times a deterministic jitter with a slow tail.

A request's seed comes from what changes the answer (so a streamed and a plain call agree); the
jitter is lognormal around 1 with about one request in twenty 1.5-2.4x slower (a busy replica).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Mapping
from typing import Any, Final

from netra_server.demo.fake_openai.models import ModelProfile

__all__ = ["first_token_share", "jitter", "latency_seconds", "seed_of"]


# Parameters that do not change what the model answers (so streamed and plain calls agree).
_NON_SEMANTIC: Final = frozenset(
    {
        "stream",
        "stream_options",
        "user",
        "metadata",
        "store",
        "service_tier",
        "safety_identifier",
        "prompt_cache_key",
        "parallel_tool_calls",
    }
)


def seed_of(body: Mapping[str, Any], salt: str = "") -> int:
    semantic = {k: v for k, v in body.items() if k not in _NON_SEMANTIC}
    raw = json.dumps(semantic, sort_keys=True, separators=(",", ":"), default=str) + salt
    return int.from_bytes(hashlib.sha256(raw.encode()).digest()[:8], "big")


def jitter(seed: int) -> float:
    rng = random.Random(seed ^ 0x5DEECE66D)
    factor = rng.lognormvariate(0.0, 0.18)
    if rng.random() < 0.05:  # a busy replica: the slow tail every real deployment has
        factor *= rng.uniform(1.5, 2.4)
    return factor


def latency_seconds(
    profile: ModelProfile, *, input_tokens: int, output_tokens: int, seed: int, scale: float
) -> float:
    """The simulated time of a request: time to first token plus time per input and output token."""
    ms = (
        profile.ttft_ms
        + profile.ms_per_input_token * input_tokens
        + profile.ms_per_output_token * output_tokens
    )
    return ms / 1000.0 * jitter(seed) * scale


def first_token_share(profile: ModelProfile) -> float:
    """The part of a streamed answer's latency spent before its first chunk."""
    return min(1.0, profile.ttft_ms / max(1.0, profile.ttft_ms + profile.ms_per_output_token * 50))
