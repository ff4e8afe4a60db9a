"""MeetingMind: the multi-tenant meeting summarizer of the cost-tracking cookbook.

Long because: one module on purpose (about 600 lines): the cookbook notebook is built from its
``# region notebook:`` blocks (``cookbooks/build_multi_tenant_notebook.py``), so the app a reader
sees is this file.

Three customers on three tiers (the cookbook's scenario):

==================  ============  =============  ================
tenant              tier          latency SLA    calls per minute
==================  ============  =============  ================
Apex Legal          enterprise    P95 < 2 s      60
Stratex Consulting  professional  P95 < 3 s      30
TechStart Inc       starter       best effort    10
==================  ============  =============  ================

:class:`MultiTenantMeetingSummarizer` sets the request context (tenant, session, user), enforces the
tier's calls-per-minute limit, builds the prompt from the tier's features, calls OpenAI inside
``Netra.start_span("meeting-summarization")``, records the call's usage and cost with ``set_usage`` and
checks the latency against the tier's SLA (an ``sla-breach`` event on the span).

**Rate limits** (:class:`SlidingWindowLimiter`): at most ``calls_per_minute`` calls start in any
60-second window. A call over the limit *waits* for the next free slot when that slot is within the
tier's ``max_queue_seconds`` (enterprise: 60 s, professional: 30 s), and is *rejected* otherwise
(starter tier: no queueing; the caller gets :class:`RateLimitExceeded` in the result and the span
records a ``rate-limited`` event). The limiter reads time from a :class:`Clock`: the real clock in the
notebook, a :class:`SimulatedClock` in ``netra demo`` so several hundred meetings spread over a
simulated stretch of the day run in seconds; the demo says so in its output.

The notebook shows the class inline (it is a cookbook); ``netra demo`` imports it from here.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal, Protocol

from netra import Netra, UsageModel
from netra.pricing import price_tokens

__all__ = [
    "SLA_BREACH_EVENT",
    "SPAN_NAME",
    "TENANTS",
    "TIERS",
    "Clock",
    "Meeting",
    "MultiTenantMeetingSummarizer",
    "RateLimitExceeded",
    "SimulatedClock",
    "SlidingWindowLimiter",
    "SummaryResult",
    "SystemClock",
    "Tenant",
    "TierConfig",
    "percentile",
    "sample_meetings",
]


# --------------------------------------------------------------------------------------------------
# Tiers and tenants


# region notebook:tiers
@dataclass(frozen=True, slots=True)
class TierConfig:
    """What a customer tier buys: model, summary features, latency SLA and rate limit."""

    name: str
    model: str
    features: tuple[str, ...]
    detail: Literal["concise", "standard", "detailed"]
    max_output_tokens: int
    sla_p95_ms: int | None  # None: best effort
    calls_per_minute: int
    max_queue_seconds: float  # 0: calls over the limit are rejected, not queued

    @property
    def sla_label(self) -> str:
        return "best effort" if self.sla_p95_ms is None else f"P95 < {self.sla_p95_ms / 1000:g} s"


@dataclass(frozen=True, slots=True)
class Tenant:
    id: str
    name: str
    tier: TierConfig


TIERS: Mapping[str, TierConfig] = {
    "enterprise": TierConfig(
        name="enterprise",
        model="gpt-4o",
        features=("executive summary", "key decisions", "action items with owners", "risks", "sentiment"),
        detail="standard",
        max_output_tokens=600,
        sla_p95_ms=2000,
        calls_per_minute=60,
        max_queue_seconds=60.0,
    ),
    "professional": TierConfig(
        name="professional",
        model="gpt-4o-mini",
        features=("summary", "key decisions", "action items"),
        detail="standard",
        max_output_tokens=400,
        sla_p95_ms=3000,
        calls_per_minute=30,
        max_queue_seconds=30.0,
    ),
    "starter": TierConfig(
        name="starter",
        model="gpt-4o-mini",
        features=("summary", "action items"),
        detail="concise",
        max_output_tokens=200,
        sla_p95_ms=None,
        calls_per_minute=10,
        max_queue_seconds=0.0,
    ),
}

TENANTS: Mapping[str, Tenant] = {
    "apex-legal": Tenant("apex-legal", "Apex Legal", TIERS["enterprise"]),
    "stratex-consulting": Tenant("stratex-consulting", "Stratex Consulting", TIERS["professional"]),
    "techstart-inc": Tenant("techstart-inc", "TechStart Inc", TIERS["starter"]),
}
# endregion


# --------------------------------------------------------------------------------------------------
# Clocks and the rate limiter


# region notebook:rate-limits
class Clock(Protocol):
    """Where the rate limiter gets time from (seconds, monotonic) and how a queued call waits."""

    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """Real time: queued calls really wait."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class RateLimitExceeded(Exception):
    """The tier's calls-per-minute limit is reached and the wait for a slot is longer than it queues."""

    def __init__(self, tenant_id: str, limit: int, retry_after: float) -> None:
        super().__init__(
            f"tenant {tenant_id!r} is over its limit of {limit} calls per minute; "
            f"retry in {retry_after:.1f} s (or move it to a tier with a higher limit)"
        )
        self.tenant_id = tenant_id
        self.limit = limit
        self.retry_after = retry_after


