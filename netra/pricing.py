"""LLM prices: the cost of a call from its model and token counts.

Prices come from `genai-prices <https://pypi.org/project/genai-prices/>`_ (its bundled snapshot; the
network price updater is never started). The SDK and the server use this module, so a span priced in
the process and a span priced at ingest agree to the last digit.

>>> from netra.pricing import calculate_cost
>>> cost = calculate_cost("gpt-4o-mini", input_tokens=1200, output_tokens=300)
>>> cost.cost, cost.source          # doctest: +SKIP
(Decimal('0.00036'), 'price_table:0.2.3')
>>> calculate_cost("my-own-model", input_tokens=10).unknown
True

Token semantics follow OpenAI's usage object: ``input_tokens`` *includes* ``cached_input_tokens`` and
``audio_input_tokens``; ``output_tokens`` *includes* ``reasoning_tokens`` and ``audio_output_tokens``.
Cached input tokens are taken to be text tokens (OpenAI does not split the cache by modality).

An unknown model is never priced at 0: :class:`Cost` then has ``cost=None`` and ``unknown=True``.

Negotiated rates and Azure deployment names are set with :func:`set_price_overrides` (or
``Netra.init(prices=...)``)::

    set_price_overrides({
        "gpt-4o-mini": {"input_per_mtok": "0.12", "output_per_mtok": "0.48"},   # your contract price
        "prod-gpt4o-eastus": {"model": "gpt-4o"},                              # an Azure deployment
    })

Speed: the price of a (provider, model, day) is resolved once through genai-prices and reduced to a
linear formula (genai-prices' flat prices are linear in each token count); after that a price costs a
dictionary look-up and a few ``Decimal`` operations. Tiered prices fall back to genai-prices per call.
``import netra.pricing`` does not import genai-prices (it takes about half a second); the first price
does, or :func:`warm_up`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:  # pragma: no cover
    from genai_prices.types import ModelInfo, Provider

__all__ = [
    "Cost",
    "ModelPrices",
    "PriceOverride",
    "calculate_cost",
    "clear_price_overrides",
    "list_models",
    "price_table_version",
    "price_tokens",
    "price_valid_counts",
    "provider_for_api_url",
    "providers",
    "set_price_overrides",
    "warm_up",
]

_MTOK: Final = Decimal(1_000_000)
_ZERO: Final = Decimal(0)
_CACHE_LIMIT: Final = 4096
_SECONDS_PER_DAY: Final = 86_400


@dataclass(frozen=True, slots=True)
class Cost:
    """The price of one call.

    ``cost`` is in USD, or ``None`` when no price is known for the model (then ``unknown`` is true).
    ``source`` is ``price_table:<genai-prices version>``, ``user`` (an override) or ``unknown``.
    ``model`` and ``provider`` name the price-table entry that matched.
    """

    cost: Decimal | None
    source: str
    model: str | None = None
    provider: str | None = None

    @property
    def unknown(self) -> bool:
        return self.cost is None


@dataclass(frozen=True, slots=True)
class PriceOverride:
    """A user price, per million tokens in USD, or an alias to a price-table model.

    ``model`` (with optional ``provider``) prices the name as that price-table model: use it for Azure
    deployment names and fine-tune aliases. Otherwise ``input_per_mtok`` and ``output_per_mtok`` are
    required; cached and audio rates default to the input/output rates, reasoning to the output rate.
    """

    input_per_mtok: Decimal | None = None
    output_per_mtok: Decimal | None = None
    cached_input_per_mtok: Decimal | None = None
    audio_input_per_mtok: Decimal | None = None
    audio_output_per_mtok: Decimal | None = None
    reasoning_per_mtok: Decimal | None = None
    per_request: Decimal | None = None
    model: str | None = None
    provider: str | None = None

    def __post_init__(self) -> None:
        if self.model is None and (self.input_per_mtok is None or self.output_per_mtok is None):
            raise ValueError(
                "a price override needs either model='<price-table model>' (an alias) "
                "or both input_per_mtok and output_per_mtok"
            )

    @classmethod
    def from_value(cls, value: PriceOverride | Mapping[str, Any]) -> PriceOverride:
        if isinstance(value, PriceOverride):
            return value
        if not isinstance(value, Mapping):
            raise TypeError(f"a price override must be a PriceOverride or a mapping, not {type(value).__name__}")
        known = set(cls.__dataclass_fields__)
        unknown = set(value) - known
        if unknown:
            raise ValueError(
                f"unknown price override field(s) {sorted(unknown)}; expected some of {sorted(known)}"
            )
        kwargs: dict[str, Any] = {}
        for key, raw in value.items():
            if key in ("model", "provider"):
                kwargs[key] = None if raw is None else str(raw)
            else:
                kwargs[key] = _to_decimal(key, raw)
        return cls(**kwargs)


@dataclass(frozen=True, slots=True)
class ModelPrices:
    """A model's current flat prices in USD per million tokens (``None`` where not priced)."""

    provider: str
    model: str
    name: str | None
    input_per_mtok: Decimal | None
    output_per_mtok: Decimal | None
    cached_input_per_mtok: Decimal | None


