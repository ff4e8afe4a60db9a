"""Reads before ingest on a saturated machine (``netra_server.priority``): a real ``netra serve`` runs its
parse workers and chDB's merge threads at the ingest nice value, and its request handling (reads) and
the journal's INSERT thread at the normal one."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from netra_server import priority

from ._helpers import children

pytestmark = pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="Linux per-thread nice values")


def _nice(pid_or_tid: int) -> int:
    """The nice value of a process or thread (field 19 of /proc/<id>/stat)."""
    for base in (Path(f"/proc/{pid_or_tid}"), *Path("/proc").glob(f"*/task/{pid_or_tid}")):
        stat = base / "stat"
        if stat.exists():
            return int(stat.read_text().rsplit(")", 1)[1].split()[16])
    raise LookupError(pid_or_tid)


def _threads(pid: int) -> dict[int, str]:
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out[int(task.name)] = (task / "comm").read_text().strip()
        except OSError:
            continue
    return out


def test_merge_threads_are_lowered_and_others_are_not() -> None:
    """Threads named as chDB's merge threads get the nice value; others keep theirs."""
    stop = threading.Event()
    tids: dict[str, int] = {}

    def named(name: str) -> None:
        tid = threading.get_native_id()
        Path(f"/proc/self/task/{tid}/comm").write_text(name)
        tids[name] = tid
        stop.wait(30)

    threads = [threading.Thread(target=named, args=(n,), daemon=True) for n in ("MergeMutate", "QueryPipeline")]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 10
        while len(tids) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        before = _nice(tids["QueryPipeline"])
        merges = priority.MergeThreads(nice=7)
        assert merges.scan() == 1
        assert _nice(tids["MergeMutate"]) == 7
        assert _nice(tids["QueryPipeline"]) == before
        assert _nice(threading.get_native_id()) == before  # the caller too
        assert merges.scan() == 0  # once per thread
        assert priority.MergeThreads(nice=0).scan() == 0  # 0: off
    finally:
        stop.set()


def test_a_server_runs_parsing_and_merges_below_its_reads(tmp_path: Path) -> None:
    from netra_server.auth import new_key
    from netra_server.launch import free_port, start_serve, stop_child

    key, port = new_key(), free_port()
    proc = start_serve(tmp_path / "data", port=port, api_key=key, args=["--parse-workers", "2"],
                       log_path=tmp_path / "serve.log")
    try:
        workers = [p for p in (int(c) for c in children(proc.pid))
                   if "spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes().decode(errors="replace")]
        assert len(workers) >= 2
        assert {_nice(p) for p in workers} == {priority.DEFAULT_INGEST_NICE}
        deadline = time.monotonic() + 30
        while True:  # the merge threads are lowered within the scan interval
            threads = _threads(proc.pid)
            merges = [t for t, name in threads.items() if name.startswith(priority.MERGE_THREAD_PREFIXES)]
            if merges and all(_nice(t) == priority.DEFAULT_INGEST_NICE for t in merges):
                break
            assert time.monotonic() < deadline, {t: (threads[t], _nice(t)) for t in merges}
            time.sleep(0.5)
        others = [t for t, name in threads.items() if not name.startswith(priority.MERGE_THREAD_PREFIXES)]
        assert _nice(proc.pid) == os.nice(0)  # the server's main thread (requests, reads)
        # reads, the INSERT thread, everything else (chDB runs its memory worker at -20 itself)
        assert max(_nice(t) for t in others) == os.nice(0)
    finally:
        stop_child(proc)


def test_ingest_nice_0_changes_nothing(tmp_path: Path) -> None:
    from netra_server.auth import new_key
    from netra_server.launch import free_port, start_serve, stop_child

    key, port = new_key(), free_port()
    proc = start_serve(tmp_path / "data", port=port, api_key=key, args=["--parse-workers", "1", "--ingest-nice", "0"],
                       log_path=tmp_path / "serve.log")
    try:
        time.sleep(6)  # past one scan interval
        ids = [*_threads(proc.pid), *(int(c) for c in children(proc.pid))]
        assert max(_nice(t) for t in ids) == os.nice(0)
    finally:
        stop_child(proc)

