"""Price look-up cost at steady state: netra.pricing.calculate_cost vs genai-prices' calc_price.

Budget (issue: SDK core, prices): under 5 µs per price at steady state.
Run: .venv/bin/python bench/bench_pricing.py
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime

from genai_prices import Usage, calc_price

from netra.pricing import calculate_cost

AT = datetime(2026, 6, 1, tzinfo=UTC)
N = 20_000
ROUNDS = 7


def per_call_us(fn: Callable[[int], object]) -> float:
    fn(0)  # warm the cache
    rounds = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for k in range(N):
            fn(k)
        rounds.append((time.perf_counter() - start) / N * 1e6)
    return statistics.median(rounds)


def ours(k: int) -> object:
    return calculate_cost("gpt-4o-mini", input_tokens=1000 + k, cached_input_tokens=200, output_tokens=300)


def ours_unknown(k: int) -> object:
    return calculate_cost("acme-llm", input_tokens=1000 + k, output_tokens=300)


def reference(k: int) -> object:
    usage = Usage(input_tokens=1000 + k, cache_read_tokens=200, output_tokens=300)
    return calc_price(usage, model_ref="gpt-4o-mini", provider_id="openai", genai_request_timestamp=AT)


def main() -> None:
    a = per_call_us(ours)
    u = per_call_us(ours_unknown)
    b = per_call_us(reference)
    print(f"netra.pricing.calculate_cost (known model):   {a:8.2f} µs/call")
    print(f"netra.pricing.calculate_cost (unknown model): {u:8.2f} µs/call")
    print(f"genai_prices.calc_price:                      {b:8.2f} µs/call")
    print(f"ratio ours/genai-prices: {a / b:.3f}   budget: < 5 µs -> {'OK' if a < 5 else 'OVER'}")


if __name__ == "__main__":
    main()
