"""The dashboard's Credits page over HTTP with the login cookie, against a real server."""

from __future__ import annotations

import uuid

from netra_server.testing import RunningServer

from netra.credits import CreditsClient


def test_credits_page_lists_accounts_and_shows_a_tenants_ledger_and_balance(netra_server: RunningServer) -> None:
    t, other = f"t-{uuid.uuid4().hex[:8]}", f"o-{uuid.uuid4().hex[:8]}"
    with CreditsClient(netra_server.base_url, netra_server.api_key) as c:
        c.grant(t, "12.5", note="April <plan>")
        c.confirm(c.reserve(t, "2"), amount="1.25")
        c.grant(other, "3", note="other tenant's plan")
    with netra_server.client(cookies={"netra_key": netra_server.api_key}) as http:
        page = http.get("/ui/credits")
        assert page.status_code == 200 and t in page.text and other in page.text
        assert 'data-nav="credits"' in page.text
        one = http.get("/ui/credits", params={"tenant": t, "range": "24h"}).text
        assert 'id="credit-ledger"' in one and "April &lt;plan&gt;" in one  # escaped
        assert "<polyline" in one and "11.25 USD" in one  # balance after the confirmation
        assert [k in one for k in ("grant", "reservation", "confirmation", "release")] == [True] * 4
    limited = netra_server.create_key("read", tenant_id=t)
    with netra_server.client(cookies={"netra_key": limited}) as http:
        mine = http.get("/ui/credits", params={"tenant": other}).text
        assert "other tenant&#39;s plan" not in mine and "other tenant's plan" not in mine and "April" in mine
    with netra_server.client() as http:
        assert http.get("/ui/credits", follow_redirects=False).status_code == 303  # no cookie: login
