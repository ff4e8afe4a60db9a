"""The offline tokenizer: token pieces of text and of a chat prompt (what usage and caching count)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

__all__ = ["content_text", "count_message_tokens", "count_tokens", "prompt_pieces", "tokenize"]


_TOKEN_RE: Final = re.compile(r"\s*(?:[A-Za-z]+|\d{1,3}|[^\sA-Za-z\d])|\s+")
_LONG_WORD: Final = 8
_WORD_CHUNK: Final = 6


def tokenize(text: str) -> list[str]:
    """Split text into token pieces that join back to ``text``.

    Words (with their leading whitespace), groups of up to three digits and single punctuation marks
    are tokens; words longer than eight letters are split every six letters. About four characters
    per token on English prose. Deterministic and offline (no tokenizer files to download).
    """
    pieces: list[str] = []
    for m in _TOKEN_RE.finditer(text):
        piece = m.group(0)
        core = piece.lstrip()
        if len(core) > _LONG_WORD and core.isalpha():
            lead = piece[: len(piece) - len(core)]
            chunks = [core[i : i + _WORD_CHUNK] for i in range(0, len(core), _WORD_CHUNK)]
            pieces.append(lead + chunks[0])
            pieces.extend(chunks[1:])
        else:
            pieces.append(piece)
    return pieces


def count_tokens(text: str) -> int:
    """The number of tokens :func:`tokenize` makes of ``text``."""
    return len(tokenize(text))


def content_text(content: Any) -> tuple[str, int]:
    """The text of a message's content and the tokens of its non-text parts (images: 85 each)."""
    if content is None:
        return "", 0
    if isinstance(content, str):
        return content, 0
    texts: list[str] = []
    extra = 0
    if isinstance(content, list):
        for part in content:
            if isinstance(part, Mapping):
                if part.get("type") in ("text", "input_text") and isinstance(part.get("text"), str):
                    texts.append(part["text"])
                elif part.get("type") in ("image_url", "input_image"):
                    extra += 85
                elif isinstance(part.get("refusal"), str):
                    texts.append(part["refusal"])
    return "\n".join(texts), extra


def prompt_pieces(messages: Sequence[Mapping[str, Any]], tools: Sequence[Any] | None) -> list[str]:
    """The prompt as the model sees it, one entry per token (what usage and caching count)."""
    pieces: list[str] = []
    if tools:
        pieces += ["<|start|>", "tools", "<|message|>"]
        pieces += tokenize(json.dumps(tools, sort_keys=True, separators=(",", ":")))
        pieces.append("<|end|>")
    for msg in messages:
        pieces += ["<|start|>", str(msg.get("role", "")), "<|message|>"]
        if msg.get("name"):
            pieces += tokenize(str(msg["name"]))
        text, extra = content_text(msg.get("content"))
        pieces += tokenize(text)
        pieces += ["<|image|>"] * extra
        if msg.get("tool_calls"):
            pieces += tokenize(json.dumps(msg["tool_calls"], sort_keys=True, separators=(",", ":")))
        if msg.get("tool_call_id"):
            pieces += tokenize(str(msg["tool_call_id"]))
        pieces.append("<|end|>")
    pieces += ["<|start|>", "assistant", "<|message|>"]
    return pieces


def count_message_tokens(messages: Sequence[Mapping[str, Any]], tools: Sequence[Any] | None = None) -> int:
    """``prompt_tokens`` for a chat request: content tokens plus OpenAI-like per-message overhead."""
    return len(prompt_pieces(messages, tools))
