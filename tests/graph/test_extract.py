"""The deterministic extractor on crafted sentences."""

from __future__ import annotations

import pytest

from graph import extract, normalise


def _mentions(sentence: str) -> list[tuple[str, str, str]]:
    return [(m.text, m.key, m.kind) for m in extract([sentence])]


def test_names_acronyms_possessives_dates_quantities() -> None:
    found = _mentions(
        "Scott Derrickson's film Doctor Strange was released by Marvel Studios on "
        "4 November 2016 and earned $677 million, NASA's engineers said."
    )
    assert ("Scott Derrickson's", "scott derrickson", "name") in found
    assert ("Doctor Strange", "doctor strange", "name") in found
    assert ("Marvel Studios", "marvel studios", "name") in found
    assert ("4 November 2016", "4 november 2016", "date") in found
    assert ("$677 million", "$677 million", "quantity") in found
    assert ("NASA's", "nasa", "acronym") in found or ("NASA", "nasa", "acronym") in found


def test_acronym_plurals_and_dotted_acronyms() -> None:
    keys = {
        key
        for _, key, kind in _mentions("Two NGOs in the U.S. asked the WHO.")
        if kind == "acronym"
    }
    assert keys == {"ngo", "us", "who"}


def test_particles_join_names_but_openers_do_not() -> None:
    found = _mentions("However, the University of California hired Leonardo da Vinci.")
    names = {key for _, key, _ in found}
    assert names == {"university of california", "leonardo da vinci"}


def test_a_lone_capitalised_sentence_opener_is_a_weak_mention() -> None:
    assert [(m.key, m.weak) for m in extract(["Scientists found nothing in Oslo."])] == [
        ("scientists", True),
        ("oslo", False),
    ]
    assert _mentions("The results were clear.") == []


def test_unicode_names() -> None:
    keys = {key for _, key, _ in _mentions("Zoë Saldaña met François Hollande in São Paulo.")}
    assert keys == {"zoë saldaña", "françois hollande", "são paulo"}


def test_quoted_terms_and_units() -> None:
    found = _mentions('They call it the "rolling forecast" and it covers 12 km in 3.5 hours.')
    assert ("rolling forecast", "rolling forecast", "quoted") in found
    assert {k for _, k, kind in found if kind == "quantity"} == {"12 km", "3.5 hours"}


def test_titles_are_mentions_of_their_own() -> None:
    mentions = extract(["no capitals in here."], titles=["Ed Wood (film)"])
    assert [(m.key, m.kind, m.sentence) for m in mentions] == [("ed wood", "title", -1)]


@pytest.mark.parametrize(
    ("surface", "kind", "key"),
    [
        ("The Beatles", "name", "beatles"),
        ("Beatles'", "name", "beatles"),
        ("Ed Wood (film)", "title", "ed wood"),
        ("NGOs", "acronym", "ngo"),
        ("U.S.", "acronym", "us"),
        ("Café  Society", "name", "café society"),
        ("ＮＡＳＡ", "acronym", "nasa"),  # full-width forms fold (NFKC)
        ("...", "name", ""),
    ],
)
def test_normalise(surface: str, kind: str, key: str) -> None:
    assert normalise(surface, kind) == key


def test_mentions_carry_their_sentence_in_order() -> None:
    mentions = extract(["Alice Munro wrote it.", "Later Bob Dylan sang in Paris and Rome."])
    assert [(m.key, m.sentence) for m in mentions] == [
        ("alice munro", 0),
        ("bob dylan", 1),
        ("paris", 1),
        ("rome", 1),
    ]
