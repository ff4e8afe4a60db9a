"""FastAPI dependencies shared by every router: the running state (:func:`state_of`) and the key
checks (:func:`read_auth`, :func:`ingest_auth`, :func:`admin_auth`, :func:`any_key_auth`; each returns
an :class:`~netra_server.auth.AuthContext` or raises :class:`~netra_server.errors.ApiError`).

In a route: ``ctx: AuthContext = Depends(read_auth)``, ``state = state_of(request)``.
"""

from __future__ import annotations

from fastapi import Request

from netra_server.auth import AuthContext, TooManyFailures, check_key, client_address
from netra_server.errors import ApiError
from netra_server.state import ServerState

__all__ = ["admin_auth", "any_key_auth", "ingest_auth", "read_auth", "state_of"]


def state_of(request: Request) -> ServerState:
    """The running server's :class:`ServerState` (for any route); answers 503 while the
    server is starting."""
    state: ServerState | None = getattr(request.app.state, "netra", None)
    if state is None:
        raise ApiError(503, "the server is starting; retry in a moment", {"Retry-After": "1"})
    return state


def _key_from(request: Request) -> str | None:
    key = request.headers.get("x-api-key")
    if key:
        return key.strip()
    authz = request.headers.get("authorization", "")
    if authz[:7].lower() == "bearer ":
        return authz[7:].strip()
    return None


async def any_key_auth(request: Request) -> AuthContext:
    """FastAPI dependency: any valid key of a project (401 without one, 429 after too many failures)."""
    state = state_of(request)
    key = _key_from(request)
    if not key:
        raise ApiError(401, "missing API key: send it as `x-api-key: <key>` or `Authorization: Bearer <key>`")
    client = client_address(request.client.host if request.client else None, request.headers,
                            state.settings.trusted_proxy_header)
    try:
        ctx = await check_key(state.keys, key, client)  # caches, and a limit on failures per client
    except TooManyFailures as exc:
        raise ApiError(429, str(exc), {"Retry-After": str(exc.retry_after)}) from None
    if ctx is None:
        raise ApiError(401, "invalid or revoked API key")
    return ctx


async def read_auth(request: Request) -> AuthContext:
    """FastAPI dependency: a key that may read (admin or read)."""
    ctx = await any_key_auth(request)
    if not ctx.can_read:
        raise ApiError(403, f"this API key has role {ctx.role!r} and cannot read; use a read or admin key")
    return ctx


async def ingest_auth(request: Request) -> AuthContext:
    """FastAPI dependency: a key that may send spans (admin or ingest)."""
    ctx = await any_key_auth(request)
    if not ctx.can_ingest:
        raise ApiError(403, f"this API key has role {ctx.role!r} and cannot send spans; use an ingest or admin key")
    return ctx


async def admin_auth(request: Request) -> AuthContext:
    """FastAPI dependency: an admin key."""
    ctx = await any_key_auth(request)
    if not ctx.is_admin:
        raise ApiError(403, "this route needs an admin API key")
    return ctx

