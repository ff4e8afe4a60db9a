"""Typed results of the usage client.

**The Netra-compatible results** (:class:`SessionUsageData`, :class:`TenantUsageData`,
:class:`TraceSummary`, :class:`TracesPage`, :class:`TraceSpan`, :class:`SpansPage`) are pydantic models
with the field names and types of the published ``netra-sdk`` (1.2.2): ``.model_dump()``,
``.model_dump_json()`` and ``total_cost`` as a ``float`` work as they do there, so code written for that
SDK runs unchanged.

**Money**: ``total_cost`` is a ``float`` (as in netra-sdk: convenient, ``usage.total_cost * 1.2`` works)
and ``total_cost_usd`` beside it is the exact amount the server stored, a :class:`decimal.Decimal`.
**Use ``total_cost_usd`` for invoices and anything you add up**: a float keeps about 15 significant
digits and a sum of floats drifts (``0.1 + 0.2 != 0.3``); the Decimal is exactly the digits the server
sent (the client reads JSON numbers as ``Decimal``, never through a float). ``None`` where a cost is
unknown (never 0).

**Our own routes' results** (:class:`UsageSummary`, :class:`TraceUsage`, :class:`CallUsageResult`...)
are frozen dataclasses whose money (``total_cost``, ``cost``) is already exact (``Decimal``).

Every model has ``from_dict``, which accepts the wire JSON (the keys of its shape in
:mod:`netra.usage.wire`, the one definition the server answers by), ignores keys it does not know,
and raises :class:`~netra.usage.errors.InvalidResponseError` naming the key when a required one is
missing or has the wrong type. This module imports pydantic; ``import netra`` and ``import netra.usage`` do not (the
client loads it with the first answer it reads).

Modules: the Netra-compatible models are defined in ``netra.usage._compat_results``, our own routes'
results in ``netra.usage._usage_results``; this module is the public place to import both from.
"""

from __future__ import annotations

from netra.usage._compat_results import (
    SessionUsageData,
    SpansPage,
    TenantUsageData,
    TracesPage,
    TraceSpan,
    TraceSummary,
)
from netra.usage._read import json_dumps
from netra.usage._usage_results import (
    CallUsage,
    CallUsageResult,
    ModelUsage,
    SpanOwnUsage,
    SpanUsage,
    TraceUsage,
    UsageGroup,
    UsageRollup,
    UsageSummary,
    UsageTotals,
)

__all__ = [
    "CallUsage",
    "CallUsageResult",
    "ModelUsage",
    "SessionUsageData",
    "SpanOwnUsage",
    "SpanUsage",
    "SpansPage",
    "TenantUsageData",
    "TraceSpan",
    "TraceSummary",
    "TraceUsage",
    "TracesPage",
    "UsageGroup",
    "UsageRollup",
    "UsageSummary",
    "UsageTotals",
    "json_dumps",
]