class SlidingWindowLimiter:
    """At most ``limit`` call starts in any ``window`` seconds, first come first served.

    :meth:`reserve` books the earliest start for a call arriving at ``now``: ``now`` itself when the
    window has room, else the moment the oldest call of the last ``limit`` leaves the window. A booking
    later than ``now + max_wait`` is refused with :class:`RateLimitExceeded` and takes no slot.
    Thread-safe.
    """

    def __init__(self, tenant_id: str, limit: int, window: float = 60.0, max_wait: float = 0.0) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1 call per window, got {limit}")
        self.tenant_id = tenant_id
        self.limit = limit
        self.window = window
        self.max_wait = max_wait
        self._starts: deque[float] = deque()
        self._lock = threading.Lock()

    def reserve(self, now: float) -> float:
        """The start time booked for a call arriving at ``now`` (``>= now``), or raise."""
        with self._lock:
            starts = self._starts
            start = max(now, starts[-1]) if starts else now
            if len(starts) >= self.limit:
                start = max(start, starts[-self.limit] + self.window)
            if start - now > self.max_wait + 1e-9:
                raise RateLimitExceeded(self.tenant_id, self.limit, start - now)
            starts.append(start)
            while len(starts) > self.limit:
                starts.popleft()
            return start


# endregion


class SimulatedClock:
    """Simulated time for the demo: ``now()`` is set by the caller, ``sleep`` only adds up the waits."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._lock = threading.Lock()
        self.slept = 0.0

    def now(self) -> float:
        return self._now

    def set(self, now: float) -> None:
        with self._lock:
            self._now = now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept += max(0.0, seconds)


# --------------------------------------------------------------------------------------------------
# Meetings and results


@dataclass(frozen=True, slots=True)
class Meeting:
    id: str
    tenant_id: str
    user_id: str
    session_id: str
    title: str
    transcript: str
    arrival_s: float = 0.0  # when it arrives, in seconds from the start of the workload


# region notebook:summarizer
SPAN_NAME = "meeting-summarization"
SLA_BREACH_EVENT = "sla-breach"
RATE_LIMITED_EVENT = "rate-limited"
QUEUED_EVENT = "rate-limit-queued"


@dataclass(slots=True)
class SummaryResult:
    """What one summarization did: usage, cost, latency, SLA and rate-limit outcome."""

    meeting_id: str
    tenant_id: str
    session_id: str
    user_id: str
    status: Literal["ok", "rate_limited", "error", "no_credit"]
    trace_id: str = ""
    model: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    cost_source: str = ""
    latency_ms: float = 0.0
    sla_ms: int | None = None
    sla_breached: bool = False
    queued_s: float = 0.0
    summary: str = ""
    error: str = ""

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(slots=True)
class Admission:
    """The limiter's answer for one meeting: when it may start, or why it may not."""

    arrival: float
    start: float | None
    rejection: RateLimitExceeded | None = None

    @property
    def wait(self) -> float:
        return 0.0 if self.start is None else max(0.0, self.start - self.arrival)


