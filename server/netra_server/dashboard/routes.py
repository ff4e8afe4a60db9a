"""The dashboard's pages (server-rendered HTML under ``/ui``).

Login: the user pastes an API key; the key itself is kept in an ``HttpOnly``, ``SameSite=Strict``
cookie (``Secure`` over HTTPS) scoped to ``/ui``, and every page verifies it exactly like the API
verifies ``x-api-key`` — same project, same tenant limit, a revoked key stops working within the
server's key cache time. Form posts also carry a CSRF token (an HMAC of the key id with a server
secret) and must come from the same origin. Those checks, and the query string's, are in
:mod:`.guards`; this module has the pages and renders them.
"""

from __future__ import annotations

import os
import time
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import ValidationError

from netra_server.alerts.api import evaluator_of, rule_json, visible
from netra_server.alerts.model import (
    AGGREGATIONS,
    FILTER_FIELDS,
    METRICS,
    AlertRule,
    RuleError,
    RuleInput,
    format_value,
    mask_url,
    redact_urls,
    restore_secrets,
    validation_message,
)
from netra_server.alerts.storage import AlertStorage, BrokenRule
from netra_server.auth import AuthContext, check_key
from netra_server.deps import state_of
from netra_server.state import ServerState
from netra_server.store import TraceQuery, TraceSummary
from netra_server.trace_tree import span_tree

from . import views
from .guards import COOKIE, TRACE_ID, after_cursor, checked_form, client_of, csrf_token, page_auth

__all__ = ["router"]

router = APIRouter(prefix="/ui", include_in_schema=False)
_HERE = Path(__file__).parent
_env = Environment(loader=FileSystemLoader(_HERE / "templates"), autoescape=select_autoescape(["html"]))
_env.filters["money"] = views.fmt_money
_env.filters["duration"] = views.fmt_duration_ns
_env.filters["ts"] = views.fmt_ts_ns
_env.filters["show"] = views.show_value
_env.filters["redact"] = redact_urls
_env.filters["metric_value"] = lambda v, metric: format_value(metric, v)
_env.filters["epoch"] = lambda t: time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)) if t else "—"
_env.globals["ranges"] = list(views.RANGES.values())


async def _tenants(request: Request, state: ServerState, ctx: AuthContext) -> list[str]:
    """Tenants seen in the last 30 days (cached a minute per project, per app); a limited key sees only its own."""
    if ctx.tenant_id is not None:
        return [ctx.tenant_id]
    cache: dict[str, tuple[float, list[str]]] = request.app.state.netra_dashboard_tenants
    hit = cache.get(ctx.project_id)
    if hit is not None and hit[0] > time.monotonic():
        return hit[1]
    groups = await state.store.run(
        state.store.usage_summary, ctx.project_id, "tenant", views.window_of(views.RANGES["30d"]), limit=500
    )
    tenants = sorted(g.key for g in groups if g.key)
    cache[ctx.project_id] = (time.monotonic() + 60, tenants)
    return tenants


def _query(request: Request, ctx: AuthContext) -> tuple[str | None, views.TimeRange]:
    """The selected tenant (locked to the key's tenant when it is limited) and time range."""
    q = request.query_params
    tenant = ctx.tenant_id or (q.get("tenant") or None)
    return tenant, views.time_range(q.get("range"))


async def _page(
    request: Request, state: ServerState, ctx: AuthContext, template: str, active: str, **context: Any
) -> HTMLResponse:
    tenant, rng = _query(request, ctx)
    project = await state.store.run(state.store.get_project, ctx.project_id)
    html = _env.get_template(template).render(
        request=request,
        ctx=ctx,
        project=project,
        active=active,
        tenant=tenant,
        range=rng,
        tenants=await _tenants(request, state, ctx),
        csrf=await csrf_token(state, ctx),
        keep=lambda **kw: _keep(request, **kw),
        **context,
    )
    return HTMLResponse(html, headers={"cache-control": "no-store"})