@dataclass(frozen=True, slots=True)
class _Linear:
    """cost = per_request + sum(count * rate) / 1e6, with rates per million units."""

    per_request: Decimal
    input: Decimal
    cached: Decimal  # marginal: the change when an input token is a cached one
    output: Decimal
    audio_input: Decimal  # marginal over a text input token
    audio_output: Decimal  # marginal over a text output token
    reasoning: Decimal  # marginal over a text output token
    source: str
    model: str
    provider: str

    def price(self, i: int, c: int, o: int, r: int, ai: int, ao: int) -> Decimal:
        total = i * self.input + o * self.output
        if c:
            total += c * self.cached
        if ai:
            total += ai * self.audio_input
        if ao:
            total += ao * self.audio_output
        if r:
            total += r * self.reasoning
        return self.per_request + total / _MTOK


@dataclass(frozen=True, slots=True)
class _Tiered:
    """A price that genai-prices must compute per call (tiered by context size)."""

    provider_obj: Provider
    model_info: ModelInfo
    when: datetime
    source: str

    @property
    def model(self) -> str:
        return self.model_info.id

    @property
    def provider(self) -> str:
        return self.provider_obj.id

    def price(self, i: int, c: int, o: int, r: int, ai: int, ao: int) -> Decimal:
        from genai_prices import Usage

        usage = Usage(
            input_tokens=i,
            cache_read_tokens=c or None,
            output_tokens=o,
            input_audio_tokens=ai or None,
            output_audio_tokens=ao or None,
        )
        model_price = self.model_info.get_prices(self.when)
        return Decimal(model_price.calc_price(usage)["total_price"])


_Resolved = _Linear | _Tiered | None

_lock = threading.Lock()
_cache: dict[tuple[str | None, str, int], _Resolved] = {}
_overrides: dict[str, PriceOverride] = {}
_override_cache: dict[str, _Linear] = {}
_version: str | None = None


def price_table_version() -> str:
    """The version of the genai-prices table in use (what ``netra.cost.source`` names)."""
    global _version
    if _version is None:
        from importlib.metadata import version

        _version = version("genai-prices")
    return _version


def warm_up() -> None:
    """Import genai-prices and load its snapshot now, so the first priced call does not wait for it."""
    from genai_prices.data_snapshot import get_snapshot

    get_snapshot()
    price_table_version()


def set_price_overrides(prices: Mapping[str, PriceOverride | Mapping[str, Any]]) -> None:
    """Replace the user price overrides (keys are model or deployment names, matched exactly)."""
    parsed = {str(name): PriceOverride.from_value(value) for name, value in prices.items()}
    with _lock:
        _overrides.clear()
        _overrides.update(parsed)
        _override_cache.clear()
        _cache.clear()


def clear_price_overrides() -> None:
    """Remove every user price override."""
    set_price_overrides({})


