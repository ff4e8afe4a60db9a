"""The web dashboard of ``netra serve`` (server-rendered HTML under ``/ui``, no build step, no CDN).

Pages: ``/ui/login``, ``/ui/`` (cost and usage overview), ``/ui/sla``, ``/ui/traces`` and
``/ui/traces/{trace_id}`` (waterfall), ``/ui/users``, ``/ui/alerts``. See ``docs/dashboard.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

    from netra_server.state import Hooks

__all__ = ["install"]


def install(app: FastAPI, hooks: Hooks) -> None:
    """Mount the pages and their static files (called by :func:`netra_server.app.create_app`)."""
    from fastapi.responses import RedirectResponse
    from starlette.staticfiles import StaticFiles

    from netra_server.auth import TooManyFailures

    from .guards import (
        BadQuery,
        Forbidden,
        LoginRequired,
        bad_query,
        forbidden,
        login_redirect,
        too_many_failures,
    )
    from .routes import router

    app.state.netra_dashboard_tenants = {}  # project id -> (expiry, tenants) of the tenant picker
    app.include_router(router)
    app.mount("/ui/static", StaticFiles(directory=Path(__file__).parent / "static"), name="netra-static")
    app.add_exception_handler(LoginRequired, login_redirect)
    app.add_exception_handler(Forbidden, forbidden)
    app.add_exception_handler(BadQuery, bad_query)
    app.add_exception_handler(TooManyFailures, too_many_failures)

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/ui/", status_code=307)

    @app.get("/ui", include_in_schema=False)
    async def ui() -> RedirectResponse:
        return RedirectResponse("/ui/", status_code=307)
