"""Typed dependencies: routes receive the services built in the lifespan.

They are coroutines because they never block: FastAPI runs a plain function dependency on the
worker thread pool, and a saturated pool must not delay even the cheapest route."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.collection import Collection
from app.pipeline import Pipeline
from app.services import Services
from app.settings import Settings
from app.sieve import Sieve


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_default_collection(services: ServicesDep) -> Collection:
    return services.default_collection


async def get_sieve(services: ServicesDep) -> Sieve:
    return services.sieve


async def get_pipeline(services: ServicesDep) -> Pipeline:
    return services.pipeline


async def get_app_settings(services: ServicesDep) -> Settings:
    return services.settings


CollectionDep = Annotated[Collection, Depends(get_default_collection)]
SieveDep = Annotated[Sieve, Depends(get_sieve)]
PipelineDep = Annotated[Pipeline, Depends(get_pipeline)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
