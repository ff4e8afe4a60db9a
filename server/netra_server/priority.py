"""CPU priority: reads before ingest when the machine is saturated.

Ingest at full rate can keep every core busy (parsing spans in the parse workers, the journal's INSERTs,
ClickHouse's background merges); a usage read arriving then would queue behind all of it. ``netra serve``
therefore runs the bulk of ingest at a lower Linux priority (a higher *nice* value, ``--ingest-nice``,
10 by default): the parse worker processes (protobuf to rows) and chDB's merge threads. The request
handling, the reads and the thread that inserts the journal keep the normal priority: the INSERT is
what drains acknowledged spans into the store, and a read may wait for it (a strong read, or a bounded
one past its staleness bound), so slowing it would slow reads (and let acknowledged spans pile up). A
read thus takes the CPU it needs first and ingest uses the rest: on an idle machine nothing changes,
on a saturated one reads stay fast while ingest slows by the reads' share (slower parsing answers
exporters later: their own back-pressure). Raising a nice value needs no privilege; lowering it again
does, so nothing here ever lowers one.

Linux only (per-thread nice values); elsewhere these are no-ops.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path

__all__ = ["DEFAULT_INGEST_NICE", "MergeThreads", "lower_this_process"]

log = logging.getLogger("netra_server")

DEFAULT_INGEST_NICE = 10

#: chDB's merge and mutation threads (names as in ``/proc/<pid>/task/<tid>/comm``).
MERGE_THREAD_PREFIXES = ("MergeMutate",)


def _lower(tid: int, nice: int) -> bool:
    """Raise the nice value of thread ``tid`` (0: this process) to ``nice``; False if not possible."""
    if nice <= 0 or not sys.platform.startswith("linux"):
        return False
    try:
        if os.getpriority(os.PRIO_PROCESS, tid) >= nice:
            return True
        os.setpriority(os.PRIO_PROCESS, tid, nice)
        return True
    except OSError:  # the thread is gone, or a sandbox refuses: priority is an optimisation
        return False


def lower_this_process(nice: int = DEFAULT_INGEST_NICE) -> None:
    """Run the calling process at ``nice`` (the parse workers' initializer). Threads started from now on
    inherit it."""
    if nice > 0 and sys.platform.startswith("linux"):
        try:
            os.nice(max(0, nice - os.nice(0)))
        except OSError:
            pass


class MergeThreads:
    """Keeps chDB's merge threads at ``nice``: they are created by ClickHouse's pools as needed, so a
    daemon thread looks for new ones every ``interval`` seconds (``/proc/self/task``)."""

    def __init__(self, nice: int = DEFAULT_INGEST_NICE, interval: float = 5.0) -> None:
        self.nice = nice
        self.interval = interval
        self.lowered: set[int] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def scan(self) -> int:
        """Lower the merge threads not lowered yet; returns how many were lowered now."""
        tasks = Path("/proc/self/task")
        if self.nice <= 0 or not tasks.is_dir():
            return 0
        alive: set[int] = set()
        now = 0
        for task in tasks.iterdir():
            try:
                tid = int(task.name)
                name = (task / "comm").read_text().strip()
            except (OSError, ValueError):
                continue
            if not name.startswith(MERGE_THREAD_PREFIXES):
                continue
            alive.add(tid)
            if tid not in self.lowered and _lower(tid, self.nice):
                self.lowered.add(tid)
                now += 1
        self.lowered &= alive  # thread ids are reused
        return now

    def start(self) -> None:
        if self.nice <= 0 or self._thread is not None:
            return

        def run() -> None:
            while not self._stop.is_set():
                try:
                    self.scan()
                except Exception as exc:  # pragma: no cover - never stops the server
                    log.debug("could not lower the merge threads' priority: %s", exc)
                self._stop.wait(self.interval)

        self._thread = threading.Thread(target=run, name="netra-merge-nice", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
