"""The Python examples of Netra's "Usage & Traces" docs, as a user copies them, run one after the other.

Reconstructed from the published ``netra-sdk`` 1.2.2 (its README and the docstrings of ``Netra.usage``:
``get_session_usage``, ``get_tenant_usage``, ``list_traces``, ``iter_traces``, ``list_spans_by_trace_id``,
``iter_spans_by_trace_id``, with the arguments the docs show) and ``docs/design.md``. Each example is a
function; ``main`` runs them all and writes what each returned (``model_dump()`` of every result: the
docs' code reads the results as those models) to ``COMPAT_OUT`` as JSON. It runs unchanged with either
SDK; an exception anywhere (a result that fails to parse, a missing field) fails the run.

Environment: ``NETRA_OTLP_ENDPOINT``, ``NETRA_API_KEY``, ``COMPAT_PREFIX`` (the workload's id prefix),
``COMPAT_START`` / ``COMPAT_END`` (the window, ISO 8601 UTC), ``COMPAT_OUT``.
"""

import json
import os
from typing import Any

from netra import Netra

PREFIX = os.environ.get("COMPAT_PREFIX", "")
START = os.environ["COMPAT_START"]
END = os.environ["COMPAT_END"]
TENANTS = [PREFIX + t for t in ("apex-legal", "stratex-consulting", "techstart-inc")]


def dump(obj: Any) -> Any:
    return None if obj is None else json.loads(obj.model_dump_json())


def example_session_usage() -> Any:
    # "Get usage for a session"
    usage = Netra.usage.get_session_usage(
        session_id=f"{PREFIX}apex-legal-s1",
        start_time=START,
        end_time=END,
    )
    print(f"Session {usage.session_id}: {usage.token_count} tokens, {usage.request_count} requests, "
          f"${usage.total_cost:.6f}")
    return dump(usage)


def example_tenant_usage() -> Any:
    # "Get usage for a tenant" (the cookbook's per-customer report, with a 20% margin on cost)
    out = {}
    for tenant_id in TENANTS:
        usage = Netra.usage.get_tenant_usage(tenant_id=tenant_id, start_time=START, end_time=END)
        if usage:
            print(f"{usage.tenant_id}: {usage.request_count} requests, {usage.session_count} sessions, "
                  f"{usage.token_count} tokens, ${usage.total_cost:.6f} (billed ${usage.total_cost * 1.2:.6f})")
        else:
            print("No data returned (might be due to ingestion latency)")
        out[tenant_id] = dump(usage)
    return out


def example_list_traces() -> Any:
    # "List traces" with a filter and a page size
    page = Netra.usage.list_traces(start_time=START, end_time=END, tenant_id=TENANTS[0], limit=2)
    for trace in page.traces:
        print(trace.id, trace.name, trace.kind, trace.latency_ms, trace.total_tokens, trace.total_cost)
    return dump(page)


def _pages(direction: str) -> list[list[str]]:
    # "Paginate with cursors": pass next_cursor back until has_next_page is false
    pages = []
    cursor = None
    while True:
        page = Netra.usage.list_traces(
            start_time=START, end_time=END, limit=4, cursor=cursor, direction=direction,
        )
        pages.append([t.id for t in page.traces if (t.tenant_id or "").startswith(PREFIX)])
        if not page.has_next_page:
            break
        cursor = page.next_cursor
    return pages


def example_paginate_traces() -> Any:
    return {"down": _pages("down"), "up": _pages("up")}


def example_iter_traces() -> Any:
    # "Iterate over every trace" (the iterator follows the cursors itself)
    down = [t.id for t in Netra.usage.iter_traces(start_time=START, end_time=END, limit=3)
            if (t.tenant_id or "").startswith(PREFIX)]
    up = [t.id for t in Netra.usage.iter_traces(start_time=START, end_time=END, limit=3, direction="up")
          if (t.tenant_id or "").startswith(PREFIX)]
    by_session = [t.id for t in Netra.usage.iter_traces(
        start_time=START, end_time=END, session_id=f"{PREFIX}stratex-consulting-s2")]
    return {"down": down, "up": up, "by_session": by_session}


def example_sorted_traces() -> Any:
    # "Sort traces": the most expensive first
    page = Netra.usage.list_traces(
        start_time=START, end_time=END, tenant_id=TENANTS[0], sort_field="total_cost", sort_order="desc", limit=10,
    )
    by_latency = Netra.usage.list_traces(
        start_time=START, end_time=END, tenant_id=TENANTS[0], sort_field="latency_ms", sort_order="asc", limit=10,
    )
    return {"cost": [(t.id, t.total_cost) for t in page.traces], "latency": [t.latency_ms for t in by_latency.traces]}


def example_spans() -> Any:
    # "List the spans of a trace", "Iterate spans", "Filter spans by name"
    out = {}
    for trace in Netra.usage.iter_traces(start_time=START, end_time=END, tenant_id=TENANTS[1]):
        page = Netra.usage.list_spans_by_trace_id(trace_id=trace.id, limit=2)
        listed = [dump(s) for s in page.spans]
        spans = [dump(s) for s in Netra.usage.iter_spans_by_trace_id(trace_id=trace.id, limit=2)]
        up = [s.id for s in Netra.usage.iter_spans_by_trace_id(trace_id=trace.id, limit=2, direction="up")]
        llm = [s.id for s in Netra.usage.iter_spans_by_trace_id(trace_id=trace.id, span_name="openai.chat")]
        tools = [s.id for s in Netra.usage.iter_spans_by_trace_id(trace_id=trace.id, span_name="TOOL")]
        for span in spans:
            attributes = json.loads(span["attributes"]) if span["attributes"] else {}
            print(span["name"], span["kind"], int(span["end_time_ms"]) - int(span["start_time_ms"]), len(attributes))
        out[trace.id] = {"first_page": listed, "all": spans, "up": up, "openai.chat": llm, "TOOL": tools}
    return out


def example_bad_request() -> Any:
    # A sort field no server knows: the published SDK logs the error and returns an empty page; ours raises.
    try:
        page = Netra.usage.list_traces(start_time=START, end_time=END, sort_field="no_such_field")
    except Exception as exc:  # ours: BadRequestError with the server's message
        return {"raised": type(exc).__name__, "message": str(exc)}
    return {"traces": len(page.traces)}


def main() -> None:
    Netra.init(app_name="usage-reader")
    results = {}
    for name, fn in list(globals().items()):
        if name.startswith("example_") and callable(fn):
            results[name] = fn()
    Netra.shutdown()
    with open(os.environ["COMPAT_OUT"], "w") as f:
        json.dump(results, f, default=str)


if __name__ == "__main__":
    main()
