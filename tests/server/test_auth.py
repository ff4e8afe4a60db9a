"""Auth and isolation: no route readable without a key, wrong/revoked keys, another project's key,
tenant-limited read keys, roles; keys stored hashed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from netra_server.auth import KeyManager
from netra_server.testing import RunningServer
from opentelemetry.sdk.trace.export import SpanExportResult

from netra import semconv

from ._helpers import T0, record, send


@pytest.fixture(scope="module")
def world(netra_server: RunningServer) -> Iterator[dict[str, Any]]:
    assert netra_server.store is not None
    store = netra_server.store
    other = store.create_project("other")
    km = KeyManager(store)
    other_key, _ = km.create_key(other.project_id, role="admin", name="other admin")
    provider, collect = record()
    tr = provider.get_tracer("t")
    ids = {}
    for tenant in ("apex", "stratex"):
        s = tr.start_span(f"{tenant}-call", start_time=T0, attributes={
            semconv.TENANT_ID: tenant, semconv.SESSION_ID: f"{tenant}-s", semconv.GEN_AI_RESPONSE_MODEL: "m",
            semconv.GEN_AI_USAGE_INPUT_TOKENS: 10, semconv.COST: 1})
        s.end(end_time=T0 + 1000)
        ids[tenant] = format(s.get_span_context().trace_id, "032x")
    assert send(netra_server, collect.spans) is SpanExportResult.SUCCESS
    # the same spans sent by the other project are that project's own spans
    assert send(netra_server, collect.spans[:1], key=other_key) is SpanExportResult.SUCCESS
    provider.shutdown()
    yield {"srv": netra_server, "other_key": other_key, "other": other, "ids": ids,
           "apex_key": netra_server.create_key("read", tenant_id="apex", name="apex portal")}


def _routes(ids: dict[str, str]) -> list[tuple[str, str, dict[str, Any] | None]]:
    tid = ids["apex"]
    return [
        ("GET", "/usage/tenants/apex", None), ("GET", "/usage/sessions/apex-s", None), ("POST", "/sdk/traces", {}),
        ("GET", f"/sdk/traces/{tid}/spans", None), ("GET", "/api/usage/summary", None), ("GET", "/api/latency", None),
        ("GET", f"/api/traces/{tid}/usage", None), ("GET", "/api/me", None), ("GET", "/api/keys", None),
        ("POST", "/api/keys", {"role": "read"}), ("DELETE", "/api/keys/abc", None), ("POST", "/v1/traces", None),
    ]


def test_every_route_needs_a_key(world: dict[str, Any]) -> None:
    """Every route in the OpenAPI spec (ours and the extensions'), called without a valid key, is 401."""
    import re

    srv = world["srv"]
    spec = httpx.get(srv.base_url + "/openapi.json").json()
    calls = [(m.upper(), p) for p, ops in spec["paths"].items() for m in ops if p != "/healthz"]
    assert ("POST", "/v1/traces") in calls and ("GET", "/usage/tenants/{tenant_id}") in calls
    assert len(calls) >= len(_routes(world["ids"]))
    for method, template in calls + [("POST", "/telemetry/v1/traces")]:
        path = re.sub(r"\{trace_id\}", world["ids"]["apex"], template)
        path = re.sub(r"\{[^}]+\}", "x1", path)
        for headers in ({}, {"x-api-key": "nope-nope-nope-nope"}, {"Authorization": "Bearer nk_aaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"},
                        {"Authorization": f"Basic {srv.api_key}"}):
            r = httpx.request(method, srv.base_url + path, json={}, headers=headers, follow_redirects=False)
            if template.startswith("/dashboard") and r.status_code in (303, 307):
                continue  # the dashboard sends browsers to its login page
            assert r.status_code == 401, (method, path, headers, r.text)
            if "json" in r.headers.get("content-type", ""):
                assert "API key" in r.json()["error"]["message"]


def test_bearer_and_x_api_key_both_work(world: dict[str, Any]) -> None:
    srv = world["srv"]
    for headers in ({"x-api-key": srv.api_key}, {"Authorization": f"Bearer {srv.api_key}"},
                    {"authorization": f"bearer {srv.api_key}"}):
        r = httpx.get(srv.base_url + "/usage/tenants/apex", headers=headers)
        assert r.status_code == 200 and r.json()["data"]["requestsCount"] == 1


def test_another_projects_key_sees_only_its_project(world: dict[str, Any]) -> None:
    srv, key = world["srv"], world["other_key"]
    with srv.client(key) as c:
        assert c.get("/usage/tenants/apex").json()["data"]["requestsCount"] == 1  # its own copy
        assert c.get("/usage/tenants/stratex").json()["data"]["requestsCount"] == 0
        items = c.post("/sdk/traces", json={}).json()["data"]["data"]
        assert [t["id"] for t in items] == [world["ids"]["apex"]]
        assert items[0]["project_id"] == world["other"].project_id
        spans = c.get(f"/sdk/traces/{world['ids']['stratex']}/spans").json()["data"]["data"]
        assert spans == []
        assert c.get(f"/api/traces/{world['ids']['stratex']}/usage").status_code == 404
        assert {k["project_id"] for k in c.get("/api/keys").json()["data"]} == {world["other"].project_id}
        assert c.delete(f"/api/keys/{srv.api_key.split('_')[1]}").status_code == 404  # not its key to revoke


def test_tenant_limited_key_sees_its_tenant_only(world: dict[str, Any]) -> None:
    srv, key, ids = world["srv"], world["apex_key"], world["ids"]
    with srv.client(key) as c:
        assert c.get("/usage/tenants/apex").json()["data"]["requestsCount"] == 1
        r = c.get("/usage/tenants/stratex")
        assert r.status_code == 403 and "apex" in r.json()["error"]["message"]
        assert c.get("/usage/sessions/stratex-s").json()["data"]["requestsCount"] == 0
        assert c.get("/usage/sessions/apex-s").json()["data"]["requestsCount"] == 1
        assert [t["id"] for t in c.post("/sdk/traces", json={}).json()["data"]["data"]] == [ids["apex"]]
        r = c.post("/sdk/traces", json={"filters": [{"field": "tenant_id", "operator": "equals", "type": "string", "value": "stratex"}]})
        assert r.status_code == 403
        assert c.get(f"/sdk/traces/{ids['stratex']}/spans").json()["data"]["data"] == []
        assert len(c.get(f"/sdk/traces/{ids['apex']}/spans").json()["data"]["data"]) == 1
        assert c.get(f"/api/traces/{ids['stratex']}/usage").status_code == 404
        assert [g["key"] for g in c.get("/api/usage/summary").json()["data"]["groups"]] == ["apex"]
        assert c.get("/api/usage/summary", params={"tenantId": "stratex"}).status_code == 403
        assert [r["tenant_id"] for r in c.get("/api/latency").json()["data"]] == ["apex"]
        assert c.get("/api/me").json()["data"]["tenant_id"] == "apex"
        assert c.get("/api/keys").status_code == 403          # not an admin
        assert c.post("/api/keys", json={"role": "admin"}).status_code == 403


def test_read_keys_cannot_be_unlimited_admins_and_bad_key_requests_are_400(world: dict[str, Any]) -> None:
    with world["srv"].client() as c:
        r = c.post("/api/keys", json={"role": "admin", "tenantId": "apex"})
        assert r.status_code == 400 and "read" in r.json()["error"]["message"]
        assert c.post("/api/keys", json={"role": "owner"}).status_code == 400
        assert c.post("/api/keys", json={"role": "read", "extra": 1}).status_code == 400


def test_revoked_key_is_refused(world: dict[str, Any]) -> None:
    srv = world["srv"]
    key = srv.create_key("read", name="to revoke")
    with srv.client(key) as c:
        assert c.get("/api/me").status_code == 200
    with srv.client() as admin:
        key_id = key.split("_")[1]
        listed = {k["key_id"]: k for k in admin.get("/api/keys").json()["data"]}
        assert listed[key_id]["name"] == "to revoke" and "key_hash" not in listed[key_id]
        assert admin.delete(f"/api/keys/{key_id}").json()["data"]["revoked"] is True
    with srv.client(key) as c:
        r = c.get("/api/me")
        assert r.status_code == 401 and "revoked" in r.json()["error"]["message"]


def test_keys_are_stored_hashed(world: dict[str, Any]) -> None:
    srv = world["srv"]
    rows = srv.store.query("SELECT key_hash FROM netra_api_keys FINAL")
    assert rows and all(len(r["key_hash"]) == 64 for r in rows)
    dump = str(srv.store.query("SELECT * FROM netra_api_keys"))
    assert srv.api_key not in dump and world["apex_key"] not in dump
    assert srv.api_key.split("_", 2)[2] not in dump  # the secret part (it may itself contain "_")
