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

The package, by concern (each module's docstring says more):

* :mod:`.models`: the simulated models and :class:`FakeOpenAIConfig`;
* :mod:`.tokens`: the offline tokenizer; :mod:`.text`: the deterministic answers;
  :mod:`.latency`: the latency model;
* :mod:`.chat` and :mod:`.embeddings`: the two APIs; :mod:`.errors`: OpenAI's error bodies;
  :mod:`.state`: prompt cache, rate limits and stats; :mod:`.app`: the routes (the ASGI app);
* :mod:`.runner`: serving it from a thread or a child process; :mod:`.cli`: ``python -m``.

The names below are the public API; the modules' other names are internal.
"""

from __future__ import annotations

from netra_server.demo.fake_openai.app import create_app
from netra_server.demo.fake_openai.cli import main
from netra_server.demo.fake_openai.models import DEFAULT_MODELS, FakeOpenAIConfig, ModelProfile
from netra_server.demo.fake_openai.runner import (
    FakeOpenAIServer,
    serve_fake_openai,
    serve_fake_openai_process,
)
from netra_server.demo.fake_openai.tokens import count_message_tokens, count_tokens, tokenize

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
