"""Embeddings: input validation and deterministic vectors (similar texts are close)."""

from __future__ import annotations

import hashlib
import math
import random
import re
from collections.abc import Mapping
from typing import Any

from netra_server.demo.fake_openai.errors import invalid
from netra_server.demo.fake_openai.models import ModelProfile

__all__ = ["embed", "embedding_dims", "embedding_inputs"]


def embedding_inputs(raw: Any) -> list[str | list[int]]:
    if raw is None:
        raise invalid("Missing required parameter: 'input'.", "input", "missing_required_parameter")
    if isinstance(raw, str):
        items: list[Any] = [raw]
    elif isinstance(raw, list) and raw and all(isinstance(x, int) and not isinstance(x, bool) for x in raw):
        items = [raw]
    elif isinstance(raw, list):
        items = raw
    else:
        raise invalid("Invalid type for 'input': expected a string or an array.", "input", "invalid_type")
    if not items or len(items) > 2048:
        raise invalid("'input' must hold between 1 and 2048 entries.", "input")
    for item in items:
        ok = (
            isinstance(item, str)
            and item != ""
            or (isinstance(item, list) and item and all(isinstance(x, int) for x in item))
        )
        if not ok:
            raise invalid(
                "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.",
                "input",
            )
    return items


def embedding_dims(body: Mapping[str, Any], profile: ModelProfile) -> int:
    dims = body.get("dimensions")
    if dims is None:
        return profile.dimensions
    if not profile.id.startswith("text-embedding-3"):
        raise invalid("This model does not support specifying dimensions.", "dimensions")
    if not isinstance(dims, int) or isinstance(dims, bool) or not 1 <= dims <= profile.dimensions:
        raise invalid(
            f"Invalid 'dimensions': expected an integer between 1 and {profile.dimensions}.", "dimensions"
        )
    return dims


def embed(text: str, model: str, dims: int) -> list[float]:
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
