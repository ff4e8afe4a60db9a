"""What every dashboard page checks before it renders: the login cookie (an API key verified exactly
like ``x-api-key``), the CSRF token and origin of form posts, and the query string (refused with a 400
page, never passed on unchecked); and the responses for each refusal, which
:func:`netra_server.dashboard.install` registers as exception handlers. The pages are in :mod:`.routes`."""

from __future__ import annotations

import hashlib
import hmac
import html
import re
from urllib.parse import parse_qs, urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from netra_server.auth import AuthContext, check_key, client_address
from netra_server.deps import state_of
from netra_server.state import ServerState

from . import views

__all__ = [
    "COOKIE",
    "TRACE_ID",
    "BadQuery",
    "Forbidden",
    "LoginRequired",
    "after_cursor",
    "bad_query",
    "checked_form",
    "client_of",
    "csrf_token",
    "forbidden",
    "login_redirect",
    "page_auth",
    "too_many_failures",
]

COOKIE = "netra_key"

TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
#: ``<sort value>~<trace id>``, as the "Next page" link writes it (see :func:`after_cursor`).
_CURSOR = re.compile(r"^(-?[0-9]{1,30})(?:\.([0-9]{1,12}))?~([0-9a-f]{32})$")
_SORTS = ("start_time", "latency", "cost", "tokens")
_ID_MAX = 256
_INT64_MAX = 2**63 - 1


class BadQuery(Exception):
    """A query string the pages cannot use: answered 400 with the message (never a 500 or 503)."""


def bad_query(request: Request, exc: Exception) -> Response:
    body = (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Bad request · Netra</title>"
        "<link rel=\"stylesheet\" href=\"/ui/static/netra.css\"></head><body><main class=\"card\">"
        f"<h1>400 · Bad request</h1><p class=\"error\" role=\"alert\" id=\"bad-query\">{html.escape(str(exc))}</p>"
        f"<p><a href=\"{html.escape(request.url.path)}\">Open this page without the query string</a></p>"
        "</main></body></html>"
    )
    return HTMLResponse(body, status_code=400, headers={"cache-control": "no-store"})


def _check_query(request: Request) -> None:
    """Refuse query parameters the pages would otherwise pass on to the store unchecked."""
    q = request.query_params
    for name in ("tenant", "user_id", "session_id"):
        for value in q.getlist(name):
            if len(value) > _ID_MAX:
                raise BadQuery(f"{name} is {len(value)} characters long; at most {_ID_MAX}")
    rng = q.get("range")
    if rng and rng not in views.RANGES:
        raise BadQuery(f"range {rng[:40]!r} is not one of {', '.join(views.RANGES)}")
    sort = q.get("sort")
    if sort and sort not in _SORTS:
        raise BadQuery(f"sort {sort[:40]!r} is not one of {', '.join(_SORTS)}")
    trace_id = (q.get("trace_id") or "").strip()
    if trace_id and not TRACE_ID.match(trace_id.lower()):
        raise BadQuery(f"trace_id {trace_id[:80]!r} is not a trace id: write its 32 hexadecimal digits")
    edit = q.get("edit")
    if edit and len(edit) > 64:
        raise BadQuery("edit: not an alert rule id (at most 64 characters)")


def after_cursor(text: str, sort: str) -> tuple[str, str] | None:
    """The ``after`` cursor of the traces page for ``sort``; BadQuery when it cannot be one."""
    if not text:
        return None
    m = _CURSOR.match(text)
    bad = BadQuery(
        f"after {text[:80]!r} is not a position in this listing (sorted by {sort}); "
        "follow the page's 'Next page' link, or open the page without 'after'"
    )
    if not m:
        raise bad
    whole, fraction, trace_id = m.groups()
    if sort == "cost":  # Decimal(38, 10) in the store
        if len(whole.lstrip("-")) > 28 or (fraction is not None and len(fraction) > 10):
            raise bad
        value = whole + (f".{fraction}" if fraction is not None else "")
    else:  # nanoseconds or a token count: a whole number of the store's integer type
        if fraction is not None or int(whole) > _INT64_MAX or (sort == "tokens" and int(whole) < 0) or int(whole) < -_INT64_MAX:
            raise bad
        value = whole
    return value, trace_id


class LoginRequired(Exception):
    """No valid key in the cookie: the handler sends the browser to the login page."""


def login_redirect(request: Request, exc: Exception) -> Response:
    target = "/ui/login?" + urlencode({"next": request.url.path})
    response = RedirectResponse(target, status_code=303)
    response.delete_cookie(COOKIE, path="/ui")
    return response


async def page_auth(request: Request) -> tuple[ServerState, AuthContext]:
    state = state_of(request)
    key = request.cookies.get(COOKIE)
    if not key:
        raise LoginRequired()
    ctx = await check_key(state.keys, key, client_of(request, state))
    if ctx is None or not ctx.can_read:
        raise LoginRequired()
    _check_query(request)
    return state, ctx


def client_of(request: Request, state: ServerState) -> str:
    peer = request.client.host if request.client else None
    return client_address(peer, request.headers, state.settings.trusted_proxy_header)


def too_many_failures(request: Request, exc: Exception) -> Response:
    retry = str(getattr(exc, "retry_after", 1))
    return HTMLResponse(f"<h1>429</h1><p>{html.escape(str(exc))}</p>", status_code=429, headers={"Retry-After": retry})


async def _secret(state: ServerState) -> bytes:
    return await state.store.run(state.store.secret, "dashboard_csrf_secret")


async def csrf_token(state: ServerState, ctx: AuthContext) -> str:
    return hmac.new(await _secret(state), b"csrf:" + ctx.key_id.encode(), hashlib.sha256).hexdigest()[:40]


async def checked_form(request: Request, state: ServerState, ctx: AuthContext) -> dict[str, list[str]]:
    """The urlencoded body of a form post, after the same-origin and CSRF checks."""
    origin = request.headers.get("origin")
    if origin and origin.rstrip("/") != f"{request.url.scheme}://{request.url.netloc}":
        raise Forbidden("cross-origin form post refused")
    form = parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    token = (form.get("csrf") or [""])[0]
    if not hmac.compare_digest(token, await csrf_token(state, ctx)):
        raise Forbidden("the form expired or did not come from this dashboard; reload the page and retry")
    return form


class Forbidden(Exception):
    """A refused form post (cross-origin, or without the CSRF token): the handler answers 403."""


def forbidden(request: Request, exc: Exception) -> Response:
    return HTMLResponse(f"<h1>403</h1><p>{exc}</p>", status_code=403)
