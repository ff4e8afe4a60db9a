"""The multi-tenant cost-tracking cookbook's workload, written for the published ``netra-sdk`` (1.2.2).

It is the code a team wrote by following Netra's cookbook (MeetingMind: Apex Legal / Stratex Consulting /
TechStart Inc): ``Netra.init`` with the OpenAI instrumentation, tenant / session / user set per request,
``Netra.start_span("meeting-summarization")`` around the OpenAI call, ``set_usage`` with
``UsageModel(usage_type="chat", units_used=total_tokens, cost_in_usd=...)`` priced from the cookbook's
own price list, a ``TOOL`` span, an event on slow calls. It must run unchanged with either SDK (the
published ``netra-sdk`` or ours, both ``import netra``); the tests run it with both.

Environment: ``NETRA_OTLP_ENDPOINT``, ``NETRA_API_KEY`` (the Netra server), ``OPENAI_BASE_URL`` and
``OPENAI_API_KEY`` (the OpenAI endpoint), ``COMPAT_PREFIX`` (prefixed to tenant, session and user ids,
so two runs do not mix), ``COMPAT_OUT`` (where to write what was recorded, as JSON).
"""

import json
import os

from openai import OpenAI

from netra import Netra, SpanType, UsageModel
from netra.instrumentation.instruments import InstrumentSet

PREFIX = os.environ.get("COMPAT_PREFIX", "")

# The cookbook's tiers and its price list (USD per 1M tokens)
TIERS = {
    "enterprise": {"model": "gpt-4o", "max_tokens": 600, "sla_ms": 2000},
    "professional": {"model": "gpt-4o-mini", "max_tokens": 400, "sla_ms": 3000},
    "starter": {"model": "gpt-4o-mini", "max_tokens": 200, "sla_ms": None},
}
PRICING = {"gpt-4o": {"input": 2.50, "output": 10.00}, "gpt-4o-mini": {"input": 0.15, "output": 0.60}}
TENANTS = {"apex-legal": "enterprise", "stratex-consulting": "professional", "techstart-inc": "starter"}

MEETINGS = [
    # (tenant, session, user, title, transcript)
    ("apex-legal", "s1", "maria", "Merger agreement review",
     "Maria: The indemnification clause caps liability at the purchase price.\nDavid: The client rejected it."),
    ("apex-legal", "s1", "maria", "Deposition preparation",
     "Maria: The witness timeline has a gap between March and May.\nElena: We close it before Friday."),
    ("apex-legal", "s2", "david", "Settlement strategy",
     "David: Settlement authority is capped at two million.\nJames: The expert report comes first."),
    ("apex-legal", "s3", "elena", "Discovery schedule",
     "Elena: Opposing counsel asked to extend discovery by thirty days.\nPriya: Object past two weeks."),
    ("stratex-consulting", "s1", "lucas", "Market entry analysis",
     "Lucas: Three suppliers account for eighty percent of spend.\nAisha: Duplicated approvals slow us."),
    ("stratex-consulting", "s2", "aisha", "Pricing strategy workshop",
     "Aisha: We are ten percent above the median competitor.\nTom: Sales resists the incentive model."),
    ("stratex-consulting", "s2", "aisha", "Due diligence kickoff",
     "Ravi: The data room is missing audited financials.\nSofia: The partner wants a summary by Friday."),
    ("techstart-inc", "s1", "jordan", "Sprint planning",
     "Jordan: Onboarding drops a third of new users at payment.\nSam: Cut the export feature."),
    ("techstart-inc", "s2", "sam", "Product launch checklist",
     "Sam: We ship if the billing bug is fixed by Wednesday.\nAlex: Marketing reviews the post Monday."),
]


def calculate_cost(model: str, prompt_tokens: int, completion_tokens: int) -> float:
    price = PRICING[model]
    return (prompt_tokens * price["input"] + completion_tokens * price["output"]) / 1_000_000


def main() -> None:
    Netra.init(app_name="meetingmind", instruments={InstrumentSet.OPENAI}, disable_batch=True)
    client = OpenAI()
    recorded = []
    for tenant, session, user, title, transcript in MEETINGS:
        tier = TIERS[TENANTS[tenant]]
        Netra.set_tenant_id(PREFIX + tenant)
        Netra.set_session_id(f"{PREFIX}{tenant}-{session}")
        Netra.set_user_id(PREFIX + user)
        with Netra.start_span("meeting-summarization") as span:
            span.set_attribute("tier", TENANTS[tenant])
            response = client.chat.completions.create(
                model=tier["model"],
                messages=[
                    {"role": "system", "content": "Summarize the meeting: summary, key decisions, action items."},
                    {"role": "user", "content": f"Meeting: {title}\n\nTranscript:\n{transcript}"},
                ],
                max_tokens=tier["max_tokens"],
                temperature=0.2,
            )
            usage = response.usage
            cost = calculate_cost(tier["model"], usage.prompt_tokens, usage.completion_tokens)
            span.set_usage(
                [UsageModel(model=tier["model"], usage_type="chat", units_used=usage.total_tokens, cost_in_usd=cost)]
            )
            with Netra.start_span("extract-action-items", as_type=SpanType.TOOL) as tool:
                tool.set_attribute("items", "3")
            span.set_success()
        details = usage.prompt_tokens_details
        recorded.append({
            "tenant_id": PREFIX + tenant,
            "session_id": f"{PREFIX}{tenant}-{session}",
            "user_id": PREFIX + user,
            "model": tier["model"],
            "response_model": response.model,
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "cached_tokens": (details.cached_tokens or 0) if details else 0,
            "cost_in_usd": cost,
        })
    Netra.shutdown()
    with open(os.environ["COMPAT_OUT"], "w") as f:
        json.dump(recorded, f)


if __name__ == "__main__":
    main()
