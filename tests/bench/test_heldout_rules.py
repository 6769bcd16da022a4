"""The written selection rules of bench/heldout.py, on hand-made sweeps."""

from __future__ import annotations

from typing import Any

from bench.heldout import THRESHOLDS, choose_threshold


def _sweep(kept: dict[float, float], field: str = "answer_kept") -> dict[str, dict[str, Any]]:
    other = "evidence_recall" if field == "answer_kept" else "answer_kept"
    return {
        f"{t:g}": {"tokens_removed": 0.5, field: kept.get(t, 0.0), other: None} for t in THRESHOLDS
    }


def test_the_largest_threshold_every_tune_family_holds() -> None:
    answers = _sweep({0.002: 0.99, 0.005: 0.98, 0.01: 0.96, 0.02: 0.95, 0.05: 0.9})
    evidence = _sweep({0.002: 0.97, 0.005: 0.95, 0.01: 0.93, 0.02: 0.91}, "evidence_recall")
    assert choose_threshold([answers]) == 0.02
    assert choose_threshold([answers, evidence]) == 0.01  # evidence recall < 92 % at 0.02


def test_the_smallest_threshold_when_none_holds() -> None:
    assert choose_threshold([_sweep({})]) == min(THRESHOLDS)
