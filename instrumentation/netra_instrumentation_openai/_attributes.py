"""What a call records: the endpoints, request parameters, response fields, tokens and cost.

Everything here reads plain request bodies (``FinalRequestOptions.json_data``, already free of
``NotGiven``/``Omit``) and the openai response models through :func:`field`, which never raises and
never triggers pydantic's slow attribute-miss path.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as ga
from opentelemetry.semconv._incubating.attributes import openai_attributes as oa
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE

from netra import semconv as sc

from . import _content

logger = logging.getLogger("netra_instrumentation_openai")

Attributes = dict[str, Any]

# Span kinds of work, as written to ``netra.span.type``.
GENERATION: Final = "generation"
EMBEDDING: Final = "embedding"

# Stream outcomes (``netra.stream.outcome``).
COMPLETED: Final = "completed"
CLOSED_EARLY: Final = "closed_early"
ABANDONED: Final = "abandoned"
ERROR: Final = "error"
CANCELLED: Final = "cancelled"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One traced OpenAI route (``POST <path>``)."""

    kind: str  # chat, responses, completions, embeddings, images, transcriptions, speech
    operation: str  # gen_ai.operation.name
    span_type: str  # netra.span.type
    output_type: str | None  # gen_ai.output.type when the route fixes it
    stream_usage_option: bool  # the route takes stream_options={"include_usage": true}
    reports_tokens: bool  # a successful call normally carries token usage


ENDPOINTS: Final[Mapping[str, Endpoint]] = {
    "/chat/completions": Endpoint("chat", "chat", GENERATION, None, True, True),
    "/responses": Endpoint("responses", "chat", GENERATION, None, False, True),
    "/completions": Endpoint("completions", "text_completion", GENERATION, None, True, True),
    "/embeddings": Endpoint("embeddings", "embeddings", EMBEDDING, None, False, True),
    "/images/generations": Endpoint("images", "generate_content", GENERATION, "image", False, False),
    "/audio/transcriptions": Endpoint("transcriptions", "generate_content", GENERATION, "text", False, False),
    "/audio/translations": Endpoint("transcriptions", "generate_content", GENERATION, "text", False, False),
    "/audio/speech": Endpoint("speech", "generate_content", GENERATION, "speech", False, False),
}

_ONCE: set[str] = set()
_ONCE_LIMIT: Final = 256


def log_failure(where: str, exc: BaseException) -> None:
    """Log an instrumentation failure once per (place, exception type); the host call is unaffected."""
    key = f"{where}:{type(exc).__qualname__}"
    if key in _ONCE:
        return
    if len(_ONCE) < _ONCE_LIMIT:
        _ONCE.add(key)
    logger.warning(
        "netra OpenAI instrumentation: %s failed (%s: %s). The OpenAI call itself is unaffected; "
        "this message is logged once. Please report it with the traceback.",
        where,
        type(exc).__name__,
        exc,
        exc_info=exc,
    )


def field(obj: Any, name: str) -> Any:
    """``obj.name`` for an openai model (or ``obj[name]`` for a dict); ``None`` when absent. Never raises."""
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(name)
    values = getattr(obj, "__dict__", None)
    if values is None:
        return None
    value = values.get(name)
    if value is None:
        extra = getattr(obj, "__pydantic_extra__", None)
        if extra:
            return extra.get(name)
    return value


_SCALARS: Final = (str, bool, int, float)



# generation routes: body key -> attribute, copied when the value is a scalar
_SCALAR_PARAMS: Final = {
    "temperature": ga.GEN_AI_REQUEST_TEMPERATURE,
    "top_p": ga.GEN_AI_REQUEST_TOP_P,
    "frequency_penalty": ga.GEN_AI_REQUEST_FREQUENCY_PENALTY,
    "presence_penalty": ga.GEN_AI_REQUEST_PRESENCE_PENALTY,
    "seed": ga.GEN_AI_REQUEST_SEED,
    "max_tokens": ga.GEN_AI_REQUEST_MAX_TOKENS,
    "max_completion_tokens": ga.GEN_AI_REQUEST_MAX_TOKENS,
    "max_output_tokens": ga.GEN_AI_REQUEST_MAX_TOKENS,
    "service_tier": oa.OPENAI_REQUEST_SERVICE_TIER,
}
_SPECIAL_PARAMS: Final = frozenset(("stop", "n", "response_format", "text", "stream", "encoding_format", "dimensions"))


