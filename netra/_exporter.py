"""Export processors: a bounded, never-blocking batch processor and an inline one (``disable_batch``).

Why our own batch processor: the app must never block or crash when the backend is down, and lost spans
must be *counted* and reported (not one log line per span or per batch). Spans are queued in memory; a
daemon thread exports them. ``on_end`` never blocks and never raises.

Sizing (docs/sdk.md, "Export queue"): a burst of spans is absorbed by the queue while the export thread
catches up, so the queue is sized for bursts, and bounded twice: by span count (``max_queue_size``,
default 32,768) and by memory (``max_queue_bytes``, default 64 MiB: the sum of :func:`estimate_size` of
the queued spans, about 7% of a ``Netra.start_span`` span in CPU instructions, on the calling thread). A span that does not fit is dropped and
counted (``dropped_queue_full``); a failed export counts its spans. The first loss of an
episode is logged (at most once a minute), its end is logged with the count, and ``shutdown`` logs the
totals. ``Netra.export_stats()`` returns the counters.
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
from typing import Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, attach, detach, set_value
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

logger = logging.getLogger("netra")

__all__ = ["BatchExportProcessor", "ExportStats", "InlineExportProcessor", "QuietExporterLogs", "estimate_size"]

_UNKNOWN_SIZE = 64 * 1024
DEFAULT_MAX_QUEUE_SIZE = 32_768
DEFAULT_MAX_QUEUE_BYTES = 64 * 1024 * 1024
#: a new loss episode is logged at most this often (seconds); every loss is counted regardless
LOG_INTERVAL_S = 60.0

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
    """Counts losses; logs the start of a loss episode (at most once per ``LOG_INTERVAL_S``) and its end."""

    def __init__(self, destination: str, quiet: QuietExporterLogs | None) -> None:
        self.stats = ExportStats()
        self._destination = destination
        self._quiet = quiet
        self._lock = threading.Lock()
        self._in_outage = False
        self._logged = False  # the current episode's start was logged
        self._last_log = -LOG_INTERVAL_S
        self._lost_unreported = 0
        self._in_flight = 0  # spans handed to the exporter whose outcome is not known yet
        self._closed = False  # final_report ran: a late outcome was already counted as lost

    def begin(self, count: int) -> None:
        with self._lock:
            self._in_flight += count

    def end(self, count: int, success: bool) -> None:
        with self._lock:
            self._in_flight -= count
            if self._closed:
                return
        if success:
            self.exported(count)
        else:
            self.lost(count, "export_failed")

    def _detail(self) -> str:
        message = self._quiet.summary() if self._quiet is not None else None
        return f" (exporter said: {message})" if message else ""

    def exported(self, count: int) -> None:
        with self._lock:
            self.stats.exported += count
            if not self._in_outage:
                return
            self._in_outage = False
            if not self._logged:  # a quiet episode (rate-limited): its losses go into the next report
                return
            lost, self._lost_unreported = self._lost_unreported, 0
        logger.warning(
            "Netra: exporting to %s works again; %d spans were lost since the last report.", self._destination, lost
        )

    def lost(self, count: int, reason: str) -> None:
        with self._lock:
            if reason == "queue_full":
                self.stats.dropped_queue_full += count
            elif reason == "export_failed":
                self.stats.dropped_export_failed += count
            else:
                self.stats.dropped_after_shutdown += count
            self._lost_unreported += count
            if self._in_outage:
                return
            self._in_outage = True
            now = time.monotonic()
            self._logged = now - self._last_log >= LOG_INTERVAL_S
            if not self._logged:
                return
            self._last_log = now
        what = "the export queue is full" if reason == "queue_full" else "the export failed"
        if reason == "after_shutdown":
            what = "Netra is shut down"
        hint = "Check that the server is running and reachable there and that the API key is valid."
        if reason == "queue_full":
            hint += (
                " If it is, the app makes spans faster than they can be sent: raise Netra.init(max_queue_size=..., "
                "max_queue_bytes=...) (env OTEL_BSP_MAX_QUEUE_SIZE, NETRA_MAX_QUEUE_BYTES)."
            )
        logger.warning(
            "Netra: dropping spans for %s: %s%s. %s Your app is not affected; further losses are counted "
            "(Netra.export_stats()) and reported when export recovers or at shutdown.",
            self._destination,
            what,
            self._detail(),
            hint,
        )

    def final_report(self) -> None:
        """Log the totals once; spans still being exported (shutdown's time ran out) count as not delivered."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            stats = self.stats
            stats.dropped_export_failed += self._in_flight
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
    reporter.begin(len(batch))
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
    reporter.end(len(batch), result is SpanExportResult.SUCCESS)


def _values_size(values: Any) -> int:
    size = 32 * len(values)
    for value in values.values():
        cls = value.__class__
        if cls is str:
            size += 40 + len(value)
        elif cls is tuple:
            size += 8 * len(value)
            for item in value:
                if item.__class__ is str:
                    size += 40 + len(item)
    return size


def estimate_size(span: ReadableSpan) -> int:
    """The memory a finished span holds while queued, in bytes, estimated (cheaply: it runs for every span).

    Calibrated with tracemalloc against the OpenTelemetry SDK's spans: ~2.8 KB for a span without
    attributes, ~32 bytes per attribute, each string's length plus ~40 bytes, ~0.5 KB per event. It
    over-estimates spans with many numeric attributes, never a span's text.
    """
    size = 2816
    attributes = span._attributes
    if attributes:
        values: Any = attributes._dict if attributes.__class__ is BoundedAttributes else attributes
        size += 32 * len(values)
        value: Any
        for value in values.values():  # inline: this runs for every span, on the app's thread
            cls = value.__class__
            if cls is str:
                size += 40 + len(value)
            elif cls is tuple:
                size += 8 * len(value)
                for item in value:
                    if item.__class__ is str:
                        size += 40 + len(item)
    if span._events:
        for event in span._events:
            size += 512
            event_attributes = event.attributes
            if event_attributes:
                size += _values_size(getattr(event_attributes, "_dict", event_attributes))
    if span._links:
        size += 256 * len(span._links)
    return size


class BatchExportProcessor(SpanProcessor):
    """Bounded queue + one daemon export thread. ``on_end`` never blocks and never raises."""

    def __init__(
        self,
        exporter: SpanExporter,
        *,
        max_queue_size: int = DEFAULT_MAX_QUEUE_SIZE,
        max_queue_bytes: int = DEFAULT_MAX_QUEUE_BYTES,
        max_export_batch_size: int = 512,
        schedule_delay_millis: float = 1000.0,
        destination: str = "the exporter",
        quiet_logs: QuietExporterLogs | None = None,
    ) -> None:
        if max_queue_size < 1 or max_export_batch_size < 1:
            raise ValueError("max_queue_size and max_export_batch_size must be >= 1")
        if max_queue_bytes < 1:
            raise ValueError("max_queue_bytes must be >= 1")
        self._exporter = exporter
        self._max_queue_size = max_queue_size
        self._max_bytes = max_queue_bytes
        self._batch_size = min(max_export_batch_size, max_queue_size)
        self._delay = schedule_delay_millis / 1000.0
        self._queue: deque[tuple[ReadableSpan, int]] = deque()  # (span, estimated size)
        self._bytes = 0  # estimated size of the queued spans
        self._bytes_lock = threading.Lock()
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
        self._bytes = 0
        self._bytes_lock = threading.Lock()
        self._export_lock = threading.Lock()
        self._wake = threading.Event()
        if not self._shutdown:
            self._worker = self._start_worker()

    @property
    def stats(self) -> ExportStats:
        return self._reporter.stats

    @property
    def queued_bytes(self) -> int:
        """The estimated size in bytes of the spans waiting in the queue (at most ``max_queue_bytes``)."""
        return self._bytes

    def _start_worker(self) -> threading.Thread:
        worker = threading.Thread(target=self._run, name="NetraSpanExporter", daemon=True)
        worker.start()
        return worker

    def on_end(self, span: ReadableSpan) -> None:
        if self._shutdown:
            self._reporter.lost(1, "after_shutdown")
            return
        try:
            size = estimate_size(span)
        except Exception:  # a span of an unexpected shape: count it as a big one
            size = _UNKNOWN_SIZE
        queue = self._queue
        with self._bytes_lock:
            queued = len(queue)
            if queued >= self._max_queue_size or self._bytes + size > self._max_bytes:
                full = True
            else:
                full = False
                self._bytes += size
                queue.append((span, size))
        if full:
            self._reporter.lost(1, "queue_full")
        elif queued + 1 >= self._batch_size and not self._wake.is_set():
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
                freed = 0
                try:
                    while queue and len(batch) < self._batch_size:
                        span, size = queue.popleft()
                        freed += size
                        batch.append(span)
                except IndexError:
                    pass
                if freed:
                    with self._bytes_lock:
                        self._bytes -= freed
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
            self._bytes = 0
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
