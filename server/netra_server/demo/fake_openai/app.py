"""The ASGI app: OpenAI's routes, authentication, rate limits, headers and error bodies."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import struct
import time
import uuid
from collections.abc import Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from netra_server.demo.fake_openai.chat import (
    choice_message,
    complete_chat,
    ident,
    stream_chunks,
    validate_chat,
)
from netra_server.demo.fake_openai.embeddings import embed, embedding_dims, embedding_inputs
from netra_server.demo.fake_openai.errors import APIError, injected_error, invalid
from netra_server.demo.fake_openai.latency import first_token_share, latency_seconds, seed_of
from netra_server.demo.fake_openai.models import FakeOpenAIConfig, ModelProfile
from netra_server.demo.fake_openai.state import State
from netra_server.demo.fake_openai.tokens import count_tokens

__all__ = ["create_app"]


def _auth(state: State, request: Request) -> str:
    header = request.headers.get("authorization", "")
    key = header[7:].strip() if header.lower().startswith("bearer ") else ""
    if not key:
        key = request.headers.get("api-key", "")
    expected = state.config.api_key
    if expected is not None:
        if not key:
            raise APIError(
                401,
                "You didn't provide an API key. You need to provide your API key in an Authorization "
                "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            )
        if key != expected:
            shown = key[:3] + "*" * max(0, len(key) - 7) + key[-4:] if len(key) > 7 else "***"
            raise APIError(
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
        raise invalid(
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using "
            "your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not "
            "valid JSON.)"
        ) from None
    if not isinstance(body, dict):
        raise invalid(f"Invalid type for request body: expected an object, but got {type(body).__name__}.")
    return body


def _model_of(state: State, body: Mapping[str, Any], kind: str) -> ModelProfile:
    model = body.get("model")
    if not model or not isinstance(model, str):
        raise invalid("you must provide a model parameter", param="model")
    profile = state.config.profile(model)
    if profile is None:
        raise APIError(
            404,
            f"The model `{model}` does not exist or you do not have access to it.",
            code="model_not_found",
        )
    if profile.kind != kind:
        if kind == "chat":
            raise APIError(
                404,
                "This is not a chat model and thus not supported in the v1/chat/completions endpoint. "
                "Did you mean to use v1/completions?",
                param="model",
            )
        raise invalid(f"Model {model} does not support embeddings.", param="model")
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


def create_app(config: FakeOpenAIConfig | None = None) -> Starlette:
    """The ASGI app of the simulated endpoint (serve it with any ASGI server)."""
    state = State(config or FakeOpenAIConfig())

    def error_response(err: APIError, request_id: str) -> JSONResponse:
        state.record_error(err.status)
        headers = {"x-request-id": request_id, **err.headers}
        return JSONResponse(err.body, status_code=err.status, headers=headers)

    async def admitted(request: Request, kind: str) -> tuple[tuple[int, int], dict[str, Any], ModelProfile]:
        """What every API route checks first: the key, an injected error, the rate limit, the body, the model."""
        injected = request.headers.get("x-fake-openai-error")
        key = _auth(state, request)
        if injected:
            raise injected_error(int(injected))
        limits = state.admit(key)
        body = await _json_body(request)
        return limits, body, _model_of(state, body, kind)

    async def chat_completions(request: Request) -> Response:
        request_id = "req_" + uuid.uuid4().hex
        started = time.monotonic()
        try:
            limits, body, profile = await admitted(request, "chat")
            validate_chat(body, profile)
            choices, usage, latency = complete_chat(state, body, profile)
        except APIError as err:
            return error_response(err, request_id)
        state.record(profile.snapshot, usage)
        created = int(time.time())
        completion_id = ident("chatcmpl-")
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
            return StreamingResponse(
                stream_chunks(choices, usage, latency, first_token_share(profile), base, include_usage),
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
                {"index": i, "message": choice_message(c), "logprobs": None, "finish_reason": c.finish_reason}
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
            limits, body, profile = await admitted(request, "embedding")
            texts = embedding_inputs(body.get("input"))
            dims = embedding_dims(body, profile)
            fmt = body.get("encoding_format") or "float"
            if fmt not in ("float", "base64"):
                raise invalid(
                    f"Invalid value for 'encoding_format': expected 'float' or 'base64', got {fmt!r}.",
                    "encoding_format",
                )
        except APIError as err:
            return error_response(err, request_id)
        tokens = 0
        data = []
        for i, item in enumerate(texts):
            if isinstance(item, str):
                n = count_tokens(item)
                vec = embed(item, profile.id, dims)
            else:
                n = len(item)
                vec = embed(" ".join(map(str, item)), profile.id, dims)
            if n > profile.context_window:
                return error_response(
                    invalid(
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
        latency = latency_seconds(
            profile, input_tokens=tokens, output_tokens=0, seed=seed_of(body), scale=state.config.latency_scale
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
        except APIError as err:
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
                raise APIError(
                    404, f"The model '{name}' does not exist", param="model", code="model_not_found"
                )
        except APIError as err:
            return error_response(err, request_id)
        return JSONResponse(model_entry(profile), headers={"x-request-id": request_id})

    async def stats(request: Request) -> Response:
        return JSONResponse(state.snapshot())

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        err = APIError(status, f"Invalid URL ({request.method} {request.url.path})")
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
