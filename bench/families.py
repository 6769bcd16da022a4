"""Labelled candidate sets for the passage reranker, sentence pruner and answer-sentence selector.

    python -m bench.families     # per-family summary and label checks on ../shared/data

One loader per data family in ../shared/data (formats and caveats: its SOURCES.md). A Case is a
question (or a claim) with 5–10 candidate passages in seeded random order, at least one of them
relevant, sentence-level evidence where the source has it, answer strings where it has them and
the one sentence that holds the answer where that is known.

"tune" families come from sources the pruner was trained on and keep only documents it never
trained on (the dev split of ``pruner.data.split_of``, negatives included; MultiRC's val
paragraphs, disjoint from the train part it trained on); "heldout" families the pruner never saw
(pruner.sources.HELD_OUT). Data only: no model code here. ``load`` is the entry
point; the multi-hop loaders live in bench/families_multihop.py, the other held-out ones in
bench/families_domain.py.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.parsing import split_sentences
from pruner.data import detok, split_of, unquote


@dataclass(frozen=True)
class Candidate:
    title: str
    sentences: list[str]  # the passage, one string per sentence (exact text, non-empty)
    relevant: bool  # passage-level label: this passage is (part of) the evidence
    evidence: tuple[int, ...]  # gold evidence sentences (empty when unknown or not relevant)


@dataclass(frozen=True)
class Case:
    family: str
    question: str  # a question (or a claim for FEVER/SciFact)
    candidates: list[Candidate]  # 5..10 passages, seeded shuffle, at least one relevant
    answers: tuple[str, ...]  # "answer kept" = one of them appears in the kept text; () if none
    answer_sentence: tuple[int, int] | None  # (candidate, sentence) holding THE answer, if known


ROLE: dict[str, str] = {
    "squad": "tune",
    "wikiqa": "tune",
    "scifact": "tune",
    "hotpot_train": "tune",
    "hotpot_fullwiki": "heldout",
    "musique": "heldout",
    "fever": "tune",
    "multirc": "tune",
    "covid": "heldout",
    "subjqa": "heldout",
}
FAMILIES: list[str] = list(ROLE)

MIN_CANDIDATES = 5
MAX_CANDIDATES = 10
NEGATIVES = MIN_CANDIDATES - 1  # beside one relevant passage
PASSAGE_WORDS = 150  # COVID-QA articles are cut into passages of about this many words
MAX_ANSWER_CHARS = 200  # longer COVID-QA "answers" are whole paragraphs

Loader = Callable[[Path, random.Random], list[Case]]


def load(name: str, data: Path, limit: int = 200, seed: int = 0) -> list[Case]:
    """The first ``limit`` cases of family ``name`` after a seeded shuffle (deterministic)."""
    loaders = _loaders()
    if name not in loaders:
        raise ValueError(f"unknown family {name!r}, expected one of {FAMILIES}")
    if limit <= 0:
        raise ValueError(f"limit must be > 0, got {limit}")
    cases = loaders[name](data, random.Random(seed))
    random.Random(seed).shuffle(cases)
    return cases[:limit]


# ---------------------------------------------------------------- shared helpers


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def read_jsonl(path: Path) -> Iterator[Any]:
    with path.open(encoding="utf-8") as fh:
        yield from (json.loads(line) for line in fh if line.strip())


def split_text(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """Sentences of raw text by the product's splitter, with their spans."""
    spans = [(s.start, s.end) for s in split_sentences(text)]
    return [text[a:b] for a, b in spans], spans


def sentence_at(spans: Sequence[tuple[int, int]], offset: int) -> int:
    """The sentence holding ``offset`` (the next one when it falls between sentences)."""
    return next((i for i, (_, end) in enumerate(spans) if offset < end), len(spans) - 1)


def given(
    title: str, raw: Sequence[str], gold: Iterable[int] = (), relevant: bool = False
) -> Candidate:
    """A candidate from sentences the source gives: stripped, empties dropped, gold renumbered."""
    keep = [i for i, s in enumerate(raw) if s.strip()]
    index = {old: new for new, old in enumerate(keep)}
    evidence = tuple(sorted({index[i] for i in gold if i in index}))
    return Candidate(title, [raw[i].strip() for i in keep], relevant, evidence)


def answer_strings(texts: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(t.strip() for t in texts if t.strip()))


