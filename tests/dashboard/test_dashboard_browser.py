"""The dashboard in a real browser: log in, switch tenants, open a trace's waterfall, create an alert
rule, see SLA breaches; a tenant-limited key sees only its tenant. Screenshots go to
test-artifacts/dashboard/."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from netra_server.alerts.client import AlertsClient
from netra_server.alerts.storage import AlertStorage
from netra_server.testing import RunningServer

from .conftest import ARTIFACTS, TRACES_PER_TENANT

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _page(browser: Any) -> Any:
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    return context.new_page()


def _login(page: Any, srv: RunningServer, key: str) -> None:
    page.goto(srv.base_url + "/ui/")
    assert "/ui/login" in page.url
    page.fill("#api_key", key)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/ui/(\?.*)?$"))


# `browser` before `server`: without Chromium the test skips (or fails in CI) before a server starts
def test_login_overview_tenant_switch_waterfall_alert_rule(browser: Any, server: RunningServer) -> None:
    page = _page(browser)
    page.goto(server.base_url + "/ui/traces")
    assert "/ui/login" in page.url
    page.screenshot(path=str(ARTIFACTS / "01-login.png"))
    page.fill("#api_key", "nk_000000000000_not-a-real-key-at-all")
    page.click("button[type=submit]")
    assert "not valid" in page.locator(".error").inner_text()

    page.fill("#api_key", server.api_key)
    page.click("button[type=submit]")
    page.wait_for_url("**/ui/traces")  # back where the user wanted to go
    cookie = next(c for c in page.context.cookies() if c["name"] == "netra_key")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

    # overview, all tenants
    page.click("[data-nav=overview]")
    assert page.locator("#total-requests").inner_text() == str(3 * TRACES_PER_TENANT)
    assert page.locator("#total-sessions").inner_text() == str(3 * 10)
    assert page.locator("#by-tenant tbody tr").count() == 3
    assert page.locator("#cost-chart rect.bar").count() >= 24
    all_cost = page.locator("#total-cost").inner_text()
    page.screenshot(path=str(ARTIFACTS / "02-overview-all.png"), full_page=True)

    # the trace list pages through all 90 traces, 50 at a time
    page.click("[data-nav=traces]")
    first = {a.get_attribute("href") for a in page.locator("a.trace-link").all()}
    assert len(first) == 50
    page.click("#next-page")
    second = {a.get_attribute("href") for a in page.locator("a.trace-link").all()}
    assert len(second) == 3 * TRACES_PER_TENANT - 50 and not first & second
    assert page.locator("#next-page").count() == 0
    page.click("[data-nav=overview]")

    # switch tenant: every view follows
    page.select_option("#tenant-select", "apex-legal")
    page.wait_for_url("**tenant=apex-legal**")
    assert page.locator("#total-requests").inner_text() == str(TRACES_PER_TENANT)
    assert page.locator("#total-cost").inner_text() != all_cost
    assert page.locator("#by-tenant").count() == 0
    assert [c.inner_text() for c in page.locator("#by-model tbody td.name").all()][0].startswith("gpt-4o")
    assert {c.inner_text().split("\n")[0] for c in page.locator("#by-user tbody td.name").all()} == {"ava", "ben"}
    page.screenshot(path=str(ARTIFACTS / "03-overview-apex-legal.png"), full_page=True)

    page.click("[data-nav=traces]")
    assert "tenant=apex-legal" in page.url
    rows = page.locator("#trace-list tbody tr")
    assert rows.count() == TRACES_PER_TENANT
    assert {r.locator("td").nth(2).inner_text() for r in rows.all()} == {"apex-legal"}
    page.select_option("select[name=sort]", "latency")
    page.click("#trace-filters button[type=submit]")
    page.wait_for_url("**sort=latency**")
    page.screenshot(path=str(ARTIFACTS / "04-traces.png"), full_page=True)

    # the slowest trace's waterfall
    page.locator("a.trace-link").first.click()
    page.wait_for_url(re.compile(r"/ui/traces/[0-9a-f]{32}"))
    spans = page.locator("#waterfall details.span")
    assert spans.count() == 3
    assert [int(s.get_attribute("data-depth")) for s in spans.all()] == [0, 1, 1]
    root_subtree = spans.nth(0).locator(".subtree").inner_text()
    llm_cost = spans.nth(2).locator("summary .num").nth(1).inner_text()
    assert root_subtree == llm_cost == page.locator("#trace-cost").inner_text()  # counted once, rolled up
    spans.nth(2).locator("summary").click()
    detail = spans.nth(2).locator(".span-detail")
    assert "gen_ai.usage.input_tokens" in detail.inner_text()
    assert "gen_ai.choice" in detail.inner_text()
    page.screenshot(path=str(ARTIFACTS / "05-waterfall.png"), full_page=True)

    # create an alert rule on the page
    page.click("[data-nav=alerts]")
    page.fill("input[name=name]", "apex-legal SLA")
    page.select_option("select[name=scope]", "trace")
    page.select_option("select[name=metric]", "latency")
    page.select_option("select[name=aggregation]", "p95")
    page.fill("input[name=tenant]", "apex-legal")
    page.select_option("select[name=op]", ">")
    page.fill("input[name=threshold]", "2000")
    page.fill("input[name=window]", "300")
    page.fill("input[name=interval]", "60")
    page.fill("input[name=webhook]", "http://127.0.0.1:9/hook")
    page.click("#save-rule")
    page.wait_for_url("**/ui/alerts")
    row = page.locator("#rule-table tbody tr").first
    assert "apex-legal SLA" in row.inner_text()
    assert "p95 latency of traces where tenant_id = apex-legal over 5m > 2,000 ms" in row.inner_text()
    with AlertsClient(server.base_url, server.api_key) as client:
        [rule] = client.list_rules()
        assert rule["filters"] == [{"field": "tenant_id", "op": "=", "value": "apex-legal"}]
        # the URL is a write-only secret: read back masked, stored as given
        assert rule["contact_points"] == [{"type": "webhook", "url": "http://127.0.0.1:9/********", "headers": {}}]
    assert server.store is not None
    stored = AlertStorage(server.store).get_rule(server.project_id, rule["id"])
    assert stored is not None and stored.contact_points[0].url == "http://127.0.0.1:9/hook"  # type: ignore[union-attr]
    # a bad threshold is refused with a message, nothing stored
    page.fill("input[name=name]", "broken")
    page.fill("input[name=threshold]", "fast")
    page.click("#save-rule")
    assert "condition.threshold" in page.locator("#form-error").inner_text()
    page.screenshot(path=str(ARTIFACTS / "06-alerts.png"), full_page=True)

    # edit it on the page
    page.goto(server.base_url + f"/ui/alerts?edit={rule['id']}")
    page.fill("input[name=threshold]", "2500")
    page.click("#save-rule")
    page.wait_for_url("**/ui/alerts")
    assert "> 2,500 ms" in page.locator("#rule-table tbody tr").first.inner_text()
    page.goto(server.base_url + f"/ui/alerts?edit={rule['id']}")
    page.fill("input[name=threshold]", "2000")
    page.click("#save-rule")
    page.wait_for_url("**/ui/alerts")

    # SLA: the rule is apex-legal's target; its breaches are listed
    page.click("[data-nav=sla]")
    page.select_option("#tenant-select", "")
    page.wait_for_url(re.compile(r"/ui/sla"))
    apex_row = page.locator("#sla-table tr[data-tenant=apex-legal]")
    assert "≤ 2,000 ms" in apex_row.inner_text() and "apex-legal SLA" in apex_row.inner_text()
    assert "no target" in page.locator("#sla-table tr[data-tenant=techstart-inc]").inner_text()
    breaches = page.locator("#breaches tbody tr")
    assert breaches.count() > 0
    for b in breaches.all():
        assert b.locator("td").nth(1).inner_text() == "apex-legal"
        ms = b.locator("td").nth(3).inner_text()
        assert ms.endswith(" s") and float(ms[:-2]) > 2.0
    page.screenshot(path=str(ARTIFACTS / "07-sla.png"), full_page=True)

    # delete the rule on the page (accepting the confirm dialog)
    page.click("[data-nav=alerts]")
    page.once("dialog", lambda d: d.accept())
    page.locator("#rule-table button.danger").first.click()
    page.wait_for_url("**/ui/alerts")
    assert "No alert rules yet" in page.locator("#rule-table").inner_text()

    page.click("#logout")
    page.wait_for_url("**/ui/login")
    page.goto(server.base_url + "/ui/")
    assert "/ui/login" in page.url
    page.context.close()


def test_tenant_limited_key_sees_only_its_tenant(browser: Any, server: RunningServer) -> None:
    key = server.create_key("read", tenant_id="stratex-consulting", name="stratex portal")
    with server.client() as c:
        body = {"filters": [{"field": "tenant_id", "operator": "equals", "type": "string", "value": "apex-legal"}],
                "pagination": {"limit": 1}}
        apex_trace = c.post("/sdk/traces", json=body).json()["data"]["data"][0]["id"]
    page = _page(browser)
    _login(page, server, key)
    select = page.locator("#tenant-select")
    assert select.is_disabled()
    assert [o.inner_text() for o in select.locator("option").all()] == ["stratex-consulting"]
    assert page.locator("#total-requests").inner_text() == str(TRACES_PER_TENANT)
    # asking for another tenant in the URL changes nothing
    page.goto(server.base_url + "/ui/traces?tenant=apex-legal")
    tenants = {r.locator("td").nth(2).inner_text() for r in page.locator("#trace-list tbody tr").all()}
    assert tenants == {"stratex-consulting"}
    response = page.goto(server.base_url + f"/ui/traces/{apex_trace}")
    assert response is not None and response.status == 404
    page.goto(server.base_url + "/ui/users?tenant=apex-legal")
    assert {r.locator("td").first.inner_text() for r in page.locator("#user-table tbody tr").all()} == {"carl", "dana", "eve"}
    page.goto(server.base_url + "/ui/alerts")
    assert page.locator("#rule-form").count() == 0  # read keys cannot change rules
    page.screenshot(path=str(ARTIFACTS / "08-tenant-limited.png"), full_page=True)
    page.context.close()


def test_form_posts_need_the_csrf_token(server: RunningServer) -> None:
    with httpx.Client(base_url=server.base_url, cookies={"netra_key": server.api_key}) as c:
        r = c.post("/ui/alerts", data={"name": "x", "metric": "latency", "op": ">", "threshold": "1",
                                       "window": "60", "interval": "60", "scope": "span", "aggregation": "p95"})
        assert r.status_code == 403
        r = c.post("/ui/alerts", data={"csrf": "x"}, headers={"origin": "http://evil.example"})
        assert r.status_code == 403 and "cross-origin" in r.text
        assert c.get("/ui/").status_code == 200
    with httpx.Client(base_url=server.base_url, cookies={"netra_key": "nk_000000000000_wrongwrongwrongwrongwrong"}) as c:
        r = c.get("/ui/")
        assert r.status_code == 303 and r.headers["location"].startswith("/ui/login")


def test_trace_page_of_an_id_with_a_slash_is_the_dashboards_404(server: RunningServer) -> None:
    with httpx.Client(base_url=server.base_url, cookies={"netra_key": server.api_key}) as c:
        r = c.get("/ui/traces/abc%2Fdef")
        assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
        assert "Trace not found" in r.text and "abc/def" in r.text
        # an id with '/' in a query string reaches the page too (and matches nothing)
        r = c.get("/ui/traces", params={"user_id": "org/team", "session_id": "a/b?c"})
        assert r.status_code == 200 and 'value="org/team"' in r.text
