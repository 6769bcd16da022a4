"""``sieve ask`` in this process, when no server answers: the services are built here (models,
indexes; no web app) and asked as ``POST /ask`` asks them, as the local operator (auth off),
with the API's checks and its errors' statuses. Imported only then: it loads the models."""

from __future__ import annotations

from typing import Any

import anyio
from pydantic import ValidationError

from app.api.access import Principal
from app.api.errors import status_of
from app.api.schemas import AskRequest, AskResponse
from app.api.validation import describe_validation
from app.cli.common import CliError, embedder_for
from app.services import Services
from app.settings import Settings


def ask_here(body: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """The /ask response body for ``body``; a refusal is a ``CliError`` with the API's status."""
    try:
        request = AskRequest.model_validate(body)
    except ValidationError as exc:
        raise CliError(f"bad options: {describe_validation(exc.errors())}") from None
    services = Services.build(settings.model_copy(update={"auth": False}), embedder_for(settings))
    try:
        # one event loop for the answer and the shutdown: an LLM client's pooled connections
        # belong to the loop that opened them
        return anyio.run(_answer_and_close, services, request)
    except Exception as exc:
        status = status_of(exc)
        if status is None:
            raise
        raise CliError(f"error {status}: {exc}") from None


async def _answer_and_close(services: Services, request: AskRequest) -> dict[str, Any]:
    try:
        collection = Principal("local").collection(request.collection)
        options = services.sieve.options(collection=collection, **request.overrides())
        answer = await services.sieve.ask(request.question, options)
        result: dict[str, Any] = AskResponse.of(answer).model_dump(mode="json")
        return result
    finally:
        await services.aclose()
