"""Launching local servers: a free port, ``netra serve`` in a child process, an ASGI app in a thread.

One way to start, wait for and stop them, shared by :mod:`netra_server.testing` (servers in tests), the
demo (its embedded server and the simulated OpenAI endpoint) and the benchmarks::

    from netra_server.launch import free_port, start_serve, stop_child

    port = free_port()
    proc = start_serve(data_dir, port=port, api_key=key)   # returns once /healthz answers 200
    ...
    stop_child(proc)                                        # SIGTERM, then SIGKILL if it does not end

A child that exits while it is awaited raises :class:`ChildExited` (with the end of its log); one that
does not answer in time raises :class:`TimeoutError`. :class:`AppThread` serves an ASGI app with
uvicorn in a background thread of this process, with the same start-wait-stop.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import httpx

__all__ = ["AppThread", "ChildExited", "free_port", "serve_command", "start_serve", "stop_child", "wait_until_answers"]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the OS picks it; another process may take it later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class ChildExited(RuntimeError):
    """The child process ended while it was awaited; ``output`` is the end of what it wrote."""

    def __init__(self, what: str, returncode: int, output: str) -> None:
        super().__init__(f"{what} exited with {returncode}:\n{output}")
        self.what = what
        self.returncode = returncode
        self.output = output


def _tail(log_path: Path | None, chars: int = 3000) -> str:
    if log_path is None or not log_path.exists():
        return ""
    return log_path.read_text(errors="replace")[-chars:]


def wait_until_answers(
    url: str,
    proc: subprocess.Popen[bytes] | subprocess.Popen[str] | None = None,
    *,
    timeout: float = 60.0,
    what: str = "netra server",
    log_path: Path | None = None,
    output: Callable[[], str] | None = None,
    interval: float = 0.05,
) -> None:
    """Poll ``GET url`` until it answers 200.

    Raises :class:`ChildExited` if ``proc`` ends first (its output: ``output()`` if given, else the end of
    ``log_path``), :class:`TimeoutError` after ``timeout`` seconds. Proxies from the environment are not
    used (the child is local).
    """
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise ChildExited(what, proc.returncode, output() if output is not None else _tail(log_path))
        try:
            if httpx.get(url, timeout=1, trust_env=False).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} at {url} did not answer within {timeout:g} s")
        time.sleep(interval)


def stop_child(proc: subprocess.Popen[bytes] | subprocess.Popen[str], timeout: float = 30.0) -> None:
    """Stop a child process: SIGTERM, wait up to ``timeout`` seconds, then SIGKILL; no-op if it has ended."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def serve_command(
    data_dir: Path | str, *, port: int, api_key: str, host: str = "127.0.0.1", args: Sequence[str] = ()
) -> list[str]:
    """The ``python -m netra_server serve ...`` command line for a data folder, address and admin key."""
    return [
        sys.executable, "-m", "netra_server", "serve", "--data-dir", str(data_dir), "--host", host,
        "--port", str(port), "--api-key", api_key, *args,
    ]


def start_serve(
    data_dir: Path | str,
    *,
    port: int,
    api_key: str,
    host: str = "127.0.0.1",
    args: Sequence[str] = (),
    log_path: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 60.0,
) -> subprocess.Popen[bytes]:
    """Start ``netra serve`` in a child process and return it once ``/healthz`` answers.

    Its output goes to ``log_path`` (appended) or nowhere. If it exits or does not answer in time, it is
    stopped and :class:`ChildExited` or :class:`TimeoutError` is raised.
    """
    cmd = serve_command(data_dir, port=port, api_key=api_key, host=host, args=args)
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    if log_path is not None:
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=full_env)
    else:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=full_env)
    try:
        wait_until_answers(f"http://{host}:{port}/healthz", proc, timeout=timeout, log_path=log_path)
    except BaseException:
        stop_child(proc)
        raise
    return proc


class AppThread:
    """An ASGI app served by uvicorn in a daemon thread of this process (tests, the simulated endpoint).

    ``start()`` binds the socket (``port=0``: a free one, then in :attr:`port`) and returns once uvicorn
    serves; it raises :class:`RuntimeError` if the thread ends first, :class:`TimeoutError` after
    ``timeout`` seconds. ``stop()`` asks uvicorn to exit and waits for the thread.
    """

    def __init__(
        self,
        app: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        what: str = "the server",
        name: str = "asgi-server",
        lifespan: Literal["auto", "on", "off"] = "on",
        loop: Literal["none", "auto", "asyncio", "uvloop"] = "auto",
        graceful_seconds: int = 5,
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.what = what
        self.name = name
        self._options: dict[str, Any] = {
            "lifespan": lifespan, "loop": loop, "timeout_graceful_shutdown": graceful_seconds,
        }
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self, timeout: float = 10.0) -> None:
        import uvicorn

        if self._thread is not None:
            return
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = int(sock.getsockname()[1])
        server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", access_log=False, **self._options))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=self.name, daemon=True)
        self._server, self._thread, self._sock = server, thread, sock
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive():
                self.stop()
                raise RuntimeError(f"{self.what} failed to start on {self.host}:{self.port} (see the log above)")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"{self.what} did not start on {self.host}:{self.port} within {timeout:g} s")
            time.sleep(0.01)

    def stop(self, timeout: float = 30.0) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=timeout)
        if self._sock is not None:
            self._sock.close()
        self._server = self._thread = self._sock = None
