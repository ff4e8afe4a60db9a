"""The credit flow end to end over HTTP against a real server: grant, reserve, confirm, release,
usage, typed errors, idempotency keys, queries, tenant-limited keys and hostile input."""

from __future__ import annotations

import uuid
from decimal import Decimal

import httpx
import pytest
from netra_server.testing import RunningServer

from netra.credits import (
    CreditsClient,
    IdempotencyConflict,
    InsufficientCredits,
    ReservationAlreadyConfirmed,
    ReservationNotFound,
    ReservationReleased,
    UnknownPrice,
    Usage,
)
from netra.pricing import calculate_cost
from netra.usage import BadRequestError, PermissionDeniedError


def _tenant() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


def test_grant_reserve_confirm_releases_the_difference(credits: CreditsClient) -> None:
    t = _tenant()
    credits.grant(t, "1.00", note="plan")
    r = credits.reserve(t, "0.40", ttl=60)
    assert r.status == "held" and r.account is not None
    assert r.account.reserved == Decimal("0.4") and r.account.available == Decimal("0.6")
    txn = credits.confirm(r, usage=Usage(model="gpt-4o-mini", input_tokens=1200, output_tokens=300,
                                         cached_tokens=200))
    expected = calculate_cost("gpt-4o-mini", input_tokens=1200, output_tokens=300, cached_input_tokens=200).cost
    assert expected is not None and txn.amount == expected  # the spans' price table, exactly
    assert txn.released == Decimal("0.4") - expected
    assert txn.id == r.transaction_id and txn.usage[0].cost == expected
    acc = credits.get_account(t)
    assert (acc.granted, acc.spent, acc.reserved, acc.balance) == (Decimal(1), expected, 0, Decimal(1) - expected)
    kinds = [e.kind for e in credits.iter_entries(t)]
    assert kinds == ["grant", "reservation", "confirmation", "release"]
    # sum of movements = balance; sum of holds = reserved
    entries = list(credits.iter_entries(t))
    assert sum(e.amount for e in entries) == acc.balance and sum(e.hold for e in entries) == 0


def test_insufficient_credits_is_typed_and_takes_nothing(credits: CreditsClient) -> None:
    t = _tenant()
    credits.grant(t, "0.10")
    credits.reserve(t, "0.06")
    with pytest.raises(InsufficientCredits) as info:
        credits.reserve(t, "0.05")
    assert info.value.available == Decimal("0.04") and info.value.requested == Decimal("0.05")
    assert "netra credits grant" in str(info.value)
    assert credits.get_account(t).reserved == Decimal("0.06")
    with pytest.raises(InsufficientCredits):
        credits.reserve(_tenant(), "0.01")  # no account: no credit


def test_reserve_by_model_and_max_tokens_uses_the_price_table(credits: CreditsClient) -> None:
    t = _tenant()
    credits.grant(t, "5")
    r = credits.reserve(t, model="gpt-4o", input_tokens=2000, max_output_tokens=800)
    assert r.amount == calculate_cost("gpt-4o", input_tokens=2000, output_tokens=800).cost
    with pytest.raises(UnknownPrice):
        credits.reserve(t, model="no-such-model-x", max_output_tokens=100)
    with pytest.raises(ValueError):
        credits.reserve(t, "1", model="gpt-4o")


def test_confirm_twice_release_after_confirm_and_confirm_after_release_are_errors(credits: CreditsClient) -> None:
    t = _tenant()
    credits.grant(t, "1")
    r = credits.reserve(t, "0.5")
    txn = credits.confirm(r, amount="0.2")
    with pytest.raises(ReservationAlreadyConfirmed) as info:
        credits.confirm(r, amount="0.2")
    assert info.value.transaction_id == txn.id
    with pytest.raises(ReservationAlreadyConfirmed):
        credits.release(r)
    r2 = credits.reserve(t, "0.1")
    assert credits.release(r2).status == "released"
    assert credits.release(r2).status == "released"  # releasing again changes nothing
    with pytest.raises(ReservationReleased):
        credits.confirm(r2, amount="0.1")
    with pytest.raises(ReservationNotFound):
        credits.confirm("res_doesnotexist", amount="0.1")
    assert credits.get_account(t).balance == Decimal("0.8")


