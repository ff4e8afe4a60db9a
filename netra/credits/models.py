"""Typed results of the credits client (frozen dataclasses; money as exact :class:`~decimal.Decimal`).

They are also what the server's ledger answers with (``netra_server.credits.ledger``): one definition
of each record, written to JSON with :meth:`as_dict` on the server and read back with ``from_dict``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from netra.usage.errors import InvalidResponseError

if TYPE_CHECKING:
    from typing import Self

__all__ = ["Account", "Entry", "Reservation", "Transaction", "Usage", "UsageGroup", "UsageRecord", "UsageReport"]

_T = TypeVar("_T")
_TIMES = {"at", "created_at", "expires_at", "settled_at", "updated_at"}
_MONEY = {"balance", "reserved", "available", "overdraft_limit", "granted", "adjusted", "spent", "system_cost",
          "amount", "hold", "balance_after", "reserved_after", "charged", "released", "cost", "audio_seconds"}


def _build(cls: type[_T], data: Any) -> _T:
    if not isinstance(data, Mapping):
        raise InvalidResponseError(f"expected a JSON object for {cls.__name__}, got {data!r:.200}")
    kwargs: dict[str, Any] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        if f.name not in data:
            continue
        value = data[f.name]
        if f.name in _MONEY and value is not None:
            value = value if isinstance(value, Decimal) else Decimal(str(value))
        elif f.name in _TIMES and value is not None:
            value = float(value)
        kwargs[f.name] = value
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise InvalidResponseError(f"the server's {cls.__name__} is missing a field: {exc}") from None


class _Read:
    """``from_dict``: a result read from the server's JSON by field name (money as Decimal, times as float);
    ``as_dict``: the fields as the server writes them (nested records as dicts, money still Decimal)."""

    @classmethod
    def from_dict(cls, data: Any) -> Self:
        return _build(cls, data)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]


@dataclass(frozen=True)
class Usage:
    """One model call to charge: model and token counts (priced by the server from the span price
    table), or an explicit ``cost``. ``input_tokens`` includes ``cached_tokens``; ``output_tokens``
    includes ``reasoning_tokens``; ``audio_seconds`` for speech and transcription models."""

    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    audio_seconds: Decimal | int | str = 0
    provider: str | None = "openai"
    cost: Decimal | str | None = None
    cost_source: str | None = None
    trace_id: str = ""
    span_id: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "model": self.model, "provider": self.provider, "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens, "cached_tokens": self.cached_tokens,
            "reasoning_tokens": self.reasoning_tokens, "audio_seconds": str(self.audio_seconds),
            "trace_id": self.trace_id, "span_id": self.span_id,
        }
        if self.cost is not None:
            out["cost"] = str(self.cost)
            if self.cost_source:
                out["cost_source"] = self.cost_source
        return out


@dataclass(frozen=True)
class Account(_Read):
    tenant_id: str
    currency: str
    balance: Decimal
    reserved: Decimal
    available: Decimal
    overdraft_limit: Decimal
    granted: Decimal
    adjusted: Decimal
    spent: Decimal
    system_cost: Decimal
    updated_at: float


@dataclass(frozen=True)
class Entry(_Read):
    """One movement of the ledger: ``amount`` changes the balance, ``hold`` the reserved amount."""

    seq: int
    id: str
    tenant_id: str
    kind: str
    amount: Decimal
    hold: Decimal
    balance_after: Decimal
    reserved_after: Decimal
    reservation_id: str
    transaction_id: str
    context: str
    note: str
    at: float


@dataclass(frozen=True)
class Reservation(_Read):
    id: str
    tenant_id: str
    transaction_id: str
    amount: Decimal
    status: str
    created_at: float
    expires_at: float
    settled_at: float | None = None
    charged: Decimal | None = None
    note: str = ""
    model: str = ""
    account: Account | None = None

    @classmethod
    def from_dict(cls, data: Any) -> Self:
        r = _build(cls, data)
        acc = data.get("account")
        return r if acc is None else _replace(r, account=Account.from_dict(acc))


@dataclass(frozen=True)
class UsageRecord(_Read):
    id: str
    tenant_id: str
    transaction_id: str
    reservation_id: str
    context: str
    model: str
    provider: str
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    reasoning_tokens: int
    audio_seconds: Decimal
    cost: Decimal
    cost_source: str
    trace_id: str
    span_id: str
    at: float


@dataclass(frozen=True)
class Transaction(_Read):
    """What a confirmation (or usage without a reservation) charged, with its usage lines."""

    id: str
    tenant_id: str
    reservation_id: str
    context: str
    amount: Decimal
    released: Decimal
    at: float
    usage: list[UsageRecord] = field(default_factory=list)
    account: Account | None = None

    @classmethod
    def from_dict(cls, data: Any) -> Self:
        t = _build(cls, {k: v for k, v in data.items() if k not in ("usage", "account")})
        usage = [UsageRecord.from_dict(u) for u in data.get("usage") or []]
        acc = data.get("account")
        return _replace(t, usage=usage, account=Account.from_dict(acc) if acc is not None else None)


@dataclass(frozen=True)
class UsageGroup(_Read):
    key: str
    requests: int
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    reasoning_tokens: int
    audio_seconds: Decimal
    cost: Decimal


@dataclass(frozen=True)
class UsageReport(_Read):
    group_by: str
    groups: list[UsageGroup]
    total_cost: Decimal
    total_requests: int

    @classmethod
    def from_dict(cls, data: Any) -> Self:
        total = data.get("total") or {}
        return cls(group_by=str(data.get("group_by")), groups=[UsageGroup.from_dict(g) for g in data.get("groups", [])],
                   total_cost=Decimal(str(total.get("cost", 0))), total_requests=int(total.get("requests", 0)))


def _replace(obj: _T, **changes: Any) -> _T:
    import dataclasses

    return dataclasses.replace(obj, **changes)  # type: ignore[type-var]