def request_attributes(endpoint: Endpoint, body: Mapping[str, Any], attrs: Attributes) -> None:
    """Add the request parameters the caller actually sent (no defaults invented) to ``attrs``.

    One pass over the (few) keys of the body: the cost does not grow with the parameters we know.
    """
    model = body.get("model")
    if model.__class__ is str:
        attrs[sc.GEN_AI_REQUEST_MODEL] = model
    generation = endpoint.kind in ("chat", "responses", "completions")
    special = False
    if generation:
        scalars = _SCALAR_PARAMS
        for key, value in body.items():
            attr = scalars.get(key)
            if attr is not None:
                if value is not None and isinstance(value, _SCALARS):
                    attrs[attr] = value
            elif key in _SPECIAL_PARAMS:
                special = True
    else:
        special = True
    if not special:
        return
    kind = endpoint.kind
    if generation:
        stop = body.get("stop")
        if isinstance(stop, str):
            attrs[ga.GEN_AI_REQUEST_STOP_SEQUENCES] = (stop,)
        elif isinstance(stop, list | tuple) and stop and all(isinstance(s, str) for s in stop):
            attrs[ga.GEN_AI_REQUEST_STOP_SEQUENCES] = tuple(stop)
        output_type = _output_type(body)
        if output_type is not None:
            attrs[ga.GEN_AI_OUTPUT_TYPE] = output_type
    elif kind == "embeddings":
        encoding = body.get("encoding_format")
        if isinstance(encoding, str):
            attrs[ga.GEN_AI_REQUEST_ENCODING_FORMATS] = (encoding,)
        dimensions = body.get("dimensions")
        if isinstance(dimensions, int):
            attrs[ga.GEN_AI_EMBEDDINGS_DIMENSION_COUNT] = dimensions
    elif endpoint.output_type is not None:
        attrs[ga.GEN_AI_OUTPUT_TYPE] = endpoint.output_type
    n = body.get("n")
    if isinstance(n, int) and not isinstance(n, bool) and n != 1:
        attrs[ga.GEN_AI_REQUEST_CHOICE_COUNT] = n
    if body.get("stream") is True:
        attrs[ga.GEN_AI_REQUEST_STREAM] = True


def _output_type(body: Mapping[str, Any]) -> str | None:
    fmt = body.get("response_format")
    if fmt is None:
        text = body.get("text")
        fmt = text.get("format") if isinstance(text, Mapping) else None
    kind = fmt.get("type") if isinstance(fmt, Mapping) else None
    if kind in ("json_object", "json_schema"):
        return "json"
    if kind == "text":
        return "text"
    return None


def input_content(endpoint: Endpoint, body: Mapping[str, Any], limit: int, attrs: Attributes) -> None:
    """Prompt text (content capture on only)."""
    kind = endpoint.kind
    system: list[_content.Part] = []
    messages: list[_content.Message] = []
    if kind == "chat":
        system, messages = _content.chat_input(body.get("messages"), limit)
    elif kind == "responses":
        system, messages = _content.responses_input(body.get("input"), body.get("instructions"), limit)
    elif kind == "completions":
        messages = _content.prompt_input(body.get("prompt"), limit)
    elif kind in ("embeddings", "speech"):
        messages = _content.prompt_input(body.get("input"), limit)
    elif kind == "images":
        messages = _content.prompt_input(body.get("prompt"), limit)
    elif kind == "transcriptions":
        messages = _content.prompt_input(body.get("prompt"), limit)
    if system:
        attrs[sc.GEN_AI_SYSTEM_INSTRUCTIONS] = _content.dumps(system)
    if messages:
        attrs[sc.GEN_AI_INPUT_MESSAGES] = _content.dumps(messages)


@dataclass(slots=True)
class Tokens:
    """Token usage in OpenAI's terms: ``input`` includes cached and audio input, ``output`` reasoning and audio.

    A detail count is ``None`` when the response did not report it.
    """

    input: int = 0
    output: int = 0
    cached: int | None = None
    reasoning: int | None = None
    audio_input: int | None = None
    audio_output: int | None = None
    provider_cost: float | None = None


def _int(value: Any) -> int:
    return value if value.__class__ is int and value >= 0 else 0


def _opt(value: Any) -> int | None:
    return value if value.__class__ is int and value >= 0 else None


