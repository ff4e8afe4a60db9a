"""A span's usage and cost, read from its attributes: the promoted columns model, provider, tokens, cost,
cost source, unknown-cost and has-usage flags (:class:`SpanUsage`), with the fallbacks for other
producers of ``docs/design.md`` (older GenAI conventions, OpenInference, ``netra.usage`` items) and the
price table (``netra.pricing``) for a span that has tokens but no cost.

:func:`extract_usage` is what ingest calls for each span (``netra_server.otlp``); it raises
:class:`SpanRejected` for an impossible number (the span is rejected alone). No I/O.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

import orjson

from netra import semconv

__all__ = [
    "INPUT_USAGE_TYPES", "MAX_COST", "MAX_TOKENS", "TOKEN_USAGE_TYPES", "SpanRejected", "SpanUsage",
    "extract_usage", "first_value", "token_direction",
]


class SpanUsage(NamedTuple):
    """The usage columns of one span (named as the columns of ``netra_spans``)."""

    model: str
    provider: str
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    reasoning_tokens: int
    #: The cost in USD as exact decimal text (10 places), None when not known.
    cost: str | None
    #: ``price_table:<version>``, ``provider``, ``user``, ``unknown``, or ``""`` (no usage).
    cost_source: str
    cost_unknown: int
    has_usage: int


#: ``_record(SpanUsage, values)`` builds the record without the generated ``__new__`` (4x faster: it
#: runs for every span ingested); ``values`` are all the fields, in order.
_record = tuple.__new__


_INPUT_KEYS = (
    semconv.GEN_AI_USAGE_INPUT_TOKENS,
    semconv.LEGACY_PROMPT_TOKENS,
    semconv.OPENINFERENCE_PROMPT_TOKENS,
)
_OUTPUT_KEYS = (
    semconv.GEN_AI_USAGE_OUTPUT_TOKENS,
    semconv.LEGACY_COMPLETION_TOKENS,
    semconv.OPENINFERENCE_COMPLETION_TOKENS,
)
_PROVIDER_KEYS = (semconv.GEN_AI_PROVIDER_NAME, "gen_ai.system")
_USAGE_BEARING = frozenset(semconv.USAGE_BEARING_ATTRIBUTES)


def first_value(attrs: dict[str, Any], keys: tuple[str, ...], fallback: dict[str, Any] | None = None) -> str:
    for k in keys:
        v = attrs.get(k)
        if v is not None and v != "":
            return str(v)
    if fallback:
        for k in keys:
            v = fallback.get(k)
            if v is not None and v != "":
                return str(v)
    return ""


#: Largest token count (or ``units_used``) of one span or one usage item: no model call comes near
#: it (context windows are a few million tokens), and with it a sum over billions of spans fits an
#: unsigned 64-bit integer. A span over it is rejected (partial success), never clamped.
MAX_TOKENS = 1_000_000_000
#: Largest cost of one span, in USD: the ``cost`` column is ``Decimal(18, 10)``.
MAX_COST = Decimal("99999999.9999999999")


class SpanRejected(ValueError):
    """A value of a span that cannot be stored as sent: the span is rejected alone (partial success)."""


def _int(v: Any) -> int | None:
    """A count (tokens, units): None when absent; raises :class:`SpanRejected` for a value that is not
    a finite number in ``[0, MAX_TOKENS]`` (a fraction is truncated)."""
    if v is None or isinstance(v, bool):
        return None
    if isinstance(v, int):
        if 0 <= v <= MAX_TOKENS:
            return v
        raise SpanRejected(f"{v} is {'negative' if v < 0 else f'over the {MAX_TOKENS:,} bound'}")
    if isinstance(v, str):
        text = v.strip()
        if not text:
            return None
        try:
            f = float(text)
        except ValueError:
            raise SpanRejected(f"{v[:40]!r} is not a number") from None
    elif isinstance(v, float):
        f = v
    else:
        raise SpanRejected(f"{type(v).__name__} is not a number")
    if f != f or f in (float("inf"), float("-inf")):
        raise SpanRejected(f"{v!r} is not a finite number")
    if f < 0:
        raise SpanRejected(f"{v!r} is negative")
    if f > MAX_TOKENS:
        raise SpanRejected(f"{v!r} is over the {MAX_TOKENS:,} bound")
    return int(f)


def _named_int(v: Any, key: str) -> int | None:
    try:
        return _int(v)
    except SpanRejected as exc:
        raise SpanRejected(f"{key} = {exc}") from None


def _count(attrs: dict[str, Any], key: str) -> int | None:
    """The count ``attrs[key]`` (:func:`_int`), None when absent."""
    v = attrs.get(key)
    if v is None:
        return None
    if type(v) is int and 0 <= v <= MAX_TOKENS:  # most counts, without the general check (a bool is not an int here)
        return v
    return _named_int(v, key)


def _first_int(attrs: dict[str, Any], keys: tuple[str, ...]) -> int | None:
    for k in keys:
        n = _count(attrs, k)
        if n is not None:
            return n
    return None


def _decimal(v: Any, key: str = "cost") -> Decimal | None:
    """A cost in USD: None when absent; raises :class:`SpanRejected` for one that is not a finite
    number in ``[0, MAX_COST]``."""
    if v is None or isinstance(v, bool) or v == "":
        return None
    if isinstance(v, list | dict):
        raise SpanRejected(f"{key} is not a number")
    try:
        d = Decimal(v.strip() if isinstance(v, str) else str(v))
    except (InvalidOperation, ValueError):
        raise SpanRejected(f"{key} = {str(v)[:40]!r} is not a number") from None
    if not d.is_finite():
        raise SpanRejected(f"{key} = {v!r} is not a finite number")
    if d < 0:
        raise SpanRejected(f"{key} = {v!r} is negative")
    if d > MAX_COST:
        raise SpanRejected(f"{key} = {v!r} is over the {MAX_COST} USD bound of one span")
    return d


_COST_Q = Decimal("1e-10")
#: Stands for a cost whose text :func:`_float_cost_text` gave (only compared with None).
_PRICED = Decimal(0)
#: Below this, ``repr`` of a float has no exponent; at or above it (over ``MAX_COST``) the slow path decides.
_FAST_COST_MAX = 1e8


def _float_cost_text(v: float) -> str | None:
    """``_cost_str(_decimal(v))`` of a float cost, without a Decimal, when ``repr(v)`` has no exponent
    and at most 10 decimals (most costs: 0.0001 and up); None otherwise (the caller takes the
    Decimal path, which also raises for a negative, infinite or NaN cost). The same text: padding the
    shortest repr with zeros to 10 decimals is what quantizing its Decimal to 1e-10 gives."""
    if not 0.0 < v < _FAST_COST_MAX:  # (zero and -0.0 too: the Decimal path writes them as 0E-10)
        return None
    text = repr(v)
    dot = text.find(".")
    if dot < 0 or "e" in text:
        return None
    places = len(text) - dot - 1
    if places > 10:
        return None
    return text + "0" * (10 - places)


def _cost_str(d: Decimal, what: str = "cost") -> str:
    if d > MAX_COST:
        raise SpanRejected(f"the {what} {d} USD is over the {MAX_COST} USD bound of one span")
    return str(d.quantize(_COST_Q))


def _parse_usage(raw: Any) -> list[dict[str, Any]]:
    if isinstance(raw, str):
        try:
            raw = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return []
    if isinstance(raw, dict):
        raw = [raw]
    if not isinstance(raw, list):
        return []
    out: list[dict[str, Any]] = []
    for item in raw:
        if isinstance(item, str):
            try:
                item = orjson.loads(item)
            except orjson.JSONDecodeError:
                continue
        if isinstance(item, dict):
            out.append(item)
    return out


def _price(model: str, provider: str, start_ns: int, i: int, o: int, c: int, r: int) -> tuple[Decimal | None, str]:
    from netra.pricing import price_tokens

    at = datetime.fromtimestamp(start_ns / 1e9, tz=UTC) if start_ns > 0 else None
    try:
        cost = price_tokens(
            model, provider=provider or None, input_tokens=i, output_tokens=o,
            cached_input_tokens=min(c, i), reasoning_tokens=min(r, o), at=at,
        )
        if cost.cost is None and provider:
            cost = price_tokens(
                model, provider=None, input_tokens=i, output_tokens=o,
                cached_input_tokens=min(c, i), reasoning_tokens=min(r, o), at=at,
            )
    except (TypeError, ValueError, LookupError):
        return None, "unknown"
    return cost.cost, cost.source


_ITEM_TOKEN_KEYS = ("input_tokens", "output_tokens", "cached_tokens")

#: ``usage_type`` values whose ``units_used`` are tokens of a model call without saying which (the
#: Netra SDK's docs and cookbook record ``usage_type="chat", units_used=total_tokens``). They count in
#: ``token_count``, as input tokens (the split is not known). Another kind is a token kind when it ends
#: in ``token`` / ``tokens`` (e.g. ``"rerank_tokens"``), or names a direction (below).
TOKEN_USAGE_TYPES = frozenset({
    "chat", "chat_completion", "chat_completions", "chat.completions", "completion", "completions",
    "text_completion", "generation", "llm", "text", "token", "tokens", "total_tokens", "responses", "response",
})
#: Kinds whose tokens are all input tokens.
INPUT_USAGE_TYPES = frozenset({"embedding", "embeddings", "input", "prompt"})


def token_direction(usage_type: str) -> str | None:
    """What the ``units_used`` of a ``usage_type`` are: ``"input"`` / ``"output"`` tokens, ``"tokens"``
    (tokens of both directions, split unknown), or ``None`` (not tokens: minutes, pages, requests...).

    In order: a kind of :data:`TOKEN_USAGE_TYPES` is ``"tokens"``; one of :data:`INPUT_USAGE_TYPES`, or
    one containing ``input`` or ``prompt``, is input; one containing ``output`` or ``completion`` is
    output (``"completion_tokens"``); any other kind ending in ``token`` or ``tokens`` is ``"tokens"``."""
    kind = usage_type.strip().lower().replace("-", "_").replace(" ", "_")
    if kind in TOKEN_USAGE_TYPES:
        return "tokens"
    if kind in INPUT_USAGE_TYPES or "input" in kind or "prompt" in kind or "embedding" in kind:
        return "input"
    if "output" in kind or "completion" in kind:
        return "output"
    if kind.endswith(("token", "tokens")):
        return "tokens"
    return None


def _item_tokens(item: dict[str, Any]) -> tuple[int | None, int | None, int | None, int]:
    """Input, output, cached tokens of one ``netra.usage`` item (None: not given) and how many of its
    input tokens have no known direction (the units of a kind like ``chat``)."""
    explicit = [_int(item.get(k)) for k in _ITEM_TOKEN_KEYS]
    if any(v is not None for v in explicit):
        return explicit[0], explicit[1], explicit[2], 0
    units = _int(item.get("units_used"))
    if units is None:
        return None, None, None, 0
    direction = token_direction(str(item.get("usage_type", "")))
    if direction == "input":
        return units, None, None, 0
    if direction == "output":
        return None, units, None, 0
    if direction == "tokens":
        return units, None, None, units
    return None, None, None, 0


def _usage_item_tokens(items: list[dict[str, Any]]) -> tuple[int | None, int | None, int | None, int]:
    """Input, output and cached tokens of ``netra.usage`` items, summed (None: no item gave any), and
    the part of the input tokens whose direction is unknown.

    An item with ``input_tokens`` / ``output_tokens`` / ``cached_tokens`` gives those (its
    ``units_used`` is then not read as tokens). Otherwise its ``units_used`` are tokens when its
    ``usage_type`` is a token kind (:func:`token_direction`): input/prompt/embedding -> input,
    output/completion_tokens -> output, chat/completion/tokens/... -> tokens of an unknown split,
    counted as input. Units of any other kind ("audio_minutes", "requests", "images") are not tokens.
    See docs/concepts.md."""
    i_tok = o_tok = cached = None
    undirected = 0
    for item in items:
        i, o, c, u = _item_tokens(item)
        if i is not None:
            i_tok = (i_tok or 0) + i
        if o is not None:
            o_tok = (o_tok or 0) + o
        if c is not None:
            cached = (cached or 0) + c
        undirected += u
    return i_tok, o_tok, cached, undirected


def _items_cost(items: list[dict[str, Any]], model: str, provider: str, start_ns: int) -> tuple[Decimal | None, str]:
    """The cost of ``netra.usage`` items of which at least one has ``cost_in_usd``: the given costs,
    plus each item without one priced from its own tokens (its model, else the span's) with the price
    table. ``None`` when an item cannot be priced (no tokens, tokens of an unknown split, or a model
    whose price is unknown): never a partial sum shown as the cost."""
    total = Decimal(0)
    sources: set[str] = set()
    for item in items:
        c = _decimal(item.get("cost_in_usd"))
        if c is not None:
            total += c
            sources.add(semconv.COST_SOURCE_USER)
            continue
        i, o, cached, undirected = _item_tokens(item)
        item_model = str(item.get("model") or model)
        if undirected or not (i or o) or not item_model:
            return None, "unknown"
        price, source = _price(item_model, provider, start_ns, i or 0, o or 0, cached or 0, 0)
        if price is None:
            return None, "unknown"
        total += price
        sources.add(source)
    return total, semconv.COST_SOURCE_USER if sources == {semconv.COST_SOURCE_USER} else ",".join(sorted(sources))


_ITEM_NUMBERS = ("units_used", *_ITEM_TOKEN_KEYS)


def _check_usage_items(items: list[dict[str, Any]]) -> None:
    """Raise :class:`SpanRejected` naming the first impossible number of ``netra.usage`` items."""
    for n, item in enumerate(items):
        for k in _ITEM_NUMBERS:
            if k in item:
                _named_int(item[k], f"{semconv.USAGE}[{n}].{k}")
        if "cost_in_usd" in item:
            _decimal(item["cost_in_usd"], f"{semconv.USAGE}[{n}].cost_in_usd")


def _plain_usage(attrs: dict[str, Any]) -> SpanUsage:
    """The same for a span without usage-bearing attributes (it may still name a model)."""
    model = first_value(attrs, (semconv.GEN_AI_RESPONSE_MODEL, semconv.GEN_AI_REQUEST_MODEL))
    cached = _count(attrs, semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS) or 0
    reasoning = _count(attrs, semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS) or 0
    return _record(SpanUsage, (model, first_value(attrs, _PROVIDER_KEYS), 0, 0, cached, reasoning, None, "", 0, 0))


def extract_usage(attrs: dict[str, Any], start_ns: int) -> SpanUsage:
    """The usage columns of a span with attributes ``attrs`` that started at ``start_ns`` (Unix ns: the
    date of the price table); raises :class:`SpanRejected` for an impossible number."""
    if _USAGE_BEARING.isdisjoint(attrs):
        return _plain_usage(attrs)
    get = attrs.get
    usage_items = _parse_usage(get(semconv.USAGE)) if semconv.USAGE in attrs else []
    if usage_items:
        _check_usage_items(usage_items)
    i_tok = _first_int(attrs, _INPUT_KEYS)
    o_tok = _first_int(attrs, _OUTPUT_KEYS)
    cached_tok = _count(attrs, semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS)
    undirected = 0
    if i_tok is None and o_tok is None and usage_items:
        i_tok, o_tok, item_cached, undirected = _usage_item_tokens(usage_items)
        if cached_tok is None:
            cached_tok = item_cached
    i_tok = i_tok or 0
    o_tok = o_tok or 0
    cached = cached_tok or 0
    reasoning = _count(attrs, semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS) or 0
    for what, n in (("input", i_tok), ("output", o_tok), ("cached", cached)):
        if n > MAX_TOKENS:  # items' counts add up
            raise SpanRejected(f"the span's {what} tokens ({n:,}, summed over {semconv.USAGE}) are over the {MAX_TOKENS:,} bound")
    model = first_value(attrs, (semconv.GEN_AI_RESPONSE_MODEL, semconv.GEN_AI_REQUEST_MODEL))
    if not model:
        for item in usage_items:
            if item.get("model"):
                model = str(item["model"])
                break
    provider = first_value(attrs, _PROVIDER_KEYS)

    raw_cost = get(semconv.COST)
    cost_text = _float_cost_text(raw_cost) if type(raw_cost) is float else None
    cost = _decimal(raw_cost, semconv.COST) if cost_text is None else _PRICED
    cost_source = str(get(semconv.COST_SOURCE, "")) if cost is not None else ""
    if cost is None and any(_decimal(item.get("cost_in_usd")) is not None for item in usage_items):
        cost, cost_source = _items_cost(usage_items, model, provider, start_ns)
        if cost is not None and get(semconv.COST_SOURCE):
            cost_source = str(get(semconv.COST_SOURCE))
    elif cost is None and (i_tok or o_tok):
        if model and not undirected:
            cost, cost_source = _price(model, provider, start_ns, i_tok, o_tok, cached, reasoning)
        else:  # no model, or tokens whose input/output split is unknown: not priced, never $0
            cost_source = "unknown"
    elif cost is None and usage_items:  # usage of something without a cost or tokens to price
        cost_source = "unknown"
    cost_unknown = cost is None
    if cost_unknown and not cost_source:
        cost_source = "unknown"
    return _record(SpanUsage, (model, provider, i_tok, o_tok, cached, reasoning,
                               cost_text or (_cost_str(cost) if cost is not None else None), cost_source,
                               int(cost_unknown), 1))
