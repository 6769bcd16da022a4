import pytest

from app.fusion import rrf


def test_rrf_rewards_agreement_and_keeps_singletons() -> None:
    fused = rrf([["a", "b", "c"], ["b", "d"]])
    assert [k for k, _ in fused] == ["b", "a", "d", "c"]
    assert fused[0][1] == pytest.approx(1 / 62 + 1 / 61)


def test_rrf_edge_cases() -> None:
    assert rrf([]) == [] and rrf([[], []]) == []
    assert [k for k, _ in rrf([["x", "x", "y"]])] == ["x", "y"]
    with pytest.raises(ValueError, match="k must be > 0"):
        rrf([["a"]], k=0)


def test_fuse_keeps_each_retrievers_best_in_the_cut() -> None:
    from app.pipeline import fuse
    from index import ChunkRecord

    def c(i: int) -> ChunkRecord:
        return ChunkRecord(i, "d", 0, (), "t", 0, 1, [])

    agreed = [(c(i), 1.0) for i in range(1, 7)]
    channels = {"vector": agreed, "lexical": agreed, "graph": [(c(99), 0.5), (c(98), 0.4)]}
    plain = [x.chunk.id for x in fuse(channels, 4, protect=0)]
    assert 99 not in plain  # the graph-only chunk loses to chunks two retrievers agree on
    kept = fuse(channels, 4)  # protect = ceil(4 / 6) = 1: each retriever's best stays
    assert [x.chunk.id for x in kept] == [1, 2, 3, 99]  # in fused order
    assert kept[3].found_by == {"graph": (1, 0.5)}
    assert [x.fused_score for x in kept] == sorted((x.fused_score for x in kept), reverse=True)
    assert len(fuse({"vector": agreed}, 3)) == 3
