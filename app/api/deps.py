"""Typed dependencies: routes receive the services built in the lifespan."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.library import Library
from app.pipeline import Pipeline
from app.services import Services
from app.settings import Settings


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_library(services: ServicesDep) -> Library:
    return services.library


def get_pipeline(services: ServicesDep) -> Pipeline:
    return services.pipeline


def get_app_settings(services: ServicesDep) -> Settings:
    return services.settings


LibraryDep = Annotated[Library, Depends(get_library)]
PipelineDep = Annotated[Pipeline, Depends(get_pipeline)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
