"""Unknown keys stay cheap (issue 14, item 6): keys found wrong are cached briefly in a bounded LRU that
never evicts valid keys, and failed authentications are limited per client address (429 with
Retry-After, no store lookup), the proxy header honoured only when configured. Real server, real store."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from netra_server.auth import FailureLimiter, KeyManager, client_address, new_key
from netra_server.testing import RunningServer, run_server


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A real server whose failure limit is small (5 at once, then one per 100 s)."""
    with run_server(tmp_path_factory.mktemp("auth-limited"), auth_failure_burst=5,
                    auth_failures_per_second=0.01, key_cache_seconds=0.2) as srv:
        yield srv


# -- the caches, on the real store ------------------------------------------------------------------


def test_a_wrong_key_is_looked_up_once_then_cached(limited: RunningServer) -> None:
    assert limited.store is not None
    km = KeyManager(limited.store, negative_cache_seconds=60)
    wrong = new_key()
    assert km.verify(wrong) is None and km.lookups == 1
    for _ in range(5):
        assert km.verify(wrong) is None
    assert km.lookups == 1
    # too short to be any key: no lookup at all
    assert km.verify("short") is None and km.verify("") is None and km.lookups == 1
    # a key tried before it existed works as soon as it is created here
    project = limited.project_id
    km.create_key(project, role="read", key=wrong)
    ctx = km.verify(wrong)
    assert ctx is not None and ctx.project_id == project


def test_random_keys_cannot_grow_the_caches_or_evict_valid_keys(limited: RunningServer) -> None:
    assert limited.store is not None
    km = KeyManager(limited.store, negative_cache_seconds=60, max_negative=200, max_cached=50)
    assert km.verify(limited.api_key) is not None
    lookups = km.lookups
    for _ in range(1000):
        assert km.verify(new_key()) is None
    assert len(km._negative) == 200 and len(km._cache) == 1
    after_flood = km.lookups
    assert after_flood == lookups + 1000
    assert km.verify(limited.api_key) is not None
    assert km.lookups == after_flood  # the valid key is still cached


# -- the limiter ------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_failure_limiter_allows_a_burst_then_a_rate() -> None:
    clock = Clock()
    lim = FailureLimiter(burst=3, per_second=0.5, max_clients=100, clock=clock)
    for _ in range(3):
        assert lim.retry_after("1.2.3.4") is None
        lim.failed("1.2.3.4")
    assert lim.retry_after("1.2.3.4") == 2  # one token back in 2 s at 0.5/s
    assert lim.retry_after("5.6.7.8") is None  # another client is not affected
    clock.now += 1
    assert lim.retry_after("1.2.3.4") == 1
    clock.now += 1
    assert lim.retry_after("1.2.3.4") is None
    lim.failed("1.2.3.4")
    assert lim.retry_after("1.2.3.4") == 2
    clock.now += 3600  # the bucket fills up again, to the burst only
    for _ in range(3):
        assert lim.retry_after("1.2.3.4") is None
        lim.failed("1.2.3.4")
    assert lim.retry_after("1.2.3.4") is not None
    with pytest.raises(ValueError):
        FailureLimiter(burst=0)


def test_the_failure_limiter_memory_is_bounded() -> None:
    lim = FailureLimiter(burst=1, per_second=0.001, max_clients=100)
    for i in range(10_000):
        lim.failed(f"10.0.{i // 256}.{i % 256}")
    assert len(lim) == 100
    assert lim.retry_after("10.0.39.15") is not None  # the most recent clients are kept


