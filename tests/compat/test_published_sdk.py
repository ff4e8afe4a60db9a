"""The published ``netra-sdk`` 1.2.2 and Netra's docs' code, unchanged, against a real ``netra serve``;
and the same code with our SDK.

The cookbook's workload (``scripts/cookbook_workload.py``) runs twice: with the published SDK in its own
virtualenv (ids prefixed ``pub-``) and with ours (``ours-``), each calling the simulated OpenAI endpoint
through the real ``openai`` client and exporting over OTLP to the server. Then the docs' examples
(``scripts/docs_examples.py``) read it back: with the published SDK, and with ours. The numbers are
checked exactly against what the workload recorded: requests, tokens, sessions and cost per tenant.

The cost a tenant is billed is the OpenAI calls' cost, once (the billing rule: the
``meeting-summarization`` span's own ``set_usage`` is covered by the OpenAI span inside it), priced from
the price table; the cookbook's price list has the same prices (checked below), so it equals the sum of
the ``cost_in_usd`` the workload recorded.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from netra.pricing import price_tokens

from .conftest import Env, run_script, window

TENANTS = ("apex-legal", "stratex-consulting", "techstart-inc")
SPANS_PER_MEETING = 3  # meeting-summarization, the OpenAI call, extract-action-items
PRICE_LIST = {"gpt-4o": (Decimal("2.50"), Decimal("10.00")), "gpt-4o-mini": (Decimal("0.15"), Decimal("0.60"))}


class Runs:
    def __init__(self, recorded: dict[str, list[dict[str, Any]]], docs: dict[tuple[str, str], Any],
                 start: str, end: str) -> None:
        self.recorded = recorded
        self.docs = docs
        self.start = start
        self.end = end


@pytest.fixture(scope="module")
def runs(env: Env, published_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Runs:
    tmp = tmp_path_factory.mktemp("compat-runs")
    pythons = {"pub": published_python, "ours": Path(sys.executable)}
    recorded = {}
    for sdk, python in pythons.items():
        recorded[sdk] = run_script(python, "cookbook_workload.py", env.environ(COMPAT_PREFIX=f"{sdk}-"),
                                   tmp / f"workload-{sdk}.json", tmp)
    env.srv.wait_for_spans(sum(len(r) for r in recorded.values()) * SPANS_PER_MEETING)
    start, end = window()
    docs = {}
    for reader, data in (("pub", "pub"), ("ours", "pub"), ("ours", "ours"), ("pub", "ours")):
        docs[(reader, data)] = run_script(
            pythons[reader], "docs_examples.py",
            env.environ(COMPAT_PREFIX=f"{data}-", COMPAT_START=start, COMPAT_END=end),
            tmp / f"docs-{reader}-{data}.json", tmp,
        )
    return Runs(recorded, docs, start, end)


def expected_by_tenant(recorded: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = defaultdict(lambda: {"requests": 0, "tokens": 0, "sessions": set(),
                                                          "cost": Decimal(0)})
    for call in recorded:
        t = out[call["tenant_id"]]
        t["requests"] += 1
        t["tokens"] += call["prompt_tokens"] + call["completion_tokens"]
        t["sessions"].add(call["session_id"])
        price_in, price_out = PRICE_LIST[call["model"]]
        t["cost"] += (call["prompt_tokens"] * price_in + call["completion_tokens"] * price_out) / 1_000_000
    return dict(out)


def test_the_cookbook_price_list_is_the_price_table(runs: Runs) -> None:
    """The premise of the cost checks: the OpenAI calls are priced (from the price table) as the
    cookbook's own price list prices them (no cached tokens in these short prompts)."""
    for call in runs.recorded["pub"] + runs.recorded["ours"]:
        assert call["cached_tokens"] == 0
        table = price_tokens(call["response_model"], provider="openai", input_tokens=call["prompt_tokens"],
                             output_tokens=call["completion_tokens"]).cost
        price_in, price_out = PRICE_LIST[call["model"]]
        assert table == (call["prompt_tokens"] * price_in + call["completion_tokens"] * price_out) / 1_000_000


