"""Training examples for the pruner from the labelled QA sets in ../shared/data.

An example is (question, passage sentences, per-sentence 0/1 labels). Sources:

- SQuAD v1.1 dev: the sentence holding the answer span is relevant. Passages vary in length:
  a window of 1–10 sentences around the answer, the whole paragraph, or the paragraph joined with
  1–2 other paragraphs of the same article (their sentences all 0). Another paragraph of the same
  article is a hard negative (all 0).
- SQuAD v2 (CS224N dev half): unanswerable questions give all-zero passages.
- WikiQA train: the candidate sentences of a question with their labels.
- SciFact train: rationale sentences of the evidence abstracts; cited abstracts without evidence
  are all-zero passages.
- HotpotQA train (100-question sample): supporting-fact sentences; distractor paragraphs are 0.
  The HotpotQA *dev* subsets are kept out: they are the multi-hop retrieval benchmark.

Everything is split by document (SQuAD article title, SciFact abstract, WikiQA / HotpotQA
question) into train and dev with a stable hash, so no document is on both sides.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
import re
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pruner.inference import split_sentences

DEV_SHARE = 0.1


@dataclass(frozen=True)
class Example:
    question: str
    sentences: list[str]
    labels: list[int]
    source: str
    doc: str  # the unit of the train/dev split

    @property
    def relevant(self) -> bool:
        return any(self.labels)


def split_of(source: str, doc: str, dev_share: float = DEV_SHARE) -> str:
    """'dev' or 'train', stable across runs and machines."""
    h = int(hashlib.sha256(f"{source}:{doc}".encode()).hexdigest()[:8], 16)
    return "dev" if h / 0xFFFFFFFF < dev_share else "train"


def _sentences_with_offsets(text: str) -> list[tuple[int, int]]:
    spans, pos = [], 0
    for s in split_sentences(text):
        start = text.index(s, pos)
        spans.append((start, start + len(s)))
        pos = start + len(s)
    return spans


def squad_labels(paragraph: str, answer_start: int) -> tuple[list[str], list[int], int]:
    """The paragraph's sentences, 0/1 labels (1: the sentence holding the answer) and its index."""
    spans = _sentences_with_offsets(paragraph)
    sentences = [paragraph[a:b] for a, b in spans]
    gold = next((i for i, (a, b) in enumerate(spans) if a <= answer_start < b), None)
    if gold is None:  # answer starts in whitespace between sentences: take the next sentence
        gold = next((i for i, (a, _) in enumerate(spans) if a > answer_start), len(spans) - 1)
    return sentences, [int(i == gold) for i in range(len(sentences))], gold


def _squad_passages(
    paragraph: str, answer_start: int, others: list[str], rng: random.Random
) -> tuple[list[str], list[int]]:
    sentences, labels, gold = squad_labels(paragraph, answer_start)
    shape = rng.random()
    if shape < 0.35 and len(sentences) > 1:  # a window of 1–10 sentences around the answer
        size = rng.randint(1, min(10, len(sentences)))
        lo = rng.randint(max(0, gold - size + 1), min(gold, len(sentences) - size))
        return sentences[lo : lo + size], labels[lo : lo + size]
    if shape < 0.65 and others:  # joined with 1–2 other paragraphs of the article
        extra = [
            split_sentences(p) for p in rng.sample(others, min(len(others), rng.randint(1, 2)))
        ]
        parts = [(sentences, labels)] + [(e, [0] * len(e)) for e in extra]
        rng.shuffle(parts)
        return [s for p, _ in parts for s in p], [lab for _, ls in parts for lab in ls]
    return sentences, labels


def squad_v1(path: Path, rng: random.Random) -> Iterator[Example]:
    data = json.loads(path.read_text())["data"]
    for article in data:
        title = article["title"]
        contexts = [p["context"] for p in article["paragraphs"]]
        for pi, para in enumerate(article["paragraphs"]):
            others = contexts[:pi] + contexts[pi + 1 :]
            for qa in para["qas"]:
                answer = qa["answers"][0]
                sentences, labels = _squad_passages(
                    para["context"], answer["answer_start"], others, rng
                )
                yield Example(qa["question"], sentences, labels, "squad_v1", title)
                if others and rng.random() < 0.5:  # hard negative from the same article
                    negative = split_sentences(rng.choice(others))
                    yield Example(qa["question"], negative, [0] * len(negative), "squad_v1", title)


def squad_v2_unanswerable(path: Path) -> Iterator[Example]:
    for article in json.loads(path.read_text())["data"]:
        for para in article["paragraphs"]:
            sentences = split_sentences(para["context"])
            for qa in para["qas"]:
                if qa.get("is_impossible"):
                    yield Example(
                        qa["question"],
                        sentences,
                        [0] * len(sentences),
                        "squad_v1",
                        article["title"],  # same split unit as the v1 articles
                    )


def unquote(field: str) -> str:
    """A CSV-quoted field as text. The re-formatted WikiQA train rows (5 columns) quote every
    field holding a comma or a quote ("...""Rebel""..."); read with QUOTE_NONE, v1 and v2
    trained on those sentences with the quotes left in."""
    if len(field) >= 2 and field[0] == field[-1] == '"':
        return field[1:-1].replace('""', '"')
    return field


