"""Ingestion jobs: their status and progress (an upload with ``wait=false`` returns one)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Query

from app.api.access import PrincipalDep, readable
from app.api.deps import ServicesDep
from app.api.schemas import JobList, JobOut
from app.collections import NAME_PATTERN

router = APIRouter(prefix="/jobs", tags=["documents"])


@router.get("/{job_id}", response_model=JobOut, responses={404: {}})
def get_job(job_id: str, services: ServicesDep, principal: PrincipalDep) -> JobOut:
    """queued → running → done (with the stored documents) or failed (with the reason)."""
    job = services.jobs.get(job_id)
    if job is None or not principal.can(job.collection, write=False):
        raise HTTPException(404, f"no ingestion job {job_id!r}")
    return JobOut.of(job)


@router.get("", response_model=JobList)
def list_jobs(
    services: ServicesDep,
    principal: PrincipalDep,
    collection: str | None = Query(None, pattern=NAME_PATTERN),
    limit: int = Query(50, ge=1, le=500),
) -> JobList:
    """The collection's latest jobs, newest first."""
    name = readable(services, principal, collection)
    return JobList(jobs=[JobOut.of(j) for j in services.jobs.list(name, limit)])
