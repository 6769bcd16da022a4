"""The ask options are declared once (app/api/options.py): /ask, the chat-compatible endpoints,
the CLI and the pipeline's options agree on their names."""

from __future__ import annotations

import dataclasses
from typing import get_args

from fastapi.testclient import TestClient

from app.answers import AskOptions
from app.api.chat_schemas import ChatCompletionRequest, OllamaGenerateRequest, SieveOptions
from app.api.options import AskKnobs, AskParams
from app.api.schemas import AskRequest
from app.cli import build_parser
from app.retrieval_modes import RETRIEVAL_MODES, Retrieval
from app.settings import Settings


def test_every_option_reaches_the_pipeline_under_its_own_name() -> None:
    pipeline_options = {f.name for f in dataclasses.fields(AskOptions)}
    assert set(AskParams.model_fields) <= pipeline_options
    assert set(AskParams().overrides()) | {"collection"} == set(AskParams.model_fields)


def test_rest_and_chat_endpoints_share_the_knobs() -> None:
    knobs = set(AskKnobs.model_fields)
    for model in (AskRequest, SieveOptions, ChatCompletionRequest, OllamaGenerateRequest):
        assert knobs <= set(model.model_fields), model.__name__
        for name in knobs:  # the same bounds and description everywhere
            assert repr(model.model_fields[name]) == repr(AskKnobs.model_fields[name]), name
    assert "explain" not in SieveOptions.model_fields  # a chat reply has no place for it


def test_the_cli_has_one_flag_per_option() -> None:
    parser = build_parser()
    ask = next(
        a
        for a in parser._subparsers._group_actions[0].choices.values()
        if a.prog.endswith(" ask")  # type: ignore[union-attr]
    )
    flags = {o for a in ask._actions for o in a.option_strings}
    assert {"--" + n.replace("_", "-") for n in AskParams.model_fields} <= flags
    retrieval = next(a for a in ask._actions if "--retrieval" in a.option_strings)
    assert tuple(retrieval.choices or ()) == RETRIEVAL_MODES


def test_one_retrieval_literal() -> None:
    assert RETRIEVAL_MODES == get_args(Retrieval) == ("vector", "lexical", "graph", "hybrid")
    assert get_args(Settings.model_fields["retrieval"].annotation) == RETRIEVAL_MODES


def test_chat_requests_take_the_ask_knobs_with_the_same_bounds(client: TestClient) -> None:
    for i, what in enumerate(["kettle", "toaster", "blender", "mixer"]):
        text = (
            f"The {what} boils, browns or blends in {i + 2} minutes. The {what} is sold in "
            f"hardware shops. Every {what} has a two-year warranty. Spare parts for the {what} "
            "are sent by post."
        )
        client.post("/documents", json={"title": what.title(), "text": text})
    chat = {"messages": [{"role": "user", "content": "How fast is the kettle?"}]}
    knobs = {"max_context_tokens": 16, "candidates": 2, "prune_threshold": 0, "hops": 0}

    def stats(body: dict[str, object]) -> dict[str, int]:
        r = client.post("/v1/chat/completions", json={**body, "temperature": 0.2})
        assert r.status_code == 200, r.text
        return r.json()["sieve"]["stats"]  # type: ignore[no-any-return]

    free, bound = stats({**chat, "prune_threshold": 0}), stats({**chat, **knobs})
    assert free["tokens_after"] > 16 >= bound["tokens_after"]  # the knobs bind
    assert free["candidates"] > 2 >= bound["candidates"]
    for bad in ({"max_context_tokens": 8}, {"candidates": 0}, {"top_k": 101}):
        assert client.post("/v1/chat/completions", json={**chat, **bad}).status_code == 422
        assert client.post("/api/chat", json={**chat, **bad, "stream": False}).status_code == 422


def test_the_cli_starts_without_the_service() -> None:
    """Every `sieve` command imports the ask flags: they must not pull in the models, the
    indexes or the web app (`sieve --help` and asking a running server stay instant)."""
    import subprocess
    import sys

    code = (
        "import sys, app.cli; heavy = [m for m in ('torch', 'faiss', 'fastapi', 'ray',"
        " 'app.services', 'app.pipeline', 'index', 'pypdf', 'lxml', 'docx', 'bs4')"
        " if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_the_light_default_collection_name_is_the_store_s() -> None:
    from app.names import DEFAULT_COLLECTION_NAME
    from index import DEFAULT_COLLECTION

    assert DEFAULT_COLLECTION_NAME == DEFAULT_COLLECTION