def tokens_from_usage(usage: Any) -> Tokens | None:
    """Normalise the usage object of any OpenAI route (chat/completions, responses, images, audio)."""
    if usage is None:
        return None
    prompt = field(usage, "prompt_tokens")
    if prompt is not None:  # chat completions, legacy completions, embeddings
        tokens = Tokens(_int(prompt), _int(field(usage, "completion_tokens")))
        details = field(usage, "prompt_tokens_details")
        if details is not None:
            tokens.cached = _opt(field(details, "cached_tokens"))
            tokens.audio_input = _opt(field(details, "audio_tokens"))
        details = field(usage, "completion_tokens_details")
        if details is not None:
            tokens.reasoning = _opt(field(details, "reasoning_tokens"))
            tokens.audio_output = _opt(field(details, "audio_tokens"))
    else:
        inp = field(usage, "input_tokens")
        out = field(usage, "output_tokens")
        if inp is None and out is None:
            return None  # e.g. a whisper transcription billed by duration
        tokens = Tokens(_int(inp), _int(out))
        details = field(usage, "input_tokens_details")
        if details is not None:  # responses, images
            tokens.cached = _opt(field(details, "cached_tokens"))
        details = field(usage, "input_token_details")
        if details is not None:  # audio transcriptions
            tokens.audio_input = _opt(field(details, "audio_tokens"))
            cached = _opt(field(details, "cached_tokens"))
            if cached is not None:
                tokens.cached = cached
        details = field(usage, "output_tokens_details")
        if details is not None:
            tokens.reasoning = _opt(field(details, "reasoning_tokens"))
    _provider_cost(field(usage, "cost"), tokens)
    return tokens


def _provider_cost(cost: Any, tokens: Tokens) -> None:
    """OpenAI-compatible gateways (e.g. OpenRouter) report what they charged in ``usage.cost``."""
    if isinstance(cost, int | float | Decimal) and not isinstance(cost, bool) and cost >= 0:
        tokens.provider_cost = float(cost)


#: ``netra.pricing.price_valid_counts``: (model, provider, fallback provider, input, cached, output,
#: reasoning, audio input, audio output) -> (cost or None, source)
PriceFn = Callable[..., Any]


def usage_attributes(
    tokens: Tokens,
    model: str | None,
    price_provider: str | None,
    price: PriceFn | None,
    attrs: Attributes,
    fallback_provider: str | None = None,
) -> None:
    """Token counts, and the cost with its source (or ``netra.cost.unknown``; never a cost of 0 for an unknown price)."""
    attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] = tokens.input
    attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] = tokens.output
    # detail counts only when non-zero: every attribute costs the OpenTelemetry SDK about a microsecond,
    # and readers (the Netra server too) take an absent count as 0
    if tokens.cached:
        attrs[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = tokens.cached
    if tokens.reasoning:
        attrs[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = tokens.reasoning
    if tokens.audio_input:  # audio attributes only for calls that had audio
        attrs[sc.GEN_AI_USAGE_AUDIO_INPUT_TOKENS] = tokens.audio_input
    if tokens.audio_output:
        attrs[sc.GEN_AI_USAGE_AUDIO_OUTPUT_TOKENS] = tokens.audio_output
    if tokens.provider_cost is not None:
        attrs[sc.COST] = tokens.provider_cost
        attrs[sc.COST_SOURCE] = sc.COST_SOURCE_PROVIDER
        return
    cost_attributes(model, price_provider, price, attrs, tokens, fallback_provider)


def cost_attributes(
    model: str | None,
    price_provider: str | None,
    price: PriceFn | None,
    attrs: Attributes,
    tokens: Tokens | None,
    fallback_provider: str | None = None,
) -> None:
    if price is None:
        return  # pricing switched off
    if not model or tokens is None:
        attrs[sc.COST_UNKNOWN] = True
        return
    inp, out = tokens.input, tokens.output
    cached, reasoning = tokens.cached or 0, tokens.reasoning or 0
    audio_in, audio_out = tokens.audio_input or 0, tokens.audio_output or 0
    if cached < 0 or cached > inp or audio_in < 0 or audio_in > inp:  # a server's odd numbers: clamp
        cached, audio_in = min(max(cached, 0), inp), min(max(audio_in, 0), inp)
    if reasoning < 0 or reasoning > out or audio_out < 0 or audio_out > out:
        reasoning, audio_out = min(max(reasoning, 0), out), min(max(audio_out, 0), out)
    try:
        value, source = price(model, price_provider, fallback_provider, inp, cached, out, reasoning, audio_in, audio_out)
    except Exception as exc:
        log_failure("pricing", exc)
        attrs[sc.COST_UNKNOWN] = True
        return
    if value is None:
        attrs[sc.COST_UNKNOWN] = True
    else:
        attrs[sc.COST] = float(value)
        attrs[sc.COST_SOURCE] = source


def _responses_finish_reason(response: Any) -> str | None:
    status = field(response, "status")
    if status == "completed":
        for item in field(response, "output") or ():
            if field(item, "type") == "function_call":
                return "tool_calls"
        return "stop"
    if status == "incomplete":
        reason = field(field(response, "incomplete_details"), "reason")
        if reason == "max_output_tokens":
            return "length"
        return str(reason) if reason else "incomplete"
    if status == "failed":
        return "error"
    return str(status) if isinstance(status, str) else None


def response_attributes(
    endpoint: Endpoint, result: Any, capture: bool, limit: int, attrs: Attributes
) -> tuple[Tokens | None, str | None]:
    """Response id, model, finish reasons (and output text when capturing) into ``attrs``.

    Returns the tokens and the response model.
    """
    kind = endpoint.kind
    if kind == "chat" or kind == "completions":
        try:
            return _choices_fast(result, capture, limit, attrs)
        except AttributeError:  # not an openai model (a dict, a text body): the generic path below
            pass
    model = field(result, "model")
    if isinstance(model, str):
        attrs[sc.GEN_AI_RESPONSE_MODEL] = model
    else:
        model = None
    response_id = field(result, "id")
    if isinstance(response_id, str):
        attrs[sc.GEN_AI_RESPONSE_ID] = response_id
    if kind in ("chat", "completions"):
        choices = field(result, "choices") or ()
        attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] = tuple(
            str(field(choice, "finish_reason") or "") for choice in choices
        )
        _tier_and_fingerprint(result, attrs)
        if capture:
            attrs[sc.GEN_AI_OUTPUT_MESSAGES] = _content.dumps(_content.chat_output(choices, limit))
    elif kind == "responses":
        finish = _responses_finish_reason(result)
        if finish is not None:
            attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] = (finish,)
        _tier_and_fingerprint(result, attrs)
        error = field(result, "error")
        if error is not None:
            code = field(error, "code")
            attrs[ERROR_TYPE] = str(code) if code else "response_failed"
        if capture:
            attrs[sc.GEN_AI_OUTPUT_MESSAGES] = _content.dumps(
                _content.responses_output(field(result, "output"), finish, limit)
            )
    elif kind == "transcriptions" and capture:
        text = field(result, "text")
        if text is None and isinstance(result, str):
            text = result  # response_format="text"/"srt"/"vtt"
        output = _content.text_output(text, limit)
        if output:
            attrs[sc.GEN_AI_OUTPUT_MESSAGES] = _content.dumps(output)
    return tokens_from_usage(field(result, "usage")), model


