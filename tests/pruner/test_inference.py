"""ContextPruner on a tiny randomly initialised model: shapes, windows, save → load round trip."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer

from index import bundled_model_path
from pruner import Pruner
from pruner.inference import ContextPruner, split_sentences
from pruner.modeling import PrunerModel
from tests.pruner.tiny import save_tiny_checkpoint


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_checkpoint(tmp_path_factory.mktemp("tiny-pruner"))


def test_round_trip_keeps_weights(tiny_checkpoint: Path) -> None:
    model = PrunerModel.from_pretrained(tiny_checkpoint)
    again = PrunerModel.from_pretrained(tiny_checkpoint)
    for (name, a), (_, b) in zip(
        model.state_dict().items(), again.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    assert (tiny_checkpoint / "model.safetensors").exists()


def test_process_shapes_and_contract(tiny_checkpoint: Path) -> None:
    pruner = ContextPruner(tiny_checkpoint, device="cpu")
    assert isinstance(pruner, Pruner)
    contexts = [["First sentence here.", "Second one."], ["Only one."], []]
    out = pruner.process("What is here?", contexts, threshold=0.0)
    assert [len(o.sentence_scores) for o in out] == [2, 1, 0]
    assert out[0].kept == [0, 1] and out[2].kept == [] and out[2].rerank_score == 0.0
    assert all(0.0 <= s <= 1.0 for o in out for s in o.sentence_scores)
    none = pruner.process("What is here?", contexts, threshold=1.0)
    assert all(o.kept == [] for o in none)


def test_long_passages_are_windowed_and_merged(tiny_checkpoint: Path) -> None:
    pruner = ContextPruner(tiny_checkpoint, device="cpu", batch_size=2)
    long = [f"Sentence number {i} talks about topic {i} at some length." for i in range(20)]
    windows = pruner._windows("Which topic?", [long])
    assert len(windows) > 1
    assert all(len(w.input_ids) <= 48 for w in windows)
    assert sorted(i for w in windows for i in w.sentences) == list(range(20))
    [out] = pruner.process("Which topic?", [long], threshold=0.0)
    assert len(out.sentence_scores) == 20 and all(s > 0 for s in out.sentence_scores)


def test_string_contexts_reorder_and_title(tiny_checkpoint: Path) -> None:
    pruner = ContextPruner(tiny_checkpoint, device="cpu")
    out = pruner.process(
        "q?", ["Title. Body one. Body two.", "Other. Text."], reorder=True, top_k=1
    )
    assert len(out) == 1
    [r] = pruner.process("q?", [["Title.", "Body."]], threshold=0.0, always_select_title=True)
    assert 0 in r.kept
    assert split_sentences("One. Two! Three? four.") == ["One.", "Two!", "Three? four."]


def test_missing_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"config\.json"):
        ContextPruner(tmp_path)


def test_naver_provence_structure_loads_behind_the_same_interface(tmp_path: Path) -> None:
    """A tiny random DeBERTa-v2 with Provence's module names, saved as Naver's repo lays it out."""
    from safetensors.torch import save_file
    from transformers import DebertaV2Config

    from pruner.provence_deberta import ProvenceDeberta

    config = DebertaV2Config(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        pooler_hidden_size=32,
        pooler_hidden_act="gelu",
        relative_attention=True,
        position_buckets=16,
        pos_att_type=["p2c", "c2p"],
        architectures=["Provence"],
    )
    torch.manual_seed(0)
    model = ProvenceDeberta(config)
    save_file(
        {k: v.contiguous() for k, v in model.state_dict().items()},
        str(tmp_path / "model.safetensors"),
    )
    raw = config.to_dict()
    raw["auto_map"] = {"AutoModel": "modeling_provence.Provence"}  # must be ignored, not run
    (tmp_path / "config.json").write_text(__import__("json").dumps(raw))
    AutoTokenizer.from_pretrained(bundled_model_path(), local_files_only=True).save_pretrained(
        tmp_path
    )
    pruner = ContextPruner(tmp_path, device="cpu")
    assert pruner.default_threshold == 0.1
    [out] = pruner.process("What is here?", [["One sentence.", "Another one."]], threshold=0.0)
    assert out.kept == [0, 1] and 0 < out.rerank_score < 1
    # the keep logit is the two-class margin: sigmoid(margin) == softmax(keep)
    ids = torch.tensor([[101, 2054, 102, 2028, 102]])
    two = pruner.model.token_classifier(pruner.model.deberta(ids)[0])
    margin = pruner.model(input_ids=ids, attention_mask=torch.ones_like(ids)).token_logits
    torch.testing.assert_close(torch.sigmoid(margin), torch.softmax(two, -1)[..., 1])


def test_batch_sizes_and_multi_question_calls_agree(tiny_checkpoint: Path) -> None:
    pruner = ContextPruner(tiny_checkpoint, device="cpu", cache_size=0)  # every call computes
    contexts = [["Alpha is first.", "Beta follows it."], ["Gamma.", "Delta is long " * 5], ["X."]]
    one = pruner.process("Which letter?", contexts, threshold=0.0, batch_size=1)
    many = pruner.process("Which letter?", contexts, threshold=0.0, batch_size=32)
    for a, b in zip(one, many, strict=True):
        assert a.sentence_scores == pytest.approx(b.sentence_scores, abs=1e-5)
        assert a.rerank_score == pytest.approx(b.rerank_score, abs=1e-5)
    both = pruner.process(["Which letter?", "Other question?"], [contexts, contexts[:1]], 0.0)
    assert [len(r) for r in both] == [3, 1]
    assert both[0][1].sentence_scores == pytest.approx(one[1].sentence_scores, abs=1e-5)
    alone = pruner.process("Other question?", contexts[:1], threshold=0.0)
    assert both[1][0].rerank_score == pytest.approx(alone[0].rerank_score, abs=1e-5)
    # rerank() is the same forward pass without the token head
    ranks = pruner.rerank("Which letter?", contexts)
    assert ranks == pytest.approx([r.rerank_score for r in one], abs=1e-5)


def test_process_validates_its_arguments(tiny_checkpoint: Path) -> None:
    pruner = ContextPruner(tiny_checkpoint, device="cpu")
    with pytest.raises(ValueError, match="one per question"):
        pruner.process(["a?", "b?"], [["One."]])
    with pytest.raises(ValueError, match="empty"):
        pruner.process("  ", [["One."]])
    with pytest.raises(ValueError, match="batch_size"):
        pruner.process("a?", [["One."]], batch_size=0)
    with pytest.raises(ValueError, match="threshold"):
        pruner.process("a?", [["One."]], threshold=-0.1)
    assert pruner.process("a?", []) == []
    [[r]] = pruner.process(["a?"], ["One. Two."], threshold=0.0)  # one string context each
    assert r.kept == [0, 1]


def test_repeated_questions_are_answered_from_the_cache(tiny_checkpoint: Path) -> None:
    pruner = ContextPruner(tiny_checkpoint, device="cpu", cache_size=2)
    contexts = [["Alpha is first.", "Beta follows it."], ["Gamma."]]
    first = pruner.process("Which letter?", contexts, threshold=0.0)
    calls = pruner.batcher.stats.calls
    again = pruner.process("Which letter?", contexts, threshold=0.5)  # threshold applies anew
    assert pruner.batcher.stats.calls == calls and pruner.cache_hits == 2
    assert [a.sentence_scores for a in again] == [f.sentence_scores for f in first]
    assert [a.rerank_score for a in again] == [f.rerank_score for f in first]
    # one new passage: only it is computed; the cache stays within its size (LRU)
    pruner.process("Which letter?", [contexts[0], ["Delta."]], threshold=0.0)
    assert pruner.batcher.stats.calls == calls + 1 and pruner.batcher.stats.items <= 3
    assert len(pruner._cache) == 2
    with pytest.raises(ValueError, match="cache_size"):
        ContextPruner(tiny_checkpoint, cache_size=-1)


def test_concurrent_requests_share_forward_passes_and_keep_their_results(
    tiny_checkpoint: Path,
) -> None:
    alone = ContextPruner(tiny_checkpoint, device="cpu", cache_size=0)
    # a leader waits up to 0.5 s for company, so the twelve threads' calls surely overlap
    shared = ContextPruner(tiny_checkpoint, device="cpu", cache_size=0, max_wait_s=0.5)
    questions = [f"Question number {n}?" for n in range(12)]
    contexts = [["Passage sentence one.", "Another sentence here."], ["Short."]]
    expected = [alone.process(q, contexts, threshold=0.0) for q in questions]
    with ThreadPoolExecutor(12) as pool:
        got = list(pool.map(lambda q: shared.process(q, contexts, threshold=0.0), questions))
    for want, have in zip(expected, got, strict=True):
        for a, b in zip(want, have, strict=True):
            assert a.sentence_scores == pytest.approx(b.sentence_scores, abs=1e-5)
            assert a.rerank_score == pytest.approx(b.rerank_score, abs=1e-5)
    stats = shared.batcher.stats
    assert stats.jobs == 12 and stats.calls < 12 and stats.largest > 1


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_lower_precisions_agree_with_fp32(tiny_checkpoint: Path, precision: str) -> None:
    fp32 = ContextPruner(tiny_checkpoint, device="cpu")
    low = ContextPruner(tiny_checkpoint, device="cpu", precision=precision)
    contexts = [["Alpha is first.", "Beta follows it."], ["Gamma.", "Delta is long " * 5]]
    a = fp32.process("Which letter?", contexts, threshold=0.0)
    b = low.process("Which letter?", contexts, threshold=0.0)
    for x, y in zip(a, b, strict=True):
        assert x.sentence_scores == pytest.approx(y.sentence_scores, abs=0.05)
        assert x.rerank_score == pytest.approx(y.rerank_score, abs=0.05)
    expected = torch.bfloat16 if precision == "bf16" else torch.float32
    assert low.model.encoder.embeddings.word_embeddings.weight.dtype == expected


def test_unknown_precision_is_refused(tiny_checkpoint: Path) -> None:
    with pytest.raises(ValueError, match="precision"):
        ContextPruner(tiny_checkpoint, precision="fp8")
    with pytest.raises(ValueError, match="CPU only"):
        ContextPruner(tiny_checkpoint, device="cuda", precision="int8").load()
