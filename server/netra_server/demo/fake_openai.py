"""A local OpenAI-compatible endpoint for demos and tests: a real HTTP server, a simulated model.

Everything in front of the model is real: the ``openai`` client talks HTTP to this server exactly as
it talks to ``api.openai.com``. What is simulated is the model itself:

* **Output** is deterministic: the same request (model, messages, sampling parameters, ``seed``) gets
  the same answer, streamed or not. Meeting-summary prompts get a structured summary whose sections
  follow what the prompt asks for (summary, key decisions, action items, risks, sentiment...);
  other prompts get a short answer built from the prompt's words. ``tools`` lead to tool calls and
  ``response_format`` to JSON.
* **Token usage** is counted by a small deterministic tokenizer (words, numbers and punctuation;
  about four characters per token on English prose, like OpenAI's tokenizers), with OpenAI's
  per-message overhead. Prompts of 1,024 tokens or more are cached in 128-token steps as OpenAI does
  (``prompt_tokens_details.cached_tokens`` counts the prefix seen before); reasoning models report
  ``completion_tokens_details.reasoning_tokens`` (included in ``completion_tokens``).
* **Latency** follows a per-model profile: time to first token plus time per input and output token,
  times a deterministic jitter with a slow tail (about one request in twenty is 1.5-2.4x slower).
  ``latency_scale`` multiplies it all: ``0`` answers at once (tests), ``1`` is realistic.

The API surface: ``POST /v1/chat/completions`` (plain and ``stream: true`` server-sent events;
``stream_options.include_usage`` adds the final chunk with empty ``choices`` and the usage, as
OpenAI does), ``POST /v1/embeddings`` (float or base64), ``GET /v1/models[/{id}]``, OpenAI's error
bodies (400, 401, 404, 429, 500, 503) and headers (``x-request-id``, ``openai-processing-ms``,
``x-ratelimit-*``). ``GET /_fake/stats`` reports the usage served so far (ground truth for tests).

A request can ask for an error with the header ``x-fake-openai-error: <status>`` (for example
``429`` or ``500``), which is how tests reach the client's error paths.

Use it from Python::

    from netra_server.demo.fake_openai import serve_fake_openai
    with serve_fake_openai(latency_scale=0) as base_url:
        client = openai.OpenAI(base_url=base_url, api_key="sk-local")

or standalone: ``python -m netra_server.demo.fake_openai --port 8787``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import math
import random
import re
import secrets
import socket
import struct
import sys
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

__all__ = [
    "DEFAULT_MODELS",
    "FakeOpenAIConfig",
    "FakeOpenAIServer",
    "ModelProfile",
    "count_message_tokens",
    "count_tokens",
    "create_app",
    "main",
    "serve_fake_openai",
    "serve_fake_openai_process",
    "tokenize",
]

LATENCY_SCALE_ENV: Final = "NETRA_FAKE_OPENAI_LATENCY_SCALE"


# --------------------------------------------------------------------------------------------------
# Models


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


# --------------------------------------------------------------------------------------------------
# Tokens

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


def _content_text(content: Any) -> tuple[str, int]:
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


def _prompt_pieces(messages: Sequence[Mapping[str, Any]], tools: Sequence[Any] | None) -> list[str]:
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
        text, extra = _content_text(msg.get("content"))
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
    return len(_prompt_pieces(messages, tools))


# --------------------------------------------------------------------------------------------------
# Deterministic output

_STOPWORDS: Final = frozenset(
    """about above after again against because before being below between could doing during each
    from further having here into itself just more most other ought over same should some such than
    that their theirs them then there these they this those through under until very what when where
    which while whom with would your yours also will were been does have said says like make made
    well want need needs think know going really something anything everyone everything okay yeah
    right good great thanks thank please summarize summary meeting transcript following provide
    include write concise brief detailed items item action decisions decision risks risk sentiment
    participants assistant helpful format bullet bullets points point list notes section sections
    tenant tier features feature words expects expect wants asks moves means takes gets puts keeps
    looks seems shows tells still already before extend object close respond third thirty fifteenth
    monday tuesday wednesday thursday friday saturday sunday january february march april june july
    august september october november december week weeks month months today tomorrow anything next days
    morning afternoon evening hours minutes""".split()
)
_WHEN: Final = ("Friday", "end of week", "next Tuesday", "the next steering meeting", "month end", "Monday")
_VERBS: Final = ("draft", "review", "send out", "update", "confirm", "estimate", "circulate", "finalize")
_MOODS: Final = ("constructive", "positive", "mixed", "cautious but positive", "focused", "tense at times")


def _keywords(text: str, limit: int = 10, exclude: Sequence[str] = ()) -> list[str]:
    counts: dict[str, int] = {}
    first: dict[str, int] = {}
    skip = {e.lower() for e in exclude}
    for i, w in enumerate(re.findall(r"[A-Za-z][A-Za-z-]{3,}", text)):
        lw = w.lower()
        if lw in _STOPWORDS or lw in skip or lw.endswith(("ed", "ly", "ing")):
            continue
        counts[lw] = counts.get(lw, 0) + 1
        first.setdefault(lw, i)
    ranked = sorted(counts, key=lambda w: (-counts[w], first[w]))
    return ranked[:limit]


def _speakers(text: str) -> list[str]:
    seen: list[str] = []
    for m in re.finditer(r"^\s*([A-Z][a-z]+(?: [A-Z][a-z]+)?)\s*:", text, re.MULTILINE):
        name = m.group(1)
        if name not in seen and name.lower() not in _STOPWORDS:
            seen.append(name)
    return seen


@dataclass(slots=True)
class _Reply:
    sections: dict[str, list[str]]
    text: str


def _compose(rng: random.Random, instructions: str, user_text: str) -> _Reply:
    """A deterministic answer whose shape follows the prompt."""
    lower = (instructions + "\n" + user_text).lower()
    people = _speakers(user_text) or ["The team"]
    names = [part for p in people for part in p.split()]
    words = _keywords(user_text, exclude=names) or _keywords(instructions) or ["the request"]
    deck: list[str] = []

    def kw() -> str:
        # draw without replacement until the deck is empty, so sentences repeat words less
        if not deck:
            deck.extend(rng.sample(words, len(words)))
        return deck.pop()

    def person() -> str:
        return rng.choice(people)

    detail = 1
    if any(w in lower for w in ("detailed", "comprehensive", "thorough", "in depth")):
        detail = 2
    if any(w in lower for w in ("brief", "concise", "short", "one sentence", "tl;dr")):
        detail = 0
    sections: dict[str, list[str]] = {}
    if "meeting" in lower or "transcript" in lower:
        sentences = [
            f"The meeting focused on {kw()} and {kw()}.",
            f"{person()} walked the group through {kw()}, and {person()} raised questions about {kw()}.",
            f"The team agreed that {kw()} needs more work before the next review.",
            f"Discussion of {kw()} took most of the time; {kw()} was deferred.",
            f"{person()} shared an update on {kw()} and the impact on {kw()}.",
            f"Open questions remain on {kw()}.",
        ]
        n_summary = (1, 3, 5)[detail] + rng.randint(0, 1)
        sections["summary"] = sentences[:n_summary]
        n_items = (1, 2, 4)[detail] + rng.randint(0, 1)
        if "decision" in lower:
            sections["key_decisions"] = [
                rng.choice(
                    (
                        f"Proceed with {kw()} as proposed.",
                        f"Postpone the decision on {kw()} until {rng.choice(_WHEN)}.",
                        f"{person()} owns {kw()} going forward.",
                        f"Keep the current approach to {kw()}.",
                    )
                )
                for _ in range(n_items)
            ]
        if "action item" in lower or "next step" in lower:
            sections["action_items"] = [
                f"{person()} to {rng.choice(_VERBS)} the {kw()} plan by {rng.choice(_WHEN)}."
                for _ in range(n_items + 1)
            ]
        if "risk" in lower:
            sections["risks"] = [
                rng.choice(
                    (
                        f"{kw().capitalize()} could slip if {kw()} is not resolved.",
                        f"The dependency on {kw()} is not staffed yet.",
                        f"Budget for {kw()} is not confirmed.",
                    )
                )
                for _ in range(max(1, n_items - 1))
            ]
        if "sentiment" in lower:
            sections["sentiment"] = [f"{rng.choice(_MOODS).capitalize()}."]
        if "participant" in lower or "attendee" in lower:
            sections["participants"] = [", ".join(people)]
    else:
        sentences = [
            f"{kw().capitalize()} depends mostly on {kw()} and {kw()}.",
            f"In short, {kw()} is the main point to consider.",
            f"The key trade-off is between {kw()} and {kw()}.",
            f"A practical next step is to review {kw()} with the team.",
            f"Most of the effort goes into {kw()}, while {kw()} needs less attention.",
        ]
        sections["answer"] = sentences[: (1, 2, 4)[detail] + rng.randint(0, 1)]
    titles = {
        "summary": "Summary",
        "key_decisions": "Key decisions",
        "action_items": "Action items",
        "risks": "Risks",
        "sentiment": "Sentiment",
        "participants": "Participants",
    }
    parts: list[str] = []
    for key, lines in sections.items():
        if key == "answer":
            parts.append(" ".join(lines))
        elif key in ("summary", "sentiment", "participants"):
            parts.append(f"{titles[key]}: " + " ".join(lines))
        else:
            parts.append(f"{titles[key]}:\n" + "\n".join(f"- {line}" for line in lines))
    return _Reply(sections, "\n\n".join(parts))


def _value_for_schema(schema: Any, rng: random.Random, words: list[str], depth: int = 0) -> Any:
    if not isinstance(schema, Mapping) or depth > 6:
        return rng.choice(words)
    if "enum" in schema and schema["enum"]:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            return _value_for_schema(schema[key][0], rng, words, depth + 1)
    typ = schema.get("type")
    if isinstance(typ, list):
        typ = next((t for t in typ if t != "null"), "string")
    if typ == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        return {k: _value_for_schema(v, rng, words, depth + 1) for k, v in props.items()}
    if typ == "array":
        return [_value_for_schema(schema.get("items"), rng, words, depth + 1) for _ in range(2)]
    if typ == "integer":
        return rng.randint(1, 10)
    if typ == "number":
        return round(rng.uniform(0, 100), 2)
    if typ == "boolean":
        return rng.random() < 0.5
    return " ".join(rng.choice(words) for _ in range(rng.randint(1, 3)))


# --------------------------------------------------------------------------------------------------
# Errors


class _APIError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        err_type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": {"message": message, "type": err_type, "param": param, "code": code}}
        self.headers = dict(headers or {})


def _invalid(message: str, param: str | None = None, code: str | None = None) -> _APIError:
    return _APIError(400, message, "invalid_request_error", code, param)


def _injected_error(status: int) -> _APIError:
    if status == 401:
        return _APIError(401, "Incorrect API key provided.", code="invalid_api_key")
    if status == 403:
        return _APIError(403, "You are not allowed to sample from this model", code="model_not_allowed")
    if status == 404:
        return _APIError(
            404, "The model does not exist or you do not have access to it.", code="model_not_found"
        )
    if status == 429:
        return _APIError(
            429,
            "Rate limit reached for requests. Please try again in 1s.",
            "requests",
            "rate_limit_exceeded",
            headers={"retry-after": "1"},
        )
    if status == 503:
        return _APIError(503, "The engine is currently overloaded, please try again later.", "server_error")
    if status >= 500:
        return _APIError(
            status, "The server had an error while processing your request. Sorry about that!", "server_error"
        )
    return _invalid("Injected invalid request (x-fake-openai-error).")


# --------------------------------------------------------------------------------------------------
# The server state


@dataclass(slots=True)
class _ModelStats:
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0


class _State:
    """Mutable state of one endpoint: sequence numbers, the prompt cache, rate limits, stats."""

    _CACHE_ENTRIES: Final = 200_000

    def __init__(self, config: FakeOpenAIConfig) -> None:
        self.config = config
        self.lock = threading.Lock()
        self.prefix_cache: OrderedDict[str, None] = OrderedDict()
        self.calls: dict[str, deque[float]] = {}
        self.stats: dict[str, _ModelStats] = {}
        self.errors: dict[int, int] = {}

    def cached_prefix(self, pieces: Sequence[str]) -> int:
        """OpenAI-style prompt caching: prompts of 1,024+ tokens, in 128-token increments."""
        if len(pieces) < 1024:
            return 0
        hasher = hashlib.sha256()
        boundaries: list[tuple[int, str]] = []
        for i, piece in enumerate(pieces, start=1):
            hasher.update(piece.encode("utf-8", "surrogatepass") + b"\x00")
            if i >= 1024 and (i - 1024) % 128 == 0:
                boundaries.append((i, hasher.copy().hexdigest()))
        cached = 0
        with self.lock:
            for n, digest in boundaries:
                if digest in self.prefix_cache:
                    cached = n
                    self.prefix_cache.move_to_end(digest)
                else:
                    self.prefix_cache[digest] = None
            while len(self.prefix_cache) > self._CACHE_ENTRIES:
                self.prefix_cache.popitem(last=False)
        # the last token of the prompt is never served from the cache
        return min(cached, len(pieces) - 1)

    def admit(self, key: str) -> tuple[int, int]:
        """Count a request against the key's per-minute limit; (limit, remaining) or raise 429."""
        rpm = self.config.requests_per_minute
        if rpm is None:
            return 10_000, 9_999
        now = time.monotonic()
        with self.lock:
            window = self.calls.setdefault(key, deque())
            while window and now - window[0] >= 60.0:
                window.popleft()
            if len(window) >= rpm:
                retry = max(1, math.ceil(60.0 - (now - window[0])))
                raise _APIError(
                    429,
                    f"Rate limit reached for requests per minute (RPM): Limit {rpm}, Used {len(window)}, "
                    f"Requested 1. Please try again in {retry}s.",
                    "requests",
                    "rate_limit_exceeded",
                    headers={
                        "retry-after": str(retry),
                        "x-ratelimit-limit-requests": str(rpm),
                        "x-ratelimit-remaining-requests": "0",
                        "x-ratelimit-reset-requests": f"{retry}s",
                    },
                )
            window.append(now)
            return rpm, rpm - len(window)

    def record(self, model: str, usage: Mapping[str, Any]) -> None:
        with self.lock:
            s = self.stats.setdefault(model, _ModelStats())
            s.requests += 1
            s.prompt_tokens += int(usage.get("prompt_tokens", 0))
            s.completion_tokens += int(usage.get("completion_tokens", 0))
            s.cached_tokens += int((usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0))
            s.reasoning_tokens += int(
                (usage.get("completion_tokens_details") or {}).get("reasoning_tokens", 0)
            )

    def record_error(self, status: int) -> None:
        with self.lock:
            self.errors[status] = self.errors.get(status, 0) + 1

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            models = {
                m: {
                    "requests": s.requests,
                    "prompt_tokens": s.prompt_tokens,
                    "completion_tokens": s.completion_tokens,
                    "cached_tokens": s.cached_tokens,
                    "reasoning_tokens": s.reasoning_tokens,
                }
                for m, s in self.stats.items()
            }
            return {"models": models, "errors": {str(k): v for k, v in self.errors.items()}}


