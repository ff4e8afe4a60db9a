"""Serving the endpoint: in a background thread (:class:`FakeOpenAIServer`) or a child process."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from netra_server.demo.fake_openai.app import create_app
from netra_server.demo.fake_openai.models import FakeOpenAIConfig
from netra_server.demo.fake_openai.state import State
from netra_server.launch import AppThread

__all__ = ["FakeOpenAIServer", "serve_fake_openai", "serve_fake_openai_process"]


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
        self._serving: AppThread | None = None

    @property
    def base_url(self) -> str:
        """The URL to give ``openai.OpenAI(base_url=...)`` (ends in ``/v1``)."""
        return f"http://{self.host}:{self.port}/v1"

    def stats(self) -> dict[str, Any]:
        """Usage served so far, per model snapshot: requests and token counts; errors by status."""
        state: State = self.app.state.fake_openai
        return state.snapshot()

    def start(self, timeout: float = 10.0) -> str:
        """Start serving (returns once the port accepts connections) and return :attr:`base_url`."""
        if self._serving is not None:
            return self.base_url
        serving = AppThread(
            self.app,
            host=self.host,
            port=self.port,
            what="the local OpenAI-compatible endpoint",
            name="fake-openai",
            lifespan="off",
            loop="asyncio",
            graceful_seconds=1,
        )
        try:
            serving.start(timeout)
        except TimeoutError as exc:
            raise RuntimeError(str(exc)) from None
        self.port = serving.port
        self._serving = serving
        return self.base_url

    def stop(self) -> None:
        """Stop serving and wait for the thread to end."""
        if self._serving is not None:
            self._serving.stop(timeout=10)
        self._serving = None

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

    from netra_server.launch import ChildExited, free_port, stop_child, wait_until_answers

    if port == 0:
        port = free_port(host)
    cmd = [sys.executable, "-m", "netra_server.demo.fake_openai", "--host", host, "--port", str(port),
           "--latency-scale", str(latency_scale)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base_url = f"http://{host}:{port}/v1"

    def stderr() -> str:
        return proc.stderr.read().decode(errors="replace")[-2000:] if proc.stderr else ""

    try:
        try:
            wait_until_answers(base_url + "/models", proc, timeout=timeout, output=stderr)
        except ChildExited as exc:
            raise RuntimeError(
                f"the local OpenAI-compatible endpoint exited with {exc.returncode}: {exc.output}"
            ) from None
        except TimeoutError:
            raise RuntimeError(f"the local OpenAI-compatible endpoint did not start on {host}:{port}") from None
        yield base_url
    finally:
        stop_child(proc, timeout=10)
        if proc.stderr is not None:
            proc.stderr.close()
