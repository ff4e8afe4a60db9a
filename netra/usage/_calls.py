"""What each usage call sends and how its JSON answer is read, shared by the sync and async clients.

Nothing here does I/O: a :class:`Call` describes one request and parses its answer's body; :class:`Pages`
walks the pages of a list. Each builder's parameters are the arguments of the client method of the same
call (the clients take them from here: ``UsageClient.get_usage_summary`` has ``usage_summary``'s
signature; ``list_traces`` the fields of :class:`~netra.usage.TraceQuery`). What an HTTP status means
and when to retry: :mod:`netra.usage._answers`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Concatenate, Generic, Literal, ParamSpec, TypeVar, cast
from urllib.parse import quote

from netra.usage._read import note_reads
from netra.usage._times import TimeArg, window
from netra.usage.errors import InvalidResponseError, PaginationError

if TYPE_CHECKING:
    from netra.usage.models import (
        CallUsageResult,
        SessionUsageData,
        SpansPage,
        TenantUsageData,
        TracesPage,
        TraceSpan,
        TraceSummary,
        TraceUsage,
        UsageSummary,
    )
    from netra.usage.options import SpanQuery, TraceQuery

T = TypeVar("T")
_S = TypeVar("_S")
_Q = TypeVar("_Q")
_R = TypeVar("_R")
_P = ParamSpec("_P")

Direction = Literal["up", "down"]
SortOrder = Literal["asc", "desc"]
GroupBy = Literal["tenant", "model", "user", "session", "day"]
_GROUP_BY = ("tenant", "model", "user", "session", "day")


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One request of the usage API and how to read its JSON answer."""

    method: str
    path: str
    what: str
    parse: Callable[[Any], T]
    params: Mapping[str, str] | None = None
    json: Mapping[str, Any] | None = None
    none_if_not_found: bool = False


def takes(make: Callable[_P, _Q]) -> Callable[[Callable[[_S, _Q], _R]], Callable[Concatenate[_S, _P], _R]]:
    """The decorated method takes the arguments of ``make`` and receives what it builds.

    ``make`` is a query class (``list_traces(start, end, tenant_id="acme")`` takes the fields of
    :class:`TraceQuery`) or a call builder of :mod:`netra.usage._calls`; so each method's arguments are
    written once, for the sync and the async client. They are checked at the call (an async method's:
    when it is awaited).
    """

    def decorate(method: Callable[[_S, _Q], _R]) -> Callable[Concatenate[_S, _P], _R]:
        wrapper: Callable[..., Any]
        if inspect.iscoroutinefunction(method):

            async def wrapper(self: _S, /, *args: _P.args, **kwargs: _P.kwargs) -> Any:
                return await cast(Any, method)(self, make(*args, **kwargs))

        else:

            def wrapper(self: _S, /, *args: _P.args, **kwargs: _P.kwargs) -> Any:
                return method(self, make(*args, **kwargs))

        functools.update_wrapper(wrapper, method)
        own = inspect.signature(method)
        self_param = next(iter(own.parameters.values()))
        wrapper.__signature__ = own.replace(  # type: ignore[union-attr]
            parameters=[self_param, *inspect.signature(make).parameters.values()]
        )
        return cast(Callable[Concatenate[_S, _P], _R], wrapper)

    return decorate


# ---------------------------------------------------------------------------------------------------
# Argument checks


