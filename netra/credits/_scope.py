"""``with Netra.credits.reservation(...) as r:`` — reserve, run the block, confirm with its usage.

Inside the block the request context carries the tenant, ``netra.credits.reservation_id`` and
``netra.credits.transaction_id``, so every span started there (the OpenAI instrumentation's too)
carries the transaction id. A span processor on Netra's tracer provider collects the usage of those
spans as they end (model, tokens and the span's own cost, so the ledger, the trace and the usage
report show the same amount), skipping a span whose usage a descendant covers (the billing rule).
At the end of the block the reservation is confirmed with that usage (plus any ``r.add_usage``), or
released when there was none. A confirmation refused because the hold expired or was released falls
back to recording the usage on the same transaction, so a call that ran is always charged.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from contextvars import Token
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from netra import semconv
from netra._context import REQUEST_CONTEXT, AttributeValue, _with
from netra.credits.errors import ReservationExpired, ReservationReleased
from netra.credits.models import Reservation, Transaction, Usage

if TYPE_CHECKING:
    from netra.credits.client import AsyncCreditsClient, CreditsClient

__all__ = ["RESERVATION_ID", "TRANSACTION_ID", "AsyncReservationScope", "CreditsSpanProcessor", "ReservationScope",
           "usage_from_span"]

logger = logging.getLogger("netra")

RESERVATION_ID = "netra.credits.reservation_id"
TRANSACTION_ID = "netra.credits.transaction_id"

_lock = threading.Lock()
_active: dict[str, _ScopeBase] = {}


def _int(v: Any) -> int:
    return int(v) if isinstance(v, int | float) and not isinstance(v, bool) and v >= 0 else 0


def _cost(v: Any) -> Decimal | None:
    if v is None or isinstance(v, bool):
        return None
    try:
        d = Decimal(str(v))  # as the server reads a span's cost
    except (InvalidOperation, ValueError):
        return None
    return d if d.is_finite() and d >= 0 else None


def usage_from_span(span: ReadableSpan) -> list[Usage]:
    """The usage a finished span recorded (measured GenAI attributes, else ``netra.usage``)."""
    a: Mapping[str, Any] = span.attributes or {}
    ctx = span.context
    trace_id, span_id = (f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}") if ctx else ("", "")
    measured = (semconv.COST, semconv.GEN_AI_USAGE_INPUT_TOKENS, semconv.GEN_AI_USAGE_OUTPUT_TOKENS)
    if any(k in a for k in measured):
        model = a.get(semconv.GEN_AI_RESPONSE_MODEL) or a.get(semconv.GEN_AI_REQUEST_MODEL) or ""
        cost = _cost(a.get(semconv.COST))
        return [Usage(
            model=str(model), provider=str(a.get(semconv.GEN_AI_PROVIDER_NAME) or "openai"),
            input_tokens=_int(a.get(semconv.GEN_AI_USAGE_INPUT_TOKENS)),
            output_tokens=_int(a.get(semconv.GEN_AI_USAGE_OUTPUT_TOKENS)),
            cached_tokens=_int(a.get(semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS)),
            reasoning_tokens=_int(a.get(semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS)),
            cost=cost, cost_source=str(a.get(semconv.COST_SOURCE) or "") or None if cost is not None else None,
            trace_id=trace_id, span_id=span_id,
        )]
    raw = a.get(semconv.USAGE)
    if not isinstance(raw, str):
        return []
    try:
        items = json.loads(raw)
    except ValueError:
        return []
    out = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict) or not item.get("model"):
            continue
        cost = _cost(item.get("cost_in_usd"))
        out.append(Usage(model=str(item["model"]), input_tokens=_int(item.get("input_tokens")),
                         output_tokens=_int(item.get("output_tokens")), cached_tokens=_int(item.get("cached_tokens")),
                         cost=cost, cost_source="user" if cost is not None else None, trace_id=trace_id,
                         span_id=span_id))
    return out


class CreditsSpanProcessor(SpanProcessor):
    """Hands the usage of spans that end inside a reservation block to that block."""

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        try:
            attrs = span.attributes
            rid = attrs.get(RESERVATION_ID) if attrs else None
            if not rid or not _active:
                return
            scope = _active.get(str(rid))
            if scope is None or (attrs and attrs.get(semconv.USAGE_COVERED)):
                return
            for line in usage_from_span(span):
                scope.add_usage(line)
        except Exception:  # never raise into the code that ended the span
            logger.debug("Netra: collecting credit usage failed", exc_info=True)


def ensure_processor() -> bool:
    """Add the collecting processor to Netra's tracer provider once; False when Netra is not initialised."""
    from netra._netra import _state

    provider = _state.provider
    if provider is None or not hasattr(provider, "add_span_processor"):
        return False
    with _lock:
        if getattr(provider, "_netra_credits_processor", None) is None:
            processor = CreditsSpanProcessor()
            provider.add_span_processor(processor)
            provider._netra_credits_processor = processor
    return True


