"""Server settings: one :class:`Settings` object, built from flags, environment or code.

Public API (stable)::

    from netra_server.config import Settings, Limits
    settings = Settings(data_dir=Path("/tmp/netra"), port=0)          # embedded chDB under data_dir/store
    settings = Settings(store_url="clickhouse://user:pass@host:8123/netra")  # a ClickHouse server

``Settings.resolved_store_url()`` is the store actually used: ``chdb://<data_dir>/store`` unless
``store_url`` is given.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["DEFAULT_PORT", "Limits", "Settings", "default_data_dir"]

#: The OTLP/HTTP port; the SDK's default endpoint is ``http://localhost:4318``.
DEFAULT_PORT = 4318


def default_data_dir() -> Path:
    """``$NETRA_DATA_DIR`` if set, else ``~/.netra/data``."""
    env = os.environ.get("NETRA_DATA_DIR")
    return Path(env).expanduser() if env else Path.home() / ".netra" / "data"


@dataclass(frozen=True)
class Limits:
    """Ingest and query limits. Requests over a limit are answered 413/400 with a message."""

    #: Largest request body as sent (compressed), in bytes (413 above).
    max_body_bytes: int = 16 * 1024 * 1024
    #: Largest body after gzip decompression, in bytes (413 above).
    max_decompressed_bytes: int = 64 * 1024 * 1024
    #: Most spans in one export request (413 above).
    max_spans_per_request: int = 50_000
    #: Largest attribute value (a string's UTF-8 bytes, or an array's JSON), in bytes (400 above).
    max_attribute_bytes: int = 1024 * 1024
    #: Spans accepted but not yet written; past this, new requests get 429 with Retry-After.
    max_pending_spans: int = 500_000
    #: Most spans written in one group-commit INSERT.
    max_batch_spans: int = 100_000
    #: Largest page size of the listing routes (400 above).
    max_page_limit: int = 1000
    #: Longest tenant, session or user id of a span, in UTF-8 bytes: a span with a longer one is
    #: rejected alone (partial success) -- every stored id must be nameable in a URL path.
    max_id_bytes: int = 256


@dataclass(frozen=True)
class Settings:
    """Everything ``netra serve`` can be told. All fields have working defaults."""

    data_dir: Path = field(default_factory=default_data_dir)
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    #: ``chdb:///abs/path``, ``clickhouse://user:pass@host:8123/db`` (``clickhouses://`` for TLS) or None
    #: for the embedded store in ``data_dir/store``.
    store_url: str | None = None
    #: Days to keep spans (a ClickHouse TTL on span start time); None keeps them forever.
    retention_days: int | None = None
    limits: Limits = field(default_factory=Limits)
    #: Seed this admin key on first start (``NETRA_API_KEY`` / ``--api-key``) instead of a random one.
    api_key: str | None = None
    #: Name of the project created on first start.
    project_name: str = "default"
    #: How long a verified API key is remembered in-process (revocation by another process shows after it).
    key_cache_seconds: float = 10.0
    #: How long a key found wrong is remembered (a key created by another process works after it).
    negative_key_cache_seconds: float = 5.0
    #: Failed authentications per client address: this many at once, then ``auth_failures_per_second``;
    #: past that, keys not already verified answer 429 with Retry-After without a store lookup.
    #: Env ``NETRA_AUTH_FAILURE_BURST`` / ``NETRA_AUTH_FAILURES_PER_SECOND``.
    auth_failure_burst: int = field(default_factory=lambda: int(os.environ.get("NETRA_AUTH_FAILURE_BURST") or 20))
    auth_failures_per_second: float = field(
        default_factory=lambda: float(os.environ.get("NETRA_AUTH_FAILURES_PER_SECOND") or 1.0)
    )
    #: Behind a reverse proxy: the header holding the client address (e.g. ``X-Forwarded-For``; its
    #: last address is used). Only set it when every request comes through that proxy, which sets the
    #: header: otherwise clients choose their own address. Env ``NETRA_TRUSTED_PROXY_HEADER``.
    trusted_proxy_header: str | None = field(
        default_factory=lambda: os.environ.get("NETRA_TRUSTED_PROXY_HEADER", "").strip() or None
    )
    #: Threads running store queries for the API.
    query_threads: int = 4
    #: Processes that decode large OTLP requests (protobuf -> rows) beside the server process, so
    #: ingest uses more than one core; 0 decodes in the server process. None: one per core, at most 4.
    parse_workers: int | None = None
    #: Print the first-start banner (project and key) to stdout.
    announce: bool = True
    #: Seconds between background refreshes of the daily rollups (``netra_server.rollups``): days whose
    #: spans changed are rolled up again once they have settled. 0: no refresh here (reads stay exact,
    #: days without a valid rollup are read from the spans).
    rollup_interval: float = 30.0
    #: A day is rolled up once its partition has had no new part for this many seconds.
    rollup_settle_seconds: float = 60.0
    #: Embedded store only: answer an export once its spans are in the ingest journal (a folder beside
    #: the store) and insert the journal into the store in large INSERTs (``netra_server.journal``).
    #: False: answer after the INSERT of each group commit (small INSERTs cost chDB more CPU per span).
    journal: bool = True
    #: fsync the journal before answering (the spans then survive a power loss, not only a crash).
    journal_fsync: bool = False
    #: Insert the journal into the store once its oldest spans are this many seconds old.
    journal_flush_seconds: float = 1.0
    #: Embedded store with a journal: what a read that does not ask (``consistency=`` query parameter or
    #: ``X-Netra-Consistency`` header) sees (``netra_server.consistency``): ``bounded`` answers from
    #: what is inserted and states ``data_as_of``; ``strong`` waits for every span acknowledged before it.
    read_consistency: str = "bounded"
    #: A bounded read whose data would be older than this many seconds waits as a strong read does.
    max_read_staleness: float = 5.0
    #: While the store is behind (:attr:`max_ingest_lag`), hold a new export up to this many seconds for
    #: it to catch up (its body unread) before answering 429; 0: answer 429 at once
    #: (``netra_server.ingest.GroupCommitter.admit``).
    ingest_wait_seconds: float = 2.0
    #: Embedded store only: chDB's memory limit (``max_server_memory_usage``: its caches, inserts, merges
    #: and queries), in bytes; None: 1 GiB (``netra_server.store.CHDB_SERVER_SETTINGS``); 0: 90% of RAM.
    store_memory_bytes: int | None = None
    #: Embedded store only: refuse new spans (503 + Retry-After) while the free space of the store's or
    #: the journal's disk is under this many bytes (``netra_server.disk``); 0 turns the check off.
    min_free_disk_bytes: int = 256 * 1024 * 1024
    #: Linux nice value of the parse workers and chDB's merge threads (the journal's INSERT thread keeps
    #: the normal one), so reads get the CPU first on a saturated machine (``netra_server.priority``);
    #: 0: same as reads.
    ingest_nice: int = 10
    #: Embedded store only: keep the live usage table (``netra_server.live_usage``), so usage reads of
    #: the day being written read per-minute sums instead of its spans. False: they read the spans.
    live_usage: bool = True
    #: Embedded store only: a usage read answers from the last answer to the same read until a write
    #: ends, for at most this many seconds (``StoreBase._usage_rows``); 0: off.
    usage_cache_seconds: float = 1.0

    def __post_init__(self) -> None:
        if self.read_consistency not in ("bounded", "strong"):
            raise ValueError(f"read_consistency must be 'bounded' or 'strong', not {self.read_consistency!r}")
        if not 0 <= self.ingest_nice <= 19:
            raise ValueError(f"ingest_nice must be a nice value from 0 to 19, not {self.ingest_nice!r}")
        if not self.usage_cache_seconds >= 0:
            raise ValueError(f"usage_cache_seconds must be a number of seconds >= 0, not {self.usage_cache_seconds!r}")
        if not self.ingest_wait_seconds >= 0:
            raise ValueError(f"ingest_wait_seconds must be a number of seconds >= 0, not {self.ingest_wait_seconds!r}")
        if not self.max_read_staleness >= 0:
            raise ValueError(f"max_read_staleness must be a number of seconds >= 0, not {self.max_read_staleness!r}")

    @property
    def max_ingest_lag(self) -> float:
        """Refuse new spans (429) while the store is this many seconds behind the acknowledged ones:
        half the read staleness bound, at least two journal flush intervals."""
        return max(self.max_read_staleness / 2, 2 * self.journal_flush_seconds)

    def journal_dir(self, store_path: str) -> Path:
        """The ingest journal's folder for an embedded store at ``store_path``: ``<store>-journal``."""
        path = Path(store_path)
        return path.with_name(path.name + "-journal")

    def resolved_parse_workers(self) -> int:
        if self.parse_workers is not None:
            return max(0, self.parse_workers)
        return min(4, os.cpu_count() or 1) if (os.cpu_count() or 1) > 1 else 0

    def resolved_store_url(self) -> str:
        if self.store_url:
            return self.store_url
        return f"chdb://{(Path(self.data_dir).expanduser() / 'store').resolve()}"
