"""Prometheus scrape endpoint."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from app.api.access import AdminDep
from app.observability import Metrics

router = APIRouter(tags=["operations"])


def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


MetricsDep = Annotated[Metrics, Depends(get_metrics)]


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def metrics(m: MetricsDep, _: AdminDep) -> Response:
    """Every metric in the Prometheus text format (sync: the scrape reads SQLite, so it runs in
    the threadpool). With auth on, for the admin key only (scrape with a bearer token)."""
    return Response(m.render(), media_type=CONTENT_TYPE_LATEST)
