"""Which provider's prices apply to a call, by the client's base URL (issue 12, item 7).

The real ``openai`` client replays recorded OpenAI exchanges (and canned answers) through a gateway /
proxy base URL, Azure, and known providers' URLs; the span's cost must equal ``netra.pricing``'s price
for the provider that should apply.
"""

from __future__ import annotations

from decimal import Decimal

import httpx2
import openai
import pytest
from netra_instrumentation_openai import OpenAIInstrumentor, set_price_provider

from netra import semconv as sc
from netra.pricing import calculate_cost

from . import canned
from .conftest import Traced, async_client, load_cassette, sync_client

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

GATEWAY = "http://llm-gateway.internal:8080/v1"


def price_of(model: str, provider: str | None, tokens_in: int, tokens_out: int = 0) -> float:
    cost = calculate_cost(model, provider=provider, input_tokens=tokens_in, output_tokens=tokens_out)
    assert cost.cost is not None, (model, provider)
    return float(cost.cost)


def test_embeddings_through_a_compatible_base_url_are_priced_as_openai(traced: Traced) -> None:
    replay = load_cassette("test_embeddings_no_content")
    usage = replay.interactions[0].usage()
    assert usage is not None
    # the bug: without a provider the price table cannot tell whose model this is
    assert calculate_cost("text-embedding-3-small", provider=None, input_tokens=usage["prompt_tokens"]).unknown
    client = sync_client(replay.handler, base_url=GATEWAY)
    client.embeddings.create(model="text-embedding-3-small", input="Hello, world")
    assert replay.sent[0].url.host == "llm-gateway.internal"
    attrs = traced.one().attributes or {}
    assert sc.COST_UNKNOWN not in attrs
    assert attrs[sc.COST] == price_of("text-embedding-3-small", "openai", usage["prompt_tokens"])
    assert str(attrs[sc.COST_SOURCE]).startswith("price_table:")


async def test_async_embeddings_and_chat_through_a_compatible_base_url(traced: Traced) -> None:
    embeddings = load_cassette("test_async_embeddings_no_content")
    chat = load_cassette("test_async_chat_completion_no_content")
    await async_client(embeddings.handler, base_url=GATEWAY).embeddings.create(
        **{k: v for k, v in embeddings.interactions[0].request_body.items() if k != "encoding_format"}
    )
    await async_client(chat.handler, base_url=GATEWAY).chat.completions.create(**chat.interactions[0].request_body)
    emb_span, chat_span = traced.spans()
    emb_usage, chat_usage = embeddings.interactions[0].usage(), chat.interactions[0].usage()
    assert emb_usage is not None and chat_usage is not None
    emb = emb_span.attributes or {}
    assert emb[sc.COST] == price_of(str(emb[sc.GEN_AI_RESPONSE_MODEL]), "openai", emb_usage["prompt_tokens"])
    ch = chat_span.attributes or {}
    expected = price_of(
        str(ch[sc.GEN_AI_RESPONSE_MODEL]), "openai", chat_usage["prompt_tokens"], chat_usage["completion_tokens"]
    )
    assert ch[sc.COST] == expected and sc.COST_UNKNOWN not in ch


def test_a_gateway_serving_another_providers_model_is_priced_as_that_provider(traced: Traced) -> None:
    """The fallback to OpenAI applies only when the price table cannot tell the model's provider."""
    client = sync_client(canned.answer, base_url=GATEWAY)
    client.chat.completions.create(model="claude-3-5-sonnet-latest", messages=[{"role": "user", "content": "hi"}])
    client.chat.completions.create(model="my-finetune-7b", messages=[{"role": "user", "content": "hi"}])
    claude, unknown = (s.attributes or {} for s in traced.spans())
    usage = canned.USAGE
    anthropic = price_of("claude-3-5-sonnet-latest", "anthropic", usage["prompt_tokens"], usage["completion_tokens"])
    assert claude[sc.COST] == anthropic
    # a model nobody prices stays unknown: never a cost of 0, never an invented price
    assert unknown[sc.COST_UNKNOWN] is True and sc.COST not in unknown


def test_azure_stays_azure(traced: Traced) -> None:
    """Azure's price for 'ada' embeddings differs from OpenAI's: the Azure client and the plain client
    pointed at an Azure endpoint are priced with Azure's, never with the OpenAI fallback."""
    tokens = canned.EMBEDDINGS["usage"]["prompt_tokens"]  # type: ignore[index]
    assert price_of("ada", "azure", 10**6) != price_of("ada", "openai", 10**6)

    def ada(request: httpx2.Request) -> httpx2.Response:
        return canned.respond(json_body={**canned.EMBEDDINGS, "model": "ada"})

    azure = openai.AzureOpenAI(
        api_key="k",
        api_version="2024-10-21",
        azure_endpoint="https://contoso.openai.azure.com",
        http_client=httpx2.Client(transport=httpx2.MockTransport(ada)),
    )
    azure.embeddings.create(model="ada", input="x")
    plain = sync_client(ada, base_url="https://contoso.openai.azure.com/openai/v1/")
    plain.embeddings.create(model="ada", input="x")
    for span in traced.spans():
        assert (span.attributes or {})[sc.COST] == price_of("ada", "azure", tokens)


