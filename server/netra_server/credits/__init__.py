"""Tenant credits: prepaid balances, reservations before a call, confirmation with the actual usage.

* :mod:`.ledger` — the transactional ledger (SQLite in the data folder; the :class:`CreditLedger`
  interface for another SQL database).
* :mod:`.api` — the ``/api/credits`` routes; :mod:`.cli` — ``netra credits``.
* :mod:`.pricing` — usage priced with the spans' price table.

While the server runs, a task releases the holds whose TTL passed (every
``$NETRA_CREDITS_SWEEP_SECONDS``, default 1 s); holds that expired while the server was down are
released at start.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI, Request
    from fastapi.responses import Response

    from netra_server.app import Hooks, ServerState

__all__ = ["current_balance", "install"]

log = logging.getLogger("netra_server.credits")

#: The open ledger of each running server, by its store (what the alert evaluator holds).
_LEDGERS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def current_balance(store: Any, project_id: str, tenant_id: str | None) -> float | None:
    """The credit balance (USD) of ``tenant_id``, or the lowest of the project's accounts; None when
    the ledger is not open or there is no account (for the ``credit_balance`` alert metric)."""
    ledger = _LEDGERS.get(store)
    if ledger is None:
        return None
    if tenant_id is not None:
        account = ledger.account(project_id, tenant_id)
        return None if account.updated_at == 0 else float(account.balance)
    balances = [a.balance for a in ledger.accounts(project_id)]
    return float(min(balances)) if balances else None


def install(app: FastAPI, hooks: Hooks) -> None:
    """Mount ``/api/credits`` and ``/ui/credits``, open the ledger at start (see ``netra_server.app``)."""
    from fastapi.responses import JSONResponse

    from .api import router
    from .errors import CreditError
    from .ledger import open_ledger

    app.include_router(router)
    try:
        from .page import router as page_router

        app.include_router(page_router)
    except ImportError:  # the dashboard is not installed
        log.debug("credits page not mounted", exc_info=True)
    app.state.netra_credits = None

    async def credit_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, CreditError)
        return JSONResponse(exc.body(), status_code=exc.status)

    app.add_exception_handler(CreditError, credit_error)

    async def ledger_error(request: Request, exc: Exception) -> Response:
        if not request.url.path.startswith(("/api/credits", "/ui/credits")):
            raise exc
        log.warning("credit ledger error on %s: %s", request.url.path, exc)
        return JSONResponse(
            {"error": {"message": f"the credit ledger could not complete the request ({exc}); nothing was changed, "
                                  "retry (with the same idempotency key)", "code": "ledger_unavailable"}},
            status_code=503, headers={"Retry-After": "2"},
        )

    import sqlite3

    app.add_exception_handler(sqlite3.Error, ledger_error)

    async def sweep(state: ServerState) -> None:
        ledger = app.state.netra_credits
        every = float(os.environ.get("NETRA_CREDITS_SWEEP_SECONDS", "1") or 1)
        pruned_at = 0.0
        while True:
            try:
                if time.monotonic() - pruned_at > 3600:
                    pruned_at = time.monotonic()
                    await asyncio.to_thread(ledger.prune_idempotency_keys)
                n = await asyncio.to_thread(ledger.expire_due)
                if n:
                    log.info("released %d expired credit hold(s)", n)
                    continue
            except Exception:
                log.exception("releasing expired credit holds failed; retrying")
            await asyncio.sleep(every)

    async def start(state: ServerState) -> None:
        ledger = await asyncio.to_thread(open_ledger, state.settings.data_dir)
        app.state.netra_credits = ledger
        _LEDGERS[state.store] = ledger
        expired = await asyncio.to_thread(ledger.expire_due)
        if expired:
            log.warning("released %d credit hold(s) that expired while the server was down", expired)
        app.state.netra_credits_sweeper = asyncio.get_running_loop().create_task(sweep(state), name="netra-credits")

    async def stop(state: ServerState) -> None:
        task = getattr(app.state, "netra_credits_sweeper", None)
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        ledger, app.state.netra_credits = app.state.netra_credits, None
        _LEDGERS.pop(state.store, None)
        if ledger is not None:
            await asyncio.to_thread(ledger.close)

    hooks.on_startup.append(start)
    hooks.on_shutdown.append(stop)
