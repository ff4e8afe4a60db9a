"""Pure parts of the usage client: times, configuration, models, retry policy."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from netra.usage import (
    ClientOptions,
    InvalidResponseError,
    SpanOwnUsage,
    TraceSpan,
    TraceSummary,
    UsageClient,
    UsageTotals,
    base_url_from_endpoint,
)
from netra.usage._answers import parse_retry_after, retry_delay
from netra.usage._config import parse_headers, resolve
from netra.usage._times import format_utc, to_utc, window


@pytest.mark.parametrize(
    ("endpoint", "base"),
    [
        ("http://localhost:4318", "http://localhost:4318"),
        ("http://localhost:4318/", "http://localhost:4318"),
        ("http://localhost:4318/v1/traces", "http://localhost:4318"),
        ("https://api.getnetra.ai/telemetry", "https://api.getnetra.ai"),
        ("https://api.getnetra.ai/telemetry/", "https://api.getnetra.ai"),
        ("https://x.example/telemetry/v1/traces", "https://x.example"),
        ("https://x.example/prefix/telemetry", "https://x.example/prefix"),
        ("https://x.example/telemetryx", "https://x.example/telemetryx"),
    ],
)
def test_base_url_from_endpoint(endpoint: str, base: str) -> None:
    assert base_url_from_endpoint(endpoint) == base


def test_base_url_needs_a_scheme() -> None:
    with pytest.raises(ValueError, match="no scheme"):
        base_url_from_endpoint("localhost:4318")
    with pytest.raises(ValueError, match="empty"):
        base_url_from_endpoint(" ")


def test_parse_headers() -> None:
    assert parse_headers("a=1, B=x%20y ,c=k%3Dv,,") == {"a": "1", "b": "x y", "c": "k=v"}
    with pytest.raises(ValueError, match="NETRA_HEADERS"):
        parse_headers("novalue")


def test_resolve_defaults_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    s = resolve(ClientOptions(), "ua")
    assert s.base_url == "http://localhost:4318"
    assert "x-api-key" not in s.headers and not s.has_api_key
    monkeypatch.setenv("NETRA_OTLP_ENDPOINT", "https://netra.example/telemetry")
    monkeypatch.setenv("NETRA_API_KEY", "env-key")
    s = resolve(ClientOptions(), "ua")
    assert s.base_url == "https://netra.example" and s.headers["x-api-key"] == "env-key"
    s = resolve(ClientOptions("http://other:1/v1/traces", "arg-key", {"Authorization": "Bearer z"}), "ua")
    assert s.base_url == "http://other:1" and s.headers["x-api-key"] == "arg-key"
    assert s.headers["authorization"] == "Bearer z"
    for bad in ({"timeout": 0}, {"max_retries": -1}):
        with pytest.raises(ValueError):
            UsageClient(**bad)  # type: ignore[arg-type]


def test_client_repr_hides_the_key() -> None:
    client = UsageClient("http://h:1/telemetry", "secret-key")
    assert client.base_url == "http://h:1"
    assert "secret" not in repr(client)
    client.close()


def test_times() -> None:
    assert to_utc("2025-01-01T00:00:00Z", "t") == datetime(2025, 1, 1, tzinfo=UTC)
    assert to_utc("2025-01-01T02:00:00+02:00", "t") == datetime(2025, 1, 1, tzinfo=UTC)
    aware = datetime(2025, 1, 1, 5, tzinfo=timezone(timedelta(hours=5)))
    assert to_utc(aware, "t") == datetime(2025, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="naive"):
        to_utc(datetime(2025, 1, 1), "start_time")
    with pytest.raises(ValueError, match="no time zone"):
        to_utc("2025-01-01", "start_time")
    with pytest.raises(ValueError, match="not an ISO 8601"):
        to_utc("yesterday", "start_time")
    with pytest.raises(TypeError, match="aware datetime or an ISO 8601 string"):
        to_utc(1735689600, "start_time")  # type: ignore[arg-type]
    assert format_utc(datetime(2025, 1, 1, tzinfo=UTC)) == "2025-01-01T00:00:00Z"
    assert format_utc(datetime(2025, 1, 1, 0, 0, 0, 5000, tzinfo=UTC)) == "2025-01-01T00:00:00.005Z"
    assert window("2025-01-01T00:00:00Z", "2025-01-01T00:00:00Z") == ("2025-01-01T00:00:00Z",) * 2
    with pytest.raises(ValueError, match="swap"):
        window("2025-01-02T00:00:00Z", "2025-01-01T00:00:00Z")


def test_retry_after_parsing() -> None:
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("3", now) == 3
    assert parse_retry_after("1.5", now) == 1.5
    assert parse_retry_after("Wed, 01 Jan 2025 12:00:10 GMT", now) == 10
    assert parse_retry_after("Wed, 01 Jan 2025 11:00:00 GMT", now) == 0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


def test_retry_delay_policy() -> None:
    s = resolve(ClientOptions("http://h", max_retry_wait=4), "ua")
    assert retry_delay(0, 2.0, s) == 2.0  # Retry-After as given
    assert retry_delay(0, 5.0, s) is None  # longer than max_retry_wait: give up now
    for attempt, (low, high) in enumerate([(0.25, 0.75), (0.5, 1.5), (1.0, 3.0), (2.0, 4.0), (4.0, 4.0)]):
        for _ in range(50):
            assert low <= retry_delay(attempt, None, s) <= high  # type: ignore[operator]


def test_models_tolerate_extra_keys_and_name_missing_ones() -> None:
    item = {
        "id": "t1",
        "name": "n",
        "kind": "k",
        "latency_ms": "12",
        "start_time": "a",
        "end_time": "b",
        "cursor": "c",
        "organisation_id": None,
        "project_id": "p",
        "total_cost": "0.5",
        "prompt_tokens": 3.0,
        "has_error": 0,
        "new_key": 1,
    }
    summary = TraceSummary.from_dict(item)
    assert (summary.latency_ms, summary.total_cost_usd, summary.prompt_tokens, summary.has_error) == (12, Decimal("0.5"), 3, False)
    assert summary.total_cost == 0.5 and summary.organisation_id == ""  # netra-sdk's types: float, str
    with pytest.raises(InvalidResponseError, match="no 'cursor' key"):
        TraceSummary.from_dict({k: v for k, v in item.items() if k != "cursor"})
    with pytest.raises(InvalidResponseError, match="latency_ms=True"):
        TraceSummary.from_dict({**item, "latency_ms": True})
    span = TraceSpan.from_dict(
        {
            "id": "s",
            "trace_id": "t",
            "name": "n",
            "kind": "k",
            "cursor": "c",
            "attributes": {"a": 1},
            "events": [{"name": "e"}],
        }
    )
    assert span.attributes_dict() == {"a": 1} and span.events_list() == [{"name": "e"}]
    assert span.created_at == "" and span.parent_span_id is None


TOTALS = {"requestsCount": 1, "tokenCount": 3, "inputTokens": 2, "outputTokens": 1, "cachedTokens": 0,
          "unpricedCount": 0, "sessionsCount": 1, "spanCount": 1}


@pytest.mark.parametrize(
    ("wire", "money"),
    [
        (Decimal("12345678.0123456789"), Decimal("12345678.0123456789")),  # a JSON number read as Decimal
        (0, Decimal(0)),  # a whole number arrives as int
        (7, Decimal(7)),
        ("0.3970410000", Decimal("0.397041")),  # a decimal string (other servers)
        (0.1, Decimal("0.1")),  # a float a caller passes: the decimal it was written as, not 0.1000000000000000055...
    ],
)
def test_money_is_an_exact_decimal(wire: object, money: Decimal) -> None:
    got = UsageTotals.from_dict({**TOTALS, "totalCost": wire}).total_cost
    assert type(got) is Decimal and got == money
    assert TraceSummary.from_dict(
        {"id": "t", "name": "n", "kind": "k", "latency_ms": 1, "start_time": "a", "end_time": "b", "cursor": "c",
         "total_cost": wire}
    ).total_cost_usd == money


@pytest.mark.parametrize("wire", [True, "a lot", "NaN", "Infinity", float("nan"), float("inf"), [1], Decimal("NaN")])
def test_money_that_is_not_an_amount_is_an_error(wire: object) -> None:
    with pytest.raises(InvalidResponseError, match="totalCost="):
        UsageTotals.from_dict({**TOTALS, "totalCost": wire})
    with pytest.raises(InvalidResponseError, match="cost="):
        SpanOwnUsage.from_dict({"inputTokens": 1, "outputTokens": 1, "cachedTokens": 0, "totalTokens": 2, "cost": wire})


def test_unknown_cost_stays_none() -> None:
    own = SpanOwnUsage.from_dict({"inputTokens": 1, "outputTokens": 1, "cachedTokens": 0, "totalTokens": 2, "cost": None})
    assert own.cost is None
    with pytest.raises(InvalidResponseError, match="totalCost=None"):
        UsageTotals.from_dict({**TOTALS, "totalCost": None})  # a total is a number (0 when nothing is priced)


def test_import_is_light() -> None:
    code = "import sys, netra.usage; print('httpx' in sys.modules, 'pydantic' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