def holding(
    gold: Sequence[Candidate], answers: Sequence[str], evidence_only: bool
) -> tuple[int, int] | None:
    """(candidate, sentence) of the first sentence of ``gold`` that contains an answer."""
    for k, cand in enumerate(gold):
        for i in cand.evidence if evidence_only else range(len(cand.sentences)):
            if any(a in cand.sentences[i] for a in answers):
                return k, i
    return None


def make_case(
    family: str,
    question: str,
    gold: list[Candidate],
    others: list[Candidate],
    answers: tuple[str, ...],
    answer_at: tuple[int, int] | None,
    rng: random.Random,
) -> Case:
    """Shuffle gold + others; ``answer_at`` indexes ``gold`` (candidate, sentence)."""
    candidates = gold + others
    order = list(range(len(candidates)))
    rng.shuffle(order)
    moved = None if answer_at is None else (order.index(answer_at[0]), answer_at[1])
    return Case(family, question, [candidates[i] for i in order], answers, moved)


# ---------------------------------------------------------------- tune families (dev split only)


def squad(data: Path, rng: random.Random) -> list[Case]:
    """SQuAD v1.1 dev articles of the pruner's dev split; 4 other paragraphs of the article."""
    cases = []
    for article in read_json(data / "squad_v1.1" / "dev-v1.1.json")["data"]:
        if split_of("squad_v1", article["title"]) != "dev":
            continue
        title = article["title"].replace("_", " ")
        paragraphs = [split_text(p["context"]) for p in article["paragraphs"]]
        for pi, para in enumerate(article["paragraphs"]):
            sentences, spans = paragraphs[pi]
            for qa in para["qas"]:
                at = sentence_at(spans, qa["answers"][0]["answer_start"])
                picks = rng.sample([j for j in range(len(paragraphs)) if j != pi], NEGATIVES)
                others = [Candidate(title, paragraphs[j][0], False, ()) for j in picks]
                gold = [Candidate(title, sentences, True, (at,))]
                answers = answer_strings(a["text"] for a in qa["answers"])
                cases.append(
                    make_case("squad", qa["question"], gold, others, answers, (0, at), rng)
                )
    return cases


def _wikiqa_groups(path: Path) -> list[tuple[str, list[str], list[int]]]:
    """(raw question field, sentences, labels) per run of rows with the same question."""
    groups: list[tuple[str, list[str], list[int]]] = []
    with path.open(encoding="utf-8") as fh:
        for row in csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE):
            if len(row) not in (5, 7) or row[0] == "QuestionID":
                continue  # 5 columns, or the original 7 (unquoted, with document id, title)
            if not groups or groups[-1][0] != row[1]:
                groups.append((row[1], [], []))
            groups[-1][1].append(detok(unquote(row[3]) if len(row) == 5 else row[5]))
            groups[-1][2].append(int(row[-1]))
    return groups


def wikiqa(data: Path, rng: random.Random) -> list[Case]:
    """WikiQA train questions of the dev split with a positive; 4 other questions' sentences.
    The split is keyed by the raw question field, as in pruner.data."""
    groups = [
        (q, given("", sents, [i for i, lab in enumerate(labels) if lab], True))
        for q, sents, labels in _wikiqa_groups(data / "wikiqa" / "WikiQA-train.tsv")
        if split_of("wikiqa", q) == "dev"
    ]
    groups = [(q, c) for q, c in groups if c.sentences]
    cases = []
    for question, gold in groups:
        if not gold.evidence:
            continue
        pool = [c for q, c in groups if q != question]
        others = [Candidate("", c.sentences, False, ()) for c in rng.sample(pool, NEGATIVES)]
        at = (0, gold.evidence[0])
        cases.append(make_case("wikiqa", unquote(question), [gold], others, (), at, rng))
    return cases


def scifact(data: Path, rng: random.Random) -> list[Case]:
    """SciFact train claims whose evidence and cited abstracts are all in the dev split;
    other dev-split abstracts fill up to 5 candidates."""
    corpus = {d["doc_id"]: d for d in read_jsonl(data / "scifact" / "corpus.jsonl")}
    pool = sorted(d for d in corpus if split_of("scifact", str(d)) == "dev")
    cases = []
    for claim in read_jsonl(data / "scifact" / "claims_train.jsonl"):
        evidence = {int(d): rationales for d, rationales in claim["evidence"].items()}
        docs = set(evidence) | {int(d) for d in claim.get("cited_doc_ids", [])}
        if not evidence or any(split_of("scifact", str(d)) != "dev" for d in docs):
            continue
        if any(d not in corpus for d in evidence):
            continue
        gold = [
            given(
                corpus[d]["title"],
                corpus[d]["abstract"],
                [i for r in rationales for i in r["sentences"]],
                True,
            )
            for d, rationales in evidence.items()
        ][:MAX_CANDIDATES]
        if not all(c.sentences for c in gold):
            continue
        fill = max(0, MIN_CANDIDATES - len(gold))
        picks = rng.sample([d for d in pool if d not in docs], fill)
        others = [given(corpus[d]["title"], corpus[d]["abstract"]) for d in picks]
        at = (0, gold[0].evidence[0]) if gold[0].evidence else None
        cases.append(make_case("scifact", claim["claim"], gold, others, (), at, rng))
    return cases


