"""Public value types: :class:`SpanType` and :class:`UsageModel` (no heavy imports here)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

__all__ = ["SpanType", "UsageModel"]


class SpanType(StrEnum):
    """What a span represents; written in lowercase to ``netra.span.type``."""

    SPAN = "span"
    GENERATION = "generation"
    TOOL = "tool"
    EMBEDDING = "embedding"
    AGENT = "agent"
    USAGE = "usage"

    def __str__(self) -> str:
        return self.value


def _number(name: str, value: object, *, integral: bool = False) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise TypeError(f"UsageModel.{name} must be a number, got {type(value).__name__} {value!r}")
    number: int | float = int(value) if isinstance(value, int) else float(value)
    if isinstance(number, float) and not math.isfinite(number):
        raise ValueError(f"UsageModel.{name} must be a finite number, got {value!r}")
    if number < 0:
        raise ValueError(f"UsageModel.{name} must be >= 0, got {value!r}")
    if integral and not isinstance(value, int):
        raise TypeError(f"UsageModel.{name} must be an int (a token count), got {value!r}")
    return number


@dataclass(frozen=True, slots=True)
class UsageModel:
    """Usage you record yourself with ``span.set_usage([...])``.

    ``model``: the model or resource used; ``usage_type``: e.g. ``"chat"``, ``"embedding"``,
    ``"transcription_minutes"``; ``units_used``: how many units of that type (optional);
    ``cost_in_usd``: what it cost (optional, as in the Netra SDK). Without a cost the server prices the
    entry at ingest from its tokens with the price table (as it prices a traced model call), and when it
    cannot (no tokens, a model without a known price) it marks the span's cost unknown: never $0.

    The token fields are optional and only written when set: give ``input_tokens`` / ``output_tokens``
    (``cached_tokens``: the cached part of the input) for a model call. Without them, ``units_used`` of
    a token kind are tokens: ``chat``, ``completion``, ``tokens``... (split unknown: counted, not
    priced), ``embedding`` / ``input`` / ``prompt`` (input), ``output`` / ``completion_tokens``
    (output), and any kind ending in ``tokens``; see docs/concepts.md.
    """

    model: str
    usage_type: str
    units_used: int | float | None = None
    cost_in_usd: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_tokens: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model:
            raise TypeError(f"UsageModel.model must be a non-empty string, got {self.model!r}")
        if not isinstance(self.usage_type, str) or not self.usage_type:
            raise TypeError(f"UsageModel.usage_type must be a non-empty string, got {self.usage_type!r}")
        if self.units_used is not None:
            object.__setattr__(self, "units_used", _number("units_used", self.units_used))
        if self.cost_in_usd is not None:
            object.__setattr__(self, "cost_in_usd", float(_number("cost_in_usd", self.cost_in_usd)))
        for field in ("input_tokens", "output_tokens", "cached_tokens"):
            value = getattr(self, field)
            if value is not None:
                object.__setattr__(self, field, _number(field, value, integral=True))

    def model_dump(self, *, exclude_none: bool = False) -> dict[str, Any]:
        """The fields as a dict, like the Netra SDK's pydantic ``UsageModel.model_dump()`` (``model``,
        ``usage_type``, ``units_used``, ``cost_in_usd``, then the token fields)."""
        out: dict[str, Any] = {
            "model": self.model,
            "usage_type": self.usage_type,
            "units_used": self.units_used,
            "cost_in_usd": self.cost_in_usd,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_tokens": self.cached_tokens,
        }
        return {k: v for k, v in out.items() if v is not None} if exclude_none else out

    def to_dict(self) -> dict[str, Any]:
        """The JSON object written into the ``netra.usage`` array."""
        out: dict[str, Any] = {"model": self.model, "usage_type": self.usage_type}
        if self.units_used is not None:
            out["units_used"] = self.units_used
        if self.cost_in_usd is not None:
            out["cost_in_usd"] = self.cost_in_usd
        if self.input_tokens is not None:
            out["input_tokens"] = self.input_tokens
        if self.output_tokens is not None:
            out["output_tokens"] = self.output_tokens
        if self.cached_tokens is not None:
            out["cached_tokens"] = self.cached_tokens
        return out

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> UsageModel:
        """Build from a dict with the same keys (unknown keys are an error)."""
        allowed = set(cls.__dataclass_fields__)
        unknown = set(data) - allowed
        if unknown:
            raise TypeError(f"unknown UsageModel keys {sorted(unknown)}; allowed: {sorted(allowed)}")
        return cls(**dict(data))
