"""Export processors: a bounded, never-blocking batch processor and an inline one (``disable_batch``).

Why our own batch processor: the app must never block or crash when the backend is down, and lost spans
must be *counted* and reported once per outage (not one log line per span or per batch). Spans are
queued in a bounded deque; a daemon thread exports them. A full queue drops the new span and counts it;
a failed export counts its spans. The first loss of an outage is logged once, the recovery is logged once
with the count, and ``shutdown`` logs the totals. ``Netra.export_stats()`` returns the counters.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, attach, detach, set_value
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

logger = logging.getLogger("netra")

__all__ = ["BatchExportProcessor", "ExportStats", "InlineExportProcessor", "QuietExporterLogs"]

# The OTLP/HTTP exporter logs every failed batch and every retry; while Netra reports outages itself
# (once), these records are held back (their text is kept for Netra's own message).
_OTLP_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.common.http",
)


class QuietExporterLogs(logging.Filter):
    """Swallows the OTLP exporter's per-batch warnings and errors, remembering the last one."""

    def __init__(self) -> None:
        super().__init__("netra-quiet-exporter")
        self._recent: deque[str] = deque(maxlen=3)

    @property
    def last_message(self) -> str | None:
        return self._recent[-1] if self._recent else None

    def remember(self, message: str) -> None:
        if message not in self._recent:
            self._recent.append(message)

    def summary(self) -> str | None:
        """The last few distinct messages the exporter logged, oldest first."""
        return " | ".join(self._recent) if self._recent else None

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.CRITICAL:
            return True
        try:
            self.remember(record.getMessage())
        except Exception:
            self.remember(str(record.msg))
        return False

    def install(self) -> None:
        for name in _OTLP_LOGGERS:
            logging.getLogger(name).addFilter(self)

    def remove(self) -> None:
        for name in _OTLP_LOGGERS:
            logging.getLogger(name).removeFilter(self)


@dataclass
class ExportStats:
    """Counters since ``Netra.init``."""

    exported: int = 0
    dropped_queue_full: int = 0
    dropped_export_failed: int = 0
    dropped_after_shutdown: int = 0

    @property
    def dropped(self) -> int:
        return self.dropped_queue_full + self.dropped_export_failed + self.dropped_after_shutdown

    def as_dict(self) -> dict[str, int]:
        out = asdict(self)
        out["dropped"] = self.dropped
        return out


class _Reporter:
    """Counts losses and logs them once per outage."""

    def __init__(self, destination: str, quiet: QuietExporterLogs | None) -> None:
        self.stats = ExportStats()
        self._destination = destination
        self._quiet = quiet
        self._lock = threading.Lock()
        self._in_outage = False
        self._lost_in_outage = 0

    def _detail(self) -> str:
        message = self._quiet.summary() if self._quiet is not None else None
        return f" (exporter said: {message})" if message else ""

    def exported(self, count: int) -> None:
        with self._lock:
            self.stats.exported += count
            if not self._in_outage:
                return
            self._in_outage = False
            lost, self._lost_in_outage = self._lost_in_outage, 0
        logger.warning("Netra: exporting to %s works again; %d spans were lost meanwhile.", self._destination, lost)

    def lost(self, count: int, reason: str) -> None:
        with self._lock:
            if reason == "queue_full":
                self.stats.dropped_queue_full += count
            elif reason == "export_failed":
                self.stats.dropped_export_failed += count
            else:
                self.stats.dropped_after_shutdown += count
            self._lost_in_outage += count
            first = not self._in_outage
            self._in_outage = True
        if first:
            what = "the export queue is full" if reason == "queue_full" else "the export failed"
            if reason == "after_shutdown":
                what = "Netra is shut down"
            logger.warning(
                "Netra: dropping spans for %s: %s%s. Check that the server is running and reachable there "
                "and that the API key is valid. Your app is not affected; further losses are counted "
                "(Netra.export_stats()) and reported when export recovers or at shutdown.",
                self._destination,
                what,
                self._detail(),
            )

    def final_report(self) -> None:
        stats = self.stats
        if stats.dropped:
            logger.warning(
                "Netra: %d spans were not delivered to %s (queue full: %d, export failed: %d, after shutdown: "
                "%d); %d were exported.%s",
                stats.dropped,
                self._destination,
                stats.dropped_queue_full,
                stats.dropped_export_failed,
                stats.dropped_after_shutdown,
                stats.exported,
                self._detail(),
            )