def _wikiqa_rows(path: Path) -> Iterator[tuple[str, str, list[str], list[int]]]:
    """(raw question field, question, sentences, labels) per WikiQA question."""
    groups: OrderedDict[str, tuple[list[str], list[int]]] = OrderedDict()
    with path.open(encoding="utf-8") as fh:
        for row in csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE):
            if row[0] == "QuestionID" or len(row) < 5:
                continue
            sentence = row[5] if len(row) == 7 else unquote(row[3])
            sentences, labels = groups.setdefault(row[1], ([], []))
            sentences.append(detok(sentence))
            labels.append(int(row[-1]))
    for question, (sentences, labels) in groups.items():
        yield question, unquote(question), sentences, labels


def wikiqa(path: Path) -> Iterator[Example]:
    for key, question, sentences, labels in _wikiqa_rows(path):
        # the split key stays the field as written, so the train/dev split of v1/v2 is unchanged
        yield Example(question, sentences, labels, "wikiqa", key)


def scifact(claims: Path, corpus: Path) -> Iterator[Example]:
    abstracts = {}
    with corpus.open() as fh:
        for line in fh:
            doc = json.loads(line)
            abstracts[str(doc["doc_id"])] = doc["abstract"]
    with claims.open() as fh:
        for line in fh:
            claim = json.loads(line)
            for doc_id in {str(d) for d in claim.get("cited_doc_ids", [])}:
                sentences = abstracts.get(doc_id)
                if not sentences:
                    continue
                gold = {i for ev in claim["evidence"].get(doc_id, []) for i in ev["sentences"]}
                labels = [int(i in gold) for i in range(len(sentences))]
                yield Example(claim["claim"], list(sentences), labels, "scifact", doc_id)


def hotpotqa(path: Path) -> Iterator[Example]:
    for item in json.loads(path.read_text()):
        support = {(t, i) for t, i in item["supporting_facts"]}
        for title, sentences in item["context"]:
            cleaned = [s.strip() for s in sentences if s.strip()]
            labels = [int((title, i) in support) for i, s in enumerate(sentences) if s.strip()]
            yield Example(item["question"], cleaned, labels, "hotpotqa", item["_id"])


_PTB = {
    "-LRB-": "(",
    "-RRB-": ")",
    "-LSB-": "[",
    "-RSB-": "]",
    "-LCB-": "{",
    "-RCB-": "}",
    "-COLON-": ":",
    "--": "–",
}
_OPEN_QUOTE = re.compile(r"``\s*")
_CLOSE_QUOTE = re.compile(r"\s*''")
_SPACE_BEFORE = re.compile(r"\s+(?=[.,;:!?%)\]}]|n't\b|'(?:s|re|ve|ll|d|m)\b)")
_SPACE_AFTER = re.compile(r"(?<=[(\[{])\s+")
_DOUBLE_STOP = re.compile(r"(?<=\w\.) \.$")  # "Apple Inc. ." at the end of a sentence


def detok(text: str) -> str:
    """Tokenised text (FEVER, MultiRC: PTB; WikiQA: spaces before punctuation) made normal."""
    text = _DOUBLE_STOP.sub("", text)
    for token, char in _PTB.items():
        text = text.replace(token, char)
    text = _CLOSE_QUOTE.sub('"', _OPEN_QUOTE.sub('"', text))
    text = _SPACE_AFTER.sub("", _SPACE_BEFORE.sub("", _pair_quotes(text)))
    return text.strip()


def _pair_quotes(text: str) -> str:
    """'said " hi " to' -> 'said "hi" to' when the sentence's quotes pair up."""
    parts = text.split('"')
    if len(parts) % 2 == 0:
        return text
    inner = [f'"{parts[i].strip()}"{parts[i + 1]}' for i in range(1, len(parts), 2)]
    return parts[0] + "".join(inner)


def build(data_dir: Path, seed: int = 0) -> dict[str, list[Example]]:
    """All examples, split into {"train": [...], "dev": [...]} by document."""
    rng = random.Random(seed)
    sources: list[Iterator[Example]] = [
        squad_v1(data_dir / "squad_v1.1" / "dev-v1.1.json", rng),
        squad_v2_unanswerable(
            data_dir / "squad_v2.0_cs224n_dev_half" / "dev-v2.0-cs224n-half.json"
        ),
        wikiqa(data_dir / "wikiqa" / "WikiQA-train.tsv"),
        scifact(data_dir / "scifact" / "claims_train.jsonl", data_dir / "scifact" / "corpus.jsonl"),
        hotpotqa(data_dir / "hotpotqa_hipporag_train100" / "hotpotqa_train.json"),
    ]
    out: dict[str, list[Example]] = {"train": [], "dev": []}
    for examples in sources:
        for ex in examples:
            if ex.sentences:
                out[split_of(ex.source, ex.doc)].append(ex)
    return out


def split_manifest(splits: dict[str, list[Example]]) -> dict[str, dict[str, object]]:
    """Per source: the dev documents by name and the train document count (saved with the
    model, so anyone can check that a figure was measured on documents it never saw)."""
    docs: dict[str, dict[str, set[str]]] = {}
    for name, examples in splits.items():
        for ex in examples:
            docs.setdefault(ex.source, {"train": set(), "dev": set()})[name].add(ex.doc)
    return {
        src: {"dev_documents": sorted(parts["dev"]), "train_document_count": len(parts["train"])}
        for src, parts in docs.items()
    }
