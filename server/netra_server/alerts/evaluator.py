"""The alert evaluator: an asyncio task in the server process.

Every ``tick`` seconds it reloads the rules (cheap: a small table) and evaluates each enabled rule
whose ``interval_seconds`` has passed since its last evaluation: it measures the metric over the
rule's window, steps the state machine, records a history event on a transition, and tells every
contact point once. A notification that fails is logged and retried on the rule's next evaluations
(for up to a day, at most 20 attempts per contact point); nothing a notifier or the store does stops
the loop.

With several server processes on one ClickHouse store, run the evaluator in exactly one of them
(``netra serve --no-alerts`` on the others, or ``NETRA_ALERTS=off``): see ``docs/dashboard.md``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from netra_server.store import Store

from .model import AlertRule
from .notifiers import NotifyError, contact_label, notify
from .state import AlertEvent, RuleState, step
from .storage import MAX_ATTEMPTS, RETRY_SECONDS, AlertStorage, contact_key

__all__ = ["AlertEvaluator"]

log = logging.getLogger("netra_server.alerts")


class AlertEvaluator:
    """Evaluates the alert rules of every project on one store."""

    def __init__(
        self, store: Store, *, tick_seconds: float = 1.0, clock: Callable[[], float] = time.time
    ) -> None:
        self.storage = AlertStorage(store)
        self.store = store
        self.tick_seconds = tick_seconds
        self.clock = clock
        self._states: dict[str, RuleState] | None = None
        self._task: asyncio.Task[None] | None = None
        #: Rules with a notification still to retry (None: not known yet, check every rule once).
        self._retry: set[str] | None = None
        self._lock = asyncio.Lock()
        #: Stored rules that do not load, already logged (id -> updated_at): reported once, skipped.
        self.broken: dict[str, float] = {}

    # -- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="netra-alert-evaluator")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_due()
            except asyncio.CancelledError:
                raise
            except Exception:  # the store was unreachable, a bug: log, keep evaluating
                log.exception("alert evaluation failed; retrying in %.0f s", self.tick_seconds)
            await asyncio.sleep(self.tick_seconds)

    # -- evaluation ----------------------------------------------------------------------------------

    def known_states(self) -> dict[str, RuleState]:
        """The evaluator's latest state of each rule it evaluated (with the last measured value)."""
        return dict(self._states or {})

    async def run_due(self, now: float | None = None, *, force: bool = False) -> list[AlertEvent]:
        """Evaluate the rules that are due at ``now`` (all enabled rules with ``force``); returns the
        events recorded. Tests and ``POST /api/alerts/evaluate`` call this directly."""
        async with self._lock:
            now = self.clock() if now is None else now
            if self._states is None:
                self._states = await self.store.run(self.storage.states)
            rules, broken = await self.store.run(self.storage.load_rules)
            for b in broken:
                if self.broken.get(b.id) != b.updated_at:
                    log.error(
                        "alert rule %s of project %s does not load and is skipped (%s); delete it with "
                        "`netra alerts delete %s` or DELETE /api/alerts/rules/%s", b.id, b.project_id, b.error, b.id, b.id,
                    )
            self.broken = {b.id: b.updated_at for b in broken}
            events: list[AlertEvent] = []
            for rule in rules:
                if not rule.enabled:
                    continue
                state = self._states.get(rule.id) or RuleState(rule_id=rule.id)
                if (
                    not force
                    and state.last_evaluated
                    and now - state.last_evaluated < rule.interval_seconds - 1e-3
                ):
                    continue
                try:
                    event = await self._evaluate(rule, state, now)
                except Exception:
                    log.exception("alert rule %s (%s) could not be evaluated", rule.id, rule.name)
                    continue
                if event is not None:
                    events.append(event)
            return events

    async def _evaluate(self, rule: AlertRule, state: RuleState, now: float) -> AlertEvent | None:
        assert self._states is not None
        value = await self.store.run(self.storage.measure, rule, now)
        new_state, event = step(rule, state, value, now)
        if event is not None:
            # history first: if the process dies before notifying, the retry pass finds the event
            await self.store.run(self.storage.add_event, event)
            await self.store.run(self.storage.put_state, rule.project_id, new_state)
            log.info("%s", event.message)
        self._states[rule.id] = new_state
        await self._deliver(rule, now, fresh=event)
        return event

    async def _deliver(self, rule: AlertRule, now: float, fresh: AlertEvent | None) -> None:
        """Send the fresh event, and retry the rule's recent events some contact point missed."""
        if not rule.contact_points or (
            fresh is None and self._retry is not None and rule.id not in self._retry
        ):
            return
        since = now - RETRY_SECONDS
        events = await self.store.run(
            self.storage.events, rule.project_id, rule_id=rule.id, since=since, limit=50
        )
        fresh_id = fresh.id if fresh is not None else ""
        if fresh is not None and all(e.id != fresh_id for e in events):
            events.insert(0, fresh)
        if not events:
            return
        done = await self.store.run(self.storage.deliveries, rule.project_id, rule_id=rule.id, since=since)
        tried = {(d.event_id, d.contact_key): d for d in done}
        failed = False
        for event in sorted(events, key=lambda e: e.at):
            for contact in rule.contact_points:
                key = contact_key(contact)
                previous = tried.get((event.id, key))
                if previous is not None and (previous.ok or previous.attempts >= MAX_ATTEMPTS):
                    continue
                if previous is None and event.id != fresh_id and event.at < rule.updated_at:
                    continue  # a contact point added after the event: do not replay old history to it
                label = contact_label(contact)
                try:
                    await notify(contact, rule, event)
                except NotifyError as exc:
                    log.warning("alert %s (%s) not delivered, will retry: %s", event.id, event.kind, exc)
                    await self.store.run(
                        self.storage.add_delivery, event, key, label, ok=False, error=str(exc)
                    )
                    failed = failed or (previous.attempts if previous else 0) + 1 < MAX_ATTEMPTS
                else:
                    await self.store.run(self.storage.add_delivery, event, key, label, ok=True)
        if failed:
            self._pending().add(rule.id)
        else:
            self._pending().discard(rule.id)

    def _pending(self) -> set[str]:
        if self._retry is None:
            self._retry = set()
        return self._retry