def test_a_known_providers_url_is_priced_as_that_provider(traced: Traced) -> None:
    def ada(request: httpx2.Request) -> httpx2.Response:
        return canned.respond(json_body={**canned.EMBEDDINGS, "model": "ada"})

    # the same model name, through a gateway (-> openai) and a set provider (-> azure)
    gateway = sync_client(ada, base_url=GATEWAY)
    gateway.embeddings.create(model="ada", input="x")
    set_price_provider(gateway, "azure")
    gateway.embeddings.create(model="ada", input="x")
    set_price_provider(gateway, None)
    gateway.embeddings.create(model="ada", input="x")
    tokens = canned.EMBEDDINGS["usage"]["prompt_tokens"]  # type: ignore[index]
    costs = [(s.attributes or {})[sc.COST] for s in traced.spans()]
    assert costs == [price_of("ada", "openai", tokens), price_of("ada", "azure", tokens), price_of("ada", "openai", tokens)]


def test_price_providers_option_by_host(traced: Traced) -> None:
    traced.instrument(price_providers={"llm-gateway.internal:8080": "azure", "other-gateway": "openai"})

    def ada(request: httpx2.Request) -> httpx2.Response:
        return canned.respond(json_body={**canned.EMBEDDINGS, "model": "ada"})

    sync_client(ada, base_url=GATEWAY).embeddings.create(model="ada", input="x")
    sync_client(ada, base_url="https://other-gateway/v1").embeddings.create(model="ada", input="x")
    sync_client(ada, base_url="http://llm-gateway.internal:9090/v1").embeddings.create(model="ada", input="x")
    tokens = canned.EMBEDDINGS["usage"]["prompt_tokens"]  # type: ignore[index]
    costs = [(s.attributes or {})[sc.COST] for s in traced.spans()]
    assert costs == [price_of("ada", "azure", tokens), price_of("ada", "openai", tokens),
                     price_of("ada", "openai", tokens)]


def test_clients_alternating_between_base_urls_keep_their_own_prices(traced: Traced) -> None:
    """The per-base-URL route is cached; alternating clients must not borrow each other's provider."""

    def ada(request: httpx2.Request) -> httpx2.Response:
        return canned.respond(json_body={**canned.EMBEDDINGS, "model": "ada"})

    clients = [sync_client(ada, base_url=GATEWAY), sync_client(ada, base_url="https://x.openai.azure.com/openai/v1/")]
    for _ in range(3):
        for client in clients:
            client.embeddings.create(model="ada", input="x")
    tokens = canned.EMBEDDINGS["usage"]["prompt_tokens"]  # type: ignore[index]
    expected = [price_of("ada", "openai", tokens), price_of("ada", "azure", tokens)] * 3
    assert [(s.attributes or {})[sc.COST] for s in traced.spans()] == expected


def test_an_unknown_provider_is_refused_with_what_to_write(traced: Traced) -> None:
    client = sync_client(canned.answer, base_url=GATEWAY)
    with pytest.raises(ValueError, match="netra.pricing.providers"):
        set_price_provider(client, "opnai")
    with pytest.raises(ValueError, match="price_providers"):
        OpenAIInstrumentor().uninstrument()
        OpenAIInstrumentor().instrument(tracer_provider=traced.provider, price_providers={"h": "nobody"})


def test_fallback_provider_in_calculate_cost() -> None:
    cost = calculate_cost("text-embedding-3-small", provider=None, input_tokens=1000, fallback_provider="openai")
    assert cost.cost == Decimal("0.00002") and cost.provider == "openai"
    # the first provider wins when it knows the model
    cost = calculate_cost("ada", provider="azure", input_tokens=10**6, fallback_provider="openai")
    assert cost.provider == "azure"
    assert calculate_cost("no-such-model", provider=None, input_tokens=1, fallback_provider="openai").unknown


@pytest.mark.parametrize(
    ("model", "provider", "fallback"),
    [
        ("gpt-4o-mini", "openai", None),
        ("gpt-4o-mini-2024-07-18", None, "openai"),
        ("o4-mini", "openai", None),
        ("ada", "azure", None),
        ("text-embedding-3-small", None, "openai"),
        ("claude-3-5-sonnet-latest", None, "openai"),
        ("no-such-model", None, "openai"),
        ("no-such-model", "openai", None),
    ],
)
def test_the_hot_path_price_equals_calculate_cost(model: str, provider: str | None, fallback: str | None) -> None:
    from netra.pricing import price_valid_counts, set_price_overrides

    counts = (2000, 1536, 300, 200, 0, 0)  # input, cached, output, reasoning, audio in, audio out
    for _ in range(2):  # the first call resolves and caches, the second takes the fast path
        expected = calculate_cost(
            model, provider=provider, input_tokens=2000, cached_input_tokens=1536, output_tokens=300,
            reasoning_tokens=200, fallback_provider=fallback,
        )
        assert price_valid_counts(model, provider, fallback, *counts) == (expected.cost, expected.source)
    set_price_overrides({model: {"input_per_mtok": "1", "output_per_mtok": "2"}})
    try:
        assert price_valid_counts(model, provider, fallback, *counts) == (Decimal("0.0026"), "user")
    finally:
        set_price_overrides({})
