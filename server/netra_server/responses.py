"""JSON answers whose money is exact: :class:`ExactJSONResponse`.

The store keeps costs as ``Decimal(18, 10)`` and sums them as decimals; a ``float`` on the way out
would undo that (about 15 significant digits, binary fractions). So the routes that answer money put
``Decimal`` values in their JSON content and this response writes each one as a JSON *number* with
its exact digits (``0.397041``, ``12345678.9012345678``): the wire shapes stay those of
``docs/design.md`` (numbers, which the Netra SDK's client parses), and a client that reads numbers
as decimals (``json.loads(..., parse_float=Decimal)``, as ``netra.usage`` does) gets the exact sum.

Rendering is orjson's; a ``Decimal`` becomes an :class:`orjson.Fragment` of its digits (fixed
point, trailing zeros of the fraction dropped: ``Decimal("0.2500000000")`` is written ``0.25``,
``Decimal("0E-10")`` ``0``). A pydantic model (the wire shapes: :mod:`netra.usage.wire`,
:mod:`netra_server.wire`) is written as its fields in declaration order, those given when it was
built: a field left at its default is not written (``ModelUsage.total_cost`` without
``include_costs``). pydantic's own serializer would write a ``Decimal`` as a string, so it is not used.
A route returns ``ExactJSONResponse(content)`` itself (FastAPI would otherwise turn a ``Decimal``
into a float or a string before any response class sees it)::

    @router.get("/usage/x", response_class=ExactJSONResponse)
    async def x() -> ExactJSONResponse:
        return ExactJSONResponse(wire.SessionUsageResponse(data=wire.SessionUsage(..., totalCost=cost)))
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
from fastapi.responses import JSONResponse
from pydantic import BaseModel

__all__ = ["ExactJSONResponse", "decimal_text", "dumps"]


def decimal_text(value: Decimal) -> str:
    """The exact digits of a finite Decimal as a JSON number: fixed point, no trailing zeros in the
    fraction, no exponent, no rounding (``format(d, "f")`` keeps every digit at any size)."""
    if not value.is_finite():
        raise ValueError(f"{value} is not a finite amount; money in a JSON answer must be a number")
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return orjson.Fragment(decimal_text(value))
    if isinstance(value, BaseModel):
        fields = value.__dict__
        given = value.__pydantic_fields_set__
        if len(given) == len(fields):
            return fields
        return {name: v for name, v in fields.items() if name in given}
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def dumps(content: Any) -> bytes:
    """``content`` as JSON bytes, each ``Decimal`` as a number with its exact digits, each pydantic
    model as the fields it was given."""
    return orjson.dumps(content, default=_default)


class ExactJSONResponse(JSONResponse):
    """``application/json``, rendered by :func:`dumps` (Decimals as exact numbers)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content)
