"""Multi-hop families of bench.families: HotpotQA (train sample, fullwiki dev subset), MuSiQue.

A case holds every supporting paragraph of its question (two to four), so several candidates
are relevant and the answer sits in the last hop's paragraph.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from html import unescape
from pathlib import Path
from typing import Any

from bench.families import (
    MAX_CANDIDATES,
    MIN_CANDIDATES,
    Candidate,
    Case,
    answer_strings,
    given,
    holding,
    make_case,
    read_json,
    read_jsonl,
    split_text,
)
from pruner.data import split_of


def _hotpot(items: Iterable[dict[str, Any]], family: str, rng: random.Random) -> list[Case]:
    """HotpotQA-format items whose supporting paragraphs are all in the context (titles carry
    HTML entities: "Richard Hornsby &amp; Sons")."""
    cases = []
    for item in items:
        context = {title: sents for title, sents in item["context"]}
        support: dict[str, list[int]] = {}
        for title, i in item["supporting_facts"]:
            support.setdefault(title, []).append(i)
        if not set(support) <= set(context):
            continue
        gold = [given(unescape(t), context[t], support[t], True) for t in support]
        others = [given(unescape(t), s) for t, s in context.items() if t not in support]
        others = [c for c in others if c.sentences][: MAX_CANDIDATES - len(gold)]
        if len(gold) + len(others) < MIN_CANDIDATES:
            continue
        yes_no = item["answer"].strip().lower() in ("yes", "no")
        answers = () if yes_no else answer_strings([item["answer"]])
        at = holding(gold, answers, evidence_only=True)
        cases.append(make_case(family, item["question"], gold, others, answers, at, rng))
    return cases


def hotpot_train(data: Path, rng: random.Random) -> list[Case]:
    """The HotpotQA train sample's items in the pruner's dev split (7 of 100)."""
    items = read_json(data / "hotpotqa_hipporag_train100" / "hotpotqa_train.json")
    dev = [item for item in items if split_of("hotpotqa", item["_id"]) == "dev"]
    return _hotpot(dev, "hotpot_train", rng)


def hotpot_fullwiki(data: Path, rng: random.Random) -> list[Case]:
    """AMOR's HotpotQA dev subset: the context is retrieved (hard distractors), and all gold
    paragraphs are in it for only about 150 of its 500 questions."""
    path = data / "hotpotqa_fullwiki_dev_subsets" / "amor_test500.jsonl"
    return _hotpot(read_jsonl(path), "hotpot_fullwiki", rng)


def _paragraph(title: str, text: str, relevant: bool = False) -> Candidate:
    return Candidate(title, split_text(text)[0], relevant, ())


def musique(data: Path, rng: random.Random) -> list[Case]:
    """MuSiQue train sample: the supporting paragraphs + random distractors up to 10.
    Paragraph labels only (no sentence evidence)."""
    cases = []
    for item in read_json(data / "musique_hipporag_train100" / "musique_train.json"):
        paragraphs = item["paragraphs"]
        last = item["question_decomposition"][-1]["paragraph_support_idx"]
        supporting = [p for p in paragraphs if p["is_supporting"]]
        supporting.sort(key=lambda p: p["idx"] != last)  # the last hop's holds the answer
        gold = [_paragraph(p["title"], p["paragraph_text"], True) for p in supporting]
        pool = [_paragraph(p["title"], p["paragraph_text"]) for p in paragraphs]
        pool = [
            c
            for c, p in zip(pool, paragraphs, strict=True)
            if c.sentences and not p["is_supporting"]
        ]
        others = rng.sample(pool, min(len(pool), MAX_CANDIDATES - len(gold)))
        answers = answer_strings([item["answer"], *item.get("answer_aliases", [])])
        at = holding(gold, answers, evidence_only=False)
        cases.append(make_case("musique", item["question"], gold, others, answers, at, rng))
    return cases
