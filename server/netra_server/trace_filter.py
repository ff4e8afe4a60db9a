"""Which traces the span index may hold: a scalable Bloom filter in memory (``netra_server.billing``
uses it so an insert of fresh traces skips the index lookup on the embedded store)."""

from __future__ import annotations

import threading
from collections.abc import Iterable

from rbloom import Bloom

__all__ = ["TraceFilter"]


class TraceFilter:
    """The (project, trace) pairs that may have index rows: a scalable Bloom filter in memory.

    ``may_hold`` is False only for a trace that was never added: each filter of the chain is sized for
    ``capacity`` times 2**i traces at a false-positive rate of ``error_rate`` / 2**i, so the rate stays
    under 2 * ``error_rate`` however many traces come (about 2.4 bytes per trace at 1e-4). Until
    :attr:`ready` (the index loaded), everything may be held. Adding and asking are thread-safe (each
    Bloom operation runs under the GIL; a new filter is appended before it is used)."""

    def __init__(self, capacity: int = 1 << 20, error_rate: float = 1e-4) -> None:
        self._capacity = capacity
        self._error_rate = error_rate
        self._filters: list[Bloom] = [Bloom(capacity, error_rate)]
        self._room = capacity  # adds left before the newest filter is full
        self._grow = threading.Lock()
        self.added = 0
        self.ready = False

    @staticmethod
    def _key(project: str, trace: str) -> str:
        return project + "\0" + trace

    def add(self, project: str, traces: Iterable[str]) -> None:
        keys = [self._key(project, t) for t in traces]
        with self._grow:
            while keys:
                if self._room <= 0:
                    n = len(self._filters)
                    self._filters.append(Bloom(self._capacity << n, self._error_rate / (1 << n)))
                    self._room = self._capacity << n
                part, keys = keys[: self._room], keys[self._room:]
                self._filters[-1].update(part)
                self._room -= len(part)
                self.added += len(part)

    def may_hold(self, project: str, trace: str) -> bool:
        if not self.ready:
            return True
        key = self._key(project, trace)
        return any(key in f for f in self._filters)

    def may_hold_some(self, project: str, traces: Iterable[str]) -> list[str]:
        """The traces of ``traces`` that may be indexed (:meth:`may_hold` of each, in one pass)."""
        if not self.ready:
            return list(traces)
        prefix = project + "\0"
        filters = self._filters
        if len(filters) == 1:
            f = filters[0]
            return [t for t in traces if prefix + t in f]
        return [t for t in traces if any(prefix + t in f for f in filters)]

    @property
    def bytes(self) -> int:
        """Memory of the bit arrays."""
        return sum(f.size_in_bits // 8 for f in self._filters)
