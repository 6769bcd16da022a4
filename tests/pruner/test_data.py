"""Training-data builders on tiny files in the real formats; split and metric helpers."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from pruner.base import assemble
from pruner.data import Example, hotpotqa, scifact, split_of, squad_v1, wikiqa
from pruner.evaluate import auc, keep_all, metrics, random_at

PARA = "Paris is the capital of France. It has many museums. The Louvre is the largest one."


def test_squad_labels_the_answer_sentence(tmp_path: Path) -> None:
    path = tmp_path / "squad.json"
    qa = {
        "question": "What is the largest museum?",
        "answers": [{"text": "The Louvre", "answer_start": PARA.index("The Louvre")}],
    }
    other = "Lyon is another city. It is known for food."
    path.write_text(
        json.dumps(
            {
                "data": [
                    {
                        "title": "Paris",
                        "paragraphs": [
                            {"context": PARA, "qas": [qa]},
                            {"context": other, "qas": []},
                        ],
                    }
                ]
            }
        )
    )
    examples = list(squad_v1(path, random.Random(1))) + list(squad_v1(path, random.Random(7)))
    positives = [e for e in examples if e.relevant]
    assert positives and all(e.doc == "Paris" for e in examples)
    for e in positives:
        gold = [s for s, lab in zip(e.sentences, e.labels, strict=True) if lab]
        assert gold == ["The Louvre is the largest one."]


def test_wikiqa_scifact_hotpotqa(tmp_path: Path) -> None:
    (tmp_path / "w.tsv").write_text(
        "QuestionID\tQuestion\tSentenceID\tSentence\tLabel\n"
        "Q1\thow tall ?\tS1\tIt is tall .\t0\nQ1\thow tall ?\tS2\tIt is 300 m ( high ) .\t1\n"
    )
    [w] = list(wikiqa(tmp_path / "w.tsv"))
    assert w.sentences == ["It is tall.", "It is 300 m (high)."] and w.labels == [0, 1]


def test_wikiqa_csv_quoted_rows_lose_their_quotes_but_keep_their_split_key(
    tmp_path: Path,
) -> None:
    (tmp_path / "w.tsv").write_text(
        'Q1\t"who sang ""rebel"", then?"\tS1\t"The song "" Rebel "" was a hit, then ."\t1\n'
    )
    [w] = list(wikiqa(tmp_path / "w.tsv"))
    assert w.question == 'who sang "rebel", then?'
    # detokenised as bench/families.py reads WikiQA (quotes paired), so training and
    # evaluation see the same text
    assert w.sentences == ['The song "Rebel" was a hit, then.']
    assert w.doc == '"who sang ""rebel"", then?"'  # the train/dev split of v1/v2 is unchanged

    (tmp_path / "corpus.jsonl").write_text(json.dumps({"doc_id": 7, "abstract": ["A.", "B."]}))
    (tmp_path / "claims.jsonl").write_text(
        json.dumps(
            {
                "id": 1,
                "claim": "B holds.",
                "evidence": {"7": [{"sentences": [1]}]},
                "cited_doc_ids": [7],
            }
        )
    )
    [s] = list(scifact(tmp_path / "claims.jsonl", tmp_path / "corpus.jsonl"))
    assert s.labels == [0, 1] and s.doc == "7"

    (tmp_path / "h.json").write_text(
        json.dumps(
            [
                {
                    "_id": "x",
                    "question": "q?",
                    "supporting_facts": [["T", 1]],
                    "context": [["T", ["a.", " b."]], ["U", ["c."]]],
                }
            ]
        )
    )
    t, u = hotpotqa(tmp_path / "h.json")
    assert t.labels == [0, 1] and u.labels == [0] and t.sentences == ["a.", "b."]


def test_split_is_stable_and_by_document() -> None:
    assert split_of("squad_v1", "Paris") == split_of("squad_v1", "Paris")
    share = sum(split_of("s", str(i)) == "dev" for i in range(5000)) / 5000
    assert 0.07 < share < 0.13


def test_auc_and_metrics() -> None:
    assert auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    assert auc([0.5, 0.5], [0, 1]) == pytest.approx(0.5)
    examples = [Example("q", ["a.", "b."], [1, 0], "s", "d"), Example("q", ["c."], [0], "s", "e")]
    scored = [assemble(["a.", "b."], [0.9, 0.1], 0.0, 0.9), assemble(["c."], [0.2], 0.0, 0.2)]
    row = next(r for r in metrics(examples, scored)["by_threshold"] if r["threshold"] == 0.5)
    assert row["answer_kept"] == 1.0 and row["compression_irrelevant"] == 1.0
    assert row["compression"] == pytest.approx(2 / 3, abs=1e-4)
    assert (row["precision"], row["recall"], row["f1"]) == (1.0, 1.0, 1.0)
    low = next(r for r in metrics(examples, scored)["by_threshold"] if r["threshold"] == 0.1)
    assert low["precision"] == pytest.approx(1 / 3, abs=1e-4) and low["recall"] == 1.0
    assert low["compression_tokens"] == 0.0  # default counter: characters


def test_random_and_keep_all_baselines() -> None:
    examples = [
        Example("q", ["a.", "b.", "c.", "d."], [1, 1, 0, 0], "s", "d"),
        Example("q", ["e.", "f."], [0, 0], "s", "e"),
    ]
    assert keep_all(examples)["answer_kept"] == 1.0 and keep_all(examples)["compression"] == 0.0
    half = random_at(examples, 0.5)
    assert half["recall"] == 0.5 and half["precision"] == pytest.approx(2 / 6, abs=1e-4)
    assert half["answer_kept"] == pytest.approx(1 - 0.25)  # two gold sentences, each kept w.p. 1/2


def test_keep_first_adds_the_title_only_when_something_else_is_kept() -> None:
    sentences, scores = ["Title.", "Body."], [0.0, 0.9]
    assert assemble(sentences, scores, 0.5, 0.9, keep_first=True).kept == [0, 1]
    assert assemble(sentences, scores, 0.5, 0.9, keep_first=False).kept == [1]
    assert assemble(sentences, [0.1, 0.2], 0.5, 0.2, keep_first=True).kept == []
    assert assemble(sentences, scores, 0.5, 0.9, keep_first=True).sentence_scores[0] == 0.0
