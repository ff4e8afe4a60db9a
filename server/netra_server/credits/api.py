"""The credit routes under ``/api/credits`` (JSON; money as exact decimal numbers).

Errors answer ``{"error": {"message": ..., "code": ...}}``: 400 ``invalid_request`` /
``unknown_price``, 402 ``insufficient_credits``, 404 ``reservation_not_found``, 409
``reservation_already_confirmed`` / ``reservation_expired`` / ``reservation_released`` /
``idempotency_key_reused``. Writing routes take an ``Idempotency-Key`` header: a retry with the same
key and the same request gets the first answer and changes nothing.

Keys: spending (reserve, confirm, release, usage) needs an ingest or admin key; granting, adjusting
and overdraft limits an admin key; reading any key of the project (a tenant-limited read key reads
only its tenant).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr, WithJsonSchema

from netra_server.auth import AuthContext
from netra_server.deps import admin_auth, any_key_auth, ingest_auth, state_of
from netra_server.errors import ApiError
from netra_server.responses import ExactJSONResponse
from netra_server.validation import BadRequest, parse_time

from .errors import InvalidCreditRequest
from .ledger import ENTRY_KINDS, CreditLedger, check_amount, check_tenant
from .pricing import UsageLine, estimate
from .wire import (
    AccountResponse,
    AccountsResponse,
    EntriesResponse,
    GrantResponse,
    ReservationResponse,
    TransactionResponse,
    UsageReportResponse,
    VerifyResponse,
    credit_errors,
)

__all__ = ["ledger_of", "router"]

T = TypeVar("T")

router = APIRouter(prefix="/api/credits", tags=["credits"], default_response_class=ExactJSONResponse)

Admin = Annotated[AuthContext, Depends(admin_auth)]
Spender = Annotated[AuthContext, Depends(ingest_auth)]
TenantPath = Annotated[str, Path(min_length=1, max_length=256)]
IdemKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)]


async def _reader(request: Request) -> AuthContext:
    """Any key of the project may read credits (an ingest key spends them, so it may see them too)."""
    return await any_key_auth(request)


Reader = Annotated[AuthContext, Depends(_reader)]


def ledger_of(request: Request) -> CreditLedger:
    state_of(request)
    ledger: CreditLedger | None = getattr(request.app.state, "netra_credits", None)
    if ledger is None:
        raise ApiError(503, "the credit ledger is not open yet; retry in a moment", {"Retry-After": "1"})
    return ledger


async def _run(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await asyncio.to_thread(fn, *args, **kwargs)


def _tenant_allowed(ctx: AuthContext, tenant_id: str) -> None:
    if ctx.tenant_id is not None and ctx.tenant_id != tenant_id:
        raise ApiError(403, f"this key is limited to tenant {ctx.tenant_id!r}")


async def _own_reservation(ledger: CreditLedger, ctx: AuthContext, reservation_id: str) -> None:
    """A key limited to a tenant may settle only that tenant's reservations."""
    if ctx.tenant_id is not None:
        r = await _run(ledger.reservation, ctx.project_id, reservation_id)
        _tenant_allowed(ctx, r.tenant_id)


def _ok(data: Any, status: int = 200) -> ExactJSONResponse:
    return ExactJSONResponse({"data": data}, status_code=status)


def _seconds(value: str | None, name: str) -> float | None:
    """An ISO 8601 time or Unix seconds, as Unix seconds."""
    if value is None or value == "":
        return None
    try:
        return float(value)
    except ValueError:
        pass
    ns = parse_time(value, name)
    return None if ns is None else ns / 1e9


# -- bodies ------------------------------------------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


#: An amount sent to the server: a JSON number, or a string of digits (documented as a number).
AmountIn = Annotated[StrictStr | StrictInt | StrictFloat, WithJsonSchema({"type": "number"})]
_EXACT_IN = ("USD, at most 10 decimal places; a JSON number, or a string of its digits. The server reads its "
             "exact digits as a decimal, never through a float")


IdemField = Annotated[str | None, Field(max_length=255, description="Or the Idempotency-Key header")]


class GrantIn(_Body):
    amount: AmountIn
    idempotency_key: IdemField = None
    note: Annotated[str, Field(max_length=1000)] = ""
    kind: Literal["grant", "adjustment"] = "grant"


class AccountIn(_Body):
    overdraft_limit: AmountIn