class MultiTenantMeetingSummarizer:
    """Summarizes meetings for many tenants; every call is attributed, priced and SLA-checked."""

    def __init__(
        self,
        client: Any,
        tenants: Mapping[str, Tenant] = TENANTS,
        clock: Clock | None = None,
    ) -> None:
        self.client = client  # an openai.OpenAI (or compatible) client
        self.tenants = dict(tenants)
        self.clock: Clock = clock or SystemClock()
        self.limiters = {
            t.id: SlidingWindowLimiter(t.id, t.tier.calls_per_minute, 60.0, t.tier.max_queue_seconds)
            for t in self.tenants.values()
        }

    def tenant(self, tenant_id: str) -> Tenant:
        try:
            return self.tenants[tenant_id]
        except KeyError:
            raise KeyError(f"unknown tenant {tenant_id!r}; known: {sorted(self.tenants)}") from None

    def build_messages(self, tier: TierConfig, meeting: Meeting) -> list[dict[str, str]]:
        """The prompt: the tier's features decide what the summary contains and how long it is."""
        features = ", ".join(tier.features)
        system = (
            "You are MeetingMind, an assistant that summarizes meeting transcripts for business teams. "
            f"Write a {tier.detail} summary of the meeting transcript with these sections: {features}. "
            "Use the participants' names. Do not invent facts that are not in the transcript."
        )
        user = f"Meeting: {meeting.title}\n\nTranscript:\n{meeting.transcript}"
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]

    def admit(self, meeting: Meeting, arrival: float | None = None) -> Admission:
        """Apply the tenant's rate limit to a meeting arriving at ``arrival`` (default: the clock's now)."""
        now = self.clock.now() if arrival is None else arrival
        limiter = self.limiters[self.tenant(meeting.tenant_id).id]
        try:
            return Admission(now, limiter.reserve(now))
        except RateLimitExceeded as exc:
            return Admission(now, None, exc)

    def summarize(self, meeting: Meeting, admission: Admission | None = None) -> SummaryResult:
        """Summarize one meeting (admitting it first unless ``admission`` is given)."""
        tenant = self.tenant(meeting.tenant_id)
        tier = tenant.tier
        if admission is None:
            admission = self.admit(meeting)
        if admission.wait > 0:
            self.clock.sleep(admission.wait)  # a queued call waits for its slot (simulated in the demo)

        # 1. request context: every span started below carries tenant, session and user
        Netra.set_tenant_id(tenant.id)
        Netra.set_session_id(meeting.session_id)
        Netra.set_user_id(meeting.user_id)
        result = SummaryResult(meeting.id, tenant.id, meeting.session_id, meeting.user_id, "ok",
                               sla_ms=tier.sla_p95_ms, queued_s=admission.wait)

        with Netra.start_span(SPAN_NAME) as span:
            started = time.perf_counter()
            result.trace_id = span.trace_id
            span.set_attribute("meetingmind.meeting_id", meeting.id)
            span.set_attribute("meetingmind.tier", tier.name)
            span.set_attribute("meetingmind.queue_wait_s", round(admission.wait, 3))

            # 2. the tier's rate limit: a rejected call is recorded, not sent (and costs nothing)
            if admission.rejection is not None:
                rejection = admission.rejection
                span.add_event(RATE_LIMITED_EVENT, {"tier": tier.name, "limit_per_minute": rejection.limit,
                                                    "retry_after_s": round(rejection.retry_after, 3)})
                span.set_error(str(rejection))
                result.status, result.error = "rate_limited", str(rejection)
                return result
            if admission.wait > 0:
                span.add_event(QUEUED_EVENT, {"wait_s": round(admission.wait, 3)})

            # 3. the OpenAI call (auto-traced as a child span with tokens and cost)
            response = self.client.chat.completions.create(
                model=tier.model,
                messages=self.build_messages(tier, meeting),
                max_tokens=tier.max_output_tokens,
                temperature=0.2,
            )
            result.latency_ms = (time.perf_counter() - started) * 1000.0

            # 4. usage and cost, priced from the price table (the same one the instrumentation uses)
            usage = response.usage
            details = usage.prompt_tokens_details
            cached = (details.cached_tokens or 0) if details else 0
            out_details = usage.completion_tokens_details
            reasoning = (out_details.reasoning_tokens or 0) if out_details else 0
            cost = price_tokens(response.model, provider="openai", input_tokens=usage.prompt_tokens,
                                output_tokens=usage.completion_tokens, cached_input_tokens=cached,
                                reasoning_tokens=reasoning)
            result.model = response.model
            result.input_tokens = usage.prompt_tokens
            result.output_tokens = usage.completion_tokens
            result.cached_tokens = cached
            result.cost_usd = cost.cost if cost.cost is not None else Decimal(0)
            result.cost_source = cost.source
            result.summary = response.choices[0].message.content or ""
            if cost.cost is not None:
                # this span's own record of the usage; the OpenAI child span carries the same usage, so
                # by the billing rule the tenant is charged once (the child's), never twice
                span.set_usage([UsageModel(model=response.model, usage_type="chat",
                                           units_used=usage.total_tokens, cost_in_usd=float(cost.cost),
                                           input_tokens=usage.prompt_tokens,
                                           output_tokens=usage.completion_tokens, cached_tokens=cached)])

            # 5. the tier's latency SLA: every slow call is an sla-breach event on the span
            span.set_attribute("meetingmind.latency_ms", round(result.latency_ms, 1))
            if tier.sla_p95_ms is not None and result.latency_ms > tier.sla_p95_ms:
                result.sla_breached = True
                span.add_event(SLA_BREACH_EVENT, {"tenant_id": tenant.id, "tier": tier.name,
                                                  "latency_ms": round(result.latency_ms, 1),
                                                  "threshold_ms": tier.sla_p95_ms})
            span.set_success()
        return result
