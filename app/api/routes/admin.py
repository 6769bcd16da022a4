"""Collections and API keys, for the admin key only (with auth off: the local operator)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from app.api.access import AdminDep, get_gatekeeper
from app.api.deps import ServicesDep
from app.auth import ApiKey
from app.collections import NAME_PATTERN
from index import CollectionInfo, UnknownCollectionError

router = APIRouter(prefix="/admin", tags=["admin"])


class CollectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(..., pattern=NAME_PATTERN)


class CollectionOut(BaseModel):
    name: str
    created_at: str
    documents: int
    chunks: int

    @classmethod
    def of(cls, c: CollectionInfo) -> CollectionOut:
        return cls(name=c.name, created_at=c.created_at, documents=c.documents, chunks=c.chunks)


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    collections: list[str] = Field(..., min_length=1, max_length=100)
    role: Literal["read", "write"]
    name: str = Field("", max_length=200, description="A label for listings.")


class KeyOut(BaseModel):
    id: str
    name: str
    role: str
    collections: list[str]
    prefix: str = Field(description="Start of the key, to recognise it; not usable.")
    created_at: str
    revoked_at: str | None

    @classmethod
    def of(cls, k: ApiKey) -> KeyOut:
        return cls(
            id=k.id,
            name=k.name,
            role=k.role,
            collections=list(k.collections),
            prefix=k.prefix,
            created_at=k.created_at,
            revoked_at=k.revoked_at,
        )


class NewKey(KeyOut):
    key: str = Field(description="The key itself: shown once, only its hash is stored.")


@router.post("/collections", status_code=201, response_model=CollectionOut, responses={409: {}})
def create_collection(
    body: CollectionIn, services: ServicesDep, _: AdminDep, response: Response
) -> CollectionOut:
    if not services.collections.create(body.name):
        raise HTTPException(409, f"collection {body.name!r} exists already")
    found = [c for c in services.collections.infos() if c.name == body.name]
    return CollectionOut.of(found[0])


@router.get("/collections", response_model=list[CollectionOut])
def list_collections(services: ServicesDep, _: AdminDep) -> list[CollectionOut]:
    return [CollectionOut.of(c) for c in services.collections.infos()]


@router.post("/keys", status_code=201, response_model=NewKey, responses={404: {}})
def create_key(body: KeyIn, services: ServicesDep, request: Request, _: AdminDep) -> NewKey:
    for name in body.collections:
        if not services.collections.exists(name):
            raise UnknownCollectionError(name)
    record, plaintext = get_gatekeeper(request).keys.create(
        body.name or "key", body.role, body.collections
    )
    return NewKey(**KeyOut.of(record).model_dump(), key=plaintext)


@router.get("/keys", response_model=list[KeyOut])
def list_keys(request: Request, _: AdminDep) -> list[KeyOut]:
    return [KeyOut.of(k) for k in get_gatekeeper(request).keys.list()]


@router.delete("/keys/{key_id}", response_model=KeyOut, responses={404: {}})
def revoke_key(key_id: str, request: Request, _: AdminDep) -> KeyOut:
    """Revoke a key: it stops working at once (idempotent)."""
    record = get_gatekeeper(request).keys.revoke(key_id)
    if record is None:
        raise HTTPException(404, f"no API key {key_id!r}")
    return KeyOut.of(record)