class ReserveIn(_Body):
    tenant_id: Annotated[str, Field(min_length=1, max_length=256)]
    idempotency_key: IdemField = None
    amount: AmountIn | None = None
    model: Annotated[str, Field(max_length=200)] | None = None
    provider: Annotated[str, Field(max_length=100)] | None = "openai"
    input_tokens: Annotated[int, Field(ge=0, le=10**9)] = 0
    max_output_tokens: Annotated[int, Field(ge=0, le=10**9)] = 0
    ttl_seconds: Annotated[float, Field(ge=1, le=7 * 86400)] = 300.0
    note: Annotated[str, Field(max_length=1000)] = ""


class UsageIn(_Body):
    model: Annotated[str, Field(min_length=1, max_length=200)]
    provider: Annotated[str, Field(max_length=100)] | None = "openai"
    input_tokens: Annotated[int, Field(ge=0, le=10**10)] = 0
    output_tokens: Annotated[int, Field(ge=0, le=10**10)] = 0
    cached_tokens: Annotated[int, Field(ge=0, le=10**10)] = 0
    reasoning_tokens: Annotated[int, Field(ge=0, le=10**10)] = 0
    audio_seconds: AmountIn = 0
    cost: AmountIn | None = Field(None, description=f"The line's cost when known (else priced). {_EXACT_IN}")
    cost_source: Annotated[str, Field(max_length=100)] | None = None
    trace_id: Annotated[str, Field(max_length=64)] = ""
    span_id: Annotated[str, Field(max_length=32)] = ""

    def line(self) -> UsageLine:
        return UsageLine(
            model=self.model, provider=self.provider, input_tokens=self.input_tokens,
            output_tokens=self.output_tokens, cached_tokens=self.cached_tokens,
            reasoning_tokens=self.reasoning_tokens,
            audio_seconds=check_amount(self.audio_seconds, "audio_seconds", allow_zero=True),
            cost=None if self.cost is None else check_amount(self.cost, "cost", allow_zero=True),
            cost_source=self.cost_source, trace_id=self.trace_id, span_id=self.span_id,
        )


class ReleaseIn(_Body):
    idempotency_key: IdemField = None


class ConfirmIn(_Body):
    amount: AmountIn | None = None
    idempotency_key: IdemField = None
    usage: Annotated[list[UsageIn], Field(max_length=1000)] = []
    note: Annotated[str, Field(max_length=1000)] = ""


class RecordIn(_Body):
    tenant_id: Annotated[str, Field(min_length=1, max_length=256)]
    idempotency_key: IdemField = None
    context: Literal["customer", "system"] = "customer"
    transaction_id: Annotated[str, Field(max_length=64)] | None = None
    usage: Annotated[list[UsageIn], Field(min_length=1, max_length=1000)]
    note: Annotated[str, Field(max_length=1000)] = ""


# -- accounts ----------------------------------------------------------------------------------------


@router.get("/accounts", response_model=AccountsResponse, responses=credit_errors(401, 403, 503), summary="Every credit account of the project (balance, reserved, available)")
async def list_accounts(request: Request, ctx: Reader) -> ExactJSONResponse:
    ledger = ledger_of(request)
    accounts = await _run(ledger.accounts, ctx.project_id)
    return _ok([a.as_dict() for a in accounts if ctx.tenant_id in (None, a.tenant_id)])


@router.get("/accounts/{tenant_id:path}", response_model=AccountResponse, responses=credit_errors(400, 401, 403, 503), summary="One tenant's account: granted, spent, reserved, balance")
async def get_account(request: Request, tenant_id: TenantPath, ctx: Reader) -> ExactJSONResponse:
    _tenant_allowed(ctx, tenant_id)
    ledger = ledger_of(request)
    return _ok((await _run(ledger.account, ctx.project_id, tenant_id)).as_dict())


@router.put("/accounts/{tenant_id:path}", response_model=AccountResponse, responses=credit_errors(400, 401, 403, 503), summary="Set the tenant's overdraft limit (admin)")
async def put_account(request: Request, tenant_id: TenantPath, body: AccountIn, ctx: Admin) -> ExactJSONResponse:
    ledger = ledger_of(request)
    limit = check_amount(body.overdraft_limit, "overdraft_limit", allow_zero=True)
    return _ok((await _run(ledger.set_overdraft_limit, ctx.project_id, tenant_id, limit)).as_dict())


