"""LLM triples: strict validation and the cache (the worker is tested in tests/app)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from graph import Triple
from graph.triples import MalformedTriplesError, TripleCache, parse_triples, text_hash

GOOD = {"triples": [{"subject": "Ada  Lovelace", "relation": "worked with", "object": "Babbage"}]}


def test_valid_json_and_fenced_json_parse() -> None:
    expected = [Triple("Ada Lovelace", "worked with", "Babbage")]
    assert parse_triples(json.dumps(GOOD)) == expected
    assert parse_triples(f"```json\n{json.dumps(GOOD)}\n```") == expected
    assert parse_triples('{"triples": []}') == []


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("Sure! Here are the triples: ...", "not JSON"),
        ('{"triples": [], "notes": "x"}', "only key"),
        ('[{"subject": "a", "relation": "b", "object": "c"}]', "only key"),
        ('{"triples": {"subject": "a"}}', "must be a list"),
        ('{"triples": [{"subject": "a", "relation": "b"}]}', "exactly subject"),
        ('{"triples": [{"subject": "a", "relation": "b", "object": 3}]}', "object must be"),
        ('{"triples": [{"subject": " ", "relation": "b", "object": "c"}]}', "subject must be"),
        (
            json.dumps({"triples": [{"subject": "a", "relation": "r" * 61, "object": "c"}]}),
            "relation",
        ),
        (json.dumps({"triples": [GOOD["triples"][0]] * 21}), "at most 20"),
    ],
)
def test_malformed_output_is_refused_with_a_reason(raw: str, reason: str) -> None:
    with pytest.raises(MalformedTriplesError, match=reason):
        parse_triples(raw)


def test_cache_round_trip_per_model(tmp_path: Path) -> None:
    cache = TripleCache(tmp_path / "t.sqlite")
    digest = text_hash("Ada Lovelace worked with Charles Babbage.")
    assert cache.get(digest, "m1") is None
    cache.put(digest, "m1", [Triple("Ada Lovelace", "worked with", "Charles Babbage")])
    cache.put(digest, "m2", [])
    cache.close()
    reopened = TripleCache(tmp_path / "t.sqlite")
    assert reopened.get(digest, "m1") == [Triple("Ada Lovelace", "worked with", "Charles Babbage")]
    assert reopened.get(digest, "m2") == []
