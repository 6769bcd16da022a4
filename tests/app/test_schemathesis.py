"""The API against its own OpenAPI schema: schemathesis generates requests for every operation
(valid and invalid ones), runs them in-process against the ASGI app with the real MiniLM
embedder, and checks that nothing answers 5xx and that every response matches the schema.

Skipped (not API): /metrics (Prometheus text) and the web UI (/, /static, /widget.js).
Driven through ``as_strategy`` rather than ``schemathesis.pytest.from_fixture``, whose
plugin reads a private pytest attribute that pytest 9 no longer has.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.python.asgi import shutdown_lifespans  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
)

from app.main import create_app  # noqa: E402
from app.settings import Settings  # noqa: E402
from index import Embedder  # noqa: E402

CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
NOT_API = r"^/(metrics|static/.*|widget\.js)?$"
EXAMPLES = 15  # per operation and generation mode


@pytest.fixture(scope="module")
def api_schema(embedder: Embedder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    data_dir: Path = tmp_path_factory.mktemp("schemathesis") / "data"
    app = create_app(Settings(data_dir=data_dir, _env_file=None), embedder)  # type: ignore[call-arg]
    yield schemathesis.openapi.from_asgi("/openapi.json", app).exclude(path_regex=NOT_API)
    shutdown_lifespans()  # closes the services the app's lifespan opened


def _run(operation: Any, mode: Any) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any) -> None:
        case.call_and_validate(checks=CHECKS)

    with contextlib.suppress(Unsatisfiable):  # negative mode: no parameters, no bad input
        check()


@pytest.mark.slow
@pytest.mark.parametrize(
    "mode", [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]
)
def test_api_conforms_to_its_schema(api_schema: Any, mode: Any) -> None:
    failures = []
    for result in api_schema.get_all_operations():
        operation = result.ok()
        try:
            _run(operation, mode)
        except (Exception, BaseExceptionGroup) as exc:  # run all operations, report every failure
            failures.append(f"{operation.label}: {str(exc)[:1500]}")
    assert not failures, "\n\n".join(failures)