@pytest.mark.parametrize("sdk", ["pub", "ours"])
def test_tenant_and_session_usage_equal_what_the_workload_recorded(runs: Runs, sdk: str) -> None:
    """Read with the published SDK (its pydantic models, float total_cost): requests, tokens, sessions and
    cost per tenant are exactly the workload's, for the workload run with either SDK: one call counted once."""
    docs = runs.docs[("pub", sdk)]
    expected = expected_by_tenant(runs.recorded[sdk])
    assert set(expected) == {f"{sdk}-{t}" for t in TENANTS}
    for tenant, exp in expected.items():
        got = docs["example_tenant_usage"][tenant]
        assert got is not None, f"no usage for {tenant}"
        assert (got["tenant_id"], got["request_count"], got["token_count"], got["session_count"]) == (
            tenant, exp["requests"], exp["tokens"], len(exp["sessions"])), tenant
        assert got["total_cost"] == float(exp["cost"]), tenant  # the float of the exact decimal sent
        assert isinstance(got["organisation_id"], str) and got["organisation_id"]
    session = docs["example_session_usage"]
    calls = [c for c in runs.recorded[sdk] if c["session_id"] == f"{sdk}-apex-legal-s1"]
    assert (session["request_count"], session["token_count"]) == (
        len(calls), sum(c["prompt_tokens"] + c["completion_tokens"] for c in calls))


def test_our_sdk_reads_the_same_numbers_with_the_published_field_names(runs: Runs) -> None:
    """The docs' code run with our SDK: every result has the published fields with the same values
    (plus total_cost_usd, the exact Decimal, which is the float's decimal)."""
    pub, ours = runs.docs[("pub", "pub")], runs.docs[("ours", "pub")]
    for tenant, got in pub["example_tenant_usage"].items():
        mine = ours["example_tenant_usage"][tenant]
        assert {k: mine[k] for k in got} == got
        assert float(Decimal(mine["total_cost_usd"])) == got["total_cost"]
    assert {k: ours["example_session_usage"][k] for k in pub["example_session_usage"]} == pub["example_session_usage"]
    for a, b in zip(pub["example_list_traces"]["traces"], ours["example_list_traces"]["traces"], strict=True):
        assert {k: b[k] for k in a} == a
    assert pub["example_iter_traces"] == ours["example_iter_traces"]
    assert pub["example_paginate_traces"] == ours["example_paginate_traces"]
    assert pub["example_sorted_traces"] == ours["example_sorted_traces"]
    for trace_id, spans in pub["example_spans"].items():
        mine = ours["example_spans"][trace_id]
        for a, b in zip(spans["all"], mine["all"], strict=True):
            assert {k: b[k] for k in a} == a
        assert {k: spans[k] for k in ("up", "openai.chat", "TOOL")} == {k: mine[k] for k in ("up", "openai.chat", "TOOL")}


@pytest.mark.parametrize("reader", ["pub", "ours"])
@pytest.mark.parametrize("data", ["pub", "ours"])
def test_span_queries_do_not_crash_and_name_span_types(runs: Runs, reader: str, data: str) -> None:
    """Every span of every trace parses as the published TraceSpan (times as strings, JSON text);
    ``kind`` is the span type; ``span_name="openai.chat"`` (the docs' example) finds the OpenAI call
    whichever SDK traced it, ``"TOOL"`` the tool span; pages of spans read both ways."""
    spans_by_trace = runs.docs[(reader, data)]["example_spans"]
    assert len(spans_by_trace) == sum(1 for c in runs.recorded[data] if c["tenant_id"] == f"{data}-stratex-consulting")
    for trace_id, spans in spans_by_trace.items():
        everything = spans["all"]
        assert len(everything) == SPANS_PER_MEETING
        assert [s["id"] for s in everything] == [s["id"] for s in spans["first_page"]] + [s["id"] for s in everything[2:]]
        assert spans["up"] == [s["id"] for s in reversed(everything)]
        by_name = {s["name"]: s for s in everything}
        root = by_name["meeting-summarization"]
        tool = by_name["extract-action-items"]
        (llm,) = [s for s in everything if s["id"] not in (root["id"], tool["id"])]
        assert (root["kind"], tool["kind"], llm["kind"]) == ("SPAN", "TOOL", "GENERATION")
        assert spans["openai.chat"] == [llm["id"]] and spans["TOOL"] == [tool["id"]]
        for s in everything:
            assert s["trace_id"] == trace_id and isinstance(s["start_time_ms"], str)
            assert int(s["start_time_ms"]) <= int(s["end_time_ms"])
            for key in ("attributes", "events", "links", "resources"):
                assert isinstance(s[key], str), key
            assert s["organisation_id"] and s["project_id"] and s["created_at"] and s["cursor"]
        assert llm["prompt_tokens"] > 0 and llm["total_cost"] is not None and llm["total_cost"] > 0
        assert llm["model_name"].startswith("gpt-4o-mini")