@router.post("/accounts/{tenant_id:path}/grants", response_model=GrantResponse, responses=credit_errors(400, 401, 403, 409, 503), status_code=201, summary="Add credits (grant) or correct (adjustment)")
async def grant(request: Request, tenant_id: TenantPath, body: GrantIn, ctx: Admin,
                idempotency_key: IdemKey = None) -> ExactJSONResponse:
    ledger = ledger_of(request)
    amount = check_amount(body.amount, allow_negative=body.kind == "adjustment")
    entry = await _run(ledger.grant, ctx.project_id, tenant_id, amount, note=body.note, kind=body.kind,
                       idempotency_key=idempotency_key or body.idempotency_key)
    account = await _run(ledger.account, ctx.project_id, tenant_id)
    return _ok({"entry": entry.as_dict(), "account": account.as_dict()}, 201)


# -- reservations ------------------------------------------------------------------------------------


@router.post("/reservations", response_model=ReservationResponse, responses=credit_errors(400, 401, 402, 403, 409, 503), status_code=201, summary="Hold credits before a call (an amount, or a model's maximum)")
async def reserve(request: Request, body: ReserveIn, ctx: Spender, idempotency_key: IdemKey = None) -> ExactJSONResponse:
    ledger = ledger_of(request)
    check_tenant(body.tenant_id)
    _tenant_allowed(ctx, body.tenant_id)
    if (body.amount is None) == (body.model is None):
        raise InvalidCreditRequest("reserve an amount (\"amount\") or a call's maximum (\"model\" with "
                                   "\"input_tokens\" and \"max_output_tokens\"), exactly one of them")
    if body.amount is not None:
        amount = check_amount(body.amount)
    else:
        assert body.model is not None
        if not body.max_output_tokens and not body.input_tokens:
            raise InvalidCreditRequest("a reservation by model needs input_tokens and/or max_output_tokens")
        amount = await _run(estimate, body.model, body.provider, body.input_tokens, body.max_output_tokens)
        if amount <= 0:
            raise InvalidCreditRequest(f"the price table prices this call of {body.model!r} at 0 USD; reserve an amount")
    reservation = await _run(ledger.reserve, ctx.project_id, body.tenant_id, amount, ttl=body.ttl_seconds,
                             note=body.note, model=body.model or "", idempotency_key=idempotency_key or body.idempotency_key)
    return _ok(reservation.as_dict(), 201)


@router.get("/reservations/{reservation_id}", response_model=ReservationResponse, responses=credit_errors(400, 401, 403, 404, 503), summary="A reservation and its status")
async def get_reservation(request: Request, reservation_id: Annotated[str, Path(max_length=64)],
                          ctx: Reader) -> ExactJSONResponse:
    ledger = ledger_of(request)
    r = await _run(ledger.reservation, ctx.project_id, reservation_id)
    _tenant_allowed(ctx, r.tenant_id)
    return _ok(r.as_dict())


@router.post("/reservations/{reservation_id}/confirm", response_model=TransactionResponse, responses=credit_errors(400, 401, 403, 404, 409, 503), summary="Charge the actual usage; the rest of the hold is released")
async def confirm(request: Request, reservation_id: Annotated[str, Path(max_length=64)], body: ConfirmIn,
                  ctx: Spender, idempotency_key: IdemKey = None) -> ExactJSONResponse:
    ledger = ledger_of(request)
    await _own_reservation(ledger, ctx, reservation_id)
    amount = None if body.amount is None else check_amount(body.amount, allow_zero=True)
    lines = [u.line() for u in body.usage]
    txn = await _run(ledger.confirm, ctx.project_id, reservation_id, amount=amount, lines=lines, note=body.note,
                     idempotency_key=idempotency_key or body.idempotency_key)
    return _ok(txn.as_dict())


@router.post("/reservations/{reservation_id}/release", response_model=ReservationResponse, responses=credit_errors(400, 401, 403, 404, 409, 503), summary="Give the hold back without charging")
async def release(request: Request, reservation_id: Annotated[str, Path(max_length=64)], ctx: Spender,
                  body: ReleaseIn | None = None, idempotency_key: IdemKey = None) -> ExactJSONResponse:
    ledger = ledger_of(request)
    await _own_reservation(ledger, ctx, reservation_id)
    key = idempotency_key or (body.idempotency_key if body else None)
    r = await _run(ledger.release, ctx.project_id, reservation_id, idempotency_key=key)
    return _ok(r.as_dict())


# -- usage and transactions --------------------------------------------------------------------------


