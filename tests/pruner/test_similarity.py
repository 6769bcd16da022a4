import pytest

from index import Embedder
from pruner import Pruner, SimilarityPruner

PASSAGE = [
    "The Eiffel Tower is in Paris.",
    "It was completed in 1889 for the World's Fair.",
    "Bananas are rich in potassium.",
]


@pytest.fixture(scope="module")
def pruner(embedder: Embedder) -> SimilarityPruner:
    return SimilarityPruner(embedder.encode)


def test_satisfies_the_pruner_contract(pruner: SimilarityPruner) -> None:
    assert isinstance(pruner, Pruner)


def test_keeps_relevant_sentences_and_drops_the_rest(pruner: SimilarityPruner) -> None:
    [out] = pruner.process("Where is the Eiffel Tower?", [PASSAGE])
    assert 0 in out.kept and 2 not in out.kept
    assert len(out.sentence_scores) == 3 and all(0 <= s <= 1 for s in out.sentence_scores)
    assert out.pruned_text.startswith("The Eiffel Tower is in Paris.")
    assert 0 < out.compression < 1


def test_rerank_score_orders_passages(pruner: SimilarityPruner) -> None:
    near, far = pruner.process(
        "When was the Eiffel Tower finished?",
        [PASSAGE[:2], ["Potatoes grow underground.", "They are tubers."]],
    )
    assert near.rerank_score > far.rerank_score


def test_threshold_extremes(pruner: SimilarityPruner) -> None:
    [none] = pruner.process("Eiffel Tower", [PASSAGE], threshold=1.0)
    assert none.kept == [] and none.pruned_text == "" and none.compression == 1.0
    [everything] = pruner.process("Eiffel Tower", [PASSAGE], threshold=0.0)
    assert everything.kept == [0, 1, 2] and everything.compression == 0.0


def test_empty_and_invalid_input(pruner: SimilarityPruner) -> None:
    assert pruner.process("anything", []) == []
    [empty] = pruner.process("anything", [[]])
    assert empty.kept == [] and empty.rerank_score == 0.0
    with pytest.raises(ValueError, match="threshold"):
        pruner.process("q", [PASSAGE], threshold=-0.1)
    with pytest.raises(ValueError, match="empty"):
        pruner.process("  ", [PASSAGE])