def test_idempotency_keys_make_retries_safe_and_refuse_reuse(credits: CreditsClient) -> None:
    t = _tenant()
    e1 = credits.grant(t, "2", idempotency_key="grant-1")
    e2 = credits.grant(t, "2", idempotency_key="grant-1")
    assert e1.seq == e2.seq and credits.get_account(t).balance == 2
    r1 = credits.reserve(t, "0.5", idempotency_key="res-1")
    r2 = credits.reserve(t, "0.5", idempotency_key="res-1")
    assert r1.id == r2.id and credits.get_account(t).reserved == Decimal("0.5")
    c1 = credits.confirm(r1, amount="0.3", idempotency_key="conf-1")
    c2 = credits.confirm(r1, amount="0.3", idempotency_key="conf-1")  # a retry: same transaction
    assert c1.id == c2.id and credits.get_account(t).balance == Decimal("1.7")
    with pytest.raises(IdempotencyConflict):
        credits.reserve(t, "0.6", idempotency_key="res-1")  # same key, another request
    with pytest.raises(ReservationAlreadyConfirmed):
        credits.confirm(r1, amount="0.3", idempotency_key="conf-2")  # another key: a second confirmation


def test_overdraft_limit_lets_the_balance_go_below_zero_up_to_the_limit(credits: CreditsClient) -> None:
    t = _tenant()
    credits.grant(t, "1")
    credits.set_overdraft_limit(t, "0.5")
    r = credits.reserve(t, "1.5")
    with pytest.raises(InsufficientCredits):
        credits.reserve(t, "0.01")
    credits.confirm(r, amount="1.5")
    acc = credits.get_account(t)
    assert acc.balance == Decimal("-0.5") and acc.available == 0


def test_usage_contexts_and_queries(credits: CreditsClient) -> None:
    t = _tenant()
    credits.grant(t, "1")
    txn = credits.record_usage(t, [Usage(model="gpt-4o-mini", input_tokens=1000, output_tokens=100),
                                   Usage(model="whisper-1", audio_seconds=90)])
    whisper = Decimal("0.009")  # $0.36 per audio hour x 90 s
    mini = calculate_cost("gpt-4o-mini", input_tokens=1000, output_tokens=100).cost
    assert mini is not None and txn.amount == mini + whisper
    sys_txn = credits.record_usage(t, Usage(model="gpt-4o-mini", input_tokens=500), context="system")
    assert sys_txn.context == "system"
    acc = credits.get_account(t)
    assert acc.spent == mini + whisper and acc.balance == 1 - mini - whisper  # system usage is not billed
    assert acc.system_cost == calculate_cost("gpt-4o-mini", input_tokens=500).cost
    by_context = {g.key: g for g in credits.get_usage("context", tenant_id=t).groups}
    assert set(by_context) == {"customer", "system"} and by_context["customer"].requests == 2
    by_model = {g.key: g.cost for g in credits.get_usage("model", tenant_id=t, context="customer").groups}
    assert by_model == {"gpt-4o-mini": mini, "whisper-1": whisper}
    assert credits.get_usage("model", tenant_id=t, since=acc.updated_at + 10).groups == []
    assert credits.get_transaction(txn.id).amount == txn.amount
    kinds = [e.kind for e in credits.iter_entries(t, kinds=["usage"])]
    assert kinds == ["usage"]


def test_entries_page_through_every_movement(credits: CreditsClient) -> None:
    t = _tenant()
    for i in range(7):
        credits.grant(t, "1", note=f"g{i}")
    seen = [e.note for e in credits.iter_entries(t, limit=3)]
    assert seen == [f"g{i}" for i in range(7)]


