"""Alert rules: per-tenant SLA and cost alerts evaluated inside ``netra serve``.

* :mod:`.model` — the rule (validated JSON), filters, conditions, contact points.
* :mod:`.state` — the ok → firing → resolved state machine and history events.
* :mod:`.notifiers` — generic webhook, Slack-compatible webhook, email over SMTP.
* :mod:`.client` — a small HTTP client for the ``/api/alerts`` routes (the demo and the CLI use it).
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from . import storage as _storage  # noqa: F401  (registers the alerts-0001 migration)

if TYPE_CHECKING:
    from fastapi import FastAPI

    from netra_server.state import Hooks, ServerState

__all__ = ["install"]

log = logging.getLogger("netra_server.alerts")


def evaluation_enabled(settings: object) -> bool:
    """Off with ``netra serve --no-alerts`` (``Settings.alerts = False``) or ``NETRA_ALERTS=off``."""
    if os.environ.get("NETRA_ALERTS", "").strip().lower() in ("off", "0", "false", "no"):
        return False
    return bool(getattr(settings, "alerts", True))


def install(app: FastAPI, hooks: Hooks) -> None:
    """Mount ``/api/alerts`` and run the evaluator while the server runs (called by :func:`netra_server.app.create_app`)."""
    from .api import router
    from .evaluator import AlertEvaluator
    from .model import RuleInput

    app.include_router(router)
    hooks.openapi_models.append(RuleInput)  # the body of POST/PUT /api/alerts/rules
    app.state.netra_alerts = None

    async def start(state: ServerState) -> None:
        if not evaluation_enabled(state.settings):
            log.info("alert evaluation is off in this process")
            return
        tick = float(os.environ.get("NETRA_ALERTS_TICK", "1") or 1)
        evaluator = AlertEvaluator(state.store, tick_seconds=tick)
        app.state.netra_alerts = evaluator
        evaluator.start()

    async def stop(state: ServerState) -> None:
        evaluator = app.state.netra_alerts
        app.state.netra_alerts = None
        if evaluator is not None:
            await evaluator.stop()

    hooks.on_startup.append(start)
    hooks.on_shutdown.append(stop)
