"""The API key routes (admin keys only): ``GET|POST /api/keys``, ``DELETE /api/keys/{key_id}``."""

from __future__ import annotations

from typing import Annotated, Any, Literal, cast

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from netra_server import wire as server_wire
from netra_server.api.params import ID_MAX, Admin
from netra_server.auth import ROLES
from netra_server.deps import state_of
from netra_server.errors import ApiError
from netra_server.responses import ExactJSONResponse
from netra_server.store import ApiKeyRecord
from netra_server.validation import BadRequest
from netra_server.wire import errors

__all__ = ["router"]

router = APIRouter(default_response_class=ExactJSONResponse)


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["admin", "ingest", "read"] = "read"
    tenantId: str | None = Field(default=None, max_length=ID_MAX)
    name: str = Field(default="", max_length=200)


def _key(rec: ApiKeyRecord, shape: type[server_wire.ApiKey] = server_wire.ApiKey, **more: Any) -> Any:
    """The key's public fields (never its hash)."""
    return shape(key_id=rec.key_id, project_id=rec.project_id, name=rec.name, role=cast(server_wire.Role, rec.role),
                 tenant_id=rec.tenant_id, created_at=rec.created_at, revoked=rec.revoked, **more)


@router.get("/api/keys", tags=["keys"], summary="List the project's API keys (admin)",
             response_model=server_wire.ApiKeysResponse, responses=errors(401, 403, 503))
async def list_keys(request: Request, ctx: Admin) -> ExactJSONResponse:
    state = state_of(request)
    keys = await state.store.run(state.store.list_keys, ctx.project_id)
    return ExactJSONResponse(server_wire.ApiKeysResponse(data=[_key(k) for k in keys]))


@router.post("/api/keys", tags=["keys"], summary="Create an API key (admin); the key is shown once",
              response_model=server_wire.NewApiKeyResponse,
              responses=errors(400, 401, 403, 503))
async def create_key(request: Request, ctx: Admin, body: KeyCreate) -> ExactJSONResponse:
    state = state_of(request)
    if body.role not in ROLES:  # pragma: no cover - Literal already checks
        raise BadRequest("bad role")
    try:
        key, rec = await state.store.run(
            state.keys.create_key, ctx.project_id, role=body.role, tenant_id=body.tenantId or None, name=body.name
        )
    except ValueError as exc:
        raise BadRequest(str(exc)) from exc
    return ExactJSONResponse(server_wire.NewApiKeyResponse(data=_key(rec, server_wire.NewApiKey, key=key)))


@router.delete("/api/keys/{key_id}", tags=["keys"], summary="Revoke an API key (admin)",
                response_model=server_wire.ApiKeyResponse,
                responses=errors(400, 401, 403, 404, 503, e404="No such key in this project"))
async def revoke_key(request: Request, ctx: Admin, key_id: Annotated[str, Path(max_length=64)]) -> ExactJSONResponse:
    state = state_of(request)
    try:
        rec = await state.store.run(state.keys.revoke, key_id, project_id=ctx.project_id)
    except KeyError as exc:
        raise ApiError(404, f"no API key {key_id!r} in this project") from exc
    return ExactJSONResponse(server_wire.ApiKeyResponse(data=_key(rec)))
