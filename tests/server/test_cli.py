"""`netra serve` and `netra keys` as a user runs them (real processes, real data folder)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from netra_server.launch import ChildExited, wait_until_answers
from netra_server.testing import free_port

NETRA = [sys.executable, "-c", "from netra.cli import main; raise SystemExit(main())"]


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETRA_")}
    return {**env, "HOME": str(home), "PYTHONUNBUFFERED": "1"}


def _serve(home: Path, port: int, *extra: str) -> tuple[subprocess.Popen[str], list[str]]:
    proc = subprocess.Popen([*NETRA, "serve", "--port", str(port), *extra], env=_env(home), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines: list[str] = []
    deadline = time.monotonic() + 60
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError("netra serve exited:\n" + "".join(lines))
        lines.append(line)
        if line.startswith("OTLP endpoint"):
            break
    try:
        wait_until_answers(f"http://127.0.0.1:{port}/healthz", proc, timeout=max(0.0, deadline - time.monotonic()))
    except (ChildExited, TimeoutError):
        raise AssertionError("netra serve did not answer") from None
    return proc, lines


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0, "SIGTERM stops the server gracefully"


def _netra(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*NETRA, *args], env=_env(home), text=True, capture_output=True, timeout=120)


@pytest.mark.slow
def test_serve_first_start_keys_and_restart(tmp_path: Path) -> None:
    port = free_port()
    proc, lines = _serve(tmp_path, port)
    try:
        out = "".join(lines)
        assert f"Netra server listening on http://127.0.0.1:{port} (data: ~/.netra/data)" in out
        m = re.search(r"Created project 'default' and admin API key: (nk_\S+)\s+\(shown once", out)
        assert m, out
        admin = m.group(1)
        assert (tmp_path / ".netra" / "data" / "store").is_dir()
        r = httpx.get(f"http://127.0.0.1:{port}/api/me", headers={"x-api-key": admin})
        assert r.json()["data"]["role"] == "admin"
        # the server holds the folder: keys go through its API, with an admin key
        refused = _netra(tmp_path, "keys", "list")
        assert refused.returncode != 0 and "--api-key" in refused.stderr
        made = _netra(tmp_path, "keys", "create", "--role", "read", "--tenant", "apex", "--name", "portal",
                      "--api-key", admin)
        assert made.returncode == 0, made.stderr
        read_key = made.stdout.strip().splitlines()[1]
        r = httpx.get(f"http://127.0.0.1:{port}/usage/tenants/other", headers={"x-api-key": read_key})
        assert r.status_code == 403
        listed = _netra(tmp_path, "keys", "list", "--json", "--api-key", admin)
        assert {k["tenant_id"] for k in json.loads(listed.stdout)} == {"", "apex"}
        # a span acknowledged just before SIGTERM: the graceful stop inserts the ingest journal
        span = {"traceId": "ab" * 16, "spanId": "cd" * 8, "name": "last", "startTimeUnixNano": "1767225600000000000",
                "endTimeUnixNano": "1767225600000000001", "attributes": [{"key": "netra.tenant_id", "value": {"stringValue": "t"}}]}
        sent = httpx.post(f"http://127.0.0.1:{port}/v1/traces", headers={"x-api-key": admin},
                          json={"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]})
        assert sent.status_code == 200
    finally:
        _stop(proc)
    data = tmp_path / ".netra" / "data"
    assert not (data / "server.json").exists(), "the state file goes with the server"
    assert list((data / "store-journal").iterdir()) == [], "the journal was inserted at shutdown"

    # no server: keys work on the store directly
    key_id = read_key.split("_")[1]
    revoked = _netra(tmp_path, "keys", "revoke", key_id)
    assert revoked.returncode == 0, revoked.stderr
    rows = json.loads(_netra(tmp_path, "keys", "list", "--json").stdout)
    assert {r["key_id"]: r["revoked"] for r in rows}[key_id] is True
    assert _netra(tmp_path, "keys", "revoke", "nosuchkey").returncode != 0

    proc, lines = _serve(tmp_path, port)
    try:
        assert "Created project" not in "".join(lines)  # said once, on the first start
        assert httpx.get(f"http://127.0.0.1:{port}/api/me", headers={"x-api-key": admin}).status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/api/me", headers={"x-api-key": read_key}).status_code == 401
    finally:
        _stop(proc)


def test_seeded_key_and_help(tmp_path: Path) -> None:
    port = free_port()
    proc, lines = _serve(tmp_path, port, "--data-dir", str(tmp_path / "d"), "--api-key", "demo-key-0123456789")
    try:
        assert "with the admin API key from --api-key" in "".join(lines)
        r = httpx.get(f"http://127.0.0.1:{port}/api/me", headers={"Authorization": "Bearer demo-key-0123456789"})
        assert r.status_code == 200
    finally:
        _stop(proc)
    helped = _netra(tmp_path, "--help")
    assert helped.returncode == 0 and "serve" in helped.stdout and "keys" in helped.stdout
    bad = _netra(tmp_path, "serve", "--store", "ftp://nowhere", "--data-dir", str(tmp_path / "e"))
    assert bad.returncode == 1 and "clickhouse://" in bad.stderr
    for flag in ("--ingest-wait-seconds", "--max-read-staleness", "--usage-cache-seconds"):
        bad = _netra(tmp_path, "serve", flag, "-1", "--data-dir", str(tmp_path / "f"))
        assert bad.returncode == 2 and "must be a number of seconds >= 0" in bad.stderr, bad.stderr
        assert "Traceback" not in bad.stderr


def test_serve_flags_reach_the_settings() -> None:
    """The back-pressure and read flags of `netra serve` become the server's settings."""
    import argparse

    from netra_server.cli import _settings, add_commands

    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["serve", "--ingest-wait-seconds", "0.5", "--max-read-staleness", "8"])
    settings = _settings(args)
    assert settings.ingest_wait_seconds == 0.5 and settings.max_read_staleness == 8.0
    assert settings.max_ingest_lag == 4.0
    assert _settings(parser.parse_args(["serve"])).ingest_wait_seconds == 2.0