def _keep(request: Request, **changes: Any) -> str:
    """The current query string with ``changes`` (None removes a key)."""
    params = dict(request.query_params)
    for k, v in changes.items():
        if v is None or v == "":
            params.pop(k, None)
        else:
            params[k] = str(v)
    return "?" + urlencode(params) if params else "?"


# -- login ---------------------------------------------------------------------------------------------


def _next(target: str | None) -> str:
    """Where to go after logging in: a dashboard path only (no open redirect)."""
    if not target or not target.startswith("/ui/") or target.startswith("/ui//") or "\\" in target:
        return "/ui/"
    return target


@router.get("/login")
async def login_page(request: Request) -> HTMLResponse:
    return _login_html(_next(request.query_params.get("next")))


def _login_html(target: str, error: str = "") -> HTMLResponse:
    html = _env.get_template("login.html").render(error=error, next=target)
    return HTMLResponse(html, status_code=401 if error else 200)


@router.post("/login")
async def login(request: Request) -> Response:
    state = state_of(request)
    origin = request.headers.get("origin")
    if origin and origin.rstrip("/") != f"{request.url.scheme}://{request.url.netloc}":
        return HTMLResponse("<h1>403</h1><p>cross-origin login refused</p>", status_code=403)
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    key = (form.get("api_key") or [""])[0].strip()
    target = _next((form.get("next") or [""])[0])
    ctx = await check_key(state.keys, key, client_of(request, state)) if key else None
    if ctx is None:
        return _login_html(target, "That API key is not valid (unknown or revoked).")
    if not ctx.can_read:
        return _login_html(target, f"That key has role {ctx.role!r}; use a read or admin key.")
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE, key, httponly=True, samesite="strict", secure=request.url.scheme == "https", path="/ui",
        max_age=12 * 3600,
    )
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path="/ui")
    return response


# -- overview -------------------------------------------------------------------------------------------


@router.get("/")
async def overview(request: Request) -> HTMLResponse:
    state, ctx = await page_auth(request)
    tenant, rng = _query(request, ctx)
    window = views.window_of(rng)
    store, pid = state.store, ctx.project_id
    totals = await store.run(store.usage_totals, pid, window, tenant_id=tenant)
    series = await store.run(store.usage_summary, pid, rng.bucket, window, tenant_id=tenant, limit=5000)
    by_model = await store.run(store.usage_summary, pid, "model", window, tenant_id=tenant, limit=20)
    by_user = await store.run(store.usage_summary, pid, "user", window, tenant_id=tenant, limit=20)
    by_tenant = [] if tenant else await store.run(store.usage_summary, pid, "tenant", window, limit=50)
    return await _page(
        request, state, ctx, "overview.html", "overview",
        totals=totals, chart=views.cost_chart(rng, window, series), by_model=by_model, by_user=by_user,
        by_tenant=by_tenant, max_cost=lambda groups: max((g.totals.total_cost for g in groups), default=Decimal(0)),
    )


# -- SLA ----------------------------------------------------------------------------------------------


def _targets(rules: list[AlertRule], configured: dict[str, float]) -> dict[str, tuple[float, str, str]]:
    """tenant -> (target ms, percentile, where it comes from): an enabled latency rule on the tenant
    (``>`` a threshold) wins over a configured target (p95)."""
    out = {t: (ms, "p95", "configured") for t, ms in configured.items()}
    for r in rules:
        tenant = r.tenant_filter()
        if tenant and r.enabled and r.metric == "latency" and r.condition.op in (">", ">="):
            agg = r.aggregation if r.aggregation in ("p50", "p95", "p99") else "p95"
            out[tenant] = (r.condition.threshold, agg, f"alert rule “{r.name}”")
    return out


def configured_targets() -> dict[str, float]:
    """``NETRA_SLA_TARGETS="apex-legal=2000,stratex-consulting=3000"`` (ms, p95)."""
    out: dict[str, float] = {}
    for part in os.environ.get("NETRA_SLA_TARGETS", "").split(","):
        name, _, ms = part.partition("=")
        try:
            out[name.strip()] = float(ms)
        except ValueError:
            continue
    return out