@router.post("/usage", response_model=TransactionResponse, responses=credit_errors(400, 401, 403, 409, 503), status_code=201, summary="Record usage without a reservation (customer: charged; system: not)")
async def record_usage(request: Request, body: RecordIn, ctx: Spender, idempotency_key: IdemKey = None) -> ExactJSONResponse:
    ledger = ledger_of(request)
    _tenant_allowed(ctx, body.tenant_id)
    lines = [u.line() for u in body.usage]
    txn = await _run(ledger.record_usage, ctx.project_id, body.tenant_id, lines, context=body.context,
                     transaction_id=body.transaction_id, note=body.note, idempotency_key=idempotency_key or body.idempotency_key)
    return _ok(txn.as_dict(), 201)


@router.get("/transactions/{transaction_id}", response_model=TransactionResponse, responses=credit_errors(400, 401, 403, 404, 503), summary="A transaction: the amount charged and its usage lines")
async def get_transaction(request: Request, transaction_id: Annotated[str, Path(max_length=64)],
                          ctx: Reader) -> ExactJSONResponse:
    ledger = ledger_of(request)
    txn = await _run(ledger.transaction, ctx.project_id, transaction_id)
    if txn is None:
        raise ApiError(404, f"no transaction {transaction_id!r} with usage in this project")
    _tenant_allowed(ctx, txn.tenant_id)
    return _ok(txn.as_dict())


@router.get("/entries", response_model=EntriesResponse, responses=credit_errors(400, 401, 403, 503), summary="The ledger: every movement, oldest first (page with after=<last seq>)")
async def entries(
    request: Request, ctx: Reader,
    tenant_id: Annotated[str | None, Query(max_length=256)] = None,
    kind: Annotated[list[str] | None, Query()] = None,
    since: str | None = None, until: str | None = None,
    after: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> ExactJSONResponse:
    ledger = ledger_of(request)
    if ctx.tenant_id is not None:
        if tenant_id not in (None, ctx.tenant_id):
            _tenant_allowed(ctx, tenant_id or "")
        tenant_id = ctx.tenant_id
    kinds = [k for item in (kind or []) for k in item.split(",") if k]
    bad = [k for k in kinds if k not in ENTRY_KINDS]
    if bad:
        raise BadRequest(f"unknown kind(s) {bad}; known: {', '.join(ENTRY_KINDS)}")
    rows = await _run(ledger.entries, ctx.project_id, tenant_id=tenant_id, kinds=kinds,
                      since=_seconds(since, "since"), until=_seconds(until, "until"), after_seq=after,
                      limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return _ok({"entries": [e.as_dict() for e in rows], "next_after": rows[-1].seq if more and rows else None})


@router.get("/usage", response_model=UsageReportResponse, responses=credit_errors(400, 401, 403, 503), summary="Usage grouped by model, context, tenant or day, over a time range")
async def usage(
    request: Request, ctx: Reader,
    group_by: Literal["model", "context", "tenant", "day"] = "model",
    tenant_id: Annotated[str | None, Query(max_length=256)] = None,
    model: Annotated[str | None, Query(max_length=200)] = None,
    context: Literal["customer", "system"] | None = None,
    since: str | None = None, until: str | None = None,
) -> ExactJSONResponse:
    ledger = ledger_of(request)
    if ctx.tenant_id is not None:
        if tenant_id not in (None, ctx.tenant_id):
            _tenant_allowed(ctx, tenant_id or "")
        tenant_id = ctx.tenant_id
    groups = await _run(ledger.usage, ctx.project_id, group_by=group_by, tenant_id=tenant_id, model=model,
                        context=context, since=_seconds(since, "since"), until=_seconds(until, "until"))
    total = {
        "requests": sum(g.requests for g in groups),
        "cost": sum((g.cost for g in groups), Decimal(0)),
        "input_tokens": sum(g.input_tokens for g in groups),
        "output_tokens": sum(g.output_tokens for g in groups),
    }
    return _ok({"group_by": group_by, "groups": [g.as_dict() for g in groups], "total": total})


@router.get("/verify", response_model=VerifyResponse, responses=credit_errors(401, 403, 503), summary="Check that every balance equals the sum of its ledger movements (admin)")
async def verify(request: Request, ctx: Admin) -> ExactJSONResponse:
    ledger = ledger_of(request)
    problems = await _run(ledger.verify, ctx.project_id)
    return _ok({"ok": not problems, "problems": problems})
