"""netra.pricing agrees with genai-prices to the last digit, never prices an unknown model at 0,
and applies user overrides."""

from __future__ import annotations

import random
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from genai_prices import Usage, calc_price

from netra import pricing
from netra.pricing import Cost, PriceOverride, calculate_cost, list_models, price_table_version

AT = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _no_overrides() -> Iterator[None]:
    pricing.clear_price_overrides()
    yield
    pricing.clear_price_overrides()


def _reference(model: str, *, i: int, c: int, o: int, ai: int, ao: int) -> Decimal:
    usage = Usage(input_tokens=i, cache_read_tokens=c, output_tokens=o, input_audio_tokens=ai, output_audio_tokens=ao)
    return calc_price(usage, model_ref=model, provider_id="openai", genai_request_timestamp=AT).total_price


def test_matches_genai_prices_exactly_for_every_openai_model() -> None:
    rng = random.Random(42)
    checked = 0
    for info in list_models("openai"):
        if info.model.startswith("ft:"):
            continue  # fine-tune entries are matched by pattern, not by their id
        for k in range(4):
            i = rng.randint(0, 300_000)
            c = rng.randint(0, i) if k % 2 else 0
            ai = 0 if c else rng.randint(0, i)  # genai-prices needs an explicit split for cached audio
            o = rng.randint(0, 8_000)
            ao = rng.randint(0, o)
            mine = calculate_cost(info.model, input_tokens=i, cached_input_tokens=c, output_tokens=o,
                                  audio_input_tokens=ai, audio_output_tokens=ao, at=AT)
            assert mine.cost == _reference(info.model, i=i, c=c, o=o, ai=ai, ao=ao), (info.model, i, c, o, ai, ao)
            assert mine.source == f"price_table:{price_table_version()}"
            checked += 1
    assert checked > 300


def test_known_price_gpt_4o_mini() -> None:
    # $0.15 / $0.60 per million, cached input $0.075 (the price table's figures for the pinned date)
    cost = calculate_cost("gpt-4o-mini", input_tokens=1_000_000, cached_input_tokens=200_000,
                          output_tokens=1_000_000, at=AT)
    assert cost.cost == Decimal("0.12") + Decimal("0.015") + Decimal("0.6")
    assert cost.model == "gpt-4o-mini" and cost.provider == "openai" and not cost.unknown


def test_dated_snapshot_resolves_to_its_model() -> None:
    a = calculate_cost("gpt-4o-mini-2024-07-18", input_tokens=1000, output_tokens=300, at=AT)
    b = calculate_cost("gpt-4o-mini", input_tokens=1000, output_tokens=300, at=AT)
    assert a.cost == b.cost and a.model == "gpt-4o-mini"


def test_unknown_model_is_unknown_never_zero() -> None:
    cost = calculate_cost("acme-llm-9000", input_tokens=1000, output_tokens=10, at=AT)
    assert cost.cost is None and cost.unknown and cost.source == "unknown"
    assert calculate_cost("", input_tokens=1).unknown


def test_other_providers_model_through_openai_compatible_endpoint() -> None:
    cost = calculate_cost("claude-3-5-sonnet-latest", provider="openai", input_tokens=1000, at=AT)
    assert cost.provider == "anthropic" and cost.cost is not None and cost.cost > 0


def test_user_rates_override_the_table() -> None:
    pricing.set_price_overrides({"gpt-4o-mini": {"input_per_mtok": "0.10", "output_per_mtok": 0.4,
                                                 "cached_input_per_mtok": "0.05"}})
    cost = calculate_cost("gpt-4o-mini", input_tokens=2_000_000, cached_input_tokens=1_000_000,
                          output_tokens=1_000_000, at=AT)
    assert cost.cost == Decimal("0.10") + Decimal("0.05") + Decimal("0.4")
    assert cost.source == "user"


def test_alias_prices_a_deployment_as_a_table_model() -> None:
    pricing.set_price_overrides({"prod-gpt4o-eastus": PriceOverride(model="gpt-4o")})
    alias = calculate_cost("prod-gpt4o-eastus", provider="azure", input_tokens=1000, output_tokens=100, at=AT)
    direct = calculate_cost("gpt-4o", input_tokens=1000, output_tokens=100, at=AT)
    assert alias.cost == direct.cost and alias.model == "gpt-4o"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"input_per_mtok": 1}, "output_per_mtok"),
        ({"input_per_mtok": "x", "output_per_mtok": 1}, "not a number"),
        ({"input_per_mtok": -1, "output_per_mtok": 1}, "non-negative"),
        ({"input_per_mtk": 1, "output_per_mtok": 1}, "unknown price override field"),
    ],
)
def test_bad_overrides_say_what_to_fix(value: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        pricing.set_price_overrides({"m": value})


def test_bad_token_counts_are_rejected() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        calculate_cost("gpt-4o-mini", input_tokens=-1)
    with pytest.raises(TypeError, match="integers"):
        calculate_cost("gpt-4o-mini", input_tokens=1.5)  # type: ignore[arg-type]


def test_cache_is_bounded() -> None:
    for n in range(pricing._CACHE_LIMIT + 10):
        calculate_cost(f"unknown-model-{n}", input_tokens=1, at=AT)
    assert len(pricing._cache) <= pricing._CACHE_LIMIT


def test_cost_is_a_value_object() -> None:
    assert Cost(Decimal(1), "user") == Cost(Decimal(1), "user")
    assert Cost(None, "unknown").unknown


def test_import_does_not_load_genai_prices() -> None:
    code = "import sys, netra.pricing; print('genai_prices' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
