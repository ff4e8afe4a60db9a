"""The credits clients: :class:`CreditsClient` (sync) and :class:`AsyncCreditsClient` (async).

They talk to ``/api/credits`` of the Netra server with the usage client's transport (the same base
URL, key, timeouts and retries). Every writing call sends an idempotency key (a new one per call
unless you pass your own), so the client's automatic retries after a timeout or a 5xx never reserve,
charge or grant twice.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from netra.credits.errors import from_status_error
from netra.credits.models import Account, Entry, Reservation, Transaction, Usage, UsageReport, _Read
from netra.usage._calls import Call, _data_block, _segment, takes
from netra.usage.errors import APIStatusError

if TYPE_CHECKING:
    from typing import Self

    from netra.credits._scope import AsyncReservationScope, ReservationScope
    from netra.usage import AsyncUsageClient, ClientOptions, UsageClient

__all__ = ["AsyncCreditsClient", "CreditsClient"]

T = TypeVar("T")
_M = TypeVar("_M", bound=_Read)
_U = TypeVar("_U", "UsageClient", "AsyncUsageClient")
Amount = Decimal | int | str
TimeArg = datetime | float | int | str | None
Context = Literal["customer", "system"]


def _amount(value: Amount, name: str = "amount") -> str:
    if isinstance(value, float):
        raise TypeError(f"{name} must be a Decimal, int or str (money is exact), not a float: {value!r}")
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise TypeError(f"{name} must be a Decimal, int or str, not {type(value).__name__}")
    return str(value)


def _key(key: str | None) -> str:
    return key if key is not None else f"netra-{uuid.uuid4().hex}"


def _time(value: TimeArg) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return str(value.timestamp())
    return str(value)


def _lines(usage: Usage | Sequence[Usage]) -> list[dict[str, Any]]:
    items = [usage] if isinstance(usage, Usage) else list(usage)
    if not all(isinstance(u, Usage) for u in items):
        raise TypeError("usage must be netra.credits.Usage objects")
    return [u.to_json() for u in items]


def _read(model: type[_M], key: str) -> Callable[[Any], _M]:
    """How a call's answer is read: the ``data`` block (``key`` names it in errors) as ``model``."""
    return lambda body: model.from_dict(_data_block(body, key))


def _rid(reservation: str | Reservation) -> str:
    return reservation.id if isinstance(reservation, Reservation) else reservation


def _grant(tenant_id: str, amount: Amount, note: str, kind: str, key: str | None) -> Call[Entry]:
    return Call("POST", f"/api/credits/accounts/{_segment(tenant_id)}/grants", f"a {kind} for {tenant_id!r}",
                lambda b: Entry.from_dict(_data_block(b, kind)["entry"]),
                json={"amount": _amount(amount), "note": note, "kind": kind, "idempotency_key": _key(key)})


