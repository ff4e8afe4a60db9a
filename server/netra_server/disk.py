"""Free disk space of the embedded store's folders, against a floor under which ingest stops.

A write that fails for lack of space is never acknowledged (the journal append and the INSERT both
raise, see ``netra_server.store``), so a full disk loses nothing acknowledged; but chDB needs free
space for its merges and for reads, and a disk filled to the last byte leaves the server unable to
insert even what its journal holds. So the receiver refuses new spans (a margin, not the guarantee:
a write that fails anyway is handled as any store failure) while the free space of any
folder the server writes (the store, the ingest journal) is under ``floor_bytes``: it answers 503
with ``Retry-After`` (the OTLP exporters retry it; 507 would make them drop the batch), logs the
change once, and ``/healthz`` reports it. Above the floor again, ingest resumes by itself.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DiskGuard", "DiskStatus"]

log = logging.getLogger("netra_server.disk")


@dataclass(frozen=True)
class DiskStatus:
    #: The folder with the least free space.
    path: str
    free_bytes: int
    floor_bytes: int

    @property
    def low(self) -> bool:
        return self.floor_bytes > 0 and self.free_bytes < self.floor_bytes

    def message(self) -> str:
        return (
            f"free disk space of {self.path} is {self.free_bytes // (1024 * 1024)} MiB, under the "
            f"{self.floor_bytes // (1024 * 1024)} MiB floor (--min-free-disk-mb): new spans are refused "
            "until space is freed; spans already acknowledged are kept"
        )


class DiskGuard:
    """Checks the free space of ``paths`` (one ``statvfs`` each, per check: a check per export
    request costs about a microsecond)."""

    def __init__(self, paths: list[Path], floor_bytes: int) -> None:
        self.paths = [Path(p) for p in paths]
        self.floor_bytes = max(0, floor_bytes)
        self._low = False
        self._lock = threading.Lock()

    def status(self) -> DiskStatus:
        worst: DiskStatus | None = None
        for path in self.paths:
            probe = path
            while not probe.exists() and probe.parent != probe:  # a folder not created yet: its parent's disk
                probe = probe.parent
            try:
                st = os.statvfs(probe)
            except OSError:
                continue
            free = st.f_bavail * st.f_frsize
            if worst is None or free < worst.free_bytes:
                worst = DiskStatus(str(path), free, self.floor_bytes)
        return worst or DiskStatus("", 0, 0)

    def check(self) -> DiskStatus:
        """The status now; logs once when ingest stops for lack of space, and once when it resumes."""
        status = self.status()
        low = status.low
        if low != self._low:
            with self._lock:
                if low != self._low:
                    self._low = low
                    if low:
                        log.error("%s", status.message())
                    else:
                        log.warning("free disk space of %s is back above the floor (%d MiB free): accepting spans again",
                                    status.path, status.free_bytes // (1024 * 1024))
        return status

    @property
    def refusing(self) -> bool:
        """Whether the last :meth:`check` found the space under the floor."""
        return self._low
