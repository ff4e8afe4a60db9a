"""The Netra server the demo sends to: the one at ``--endpoint``, the demo's own if it still runs, or a new one.

The demo's own server is ``netra serve`` in a child process with its data and admin key under the
demo folder (``~/.netra/demo``: ``api-key``, ``data/``, ``server.log``), started on the asked port
or a free one; a later ``netra demo`` reuses it while it runs.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DemoServer", "default_demo_dir", "ensure_server"]


def default_demo_dir() -> Path:
    return Path(os.environ.get("NETRA_DEMO_DIR", Path.home() / ".netra" / "demo")).expanduser()


@dataclass
class DemoServer:
    base_url: str
    api_key: str
    started: bool  # True if this demo started it (and so may stop it)
    data_dir: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    def stop(self) -> None:
        from netra_server.launch import stop_child

        if self.process is not None:
            stop_child(self.process)


def _healthy(base_url: str, timeout: float = 1.0) -> bool:
    import httpx

    try:
        return httpx.get(base_url.rstrip("/") + "/healthz", timeout=timeout, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


def _key_works(base_url: str, key: str) -> bool:
    import httpx

    try:
        r = httpx.get(base_url + "/api/me", headers={"x-api-key": key}, timeout=5, trust_env=False)
    except httpx.HTTPError:
        return False
    return r.status_code == 200


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def _demo_key(data_dir: Path) -> str:
    from netra_server.auth import new_key

    path = data_dir / "api-key"
    if path.exists():
        key = path.read_text().strip()
        if key:
            return key
    key = new_key()
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    return key


def ensure_server(endpoint: str | None, data_dir: Path, port: int, say: Any) -> DemoServer:
    """The server to send to: the one at ``endpoint``, the demo's own if running, or a new one."""
    from netra_server.launch import ChildExited, free_port, start_serve

    if endpoint:
        base = endpoint.rstrip("/").removesuffix("/v1/traces").removesuffix("/telemetry")
        key = os.environ.get("NETRA_API_KEY", "")
        if not _healthy(base, timeout=5):
            raise SystemExit(f"netra demo: no Netra server answers at {base} (from --endpoint/NETRA_OTLP_ENDPOINT); "
                             "start one with `netra serve`, or unset NETRA_OTLP_ENDPOINT to use the embedded one")
        if not key or not _key_works(base, key):
            raise SystemExit(f"netra demo: the server at {base} needs an admin API key in NETRA_API_KEY "
                             "(`netra keys create --role admin` makes one)")
        say(f"Using the Netra server at {base}")
        return DemoServer(base, key, started=False)

    key = _demo_key(data_dir)
    state = data_dir / "data" / "server.json"
    if state.exists():
        try:
            url = str(json.loads(state.read_text())["url"])
        except (OSError, ValueError, KeyError):
            url = ""
        if url and _healthy(url) and _key_works(url, key):
            say(f"Using the demo server already running at {url}")
            return DemoServer(url, key, started=False, data_dir=data_dir)

    host = "127.0.0.1"
    if port == 0:
        port = free_port(host)
    elif not _port_free(host, port):
        other = f"http://{host}:{port}"
        if _healthy(other) and _key_works(other, key):
            say(f"Using the demo server already running at {other}")
            return DemoServer(other, key, started=False, data_dir=data_dir)
        port = free_port(host)
    base = f"http://{host}:{port}"
    log_path = data_dir / "server.log"
    say(f"Starting the embedded Netra server on {base} (data in {data_dir})")
    try:
        proc = start_serve(data_dir / "data", host=host, port=port, api_key=key,
                           args=["--project-name", "meetingmind-demo"], log_path=log_path, timeout=120)
    except ChildExited as exc:
        raise SystemExit(f"netra demo: the server exited with code {exc.returncode}; its log ({log_path}):\n"
                         f"{exc.output[-2000:]}") from None
    except TimeoutError:
        raise SystemExit(f"netra demo: the server did not start within 120 s; see {log_path}") from None
    server = DemoServer(base, key, started=True, data_dir=data_dir, process=proc, log_path=log_path)
    return server