# --------------------------------------------------------------------------------------------------
# Request handling

_ALPHABET: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ROLES: Final = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
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


def _ident(prefix: str, length: int = 29) -> str:
    n = secrets.randbits(6 * length)
    chars = []
    for _ in range(length):
        n, r = divmod(n, 62)
        chars.append(_ALPHABET[r])
    return prefix + "".join(chars)


def _seed_of(body: Mapping[str, Any], salt: str = "") -> int:
    semantic = {k: v for k, v in body.items() if k not in _NON_SEMANTIC}
    raw = json.dumps(semantic, sort_keys=True, separators=(",", ":"), default=str) + salt
    return int.from_bytes(hashlib.sha256(raw.encode()).digest()[:8], "big")


def _jitter(seed: int) -> float:
    rng = random.Random(seed ^ 0x5DEECE66D)
    factor = rng.lognormvariate(0.0, 0.18)
    if rng.random() < 0.05:  # a busy replica: the slow tail every real deployment has
        factor *= rng.uniform(1.5, 2.4)
    return factor


def _auth(state: _State, request: Request) -> str:
    header = request.headers.get("authorization", "")
    key = header[7:].strip() if header.lower().startswith("bearer ") else ""
    if not key:
        key = request.headers.get("api-key", "")
    expected = state.config.api_key
    if expected is not None:
        if not key:
            raise _APIError(
                401,
                "You didn't provide an API key. You need to provide your API key in an Authorization "
                "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            )
        if key != expected:
            shown = key[:3] + "*" * max(0, len(key) - 7) + key[-4:] if len(key) > 7 else "***"
            raise _APIError(
                401,
                f"Incorrect API key provided: {shown}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                code="invalid_api_key",
            )
    return key


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw)
    except ValueError:
        raise _invalid(
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using "
            "your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not "
            "valid JSON.)"
        ) from None
    if not isinstance(body, dict):
        raise _invalid(f"Invalid type for request body: expected an object, but got {type(body).__name__}.")
    return body


