"""``netra credits`` in a child process against a real server."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from decimal import Decimal

from netra_server.testing import RunningServer

from netra.credits import CreditsClient


def _cli(srv: RunningServer, *args: str, key: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NETRA_OTLP_ENDPOINT": srv.base_url, "NETRA_API_KEY": key or srv.api_key}
    return subprocess.run([sys.executable, "-m", "netra.cli", "credits", *args], env=env, capture_output=True,
                          text=True, timeout=120)


def test_grant_balance_ledger_and_errors(netra_server: RunningServer) -> None:
    t = f"t-{uuid.uuid4().hex[:8]}"
    out = _cli(netra_server, "grant", t, "12.50", "--note", "March plan")
    assert out.returncode == 0, out.stderr
    assert f"grant of 12.5 USD to {t}" in out.stdout and "balance now 12.5 USD" in out.stdout
    assert _cli(netra_server, "adjust", t, "-2.5", "--note", "refund").returncode == 0
    assert _cli(netra_server, "limit", t, "1").returncode == 0
    bal = _cli(netra_server, "balance", t)
    assert "balance 10 USD" in bal.stdout and "available 11" in bal.stdout, bal.stdout
    ledger = _cli(netra_server, "ledger", t)
    assert "March plan" in ledger.stdout and "refund" in ledger.stdout
    with CreditsClient(netra_server.base_url, netra_server.api_key) as c:
        assert c.get_account(t).balance == Decimal(10)
    bad = _cli(netra_server, "grant", t, "ten")
    assert bad.returncode == 1 and "decimal number of USD" in bad.stderr
    read = netra_server.create_key("read")
    denied = _cli(netra_server, "grant", t, "1", key=read)
    assert denied.returncode == 1 and "403" in denied.stderr