# endregion


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation between ranks (numpy's default)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    lo = int(rank)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (rank - lo)


# --------------------------------------------------------------------------------------------------
# Sample meetings

_PEOPLE: Mapping[str, tuple[str, ...]] = {
    "apex-legal": ("Maria Chen", "David Okafor", "Elena Rossi", "James Whitfield", "Priya Natarajan"),
    "stratex-consulting": ("Lucas Meyer", "Aisha Bello", "Tom Harding", "Sofia Lindqvist", "Ravi Kapoor"),
    "techstart-inc": ("Jordan Lee", "Sam Rivera", "Alex Kim", "Taylor Brooks"),
}
_TOPICS: Mapping[str, tuple[str, ...]] = {
    "apex-legal": (
        "Merger agreement review", "Deposition preparation", "Discovery schedule", "Client intake: Harlow v. Dyne",
        "Settlement strategy", "Regulatory filing deadline", "Contract dispute with Norland Freight",
    ),
    "stratex-consulting": (
        "Market entry analysis", "Client steering committee", "Supply chain diagnostic",
        "Pricing strategy workshop", "Operating model redesign", "Due diligence kickoff",
    ),
    "techstart-inc": (
        "Sprint planning", "Product launch checklist", "Investor update", "Hiring sync", "Bug triage",
    ),
}
_LINES: Mapping[str, tuple[str, ...]] = {
    "apex-legal": (
        "The indemnification clause still caps liability at the purchase price, which the client rejected.",
        "Opposing counsel asked to extend discovery by thirty days; we should object to anything past two weeks.",
        "The witness timeline has a gap between March and May that we need to close before the deposition.",
        "Our privilege log is missing the board minutes from last quarter.",
        "The regulator expects the filing by the fifteenth, and the exhibits are not finalized.",
        "Settlement authority from the client is capped at two million.",
        "We need the expert report on damages before we can respond to the motion.",
        "The counterparty's redline removed the non-solicitation covenant entirely.",
        "Billing for this matter is already above the estimate, so the partner wants a budget review.",
        "The court moved the hearing to next Thursday morning.",
    ),
    "stratex-consulting": (
        "The client's procurement data shows three suppliers account for eighty percent of spend.",
        "Interviews with regional managers point to duplicated approval steps.",
        "The steering committee wants a recommendation on the Nordic market by month end.",
        "Our pricing benchmark puts the client ten percent above the median competitor.",
        "The workshop surfaced resistance from the sales organization to the new incentive model.",
        "We should split the workstream so the diagnostic and the roadmap run in parallel.",
        "The data room is missing audited financials for the last two years.",
        "The partner asked for a one-page summary for the chief executive before Friday.",
        "Staffing is tight: two consultants roll off the engagement next week.",
    ),
    "techstart-inc": (
        "The onboarding flow drops a third of new users at the payment step.",
        "We can ship the launch if the billing bug is fixed by Wednesday.",
        "The investors want monthly recurring revenue and churn in the update.",
        "We have two offers out for backend engineers.",
        "The dashboard is slow for customers with more than a thousand projects.",
        "Marketing wants the launch post reviewed by Monday.",
        "Let's cut the export feature from this sprint.",
    ),
}
_USERS: Mapping[str, tuple[str, ...]] = {
    "apex-legal": ("maria.chen@apexlegal.example", "d.okafor@apexlegal.example", "e.rossi@apexlegal.example"),
    "stratex-consulting": ("lucas@stratex.example", "aisha@stratex.example", "ravi@stratex.example"),
    "techstart-inc": ("jordan@techstart.example", "sam@techstart.example"),
}


def _transcript(rng: random.Random, tenant_id: str, lines: int) -> str:
    people = rng.sample(_PEOPLE[tenant_id], k=min(len(_PEOPLE[tenant_id]), rng.randint(2, 4)))
    pool = _LINES[tenant_id]
    out = []
    for _ in range(lines):
        speaker = rng.choice(people).split()[0]
        out.append(f"{speaker}: {rng.choice(pool)}")
    return "\n".join(out)


def sample_meetings(
    counts: Mapping[str, int],
    *,
    seed: int = 7,
    duration_s: float = 0.0,
    bursty: Mapping[str, int] | None = None,
) -> list[Meeting]:
    """Deterministic sample meetings, ``counts[tenant_id]`` per tenant, sorted by arrival.

    Users work in sessions of one to four meetings. With ``duration_s`` > 0, arrivals spread over that
    many (simulated) seconds; a tenant in ``bursty`` sends its meetings in bursts of ``bursty[tenant]``
    within a few seconds of the start of a minute, which is what trips a calls-per-minute limit.
    """
    rng = random.Random(seed)
    bursts = dict(bursty or {})
    meetings: list[Meeting] = []
    for tenant_id, count in counts.items():
        if tenant_id not in _LINES:
            raise KeyError(f"no sample meetings for tenant {tenant_id!r}; known: {sorted(_LINES)}")
        users = _USERS[tenant_id]
        session_left = 0
        session_id = user_id = ""
        session_no = 0
        burst_at = 0.0
        for i in range(count):
            if session_left == 0:
                user_id = rng.choice(users)
                session_no += 1
                session_id = f"{tenant_id}-session-{session_no:04d}"
                session_left = rng.randint(1, 4)
            session_left -= 1
            if duration_s <= 0:
                arrival = 0.0
            elif tenant_id in bursts:
                if i % max(1, bursts[tenant_id]) == 0:
                    burst_at = float(int(rng.uniform(0, duration_s) // 60) * 60)
                arrival = burst_at + rng.uniform(0, 5)
            else:
                arrival = rng.uniform(0, duration_s)
            meetings.append(
                Meeting(
                    id=f"{tenant_id}-mtg-{i + 1:04d}",
                    tenant_id=tenant_id,
                    user_id=user_id,
                    session_id=session_id,
                    title=rng.choice(_TOPICS[tenant_id]),
                    transcript=_transcript(rng, tenant_id, rng.randint(6, 22)),
                    arrival_s=round(arrival, 3),
                )
            )
    meetings.sort(key=lambda m: (m.arrival_s, m.id))
    return meetings


@dataclass(slots=True)
class TenantTotals:
    """Per-tenant totals computed from the calls made (what the server's numbers are checked against)."""

    tenant_id: str
    requests: int = 0
    rate_limited: int = 0
    no_credit: int = 0  # calls refused because the tenant's prepaid credit ran out
    errors: int = 0
    sessions: set[str] = field(default_factory=set)
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    latencies_ms: list[float] = field(default_factory=list)
    sla_breaches: int = 0
    queued: int = 0

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


def totals_by_tenant(results: Iterable[SummaryResult], tenant_ids: Iterable[str] = TENANTS) -> dict[str, TenantTotals]:
    """Add up results per tenant: requests, tokens and cost of the served calls; sessions of all calls."""
    out = {t: TenantTotals(t) for t in tenant_ids}
    for r in results:
        t = out.setdefault(r.tenant_id, TenantTotals(r.tenant_id))
        t.sessions.add(r.session_id)  # a session counts even if all its calls were rejected (as the server counts)
        if r.queued_s > 0:
            t.queued += 1
        if r.status == "no_credit":
            t.no_credit += 1
            continue
        if r.status == "rate_limited":
            t.rate_limited += 1
            continue
        if r.status == "error":
            t.errors += 1
            continue
        t.requests += 1
        t.input_tokens += r.input_tokens
        t.output_tokens += r.output_tokens
        t.cost_usd += r.cost_usd
        t.latencies_ms.append(r.latency_ms)
        t.sla_breaches += int(r.sla_breached)
    return out
