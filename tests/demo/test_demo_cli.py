"""``netra demo`` end to end: the console command in a child process, a temporary HOME, no OpenAI key.

The demo starts the embedded server itself (``netra serve`` in a grandchild process, chDB under
``$HOME/.netra/demo``), runs the workload through the real ``openai`` client against the local
simulated endpoint, and prints the report it reads back through ``Netra.usage``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from netra_server.demo.fake_openai import FakeOpenAIConfig, FakeOpenAIServer
from netra_server.testing import RunningServer, run_server

from netra.usage import UsageClient

TENANT_ROWS = {"Apex Legal": "apex-legal", "Stratex Consulting": "stratex-consulting", "TechStart Inc": "techstart-inc"}


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("NETRA_OTLP_ENDPOINT", "NETRA_API_KEY", "OPENAI_API_KEY", "OPENAI_BASE_URL", "NETRA_DEMO_DIR")}
    env.update(HOME=str(home), COLUMNS="160", PYTHONUNBUFFERED="1", **extra)
    return env


def _demo(env: dict[str, str], *args: str, meetings: int = 30) -> str:
    cmd = [sys.executable, "-m", "netra.cli", "demo", "--meetings", str(meetings), "--latency-scale", "0.05",
           "--port", "0", "--exit", *args]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _rows(out: str) -> dict[str, list[str]]:
    """The report table's first line per tenant, split into cells."""
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip().strip("│").split("│")]
        for name in TENANT_ROWS:
            if cells and cells[0] == name:
                rows[TENANT_ROWS[name]] = cells
    return rows


def _number(cell: str) -> float:
    return float(re.sub(r"[$,s ]", "", cell))


@pytest.mark.slow
def test_demo_starts_the_embedded_server_and_prints_the_report(tmp_path: Path) -> None:
    env = _env(tmp_path)
    out = _demo(env, meetings=120)  # enough for TechStart's bursts to hit its 10-per-minute limit
    assert "Starting the embedded Netra server" in out
    assert "No OPENAI_API_KEY: calling the local OpenAI-compatible endpoint" in out
    rows = _rows(out)
    assert set(rows) == set(TENANT_ROWS.values()), out
    # Tenant, Tier, Requests, Limited, Sessions, Tokens, Cost, P95, SLA, status
    assert [rows[t][1] for t in ("apex-legal", "stratex-consulting", "techstart-inc")] == [
        "enterprise", "professional", "starter"]
    assert [rows[t][8] for t in ("apex-legal", "stratex-consulting", "techstart-inc")] == [
        "P95 < 2 s", "P95 < 3 s", "best effort"]
    served = sum(int(_number(r[2])) for r in rows.values())
    limited = sum(int(_number(r[3])) for r in rows.values())
    assert served + limited == 120
    assert int(_number(rows["techstart-inc"][3])) > 0  # the starter tier rejects calls over its limit
    assert all(_number(r[5]) > 0 and _number(r[6]) > 0 for r in rows.values())
    assert re.search(r"Cost check: the server's total \$[\d.]+ matches the sum of the \d+ per-call costs "
                     r"\(\$[\d.]+\), to the last digit: \d+\.\d+ USD", out)
    assert re.search(r"Dashboard: http://127\.0\.0\.1:\d+/", out)
    assert "Summarizing 120 meetings" in out
    assert "the server has" not in out and "calls failed" not in out  # traces match the calls made
    # prepaid plans: the starter plan runs out and its later calls are refused, with the reason
    assert re.search(r"TechStart Inc: \d+ call\(s\) refused, e\.g\. \"tenant 'techstart-inc' has [\d.]+ USD of credit "
                     r"available", out), out
    assert "Apex Legal:" not in out.split("Prepaid credits")[1].split("Model:")[0]  # the paid plans last
    assert re.search(r"Credits check: the ledger charged \$[\d.]+ for the served calls, the same as the server's "
                     r"cost, to the last digit", out), out

    key_file = tmp_path / ".netra" / "demo" / "api-key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert (tmp_path / ".netra" / "demo" / "data").is_dir()

    # a second run on the same data: the report covers this run only, the first run's data is still there
    out2 = _demo(env, meetings=120)
    rows2 = _rows(out2)
    assert sum(int(_number(r[2])) + int(_number(r[3])) for r in rows2.values()) == 120
    assert [rows2[t][2:7] for t in rows2] == [rows[t][2:7] for t in rows]  # deterministic workload


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with run_server(tmp_path_factory.mktemp("demo-srv"), subprocess=True) as server:
        yield server