@pytest.mark.parametrize("reader", ["pub", "ours"])
def test_pagination_visits_every_trace_once_in_both_directions(runs: Runs, env: Env, reader: str) -> None:
    """``down`` (the default) pages from the oldest trace to newer ones, ``up`` from the newest to older
    ones, as the docs say; both, by cursor and by the iterator, visit every trace exactly once."""
    with env.srv.client() as c:
        body = {"startTime": runs.start, "endTime": runs.end, "pagination": {"limit": 1000}}
        listing = c.post("/sdk/traces", json=body).raise_for_status().json()["data"]["data"]
    mine = [t for t in listing if (t["tenant_id"] or "").startswith("pub-")]
    assert len(mine) == len(runs.recorded["pub"])
    oldest_first = [t["id"] for t in sorted(mine, key=lambda t: (t["start_time"], t["id"]))]
    assert [t["id"] for t in mine] == oldest_first  # the default order: by start time, oldest first
    docs = runs.docs[(reader, "pub")]
    pages = docs["example_paginate_traces"]
    down = [t for page in pages["down"] for t in page]
    up = [t for page in pages["up"] for t in page]
    assert down == oldest_first and up == oldest_first[::-1]
    assert docs["example_iter_traces"]["down"] == oldest_first
    assert docs["example_iter_traces"]["up"] == oldest_first[::-1]
    session = [c for c in runs.recorded["pub"] if c["session_id"] == "pub-stratex-consulting-s2"]
    assert len(docs["example_iter_traces"]["by_session"]) == len(session)


def test_the_docs_sort_fields_are_accepted(runs: Runs) -> None:
    docs = runs.docs[("pub", "pub")]
    costs = [c for _, c in docs["example_sorted_traces"]["cost"]]
    assert len(costs) == 4 and costs == sorted(costs, reverse=True) and all(c > 0 for c in costs)
    latencies = docs["example_sorted_traces"]["latency"]
    assert len(latencies) == 4 and latencies == sorted(latencies)


def test_a_bad_request_is_a_400_with_a_message(runs: Runs, env: Env) -> None:
    """An unknown sort field: the server answers 400 with what to send; the published SDK turns it
    into an empty page (its own choice), ours raises BadRequestError with the server's message."""
    assert runs.docs[("pub", "pub")]["example_bad_request"] == {"traces": 0}
    ours = runs.docs[("ours", "pub")]["example_bad_request"]
    assert ours["raised"] == "BadRequestError" and "sortField must be one of" in ours["message"]
    with env.srv.client() as c:
        for body in ({"sortField": "no_such_field"}, {"pagination": {"cursor": "garbage"}},
                     {"pagination": {"limit": 10**6}}, {"sortOrder": "sideways"}):
            r = c.post("/sdk/traces", json=body)
            assert r.status_code == 400 and r.json()["error"]["message"], body
        r = c.get("/sdk/traces/" + "ab" * 16 + "/spans", params={"cursor": "garbage"})
        assert r.status_code == 400 and "cursor" in r.json()["error"]["message"]


def test_a_tenant_never_seen_answers_zero_counts(env: Env) -> None:
    """The documented choice: a tenant or session without spans in the window is 200 with zero counts
    (the published SDK then returns a model of zeros, ours too; None only when the server sends no data)."""
    with env.srv.client() as c:
        got = c.get("/usage/tenants/never-seen", params={"startTime": "2020-01-01T00:00:00Z"}).json()["data"]
    assert (got["tenant_id"], got["requestsCount"], got["tokenCount"], got["sessionsCount"], got["totalCost"]) == (
        "never-seen", 0, 0, 0, 0)
