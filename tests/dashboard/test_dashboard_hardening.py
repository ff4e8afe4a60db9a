"""The dashboard under hostile input and its security headers (issue 14, items 3 and 4): bad query
strings answer 400 with a message (never 500/503); every page carries a CSP without inline scripts,
anti-framing, nosniff and a referrer policy, and still works in a real Chromium under that CSP."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from netra_server.security_headers import DASHBOARD_CSP
from netra_server.testing import RunningServer

from .conftest import ARTIFACTS

TID = "0123456789abcdef0123456789abcdef"


def _ui(srv: RunningServer) -> httpx.Client:
    c = httpx.Client(base_url=srv.base_url, timeout=30, follow_redirects=False)
    c.cookies.set("netra_key", srv.api_key, path="/ui")
    return c


BAD_QUERIES = [
    "/ui/traces?after=1.5~" + TID,  # the 500
    "/ui/traces?sort=latency&after=1.5~" + TID,  # the 503
    "/ui/traces?sort=tokens&after=-1~" + TID,
    "/ui/traces?sort=start_time&after=99999999999999999999~" + TID,  # over Int64
    "/ui/traces?sort=cost&after=1" + "0" * 29 + "~" + TID,  # over Decimal(38, 10)
    "/ui/traces?sort=cost&after=0.12345678901~" + TID,
    "/ui/traces?after=abc",
    "/ui/traces?after=1~XYZ",
    "/ui/traces?sort=name",
    "/ui/traces?trace_id=not-a-trace",
    "/ui/traces?user_id=" + "u" * 300,
    "/ui/?range=1y",
    "/ui/sla?tenant=" + "t" * 300,
    "/ui/users?range=%00",
    "/ui/alerts?edit=" + "r" * 100,
]


@pytest.mark.parametrize("path", BAD_QUERIES)
def test_bad_query_strings_answer_400_with_a_message(server: RunningServer, path: str) -> None:
    with _ui(server) as c:
        r = c.get(path)
    assert r.status_code == 400, (path, r.status_code, r.text[:300])
    message = re.search(r'id="bad-query">([^<]+)<', r.text)
    assert message and len(message.group(1)) > 10
    assert "<script" not in r.text.lower()


def test_the_400_page_escapes_what_it_quotes(server: RunningServer) -> None:
    with _ui(server) as c:
        r = c.get("/ui/traces", params={"sort": "<script>alert(1)</script>"})
    assert r.status_code == 400
    assert "<script>alert" not in r.text and "&lt;script&gt;" in r.text


GOOD_QUERIES = [
    "/ui/traces?sort=latency&after=1500000000~" + TID,
    "/ui/traces?sort=cost&after=0.0123~" + TID,
    "/ui/traces?sort=tokens&after=42~" + TID,
    "/ui/traces?sort=start_time&after=1767225600000000000~" + TID,
    "/ui/traces?trace_id=" + TID.upper(),
    "/ui/?range=7d&tenant=apex-legal",
]


@pytest.mark.parametrize("path", GOOD_QUERIES)
def test_good_query_strings_still_work(server: RunningServer, path: str) -> None:
    with _ui(server) as c:
        assert c.get(path).status_code == 200, path


def test_the_next_page_link_of_every_sort_works(server: RunningServer) -> None:
    """The cursors the page writes itself are accepted back, for each sort order."""
    with _ui(server) as c:
        for sort in ("start_time", "latency", "cost", "tokens"):
            first = c.get("/ui/traces", params={"sort": sort, "range": "24h"})
            assert first.status_code == 200
            links = re.findall(r'href="([^"]*after=[^"]*)"', first.text)
            assert links, sort
            nxt = c.get("/ui/traces" + links[0].replace("&amp;", "&"))
            assert nxt.status_code == 200, (sort, links[0], nxt.text[:300])


PAGES = ["/ui/", "/ui/sla", "/ui/traces", "/ui/users", "/ui/alerts", "/ui/login"]


def test_every_dashboard_answer_carries_the_security_headers(server: RunningServer) -> None:
    with _ui(server) as c:
        answers = [c.get(p) for p in PAGES] + [c.get("/ui/static/netra.js"), c.get("/ui/traces?sort=bad"),
                                                c.get("/ui/traces/" + TID)]
        c.cookies.clear()
        answers.append(c.get("/ui/"))  # the redirect to the login page
    for r in answers:
        h = r.headers
        assert h["content-security-policy"] == DASHBOARD_CSP, r.url
        assert "script-src 'self'" in h["content-security-policy"] and "unsafe-inline'; " not in h[
            "content-security-policy"].split("style-src-attr")[0]
        assert "frame-ancestors 'none'" in h["content-security-policy"]
        assert h["x-frame-options"] == "DENY"
        assert h["x-content-type-options"] == "nosniff"
        assert h["referrer-policy"] == "same-origin"
    api = httpx.get(server.base_url + "/api/me", headers=server.headers)
    assert api.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert api.headers["x-content-type-options"] == "nosniff"


def test_no_page_has_an_inline_script_or_event_handler(server: RunningServer) -> None:
    with _ui(server) as c:
        for p in PAGES + ["/ui/traces?sort=latency"]:
            text = c.get(p).text
            for tag in re.findall(r"<script\b[^>]*>", text, flags=re.I):
                assert 'src="/ui/static/' in tag, (p, tag)
            assert not re.search(r"\son[a-z]+\s*=", text, flags=re.I), p
            assert "javascript:" not in text.lower(), p


@pytest.mark.browser
@pytest.mark.slow
def test_the_dashboard_works_in_chromium_under_its_csp(browser: Any, server: RunningServer) -> None:
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    page.goto(server.base_url + "/ui/")
    page.fill("#api_key", server.api_key)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/ui/(\?.*)?$"))
    # the chart and the bars (sized by inline style attributes) render
    assert page.locator("#cost-chart rect.bar").count() >= 1
    widths = [b.bounding_box()["width"] for b in page.locator(".hbar span").all()]
    assert widths and max(widths) > 10
    page.screenshot(path=str(ARTIFACTS / "10-csp-overview.png"), full_page=True)
    # netra.js runs: the tenant select submits itself (a script from 'self')
    page.select_option("#tenant-select", "apex-legal")
    page.wait_for_url(re.compile(r"tenant=apex-legal"))
    page.click("[data-nav=traces]")
    page.locator("a.trace-link").first.click()
    page.wait_for_url(re.compile(r"/ui/traces/[0-9a-f]{32}"))
    bars = [b.bounding_box()["width"] for b in page.locator(".wf-bar").all()]
    assert bars and max(bars) > 100  # the root span's bar spans the track
    page.keyboard.press("e")  # netra.js: expand all, then collapse all
    assert page.locator("#waterfall details.span[open]").count() >= 3
    page.screenshot(path=str(ARTIFACTS / "11-csp-waterfall.png"), full_page=True)
    page.keyboard.press("c")
    assert page.locator("#waterfall details.span[open]").count() == 0
    page.click("[data-nav=alerts]")
    page.fill("input[name=name]", "csp check")
    page.fill("input[name=threshold]", "2500")
    page.click("#save-rule")
    page.wait_for_url(re.compile(r"/ui/alerts$"))
    assert page.locator("#rule-table tr", has_text="csp check").count() == 1
    page.click("[data-nav=sla]")
    page.screenshot(path=str(ARTIFACTS / "12-csp-sla.png"), full_page=True)
    # a form post under Referrer-Policy same-origin still carries the Origin the CSRF check wants
    page.click("#logout")
    page.wait_for_url(re.compile(r"/ui/login"))
    violations = [m for m in console if "Content Security Policy" in m or "Refused to" in m]
    assert violations == [], violations
    context.close()


def test_fuzzed_query_strings_never_answer_5xx(server: RunningServer) -> None:
    """Hypothesis: any value of any parameter the pages read, on every page: 200 or 400, never 5xx."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st

    names = ["after", "sort", "range", "tenant", "user_id", "session_id", "trace_id", "edit"]
    cursorish = st.builds(
        lambda v, t: f"{v}~{t}",
        st.one_of(st.integers(min_value=-(2**70), max_value=2**70).map(str),
                  st.decimals(allow_nan=True, allow_infinity=True).map(str), st.text(max_size=12)),
        st.one_of(st.just(TID), st.text(alphabet="0123456789abcdefABCDEF", max_size=40)),
    )
    value = st.one_of(st.text(max_size=300), cursorish, st.sampled_from(["latency", "cost", "tokens", "7d", TID]))
    params = st.dictionaries(st.sampled_from(names), value, max_size=4)
    pages = st.sampled_from(["/ui/", "/ui/sla", "/ui/traces", "/ui/users", "/ui/alerts", "/ui/traces/" + TID])

    with _ui(server) as c:
        @settings(max_examples=150, deadline=None, database=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(page=pages, query=params)
        def run(page: str, query: dict[str, str]) -> None:
            r = c.get(page, params=query)
            assert r.status_code in (200, 400, 404), (page, query, r.status_code, r.text[:300])

        run()
