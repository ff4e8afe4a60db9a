"""Hostile alert rules and the secrets of contact points (issue 14, items 1 and 2), against a real
server: a non-finite threshold is refused; a stored rule that does not load (written straight to the
store, as an older version did) breaks nothing else and can be deleted by the API, the CLI and the
page; contact-point secrets never come back to a reader, and updates keep them without resending."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from netra_server.alerts.cli import main as alerts_cli
from netra_server.alerts.model import MASK
from netra_server.alerts.storage import SQL_PUT_RULE
from netra_server.auth import KeyManager
from netra_server.testing import RunningServer, run_server

from .conftest import WebhookReceiver

SLACK_PATH = "/services/T000/B000/XXXXsecretXXXX"
HOOK_PATH = "/hook/tok_9f8e7d"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with run_server(tmp_path_factory.mktemp("alerts-hostile")) as srv:
        yield srv


def _rule(name: str = "r", threshold: Any = 100, **extra: Any) -> dict[str, Any]:
    return {"name": name, "metric": "latency", "condition": {"op": ">", "threshold": threshold},
            "window_seconds": 60, "interval_seconds": 1, **extra}


@pytest.mark.parametrize("threshold", ["inf", "Infinity", "-inf", "NaN", "nan", "1e999"])
def test_a_non_finite_threshold_is_refused(server: RunningServer, threshold: str) -> None:
    with server.client() as c:
        before = c.get("/api/alerts/rules").json()["data"]
        # as a JSON string, and as the bare token Python's json writes for float('inf')
        r = c.post("/api/alerts/rules", json=_rule(threshold=threshold))
        raw = orjson.dumps(_rule(threshold=0)).replace(b'"threshold":0', b'"threshold":' + threshold.encode())
        r2 = c.post("/api/alerts/rules", content=raw, headers={"content-type": "application/json"})
        assert r.status_code == 400, r.text
        assert "condition.threshold" in r.json()["error"]["message"]
        assert r2.status_code == 400, r2.text
        r3 = c.post("/api/alerts/rules", json=_rule(threshold=1))
        assert r3.status_code == 201
        patched = c.patch(f"/api/alerts/rules/{r3.json()['data']['id']}",
                          json={"condition": {"op": ">", "threshold": threshold}})
        assert patched.status_code == 400, patched.text
        assert c.delete(f"/api/alerts/rules/{r3.json()['data']['id']}").status_code == 200
        assert c.get("/api/alerts/rules").json()["data"] == before


def _write_bad_row(srv: RunningServer, project_id: str, rule_id: str, body: bytes) -> None:
    """What an older version stored for ``threshold: inf`` (null), written straight to the store."""
    assert srv.store is not None
    now = time.time()
    srv.store.command(SQL_PUT_RULE, {"p": project_id, "r": rule_id, "b": body.decode(), "o": "", "c": now,
                                     "u": now, "d": 0, "v": time.time_ns()})


def test_a_stored_rule_that_does_not_load_breaks_nothing_and_can_be_deleted(
    server: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert server.store is not None
    other = server.store.create_project("other")
    other_key, _ = KeyManager(server.store).create_key(other.project_id, role="admin", name="other")
    bad_body = orjson.dumps(_rule("broken", threshold=None))
    _write_bad_row(server, server.project_id, "rul_broken000000001", bad_body)
    _write_bad_row(server, server.project_id, "rul_broken000000002", b"{not json")
    _write_bad_row(server, other.project_id, "rul_broken000000003", bad_body)
    with server.client() as c, server.client(other_key) as o:
        good = c.post("/api/alerts/rules", json=_rule("good", threshold=0)).json()["data"]
        other_good = o.post("/api/alerts/rules", json=_rule("other good", threshold=0)).json()["data"]

        listing = c.get("/api/alerts/rules")
        assert listing.status_code == 200, listing.text
        assert good["id"] in [r["id"] for r in listing.json()["data"]]
        unreadable = {u["id"]: u for u in listing.json()["unreadable"]}
        assert set(unreadable) == {"rul_broken000000001", "rul_broken000000002"}
        assert "threshold" in unreadable["rul_broken000000001"]["error"]

        one = c.get("/api/alerts/rules/rul_broken000000001")
        assert one.status_code == 409 and "does not load" in one.json()["error"]["message"]
        assert c.patch("/api/alerts/rules/rul_broken000000001", json={"enabled": False}).status_code == 409
        assert c.get(f"/api/alerts/rules/{good['id']}").status_code == 200

        # the evaluator evaluates every other rule, of this project and the other one
        ev = c.post("/api/alerts/evaluate")
        assert ev.status_code == 200, ev.text
        assert o.post("/api/alerts/evaluate").status_code == 200
        rules = {r["id"]: r for r in c.get("/api/alerts/rules").json()["data"]}
        assert rules[good["id"]]["state"]["last_evaluated"] is not None
        other_rules = {r["id"]: r for r in o.get("/api/alerts/rules").json()["data"]}
        assert other_rules[other_good["id"]]["state"]["last_evaluated"] is not None

        # the pages render and show it with a way out
        c.cookies.set("netra_key", server.api_key, path="/ui")
        for page in ("/ui/alerts", "/ui/sla"):
            r = c.get(page)
            assert r.status_code == 200, (page, r.text[:500])
        assert "rul_broken000000001" in c.get("/ui/alerts").text
        c.cookies.clear()

        # a tenant-limited key sees none of them
        limited = server.create_key("read", tenant_id="apex-legal")
        with server.client(limited) as lc:
            assert lc.get("/api/alerts/rules").json()["unreadable"] == []
            assert lc.get("/api/alerts/rules/rul_broken000000001").status_code == 404

        # delete: by the API, by the CLI, and a whole rule PUT over the third replaces it
        assert c.delete("/api/alerts/rules/rul_broken000000001").json()["data"] == {
            "id": "rul_broken000000001", "deleted": True}
        code = alerts_cli(["delete", "rul_broken000000002", "--endpoint", server.base_url, "--api-key", server.api_key])
        assert code == 0, capsys.readouterr().err
        put = o.put("/api/alerts/rules/rul_broken000000003", json=_rule("fixed", threshold=5))
        assert put.status_code == 200, put.text
        assert o.get("/api/alerts/rules/rul_broken000000003").json()["data"]["condition"]["threshold"] == 5
        assert c.get("/api/alerts/rules").json()["unreadable"] == []
        assert o.get("/api/alerts/rules").json()["unreadable"] == []
        for rid in (good["id"],):
            c.delete(f"/api/alerts/rules/{rid}")
        for rid in (other_good["id"], "rul_broken000000003"):
            o.delete(f"/api/alerts/rules/{rid}")


def test_a_broken_rule_survives_a_restart_harmlessly(tmp_path: Any) -> None:
    """The same bad row in a server process that is restarted: it still starts, lists, evaluates."""
    with run_server(tmp_path, subprocess=True) as srv, srv.client() as c:
        created = c.post("/api/alerts/rules", json=_rule("to break", threshold=1)).json()["data"]
    # write the bad version while no server owns the data folder (in another process: chDB opens one
    # data folder per process, and this one holds the module's server)
    script = (
        "import sys, time; from netra_server.store import open_store; from netra_server.alerts.storage import SQL_PUT_RULE\n"
        "s = open_store(sys.argv[1]); now = time.time()\n"
        "s.command(SQL_PUT_RULE, {'p': sys.argv[2], 'r': sys.argv[3], 'b': sys.argv[4], 'o': '', 'c': now, 'u': now,"
        " 'd': 0, 'v': time.time_ns()}); s.close()\n"
    )
    body = orjson.dumps(_rule("to break", threshold=None)).decode()
    subprocess.run([sys.executable, "-c", script, srv.settings.resolved_store_url(), srv.project_id, created["id"],
                    body], check=True, timeout=120)
    with run_server(tmp_path, subprocess=True, api_key=srv.api_key) as again, again.client() as c:
        assert [u["id"] for u in c.get("/api/alerts/rules").json()["unreadable"]] == [created["id"]]
        assert c.post("/api/alerts/evaluate").status_code == 200
        assert c.delete(f"/api/alerts/rules/{created['id']}").status_code == 200
        assert c.get("/api/alerts/rules").json() == {"data": [], "unreadable": []}


# -- secrets ----------------------------------------------------------------------------------------


def _secret_rule(webhook_url: str) -> dict[str, Any]:
    body = _rule(
        "secrets", threshold=0, filters=["tenant_id = apex-legal"], metric="request_count",
        contact_points=[
            {"type": "webhook", "url": webhook_url + HOOK_PATH + "?token=qs_secret",
             "headers": {"Authorization": "Bearer hdr_secret", "x-team": "billing"}},
            {"type": "slack", "url": webhook_url + SLACK_PATH},
            {"type": "email", "smtp_host": "127.0.0.1", "smtp_port": 9, "from_addr": "n@example.com",
             "to": ["o@example.com"], "username": "u", "password": "smtp_secret"},
        ],
    )
    body["condition"] = {"op": ">=", "threshold": 0}  # 0 requests >= 0: fires at once, without data
    return body


SECRETS = ("tok_9f8e7d", "qs_secret", "hdr_secret", "XXXXsecretXXXX", "smtp_secret")


def _assert_no_secret(text: str) -> None:
    for s in SECRETS:
        assert s not in text, f"secret {s!r} leaked: {text[:300]}"


def test_contact_point_secrets_are_never_read_back(server: RunningServer, webhook: WebhookReceiver) -> None:
    read_key = server.create_key("read")
    tenant_key = server.create_key("read", tenant_id="apex-legal")
    with server.client() as admin:
        created = admin.post("/api/alerts/rules", json=_secret_rule(webhook.url))
        assert created.status_code == 201
        _assert_no_secret(created.text)
        rid = created.json()["data"]["id"]
        for key in (server.api_key, read_key, tenant_key):
            with server.client(key) as c:
                one, listing = c.get(f"/api/alerts/rules/{rid}"), c.get("/api/alerts/rules")
                assert one.status_code == listing.status_code == 200
                _assert_no_secret(one.text)
                _assert_no_secret(listing.text)
                cps = one.json()["data"]["contact_points"]
                host = webhook.url.removeprefix("http://")
                assert cps[0]["url"] == f"http://{host}/{MASK}"
                assert cps[0]["headers"] == {"Authorization": MASK, "x-team": MASK}
                assert cps[1]["url"] == f"http://{host}/{MASK}"
                assert cps[2]["password"] == MASK

        # the notification still reaches the real URL with the real header
        admin.post("/api/alerts/evaluate")
        deadline = time.monotonic() + 10
        while len(webhook.requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        [sent] = webhook.bodies(HOOK_PATH + "?token=qs_secret")
        assert sent["kind"] == "firing"
        hooked = next(r for r in webhook.requests if r["path"].startswith(HOOK_PATH))
        assert hooked["headers"]["Authorization"] == "Bearer hdr_secret"
        assert webhook.bodies(SLACK_PATH)
        # the history names the contact points without their secrets (the email one failed)
        for key in (server.api_key, tenant_key):
            with server.client(key) as c:
                history = c.get("/api/alerts/history", params={"ruleId": rid})
                assert history.status_code == 200 and history.json()["data"]
                _assert_no_secret(history.text)

        # an update that sends back what it read keeps every secret
        rule = admin.get(f"/api/alerts/rules/{rid}").json()["data"]
        body = {k: rule[k] for k in ("name", "scope", "metric", "aggregation", "filters", "condition",
                                     "window_seconds", "interval_seconds", "contact_points", "enabled")}
        body["name"] = "renamed"
        put = admin.put(f"/api/alerts/rules/{rid}", json=body)
        assert put.status_code == 200, put.text
        patched = admin.patch(f"/api/alerts/rules/{rid}", json={"contact_points": rule["contact_points"],
                                                                  "condition": {"op": ">", "threshold": 1}})
        assert patched.status_code == 200, patched.text
        assert admin.patch(f"/api/alerts/rules/{rid}", json={"enabled": False}).status_code == 200
        assert server.store is not None
        from netra_server.alerts.storage import AlertStorage

        stored = AlertStorage(server.store).get_rule(server.project_id, rid)
        assert stored is not None and stored.name == "renamed"
        dumped = stored.model_dump_json()
        for s in SECRETS:
            assert s in dumped
        # changing a header while keeping the other masked one
        cps = rule["contact_points"]
        cps[0] = {**cps[0], "headers": {"Authorization": "Bearer new_secret", "x-team": MASK}}
        assert admin.patch(f"/api/alerts/rules/{rid}", json={"contact_points": cps}).status_code == 200
        stored = AlertStorage(server.store).get_rule(server.project_id, rid)
        assert stored is not None and stored.contact_points[0].headers == {  # type: ignore[union-attr]
            "Authorization": "Bearer new_secret", "x-team": "billing"}

        # a masked value that names no stored contact point is refused, not stored as the mask
        bad = admin.post("/api/alerts/rules", json=_rule("m", contact_points=[
            {"type": "slack", "url": f"https://hooks.slack.com/{MASK}"}]))
        assert bad.status_code == 400 and "mask" in bad.json()["error"]["message"]
        other_host = admin.patch(f"/api/alerts/rules/{rid}", json={"contact_points": [
            {"type": "slack", "url": f"https://evil.example/{MASK}"}]})
        assert other_host.status_code == 400

        # the dashboard's edit form shows the masked URLs, and saving it unchanged keeps the secrets
        admin.cookies.set("netra_key", server.api_key, path="/ui")
        page = admin.get(f"/ui/alerts?edit={rid}")
        assert page.status_code == 200
        _assert_no_secret(page.text)
        form = dict(re.findall(r'<input (?:type="hidden" )?name="([a-z_]+)" value="([^"]*)"', page.text))
        form.update({"name": "from the page", "scope": "trace", "metric": "latency", "aggregation": "p95",
                     "op": ">", "enabled": "on"})
        form = {k: v.replace("&amp;", "&") for k, v in form.items()}
        saved = admin.post("/ui/alerts", data=form, follow_redirects=False)
        assert saved.status_code == 303, saved.text[:500]
        stored = AlertStorage(server.store).get_rule(server.project_id, rid)
        assert stored is not None and stored.name == "from the page"
        assert stored.contact_points[0].url == webhook.url + HOOK_PATH + "?token=qs_secret"  # type: ignore[union-attr]
        assert stored.contact_points[1].url == webhook.url + SLACK_PATH  # type: ignore[union-attr]
        _assert_no_secret(admin.get("/ui/alerts").text)
        admin.cookies.clear()
        admin.delete(f"/api/alerts/rules/{rid}")


def test_the_openapi_rules_listing_documents_unreadable(server: RunningServer) -> None:
    schema = httpx.get(server.base_url + "/openapi.json").json()
    assert "unreadable" in schema["components"]["schemas"]["AlertRulesResponse"]["properties"]