def _loaders() -> dict[str, Loader]:
    # imported here: those modules import the types and helpers above
    from bench import families_domain as domain
    from bench import families_multihop as multihop

    return {
        "squad": squad,
        "wikiqa": wikiqa,
        "scifact": scifact,
        "hotpot_train": multihop.hotpot_train,
        "hotpot_fullwiki": multihop.hotpot_fullwiki,
        "musique": multihop.musique,
        "fever": domain.fever,
        "multirc": domain.multirc,
        "covid": domain.covid,
        "subjqa": domain.subjqa,
    }


# ---------------------------------------------------------------- checks and summary


def problems(case: Case) -> list[str]:
    """The invariants every loader keeps that ``case`` breaks (empty when it is sound)."""
    found = []
    n = len(case.candidates)
    if not MIN_CANDIDATES <= n <= MAX_CANDIDATES:
        found.append(f"{n} candidates")
    if not any(c.relevant for c in case.candidates):
        found.append("no relevant candidate")
    for k, c in enumerate(case.candidates):
        if not c.sentences or not all(s.strip() for s in c.sentences):
            found.append(f"candidate {k}: no sentences or an empty one")
        if c.evidence and not c.relevant:
            found.append(f"candidate {k}: evidence {c.evidence} in an irrelevant passage")
        if any(not 0 <= i < len(c.sentences) for i in c.evidence):
            found.append(f"candidate {k}: evidence {c.evidence} out of range")
    if case.answer_sentence is not None:
        k, i = case.answer_sentence
        if not (0 <= k < n and case.candidates[k].relevant):
            found.append(f"answer sentence {case.answer_sentence} not in a relevant candidate")
        elif not 0 <= i < len(case.candidates[k].sentences):
            found.append(f"answer sentence {case.answer_sentence} out of range")
    return found


def answer_in_sentence(case: Case) -> bool | None:
    """Whether the answer sentence holds an answer string (None: no answers or no sentence)."""
    if case.answer_sentence is None or not case.answers:
        return None
    k, i = case.answer_sentence
    return any(a in case.candidates[k].sentences[i] for a in case.answers)


def summary(cases: Sequence[Case]) -> dict[str, float]:
    candidates = [c for case in cases for c in case.candidates]
    checked = [v for v in map(answer_in_sentence, cases) if v is not None]
    with_answers = [case for case in cases if case.answers]
    in_gold = [
        any(
            a in s for c in case.candidates if c.relevant for s in c.sentences for a in case.answers
        )
        for case in with_answers
    ]
    return {
        "cases": len(cases),
        "candidates": _mean([len(case.candidates) for case in cases]),
        "sentences": _mean([len(c.sentences) for c in candidates]),
        "answer_sentence": _mean([case.answer_sentence is not None for case in cases]),
        "relevant": _mean([c.relevant for c in candidates]),
        "answers": _mean([bool(case.answers) for case in cases]),
        "answer_in_sentence": _mean(checked),
        "answer_in_gold": _mean(in_gold),
        "broken": sum(bool(problems(case)) for case in cases),
    }


def _mean(values: Sequence[float]) -> float:
    return round(sum(values) / len(values), 2) if values else float("nan")


def main() -> None:
    from bench.common import data_dir

    data = data_dir()
    columns = list(summary([]))
    print(f"{'family':16} {'role':8} " + " ".join(f"{c:>18}" for c in columns))
    for name in FAMILIES:
        cases = load(name, data)
        row = summary(cases)
        print(f"{name:16} {ROLE[name]:8} " + " ".join(f"{row[c]:>18}" for c in columns))
        for case in cases:
            for problem in problems(case)[:1]:
                print(f"  {name}: {case.question[:60]!r}: {problem}")


if __name__ == "__main__":
    main()