def _model_of(state: _State, body: Mapping[str, Any], kind: str) -> ModelProfile:
    model = body.get("model")
    if not model or not isinstance(model, str):
        raise _invalid("you must provide a model parameter", param="model")
    profile = state.config.profile(model)
    if profile is None:
        raise _APIError(
            404,
            f"The model `{model}` does not exist or you do not have access to it.",
            code="model_not_found",
        )
    if profile.kind != kind:
        if kind == "chat":
            raise _APIError(
                404,
                "This is not a chat model and thus not supported in the v1/chat/completions endpoint. "
                "Did you mean to use v1/completions?",
                param="model",
            )
        raise _invalid(f"Model {model} does not support embeddings.", param="model")
    return profile


def _headers(request_id: str, started: float, limits: tuple[int, int]) -> dict[str, str]:
    return {
        "x-request-id": request_id,
        "openai-processing-ms": str(int((time.monotonic() - started) * 1000)),
        "openai-version": "2020-10-01",
        "openai-organization": "netra-local",
        "x-ratelimit-limit-requests": str(limits[0]),
        "x-ratelimit-remaining-requests": str(max(0, limits[1])),
    }


@dataclass(slots=True)
class _Choice:
    text: str | None
    tool_calls: list[dict[str, Any]]
    finish_reason: str
    completion_tokens: int
    pieces: list[str]


