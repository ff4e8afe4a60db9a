"""MeetingMind on prepaid plans: every summarization reserves credit first, and is confirmed with the
cost the OpenAI instrumentation measured (:mod:`netra.credits`).

Each tenant's tier comes with a prepaid plan (:data:`PLANS`), renewed at the start of every
``netra demo`` run (a grant or an adjustment that brings the balance back to the plan, in the ledger
like any movement). The starter plan is small: TechStart Inc runs out during the run, and its later
calls are refused before they reach the model, with :class:`~netra.credits.InsufficientCredits`'s
message on the span (an error trace, like a rate-limited call) and in the report.

Starter calls run one at a time in arrival order (:class:`TurnGate`), so which calls the plan still
covers does not depend on thread timing: the same workload gives the same report.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from netra import Netra
from netra.credits import CreditsClient, InsufficientCredits

from .meetingmind import (
    SPAN_NAME,
    TENANTS,
    Admission,
    Clock,
    Meeting,
    MultiTenantMeetingSummarizer,
    SummaryResult,
    Tenant,
)

__all__ = ["CREDITS_EXHAUSTED_EVENT", "PLANS", "PlanStatus", "PrepaidMeetingSummarizer", "TurnGate", "renew_plans"]

#: Prepaid credit per tier and demo run (USD).
PLANS: Mapping[str, Decimal] = {
    "enterprise": Decimal("25.00"),
    "professional": Decimal("10.00"),
    "starter": Decimal("0.001"),
}
CREDITS_EXHAUSTED_EVENT = "credits-exhausted"


@dataclass(frozen=True, slots=True)
class PlanStatus:
    tenant_id: str
    plan: Decimal
    balance: Decimal


def renew_plans(credits: CreditsClient, tenants: Mapping[str, Tenant] = TENANTS,
                plans: Mapping[str, Decimal] = PLANS) -> dict[str, PlanStatus]:
    """Bring each tenant's balance back to its tier's plan (a grant, or an adjustment down)."""
    out = {}
    for tenant in tenants.values():
        plan = plans[tenant.tier.name]
        account = credits.get_account(tenant.id)
        delta = plan - account.balance
        note = f"{tenant.tier.name} plan renewal: balance set to {plan:f} USD"
        if delta > 0:
            credits.grant(tenant.id, delta, note=note)
        elif delta < 0:
            credits.adjust(tenant.id, delta, note=note)
        out[tenant.id] = PlanStatus(tenant.id, plan, plan)
    return out


class TurnGate:
    """Tickets in admission order; :meth:`turn` waits until every earlier ticket is done."""

    def __init__(self) -> None:
        self._next_ticket = 0
        self._serving = 0
        self._cond = threading.Condition()

    def ticket(self) -> int:
        with self._cond:
            t = self._next_ticket
            self._next_ticket += 1
            return t

    @contextmanager
    def turn(self, ticket: int) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: self._serving == ticket)
        try:
            yield
        finally:
            with self._cond:
                self._serving += 1
                self._cond.notify_all()


class PrepaidMeetingSummarizer(MultiTenantMeetingSummarizer):
    """:class:`MultiTenantMeetingSummarizer` with a credit reservation around each call."""

    def __init__(self, client: Any, credits: CreditsClient, tenants: Mapping[str, Tenant] = TENANTS,
                 clock: Clock | None = None, serial_tiers: tuple[str, ...] = ("starter",)) -> None:
        super().__init__(client, tenants, clock)
        self.credits = credits
        self.gates = {t.id: TurnGate() for t in self.tenants.values() if t.tier.name in serial_tiers}
        self._tickets: dict[str, int] = {}
        self._lock = threading.Lock()

    def admit(self, meeting: Meeting, arrival: float | None = None) -> Admission:
        admission = super().admit(meeting, arrival)
        gate = self.gates.get(meeting.tenant_id)
        if gate is not None and admission.rejection is None:
            with self._lock:
                self._tickets[meeting.id] = gate.ticket()
        return admission

    def estimate_input_tokens(self, meeting: Meeting) -> int:
        """A generous guess of the prompt's tokens (about 3 characters per token)."""
        tier = self.tenant(meeting.tenant_id).tier
        chars = sum(len(m["content"]) for m in self.build_messages(tier, meeting))
        return chars // 3 + 16

    def summarize(self, meeting: Meeting, admission: Admission | None = None) -> SummaryResult:
        if admission is None:
            admission = self.admit(meeting)
        if admission.rejection is not None:
            return super().summarize(meeting, admission)  # rate limited: recorded, not sent, no credit needed
        with self._lock:
            ticket = self._tickets.pop(meeting.id, None)
        gate = self.gates.get(meeting.tenant_id)
        with gate.turn(ticket) if gate is not None and ticket is not None else nullcontext():
            tier = self.tenant(meeting.tenant_id).tier
            try:
                with self.credits.reservation(meeting.tenant_id, model=tier.model,
                                              input_tokens=self.estimate_input_tokens(meeting),
                                              max_output_tokens=tier.max_output_tokens, ttl=120,
                                              note=meeting.id):
                    return super().summarize(meeting, admission)
            except InsufficientCredits as exc:
                return self._refused(meeting, admission, exc)

    def _refused(self, meeting: Meeting, admission: Admission, exc: InsufficientCredits) -> SummaryResult:
        tenant = self.tenant(meeting.tenant_id)
        Netra.set_tenant_id(tenant.id)
        Netra.set_session_id(meeting.session_id)
        Netra.set_user_id(meeting.user_id)
        result = SummaryResult(meeting.id, tenant.id, meeting.session_id, meeting.user_id, "no_credit",
                               sla_ms=tenant.tier.sla_p95_ms, queued_s=admission.wait, error=str(exc))
        with Netra.start_span(SPAN_NAME) as span:
            result.trace_id = span.trace_id
            span.set_attribute("meetingmind.meeting_id", meeting.id)
            span.set_attribute("meetingmind.tier", tenant.tier.name)
            span.add_event(CREDITS_EXHAUSTED_EVENT, {"tier": tenant.tier.name, "available_usd": str(exc.available),
                                                     "requested_usd": str(exc.requested)})
            span.set_error(f"refused: {exc}")
        return result