class _Calls:
    """The requests, shared by both clients; each one's parameters are its client method's arguments."""

    @staticmethod
    def grant(tenant_id: str, amount: Amount, *, note: str = "", idempotency_key: str | None = None) -> Call[Entry]:
        return _grant(tenant_id, amount, note, "grant", idempotency_key)

    @staticmethod
    def adjust(tenant_id: str, amount: Amount, *, note: str = "", idempotency_key: str | None = None) -> Call[Entry]:
        return _grant(tenant_id, amount, note, "adjustment", idempotency_key)

    @staticmethod
    def set_overdraft_limit(tenant_id: str, limit: Amount) -> Call[Account]:
        return Call("PUT", f"/api/credits/accounts/{_segment(tenant_id)}", f"the overdraft limit of {tenant_id!r}",
                    _read(Account, "account"), json={"overdraft_limit": _amount(limit, "limit")})

    @staticmethod
    def get_account(tenant_id: str) -> Call[Account]:
        return Call("GET", f"/api/credits/accounts/{_segment(tenant_id)}", f"the credit account of {tenant_id!r}",
                    _read(Account, "account"))

    @staticmethod
    def list_accounts() -> Call[list[Account]]:
        return Call("GET", "/api/credits/accounts", "the credit accounts",
                    lambda b: [Account.from_dict(a) for a in _data_block(b, "accounts")])

    @staticmethod
    def reserve(tenant_id: str, amount: Amount | None = None, *, model: str | None = None, input_tokens: int = 0,
                max_output_tokens: int = 0, provider: str | None = "openai", ttl: float = 300.0, note: str = "",
                idempotency_key: str | None = None) -> Call[Reservation]:
        if (amount is None) == (model is None):
            raise ValueError("reserve(tenant_id, amount) or reserve(tenant_id, model=..., max_output_tokens=...): "
                             "give an amount or a model, not both")
        body: dict[str, Any] = {"tenant_id": tenant_id, "ttl_seconds": ttl, "note": note,
                                "idempotency_key": _key(idempotency_key)}
        if amount is not None:
            body["amount"] = _amount(amount)
        else:
            body.update(model=model, provider=provider, input_tokens=input_tokens, max_output_tokens=max_output_tokens)
        return Call("POST", "/api/credits/reservations", f"a reservation for {tenant_id!r}",
                    _read(Reservation, "reservation"), json=body)

    @staticmethod
    def get_reservation(reservation: str | Reservation) -> Call[Reservation]:
        rid = _rid(reservation)
        return Call("GET", f"/api/credits/reservations/{_segment(rid)}", f"reservation {rid}",
                    _read(Reservation, "reservation"))

    @staticmethod
    def confirm(reservation: str | Reservation, *, usage: Usage | Sequence[Usage] | None = None,
                amount: Amount | None = None, note: str = "", idempotency_key: str | None = None) -> Call[Transaction]:
        if (amount is None) == (usage is None):
            raise ValueError("confirm(reservation, usage=[Usage(...)]) or confirm(reservation, amount=...): "
                             "give the actual usage or the actual amount")
        body: dict[str, Any] = {"note": note, "idempotency_key": _key(idempotency_key)}
        if amount is not None:
            body["amount"] = _amount(amount)
        else:
            assert usage is not None
            body["usage"] = _lines(usage)
        rid = _rid(reservation)
        return Call("POST", f"/api/credits/reservations/{_segment(rid)}/confirm", f"confirming {rid}",
                    _read(Transaction, "transaction"), json=body)

    @staticmethod
    def release(reservation: str | Reservation, *, idempotency_key: str | None = None) -> Call[Reservation]:
        rid = _rid(reservation)
        return Call("POST", f"/api/credits/reservations/{_segment(rid)}/release", f"releasing {rid}",
                    _read(Reservation, "reservation"), json={"idempotency_key": _key(idempotency_key)})

    @staticmethod
    def record_usage(tenant_id: str, usage: Usage | Sequence[Usage], *, context: Context = "customer",
                     transaction_id: str | None = None, note: str = "",
                     idempotency_key: str | None = None) -> Call[Transaction]:
        if context not in ("customer", "system"):
            raise ValueError(f"context must be 'customer' or 'system', not {context!r}")
        body = {"tenant_id": tenant_id, "usage": _lines(usage), "context": context,
                "transaction_id": transaction_id, "note": note, "idempotency_key": _key(idempotency_key)}
        return Call("POST", "/api/credits/usage", f"usage of {tenant_id!r}",
                    _read(Transaction, "transaction"), json=body)

    @staticmethod
    def get_transaction(transaction_id: str) -> Call[Transaction]:
        return Call("GET", f"/api/credits/transactions/{_segment(transaction_id)}", f"transaction {transaction_id}",
                    _read(Transaction, "transaction"))

    @staticmethod
    def list_entries(tenant_id: str | None = None, *, kinds: Sequence[str] = (), since: TimeArg = None,
                     until: TimeArg = None, after: int = 0,
                     limit: int = 1000) -> Call[tuple[list[Entry], int | None]]:
        params = {"after": str(after), "limit": str(limit)}
        if tenant_id is not None:
            params["tenant_id"] = tenant_id
        if kinds:
            params["kind"] = ",".join(kinds)
        for name, value in (("since", _time(since)), ("until", _time(until))):
            if value is not None:
                params[name] = value

        def parse(b: Any) -> tuple[list[Entry], int | None]:
            data = _data_block(b, "entries")
            nxt = data.get("next_after")
            return [Entry.from_dict(e) for e in data["entries"]], (int(nxt) if nxt is not None else None)

        return Call("GET", "/api/credits/entries", "the credit ledger", parse, params=params)

    @staticmethod
    def get_usage(group_by: Literal["model", "context", "tenant", "day"] = "model", *, tenant_id: str | None = None,
                  model: str | None = None, context: Context | None = None, since: TimeArg = None,
                  until: TimeArg = None) -> Call[UsageReport]:
        params: dict[str, str] = {"group_by": group_by}
        for name, value in (("tenant_id", tenant_id), ("model", model), ("context", context),
                            ("since", _time(since)), ("until", _time(until))):
            if value is not None:
                params[name] = value
        return Call("GET", "/api/credits/usage", "credit usage", _read(UsageReport, "usage"), params=params)

    @staticmethod
    def reservation(tenant_id: str, amount: Amount | None = None, *, model: str | None = None,
                    input_tokens: int = 0, max_output_tokens: int = 0, provider: str | None = "openai",
                    ttl: float = 300.0, note: str = "") -> tuple[str, dict[str, Any]]:
        """Not a request: the tenant and the ``reserve`` arguments of a reservation block."""
        return tenant_id, dict(amount=amount, model=model, input_tokens=input_tokens,
                               max_output_tokens=max_output_tokens, provider=provider, ttl=ttl, note=note)


