"""bench/families.py on tiny fake files in each source's format (no ../shared data needed):
shapes, labels, the pruner's dev split, answer sentences and the per-source clean-ups."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from itertools import count
from pathlib import Path
from typing import Any

import pytest

from bench.families import FAMILIES, ROLE, Candidate, Case, detok, load, problems
from pruner.data import split_of
from pruner.sources import HELD_OUT


def _names(source: str, split: str, n: int, stem: str = "doc") -> list[str]:
    """The first ``n`` names ``stem0, stem1, ...`` that split_of puts in ``split``."""
    out: list[str] = []
    for i in count():
        if len(out) == n:
            return out
        if split_of(source, f"{stem}{i}") == split:
            out.append(f"{stem}{i}")
    raise AssertionError("unreachable")


def _ints(source: str, split: str, n: int) -> list[int]:
    return [int(name) for name in _names(source, split, n, stem="")]


def _sentences(tag: str, n: int) -> list[str]:
    return [f"Sentence {i} of {tag} is about topic {tag}{i}." for i in range(n)]


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _write_json(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload))


def _sound(cases: list[Case], family: str) -> None:
    assert cases
    for case in cases:
        assert case.family == family
        assert problems(case) == [], (case.question, problems(case))


def _gold(case: Case) -> list[Candidate]:
    return [c for c in case.candidates if c.relevant]


def _answer_text(case: Case) -> str:
    assert case.answer_sentence is not None
    k, i = case.answer_sentence
    return case.candidates[k].sentences[i]


def test_roles_and_families() -> None:
    assert list(ROLE) == FAMILIES
    assert set(ROLE.values()) == {"tune", "heldout"}
    assert [f for f in FAMILIES if ROLE[f] == "tune"] == [
        "squad",
        "wikiqa",
        "scifact",
        "hotpot_train",
        "fever",
        "multirc",
    ]
    # every family pruner v3 never trained on is held out here, and only those
    assert {f for f in FAMILIES if ROLE[f] == "heldout"} == set(HELD_OUT)


def test_detok_undoes_ptb_tokens() -> None:
    raw = "Stephen -LRB- or Stephan -RRB- , nicknamed `` Woz '' , co-founded Apple Inc. ."
    assert detok(raw) == 'Stephen (or Stephan), nicknamed "Woz", co-founded Apple Inc.'
    assert detok("Allan 's desk was n't -LSB- 1 -RSB- here ; 1945 -- 1997 .") == (
        "Allan's desk wasn't [1] here; 1945 – 1997."
    )
    assert detok('they would " restore national pride " again .') == (
        'they would "restore national pride" again.'
    )


# ---------------------------------------------------------------- tune families


def _squad_paragraph(tag: str, answer: str | None = None) -> dict[str, Any]:
    sentences = _sentences(tag, 4)
    if answer is None:
        return {"context": " ".join(sentences), "qas": []}
    sentences[2] = f"The answer of {tag} is {answer} indeed."
    context = " ".join(sentences)
    start = context.index(answer)
    qa = {
        "question": f"What is {tag}?",
        "id": tag,
        "answers": [{"text": answer, "answer_start": start}],
    }
    return {"context": context, "qas": [qa]}


def test_squad_uses_dev_articles_and_same_article_negatives(tmp_path: Path) -> None:
    dev, train = _names("squad_v1", "dev", 1, "Article_")[0], _names("squad_v1", "train", 1)[0]
    articles = [
        {
            "title": t,
            "paragraphs": [_squad_paragraph(f"{t}p0", "Ruby Red")]
            + [_squad_paragraph(f"{t}p{i}") for i in range(1, 6)],
        }
        for t in (dev, train)
    ]
    _write_json(tmp_path / "squad_v1.1" / "dev-v1.1.json", {"data": articles})
    cases = load("squad", tmp_path)
    _sound(cases, "squad")
    assert len(cases) == 1  # the train-split article is left out
    case = cases[0]
    assert len(case.candidates) == 5 and len(_gold(case)) == 1
    assert {c.title for c in case.candidates} == {dev.replace("_", " ")}
    assert _gold(case)[0].evidence == (2,)
    assert case.answers == ("Ruby Red",) and "Ruby Red" in _answer_text(case)


def test_wikiqa_groups_unquotes_and_keeps_dev_questions(tmp_path: Path) -> None:
    questions = _names("wikiqa", "dev", 6, "what is thing ")
    rows = ["QuestionID\tQuestion\tSentenceID\tSentence\tLabel"]
    for qi, q in enumerate(questions):
        for si in range(3):
            label = int(qi == 0 and si == 1)
            rows.append(f"Q{qi}{si}\t{q}\tS{qi}{si}\tPlain sentence {si} of {qi} .\t{label}")
        if qi == 0:  # a CSV-quoted field, then a row in the original 7-column format
            rows.append(f'Q9\t{q}\tS9\t"It is, as they say, ""big"" ."\t1')
            rows.append(f"Q7\t{q}\tD1\tThing\tD1-0\tA 7-column row ( old ) .\t0")
    rows.append(f"Q8\t{_names('wikiqa', 'train', 1, 'q')[0]}\tS8\tA train sentence .\t1")
    path = tmp_path / "wikiqa" / "WikiQA-train.tsv"
    path.parent.mkdir(parents=True)
    path.write_text("\n".join(rows) + "\n")
    cases = load("wikiqa", tmp_path)
    _sound(cases, "wikiqa")
    assert len(cases) == 1  # one dev question with a positive
    gold = _gold(cases[0])[0]
    assert gold.sentences[1] == "Plain sentence 1 of 0."
    assert gold.sentences[3] == 'It is, as they say, "big".'
    assert gold.sentences[4] == "A 7-column row (old)."
    assert gold.evidence == (1, 3) and _answer_text(cases[0]) == gold.sentences[1]
    assert cases[0].answers == () and len(cases[0].candidates) == 5


def test_scifact_keeps_claims_whose_documents_are_all_dev(tmp_path: Path) -> None:
    dev, train = _ints("scifact", "dev", 8), _ints("scifact", "train", 1)
    corpus = [
        {"doc_id": d, "title": f"Paper {d}", "abstract": _sentences(str(d), 4)} for d in dev + train
    ]
    claims = [
        {
            "id": 1,
            "claim": "A holds.",
            "cited_doc_ids": [dev[0], dev[7]],
            "evidence": {str(dev[0]): [{"sentences": [2, 3], "label": "SUPPORT"}]},
        },
        {
            "id": 2,
            "claim": "B holds.",
            "cited_doc_ids": [dev[1], train[0]],
            "evidence": {str(dev[1]): [{"sentences": [0], "label": "SUPPORT"}]},
        },
        {"id": 3, "claim": "C holds.", "cited_doc_ids": [dev[2]], "evidence": {}},
    ]
    _write_jsonl(tmp_path / "scifact" / "corpus.jsonl", corpus)
    _write_jsonl(tmp_path / "scifact" / "claims_train.jsonl", claims)
    cases = load("scifact", tmp_path)
    _sound(cases, "scifact")
    assert [c.question for c in cases] == ["A holds."]
    case = cases[0]
    assert len(case.candidates) == 5 and _gold(case)[0].evidence == (2, 3)
    assert _gold(case)[0].title == f"Paper {dev[0]}"
    assert _answer_text(case) == _sentences(str(dev[0]), 4)[2]
    titles = {c.title for c in case.candidates}
    assert f"Paper {train[0]}" not in titles
    assert f"Paper {dev[7]}" not in titles  # cited without evidence: not a sure negative


def _hotpot_item(qid: str, answer: str, gold_present: bool = True) -> dict[str, Any]:
    context = [[f"Dist {qid} {i}", _sentences(f"d{i}", 3)] for i in range(8)]
    context.append(["Gold &amp; One", [" First gold.", "", f" It says {answer} here."]])
    if gold_present:
        context.append(["Gold Two", ["Second gold mentions nothing.", "More."]])
    return {
        "_id": qid,
        "question": f"Question {qid}?",
        "answer": answer,
        "supporting_facts": [["Gold &amp; One", 2], ["Gold Two", 0]],
        "context": context,
        "type": "bridge",
        "level": "hard",
    }


def test_hotpot_train_uses_dev_items_and_supporting_facts(tmp_path: Path) -> None:
    dev, train = _names("hotpotqa", "dev", 2, "id"), _names("hotpotqa", "train", 1, "id")
    items = [
        _hotpot_item(dev[0], "Paris"),
        _hotpot_item(dev[1], "yes"),
        _hotpot_item(train[0], "X"),
    ]
    _write_json(tmp_path / "hotpotqa_hipporag_train100" / "hotpotqa_train.json", items)
    cases = {c.question: c for c in load("hotpot_train", tmp_path)}
    _sound(list(cases.values()), "hotpot_train")
    assert set(cases) == {f"Question {dev[0]}?", f"Question {dev[1]}?"}
    case = cases[f"Question {dev[0]}?"]
    assert len(case.candidates) == 10
    gold = {c.title: c for c in _gold(case)}
    assert set(gold) == {"Gold & One", "Gold Two"}
    assert gold["Gold & One"].sentences == ["First gold.", "It says Paris here."]
    assert gold["Gold & One"].evidence == (1,) and gold["Gold Two"].evidence == (0,)
    assert case.answers == ("Paris",) and _answer_text(case) == "It says Paris here."
    yes = cases[f"Question {dev[1]}?"]
    assert yes.answers == () and yes.answer_sentence is None


def test_hotpot_fullwiki_needs_every_gold_paragraph(tmp_path: Path) -> None:
    items = [_hotpot_item("a", "Rome"), _hotpot_item("b", "Oslo", gold_present=False)]
    _write_jsonl(tmp_path / "hotpotqa_fullwiki_dev_subsets" / "amor_test500.jsonl", items)
    cases = load("hotpot_fullwiki", tmp_path)
    _sound(cases, "hotpot_fullwiki")
    assert [c.question for c in cases] == ["Question a?"]


# ---------------------------------------------------------------- held-out families


def test_musique_supporting_paragraphs_and_last_hop_answer(tmp_path: Path) -> None:
    paragraphs = [
        {
            "idx": i,
            "title": f"T{i}",
            "paragraph_text": " ".join(_sentences(f"m{i}", 2)),
            "is_supporting": False,
        }
        for i in range(14)
    ]
    paragraphs[3] |= {"is_supporting": True, "paragraph_text": "Hop one names Anna Bell. Fine."}
    paragraphs[9] |= {"is_supporting": True, "paragraph_text": "Intro here. Then Bell won."}
    item = {
        "id": "2hop__1_2",
        "paragraphs": paragraphs,
        "question": "Who won?",
        "question_decomposition": [
            {"id": 1, "question": "q1", "answer": "x", "paragraph_support_idx": 3},
            {"id": 2, "question": "q2", "answer": "Anna Bell", "paragraph_support_idx": 9},
        ],
        "answer": "Anna Bell",
        "answer_aliases": ["Bell"],
        "answerable": True,
    }
    _write_json(tmp_path / "musique_hipporag_train100" / "musique_train.json", [item])
    (case,) = load("musique", tmp_path)
    _sound([case], "musique")
    assert len(case.candidates) == 10 and {c.title for c in _gold(case)} == {"T3", "T9"}
    assert all(c.evidence == () for c in case.candidates)
    assert case.answers == ("Anna Bell", "Bell")
    assert _answer_text(case) == "Then Bell won."  # the last hop's paragraph is searched first


def test_fever_claim_doc_and_other_claims_docs(tmp_path: Path) -> None:
    def claim(i: int) -> dict[str, Any]:
        sentences = [f"Doc {i} -LRB- born 1950 -RRB- is `` here '' .", "", f"Fact {i} ."]
        return {
            "id": str(i),
            "claim": f"Claim {i}.",
            "label": "SUPPORTS",
            "docs": [{"docid": f"Doc_{i}_-LRB-x-RRB-", "sentences": sentences}],
            "evidence_groups": [[{"docid": f"Doc_{i}_-LRB-x-RRB-", "sentence_ids": [2]}]],
        }

    def dev(i: int) -> bool:
        return split_of("fever", f"Doc_{i}_-LRB-x-RRB-") == "dev"

    dev_ids = [i for i in range(400) if dev(i)][:6]
    train_ids = [i for i in range(400) if not dev(i)][:6]
    claims = [claim(i) for i in [*dev_ids, *train_ids]]
    _write_jsonl(tmp_path / "eraser_fever" / "fever_val.jsonl", claims)
    cases = load("fever", tmp_path, limit=20)
    _sound(cases, "fever")
    assert len(cases) == 6  # pages pruner v3 trained on are neither claims nor negatives
    assert {c.title for case in cases for c in case.candidates} == {f"Doc {i} (x)" for i in dev_ids}
    for case in cases:
        i = case.question.split()[1].rstrip(".")
        (gold,) = _gold(case)
        assert gold.title == f"Doc {i} (x)"
        assert gold.sentences == [f'Doc {i} (born 1950) is "here".', f"Fact {i}."]
        assert gold.evidence == (1,) and _answer_text(case) == f"Fact {i}."
        assert len({c.title for c in case.candidates}) == 5


def test_multirc_paragraph_evidence(tmp_path: Path) -> None:
    rows = [
        {
            "id": f"d{i}:0",
            "docid": f"d{i}",
            "question": f"Q {i} ?",
            "sentences": [f"Para {i} sentence {j} , ok ." for j in range(4)],
            "evidence_sentence_ids": [1, 3],
            "answer_options": [],
        }
        for i in range(5)
    ]
    _write_jsonl(tmp_path / "eraser_multirc" / "multirc_val.jsonl", rows)
    cases = load("multirc", tmp_path)
    _sound(cases, "multirc")
    assert len(cases) == 5
    for case in cases:
        (gold,) = _gold(case)
        assert gold.evidence == (1, 3) and gold.sentences[0].endswith("sentence 0, ok.")
        assert case.answer_sentence is None and case.answers == ()


def test_covid_cuts_articles_into_passages(tmp_path: Path) -> None:
    body = [f"Claim {i} is one of many words in this long study text here." for i in range(80)]
    body[40] = "The virus binds the ACE2 receptor in the lung."
    context = "A Study Title\n\nhttps://example.org\n\n" + " ".join(body)
    answer = "the ACE2 receptor"
    long_answer = " ".join(body[:20])
    qas = [
        {
            "question": "What binds?",
            "id": 1,
            "is_impossible": False,
            "answers": [{"text": answer + " ", "answer_start": context.index(answer)}],
        },
        {
            "question": "Too long?",
            "id": 2,
            "is_impossible": False,
            "answers": [{"text": long_answer, "answer_start": context.index(long_answer)}],
        },
    ]
    data = {"data": [{"paragraphs": [{"context": context, "document_id": 1, "qas": qas}]}]}
    _write_json(tmp_path / "covid_qa_deepset_200423" / "200423_covidQA.fixed_offsets.json", data)
    (case,) = load("covid", tmp_path)
    _sound([case], "covid")
    assert case.answers == (answer,) and _answer_text(case) == body[40]
    assert {c.title for c in case.candidates} == {"A Study Title"}
    words = [sum(len(s.split()) for s in c.sentences) for c in case.candidates]
    assert max(words) <= 150
    (gold,) = _gold(case)
    assert gold.sentences[gold.evidence[0]] == body[40]


_SUBJQA_COLUMNS = ["item_id", "domain", "question", "review_id", "review"]
_SUBJQA_COLUMNS += ["human_ans_spans", "human_ans_indices"]


def test_subjqa_relocates_spans_and_prefers_declined_reviews(tmp_path: Path) -> None:
    review = "Great phone. It has a very strong, deep battery. Weren't sad. ANSWERNOTFOUND"
    span = "It has a very strong , deep battery"  # re-tokenised span: offsets no longer match
    start = review.index("It has")
    rows = [["i1", "electronics", "How is battery?", "r0", review, span, f"({start}, 99)"]]
    for r in range(1, 4):  # other reviews of the item marked as not answering it
        rows.append(
            [
                "i1",
                "electronics",
                "How is battery?",
                f"r{r}",
                f"Review {r} talks. Nothing more. ANSWERNOTFOUND",
                "ANSWERNOTFOUND",
                "(0, 0)",
            ]
        )
    for r in range(4, 9):
        rows.append(
            [
                "i2",
                "electronics",
                "How is screen?",
                f"r{r}",
                f"Other item {r}. Fine. ANSWERNOTFOUND",
                "ANSWERNOTFOUND",
                "(0, 0)",
            ]
        )
    rows.append(
        ["i2", "electronics", "How is screen?", "r9", "Screen is gone.", "missing", "(0, 7)"]
    )
    path = tmp_path / "subjqa" / "electronics_dev.csv"
    path.parent.mkdir(parents=True)
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows([_SUBJQA_COLUMNS, *rows])
    (tmp_path / "subjqa" / "electronics_train.csv").write_text("not read\n")
    (case,) = load("subjqa", tmp_path)  # the unfindable span is skipped
    _sound([case], "subjqa")
    assert case.answers == ("It has a very strong, deep battery",)
    assert _answer_text(case) == "It has a very strong, deep battery."
    texts = [" ".join(c.sentences) for c in case.candidates]
    assert not any("ANSWERNOTFOUND" in t for t in texts)
    assert sum(t.startswith("Review ") for t in texts) == 3  # all declined ones are taken


# ---------------------------------------------------------------- load and checks


def _multirc_files(tmp_path: Path, n: int) -> None:
    rows = [
        {
            "id": f"d{i}:0",
            "docid": f"d{i}",
            "question": f"Q {i} ?",
            "sentences": [f"Para {i} ."],
            "evidence_sentence_ids": [0],
            "answer_options": [],
        }
        for i in range(n)
    ]
    _write_jsonl(tmp_path / "eraser_multirc" / "multirc_val.jsonl", rows)


def test_load_is_deterministic_and_limited(tmp_path: Path) -> None:
    _multirc_files(tmp_path, 12)
    first, again = load("multirc", tmp_path, limit=4, seed=3), load("multirc", tmp_path, 4, 3)
    assert first == again and len(first) == 4
    assert load("multirc", tmp_path, limit=100, seed=3)[:4] == first
    other = load("multirc", tmp_path, limit=12, seed=4)
    assert {c.question for c in other} == {f"Q {i} ?" for i in range(12)}
    with pytest.raises(ValueError, match="nope"):
        load("nope", tmp_path)
    with pytest.raises(ValueError, match="limit"):
        load("multirc", tmp_path, limit=0)


def test_problems_flags_broken_cases() -> None:
    good = Candidate("t", ["a.", "b."], True, (1,))
    bad = Candidate("t", ["a."], False, ())
    case = Case("x", "q?", [good] + [bad] * 4, ("a",), (0, 0))
    assert problems(case) == []
    assert problems(replace(case, candidates=[bad] * 5))[0] == "no relevant candidate"
    assert problems(replace(case, candidates=[good] * 3))[0] == "3 candidates"
    assert "out of range" in problems(replace(case, answer_sentence=(0, 5)))[0]
    assert "not in a relevant" in problems(replace(case, answer_sentence=(1, 0)))[0]
    wrong = replace(good, evidence=(4,))
    assert "out of range" in problems(replace(case, candidates=[wrong] + [bad] * 4))[0]
