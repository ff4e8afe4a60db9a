"""Price credit usage with the price table the spans use (:mod:`netra.pricing`).

Token usage is priced by :func:`netra.pricing.calculate_cost`, the function the OpenAI
instrumentation and the server's ingest use, so a usage line and the span of the same call agree to
the last digit. Audio seconds (speech and transcription models priced per audio hour, e.g.
``whisper-1``) are priced by genai-prices itself, the same snapshot :mod:`netra.pricing` reads (it
has no per-second rates of its own); user price overrides do not apply to audio seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from .errors import InvalidCreditRequest, UnknownPrice

__all__ = ["PricedLine", "UsageLine", "price_line"]

#: Money kept to 10 decimal places (the spans' ``Decimal(18, 10)``).
MONEY_PLACES = Decimal("1e-10")


@dataclass(frozen=True, slots=True)
class UsageLine:
    """One model call (or a batch of calls of one model) to charge."""

    model: str
    provider: str | None = "openai"
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    audio_seconds: Decimal = Decimal(0)
    #: The cost, when the caller knows it (a span's ``gen_ai.usage.cost``); else priced here.
    cost: Decimal | None = None
    cost_source: str | None = None
    trace_id: str = ""
    span_id: str = ""


@dataclass(frozen=True, slots=True)
class PricedLine:
    line: UsageLine
    cost: Decimal
    source: str


def price_line(line: UsageLine) -> PricedLine:
    """The line with its cost: the given one, or the price table's; raises :class:`UnknownPrice`."""
    if line.cached_tokens > line.input_tokens:
        raise InvalidCreditRequest(
            f"usage of {line.model!r}: cached tokens ({line.cached_tokens}) are part of the input tokens "
            f"({line.input_tokens}) and cannot be more"
        )
    if line.reasoning_tokens > line.output_tokens:
        raise InvalidCreditRequest(
            f"usage of {line.model!r}: reasoning tokens ({line.reasoning_tokens}) are part of the output "
            f"tokens ({line.output_tokens}) and cannot be more"
        )
    if line.cost is not None:
        return PricedLine(line, line.cost.quantize(MONEY_PLACES), line.cost_source or "user")
    from netra.pricing import calculate_cost, price_table_version

    if line.audio_seconds:
        from genai_prices import Usage, calc_price

        try:
            calc = calc_price(
                Usage(
                    input_tokens=line.input_tokens or None, output_tokens=line.output_tokens or None,
                    cache_read_tokens=line.cached_tokens or None, audio_seconds=float(line.audio_seconds),
                ),
                model_ref=line.model, provider_id=line.provider,
            )
        except LookupError:
            raise _unknown(line) from None
        return PricedLine(line, Decimal(calc.total_price).quantize(MONEY_PLACES),
                          f"price_table:{price_table_version()}")
    cost = calculate_cost(
        line.model, provider=line.provider, input_tokens=line.input_tokens, output_tokens=line.output_tokens,
        cached_input_tokens=line.cached_tokens, reasoning_tokens=line.reasoning_tokens,
    )
    if cost.cost is None:
        raise _unknown(line)
    return PricedLine(line, cost.cost.quantize(MONEY_PLACES), cost.source)


def _unknown(line: UsageLine) -> UnknownPrice:
    return UnknownPrice(
        f"no price is known for model {line.model!r} (provider {line.provider!r}); send its cost with the "
        f"usage (\"cost\": \"0.0123\") or set a price override on the server (Netra price overrides)",
        model=line.model,
    )


def estimate(model: str, provider: str | None, input_tokens: int, max_output_tokens: int) -> Decimal:
    """The most a call can cost: ``input_tokens`` in, ``max_output_tokens`` out (for a reservation)."""
    return price_line(UsageLine(model=model, provider=provider, input_tokens=input_tokens,
                                output_tokens=max_output_tokens)).cost