class _ScopeBase:
    def __init__(self, tenant_id: str, args: dict[str, Any]) -> None:
        self.tenant_id = tenant_id
        self._args = args
        self.reservation: Reservation | None = None
        #: The transaction after the block (None until then, or when the hold was released).
        self.transaction: Transaction | None = None
        self._lines: list[Usage] = []
        self._amount: Decimal | int | str | None = None
        self._lines_lock = threading.Lock()
        self._token: Token[dict[str, AttributeValue] | None] | None = None

    @property
    def id(self) -> str:
        if self.reservation is None:
            raise RuntimeError("the reservation is made when the `with` block starts")
        return self.reservation.id

    @property
    def transaction_id(self) -> str:
        if self.reservation is None:
            raise RuntimeError("the reservation is made when the `with` block starts")
        return self.reservation.transaction_id

    @property
    def usage(self) -> list[Usage]:
        """The usage collected so far (spans that ended in the block, and :meth:`add_usage`)."""
        with self._lines_lock:
            return list(self._lines)

    def add_usage(self, usage: Usage) -> None:
        """Usage to confirm besides what the instrumentation records (a call it does not trace)."""
        with self._lines_lock:
            self._lines.append(usage)

    def set_amount(self, amount: Decimal | int | str) -> None:
        """Confirm this amount instead of the collected usage."""
        self._amount = amount

    def _begin(self, reservation: Reservation) -> None:
        self.reservation = reservation
        ensure_processor()
        with _lock:
            _active[reservation.id] = self
        self._token = REQUEST_CONTEXT.set(_with(REQUEST_CONTEXT.get(), {
            semconv.TENANT_ID: self.tenant_id, RESERVATION_ID: reservation.id,
            TRANSACTION_ID: reservation.transaction_id,
        }))

    def _end(self) -> tuple[str, Any]:
        token, self._token = self._token, None
        if token is not None:
            try:
                REQUEST_CONTEXT.reset(token)
            except ValueError:  # exited in another context (a generator, a task): leave it
                pass
        with _lock:
            _active.pop(self.id, None)
        if self._amount is not None:
            return "amount", self._amount
        lines = self.usage
        return ("usage", lines) if lines else ("release", None)


class ReservationScope(_ScopeBase):
    def __init__(self, client: CreditsClient, tenant_id: str, args: dict[str, Any]) -> None:
        super().__init__(tenant_id, args)
        self._client = client

    def __enter__(self) -> ReservationScope:
        if self.reservation is not None:
            raise RuntimeError("this reservation block was used already; call reservation(...) again")
        self._begin(self._client.reserve(self.tenant_id, **self._args))
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        what, value = self._end()
        rid, c = self.id, self._client
        try:
            if what == "release":
                c.release(rid, idempotency_key=f"{rid}:release")
                return
            try:
                if what == "amount":
                    self.transaction = c.confirm(rid, amount=value, idempotency_key=f"{rid}:confirm")
                else:
                    self.transaction = c.confirm(rid, usage=value, idempotency_key=f"{rid}:confirm")
            except (ReservationExpired, ReservationReleased):
                usage = value if what == "usage" else [Usage(model="(amount)", cost=str(value))]
                self.transaction = c.record_usage(self.tenant_id, usage, transaction_id=self.transaction_id,
                                                  idempotency_key=f"{rid}:usage")
        except Exception:
            if exc is None:
                raise
            logger.exception("Netra: settling credit reservation %s failed (the block raised too)", rid)


class AsyncReservationScope(_ScopeBase):
    def __init__(self, client: AsyncCreditsClient, tenant_id: str, args: dict[str, Any]) -> None:
        super().__init__(tenant_id, args)
        self._client = client

    async def __aenter__(self) -> AsyncReservationScope:
        if self.reservation is not None:
            raise RuntimeError("this reservation block was used already; call reservation(...) again")
        self._begin(await self._client.reserve(self.tenant_id, **self._args))
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        what, value = self._end()
        rid, c = self.id, self._client
        try:
            if what == "release":
                await c.release(rid, idempotency_key=f"{rid}:release")
                return
            try:
                if what == "amount":
                    self.transaction = await c.confirm(rid, amount=value, idempotency_key=f"{rid}:confirm")
                else:
                    self.transaction = await c.confirm(rid, usage=value, idempotency_key=f"{rid}:confirm")
            except (ReservationExpired, ReservationReleased):
                usage = value if what == "usage" else [Usage(model="(amount)", cost=str(value))]
                self.transaction = await c.record_usage(self.tenant_id, usage, transaction_id=self.transaction_id,
                                                        idempotency_key=f"{rid}:usage")
        except Exception:
            if exc is None:
                raise
            logger.exception("Netra: settling credit reservation %s failed (the block raised too)", rid)
