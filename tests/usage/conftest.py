from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from netra.usage import AsyncUsageClient, UsageClient

from .scripted_server import ScriptedServer


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    srv = ScriptedServer()
    try:
        yield srv
    finally:
        srv.close()


class Driver:
    """Drives a UsageClient or an AsyncUsageClient with one synchronous interface.

    The async client runs on an event loop in a thread of its own, for the whole test, so its
    connection pool lives on one loop like in an application.
    """

    def __init__(self, kind: str, **kwargs: Any) -> None:
        self.kind = kind
        self.sync: UsageClient | None = None
        self.async_: AsyncUsageClient | None = None
        if kind == "sync":
            self.sync = UsageClient(**kwargs)
            self._loop = None
        else:
            self.async_ = AsyncUsageClient(**kwargs)
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
            self._thread.start()

    def _run(self, coro: Any) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=120)

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        if self.sync is not None:
            return getattr(self.sync, method)(*args, **kwargs)
        assert self.async_ is not None
        return self._run(getattr(self.async_, method)(*args, **kwargs))

    def collect(self, method: str, *args: Any, **kwargs: Any) -> list[Any]:
        if self.sync is not None:
            return list(getattr(self.sync, method)(*args, **kwargs))
        assert self.async_ is not None
        iterator = getattr(self.async_, method)(*args, **kwargs)

        async def drain() -> list[Any]:
            return [item async for item in iterator]

        return list(self._run(drain()))

    def close(self) -> None:
        if self.sync is not None:
            self.sync.close()
            return
        assert self.async_ is not None and self._loop is not None
        self._run(self.async_.aclose())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


@pytest.fixture(params=["sync", "async"])
def driver(request: pytest.FixtureRequest, server: ScriptedServer) -> Iterator[Callable[..., Driver]]:
    """``driver(**client_kwargs)`` builds a Driver of the parametrized kind against ``server``."""
    made: list[Driver] = []

    def make(**kwargs: Any) -> Driver:
        kwargs.setdefault("base_url", server.base_url)
        kwargs.setdefault("api_key", "test-key")
        kwargs.setdefault("backoff_factor", 0.01)
        d = Driver(request.param, **kwargs)
        made.append(d)
        return d

    yield make
    for d in made:
        d.close()


@pytest.fixture(autouse=True)
def _clean_netra_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NETRA_API_KEY", "NETRA_OTLP_ENDPOINT", "NETRA_HEADERS"):
        monkeypatch.delenv(name, raising=False)
