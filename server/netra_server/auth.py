"""API keys: created, hashed, verified in constant time, revoked.

A key looks like ``nk_<key id>_<secret>``; only its SHA-256 is stored (``netra_api_keys``), looked up
by the key id and compared with :func:`hmac.compare_digest`. A key seeded by the operator
(``NETRA_API_KEY``) may be any string of 16+ characters; its id is derived from its hash.

Roles: ``admin`` (send spans, read everything of its project, manage keys), ``ingest`` (send spans
only; may be bound to one tenant: the receiver then stamps that tenant on every span the key sends,
whatever tenant attribute the span carries), ``read`` (read only; may be limited to one tenant: then
every read is filtered to that tenant and other tenants' routes answer 403).

Public API (stable)::

    from netra_server.auth import KeyManager, AuthContext
    km = KeyManager(store)
    key, rec = km.create_key(project_id, role="read", tenant_id="acme", name="acme portal")
    key, rec = km.create_key(project_id, role="ingest", tenant_id="acme")  # spans it sends are acme's
    ctx = km.verify(key)        # AuthContext | None

Unknown keys are cheap: a key shorter than any valid one is refused without a lookup; a key found
wrong is remembered as wrong for ``negative_cache_seconds`` (a bounded LRU: random keys cannot grow
it, nor push the valid keys out of theirs); and failed authentications are limited per client
address by a :class:`FailureLimiter` (``check_key`` answers :class:`TooManyFailures`, HTTP 429 with
``Retry-After``, before any store lookup). Behind a proxy, the client address is read from the header
named by ``Settings.trusted_proxy_header`` only when it is configured (:func:`client_address`).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from netra_server.store import ApiKeyRecord, Project, Store

__all__ = [
    "MIN_KEY_LENGTH",
    "ROLES",
    "AuthContext",
    "FailureLimiter",
    "KeyManager",
    "TooManyFailures",
    "check_key",
    "client_address",
    "key_id_for",
    "new_key",
]

#: No valid key is shorter (generated keys are longer, seeded ones must have 16+ characters).
MIN_KEY_LENGTH = 16

ROLES = ("admin", "ingest", "read")
#: Longest tenant id a key can be limited or bound to (the default ``Limits.max_id_bytes``).
MAX_KEY_TENANT_BYTES = 256
Role = Literal["admin", "ingest", "read"]
_KEY_RE = re.compile(r"^nk_([a-z0-9]{12})_[A-Za-z0-9_-]{20,}$")


@dataclass(frozen=True)
class AuthContext:
    """Who is calling: the key's project, role and tenant limit (``None`` = all tenants)."""

    key_id: str
    project_id: str
    organisation_id: str
    role: str
    tenant_id: str | None

    @property
    def can_read(self) -> bool:
        return self.role in ("admin", "read")

    @property
    def can_ingest(self) -> bool:
        return self.role in ("admin", "ingest")

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    """A new random API key in the format the server generates: ``nk_<12-hex key id>_<secret>``."""
    return f"nk_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"


def key_id_for(key: str) -> str:
    """The public id of a key: embedded in generated keys, derived from the hash of seeded ones."""
    m = _KEY_RE.match(key)
    if m:
        return m.group(1)
    return "s" + _hash("netra-key-id:" + key)[:11]


