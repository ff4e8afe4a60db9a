"""ExactJSONResponse: Decimals written as JSON numbers with their exact digits."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from netra_server.responses import ExactJSONResponse, decimal_text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("0.3970410000"), "0.397041"),
        (Decimal("0E-10"), "0"),
        (Decimal("-0E-10"), "0"),
        (Decimal("1E-10"), "0.0000000001"),
        (Decimal("100.0000000000"), "100"),
        (Decimal("1E+3"), "1000"),
        (Decimal("12345678.0123456789"), "12345678.0123456789"),
        # a Decimal128 sum with 38 digits: no rounding (a normalize() in a 28-digit context would round)
        (Decimal("1234567890123456789012345678.0123456789"), "1234567890123456789012345678.0123456789"),
        (Decimal("-2.50"), "-2.5"),
    ],
)
def test_decimal_text_is_exact_and_a_json_number(value: Decimal, text: str) -> None:
    assert decimal_text(value) == text
    assert json.loads(text, parse_float=Decimal, parse_int=Decimal) == value


@pytest.mark.parametrize("value", [Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity"), Decimal("sNaN")])
def test_a_non_finite_amount_is_refused(value: Decimal) -> None:
    with pytest.raises(ValueError, match="not a finite amount"):
        decimal_text(value)


def test_the_response_renders_money_as_numbers_and_the_rest_as_json() -> None:
    content = {"data": {"totalCost": Decimal("39585997.6060411463"), "cost": None, "tokenCount": 2**60,
                        "latency": 1.5, "id": "é", "items": [Decimal("0.1"), Decimal("0.2")]}}
    response = ExactJSONResponse(content)
    assert response.media_type == "application/json"
    assert response.body == (b'{"data":{"totalCost":39585997.6060411463,"cost":null,"tokenCount":1152921504606846976,'
                             b'"latency":1.5,"id":"\xc3\xa9","items":[0.1,0.2]}}')
    back = json.loads(response.body, parse_float=Decimal)
    assert back["data"]["totalCost"] == Decimal("39585997.6060411463")
    assert sum(back["data"]["items"]) == Decimal("0.3")
    with pytest.raises(TypeError, match="not JSON serializable"):
        ExactJSONResponse({"x": object()})
