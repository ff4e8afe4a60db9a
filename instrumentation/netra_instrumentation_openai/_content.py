"""Prompt and completion text in the GenAI semantic-convention message shape (only used when content is on).

Input: ``[{"role": ..., "parts": [{"type": "text", "content": ...}, {"type": "tool_call", ...}]}]``;
output: the same with ``finish_reason``; system instructions: a list of parts. Every text is cut to the
configured length (a marker says how much was cut), so one attribute never holds an unbounded prompt.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

Part = dict[str, Any]
Message = dict[str, Any]


def truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…[truncated {len(text) - limit} chars]"


def dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _get(obj: Any, key: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, key, None)


def _text_parts(content: Any, limit: int) -> list[Part]:
    """Parts from an OpenAI ``content`` (a string, or a list of typed parts)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "content": truncate(content, limit)}]
    parts: list[Part] = []
    if isinstance(content, Iterable):
        for item in content:
            kind = _get(item, "type")
            text = _get(item, "text")
            if text is None:
                text = _get(item, "refusal")
            if isinstance(text, str):
                parts.append({"type": "text", "content": truncate(text, limit)})
            elif kind is not None:
                parts.append({"type": str(kind)})  # images, audio, files: the kind only, never the data
    return parts


def _tool_call_part(call: Any, limit: int) -> Part:
    function = _get(call, "function")
    name = _get(function, "name") if function is not None else _get(call, "name")
    arguments = _get(function, "arguments") if function is not None else _get(call, "arguments")
    part: Part = {"type": "tool_call", "id": _get(call, "id") or _get(call, "call_id"), "name": name}
    if isinstance(arguments, str):
        part["arguments"] = truncate(arguments, limit)
    return part


def chat_input(messages: Any, limit: int) -> tuple[list[Part], list[Message]]:
    """(system instructions, input messages) from a chat ``messages`` list."""
    system: list[Part] = []
    out: list[Message] = []
    if not isinstance(messages, Iterable) or isinstance(messages, str | bytes):
        return system, out
    for message in messages:
        role = _get(message, "role") or "user"
        content = _get(message, "content")
        if role in ("system", "developer"):
            system.extend(_text_parts(content, limit))
            continue
        if role == "tool":
            response = content if isinstance(content, str) else dumps(content)
            out.append(
                {
                    "role": "tool",
                    "parts": [
                        {
                            "type": "tool_call_response",
                            "id": _get(message, "tool_call_id"),
                            "response": truncate(response, limit),
                        }
                    ],
                }
            )
            continue
        parts = _text_parts(content, limit)
        for call in _get(message, "tool_calls") or ():
            parts.append(_tool_call_part(call, limit))
        out.append({"role": str(role), "parts": parts})
    return system, out


def chat_output(choices: Any, limit: int) -> list[Message]:
    out: list[Message] = []
    for choice in choices or ():
        message = _get(choice, "message")
        parts: list[Part] = []
        if message is not None:
            parts = _text_parts(_get(message, "content"), limit)
            refusal = _get(message, "refusal")
            if isinstance(refusal, str):
                parts.append({"type": "text", "content": truncate(refusal, limit)})
            for call in _get(message, "tool_calls") or ():
                parts.append(_tool_call_part(call, limit))
        else:
            text = _get(choice, "text")  # legacy completions
            if isinstance(text, str):
                parts = [{"type": "text", "content": truncate(text, limit)}]
        out.append({"role": "assistant", "parts": parts, "finish_reason": _get(choice, "finish_reason")})
    return out


def prompt_input(prompt: Any, limit: int) -> list[Message]:
    """Input messages from a plain prompt or input (legacy completions, embeddings, images, speech)."""
    if isinstance(prompt, str):
        return [{"role": "user", "parts": [{"type": "text", "content": truncate(prompt, limit)}]}]
    if isinstance(prompt, list) and all(isinstance(p, str) for p in prompt):
        return [{"role": "user", "parts": [{"type": "text", "content": truncate(p, limit)} for p in prompt]}]
    return []  # token arrays: no text to record


def responses_input(input_: Any, instructions: Any, limit: int) -> tuple[list[Part], list[Message]]:
    """(system instructions, input messages) from a Responses API ``input`` and ``instructions``."""
    system: list[Part] = []
    if isinstance(instructions, str):
        system.append({"type": "text", "content": truncate(instructions, limit)})
    if isinstance(input_, str):
        return system, prompt_input(input_, limit)
    out: list[Message] = []
    if not isinstance(input_, Iterable):
        return system, out
    for item in input_:
        kind = _get(item, "type")
        role = _get(item, "role")
        if kind == "function_call_output":
            output = _get(item, "output")
            response = output if isinstance(output, str) else dumps(output)
            out.append(
                {
                    "role": "tool",
                    "parts": [
                        {"type": "tool_call_response", "id": _get(item, "call_id"), "response": truncate(response, limit)}
                    ],
                }
            )
        elif kind == "function_call":
            out.append({"role": "assistant", "parts": [_tool_call_part(item, limit)]})
        elif role is not None:
            parts = _text_parts(_get(item, "content"), limit)
            if role in ("system", "developer"):
                system.extend(parts)
            else:
                out.append({"role": str(role), "parts": parts})
    return system, out


def responses_output(output: Any, finish_reason: str | None, limit: int) -> list[Message]:
    parts: list[Part] = []
    for item in output or ():
        kind = _get(item, "type")
        if kind == "message":
            parts.extend(_text_parts(_get(item, "content"), limit))
        elif kind == "function_call":
            parts.append(_tool_call_part(item, limit))
    return [{"role": "assistant", "parts": parts, "finish_reason": finish_reason}]


def text_output(text: Any, limit: int) -> list[Message]:
    if not isinstance(text, str):
        return []
    return [{"role": "assistant", "parts": [{"type": "text", "content": truncate(text, limit)}]}]