def require_id(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, not {type(value).__name__}")
    if not value:
        raise ValueError(f"{name} is empty; pass the {name.replace('_', ' ')} you want to read")
    return value


def _check_direction(direction: str | None) -> str:
    if direction is None:
        return "down"
    if direction not in ("up", "down"):
        raise ValueError(f"direction must be 'up' or 'down', not {direction!r}")
    return direction


def _check_limit(limit: int | None) -> int | None:
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be a positive integer (the page size), not {limit!r}")
    return limit


def _segment(value: str) -> str:
    """Escape one path segment, so an id with '/', '?', '#' or spaces stays one segment.

    An id that is exactly '.' or '..' is sent as '%2E' / '%2E%2E': a URL normaliser (httpx's, a
    proxy's) would otherwise resolve it as a dot segment and ask for another route."""
    if value in (".", ".."):
        return value.replace(".", "%2E")
    return quote(value, safe="")


# ---------------------------------------------------------------------------------------------------
# Calls of the Netra-compatible routes


def _models() -> Any:
    """``netra.usage.models`` (it imports pydantic: loaded with the first answer, not with the client)."""
    from netra.usage import models

    return models


def _data_block(body: Any, what: str, envelope: str | None = None) -> Any:
    """The ``data`` of an answer (of the wire shape named ``envelope``, ``netra.usage.wire``)."""
    if not isinstance(body, Mapping):
        raise InvalidResponseError(f"the answer to {what} is not a JSON object: {body!r:.200}")
    if envelope is not None:
        note_reads(envelope, "data")
    if "data" in body:
        return body["data"]
    return body


def _usage_of(
    kind: str, key: str, start_time: TimeArg, end_time: TimeArg, model: str, envelope: str
) -> Call[Any]:
    """``GET /usage/{kind}s/{key}``: the usage of one session or tenant in the window, read as ``model``."""
    require_id(key, f"{kind}_id")
    start, end = window(start_time, end_time)
    what = f"{kind} usage of {key!r}"
    return Call(
        method="GET",
        path=f"/usage/{kind}s/{_segment(key)}",
        what=what,
        params={"startTime": start, "endTime": end},
        parse=lambda body: getattr(_models(), model).from_dict(_data_block(body, what, envelope)),
        none_if_not_found=True,
    )


def session_usage(session_id: str, start_time: TimeArg, end_time: TimeArg) -> Call[SessionUsageData]:
    return _usage_of("session", session_id, start_time, end_time, "SessionUsageData", "SessionUsageResponse")


def tenant_usage(tenant_id: str, start_time: TimeArg, end_time: TimeArg) -> Call[TenantUsageData]:
    return _usage_of("tenant", tenant_id, start_time, end_time, "TenantUsageData", "TenantUsageResponse")


def _page(body: Any, what: str, envelope: str, page: str) -> tuple[list[Any], bool]:
    """The items of a page answer (wire shapes ``envelope`` > ``page`` > items) and whether more follow."""
    block = _data_block(body, what, envelope)
    if not isinstance(block, Mapping):
        raise InvalidResponseError(f"the answer to {what} has 'data' that is not an object: {block!r:.200}")
    note_reads(page, "data", "pageInfo")
    note_reads("PageInfo", "hasNextPage")
    items = block.get("data")
    if not isinstance(items, list):
        raise InvalidResponseError(f"the answer to {what} has no list at data.data (got {items!r:.200})")
    page_info = block.get("pageInfo")
    if not isinstance(page_info, Mapping) or not isinstance(page_info.get("hasNextPage"), bool):
        raise InvalidResponseError(
            f"the answer to {what} has no boolean data.pageInfo.hasNextPage (got {page_info!r:.200})"
        )
    return items, page_info["hasNextPage"]


def _read_page(
    body: Any, what: str, item_model: str, page_model: str, items_field: str, envelope: str, page: str
) -> Any:
    """A page of items (``TracesPage`` of ``TraceSummary``, ``SpansPage`` of ``TraceSpan``); the next cursor
    is the last item's."""
    m = _models()
    raw, has_next = _page(body, what, envelope, page)
    items = [getattr(m, item_model).from_dict(item) for item in raw]
    return getattr(m, page_model).model_construct(
        **{items_field: items}, has_next_page=has_next, next_cursor=items[-1].cursor if items else None
    )


def _traces_page(body: Any, what: str) -> TracesPage:
    page: TracesPage = _read_page(
        body, what, "TraceSummary", "TracesPage", "traces", "TracesResponse", "TracePage"
    )
    return page


def _spans_page(body: Any, what: str) -> SpansPage:
    page: SpansPage = _read_page(
        body, what, "TraceSpan", "SpansPage", "spans", "TraceSpansResponse", "SpanPage"
    )
    return page


def trace_list_body(query: TraceQuery) -> dict[str, Any]:
    """The JSON body of ``POST /sdk/traces`` for ``query``; raises on a bad argument."""
    start, end = window(query.start_time, query.end_time)
    filters = [
        {"field": name, "operator": "equals", "type": "string", "value": require_id(value, name)}
        for name, value in query.id_filters().items()
    ]
    pagination: dict[str, Any] = {"direction": _check_direction(query.direction)}
    checked_limit = _check_limit(query.limit)
    if checked_limit is not None:
        pagination["limit"] = checked_limit
    if query.cursor is not None:
        pagination["cursor"] = require_id(query.cursor, "cursor")
    payload: dict[str, Any] = {
        "startTime": start,
        "endTime": end,
        "filters": filters,
        "pagination": pagination,
    }
    if query.sort_field is not None:
        payload["sortField"] = require_id(query.sort_field, "sort_field")
    if query.sort_order is not None:
        if query.sort_order not in ("asc", "desc"):
            raise ValueError(f"sort_order must be 'asc' or 'desc', not {query.sort_order!r}")
        payload["sortOrder"] = query.sort_order
    return payload


def list_traces(query: TraceQuery) -> Call[TracesPage]:
    what = "the trace list"
    return Call(
        method="POST",
        path="/sdk/traces",
        what=what,
        json=trace_list_body(query),
        parse=lambda body: _traces_page(body, what),
    )


def span_list_params(query: SpanQuery) -> dict[str, str]:
    """The query string of ``GET /sdk/traces/{id}/spans`` for ``query``; raises on a bad argument."""
    require_id(query.trace_id, "trace_id")
    params: dict[str, str] = {"direction": _check_direction(query.direction)}
    if query.cursor is not None:
        params["cursor"] = require_id(query.cursor, "cursor")
    checked_limit = _check_limit(query.limit)
    if checked_limit is not None:
        params["limit"] = str(checked_limit)
    if query.span_name is not None:
        params["spanName"] = require_id(query.span_name, "span_name")
    return params


def list_spans(query: SpanQuery) -> Call[SpansPage]:
    what = f"the spans of trace {query.trace_id!r}"
    return Call(
        method="GET",
        path=f"/sdk/traces/{_segment(query.trace_id)}/spans",
        what=what,
        params=span_list_params(query),
        parse=lambda body: _spans_page(body, what),
        none_if_not_found=True,
    )


# ---------------------------------------------------------------------------------------------------
# Calls of our own routes


def trace_usage(trace_id: str) -> Call[TraceUsage]:
    require_id(trace_id, "trace_id")
    what = f"the usage of trace {trace_id!r}"
    return Call(
        method="GET",
        path=f"/api/traces/{_segment(trace_id)}/usage",
        what=what,
        parse=lambda body: _models().TraceUsage.from_dict(_data_block(body, what, "TraceUsageResponse")),
        none_if_not_found=True,
    )


def call_usage(
    trace_ids: list[str] | tuple[str, ...] | None = None,
    call_ids: list[str] | tuple[str, ...] | None = None,
    *,
    include_costs: bool = False,
    limit: int | None = None,
) -> Call[CallUsageResult]:
    payload: dict[str, Any] = {"include_costs": bool(include_costs)}
    for name, values in (("trace_ids", trace_ids), ("call_ids", call_ids)):
        if values is None:
            continue
        if isinstance(values, str):
            raise TypeError(f"{name} must be a list of ids, not a string (wrap one id in a list)")
        payload[name] = [require_id(v, name[:-1]) for v in values]
    if not payload.get("trace_ids") and not payload.get("call_ids"):
        raise ValueError("give trace_ids and/or call_ids (span ids) to read the usage of")
    checked_limit = _check_limit(limit)
    if checked_limit is not None:
        payload["limit"] = checked_limit
    what = "the usage of calls"
    return Call(
        method="POST",
        path="/trace/usage",
        what=what,
        json=payload,
        parse=lambda body: _models().CallUsageResult.from_dict(_data_block(body, what, "CallUsageResponse")),
    )


def usage_summary(
    start_time: TimeArg,
    end_time: TimeArg,
    group_by: GroupBy = "tenant",
    *,
    tenant_id: str | None = None,
    limit: int | None = None,
) -> Call[UsageSummary]:
    start, end = window(start_time, end_time)
    if group_by not in _GROUP_BY:
        raise ValueError(f"group_by must be one of {', '.join(map(repr, _GROUP_BY))}, not {group_by!r}")
    params = {"groupBy": group_by, "startTime": start, "endTime": end}
    if tenant_id is not None:
        params["tenantId"] = require_id(tenant_id, "tenant_id")
    checked_limit = _check_limit(limit)
    if checked_limit is not None:
        params["limit"] = str(checked_limit)
    what = f"the usage summary by {group_by}"
    return Call(
        method="GET",
        path="/api/usage/summary",
        what=what,
        params=params,
        parse=lambda body: _models().UsageSummary.from_dict(_data_block(body, what, "UsageSummaryResponse")),
    )


def next_cursor(has_next_page: bool, cursor: str | None, seen: set[str], what: str) -> str | None:
    """The cursor of the next page, or ``None`` at the end; raise on a broken pagination contract."""
    if not has_next_page:
        return None
    if not cursor:
        raise PaginationError(
            f"the server said {what} has a next page but sent no cursor for it (an empty page or an item "
            f"without 'cursor'); stopping instead of restarting from the first page"
        )
    if cursor in seen:
        raise PaginationError(
            f"the server sent cursor {cursor!r} for {what} twice; stopping instead of looping forever"
        )
    seen.add(cursor)
    return cursor


class Pages(Generic[T]):
    """Pagination without I/O: the call for each next page, and when to stop.

    ``make(cursor)`` builds the call of the page after ``cursor``; ``items(page)`` lists a page's items.
    A client asks :meth:`next_call`, sends it, yields :meth:`items_of` the answer, then :meth:`advance`.
    """

    def __init__(
        self, make: Callable[[str | None], Call[Any]], cursor: str | None, items: Callable[[Any], list[T]]
    ) -> None:
        self._make = make
        self._items = items
        self._cursor = cursor
        self._seen: set[str] = {cursor} if cursor else set()
        self._what = ""
        self._done = False

    def next_call(self) -> Call[Any] | None:
        if self._done:
            return None
        call = self._make(self._cursor)
        self._what = call.what
        return call

    def items_of(self, page: Any) -> list[T]:
        """The items of an answer (none for a documented not-found)."""
        return [] if page is None else self._items(page)

    def advance(self, page: Any) -> None:
        """Move past ``page``; raises :class:`PaginationError` on a broken pagination contract."""
        cursor = (
            None
            if page is None
            else next_cursor(page.has_next_page, page.next_cursor, self._seen, self._what)
        )
        if cursor is None:
            self._done = True
        self._cursor = cursor


def trace_pages(query: TraceQuery) -> Pages[TraceSummary]:
    """The pages of ``list_traces(query)``, from ``query.cursor`` on (``iter_traces``)."""
    return Pages(
        lambda cursor: list_traces(replace(query, cursor=cursor)), query.cursor, lambda page: page.traces
    )


def span_pages(query: SpanQuery) -> Pages[TraceSpan]:
    """The pages of ``list_spans_by_trace_id(query)``, from ``query.cursor`` on (``iter_spans_by_trace_id``)."""
    return Pages(
        lambda cursor: list_spans(replace(query, cursor=cursor)), query.cursor, lambda page: page.spans
    )