def test_client_address() -> None:
    xff = {"X-Forwarded-For": "6.6.6.6, 10.1.2.3"}
    assert client_address("127.0.0.1", xff) == "127.0.0.1"  # the header is ignored unless configured
    assert client_address("127.0.0.1", xff, "X-Forwarded-For") == "10.1.2.3"  # what the proxy saw
    assert client_address("127.0.0.1", {}, "X-Forwarded-For") == "127.0.0.1"
    assert client_address("127.0.0.1", {"X-Forwarded-For": " , "}, "X-Forwarded-For") == "127.0.0.1"
    # one IPv6 host has a /64: its addresses count together
    assert client_address("2001:db8:1:2:aaaa::1", {}) == client_address("2001:db8:1:2:bbbb::9", {}) == "2001:db8:1:2::/64"
    assert client_address("2001:db8:1:3::1", {}) != client_address("2001:db8:1:2::1", {})
    assert client_address("::ffff:1.2.3.4", {}) == "1.2.3.4"
    assert client_address(None, {}) == "unknown"
    assert client_address("127.0.0.1", {"X-Real-IP": "x" * 500}, "X-Real-IP") == "x" * 100


# -- end to end -------------------------------------------------------------------------------------


def _lookups(srv: RunningServer) -> int:
    return int(srv.app.state.netra.keys.lookups)


def test_failed_authentications_are_limited_per_client(limited: RunningServer) -> None:
    srv = limited
    fresh_read_key = srv.create_key("read")
    with httpx.Client(base_url=srv.base_url, timeout=30) as c:
        # warm: the admin key is verified (and cached) before the attack
        assert c.get("/api/me", headers=srv.headers).status_code == 200
        statuses = [c.get("/api/me", headers={"x-api-key": new_key()}).status_code for _ in range(5)]
        assert statuses == [401] * 5
        before = _lookups(srv)
        for path, method in (("/api/me", "GET"), ("/usage/tenants/apex", "GET"), ("/v1/traces", "POST")):
            r = c.request(method, path, headers={"x-api-key": new_key(), "content-type": "application/json",
                                                 "X-Real-IP": "198.51.100.7"}, content=b"{}")  # not trusted here
            assert r.status_code == 429, (path, r.status_code, r.text)
            assert 1 <= int(r.headers["retry-after"]) <= 100
            assert "too many failed authentications" in r.json()["error"]["message"]
        assert _lookups(srv) == before  # refused before any store lookup
        # a key verified before still works from the limited address, also once its cache entry
        # expired (a client behind the attacker's NAT); a key never seen waits too
        assert c.get("/api/me", headers=srv.headers).status_code == 200
        time.sleep(0.3)
        assert c.get("/api/me", headers=srv.headers).status_code == 200
        assert _lookups(srv) == before + 1  # looked up again (a revoked key stops working)
        assert c.get("/api/me", headers={"x-api-key": fresh_read_key}).status_code == 429
        # the dashboard's login form is limited the same way
        login = c.post("/ui/login", data={"api_key": new_key(), "next": "/ui/"})
        assert login.status_code == 429 and "retry-after" in login.headers
        c.cookies.set("netra_key", new_key(), path="/ui")
        page = c.get("/ui/", follow_redirects=False)
        assert page.status_code == 429


def test_the_proxy_header_counts_only_when_configured(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Configured by the environment, in a `netra serve` process (chDB opens one folder per process)."""
    # (uvicorn itself already takes X-Forwarded-For from a proxy on 127.0.0.1: its FORWARDED_ALLOW_IPS)
    monkeypatch.setenv("NETRA_TRUSTED_PROXY_HEADER", "X-Real-IP")
    monkeypatch.setenv("NETRA_AUTH_FAILURE_BURST", "2")
    monkeypatch.setenv("NETRA_AUTH_FAILURES_PER_SECOND", "0.01")
    with run_server(tmp_path, subprocess=True) as srv, httpx.Client(base_url=srv.base_url) as c:
        def attempt(client_ip: str) -> int:
            headers = {"x-api-key": new_key(), "X-Real-IP": f"203.0.113.99, {client_ip}"}
            return c.get("/api/me", headers=headers).status_code

        assert [attempt("192.0.2.1") for _ in range(3)] == [401, 401, 429]
        assert [attempt("192.0.2.2") for _ in range(3)] == [401, 401, 429]  # another client behind the proxy
        # the first (client-written) address of the header is not the one counted
        assert attempt("192.0.2.1") == 429
