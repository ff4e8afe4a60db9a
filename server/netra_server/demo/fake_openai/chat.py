"""Chat completions: request validation, the choices and usage of a request, the streamed chunks."""

from __future__ import annotations

import asyncio
import json
import random
import secrets
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from netra_server.demo.fake_openai.errors import invalid
from netra_server.demo.fake_openai.latency import latency_seconds, seed_of
from netra_server.demo.fake_openai.models import ModelProfile
from netra_server.demo.fake_openai.state import State
from netra_server.demo.fake_openai.text import compose, keywords, value_for_schema
from netra_server.demo.fake_openai.tokens import content_text, count_tokens, prompt_pieces, tokenize

__all__ = ["Choice", "choice_message", "complete_chat", "ident", "stream_chunks", "validate_chat"]


_ALPHABET: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ROLES: Final = frozenset({"system", "developer", "user", "assistant", "tool", "function"})


def ident(prefix: str, length: int = 29) -> str:
    n = secrets.randbits(6 * length)
    chars = []
    for _ in range(length):
        n, r = divmod(n, 62)
        chars.append(_ALPHABET[r])
    return prefix + "".join(chars)


@dataclass(slots=True)
class Choice:
    text: str | None
    tool_calls: list[dict[str, Any]]
    finish_reason: str
    completion_tokens: int
    pieces: list[str]


def validate_chat(body: Mapping[str, Any], profile: ModelProfile) -> None:
    messages = body.get("messages")
    if messages is None:
        raise invalid("Missing required parameter: 'messages'.", "messages", "missing_required_parameter")
    if not isinstance(messages, list):
        raise invalid("Invalid type for 'messages': expected an array.", "messages", "invalid_type")
    if not messages:
        raise invalid("[] is too short - 'messages'", "messages", "empty_array")
    for i, msg in enumerate(messages):
        if not isinstance(msg, Mapping) or msg.get("role") not in _ROLES:
            raise invalid(
                f"Invalid value for 'messages[{i}].role': expected one of {sorted(_ROLES)}.",
                f"messages[{i}].role",
                "invalid_value",
            )
    if body.get("stream_options") is not None and not body.get("stream"):
        raise invalid(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.", "stream_options"
        )
    if profile.reasoning and body.get("max_tokens") is not None:
        raise invalid(
            "Unsupported parameter: 'max_tokens' is not supported with this model. Use "
            "'max_completion_tokens' instead.",
            "max_tokens",
            "unsupported_parameter",
        )
    for name in ("max_tokens", "max_completion_tokens"):
        value = body.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise invalid(f"Invalid '{name}': integer below minimum value. Expected a value >= 1.", name)
    n = body.get("n", 1)
    if n is None:
        n = 1
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 128:
        raise invalid("Invalid 'n': expected an integer between 1 and 128.", "n")
    temperature = body.get("temperature")
    if temperature is not None and (not isinstance(temperature, int | float) or not 0 <= temperature <= 2):
        raise invalid(
            f"Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but got {temperature}.",
            "temperature",
            "decimal_above_max_value",
        )


def _tool_call_for(
    rng: random.Random, tools: Sequence[Any], choice: Any, words: list[str]
) -> list[dict[str, Any]]:
    functions: list[Mapping[str, Any]] = [
        t["function"] for t in tools if isinstance(t, Mapping) and isinstance(t.get("function"), Mapping)
    ]
    if not functions:
        return []
    target = functions[0]
    if isinstance(choice, Mapping):
        wanted = (choice.get("function") or {}).get("name")
        target = next((f for f in functions if f.get("name") == wanted), target)
    args = value_for_schema(target.get("parameters") or {"type": "object"}, rng, words)
    return [
        {
            "id": ident("call_", 24),
            "type": "function",
            "function": {"name": str(target.get("name", "tool")), "arguments": json.dumps(args)},
        }
    ]


