"""What the query routes share: their request parameters (a window, ids, the key's tenant) and the
``anyid`` path convertor."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Depends, Query
from starlette.convertors import Convertor, register_url_convertor

from netra_server.auth import AuthContext
from netra_server.deps import admin_auth, read_auth
from netra_server.errors import ApiError
from netra_server.store import Window
from netra_server.validation import BadRequest, parse_time

__all__ = ["ID_MAX", "Admin", "Auth", "EndTime", "StartTime", "check_id", "check_trace_id", "tenant_scope", "window_of"]


class _AnyIdConvertor(Convertor[str]):
    """A path parameter that is the rest of the path, whatever it holds: Starlette's ``path``
    (``.*``) stops at a newline, so an id with one (sent percent-encoded, ``%0A``) answered 404.
    Any stored tenant/session id can be named: percent-encode it (``quote(id, safe="")``)."""

    regex = r"[\s\S]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("anyid", _AnyIdConvertor())

TRACE_ID_RE = re.compile(r"^[0-9a-fA-F]{32}$")
ID_MAX = 256

Auth = Annotated[AuthContext, Depends(read_auth)]
Admin = Annotated[AuthContext, Depends(admin_auth)]
StartTime = Annotated[str | None, Query(alias="startTime", description="ISO 8601; inclusive; open if omitted")]
EndTime = Annotated[str | None, Query(alias="endTime", description="ISO 8601; inclusive; open if omitted")]


def window_of(start: str | None, end: str | None) -> Window:
    """The window ``[startTime, endTime]`` (a missing bound is open)."""
    s = parse_time(start, "startTime")
    e = parse_time(end, "endTime")
    w = Window(s if s is not None else Window().start_ns, e if e is not None else Window().end_ns)
    if w.end_ns < w.start_ns:
        raise BadRequest(f"endTime ({end}) is before startTime ({start})")
    return w


def check_id(value: str, name: str) -> str:
    """A tenant or session id: 1 to :data:`ID_MAX` characters."""
    if not value or len(value) > ID_MAX:
        raise BadRequest(f"{name} must be 1 to {ID_MAX} characters")
    return value


def check_trace_id(value: str) -> str:
    """A trace id (32 hexadecimal characters), in lower case."""
    if not TRACE_ID_RE.match(value):
        raise BadRequest(f"trace id {value!r} must be 32 hexadecimal characters")
    return value.lower()


def tenant_scope(ctx: AuthContext, tenant_id: str | None) -> str | None:
    """The tenant a read is limited to: the key's tenant (others answer 403) or the requested one."""
    if ctx.tenant_id is None:
        return tenant_id
    if tenant_id is not None and tenant_id != ctx.tenant_id:
        raise ApiError(403, f"this API key can only read tenant {ctx.tenant_id!r}")
    return ctx.tenant_id
