"""The server's lifecycle: open, migrate and bootstrap the store (:func:`prepare_store`), recover and
open the embedded store's ingest journal (:func:`recover_journal`, :func:`open_journal`), keep the
daily rollups current (:func:`refresh_rollups`), and the app's startup/shutdown (:func:`lifespan`):
the :class:`~netra_server.state.ServerState` is ``app.state.netra`` between the two."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

# The alert tables' migration is registered when netra_server.alerts is imported: import it before
# any store is migrated.
import netra_server.alerts  # noqa: F401
from netra_server import priority
from netra_server.auth import FailureLimiter, KeyManager
from netra_server.config import Settings
from netra_server.disk import DiskGuard
from netra_server.ingest import GroupCommitter
from netra_server.journal import Journal
from netra_server.receiver import start_parser_process, warm_parser
from netra_server.state import Hooks, ServerState
from netra_server.store import Project, Store, StoreError, open_store
from netra_server.validation import CursorCodec

__all__ = ["lifespan", "open_journal", "prepare_store", "recover_journal", "refresh_rollups"]

log = logging.getLogger("netra_server")


def prepare_store(settings: Settings, store: Store | None = None) -> tuple[Store, Project, str | None]:
    """Open (unless given), migrate and bootstrap the store; returns it, the default project and the
    admin key created now (first start) or None."""
    if store is None:
        store = open_store(settings.resolved_store_url(), threads=settings.query_threads,
                           memory_limit_bytes=settings.store_memory_bytes)
    try:
        store.migrate(settings.retention_days)
        store.start_trace_filter()  # fresh traces skip the span-index lookup once it has loaded
        _live_usage(settings, store)
        store.usage_cache_seconds = settings.usage_cache_seconds
        recover_journal(settings, store)  # what a previous process acknowledged, before anything else
        keys = KeyManager(store, cache_seconds=settings.key_cache_seconds)
        project, key = keys.bootstrap(project_name=settings.project_name, seed_key=settings.api_key)
    except Exception:
        store.close()
        raise
    return store, project, key


def _live_usage(settings: Settings, store: Store) -> None:
    """Keep the live usage table (usage of the day being written, kept current at insert) unless told
    not to; a failure to start it is logged and the server runs without it (reads use the spans)."""
    try:
        if not settings.live_usage or not settings.journal:
            # without the journal a failed insert may leave rows nobody inserts again: the table would
            # not know whether to count them
            store.stop_live_usage()
        elif not store.start_live_usage():
            store.stop_live_usage()  # a ClickHouse server: no view that adds nothing to every INSERT
    except Exception as exc:  # a startup aid, never a reason not to start
        log.warning("live usage table not kept (usage reads of the day being written use the spans): %s", exc)


def _journal_dir(settings: Settings, store: Store) -> Path | None:
    path = getattr(store.backend, "path", None)
    return settings.journal_dir(path) if store.kind == "chdb" and path else None


def _disk_guard(settings: Settings, store: Store) -> DiskGuard | None:
    path = getattr(store.backend, "path", None)
    if store.kind != "chdb" or not path or settings.min_free_disk_bytes <= 0:
        return None
    guard = DiskGuard([Path(path), settings.journal_dir(path)], settings.min_free_disk_bytes)
    guard.check()  # logs now if the disk is already under the floor
    return guard


def recover_journal(settings: Settings, store: Store) -> int:
    """Insert what a previous process left in the embedded store's ingest journal (also when this one
    runs with ``journal=False``: those spans were acknowledged); returns the spans inserted."""
    directory = _journal_dir(settings, store)
    if directory is None or not directory.is_dir():
        return 0
    recovered = Journal(directory, store.insert_spans).recover()
    if recovered:
        log.warning("inserted %d acknowledged span(s) that the previous run left in the ingest journal", recovered)
    return recovered


def open_journal(settings: Settings, store: Store) -> Journal | None:
    """The ingest journal of an embedded store (None for a ClickHouse server: its processes keep no
    state); reads of the store wait for it (``Store.read_barrier``). Call after :func:`recover_journal`
    (``prepare_store`` does), which inserted what a previous process left."""
    directory = _journal_dir(settings, store)
    if directory is None:
        return None
    journal = Journal(directory, store.insert_spans, fsync=settings.journal_fsync)
    store.read_barrier = journal
    store.read_consistency, store.max_read_staleness = settings.read_consistency, settings.max_read_staleness
    return journal


async def refresh_rollups(state: ServerState, days_per_call: int = 4) -> None:
    """Keep the daily rollups current (``Store.refresh_rollups``) while the server runs: a few days per
    call (so a shutdown waits for at most those), again at once while days are left."""
    settings = state.settings
    while True:
        days: list[str] = []
        try:
            days = await state.store.run(
                state.store.refresh_rollups, settle_seconds=settings.rollup_settle_seconds, max_days=days_per_call
            )
            if days:
                log.info("rolled up %d day(s): %s", len(days), ", ".join(days))
        except StoreError as exc:
            log.warning("rollup refresh failed (reads stay exact, from the spans): %s", exc)
        except Exception:
            log.exception("rollup refresh failed")
        await asyncio.sleep(0 if len(days) == days_per_call else settings.rollup_interval)



def lifespan(
    settings: Settings, store: Store | None, hooks: Hooks
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """The app's lifespan: at startup open the store (unless ``store`` is given: the caller closes it),
    the journal, the group committer, the parser processes and the rollup refresher, then run
    ``hooks.on_startup``; at shutdown the reverse."""

    @asynccontextmanager
    async def run(app: FastAPI) -> AsyncIterator[None]:
        owns = store is None
        st, project, key = await asyncio.to_thread(prepare_store, settings, store)
        keys = KeyManager(
            st, cache_seconds=settings.key_cache_seconds, negative_cache_seconds=settings.negative_key_cache_seconds,
            limiter=FailureLimiter(settings.auth_failure_burst, settings.auth_failures_per_second),
        )
        try:
            journal = await asyncio.to_thread(open_journal, settings, st) if settings.journal else None
        except Exception:
            if owns:
                st.close()
            raise
        committer = GroupCommitter(
            st, max_batch_spans=settings.limits.max_batch_spans, max_pending_spans=settings.limits.max_pending_spans,
            journal=journal, flush_seconds=settings.journal_flush_seconds, max_lag_seconds=settings.max_ingest_lag,
            admit_wait_seconds=settings.ingest_wait_seconds,
        )
        committer.start()
        cursors = CursorCodec(await st.run(st.secret))
        state = ServerState(settings, st, keys, committer, cursors, project, key, owns)
        state.disk = _disk_guard(settings, st)
        workers = settings.resolved_parse_workers()
        if workers:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            state.parsers = ProcessPoolExecutor(
                workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=start_parser_process, initargs=(os.getpid(), settings.ingest_nice),
            )
            loop = asyncio.get_running_loop()
            await asyncio.gather(*(loop.run_in_executor(state.parsers, warm_parser) for _ in range(workers)))
        app.state.netra = state
        _tune_gc()
        merges = priority.MergeThreads(settings.ingest_nice) if st.kind == "chdb" else None
        if merges is not None:
            merges.start()
        refresher = (
            asyncio.get_running_loop().create_task(refresh_rollups(state), name="netra-rollups")
            if settings.rollup_interval > 0 else None
        )
        try:
            for fn in hooks.on_startup:
                await fn(state)
            yield
        finally:
            if refresher is not None:
                refresher.cancel()
            if merges is not None:
                merges.stop()
            for fn in hooks.on_shutdown:
                try:
                    await fn(state)
                except Exception:
                    log.exception("shutdown hook failed")
            await committer.stop()
            st.read_barrier = None
            if state.parsers is not None:
                state.parsers.shutdown(wait=True, cancel_futures=True)
            app.state.netra = None
            if owns:
                await asyncio.to_thread(st.close)

    return run


#: The server process's garbage-collector thresholds once it has started (Python's are 700, 10, 10).
GC_THRESHOLDS = (50_000, 20, 10)


def _tune_gc() -> None:
    """Make the collector cheap under ingest: every request brings hundreds of span keys (tuples) from
    the parse workers, which with Python's thresholds start a collection every few requests, each
    walking what the server holds (``bench_server.py``: 1,659 collections, 2.0 s of the server's CPU
    over 614,400 new spans; 250 and 0.2 s with this). The objects made by then (the app, the modules,
    the store) are frozen out of every collection, and a young collection waits for 50,000 new objects.
    Once per process (the settings are the process's; a test process runs several servers)."""
    if gc.get_threshold() == GC_THRESHOLDS:
        return
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
