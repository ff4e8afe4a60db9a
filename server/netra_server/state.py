"""The running server's state (``app.state.netra``): :class:`ServerState`, the hooks the app's parts
register for startup and shutdown (:class:`Hooks`), and the recently acknowledged export bodies
(:class:`AckedBodies`)."""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from netra_server.auth import KeyManager
from netra_server.config import Settings
from netra_server.disk import DiskGuard
from netra_server.ingest import GroupCommitter
from netra_server.store import Project, Store
from netra_server.validation import CursorCodec

__all__ = ["AckedBodies", "Hooks", "ServerState"]


@dataclass
class ServerState:
    settings: Settings
    store: Store
    keys: KeyManager
    committer: GroupCommitter
    cursors: CursorCodec
    project: Project
    #: The admin key created at this start (first start only), else None.
    bootstrap_key: str | None = None
    owns_store: bool = True
    #: Parser processes for large export requests (None: parse in this process).
    parsers: Any = None
    #: Bodies acknowledged lately (exporter retries are answered without parsing again).
    acked: AckedBodies = field(default_factory=lambda: AckedBodies())
    #: Free space of the embedded store's folders (None: a ClickHouse server, or the check is off).
    disk: DiskGuard | None = None


class AckedBodies:
    """Digests of export bodies whose spans are durable, with the answer given (rejected count and
    message), for ``max_age`` seconds and at most ``max_entries``.

    An exporter that timed out retries with the very same body; its spans are already stored, so
    the receiver answers again without decoding and re-inserting them (the store would count them
    once anyway). Keyed by project, content type, encoding and the first 128 bits of the SHA-256 of
    the body as received (SHA-256, not BLAKE2b: on a CPU with SHA instructions, as here, it takes half the time,
    on the event loop, for every request).
    """

    def __init__(self, max_entries: int = 16_384, max_age: float = 600.0) -> None:
        self.max_entries = max_entries
        self.max_age = max_age
        self._seen: OrderedDict[tuple[str, str, str, bytes], tuple[float, int, str]] = OrderedDict()
        self.hits = 0

    @staticmethod
    def key(project_id: str, ctype: str, encoding: str, body: bytes) -> tuple[str, str, str, bytes]:
        return (project_id, ctype, encoding, hashlib.sha256(body).digest()[:16])

    def get(self, key: tuple[str, str, str, bytes]) -> tuple[int, str] | None:
        hit = self._seen.get(key)
        if hit is None or time.monotonic() - hit[0] > self.max_age:
            return None
        self.hits += 1
        return hit[1], hit[2]

    def put(self, key: tuple[str, str, str, bytes], rejected: int, message: str) -> None:
        self._seen[key] = (time.monotonic(), rejected, message)
        self._seen.move_to_end(key)
        while len(self._seen) > self.max_entries:
            self._seen.popitem(last=False)


@dataclass
class Hooks:
    """Startup/shutdown callables of extensions; each gets the :class:`ServerState`."""

    on_startup: list[Callable[[ServerState], Awaitable[None]]] = field(default_factory=list)
    on_shutdown: list[Callable[[ServerState], Awaitable[None]]] = field(default_factory=list)
    #: Models whose JSON schemas (validation mode) are added to the OpenAPI components.
    openapi_models: list[type[BaseModel]] = field(default_factory=list)