def complete_chat(
    state: State, body: Mapping[str, Any], profile: ModelProfile
) -> tuple[list[Choice], dict[str, Any], float]:
    """The choices, the usage object and the simulated latency (seconds) of a chat request."""
    messages: list[Mapping[str, Any]] = body["messages"]
    tools = body.get("tools") or None
    pieces = prompt_pieces(messages, tools)
    prompt_tokens = len(pieces)
    if prompt_tokens > profile.context_window:
        raise invalid(
            f"This model's maximum context length is {profile.context_window} tokens. However, your "
            f"messages resulted in {prompt_tokens} tokens. Please reduce the length of the messages.",
            "messages",
            "context_length_exceeded",
        )
    cached = state.cached_prefix(pieces)
    instructions = "\n".join(
        content_text(m.get("content"))[0] for m in messages if m.get("role") in ("system", "developer")
    )
    user_text = next(
        (content_text(m.get("content"))[0] for m in reversed(messages) if m.get("role") == "user"), ""
    )
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    seed = seed_of(body)
    n = body.get("n") or 1
    response_format = body.get("response_format") or {}
    tool_choice = body.get("tool_choice", "auto")
    wants_tool = (
        bool(tools) and tool_choice != "none" and messages[-1].get("role") not in ("tool", "function")
    )
    reasoning = 0
    if profile.reasoning:
        effort = body.get("reasoning_effort") or "medium"
        scale = {"minimal": 0.0, "low": 0.5, "medium": 1.0, "high": 2.0}.get(str(effort), 1.0)
        reasoning = int(random.Random(seed ^ 0xA5A5).randint(64, 448) * scale)
    choices: list[Choice] = []
    for index in range(n):
        rng = random.Random(seed + index)
        reply = compose(rng, instructions, user_text)
        words = keywords(user_text) or ["value"]
        if wants_tool:
            calls = _tool_call_for(rng, tools or [], tool_choice, words)
            used = sum(count_tokens(c["function"]["name"] + c["function"]["arguments"]) + 7 for c in calls)
            choices.append(Choice(None, calls, "tool_calls", used, []))
            continue
        text = reply.text
        fmt = response_format.get("type") if isinstance(response_format, Mapping) else None
        if fmt == "json_object":
            text = json.dumps(reply.sections, indent=2)
        elif fmt == "json_schema":
            schema = (response_format.get("json_schema") or {}).get("schema") or {"type": "object"}
            text = json.dumps(value_for_schema(schema, rng, words), indent=2)
        out = tokenize(text)
        finish = "stop"
        budget = None if limit is None else max(0, int(limit) - reasoning)
        if budget is not None and len(out) > budget:
            out = out[:budget]
            finish = "length"
        choices.append(Choice("".join(out), [], finish, len(out), out))
    completion_tokens = sum(c.completion_tokens for c in choices) + reasoning * n
    usage: dict[str, Any] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reasoning * n,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }
    longest = max(c.completion_tokens for c in choices) + reasoning
    latency = latency_seconds(
        profile,
        input_tokens=prompt_tokens - cached,
        output_tokens=longest,
        seed=seed,
        scale=state.config.latency_scale,
    )
    return choices, usage, latency


def choice_message(choice: Choice) -> dict[str, Any]:
    msg: dict[str, Any] = {"role": "assistant", "content": choice.text, "refusal": None, "annotations": []}
    if choice.tool_calls:
        msg["tool_calls"] = choice.tool_calls
    return msg


def _sse(data: Mapping[str, Any] | str) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return f"data: {payload}\n\n".encode()


async def stream_chunks(
    choices: list[Choice],
    usage: dict[str, Any],
    latency: float,
    ttft_share: float,
    base: dict[str, Any],
    include_usage: bool,
) -> AsyncIterator[bytes]:
    """OpenAI's chunk sequence: role, content deltas, finish, optional usage chunk, ``[DONE]``."""

    def chunk(index: int, delta: dict[str, Any], finish: str | None = None) -> bytes:
        body = dict(base)
        body["choices"] = [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}]
        body["usage"] = None
        return _sse(body)

    first_wait = latency * ttft_share
    steps = max(c.completion_tokens for c in choices) or 1
    per_step = (latency - first_wait) / steps
    if first_wait > 0:
        await asyncio.sleep(first_wait)
    for i, c in enumerate(choices):
        if c.tool_calls:
            call = c.tool_calls[0]
            head = {
                "index": 0,
                "id": call["id"],
                "type": "function",
                "function": {"name": call["function"]["name"], "arguments": ""},
            }
            yield chunk(i, {"role": "assistant", "content": None, "tool_calls": [head], "refusal": None})
        else:
            yield chunk(i, {"role": "assistant", "content": "", "refusal": None})
    owed = 0.0
    streams = [
        [piece for call in c.tool_calls for piece in tokenize(call["function"]["arguments"])]
        if c.tool_calls
        else c.pieces
        for c in choices
    ]
    for step in range(max((len(s) for s in streams), default=0)):
        owed += per_step
        if owed >= 0.01:
            await asyncio.sleep(owed)
            owed = 0.0
        for i, (c, stream) in enumerate(zip(choices, streams, strict=True)):
            if step < len(stream):
                if c.tool_calls:
                    yield chunk(i, {"tool_calls": [{"index": 0, "function": {"arguments": stream[step]}}]})
                else:
                    yield chunk(i, {"content": stream[step]})
    if owed > 0:
        await asyncio.sleep(owed)
    for i, c in enumerate(choices):
        yield chunk(i, {}, c.finish_reason)
    if include_usage:
        last = dict(base)
        last["choices"] = []
        last["usage"] = usage
        yield _sse(last)
    yield _sse("[DONE]")
