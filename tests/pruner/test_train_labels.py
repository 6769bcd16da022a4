"""Token labels line up with sentences, also for awkward tokenisation."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from index import bundled_model_path
from pruner.data import Example
from pruner.train import encode


@pytest.fixture(scope="module")
def tok() -> PreTrainedTokenizerBase:
    return AutoTokenizer.from_pretrained(bundled_model_path(), local_files_only=True)


def _pieces(tok: PreTrainedTokenizerBase, text: str) -> list[int]:
    return list(tok(text, add_special_tokens=False)["input_ids"])


@pytest.mark.parametrize(
    "sentences,labels",
    [
        (["Zürich's naïve café — “quoted” 東京 emoji 🙂.", "Plain one."], [1, 0]),
        (["Only one sentence here."], [1]),
        (["A.", "B is relevant.", "C."], [0, 1, 0]),
    ],
)
def test_every_sentence_token_gets_its_label(
    tok: PreTrainedTokenizerBase, sentences: list[str], labels: list[int]
) -> None:
    ex = Example("What is it?", sentences, labels, "t", "d")
    ids, labs = encode(ex, tok, 256)
    assert len(ids) == len(labs) and ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id
    q = _pieces(tok, ex.question)
    assert labs[: len(q) + 2] == [-100] * (len(q) + 2)  # [CLS] question [SEP] are ignored
    assert labs[-1] == -100
    pos = len(q) + 2
    for sentence, label in zip(sentences, labels, strict=True):
        piece = _pieces(tok, sentence)
        assert ids[pos : pos + len(piece)] == piece
        assert labs[pos : pos + len(piece)] == [label] * len(piece)
        pos += len(piece)


def test_long_passages_are_truncated_to_the_window(tok: PreTrainedTokenizerBase) -> None:
    long = "word " * 400 + "end."
    ex = Example("Long?", ["Short relevant.", long, "Never reached."], [1, 0, 1], "t", "d")
    ids, labs = encode(ex, tok, 64)
    assert len(ids) == 64 and labs[-1] == -100
    assert set(labs) == {-100, 0, 1} and labs.count(1) == len(_pieces(tok, "Short relevant."))


def test_empty_passage_has_only_ignored_labels(tok: PreTrainedTokenizerBase) -> None:
    ids, labs = encode(Example("Why?", [], [], "t", "d"), tok, 64)
    assert set(labs) == {-100} and ids[-1] == tok.sep_token_id