class KeyManager:
    def __init__(
        self,
        store: Store,
        *,
        cache_seconds: float = 10.0,
        negative_cache_seconds: float = 5.0,
        max_cached: int = 10_000,
        max_negative: int = 10_000,
        limiter: FailureLimiter | None = None,
    ) -> None:
        self.store = store
        self.cache_seconds = cache_seconds
        self.negative_cache_seconds = negative_cache_seconds
        self.max_cached = max_cached
        self.max_negative = max_negative
        #: Valid keys (digest -> expiry, caller) and, apart, keys found wrong (digest -> expiry): both
        #: LRUs of bounded size, so unknown keys never evict valid ones.
        self._cache: OrderedDict[str, tuple[float, AuthContext]] = OrderedDict()
        self._negative: OrderedDict[str, float] = OrderedDict()
        self._projects: dict[str, Project] = {}
        self._lock = threading.Lock()
        #: Failed authentications per client address (see :func:`check_key`).
        self.limiter = limiter if limiter is not None else FailureLimiter()
        #: Store lookups made by :meth:`verify` (for tests and benchmarks).
        self.lookups = 0

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()
            self._negative.clear()

    def create_key(
        self,
        project_id: str,
        *,
        role: str = "admin",
        tenant_id: str | None = None,
        name: str = "",
        key: str | None = None,
    ) -> tuple[str, ApiKeyRecord]:
        """Create a key (or store the given one); returns the key (shown once) and its record."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        if tenant_id and role == "admin":
            raise ValueError("an admin key cannot be limited to a tenant (use role='read' or role='ingest')")
        if tenant_id and len(tenant_id.encode()) > MAX_KEY_TENANT_BYTES:
            raise ValueError(f"a tenant id is at most {MAX_KEY_TENANT_BYTES} bytes long")
        if self.store.get_project(project_id) is None:
            raise ValueError(f"no project {project_id!r}; `netra keys list` shows the projects")
        if key is None:
            key = new_key()
        elif len(key) < 16:
            raise ValueError("an API key must be at least 16 characters long")
        key_id = key_id_for(key)
        with self._lock:  # it may have been tried (and found wrong) before it existed
            self._negative.pop(_hash(key), None)
        existing = self.store.get_key(key_id)
        if existing is not None:
            if existing.project_id == project_id and hmac.compare_digest(existing.key_hash, _hash(key)):
                return key, existing
            raise ValueError(f"a key with id {key_id} already exists; choose another key")
        rec = ApiKeyRecord(
            key_id=key_id, project_id=project_id, key_hash=_hash(key), name=name, role=role,
            tenant_id=tenant_id or "", created_at="", revoked=False,
        )
        self.store.put_key(rec)
        return key, rec

    def revoke(self, key_id: str, *, project_id: str | None = None) -> ApiKeyRecord:
        rec = self.store.get_key(key_id)
        if rec is None or (project_id is not None and rec.project_id != project_id):
            raise KeyError(f"no API key {key_id!r}")
        if not rec.revoked:
            rec = ApiKeyRecord(**{**rec.__dict__, "revoked": True})
            self.store.put_key(rec)
        self.clear_cache()
        return rec

    def cached(self, key: str) -> tuple[bool, AuthContext | None]:
        """(True, the caller or None) if ``key`` was verified recently, or cannot be a key; else
        (False, None). Never touches the store."""
        if not key or len(key) < MIN_KEY_LENGTH or len(key) > 512:
            return True, None
        digest = _hash(key)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(digest)
            if hit is not None and hit[0] > now:
                self._cache.move_to_end(digest)
                return True, hit[1]
            # an expired entry stays (see was_valid) until the key is verified again
            expiry = self._negative.get(digest)
            if expiry is not None:
                if expiry > now:
                    return True, None
                del self._negative[digest]
        return False, None

    def was_valid(self, key: str) -> bool:
        """Whether ``key`` was verified valid lately (its cache entry may have expired): such a key is
        looked up again even from a client over its failure limit (an attacker cannot know it)."""
        with self._lock:
            return _hash(key) in self._cache

    def verify(self, key: str) -> AuthContext | None:
        """The caller behind ``key``, or None (unknown, wrong or revoked key)."""
        known, ctx = self.cached(key)
        if known:
            return ctx
        digest = _hash(key)
        rec = self.store.get_key(key_id_for(key))
        if rec is not None and hmac.compare_digest(rec.key_hash, digest) and not rec.revoked:
            project = self._project(rec.project_id)
            if project is not None:
                ctx = AuthContext(rec.key_id, rec.project_id, project.organisation_id, rec.role, rec.tenant_id or None)
        now = time.monotonic()
        with self._lock:
            self.lookups += 1
            if ctx is not None:
                self._cache[digest] = (now + self.cache_seconds, ctx)
                self._cache.move_to_end(digest)
                while len(self._cache) > self.max_cached:
                    self._cache.popitem(last=False)
            else:
                self._cache.pop(digest, None)  # revoked since
                self._negative[digest] = now + self.negative_cache_seconds
                self._negative.move_to_end(digest)
                while len(self._negative) > self.max_negative:
                    self._negative.popitem(last=False)
        return ctx

    def _project(self, project_id: str) -> Project | None:
        project = self._projects.get(project_id)
        if project is None:
            project = self.store.get_project(project_id)
            if project is not None:
                self._projects[project_id] = project
        return project

    def bootstrap(self, *, project_name: str = "default", seed_key: str | None = None) -> tuple[Project, str | None]:
        """First start: create a project and an admin key (returned once); later starts return (project, None).

        With ``seed_key`` the key is that one (created if it is not there yet).
        """
        projects = self.store.list_projects()
        created_key: str | None = None
        if not projects:
            project = self.store.create_project(project_name)
            created_key, _ = self.create_key(project.project_id, role="admin", name="admin (first start)", key=seed_key)
            return project, created_key
        project = projects[0]
        if seed_key is not None:
            rec = self.store.get_key(key_id_for(seed_key))
            if rec is None:
                created_key, _ = self.create_key(project.project_id, role="admin", name="admin (seeded)", key=seed_key)
        return project, created_key


# -- failed authentications per client ----------------------------------------------------------------


class TooManyFailures(Exception):
    """Too many failed authentications from one client address: answer 429 with ``Retry-After``."""

    def __init__(self, client: str, retry_after: int) -> None:
        super().__init__(
            f"too many failed authentications from {client}; retry in {retry_after} s with a valid API key"
        )
        self.client = client
        self.retry_after = retry_after


class FailureLimiter:
    """A token bucket of failed authentications per client address: ``burst`` failures at once, then
    ``per_second``. Only clients with recent failures are kept, at most ``max_clients`` (least recently
    failed dropped first), so memory stays bounded whatever the number of addresses. Thread-safe."""

    def __init__(
        self,
        burst: int = 20,
        per_second: float = 1.0,
        max_clients: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if burst < 1 or per_second <= 0:
            raise ValueError("burst must be at least 1 and per_second positive")
        self.burst = burst
        self.per_second = per_second
        self.max_clients = max_clients
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # client -> (tokens, at)
        self._lock = threading.Lock()

    def _tokens(self, client: str, now: float) -> float:
        hit = self._buckets.get(client)
        if hit is None:
            return float(self.burst)
        tokens, at = hit
        return min(float(self.burst), tokens + (now - at) * self.per_second)

    def retry_after(self, client: str) -> int | None:
        """Seconds until ``client`` may try again (None: it may now)."""
        with self._lock:
            tokens = self._tokens(client, self.clock())
        if tokens >= 1:
            return None
        return max(1, math.ceil((1 - tokens) / self.per_second))

    def failed(self, client: str) -> None:
        """Record one failed authentication of ``client``."""
        now = self.clock()
        with self._lock:
            tokens = max(0.0, self._tokens(client, now) - 1)
            self._buckets[client] = (tokens, now)
            self._buckets.move_to_end(client)
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)

    def __len__(self) -> int:
        return len(self._buckets)


def client_address(peer: str | None, headers: Mapping[str, str], trusted_header: str | None = None) -> str:
    """The address failed authentications are counted against: the peer's, or with
    ``trusted_header`` (e.g. ``X-Forwarded-For``, set by the proxy in front) the last address in that
    header (the one the proxy saw; earlier ones are the client's own claims). IPv6 addresses count by
    their /64 (one host usually has a whole /64)."""
    address = peer or "unknown"
    if trusted_header:
        value = headers.get(trusted_header)
        if value:
            last = value.split(",")[-1].strip()
            address = last or address
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return address[:100]
    if ip.version == 6:
        mapped = ip.ipv4_mapped
        if mapped is not None:
            return str(mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


async def check_key(keys: KeyManager, key: str, client: str) -> AuthContext | None:
    """The caller behind ``key`` (None: a wrong key); raises :class:`TooManyFailures` instead of
    looking up a key the caches do not know while ``client`` is over its limit. A key looked up and
    found wrong counts as one failure of ``client``; a key the caches know (verified, or found wrong
    lately) is answered from them whatever the limit, and not counted; a key verified valid before
    (its cache entry expired) is looked up again whatever the limit (a client sharing an address with
    an attacker keeps working)."""
    known, ctx = keys.cached(key)
    if known:  # no lookup: a key the caches know as wrong is not counted again (it guesses nothing)
        return ctx
    wait = keys.limiter.retry_after(client)
    if wait is not None and not keys.was_valid(key):
        raise TooManyFailures(client, wait)
    ctx = await keys.store.run(keys.verify, key)
    if ctx is None:
        keys.limiter.failed(client)
    return ctx
