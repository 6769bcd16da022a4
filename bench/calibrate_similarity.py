"""Pick the similarity baseline's default threshold on WikiQA train (not a benchmark set).

    python -m bench.calibrate_similarity

For every question with at least one correct answer sentence, each candidate sentence is scored
by the baseline pruner. We report, per threshold, the recall of correct sentences and the share
of sentences dropped, and pick the highest threshold that keeps >= 90 % of correct sentences
(pruning for RAG must above all keep the answer). Writes bench/results/calibrate_similarity.json.
"""

from __future__ import annotations

import csv
import logging
from collections import OrderedDict

import numpy as np

from bench.common import data_dir, machine, require, write_json
from index import Embedder
from pruner import SimilarityPruner

TARGET_RECALL = 0.90


def load_wikiqa() -> list[tuple[str, list[str], list[int]]]:
    groups: OrderedDict[str, tuple[list[str], list[int]]] = OrderedDict()
    path = require(data_dir() / "wikiqa" / "WikiQA-train.tsv")
    with path.open(encoding="utf-8") as fh:
        for row in csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE):
            if row[0] == "QuestionID":
                continue
            question, sentence, label = row[1], row[-2] if len(row) == 7 else row[3], row[-1]
            sents, labels = groups.setdefault(question, ([], []))
            sents.append(sentence)
            labels.append(int(label))
    return [(q, s, lab) for q, (s, lab) in groups.items() if any(lab)]


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    data = load_wikiqa()
    pruner = SimilarityPruner(Embedder().load().encode)
    scores, labels = [], []
    for question, sentences, labs in data:
        [out] = pruner.process(question, [sentences], threshold=0.0)
        scores += out.sentence_scores
        labels += labs
    s, y = np.array(scores), np.array(labels)
    table = []
    for t in np.round(np.arange(0.05, 0.8, 0.05), 2):
        kept = s >= t
        table.append(
            {
                "threshold": float(t),
                "recall_of_answer_sentences": round(float(kept[y == 1].mean()), 4),
                "sentences_dropped": round(float(1 - kept.mean()), 4),
            }
        )
    ok = [r for r in table if r["recall_of_answer_sentences"] >= TARGET_RECALL]
    chosen = max(ok, key=lambda r: r["threshold"]) if ok else table[0]
    path = write_json(
        "calibrate_similarity",
        {
            "data": "WikiQA train, questions with >= 1 correct sentence",
            "questions": len(data),
            "sentences": len(s),
            "target_recall": TARGET_RECALL,
            "chosen": chosen,
            "table": table,
            "machine": machine(),
        },
    )
    print(f"chosen {chosen} -> {path}")


if __name__ == "__main__":
    main()
