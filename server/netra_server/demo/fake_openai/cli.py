"""``python -m netra_server.demo.fake_openai``: serve the endpoint in the foreground."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Final

from netra_server.demo.fake_openai.app import create_app
from netra_server.demo.fake_openai.models import FakeOpenAIConfig

__all__ = ["LATENCY_SCALE_ENV", "main"]

LATENCY_SCALE_ENV: Final = "NETRA_FAKE_OPENAI_LATENCY_SCALE"


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