class _Base(Generic[_U]):
    """What both credits clients share: the usage client (connections, key, retries) they send through."""

    def __init__(self, base_url: str | None = None, api_key: str | None = None, *,
                 usage_client: _U | None = None, **kwargs: Any) -> None:
        self._owns = usage_client is None
        self._http: _U = usage_client if usage_client is not None else self._usage_class()(base_url, api_key, **kwargs)

    @classmethod
    def _usage_class(cls) -> type[_U]:
        raise NotImplementedError

    @classmethod
    def from_options(cls, options: ClientOptions) -> Self:
        """A client with its own usage client built from :class:`~netra.usage.ClientOptions`."""
        client = cls(usage_client=cls._usage_class().from_options(options))
        client._owns = True
        return client

    @property
    def base_url(self) -> str:
        return self._http.base_url


class CreditsClient(_Base["UsageClient"]):
    """Tenant credits on a Netra server (synchronous). ``Netra.credits`` is one, after ``Netra.init``.

    Args are those of :class:`netra.usage.UsageClient` (``base_url``, ``api_key``, ``headers``,
    ``timeout``, ``max_retries``, ``transport``); or pass ``usage_client=`` to share its connections,
    or build one with :meth:`from_options`.
    """

    @classmethod
    def _usage_class(cls) -> type[UsageClient]:
        from netra.usage import UsageClient

        return UsageClient

    def close(self) -> None:
        if self._owns:
            self._http.close()

    def __enter__(self) -> CreditsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, call: Call[T]) -> T:
        try:
            result = self._http._send(call)
        except APIStatusError as exc:
            raise from_status_error(exc) from None
        assert result is not None
        return result

    # -- accounts ------------------------------------------------------------------------------------

    @takes(_Calls.grant)
    def grant(self, call: Call[Entry]) -> Entry:
        """``grant(tenant_id, amount, *, note="", idempotency_key=None)``: add ``amount`` USD to the
        tenant's balance (an admin key). Returns the ledger entry."""
        return self._send(call)

    @takes(_Calls.adjust)
    def adjust(self, call: Call[Entry]) -> Entry:
        """``adjust(tenant_id, amount, *, note="", idempotency_key=None)``: correct the balance by
        ``amount`` (negative to take credit away; an admin key)."""
        return self._send(call)

    @takes(_Calls.set_overdraft_limit)
    def set_overdraft_limit(self, call: Call[Account]) -> Account:
        """``set_overdraft_limit(tenant_id, limit)``: let the tenant's balance go down to ``-limit``
        (0: no overdraft; an admin key)."""
        return self._send(call)

    @takes(_Calls.get_account)
    def get_account(self, call: Call[Account]) -> Account:
        """``get_account(tenant_id)``: granted, spent, reserved, balance and available credit (zeros for a
        tenant without an account)."""
        return self._send(call)

    @takes(_Calls.list_accounts)
    def list_accounts(self, call: Call[list[Account]]) -> list[Account]:
        return self._send(call)

    # -- spending ------------------------------------------------------------------------------------

    @takes(_Calls.reserve)
    def reserve(self, call: Call[Reservation]) -> Reservation:
        """``reserve(tenant_id, amount=None, *, model=None, input_tokens=0, max_output_tokens=0,
        provider="openai", ttl=300.0, note="", idempotency_key=None)``: hold ``amount`` USD (or the most
        a call of ``model`` can cost) for ``ttl`` seconds.

        Raises :class:`~netra.credits.InsufficientCredits` when the tenant's available credit is less.
        """
        return self._send(call)

    @takes(_Calls.get_reservation)
    def get_reservation(self, call: Call[Reservation]) -> Reservation:
        return self._send(call)

    @takes(_Calls.confirm)
    def confirm(self, call: Call[Transaction]) -> Transaction:
        """``confirm(reservation, *, usage=None, amount=None, note="", idempotency_key=None)``: charge the
        actual usage (priced by the server) or amount; the rest of the hold is released."""
        return self._send(call)

    @takes(_Calls.release)
    def release(self, call: Call[Reservation]) -> Reservation:
        """``release(reservation, *, idempotency_key=None)``: give the whole hold back (the call did not happen)."""
        return self._send(call)

    @takes(_Calls.record_usage)
    def record_usage(self, call: Call[Transaction]) -> Transaction:
        """``record_usage(tenant_id, usage, *, context="customer", transaction_id=None, note="",
        idempotency_key=None)``: usage without a reservation, charged to the tenant (``customer``) or
        recorded only (``system``)."""
        return self._send(call)

    @takes(_Calls.reservation)
    def reservation(self, args: tuple[str, dict[str, Any]]) -> ReservationScope:
        """``with credits.reservation("acme", model="gpt-4o-mini", max_output_tokens=500) as r:`` — reserve,
        run the block, confirm with the usage the instrumentation recorded in it (see docs/credits.md).
        Takes the arguments of :meth:`reserve` but ``idempotency_key``."""
        from netra.credits._scope import ReservationScope

        return ReservationScope(self, *args)

    # -- reading -------------------------------------------------------------------------------------

    @takes(_Calls.get_transaction)
    def get_transaction(self, call: Call[Transaction]) -> Transaction:
        return self._send(call)

    @takes(_Calls.list_entries)
    def list_entries(self, call: Call[tuple[list[Entry], int | None]]) -> tuple[list[Entry], int | None]:
        """``list_entries(tenant_id=None, *, kinds=(), since=None, until=None, after=0, limit=1000)``: one
        page of the ledger (oldest first) and the ``after`` of the next page (None at the end)."""
        return self._send(call)

    def iter_entries(self, tenant_id: str | None = None, *, kinds: Sequence[str] = (), since: TimeArg = None,
                     until: TimeArg = None, limit: int = 1000) -> Iterator[Entry]:
        """Every ledger entry, fetching pages lazily."""
        after: int | None = 0
        while after is not None:
            page, after = self.list_entries(tenant_id, kinds=kinds, since=since, until=until, after=after,
                                            limit=limit)
            yield from page

    @takes(_Calls.get_usage)
    def get_usage(self, call: Call[UsageReport]) -> UsageReport:
        """``get_usage(group_by="model", *, tenant_id=None, model=None, context=None, since=None,
        until=None)``: usage recorded against credits, grouped, over a time range (both contexts unless
        given)."""
        return self._send(call)


