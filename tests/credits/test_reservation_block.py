"""``with Netra.credits.reservation(...)``: the real openai client against the local simulated model,
Netra with the OpenAI instrumentation and the OTLP exporter, a real server. The block is confirmed
with the cost the instrumentation recorded, and the trace, the usage report and the ledger agree."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import openai
import pytest
from netra_server.demo.fake_openai import FakeOpenAIConfig, FakeOpenAIServer
from netra_server.testing import RunningServer

from netra import Netra, UsageModel
from netra._testing import reset
from netra.credits import InsufficientCredits, Usage
from netra.credits._scope import TRANSACTION_ID
from netra.instrumentation.instruments import InstrumentSet


@pytest.fixture(scope="module")
def model() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(config=FakeOpenAIConfig(latency_scale=0)) as fake:
        yield fake


@pytest.fixture
def client(model: FakeOpenAIServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=model.base_url, api_key="sk-test", max_retries=0)


@pytest.fixture
def netra(netra_server: RunningServer) -> Iterator[None]:
    reset()
    Netra.init(app_name="credits-test", endpoint=netra_server.base_url, api_key=netra_server.api_key,
               instruments={InstrumentSet.OPENAI}, disable_batch=True)
    yield
    reset()


def _ask(client: openai.OpenAI, text: str = "Summarize: the launch slips a week.") -> openai.types.chat.ChatCompletion:
    return client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": text}],
                                          max_tokens=200)


def test_the_block_confirms_with_the_calls_cost_and_the_trace_agrees(
    client: openai.OpenAI, netra: None, netra_server: RunningServer
) -> None:
    t = f"t-{uuid.uuid4().hex[:8]}"
    Netra.credits.grant(t, "1.00")
    start = datetime.now(UTC) - timedelta(seconds=1)
    with Netra.credits.reservation(t, model="gpt-4o-mini", input_tokens=500, max_output_tokens=400) as r:
        assert Netra.get_context()[TRANSACTION_ID] == r.transaction_id
        with Netra.start_span("summarize") as span:
            response = _ask(client)
            # the app also records the usage itself: the billing rule counts it once
            span.set_usage([UsageModel(model=response.model, usage_type="chat", units_used=1,
                                       cost_in_usd=0.5)])
        _ask(client, "And the second meeting?")
    assert TRANSACTION_ID not in Netra.get_context()
    txn = r.transaction
    assert txn is not None and txn.id == r.transaction_id and len(txn.usage) == 2
    assert all(u.cost_source.startswith("price_table:") for u in txn.usage)
    assert r.reservation is not None and txn.released == r.reservation.amount - txn.amount
    # the spans carry the transaction id, and the server's cost of those spans is the ledger's amount
    assert Netra.flush()
    end = datetime.now(UTC) + timedelta(seconds=1)
    for _ in range(100):
        usage = Netra.usage.get_tenant_usage(t, start, end)
        if usage is not None and usage.request_count == 2:
            break
        time.sleep(0.1)
    assert usage is not None and usage.request_count == 2
    assert usage.total_cost_usd == txn.amount  # trace, usage report and ledger: the same amount
    spans = [s for u in txn.usage for s in Netra.usage.iter_spans_by_trace_id(u.trace_id)]
    llm = [s for s in spans if s.id in {u.span_id for u in txn.usage}]
    assert len(llm) == 2 and all(TRANSACTION_ID in (s.attributes or "") and txn.id in (s.attributes or "") for s in llm)
    assert Netra.credits.get_account(t).balance == Decimal(1) - txn.amount


def test_a_block_without_usage_releases_and_an_error_in_it_still_charges_what_ran(
    client: openai.OpenAI, netra: None
) -> None:
    t = f"t-{uuid.uuid4().hex[:8]}"
    Netra.credits.grant(t, "1")
    with Netra.credits.reservation(t, "0.5") as r:
        pass
    assert r.transaction is None and Netra.credits.get_reservation(r.id).status == "released"
    with pytest.raises(RuntimeError, match="after the call"):
        with Netra.credits.reservation(t, "0.5") as r2:
            _ask(client)
            raise RuntimeError("the app failed after the call")
    assert r2.transaction is not None and r2.transaction.amount > 0
    acc = Netra.credits.get_account(t)
    assert acc.reserved == 0 and acc.balance == Decimal(1) - r2.transaction.amount


def test_insufficient_credits_refuses_before_the_call(client: openai.OpenAI, netra: None,
                                                       model: FakeOpenAIServer) -> None:
    t = f"t-{uuid.uuid4().hex[:8]}"
    before = model.stats()["models"].get("gpt-4o-mini", {}).get("requests", 0)
    with pytest.raises(InsufficientCredits):
        with Netra.credits.reservation(t, model="gpt-4o-mini", max_output_tokens=200):
            _ask(client)
    assert model.stats()["models"].get("gpt-4o-mini", {}).get("requests", 0) == before


def test_an_expired_hold_is_still_charged_through_the_same_transaction(
    client: openai.OpenAI, netra: None, netra_server: RunningServer
) -> None:
    t = f"t-{uuid.uuid4().hex[:8]}"
    Netra.credits.grant(t, "1")
    with Netra.credits.reservation(t, "0.5", ttl=1) as r:
        _ask(client)
        time.sleep(2.5)  # the sweeper releases the hold meanwhile
    assert Netra.credits.get_reservation(r.id).status == "expired"
    assert r.transaction is not None and r.transaction.id == r.transaction_id and r.transaction.amount > 0
    assert Netra.credits.get_account(t).balance == Decimal(1) - r.transaction.amount


def test_async_block(client: openai.OpenAI, netra: None, model: FakeOpenAIServer) -> None:
    t = f"t-{uuid.uuid4().hex[:8]}"
    aclient = openai.AsyncOpenAI(base_url=model.base_url, api_key="sk-test", max_retries=0)

    async def main() -> Decimal:
        credits = Netra.async_credits
        await credits.grant(t, "1")
        async with credits.reservation(t, model="gpt-4o-mini", max_output_tokens=300) as r:
            await aclient.chat.completions.create(model="gpt-4o-mini", max_tokens=100,
                                                  messages=[{"role": "user", "content": "hi"}])
            r.add_usage(Usage(model="whisper-1", audio_seconds=60))
        assert r.transaction is not None and len(r.transaction.usage) == 2
        acc = await credits.get_account(t)
        await credits._http.aclose()
        return Decimal(1) - acc.balance

    spent = asyncio.run(main())
    assert spent > Decimal("0.006")  # the call plus a minute of whisper-1 ($0.006)


def test_calls_in_a_thread_pool_count_when_submitted_with_bind_context(client: openai.OpenAI, netra: None) -> None:
    from concurrent.futures import ThreadPoolExecutor

    t = f"t-{uuid.uuid4().hex[:8]}"
    Netra.credits.grant(t, "1")
    with Netra.credits.reservation(t, "0.5") as r, ThreadPoolExecutor(3) as pool:
        ask = Netra.bind_context(_ask)  # bound here, in the block's context
        list(pool.map(lambda _: ask(client), range(3)))
    assert r.transaction is not None and len(r.transaction.usage) == 3