@router.get("/sla")
async def sla(request: Request) -> HTMLResponse:
    state, ctx = await page_auth(request)
    tenant, rng = _query(request, ctx)
    window = views.window_of(rng)
    store = state.store
    stats = await store.run(store.latency_stats, ctx.project_id, window, tenant_id=tenant, scope="root")
    rules = [r for r in await store.run(AlertStorage(store).list_rules, ctx.project_id) if visible(ctx, r)]
    targets = _targets(rules, configured_targets())
    rows = []
    breaches: list[tuple[str, tuple[float, str, str], TraceSummary]] = []
    for s in stats:
        target = targets.get(s.tenant_id)
        measured = {"p50": s.p50_ms, "p95": s.p95_ms, "p99": s.p99_ms}
        ok = None if target is None else measured[target[1]] <= target[0]
        rows.append({"stats": s, "target": target, "ok": ok})
        if target is not None:
            page = await store.run(
                store.list_traces, ctx.project_id,
                TraceQuery(window=window, tenant_id=s.tenant_id, sort_field="latency", sort_order="desc", limit=25),
            )
            slow = [t for t in page.items if t.latency_ns / 1e6 > target[0]]
            breaches.extend((s.tenant_id, target, t) for t in slow)
    breaches.sort(key=lambda b: b[2].start_ns, reverse=True)
    rule_ids = [r.id for r in rules if r.metric == "latency"]
    events = (
        await store.run(AlertStorage(store).events, ctx.project_id, rule_ids=rule_ids, limit=50) if rule_ids else []
    )
    return await _page(request, state, ctx, "sla.html", "sla", rows=rows, breaches=breaches[:100], events=events)


# -- traces -------------------------------------------------------------------------------------------


@router.get("/traces")
async def traces(request: Request) -> HTMLResponse:
    state, ctx = await page_auth(request)
    tenant, rng = _query(request, ctx)
    q = request.query_params
    sort = q.get("sort") or "start_time"
    after = after_cursor(q.get("after", ""), sort)
    trace_id = (q.get("trace_id") or "").strip().lower() or None
    query = TraceQuery(
        window=views.window_of(rng), tenant_id=tenant, user_id=q.get("user_id") or None,
        session_id=q.get("session_id") or None, trace_id=trace_id, sort_field=sort,  # type: ignore[arg-type]
        sort_order="desc", after=after, limit=50,
    )
    page = await state.store.run(state.store.list_traces, ctx.project_id, query)
    next_cursor = None
    if page.has_more and page.items:
        last = page.items[-1]
        next_cursor = f"{last.sort_value(query.sort_field)}~{last.trace_id}"
    return await _page(
        request, state, ctx, "traces.html", "traces", page=page, sort=sort, next_cursor=next_cursor,
        filters={"user_id": q.get("user_id", ""), "session_id": q.get("session_id", ""), "trace_id": q.get("trace_id", "")},
        paged=after is not None,
    )


@router.get("/traces/{trace_id:path}")
async def trace_detail(request: Request, trace_id: str) -> HTMLResponse:
    state, ctx = await page_auth(request)
    tid = trace_id.lower()
    spans: list[Any] = []
    truncated = False
    if TRACE_ID.match(tid):
        spans, truncated = await state.store.run(
            state.store.trace_spans, ctx.project_id, tid, tenant_id=ctx.tenant_id, limit=5000
        )
    if not spans:
        html = await _page(request, state, ctx, "trace.html", "traces", trace_id=tid, nodes=[], missing=True)
        html.status_code = 404
        return html
    tree = span_tree(spans)
    return await _page(
        request, state, ctx, "trace.html", "traces", trace_id=tid, nodes=views.waterfall(tree),
        start_ns=tree.start_ns, end_ns=tree.end_ns, total=tree.total, truncated=truncated, missing=False,
        root=tree.nodes[0].span,
    )