def calculate_cost(
    model: str,
    *,
    provider: str | None = "openai",
    input_tokens: int = 0,
    output_tokens: int = 0,
    cached_input_tokens: int = 0,
    reasoning_tokens: int = 0,
    audio_input_tokens: int = 0,
    audio_output_tokens: int = 0,
    at: datetime | None = None,
    fallback_provider: str | None = None,
) -> Cost:
    """The cost of a call to ``model`` (a :class:`Cost`; ``cost`` is ``None`` if the price is unknown).

    ``provider`` is a genai-prices provider id (``openai``, ``anthropic``, ``azure``, ...) or ``None`` to
    match the model across providers. ``fallback_provider``: the provider to price as when ``provider``
    finds no price (the OpenAI instrumentation passes ``openai`` for an OpenAI-compatible base URL, whose
    embedding models genai-prices cannot match without a provider). ``at`` is the request time (prices
    change over time); default now.
    Token counts must be non-negative integers; ``cached_input_tokens`` and ``audio_input_tokens`` are
    part of ``input_tokens``, ``reasoning_tokens`` and ``audio_output_tokens`` part of ``output_tokens``.
    """
    if not model:
        return Cost(None, "unknown")
    counts = (input_tokens, cached_input_tokens, output_tokens, reasoning_tokens,
              audio_input_tokens, audio_output_tokens)
    for count in counts:
        if count.__class__ is not int:
            if not isinstance(count, int) or isinstance(count, bool):
                raise TypeError(f"token counts must be integers, got {count!r}")
        if count < 0:
            raise ValueError(f"token counts must be non-negative, got {count}")

    if _overrides:
        override = _overrides.get(model)
        if override is not None:
            if override.model is None:
                linear = _override_cache.get(model)
                if linear is None:
                    linear = _linear_from_override(model, override)
                    _override_cache[model] = linear
                return Cost(linear.price(*counts), "user", model, provider)
            model = override.model
            provider = override.provider or provider

    day = int(time.time() // _SECONDS_PER_DAY) if at is None else int(at.timestamp() // _SECONDS_PER_DAY)
    key = (provider, model, day)
    try:
        resolved = _cache[key]
    except KeyError:
        resolved = _resolve(provider, model, at)
        with _lock:
            if len(_cache) >= _CACHE_LIMIT:
                _cache.clear()
            _cache[key] = resolved
    if resolved is None:
        if fallback_provider is not None and fallback_provider != provider:
            return calculate_cost(
                model,
                provider=fallback_provider,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                cached_input_tokens=cached_input_tokens,
                reasoning_tokens=reasoning_tokens,
                audio_input_tokens=audio_input_tokens,
                audio_output_tokens=audio_output_tokens,
                at=at,
            )
        return Cost(None, "unknown", None, provider)
    return Cost(resolved.price(*counts), resolved.source, resolved.model, resolved.provider)


#: The name the instrumentations and the server use; the same function as :func:`calculate_cost`.
price_tokens = calculate_cost


def price_valid_counts(
    model: str,
    provider: str | None,
    fallback_provider: str | None,
    input_tokens: int,
    cached_input_tokens: int,
    output_tokens: int,
    reasoning_tokens: int,
    audio_input_tokens: int,
    audio_output_tokens: int,
) -> tuple[Decimal | None, str]:
    """(cost, source) of counts the caller already checked: non-negative ints, details within their totals.

    The instrumentations' hot path (once per traced call): the same price as :func:`calculate_cost`
    (whose result it is for any other input) without its argument checks and result object.
    """
    if not _overrides and model:
        key = (provider, model, int(time.time() // _SECONDS_PER_DAY))
        resolved = _cache.get(key)
        if resolved is not None:
            return resolved.price(
                input_tokens, cached_input_tokens, output_tokens, reasoning_tokens,
                audio_input_tokens, audio_output_tokens,
            ), resolved.source
    cost = calculate_cost(
        model,
        provider=provider,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cached_input_tokens=cached_input_tokens,
        reasoning_tokens=reasoning_tokens,
        audio_input_tokens=audio_input_tokens,
        audio_output_tokens=audio_output_tokens,
        fallback_provider=fallback_provider,
    )
    return cost.cost, cost.source


def providers() -> frozenset[str]:
    """The provider ids the price table knows (``openai``, ``azure``, ``groq``, ...)."""
    from genai_prices.data_snapshot import get_snapshot

    return frozenset(p.id for p in get_snapshot().providers)


def provider_for_api_url(url: str) -> str | None:
    """The provider whose API lives at ``url`` (``https://api.groq.com/openai/v1`` -> ``groq``), or ``None``.

    Matched with the price table's API URL patterns; a proxy, gateway or local server gives ``None``.
    """
    from genai_prices.data_snapshot import get_snapshot

    try:
        return get_snapshot().find_provider(None, None, url).id
    except LookupError:
        return None


def list_models(provider: str | None = None) -> list[ModelPrices]:
    """The models the price table knows (optionally of one provider), with their current flat prices."""
    from genai_prices.data_snapshot import get_snapshot

    now = datetime.now(UTC)
    out: list[ModelPrices] = []
    for prov in get_snapshot().providers:
        if provider is not None and prov.id != provider:
            continue
        for info in prov.models:
            prices = info.get_prices(now)
            out.append(
                ModelPrices(
                    provider=prov.id,
                    model=info.id,
                    name=info.name,
                    input_per_mtok=_flat(prices, "input_mtok"),
                    output_per_mtok=_flat(prices, "output_mtok"),
                    cached_input_per_mtok=_flat(prices, "cache_read_mtok"),
                )
            )
    return out


# --- internals -------------------------------------------------------------------------------------


def _to_decimal(field: str, raw: object) -> Decimal | None:
    if raw is None:
        return None
    if isinstance(raw, Decimal):
        value = raw
    elif isinstance(raw, int | float | str) and not isinstance(raw, bool):
        try:
            value = Decimal(str(raw))
        except ArithmeticError:
            raise ValueError(f"price override {field}={raw!r} is not a number") from None
    else:
        raise ValueError(f"price override {field}={raw!r} is not a number")
    if not value.is_finite() or value < 0:
        raise ValueError(f"price override {field}={raw!r} must be a non-negative number")
    return value


def _flat(prices: object, attr: str) -> Decimal | None:
    value = getattr(prices, attr, None)
    return value if isinstance(value, Decimal) else None


def _linear_from_override(model: str, o: PriceOverride) -> _Linear:
    assert o.input_per_mtok is not None and o.output_per_mtok is not None
    inp, out = o.input_per_mtok, o.output_per_mtok
    return _Linear(
        per_request=(o.per_request or _ZERO),
        input=inp,
        cached=(o.cached_input_per_mtok if o.cached_input_per_mtok is not None else inp) - inp,
        output=out,
        audio_input=(o.audio_input_per_mtok if o.audio_input_per_mtok is not None else inp) - inp,
        audio_output=(o.audio_output_per_mtok if o.audio_output_per_mtok is not None else out) - out,
        reasoning=(o.reasoning_per_mtok if o.reasoning_per_mtok is not None else out) - out,
        source="user",
        model=model,
        provider=o.provider or "",
    )


def _resolve(provider: str | None, model: str, at: datetime | None) -> _Resolved:
    from genai_prices.data_snapshot import get_snapshot
    from genai_prices.types import TieredPrices

    when = at if at is not None else datetime.now(UTC)
    try:
        prov, info = get_snapshot().find_provider_model(model, None, provider, None)
    except LookupError:
        if provider is None:
            return None
        try:  # an OpenAI-compatible endpoint serving another provider's model
            prov, info = get_snapshot().find_provider_model(model, None, None, None)
        except LookupError:
            return None
    source = f"price_table:{price_table_version()}"
    model_price = info.get_prices(when)
    if any(isinstance(v, TieredPrices) for v in vars(model_price).values()):
        return _Tiered(prov, info, when, source)

    def f(**usage: int) -> Decimal:
        from genai_prices import Usage

        return Decimal(model_price.calc_price(Usage(**usage))["total_price"])

    m = 1_000_000
    base = f(input_tokens=0, output_tokens=0)
    f_in = f(input_tokens=m)
    f_out = f(output_tokens=m)
    return _Linear(
        per_request=base,
        input=f_in - base,
        cached=f(input_tokens=m, cache_read_tokens=m) - f_in,
        output=f_out - base,
        audio_input=f(input_tokens=m, input_audio_tokens=m) - f_in,
        audio_output=f(output_tokens=m, output_audio_tokens=m) - f_out,
        reasoning=f(output_tokens=m, output_reasoning_tokens=m) - f_out,
        source=source,
        model=info.id,
        provider=prov.id,
    )
