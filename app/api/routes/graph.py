"""Inspect the knowledge graph: find entities, show one entity's neighbourhood."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Query

from app.api.access import PrincipalDep, readable
from app.api.deps import ServicesDep, SieveDep
from app.api.schemas import EntityList, EntityOut, Neighbourhood
from app.collections import NAME_PATTERN

router = APIRouter(prefix="/graph", tags=["graph"])


@router.get("/entities", response_model=EntityList)
def entities(
    services: ServicesDep,
    sieve: SieveDep,
    principal: PrincipalDep,
    collection: str | None = Query(None, pattern=NAME_PATTERN),
    q: str = Query("", max_length=500, description="Part of an entity name (empty: all)."),
    limit: int = Query(20, ge=1, le=1000),
) -> EntityList:
    total, rows = sieve.entities(readable(services, principal, collection), q, limit)
    return EntityList(total=total, entities=[EntityOut(**r) for r in rows])


@router.get("/neighbourhood", response_model=Neighbourhood, responses={404: {}})
def neighbourhood(
    services: ServicesDep,
    sieve: SieveDep,
    principal: PrincipalDep,
    collection: str | None = Query(None, pattern=NAME_PATTERN),
    entity: str = Query(..., min_length=1, max_length=500, description="Entity key or name."),
    limit: int = Query(50, ge=1, le=1000, description="Most mentions and neighbours listed."),
) -> Neighbourhood:
    found = sieve.neighbourhood(readable(services, principal, collection), entity, limit)
    if found is None:
        raise HTTPException(404, f"no entity {entity!r} in the knowledge graph")
    return Neighbourhood.model_validate(found)