class AsyncCreditsClient(_Base["AsyncUsageClient"]):
    """The asynchronous twin of :class:`CreditsClient` (``Netra.async_credits``)."""

    @classmethod
    def _usage_class(cls) -> type[AsyncUsageClient]:
        from netra.usage import AsyncUsageClient

        return AsyncUsageClient

    async def aclose(self) -> None:
        if self._owns:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncCreditsClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _send(self, call: Call[T]) -> T:
        try:
            result = await self._http._send(call)
        except APIStatusError as exc:
            raise from_status_error(exc) from None
        assert result is not None
        return result

    @takes(_Calls.grant)
    async def grant(self, call: Call[Entry]) -> Entry:
        return await self._send(call)

    @takes(_Calls.adjust)
    async def adjust(self, call: Call[Entry]) -> Entry:
        return await self._send(call)

    @takes(_Calls.set_overdraft_limit)
    async def set_overdraft_limit(self, call: Call[Account]) -> Account:
        return await self._send(call)

    @takes(_Calls.get_account)
    async def get_account(self, call: Call[Account]) -> Account:
        return await self._send(call)

    @takes(_Calls.list_accounts)
    async def list_accounts(self, call: Call[list[Account]]) -> list[Account]:
        return await self._send(call)

    @takes(_Calls.reserve)
    async def reserve(self, call: Call[Reservation]) -> Reservation:
        return await self._send(call)

    @takes(_Calls.get_reservation)
    async def get_reservation(self, call: Call[Reservation]) -> Reservation:
        return await self._send(call)

    @takes(_Calls.confirm)
    async def confirm(self, call: Call[Transaction]) -> Transaction:
        return await self._send(call)

    @takes(_Calls.release)
    async def release(self, call: Call[Reservation]) -> Reservation:
        return await self._send(call)

    @takes(_Calls.record_usage)
    async def record_usage(self, call: Call[Transaction]) -> Transaction:
        return await self._send(call)

    @takes(_Calls.reservation)
    def reservation(self, args: tuple[str, dict[str, Any]]) -> AsyncReservationScope:
        """``async with credits.reservation(...) as r:`` (see :meth:`CreditsClient.reservation`)."""
        from netra.credits._scope import AsyncReservationScope

        return AsyncReservationScope(self, *args)

    @takes(_Calls.get_transaction)
    async def get_transaction(self, call: Call[Transaction]) -> Transaction:
        return await self._send(call)

    @takes(_Calls.list_entries)
    async def list_entries(self, call: Call[tuple[list[Entry], int | None]]) -> tuple[list[Entry], int | None]:
        return await self._send(call)

    async def iter_entries(self, tenant_id: str | None = None, *, kinds: Sequence[str] = (), since: TimeArg = None,
                           until: TimeArg = None, limit: int = 1000) -> AsyncIterator[Entry]:
        after: int | None = 0
        while after is not None:
            page, after = await self.list_entries(tenant_id, kinds=kinds, since=since, until=until, after=after,
                                                  limit=limit)
            for e in page:
                yield e

    @takes(_Calls.get_usage)
    async def get_usage(self, call: Call[UsageReport]) -> UsageReport:
        return await self._send(call)
