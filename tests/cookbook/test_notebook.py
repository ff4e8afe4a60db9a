"""The cookbook notebook, executed headless as a user runs it, and its numbers checked.

Nothing is configured, so the notebook takes its offline path: it starts the embedded Netra server
(``netra serve`` in a child process) and the local OpenAI-compatible endpoint (at a quarter of its
realistic latency, to keep the test short). After its last analysis cell the test adds one cell that dumps what the notebook
computed and what the server answers per trace; the checks then run here:

* each call's cost is the price table's price for its model and tokens (re-priced here);
* each tenant's cost, tokens and requests read back from the server equal the sums over its calls;
* no double counting: each served trace counts one request (the OpenAI span), not two;
* SLA figures: a call is flagged exactly when its latency is over the tier's threshold, flagged calls
  carry an ``sla-breach`` event on the stored span, the verdict follows P95, and the server's P95
  agrees with the application's;
* rate limits: TechStart (10 calls per minute, no queue) has 10 of its 12 meetings served.
"""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from netra.pricing import price_tokens

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "cookbooks" / "multi_tenant_cost_tracking.ipynb"
BUILDER = ROOT / "cookbooks" / "build_multi_tenant_notebook.py"

DUMP_CELL = r'''
import json as _json

_calls = []
for _r in results:
    _entry = {
        "meeting_id": _r.meeting_id, "tenant_id": _r.tenant_id, "session_id": _r.session_id, "status": _r.status,
        "trace_id": _r.trace_id, "model": _r.model, "input_tokens": _r.input_tokens,
        "output_tokens": _r.output_tokens, "cached_tokens": _r.cached_tokens, "cost_usd": str(_r.cost_usd),
        "latency_ms": _r.latency_ms, "sla_ms": _r.sla_ms, "sla_breached": _r.sla_breached,
    }
    _tu = Netra.usage.get_trace_usage(_r.trace_id)
    _entry["trace_requests"] = _tu.total.request_count
    _entry["trace_cost"] = str(_tu.total.total_cost)  # a Decimal: its exact digits
    _entry["counted_spans"] = [s.name for s in _tu.spans if s.counted]
    _entry["usage_spans"] = [s.name for s in _tu.spans if s.has_usage]
    _spans = list(Netra.usage.iter_spans_by_trace_id(_r.trace_id))
    _entry["span_names"] = sorted(s.name for s in _spans)
    _entry["events"] = [e["name"] for s in _spans if s.name == "meeting-summarization" for e in s.events_list()]
    _calls.append(_entry)

print("NOTEBOOK_STATE " + _json.dumps({
    "calls": _calls,
    "server_usage": {t: {"requests": u.request_count, "sessions": u.session_count, "tokens": u.token_count,
                         "cost": str(u.total_cost_usd)} for t, u in server_usage.items()},
    "sla": sla,
    "server_p95": server_p95,
    "tiers": {t.id: {"sla_ms": t.tier.sla_p95_ms, "limit": t.tier.calls_per_minute} for t in TENANTS.values()},
}))
'''


def test_notebook_is_built_from_the_workload_code() -> None:
    """The committed notebook is what the builder makes from netra_server/demo/meetingmind.py."""
    proc = subprocess.run([sys.executable, str(BUILDER), "--check"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit the notebook without outputs"


def _outputs(nb: Any) -> tuple[str, list[str]]:
    text, errors = [], []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                text.append(out["text"])
            elif out.get("output_type") == "error":
                errors.append(f"{out['ename']}: {out['evalue']}")
    return "".join(text), errors


@pytest.mark.slow
def test_notebook_runs_offline_and_its_numbers_add_up(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("NETRA_OTLP_ENDPOINT", "NETRA_API_KEY", "OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    # a quarter of the simulated model's realistic latency keeps the test short; the SLA-breach path
    # (slow calls, events) is exercised in tests/demo/test_meetingmind.py
    monkeypatch.setenv("NETRA_FAKE_OPENAI_LATENCY_SCALE", "0.25")
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the embedded server's temporary folder goes here

    nb = nbformat.read(NOTEBOOK, as_version=4)
    nb.cells.insert(len(nb.cells) - 1, nbformat.v4.new_code_cell(DUMP_CELL))
    client = NotebookClient(nb, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()

    text, errors = _outputs(nb)
    assert not errors, errors
    assert "Started an embedded Netra server" in text
    assert "local OpenAI-compatible endpoint" in text
    assert text.count(": consistent") == 3 and "MISMATCH" not in text
    state = json.loads(text.split("NOTEBOOK_STATE ", 1)[1].splitlines()[0])
    calls, server_usage, tiers = state["calls"], state["server_usage"], state["tiers"]

    assert len(calls) == 26
    by_tenant = {t: [c for c in calls if c["tenant_id"] == t] for t in tiers}
    assert {t: sum(c["status"] == "ok" for c in cs) for t, cs in by_tenant.items()} == {
        "apex-legal": 8, "stratex-consulting": 6, "techstart-inc": 10,
    }
    assert [c["status"] for c in by_tenant["techstart-inc"]][-2:] == ["rate_limited", "rate_limited"]

    for c in calls:
        if c["status"] != "ok":
            # a rejected request: a trace with no usage, nothing counted, no OpenAI call
            assert c["counted_spans"] == [] and c["trace_requests"] == 0 and c["span_names"] == ["meeting-summarization"]
            assert c["events"] == ["rate-limited"]
            continue
        # the price table's price for this model and these tokens
        expected = price_tokens(c["model"], provider="openai", input_tokens=c["input_tokens"],
                                output_tokens=c["output_tokens"], cached_input_tokens=c["cached_tokens"]).cost
        assert expected is not None and Decimal(c["cost_usd"]) == expected
        # no double counting: two spans carry usage, one counts
        assert sorted(c["usage_spans"]) == sorted(["meeting-summarization", *[n for n in c["span_names"]
                                                                              if n != "meeting-summarization"]])
        assert len(c["span_names"]) == 2 and len(c["counted_spans"]) == 1
        assert c["counted_spans"][0] != "meeting-summarization"
        assert c["trace_requests"] == 1
        assert Decimal(c["trace_cost"]) == expected  # exact, no rounding on the way
        # SLA flag and event follow the latency
        over = c["sla_ms"] is not None and c["latency_ms"] > c["sla_ms"]
        assert c["sla_breached"] == over
        assert c["events"].count("sla-breach") == int(over)

    for tenant, cs in by_tenant.items():
        served = [c for c in cs if c["status"] == "ok"]
        got = server_usage[tenant]
        assert got["requests"] == len(served)
        assert got["tokens"] == sum(c["input_tokens"] + c["output_tokens"] for c in served)
        assert got["sessions"] == len({c["session_id"] for c in cs})
        cost = sum((Decimal(c["cost_usd"]) for c in served), Decimal(0))
        assert Decimal(got["cost"]) == cost

        sla = state["sla"][tenant]
        latencies = sorted(c["latency_ms"] for c in served)
        assert sla["breaches"] == sum(c["sla_breached"] for c in cs)
        limit = tiers[tenant]["sla_ms"]
        if limit is None:
            assert sla["verdict"] == "best effort"
        else:
            assert sla["verdict"] == ("met" if sla["p95_ms"] <= limit else "BREACHED")
        assert latencies[0] <= sla["p95_ms"] <= latencies[-1]
        # the server's P95 (trace latency, whole ms) agrees with the app's (the call inside the span)
        assert abs(state["server_p95"][tenant] - sla["p95_ms"]) < 50, (tenant, state["server_p95"], sla)
