"""API keys: created, hashed, verified in constant time, revoked.

A key looks like ``nk_<key id>_<secret>``; only its SHA-256 is stored (``netra_api_keys``), looked up
by the key id and compared with :func:`hmac.compare_digest`. A key seeded by the operator
(``NETRA_API_KEY``) may be any string of 16+ characters; its id is derived from its hash.

Roles: ``admin`` (send spans, read everything of its project, manage keys), ``ingest`` (send spans
only), ``read`` (read only; may be limited to one tenant: then every read is filtered to that tenant and
other tenants' routes answer 403).

Public API (stable)::

    from netra_server.auth import KeyManager, AuthContext
    km = KeyManager(store)
    key, rec = km.create_key(project_id, role="read", tenant_id="acme", name="acme portal")
    ctx = km.verify(key)        # AuthContext | None
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Literal

from netra_server.store import ApiKeyRecord, Project, Store

__all__ = ["ROLES", "AuthContext", "KeyManager", "key_id_for", "new_key"]

ROLES = ("admin", "ingest", "read")
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
    def __init__(self, store: Store, *, cache_seconds: float = 10.0) -> None:
        self.store = store
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, AuthContext | None]] = {}
        self._projects: dict[str, Project] = {}
        self._lock = threading.Lock()

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()

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
        if tenant_id and role != "read":
            raise ValueError("only read keys can be limited to a tenant (use role='read')")
        if self.store.get_project(project_id) is None:
            raise ValueError(f"no project {project_id!r}; `netra keys list` shows the projects")
        if key is None:
            key = new_key()
        elif len(key) < 16:
            raise ValueError("an API key must be at least 16 characters long")
        key_id = key_id_for(key)
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
        """(True, the caller) if ``key`` was verified recently, else (False, None); never touches the store."""
        hit = self._cache.get(_hash(key)) if key and len(key) <= 512 else None
        if hit is not None and hit[0] > time.monotonic():
            return True, hit[1]
        return False, None

    def verify(self, key: str) -> AuthContext | None:
        """The caller behind ``key``, or None (unknown, wrong or revoked key)."""
        if not key or len(key) > 512:
            return None
        digest = _hash(key)
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        ctx: AuthContext | None = None
        rec = self.store.get_key(key_id_for(key))
        if rec is not None and hmac.compare_digest(rec.key_hash, digest) and not rec.revoked:
            project = self._project(rec.project_id)
            if project is not None:
                ctx = AuthContext(rec.key_id, rec.project_id, project.organisation_id, rec.role, rec.tenant_id or None)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (now + self.cache_seconds, ctx)
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