# -- users ----------------------------------------------------------------------------------------------


@router.get("/users")
async def users(request: Request) -> HTMLResponse:
    state, ctx = await page_auth(request)
    tenant, rng = _query(request, ctx)
    groups = await state.store.run(
        state.store.usage_summary, ctx.project_id, "user", views.window_of(rng), tenant_id=tenant, limit=500
    )
    return await _page(request, state, ctx, "users.html", "users", groups=groups)


# -- alerts -------------------------------------------------------------------------------------------


async def _alerts_page(
    request: Request, state: ServerState, ctx: AuthContext, *, editing: AlertRule | None = None,
    form: dict[str, Any] | None = None, error: str = "", status: int = 200,
) -> HTMLResponse:
    storage = AlertStorage(state.store)
    loaded, broken = await state.store.run(storage.load_rules, ctx.project_id)
    rules = [r for r in loaded if visible(ctx, r)]
    states = await state.store.run(storage.states, ctx.project_id)
    ev = evaluator_of(request)
    if ev is not None:
        states.update(ev.known_states())
    ids = [r.id for r in rules]
    events = await state.store.run(storage.events, ctx.project_id, rule_ids=ids, limit=100) if ids else []
    deliveries = await state.store.run(storage.deliveries, ctx.project_id, rule_ids=ids) if ids else []
    if form is None:
        form = _form_of(editing) if editing else _form_of(None)
    page = await _page(
        request, state, ctx, "alerts.html", "alerts",
        rules=[rule_json(r, states.get(r.id)) for r in rules], events=events, deliveries=deliveries,
        editing=editing, form=form, error=error, metrics=METRICS, aggregations=AGGREGATIONS,
        filter_fields=FILTER_FIELDS, broken=broken if ctx.tenant_id is None else [],
    )
    page.status_code = status
    return page


def _form_of(rule: AlertRule | None) -> dict[str, Any]:
    """The form fields for a rule (or the defaults of a new one)."""
    if rule is None:
        return {"name": "", "scope": "trace", "metric": "latency", "aggregation": "p95", "op": ">",
                "threshold": "", "window": "300", "interval": "60", "enabled": True, "tenant": "",
                "model": "", "span_name": "", "webhook": "", "slack": "", "email_to": "", "smtp": "", "email_from": ""}
    by_field = {f.field: f.value for f in rule.filters if f.op == "="}
    email = next((c for c in rule.contact_points if c.type == "email"), None)
    return {
        "name": rule.name, "scope": rule.scope, "metric": rule.metric, "aggregation": rule.aggregation,
        "op": rule.condition.op, "threshold": f"{rule.condition.threshold:g}", "window": str(rule.window_seconds),
        "interval": str(rule.interval_seconds), "enabled": rule.enabled, "tenant": by_field.get("tenant_id", ""),
        "model": by_field.get("model", ""), "span_name": by_field.get("span_name", ""),
        # secrets are write-only: the form shows the masked URL; sent back unchanged it keeps the stored one
        "webhook": next((mask_url(c.url) for c in rule.contact_points if c.type == "webhook"), ""),
        "slack": next((mask_url(c.url) for c in rule.contact_points if c.type == "slack"), ""),
        "email_to": ", ".join(email.to) if email is not None and email.type == "email" else "",
        "smtp": f"{email.smtp_host}:{email.smtp_port}" if email is not None and email.type == "email" else "",
        "email_from": email.from_addr if email is not None and email.type == "email" else "",
    }


