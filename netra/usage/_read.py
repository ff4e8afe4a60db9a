"""Reading the usage API's JSON: typed values with errors that name the key (no pydantic here).

Each :class:`Reader` reads one object of a wire shape (a model of :mod:`netra.usage.wire`, named by
the caller); :func:`recording_reads` collects which keys of which shapes were read, so a test can hold
the client's reads against the shapes and the server's answers (``tests/usage/test_wire_contract.py``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from decimal import Decimal, InvalidOperation
from typing import Any

from netra.usage.errors import InvalidResponseError

_MISSING: Any = object()

#: (shape, key) of every key read while :func:`recording_reads` is active (None: not recording).
_reads: ContextVar[set[tuple[str, str]] | None] = ContextVar("netra_usage_reads", default=None)


@contextmanager
def recording_reads() -> Iterator[set[tuple[str, str]]]:
    """Collect ``(shape name, key)`` for every key looked up (present or not) by the readers in this
    context: what the client reads of each wire shape."""
    seen: set[tuple[str, str]] = set()
    token = _reads.set(seen)
    try:
        yield seen
    finally:
        _reads.reset(token)


def note_reads(shape: str, *keys: str) -> None:
    """Record keys of the wire shape named ``shape`` read without a :class:`Reader` (the envelopes)."""
    seen = _reads.get()
    if seen is not None:
        seen.update((shape, key) for key in keys)


class Reader:
    """Reads typed values out of one JSON object of the wire shape ``shape``, naming the object and key
    in errors."""

    __slots__ = ("_data", "_seen", "_shape", "_what")

    def __init__(self, data: Any, what: str, shape: type) -> None:
        if not isinstance(data, Mapping):
            raise InvalidResponseError(f"expected a JSON object for {what}, got {type(data).__name__}")
        self._data: Mapping[str, Any] = data
        self._what = what
        self._shape = shape.__name__
        self._seen = _reads.get()

    def _get(self, key: str, required: bool) -> Any:
        if self._seen is not None:
            self._seen.add((self._shape, key))
        value = self._data.get(key, _MISSING)
        if value is _MISSING:
            if required:
                raise InvalidResponseError(
                    f"the server's {self._what} has no {key!r} key (keys: {sorted(self._data)})"
                )
            return None
        return value

    def _bad(self, key: str, value: Any, expected: str) -> InvalidResponseError:
        return InvalidResponseError(f"the server's {self._what} has {key}={value!r}; expected {expected}")

    def str_(self, key: str) -> str:
        value = self._get(key, True)
        if isinstance(value, str):
            return value
        if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
            return str(value)
        raise self._bad(key, value, "a string")

    def opt_str(self, key: str) -> str | None:
        value = self._get(key, False)
        if value is None:
            return None
        if isinstance(value, str):
            return value
        if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
            return str(value)
        raise self._bad(key, value, "a string or null")

    def _to_int(self, key: str, value: Any) -> int:
        if isinstance(value, bool):
            raise self._bad(key, value, "an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        raise self._bad(key, value, "an integer")

    def int_(self, key: str) -> int:
        value = self._get(key, True)
        if value is None:
            raise self._bad(key, value, "an integer")
        return self._to_int(key, value)

    def opt_int(self, key: str) -> int | None:
        value = self._get(key, False)
        return None if value is None else self._to_int(key, value)

    def _to_money(self, key: str, value: Any) -> Decimal:
        """A JSON number (read as ``Decimal`` or ``int``) or a decimal string, as an exact Decimal."""
        if isinstance(value, Decimal):
            money = value
        elif isinstance(value, int) and not isinstance(value, bool):
            return Decimal(value)
        elif isinstance(value, str):
            try:
                money = Decimal(value.strip())
            except InvalidOperation:
                raise self._bad(key, value, "an amount of money (a decimal number)") from None
        elif isinstance(value, float) and math.isfinite(value):
            # A float handed to from_dict by a caller (the client itself never makes one): the
            # decimal it was written as (its shortest repr), not its binary expansion.
            money = Decimal(repr(value))
        else:
            raise self._bad(key, value, "an amount of money (a decimal number)")
        if not money.is_finite():
            raise self._bad(key, value, "a finite amount of money")
        return money

    def money(self, key: str) -> Decimal:
        value = self._get(key, True)
        if value is None:
            raise self._bad(key, value, "an amount of money (a decimal number)")
        return self._to_money(key, value)

    def opt_money(self, key: str) -> Decimal | None:
        value = self._get(key, False)
        return None if value is None else self._to_money(key, value)

    def opt_bool(self, key: str) -> bool | None:
        value = self._get(key, False)
        if value is None or isinstance(value, bool):
            return value
        if value in (0, 1):
            return bool(value)
        raise self._bad(key, value, "true, false or null")

    def opt_str_list(self, key: str) -> list[str] | None:
        value = self._get(key, False)
        if value is None:
            return None
        if isinstance(value, Sequence) and not isinstance(value, str) and all(isinstance(v, str) for v in value):
            return list(value)
        raise self._bad(key, value, "a list of strings or null")

    def list_(self, key: str) -> list[Any]:
        value = self._get(key, True)
        if isinstance(value, list):
            return value
        raise self._bad(key, value, "a list")

    def obj(self, key: str, required: bool = True) -> Any:
        return self._get(key, required)



def _plain_number(value: Any) -> float:
    """For ``json.dumps``: a number the client read as ``Decimal`` (not money) back as the float it was."""
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def json_dumps(value: Any) -> str:
    """JSON text of a value the client parsed (its numbers as they were before it read them as Decimal)."""
    return json.dumps(value, default=_plain_number)


def json_text(value: Any) -> str | None:
    """Attributes / events as JSON text: as sent when the server sends text (this server does), else
    re-encoded by :func:`json_dumps`."""
    if value is None or isinstance(value, str):
        return value
    return json_dumps(value)
