"""Run a real Netra server in tests: uvicorn on a free port, a chDB store in a temporary folder.

Public API (stable)::

    from netra_server.testing import run_server

    with run_server(tmp_path) as srv:                 # uvicorn in a background thread, same process
        srv.base_url      # "http://127.0.0.1:54321"
        srv.otlp_endpoint # base_url + "/v1/traces"
        srv.api_key       # an admin key of srv.project_id (pass api_key="..." to choose it)
        srv.store         # the netra_server.store.Store the server uses (thread mode only)
        srv.wait_for_spans(10)                         # until 10 distinct spans are stored

    with run_server(tmp_path, subprocess=True) as srv:  # `python -m netra_server serve` in a child process
        srv.kill()                                     # SIGKILL (crash tests); srv.restart() starts it again

One chDB data folder per process: a thread-mode server holds its folder until the ``with`` ends, and a
process can only have one folder open at a time, so do not nest two thread-mode servers (use
``subprocess=True`` for the second). Any extra keyword is a :class:`~netra_server.config.Settings` field.

Pytest: ``from netra_server.testing import netra_server`` in a conftest gives a module-scoped
``netra_server`` fixture (one server per test module).
"""

from __future__ import annotations

import signal
import subprocess as sp
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx

from netra_server.auth import new_key
from netra_server.config import Settings
from netra_server.launch import AppThread, free_port, start_serve, stop_child
from netra_server.store import Store

__all__ = ["RunningServer", "free_port", "netra_server", "run_server"]


@dataclass
class RunningServer:
    base_url: str
    api_key: str
    project_id: str
    organisation_id: str
    data_dir: Path
    settings: Settings
    store: Store | None = None
    process: sp.Popen[bytes] | None = field(default=None, repr=False)
    log_path: Path | None = None
    #: The ASGI app (thread mode); ``app.state.netra`` is its ServerState while it runs.
    app: Any = field(default=None, repr=False)

    @property
    def otlp_endpoint(self) -> str:
        """The OTLP/HTTP traces URL (for ``OTLPSpanExporter(endpoint=...)``)."""
        return self.base_url + "/v1/traces"

    @property
    def headers(self) -> dict[str, str]:
        return {"x-api-key": self.api_key}

    def client(self, api_key: str | None = None, **kwargs: Any) -> httpx.Client:
        """An httpx client on the server with a key (default: the admin key)."""
        return httpx.Client(base_url=self.base_url, headers={"x-api-key": api_key or self.api_key}, timeout=30, **kwargs)

    def create_key(self, role: str = "read", tenant_id: str | None = None, name: str = "") -> str:
        """A new key of this project through the API (works in both modes)."""
        with self.client() as c:
            r = c.post("/api/keys", json={"role": role, "tenantId": tenant_id, "name": name})
            r.raise_for_status()
            return str(r.json()["data"]["key"])

    def span_count(self) -> int:
        """Distinct spans of the project (through the store in thread mode, else the API)."""
        if self.store is not None:
            return self.store.count_spans(self.project_id)
        with self.client() as c:
            r = c.get("/api/usage/summary", params={"groupBy": "day"})
            r.raise_for_status()
            return int(r.json()["data"]["total"]["spanCount"])

    def wait_for_spans(self, n: int, timeout: float = 30.0) -> int:
        """Wait until at least ``n`` spans are stored; returns the count (raises TimeoutError)."""
        deadline = time.monotonic() + timeout
        count = self.span_count()
        while count < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{count} spans stored after {timeout}s, expected {n}")
            time.sleep(0.05)
            count = self.span_count()
        return count

    # -- subprocess mode -----------------------------------------------------------------------------

    def kill(self) -> None:
        """SIGKILL the server process (subprocess mode)."""
        if self.process is None:
            raise RuntimeError("kill() needs run_server(..., subprocess=True)")
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def restart(self, timeout: float = 60.0) -> None:
        """Start the server process again on the same port and data folder (subprocess mode)."""
        if self.process is None:
            raise RuntimeError("restart() needs run_server(..., subprocess=True)")
        stop_child(self.process)
        self.process = _start(self.settings, self.api_key, self.log_path, timeout)


def _serve_args(settings: Settings) -> list[str]:
    """The ``netra serve`` flags for the settings a test chose (beside data folder, address and key)."""
    args: list[str] = []
    if settings.store_url:
        args += ["--store", settings.store_url]
    if settings.retention_days:
        args += ["--retention-days", str(settings.retention_days)]
    if not settings.journal:
        args.append("--no-journal")
    if settings.journal_fsync:
        args.append("--journal-fsync")
    args += ["--journal-flush-seconds", str(settings.journal_flush_seconds)]
    args += ["--min-free-disk-mb", str(settings.min_free_disk_bytes / (1024 * 1024))]
    args += ["--read-consistency", settings.read_consistency, "--max-read-staleness", str(settings.max_read_staleness)]
    return args


def _start(settings: Settings, api_key: str, log_path: Path | None, timeout: float) -> sp.Popen[bytes]:
    return start_serve(settings.data_dir, host=settings.host, port=settings.port, api_key=api_key,
                       args=_serve_args(settings), log_path=log_path, timeout=timeout)


@contextmanager
def run_server(
    tmp_path: Path | str,
    *,
    subprocess: bool = False,
    api_key: str | None = None,
    startup_timeout: float = 60.0,
    **settings: Any,
) -> Iterator[RunningServer]:
    """Start a server on a free port with its data in ``tmp_path``; stop it (and close its store) at exit."""
    data_dir = Path(tmp_path) / "netra-data"
    key = api_key or new_key()
    # Tests read what they just sent: read-your-writes unless a test asks for bounded reads.
    cfg = Settings(data_dir=data_dir, host="127.0.0.1", port=settings.pop("port", 0) or free_port(), api_key=key,
                   announce=False, parse_workers=0, read_consistency="strong")
    cfg = replace(cfg, **settings)
    base_url = f"http://{cfg.host}:{cfg.port}"

    if subprocess:
        data_dir.mkdir(parents=True, exist_ok=True)
        log_path = Path(tmp_path) / "netra-server.log"
        proc = _start(cfg, key, log_path, startup_timeout)
        try:
            with httpx.Client(base_url=base_url, headers={"x-api-key": key}, timeout=30) as c:
                me = c.get("/api/me").raise_for_status().json()["data"]
            srv = RunningServer(base_url, key, me["project_id"], me["organisation_id"], data_dir, cfg, None, proc, log_path)
            yield srv
        finally:
            stop_child(srv.process if "srv" in locals() and srv.process is not None else proc)
        return

    from netra_server.app import create_app
    from netra_server.lifecycle import prepare_store

    store, project, _ = prepare_store(cfg)
    try:
        app = create_app(cfg, store=store)
        server = AppThread(app, host=cfg.host, port=cfg.port, what="the netra test server", name="netra-test-server")
        server.start(timeout=startup_timeout)
        try:
            yield RunningServer(base_url, key, project.project_id, project.organisation_id, data_dir, cfg, store, app=app)
        finally:
            server.stop(timeout=30)
    finally:
        store.close()


try:  # the pytest fixture, when pytest is there
    import pytest

    @pytest.fixture(scope="module")
    def netra_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
        """One real server (thread mode, chDB in a temporary folder) per test module."""
        with run_server(tmp_path_factory.mktemp("netra-server")) as srv:
            yield srv

except ImportError:  # pragma: no cover
    pass
