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
