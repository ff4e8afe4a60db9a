"""The simulated models (name, snapshot, latency profile) and the endpoint's configuration."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal

__all__ = ["DEFAULT_MODELS", "FakeOpenAIConfig", "ModelProfile"]


@dataclass(frozen=True, slots=True)
class ModelProfile:
    """A simulated model: what it answers as and how fast.

    ``snapshot`` is the dated model name the API reports in ``model`` (as OpenAI answers
    ``gpt-4o-mini-2024-07-18`` to a request for ``gpt-4o-mini``). Latency figures are in
    milliseconds and approximate public measurements of the real models; they are a simulation.
    """

    id: str
    snapshot: str
    kind: Literal["chat", "embedding"] = "chat"
    ttft_ms: float = 350.0
    ms_per_output_token: float = 9.0
    ms_per_input_token: float = 0.02
    context_window: int = 128_000
    reasoning: bool = False
    dimensions: int = 0
    created: int = 1_715_367_049


def _chat(model_id: str, snapshot: str, ttft: float, per_token: float, **kw: Any) -> ModelProfile:
    return ModelProfile(model_id, snapshot, "chat", ttft, per_token, **kw)


def _embedding(model_id: str, dims: int) -> ModelProfile:
    return ModelProfile(
        model_id, model_id, "embedding", 60.0, 0.0, 0.01, context_window=8_191, dimensions=dims
    )


DEFAULT_MODELS: Final[Mapping[str, ModelProfile]] = {
    p.id: p
    for p in (
        _chat("gpt-4o", "gpt-4o-2024-08-06", 400.0, 7.5),
        _chat("gpt-4o-mini", "gpt-4o-mini-2024-07-18", 350.0, 10.0),
        _chat("gpt-4.1", "gpt-4.1-2025-04-14", 420.0, 10.0, context_window=1_047_576),
        _chat("gpt-4.1-mini", "gpt-4.1-mini-2025-04-14", 330.0, 8.0, context_window=1_047_576),
        _chat("gpt-4.1-nano", "gpt-4.1-nano-2025-04-14", 250.0, 5.0, context_window=1_047_576),
        _chat("gpt-5", "gpt-5-2025-08-07", 900.0, 12.0, context_window=400_000, reasoning=True),
        _chat("gpt-5-mini", "gpt-5-mini-2025-08-07", 700.0, 8.0, context_window=400_000, reasoning=True),
        _chat("o4-mini", "o4-mini-2025-04-16", 700.0, 8.0, context_window=200_000, reasoning=True),
        _chat("gpt-4", "gpt-4-0613", 550.0, 25.0, context_window=8_192),
        _chat("gpt-3.5-turbo", "gpt-3.5-turbo-0125", 250.0, 7.0, context_window=16_385),
        _embedding("text-embedding-3-small", 1536),
        _embedding("text-embedding-3-large", 3072),
        _embedding("text-embedding-ada-002", 1536),
    )
}


@dataclass(frozen=True, slots=True)
class FakeOpenAIConfig:
    """How the simulated endpoint behaves.

    ``latency_scale`` multiplies every simulated delay (0: answer at once; 1: realistic).
    ``api_key``: when set, requests must send it (``Authorization: Bearer ...``), else 401.
    ``requests_per_minute``: when set, each API key gets that many requests per sliding minute, then
    429 with ``retry-after`` (as OpenAI's rate limits answer).
    """

    latency_scale: float = 1.0
    api_key: str | None = None
    requests_per_minute: int | None = None
    models: Mapping[str, ModelProfile] = field(default_factory=lambda: dict(DEFAULT_MODELS))

    def __post_init__(self) -> None:
        if self.latency_scale < 0 or not math.isfinite(self.latency_scale):
            raise ValueError(f"latency_scale must be a finite number >= 0, got {self.latency_scale!r}")
        if self.requests_per_minute is not None and self.requests_per_minute < 1:
            raise ValueError("requests_per_minute must be at least 1 (or None for no limit)")

    def profile(self, model: str) -> ModelProfile | None:
        """The profile for a model name or one of its snapshots."""
        found = self.models.get(model)
        if found is not None:
            return found
        for p in self.models.values():
            if p.snapshot == model:
                return replace(p, id=model)
        return None