def _export_batch(exporter: SpanExporter, batch: Sequence[ReadableSpan], reporter: _Reporter) -> None:
    token = attach(set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
    try:
        result = exporter.export(batch)
    except Exception as error:  # an exporter must not take the worker down
        logger.debug("Netra: exporter raised", exc_info=True)
        if reporter._quiet is not None:
            reporter._quiet.remember(f"{type(error).__name__}: {error}")
        result = SpanExportResult.FAILURE
    finally:
        detach(token)
    if result is SpanExportResult.SUCCESS:
        reporter.exported(len(batch))
    else:
        reporter.lost(len(batch), "export_failed")


class BatchExportProcessor(SpanProcessor):
    """Bounded queue + one daemon export thread. ``on_end`` never blocks and never raises."""

    def __init__(
        self,
        exporter: SpanExporter,
        *,
        max_queue_size: int = 2048,
        max_export_batch_size: int = 512,
        schedule_delay_millis: float = 1000.0,
        destination: str = "the exporter",
        quiet_logs: QuietExporterLogs | None = None,
    ) -> None:
        if max_queue_size < 1 or max_export_batch_size < 1:
            raise ValueError("max_queue_size and max_export_batch_size must be >= 1")
        self._exporter = exporter
        self._max_queue_size = max_queue_size
        self._batch_size = min(max_export_batch_size, max_queue_size)
        self._delay = schedule_delay_millis / 1000.0
        self._queue: deque[ReadableSpan] = deque()
        self._wake = threading.Event()
        self._export_lock = threading.Lock()
        self._shutdown = False
        self._reporter = _Reporter(destination, quiet_logs)
        self._worker = self._start_worker()
        if hasattr(os, "register_at_fork"):
            weak_self = weakref.ref(self)

            def _after_fork_in_child() -> None:
                processor = weak_self()
                if processor is not None:
                    processor._after_fork()

            os.register_at_fork(after_in_child=_after_fork_in_child)

    def _after_fork(self) -> None:
        """In a forked child the worker thread is gone: start a new one with an empty queue."""
        self._queue.clear()
        self._export_lock = threading.Lock()
        self._wake = threading.Event()
        if not self._shutdown:
            self._worker = self._start_worker()

    @property
    def stats(self) -> ExportStats:
        return self._reporter.stats

    def _start_worker(self) -> threading.Thread:
        worker = threading.Thread(target=self._run, name="NetraSpanExporter", daemon=True)
        worker.start()
        return worker

    def on_end(self, span: ReadableSpan) -> None:
        if self._shutdown:
            self._reporter.lost(1, "after_shutdown")
            return
        queue = self._queue
        if len(queue) >= self._max_queue_size:
            self._reporter.lost(1, "queue_full")
            return
        queue.append(span)
        if len(queue) >= self._batch_size and not self._wake.is_set():
            self._wake.set()

    def _run(self) -> None:
        while not self._shutdown:
            self._wake.wait(self._delay)
            self._wake.clear()
            if self._shutdown:
                break
            self._drain(deadline=None)

    def _drain(self, deadline: float | None) -> bool:
        """Export what is queued now; False if the deadline passed first."""
        timeout = -1.0 if deadline is None else max(0.0, deadline - time.monotonic())
        if not self._export_lock.acquire(timeout=timeout):
            return False
        try:
            queue = self._queue
            while queue:
                if deadline is not None and time.monotonic() > deadline:
                    return False
                batch: list[ReadableSpan] = []
                try:
                    while queue and len(batch) < self._batch_size:
                        batch.append(queue.popleft())
                except IndexError:
                    pass
                if batch:
                    _export_batch(self._exporter, batch, self._reporter)
            return True
        finally:
            self._export_lock.release()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Export everything queued; gives up after ``timeout_millis`` (returns False then)."""
        if self._shutdown:
            return False
        return self._drain(time.monotonic() + timeout_millis / 1000.0)

    def shutdown(self, timeout_millis: int = 5000) -> None:
        """Flush (bounded by ``timeout_millis``), stop the worker, report losses."""
        if self._shutdown:
            return
        deadline = time.monotonic() + timeout_millis / 1000.0
        flushed = self._drain(deadline)
        self._shutdown = True
        self._wake.set()
        if not flushed and self._queue:
            left = len(self._queue)
            self._queue.clear()
            self._reporter.lost(left, "export_failed")
        try:
            self._exporter.shutdown()
        except Exception:
            logger.debug("Netra: exporter shutdown raised", exc_info=True)
        self._worker.join(max(0.0, deadline - time.monotonic()))
        self._reporter.final_report()


class InlineExportProcessor(SpanProcessor):
    """``disable_batch=True``: each span is exported as it ends, in the thread that ends it.

    Meant for scripts, notebooks and tests; failures are still counted and reported once.
    """

    def __init__(
        self, exporter: SpanExporter, *, destination: str = "the exporter", quiet_logs: QuietExporterLogs | None = None
    ) -> None:
        self._exporter = exporter
        self._reporter = _Reporter(destination, quiet_logs)
        self._shutdown = False

    @property
    def stats(self) -> ExportStats:
        return self._reporter.stats

    def on_end(self, span: ReadableSpan) -> None:
        if self._shutdown:
            self._reporter.lost(1, "after_shutdown")
            return
        _export_batch(self._exporter, [span], self._reporter)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    def shutdown(self) -> None:
        if self._shutdown:
            return
        self._shutdown = True
        try:
            self._exporter.shutdown()
        except Exception:
            logger.debug("Netra: exporter shutdown raised", exc_info=True)
        self._reporter.final_report()