def _choices_fast(result: Any, capture: bool, limit: int, attrs: Attributes) -> tuple[Tokens | None, str | None]:
    """The hot path: a ChatCompletion / Completion model, read by plain attribute access."""
    model = result.model
    response_id = result.id
    choices = result.choices
    usage = result.usage
    if model.__class__ is not str:
        model = None
    else:
        attrs[sc.GEN_AI_RESPONSE_MODEL] = model
    if response_id.__class__ is str:
        attrs[sc.GEN_AI_RESPONSE_ID] = response_id
    attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] = tuple([str(c.finish_reason or "") for c in choices])
    values = result.__dict__
    tier = values.get("service_tier")
    if tier.__class__ is str:
        attrs[oa.OPENAI_RESPONSE_SERVICE_TIER] = tier
    fingerprint = values.get("system_fingerprint")
    if fingerprint.__class__ is str:
        attrs[oa.OPENAI_RESPONSE_SYSTEM_FINGERPRINT] = fingerprint
    if capture:
        attrs[sc.GEN_AI_OUTPUT_MESSAGES] = _content.dumps(_content.chat_output(choices, limit))
    if usage is None:
        return None, model
    prompt = usage.prompt_tokens
    completion = usage.completion_tokens
    tokens = Tokens(
        prompt if prompt.__class__ is int and prompt > 0 else 0,
        completion if completion.__class__ is int and completion > 0 else 0,
    )
    details = usage.prompt_tokens_details
    if details is not None:  # counts are ints or None in openai's models; _opt only guards odd servers
        cached = details.cached_tokens
        tokens.cached = cached if cached.__class__ is int else _opt(cached)
        audio = details.audio_tokens
        tokens.audio_input = audio if audio.__class__ is int else _opt(audio)
    details = usage.completion_tokens_details
    if details is not None:
        reasoning = details.reasoning_tokens
        tokens.reasoning = reasoning if reasoning.__class__ is int else _opt(reasoning)
        audio = details.audio_tokens
        tokens.audio_output = audio if audio.__class__ is int else _opt(audio)
    extra = usage.__pydantic_extra__
    if extra:
        _provider_cost(extra.get("cost"), tokens)
    return tokens, model


def _tier_and_fingerprint(result: Any, attrs: Attributes) -> None:
    tier = field(result, "service_tier")
    if isinstance(tier, str):
        attrs[oa.OPENAI_RESPONSE_SERVICE_TIER] = tier
    fingerprint = field(result, "system_fingerprint")
    if isinstance(fingerprint, str):
        attrs[oa.OPENAI_RESPONSE_SYSTEM_FINGERPRINT] = fingerprint
