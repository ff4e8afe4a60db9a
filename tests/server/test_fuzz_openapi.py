"""A schema-driven fuzz test of the server's OpenAPI (schemathesis on Hypothesis), against a real server
with a real admin key and some data: every operation gets requests that fit its schema and requests
that do not (wrong types, missing or extra fields, out-of-range values); none may answer 5xx (bad input
is a 4xx with a message). Bounded in time: about ``FUZZ_SECONDS`` (default 30; generating the first cases of each operation adds a little) over all operations;
``NETRA_FUZZ_SECONDS`` raises it for a longer hunt."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from netra_server.testing import RunningServer, run_server
from schemathesis import GenerationMode

from ._helpers import record, send

FUZZ_SECONDS = float(os.environ.get("NETRA_FUZZ_SECONDS", "30"))


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with run_server(tmp_path_factory.mktemp("fuzz")) as srv:
        provider, collect = record()
        tracer = provider.get_tracer("fuzz")
        for tenant in ("apex", "stratex"):
            with tracer.start_as_current_span("root", attributes={"netra.tenant_id": tenant,
                                                                   "netra.session_id": f"{tenant}-s"}):
                with tracer.start_as_current_span("chat", attributes={
                        "netra.tenant_id": tenant, "gen_ai.request.model": "gpt-4o-mini",
                        "gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": 20}):
                    pass
        provider.shutdown()
        send(srv, collect.spans)
        srv.wait_for_spans(4)
        with srv.client() as c:
            c.post("/api/alerts/rules", json={
                "name": "fuzz", "metric": "latency", "condition": {"op": ">", "threshold": 1},
                "filters": ["tenant_id = apex"], "contact_points": [{"type": "webhook", "url": "http://127.0.0.1:9/h"}],
            }).raise_for_status()
        yield srv


class _TimeUp(Exception):
    """This operation's share of the time budget is spent."""


def _fuzz(srv: RunningServer, operation: Any, mode: GenerationMode, seconds: float, session: requests.Session,
          failures: list[str]) -> int:
    """Fuzz one operation in one mode for about ``seconds``; returns the requests sent."""
    stop_at = time.monotonic() + seconds
    calls = 0

    @settings(max_examples=200, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        nonlocal calls
        if time.monotonic() > stop_at:
            raise _TimeUp  # ends this operation's generation at once (no shrinking phase)
        calls += 1
        response = case.call(base_url=srv.base_url, session=session, headers={"x-api-key": srv.api_key}, timeout=30)
        if response.status_code >= 500:
            failures.append(
                f"{case.method} {response.request.url} ({mode.value}) body={str(case.body)[:200]!r} -> "
                f"{response.status_code} {response.text[:300]}"
            )

    try:
        run()
    except _TimeUp:
        pass
    except Unsatisfiable:  # nothing to make invalid (e.g. no parameters, no body)
        assert mode is GenerationMode.NEGATIVE, operation.label
    return calls


def test_no_operation_answers_5xx_to_fuzzed_requests(fuzz_server: RunningServer) -> None:
    srv = fuzz_server
    schema = schemathesis.openapi.from_url(srv.base_url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    modes = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    budget = FUZZ_SECONDS / (len(operations) * len(modes))
    session = requests.Session()
    failures: list[str] = []
    calls = sum(_fuzz(srv, op, mode, budget, session, failures) for op in operations for mode in modes)
    # the server is still up and the admin key still works
    assert httpx.get(srv.base_url + "/api/me", headers=srv.headers).status_code == 200
    assert calls > 100, calls
    assert not failures, "\n".join(failures[:20])
