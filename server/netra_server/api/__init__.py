"""The query routes: the Netra-compatible usage/trace routes (:mod:`~netra_server.api.compat`), our
own (:mod:`~netra_server.api.ours`) and the API keys' (:mod:`~netra_server.api.keys`); what they
share in :mod:`~netra_server.api.params`. :data:`router` holds them all.

Netra-compatible (same paths and shapes as the routes the Netra SDK's usage client calls):

- ``GET /usage/sessions/{session_id}?startTime=&endTime=``
- ``GET /usage/tenants/{tenant_id}?startTime=&endTime=``
- ``POST /sdk/traces`` (filters, pagination, sort)
- ``GET /sdk/traces/{trace_id}/spans?cursor=&direction=&limit=&spanName=``

Ours: ``POST /trace/usage``, ``GET /api/me``, ``GET /api/usage/summary``, ``GET /api/latency``, ``GET /api/traces/{trace_id}/usage``,
``GET|POST /api/keys``, ``DELETE /api/keys/{key_id}``.

Times are ISO 8601 (``Z``, an offset or none = UTC; fractional seconds); a missing bound is open. A
window holds the spans whose *start* time is in ``[startTime, endTime]``. Aggregates follow the billing
rule (``docs/design.md``): a span counts iff it has usage and is not covered; a span delivered twice
counts once; ``totalCost`` sums known costs and our routes report ``unpricedCount`` (counted spans
whose price is unknown) beside it.

Money is exact: costs stay ``Decimal`` from the store to the answer, and the routes that answer money
return :class:`~netra_server.responses.ExactJSONResponse`, which writes each one as a JSON number with
its exact digits (never a float rounded to ~15 significant digits). A span whose price is unknown has
``null``, never ``0``.

Each answer is built as a pydantic model of :mod:`netra.usage.wire` (the usage answers, which the
usage client reads by the same definitions) or :mod:`netra_server.wire` (errors, keys, latency),
validated as it is built, and given as ``response_model`` so that the OpenAPI document is generated
from the same models. Every route returns its ``ExactJSONResponse`` itself, which FastAPI sends as it
is (no second validation); it writes the model's fields with exact money.

Pagination: a page's items carry a ``cursor``; pass the last item's ``cursor`` with the same
``direction`` to read on. A listing has an order: traces by ``sortField`` (default ``start_time``) in
``sortOrder`` (default ``asc`` by time, so oldest first; ``desc`` by latency, cost and tokens), spans by
start time. ``down`` (the default) reads forward in that order from the cursor; ``up`` reads backward
from the cursor and returns the items nearest the cursor first (so its last item continues upward).
``up`` without a cursor starts at the end of the listing. So by time, as the Netra docs say, ``down``
reads newer traces (from the oldest of the window on) and ``up`` older ones (from the newest on); both
visit every trace once. ``pageInfo.hasNextPage`` says whether more items follow in that direction.

``POST /trace/usage`` (ours): per-call (span) usage by model, own and rolled up over descendants.
"""

from __future__ import annotations

from fastapi import APIRouter

from netra_server.api import compat, keys, ours
from netra_server.responses import ExactJSONResponse

__all__ = ["router"]

#: Every route returns its ExactJSONResponse (Decimals as exact numbers) itself.
router = APIRouter(default_response_class=ExactJSONResponse)
router.include_router(compat.router)
router.include_router(ours.router)
router.include_router(keys.router)
