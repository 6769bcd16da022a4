"""LLM backends: extractive, and the OpenAI client against a real HTTP stub server."""

from __future__ import annotations

import asyncio

import pytest

from app.llm import ContextSentence, ExtractiveLLM, LLMError, OpenAILLM, Passage
from tests.app.stub_llm import StubServer

PASSAGES = [
    Passage(
        1,
        "Paris",
        ("Paris", "Landmarks"),
        [
            ContextSentence("The Eiffel Tower is in Paris.", 0.9),
            ContextSentence("It opened in 1889.", 0.4),
        ],
    ),
    Passage(2, "Rome", (), [ContextSentence("The Colosseum is in Rome.", 0.6)]),
]


def test_extractive_cites_best_sentences_in_context_order() -> None:
    answer = asyncio.run(ExtractiveLLM(max_sentences=2, relative=0.5).generate("q", PASSAGES))
    assert answer == "The Eiffel Tower is in Paris. [1] The Colosseum is in Rome. [2]"


def test_openai_backend_over_http(stub_llm: StubServer) -> None:
    llm = OpenAILLM(stub_llm.base_url, "tiny", api_key="secret", timeout_s=5)
    answer = asyncio.run(llm.generate("Where is the Eiffel Tower?", PASSAGES))
    assert answer == "In Paris [1]."
    sent = stub_llm.requests[-1]
    assert sent["auth"] == "Bearer secret" and sent["body"]["model"] == "tiny"
    user = sent["body"]["messages"][1]["content"]
    # context first, numbered, then the question
    assert user.index("[1] Paris — Landmarks") < user.index("[2] Rome") < user.index("Question:")
    assert (
        "[n]" in sent["body"]["messages"][0]["content"]
        or "[1]" in sent["body"]["messages"][0]["content"]
    )


def test_openai_backend_errors_are_llm_errors(stub_llm: StubServer) -> None:
    stub_llm.status = 500
    try:
        with pytest.raises(LLMError, match="500"):
            asyncio.run(OpenAILLM(stub_llm.base_url, "m", timeout_s=5).generate("q", PASSAGES))
    finally:
        stub_llm.status = 200
    stub_llm.delay_s = 1.0
    try:
        with pytest.raises(LLMError, match="timed out"):
            asyncio.run(OpenAILLM(stub_llm.base_url, "m", timeout_s=0.2).generate("q", PASSAGES))
    finally:
        stub_llm.delay_s = 0.0
    with pytest.raises(LLMError, match="unreachable"):
        asyncio.run(OpenAILLM("http://127.0.0.1:9/v1", "m", timeout_s=2).generate("q", PASSAGES))


def test_extractive_drops_sentences_far_below_the_best() -> None:
    passages = [
        Passage(1, "A", (), [ContextSentence("Strong.", 0.8), ContextSentence("Weak.", 0.3)]),
    ]
    assert asyncio.run(ExtractiveLLM(max_sentences=3).generate("q", passages)) == "Strong. [1]"
    with pytest.raises(ValueError, match="relative"):
        ExtractiveLLM(relative=1.5)


def test_extractive_answer_leads_with_the_best_sentence() -> None:
    """Its passage comes first; a passage's own sentences stay in reading order."""
    passages = [
        Passage(1, "A", (), [ContextSentence("Weaker one.", 0.5, 0.55)]),
        Passage(
            2,
            "B",
            (),
            [ContextSentence("Context first.", 0.5, 0.6), ContextSentence("Best.", 0.9, 0.7)],
        ),
    ]
    answer = asyncio.run(ExtractiveLLM(max_sentences=3, relative=0.5).generate("q", passages))
    assert answer == "Context first. [2] Best. [2] Weaker one. [1]"


def test_extractive_answers_read_as_prose() -> None:
    """A sentence of hard-wrapped text loses its line breaks and indentation."""
    wrapped = "If You institute patent\n    litigation, then any patent\n    licenses terminate."
    passages = [Passage(1, "Licence", (), [ContextSentence(wrapped, 0.9)])]
    answer = asyncio.run(ExtractiveLLM().generate("q", passages))
    assert answer == "If You institute patent litigation, then any patent licenses terminate. [1]"


def test_stream_chunks_without_choices_are_skipped_and_errors_raised() -> None:
    from app.llm.openai import _delta

    url = "http://x/v1"
    assert _delta('data: {"choices": [], "prompt_filter_results": []}', url) == ""
    assert _delta('data: {"choices": [], "usage": {"total_tokens": 3}}', url) == ""
    assert _delta('data: {"choices": [{"delta": {"content": "Hi"}}]}', url) == "Hi"
    assert _delta(": keep-alive", url) == "" and _delta("data: [DONE]", url) is None
    with pytest.raises(LLMError, match="mid-stream: overloaded"):
        _delta('data: {"error": {"message": "overloaded"}}', url)
    with pytest.raises(LLMError, match="malformed"):
        _delta("data: {not json", url)