@pytest.mark.slow
def test_demo_against_a_running_server_reports_what_the_server_stores(tmp_path: Path, srv: RunningServer) -> None:
    """With NETRA_OTLP_ENDPOINT and OPENAI_API_KEY set, the demo uses that server and the OpenAI API
    (here: OPENAI_BASE_URL points the real client at a local endpoint, whose served tokens are the truth)."""
    with FakeOpenAIServer(config=FakeOpenAIConfig(latency_scale=0)) as model:
        start = datetime.now(UTC) - timedelta(seconds=1)
        env = _env(tmp_path, NETRA_OTLP_ENDPOINT=srv.base_url, NETRA_API_KEY=srv.api_key,
                   OPENAI_API_KEY="sk-test-key", OPENAI_BASE_URL=model.base_url)
        out = _demo(env)
        end = datetime.now(UTC) + timedelta(seconds=1)
        served = model.stats()["models"]
    assert f"Using the Netra server at {srv.base_url}" in out
    assert "Calling OpenAI (OPENAI_API_KEY is set)" in out
    rows = _rows(out)
    served_tokens = sum(m["prompt_tokens"] + m["completion_tokens"] for m in served.values())
    assert sum(int(_number(r[5])) for r in rows.values()) == served_tokens  # every token once, none twice
    assert sum(int(_number(r[2])) for r in rows.values()) == sum(m["requests"] for m in served.values())
    with UsageClient(srv.base_url, srv.api_key) as usage:
        for tenant, cells in rows.items():
            got = usage.get_tenant_usage(tenant, start, end)
            assert got is not None
            assert int(_number(cells[2])) == got.request_count
            assert int(_number(cells[4])) == got.session_count
            assert int(_number(cells[5])) == got.token_count
            # printed rounded to 6 decimals below a dollar, 4 above; the client's amount is exact
            exact = got.total_cost_usd
            shown = exact.quantize(Decimal("1e-6") if exact < 1 else Decimal("1e-4"))
            assert Decimal(re.sub(r"[$,]", "", cells[6])) == shown
    with srv.client() as http:
        rules = http.get("/api/alerts/rules").json()["data"]
    names = sorted(r["name"] for r in rules)
    assert len(names) == 2 and names[0].startswith("apex-legal") and names[1].startswith("stratex-consulting")


def test_demo_refuses_an_endpoint_without_a_working_key(tmp_path: Path, srv: RunningServer) -> None:
    env = _env(tmp_path, NETRA_OTLP_ENDPOINT=srv.base_url, NETRA_API_KEY="nk_000000000000_wrongwrongwrongwrongwrong")
    proc = subprocess.run([sys.executable, "-m", "netra.cli", "demo", "--meetings", "3", "--exit"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "needs an admin API key in NETRA_API_KEY" in proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_keep_running_serves_until_interrupted_then_stops_the_server(tmp_path: Path, sig: signal.Signals) -> None:
    cmd = [sys.executable, "-m", "netra.cli", "demo", "--meetings", "6", "--latency-scale", "0", "--port", "0",
           "--keep-running", "--no-progress"]
    proc = subprocess.Popen(cmd, env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert proc.stdout is not None
        seen = ""
        for line in proc.stdout:
            seen += line
            if "press Ctrl-C" in line:
                break
        assert "press Ctrl-C" in seen, seen
        state = json.loads((tmp_path / ".netra" / "demo" / "data" / "server.json").read_text())
        url = state["url"]
        assert httpx.get(url + "/healthz", timeout=5).status_code == 200  # still serving after the report
        proc.send_signal(sig)
        assert proc.wait(timeout=60) == 0
        assert not Path(f"/proc/{state['pid']}").exists() or _zombie(state["pid"])
        with pytest.raises(httpx.HTTPError):
            httpx.get(url + "/healthz", timeout=2)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True