@pytest.mark.parametrize("body", [
    {"amount": "-1"}, {"amount": "NaN"}, {"amount": "1e400"}, {"amount": "0.00000000001"}, {"amount": "abc"},
    {"amount": True}, {"amount": "0"}, {"amount": "1", "bogus": 1}, {}, [],
])
def test_hostile_grants_answer_400_with_a_message(netra_server: RunningServer, body: object) -> None:
    with netra_server.client() as c:
        r = c.post("/api/credits/accounts/acme/grants", json=body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["message"]


@pytest.mark.parametrize("body", [
    {"tenant_id": "", "amount": "1"}, {"tenant_id": "a", "amount": "1", "ttl_seconds": 0},
    {"tenant_id": "a", "amount": "1", "ttl_seconds": 10**9}, {"tenant_id": "a"},
    {"tenant_id": "a", "model": "gpt-4o"}, {"tenant_id": "a", "model": "gpt-4o", "max_output_tokens": -5},
    {"tenant_id": "a" * 300, "amount": "1"},
])
def test_hostile_reservations_answer_400(netra_server: RunningServer, body: object) -> None:
    with netra_server.client() as c:
        r = c.post("/api/credits/reservations", json=body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["message"]


@pytest.mark.parametrize("query", [
    "after=132181541078409623138528321997897728", "after=-1", "limit=0", "limit=10001", "since=abc",
])
def test_hostile_entry_queries_answer_400(netra_server: RunningServer, query: str) -> None:
    # A cursor past SQLite's 64-bit INTEGER once raised OverflowError in the ledger (a 500).
    with netra_server.client() as c:
        r = c.get("/api/credits/entries?" + query)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["message"]


def test_confirm_rejects_inconsistent_usage(credits: CreditsClient, netra_server: RunningServer) -> None:
    t = _tenant()
    credits.grant(t, "1")
    r = credits.reserve(t, "0.5")
    with netra_server.client() as c:
        for body in ({"usage": [{"model": "gpt-4o", "input_tokens": 10, "cached_tokens": 11}]},
                     {"usage": [], "amount": None}, {"usage": [{"model": "gpt-4o"}], "amount": "1"}):
            resp = c.post(f"/api/credits/reservations/{r.id}/confirm", json=body)
            assert resp.status_code == 400, resp.text
    assert credits.get_reservation(r).status == "held"


def test_keys_roles_and_tenant_limits(netra_server: RunningServer) -> None:
    t, other = _tenant(), _tenant()
    with CreditsClient(netra_server.base_url, netra_server.api_key) as admin:
        admin.grant(t, "1")
        admin.grant(other, "1")
    read_t = netra_server.create_key("read", tenant_id=t)
    ingest = netra_server.create_key("ingest")
    with CreditsClient(netra_server.base_url, read_t) as c:
        assert c.get_account(t).balance == 1
        assert [a.tenant_id for a in c.list_accounts()] == [t]
        with pytest.raises(PermissionDeniedError):
            c.get_account(other)
        with pytest.raises(PermissionDeniedError):
            c.reserve(t, "0.1")  # a read key cannot spend
    with CreditsClient(netra_server.base_url, ingest) as c:
        c.confirm(c.reserve(t, "0.1"), amount="0.05")  # the app's ingest key spends
        with pytest.raises(PermissionDeniedError):
            c.grant(t, "100")  # but cannot grant
    r = httpx.get(netra_server.base_url + "/api/credits/accounts")
    assert r.status_code == 401


def test_verify_reports_a_balanced_ledger(credits: CreditsClient, netra_server: RunningServer) -> None:
    with netra_server.client() as c:
        data = c.get("/api/credits/verify").json()["data"]
    assert data == {"ok": True, "problems": []}
    with pytest.raises(BadRequestError):
        credits.get_usage("nonsense")  # type: ignore[arg-type]


@pytest.mark.parametrize("tenant", ["a/b", "..", ".", "x y?#&=", "ü€", "%2F", "grants", "a/grants"])
def test_any_tenant_id_round_trips(credits: CreditsClient, tenant: str) -> None:
    before = credits.get_account(tenant).balance
    entry = credits.grant(tenant, "1.5")
    assert entry.tenant_id == tenant
    account = credits.get_account(tenant)
    assert account.tenant_id == tenant and account.balance == before + Decimal("1.5")
    assert credits.set_overdraft_limit(tenant, "2").overdraft_limit == 2


def test_a_key_bound_to_a_tenant_spends_only_for_that_tenant(netra_server: RunningServer) -> None:
    """An ingest key bound to a tenant (written to the store directly: the key API makes only read keys
    tenant-limited today) may reserve, confirm and record usage for its tenant only."""
    import hashlib

    from netra_server.auth import key_id_for, new_key
    from netra_server.store import ApiKeyRecord

    t, other = _tenant(), _tenant()
    key = new_key()
    assert netra_server.store is not None
    netra_server.store.put_key(ApiKeyRecord(
        key_id=key_id_for(key), project_id=netra_server.project_id, key_hash=hashlib.sha256(key.encode()).hexdigest(),
        name="bound ingest", role="ingest", tenant_id=t, created_at="", revoked=False))
    with CreditsClient(netra_server.base_url, netra_server.api_key) as admin:
        admin.grant(t, "1")
        admin.grant(other, "1")
        others = admin.reserve(other, "0.1")
    with CreditsClient(netra_server.base_url, key) as bound:
        bound.confirm(bound.reserve(t, "0.2"), amount="0.1")
        bound.record_usage(t, Usage(model="gpt-4o-mini", cost="0.01"))
        with pytest.raises(PermissionDeniedError):
            bound.reserve(other, "0.1")
        with pytest.raises(PermissionDeniedError):
            bound.confirm(others, amount="0.1")
        with pytest.raises(PermissionDeniedError):
            bound.release(others)
        with pytest.raises(PermissionDeniedError):
            bound.record_usage(other, Usage(model="gpt-4o-mini", cost="0.01"))
    with CreditsClient(netra_server.base_url, netra_server.api_key) as admin:
        assert admin.get_account(t).balance == Decimal("0.89")
        assert admin.get_account(other).balance == 1 and admin.get_reservation(others).status == "held"


def test_idempotency_keys_are_forgotten_after_seven_days(tmp_path: object) -> None:
    from pathlib import Path

    from netra_server.credits.ledger import SqliteLedger

    ledger = SqliteLedger(Path(str(tmp_path)) / "c.sqlite3")
    try:
        first = ledger.grant("p", "t", Decimal(1), idempotency_key="k", now=1000.0)
        assert ledger.grant("p", "t", Decimal(1), idempotency_key="k", now=2000.0).seq == first.seq
        assert ledger.prune_idempotency_keys(now=1000.0 + 7 * 86400 - 1) == 0
        assert ledger.prune_idempotency_keys(now=1000.0 + 7 * 86400 + 1) == 1
        assert ledger.grant("p", "t", Decimal(1), idempotency_key="k").seq != first.seq  # a new request now
        assert ledger.account("p", "t").balance == 2 and ledger.verify() == []
    finally:
        ledger.close()


def test_a_full_disk_rolls_the_whole_movement_back(tmp_path: object) -> None:
    """The database file cannot grow (SQLite's max_page_count, as a full disk): the failing operation
    changes nothing, the error is raised, and the ledger stays balanced and usable."""
    import sqlite3
    from pathlib import Path

    from netra_server.credits.ledger import SqliteLedger

    ledger = SqliteLedger(Path(str(tmp_path)) / "c.sqlite3")
    try:
        ledger.grant("p", "t", Decimal(100))
        db = ledger._db()
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        db.execute(f"PRAGMA max_page_count = {pages}")
        failed = 0
        for _ in range(500):  # until the file is full
            try:
                ledger.confirm("p", ledger.reserve("p", "t", Decimal("0.01"), ttl=60, note="x" * 900).id,
                               amount=Decimal("0.005"))
            except sqlite3.OperationalError as exc:
                assert "full" in str(exc)
                failed += 1
                break
        assert failed == 1
        assert ledger.verify() == []
        account = ledger.account("p", "t")
        entries = ledger.entries("p", tenant_id="t", limit=10_000)
        assert sum(e.amount for e in entries) == account.balance and account.reserved == sum(e.hold for e in entries)
        db.execute("PRAGMA max_page_count = 1073741823")
        ledger.reserve("p", "t", Decimal("0.01"), ttl=60)  # usable again
        assert ledger.verify() == []
    finally:
        ledger.close()