def _rule_from_form(raw: dict[str, list[str]], existing: AlertRule | None) -> RuleInput:
    f = {k: v[0].strip() for k, v in raw.items()}
    shown = (("tenant_id", "tenant"), ("model", "model"), ("span_name", "span_name"))
    filters: list[Any] = [{"field": name, "op": "=", "value": f[key]} for name, key in shown if f.get(key)]
    if existing is not None:  # keep filters the form does not show (e.g. !=, user_id)
        filters += [fl.model_dump() for fl in existing.filters if fl.field not in dict(shown) or fl.op != "="]
    contacts: list[dict[str, Any]] = []
    if f.get("webhook"):
        contacts.append({"type": "webhook", "url": f["webhook"]})
    if f.get("slack"):
        contacts.append({"type": "slack", "url": f["slack"]})
    if f.get("email_to"):
        host, _, port = (f.get("smtp") or "localhost:25").rpartition(":")
        contacts.append({
            "type": "email", "smtp_host": host or f.get("smtp") or "localhost", "smtp_port": int(port) if port.isdigit() else 25,
            "from_addr": f.get("email_from") or "netra@localhost", "to": [a.strip() for a in f["email_to"].split(",") if a.strip()],
        })
    if existing is not None:  # keep contact settings the form does not show (headers, SMTP auth)
        old = {x.type: x.model_dump() for x in existing.contact_points}
        contacts = [{**old.get(c["type"], {}), **c} for c in contacts]
    body = {
        "name": f.get("name", ""), "scope": f.get("scope"), "metric": f.get("metric"),
        "aggregation": None if f.get("metric") in ("error_rate", "request_count") else f.get("aggregation"),
        "filters": filters, "condition": {"op": f.get("op"), "threshold": f.get("threshold")},
        "window_seconds": f.get("window"), "interval_seconds": f.get("interval"), "contact_points": contacts,
        "enabled": "enabled" in raw,
    }
    return restore_secrets(RuleInput.model_validate(body), existing)


@router.get("/alerts")
async def alerts(request: Request) -> HTMLResponse:
    state, ctx = await page_auth(request)
    editing = None
    rule_id = request.query_params.get("edit")
    if rule_id:
        rule = await state.store.run(AlertStorage(state.store).get_rule, ctx.project_id, rule_id)
        editing = rule if rule is not None and visible(ctx, rule) else None
    return await _alerts_page(request, state, ctx, editing=editing)


@router.post("/alerts")
async def save_alert(request: Request) -> Response:
    state, ctx = await page_auth(request)
    raw = await checked_form(request, state, ctx)
    if not ctx.is_admin:
        return await _alerts_page(request, state, ctx, error="Changing alert rules needs an admin key.", status=403)
    storage = AlertStorage(state.store)
    rule_id = (raw.get("rule_id") or [""])[0]
    existing = await state.store.run(storage.get_rule, ctx.project_id, rule_id) if rule_id else None
    if rule_id and (existing is None or not visible(ctx, existing)):
        return await _alerts_page(request, state, ctx, error=f"No alert rule {rule_id}.", status=404)
    try:
        rule = _rule_from_form(raw, existing)
    except (ValidationError, RuleError, ValueError) as exc:
        message = validation_message(exc) if isinstance(exc, ValidationError) else str(exc)
        form = {k: v[0] for k, v in raw.items()} | {"enabled": "enabled" in raw}
        return await _alerts_page(request, state, ctx, editing=existing, form=form, error=message, status=400)
    if existing is None:
        await state.store.run(storage.create_rule, ctx.project_id, rule)
    else:
        await state.store.run(storage.update_rule, existing, rule)
    return RedirectResponse("/ui/alerts", status_code=303)


@router.post("/alerts/{rule_id}/delete")
async def delete_alert(request: Request, rule_id: str) -> Response:
    state, ctx = await page_auth(request)
    await checked_form(request, state, ctx)
    if not ctx.is_admin:
        return await _alerts_page(request, state, ctx, error="Deleting alert rules needs an admin key.", status=403)
    storage = AlertStorage(state.store)
    rule = await state.store.run(storage.get_any_rule, ctx.project_id, rule_id)
    if isinstance(rule, BrokenRule) or (rule is not None and visible(ctx, rule)):  # admin keys see every rule
        await state.store.run(storage.delete_rule, rule)
    return RedirectResponse("/ui/alerts", status_code=303)