def _validate_chat(body: Mapping[str, Any], profile: ModelProfile) -> None:
    messages = body.get("messages")
    if messages is None:
        raise _invalid("Missing required parameter: 'messages'.", "messages", "missing_required_parameter")
    if not isinstance(messages, list):
        raise _invalid("Invalid type for 'messages': expected an array.", "messages", "invalid_type")
    if not messages:
        raise _invalid("[] is too short - 'messages'", "messages", "empty_array")
    for i, msg in enumerate(messages):
        if not isinstance(msg, Mapping) or msg.get("role") not in _ROLES:
            raise _invalid(
                f"Invalid value for 'messages[{i}].role': expected one of {sorted(_ROLES)}.",
                f"messages[{i}].role",
                "invalid_value",
            )
    if body.get("stream_options") is not None and not body.get("stream"):
        raise _invalid(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.", "stream_options"
        )
    if profile.reasoning and body.get("max_tokens") is not None:
        raise _invalid(
            "Unsupported parameter: 'max_tokens' is not supported with this model. Use "
            "'max_completion_tokens' instead.",
            "max_tokens",
            "unsupported_parameter",
        )
    for name in ("max_tokens", "max_completion_tokens"):
        value = body.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise _invalid(f"Invalid '{name}': integer below minimum value. Expected a value >= 1.", name)
    n = body.get("n", 1)
    if n is None:
        n = 1
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 128:
        raise _invalid("Invalid 'n': expected an integer between 1 and 128.", "n")
    temperature = body.get("temperature")
    if temperature is not None and (not isinstance(temperature, int | float) or not 0 <= temperature <= 2):
        raise _invalid(
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
    args = _value_for_schema(target.get("parameters") or {"type": "object"}, rng, words)
    return [
        {
            "id": _ident("call_", 24),
            "type": "function",
            "function": {"name": str(target.get("name", "tool")), "arguments": json.dumps(args)},
        }
    ]


def _complete(
    state: _State, body: Mapping[str, Any], profile: ModelProfile
) -> tuple[list[_Choice], dict[str, Any], float]:
    """The choices, the usage object and the simulated latency (seconds) of a chat request."""
    messages: list[Mapping[str, Any]] = body["messages"]
    tools = body.get("tools") or None
    pieces = _prompt_pieces(messages, tools)
    prompt_tokens = len(pieces)
    if prompt_tokens > profile.context_window:
        raise _invalid(
            f"This model's maximum context length is {profile.context_window} tokens. However, your "
            f"messages resulted in {prompt_tokens} tokens. Please reduce the length of the messages.",
            "messages",
            "context_length_exceeded",
        )
    cached = state.cached_prefix(pieces)
    instructions = "\n".join(
        _content_text(m.get("content"))[0] for m in messages if m.get("role") in ("system", "developer")
    )
    user_text = next(
        (_content_text(m.get("content"))[0] for m in reversed(messages) if m.get("role") == "user"), ""
    )
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    seed = _seed_of(body)
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
    choices: list[_Choice] = []
    for index in range(n):
        rng = random.Random(seed + index)
        reply = _compose(rng, instructions, user_text)
        words = _keywords(user_text) or ["value"]
        if wants_tool:
            calls = _tool_call_for(rng, tools or [], tool_choice, words)
            used = sum(count_tokens(c["function"]["name"] + c["function"]["arguments"]) + 7 for c in calls)
            choices.append(_Choice(None, calls, "tool_calls", used, []))
            continue
        text = reply.text
        fmt = response_format.get("type") if isinstance(response_format, Mapping) else None
        if fmt == "json_object":
            text = json.dumps(reply.sections, indent=2)
        elif fmt == "json_schema":
            schema = (response_format.get("json_schema") or {}).get("schema") or {"type": "object"}
            text = json.dumps(_value_for_schema(schema, rng, words), indent=2)
        out = tokenize(text)
        finish = "stop"
        budget = None if limit is None else max(0, int(limit) - reasoning)
        if budget is not None and len(out) > budget:
            out = out[:budget]
            finish = "length"
        choices.append(_Choice("".join(out), [], finish, len(out), out))
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
    ms = (
        profile.ttft_ms
        + profile.ms_per_input_token * (prompt_tokens - cached)
        + profile.ms_per_output_token * longest
    )
    latency = ms / 1000.0 * _jitter(seed) * state.config.latency_scale
    return choices, usage, latency


def _message(choice: _Choice) -> dict[str, Any]:
    msg: dict[str, Any] = {"role": "assistant", "content": choice.text, "refusal": None, "annotations": []}
    if choice.tool_calls:
        msg["tool_calls"] = choice.tool_calls
    return msg


def _sse(data: Mapping[str, Any] | str) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return f"data: {payload}\n\n".encode()


async def _stream_chunks(
    choices: list[_Choice],
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


def create_app(config: FakeOpenAIConfig | None = None) -> Starlette:
    """The ASGI app of the simulated endpoint (serve it with any ASGI server)."""
    state = _State(config or FakeOpenAIConfig())

    def error_response(err: _APIError, request_id: str) -> JSONResponse:
        state.record_error(err.status)
        headers = {"x-request-id": request_id, **err.headers}
        return JSONResponse(err.body, status_code=err.status, headers=headers)

    async def chat_completions(request: Request) -> Response:
        request_id = "req_" + uuid.uuid4().hex
        started = time.monotonic()
        try:
            injected = request.headers.get("x-fake-openai-error")
            key = _auth(state, request)
            if injected:
                raise _injected_error(int(injected))
            limits = state.admit(key)
            body = await _json_body(request)
            profile = _model_of(state, body, "chat")
            _validate_chat(body, profile)
            choices, usage, latency = _complete(state, body, profile)
        except _APIError as err:
            return error_response(err, request_id)
        state.record(profile.snapshot, usage)
        created = int(time.time())
        completion_id = _ident("chatcmpl-")
        fingerprint = "fp_" + hashlib.sha256(profile.snapshot.encode()).hexdigest()[:10]
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            base = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": profile.snapshot,
                "service_tier": "default",
                "system_fingerprint": fingerprint,
            }
            ttft_share = min(
                1.0, profile.ttft_ms / max(1.0, profile.ttft_ms + profile.ms_per_output_token * 50)
            )
            return StreamingResponse(
                _stream_chunks(choices, usage, latency, ttft_share, base, include_usage),
                media_type="text/event-stream",
                headers=_headers(request_id, started, limits),
            )
        if latency > 0:
            await asyncio.sleep(latency)
        payload = {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": profile.snapshot,
            "choices": [
                {"index": i, "message": _message(c), "logprobs": None, "finish_reason": c.finish_reason}
                for i, c in enumerate(choices)
            ],
            "usage": usage,
            "service_tier": "default",
            "system_fingerprint": fingerprint,
        }
        return JSONResponse(payload, headers=_headers(request_id, started, limits))

    async def embeddings(request: Request) -> Response:
        request_id = "req_" + uuid.uuid4().hex
        started = time.monotonic()
        try:
            injected = request.headers.get("x-fake-openai-error")
            key = _auth(state, request)
            if injected:
                raise _injected_error(int(injected))
            limits = state.admit(key)
            body = await _json_body(request)
            profile = _model_of(state, body, "embedding")
            texts = _embedding_inputs(body.get("input"))
            dims = _embedding_dims(body, profile)
            fmt = body.get("encoding_format") or "float"
            if fmt not in ("float", "base64"):
                raise _invalid(
                    f"Invalid value for 'encoding_format': expected 'float' or 'base64', got {fmt!r}.",
                    "encoding_format",
                )
        except _APIError as err:
            return error_response(err, request_id)
        tokens = 0
        data = []
        for i, item in enumerate(texts):
            if isinstance(item, str):
                n = count_tokens(item)
                vec = _embed(item, profile.id, dims)
            else:
                n = len(item)
                vec = _embed(" ".join(map(str, item)), profile.id, dims)
            if n > profile.context_window:
                return error_response(
                    _invalid(
                        f"This model's maximum context length is {profile.context_window} tokens, however you "
                        f"requested {n} tokens. Please reduce your prompt.",
                        "input",
                        "context_length_exceeded",
                    ),
                    request_id,
                )
            tokens += n
            emb: list[float] | str = vec
            if fmt == "base64":
                emb = base64.b64encode(struct.pack(f"<{len(vec)}f", *vec)).decode()
            data.append({"object": "embedding", "index": i, "embedding": emb})
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        state.record(profile.snapshot, usage)
        latency = (
            (profile.ttft_ms + profile.ms_per_input_token * tokens)
            / 1000.0
            * _jitter(_seed_of(body))
            * state.config.latency_scale
        )
        if latency > 0:
            await asyncio.sleep(latency)
        payload = {"object": "list", "data": data, "model": profile.snapshot, "usage": usage}
        return JSONResponse(payload, headers=_headers(request_id, started, limits))

    def model_entry(p: ModelProfile) -> dict[str, Any]:
        return {"id": p.id, "object": "model", "created": p.created, "owned_by": "system"}

    async def list_models(request: Request) -> Response:
        request_id = "req_" + uuid.uuid4().hex
        try:
            _auth(state, request)
        except _APIError as err:
            return error_response(err, request_id)
        data = [model_entry(p) for p in state.config.models.values()]
        return JSONResponse({"object": "list", "data": data}, headers={"x-request-id": request_id})

    async def get_model(request: Request) -> Response:
        request_id = "req_" + uuid.uuid4().hex
        try:
            _auth(state, request)
            name = request.path_params["model"]
            profile = state.config.profile(name)
            if profile is None:
                raise _APIError(
                    404, f"The model '{name}' does not exist", param="model", code="model_not_found"
                )
        except _APIError as err:
            return error_response(err, request_id)
        return JSONResponse(model_entry(profile), headers={"x-request-id": request_id})

    async def stats(request: Request) -> Response:
        return JSONResponse(state.snapshot())

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        err = _APIError(status, f"Invalid URL ({request.method} {request.url.path})")
        return error_response(err, "req_" + uuid.uuid4().hex)

    app = Starlette(
        routes=[
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            Route("/v1/embeddings", embeddings, methods=["POST"]),
            Route("/v1/models", list_models, methods=["GET"]),
            Route("/v1/models/{model:path}", get_model, methods=["GET"]),
            Route("/_fake/stats", stats, methods=["GET"]),
        ],
        exception_handlers={404: not_found, 405: not_found},
    )
    app.state.fake_openai = state
    return app


def _embedding_inputs(raw: Any) -> list[str | list[int]]:
    if raw is None:
        raise _invalid("Missing required parameter: 'input'.", "input", "missing_required_parameter")
    if isinstance(raw, str):
        items: list[Any] = [raw]
    elif isinstance(raw, list) and raw and all(isinstance(x, int) and not isinstance(x, bool) for x in raw):
        items = [raw]
    elif isinstance(raw, list):
        items = raw
    else:
        raise _invalid("Invalid type for 'input': expected a string or an array.", "input", "invalid_type")
    if not items or len(items) > 2048:
        raise _invalid("'input' must hold between 1 and 2048 entries.", "input")
    for item in items:
        ok = (
            isinstance(item, str)
            and item != ""
            or (isinstance(item, list) and item and all(isinstance(x, int) for x in item))
        )
        if not ok:
            raise _invalid(
                "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.",
                "input",
            )
    return items


def _embedding_dims(body: Mapping[str, Any], profile: ModelProfile) -> int:
    dims = body.get("dimensions")
    if dims is None:
        return profile.dimensions
    if not profile.id.startswith("text-embedding-3"):
        raise _invalid("This model does not support specifying dimensions.", "dimensions")
    if not isinstance(dims, int) or isinstance(dims, bool) or not 1 <= dims <= profile.dimensions:
        raise _invalid(
            f"Invalid 'dimensions': expected an integer between 1 and {profile.dimensions}.", "dimensions"
        )
    return dims


def _embed(text: str, model: str, dims: int) -> list[float]:
    """A deterministic unit vector: hashed bag of words (similar texts are close) plus a little noise."""
    vec = [0.0] * dims
    for word in re.findall(r"[a-z0-9]+", text.lower()):
        digest = hashlib.blake2b(f"{model}:{word}".encode(), digest_size=32).digest()
        for j in range(0, 24, 3):
            idx = int.from_bytes(digest[j : j + 2], "big") % dims
            vec[idx] += 1.0 if digest[j + 2] & 1 else -1.0
    rng = random.Random(hashlib.sha256(f"{model}\x00{text}".encode()).digest())
    vec = [v + rng.gauss(0.0, 0.05) for v in vec]
    norm = math.sqrt(sum(v * v for v in vec)) or 1.0
    return [round(v / norm, 8) for v in vec]


# --------------------------------------------------------------------------------------------------
# Serving


class FakeOpenAIServer:
    """The endpoint served by uvicorn in a background thread.

    >>> server = FakeOpenAIServer(config=FakeOpenAIConfig(latency_scale=0))   # doctest: +SKIP
    >>> base_url = server.start()        # http://127.0.0.1:<port>/v1
    >>> server.stop()
    """

    def __init__(
        self, *, host: str = "127.0.0.1", port: int = 0, config: FakeOpenAIConfig | None = None
    ) -> None:
        self.config = config or FakeOpenAIConfig()
        self.host = host
        self.port = port
        self.app = create_app(self.config)
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """The URL to give ``openai.OpenAI(base_url=...)`` (ends in ``/v1``)."""
        return f"http://{self.host}:{self.port}/v1"

    def stats(self) -> dict[str, Any]:
        """Usage served so far, per model snapshot: requests and token counts; errors by status."""
        state: _State = self.app.state.fake_openai
        return state.snapshot()

    def start(self, timeout: float = 10.0) -> str:
        """Start serving (returns once the port accepts connections) and return :attr:`base_url`."""
        import uvicorn

        if self._thread is not None:
            return self.base_url
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            lifespan="off",
            loop="asyncio",
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        server = self._server
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="fake-openai", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(
                    f"the local OpenAI-compatible endpoint did not start on {self.host}:{self.port}"
                )
            time.sleep(0.01)
        return self.base_url

    def stop(self) -> None:
        """Stop serving and wait for the thread to end."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._thread = None
        self._server = None

    def __enter__(self) -> FakeOpenAIServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def serve_fake_openai(
    port: int = 0,
    *,
    host: str = "127.0.0.1",
    latency_scale: float | None = None,
    config: FakeOpenAIConfig | None = None,
) -> Iterator[str]:
    """Serve the endpoint in a background thread for the ``with`` block; yields the base URL."""
    if config is None:
        config = FakeOpenAIConfig(latency_scale=1.0 if latency_scale is None else latency_scale)
    elif latency_scale is not None:
        config = replace(config, latency_scale=latency_scale)
    server = FakeOpenAIServer(host=host, port=port, config=config)
    server.start()
    try:
        yield server.base_url
    finally:
        server.stop()


@contextmanager
def serve_fake_openai_process(
    port: int = 0, *, host: str = "127.0.0.1", latency_scale: float = 1.0, timeout: float = 30.0
) -> Iterator[str]:
    """Serve the endpoint from a child process for the ``with`` block; yields the base URL.

    Use it when the caller itself is busy (many client threads): the simulated model then does not
    compete with the caller for the interpreter lock, and its latency is what the profile says.
    """
    import subprocess

    import httpx

    if port == 0:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = int(s.getsockname()[1])
    cmd = [sys.executable, "-m", "netra_server.demo.fake_openai", "--host", host, "--port", str(port),
           "--latency-scale", str(latency_scale)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base_url = f"http://{host}:{port}/v1"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                raise RuntimeError(f"the local OpenAI-compatible endpoint exited with {proc.returncode}: {err[-2000:]}")
            try:
                if httpx.get(base_url + "/models", timeout=1, trust_env=False).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the local OpenAI-compatible endpoint did not start on {host}:{port}")
            time.sleep(0.05)
        yield base_url
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m netra_server.demo.fake_openai``: serve the endpoint in the foreground."""
    import os

    import uvicorn

    parser = argparse.ArgumentParser(
        prog="python -m netra_server.demo.fake_openai",
        description="A local OpenAI-compatible endpoint with a simulated model (for demos and tests).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8787)
    parser.add_argument(
        "--latency-scale",
        type=float,
        default=float(os.environ.get(LATENCY_SCALE_ENV, "1.0")),
        help=f"multiply simulated latencies (0 = instant, 1 = realistic; env {LATENCY_SCALE_ENV})",
    )
    parser.add_argument("--api-key", default=None, help="require this API key (default: accept any)")
    parser.add_argument("--rpm", type=int, default=None, help="requests per minute per key before 429")
    args = parser.parse_args(argv)
    config = FakeOpenAIConfig(
        latency_scale=args.latency_scale, api_key=args.api_key, requests_per_minute=args.rpm
    )
    print(
        f"OpenAI-compatible endpoint (simulated model) on http://{args.host}:{args.port}/v1", file=sys.stderr
    )
    uvicorn.run(create_app(config), host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
