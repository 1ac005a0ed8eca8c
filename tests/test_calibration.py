"""Calibration and selective-prediction figures against hand-computed cases."""

from __future__ import annotations

import pytest

from bench.calibration import (
    accuracy_at_coverage,
    brier_score,
    confusions,
    coverage_curve,
    expected_calibration_error,
    reliability,
    summarise,
)


def test_reliability_bins_by_hand() -> None:
    bins = reliability([0.05, 0.15, 0.95, 1.0, 0.9], [False, True, True, False, True], bins=10)
    assert [b.count for b in bins] == [1, 1, 0, 0, 0, 0, 0, 0, 0, 3]
    assert bins[9].mean_confidence == pytest.approx((0.95 + 1.0 + 0.9) / 3)
    assert bins[9].accuracy == pytest.approx(2 / 3)
    assert bins[2].accuracy is None


def test_expected_calibration_error_by_hand() -> None:
    # bin 0.8-0.9: conf 0.8 (right), 0.8 (wrong) -> |0.5 - 0.8| = 0.3, weight 2/4
    # bin 0.2-0.3: conf 0.2, 0.2 both wrong     -> |0.0 - 0.2| = 0.2, weight 2/4
    assert expected_calibration_error([0.8, 0.8, 0.2, 0.2], [True, False, False, False]) == pytest.approx(0.25)
    assert expected_calibration_error([1.0, 0.0], [True, False]) == pytest.approx(0.0)
    assert expected_calibration_error([], []) is None


def test_brier_score_by_hand() -> None:
    assert brier_score([1.0, 0.5, 0.0], [True, True, True]) == pytest.approx((0 + 0.25 + 1) / 3)


def test_coverage_curve_keeps_ties_together() -> None:
    curve = coverage_curve([0.9, 0.8, 0.8, 0.1], [True, False, True, False])
    assert [(p.coverage, p.accuracy, p.threshold) for p in curve] == [
        (0.25, 1.0, 0.9),
        (0.75, pytest.approx(2 / 3), 0.8),
        (1.0, 0.5, 0.1),
    ]
    assert accuracy_at_coverage(curve, 0.5) == pytest.approx(2 / 3)
    assert accuracy_at_coverage(curve, 1.0) == 0.5


def test_confusions_count_reference_to_answer_pairs() -> None:
    assert confusions(["a", "b", "b", "c"], ["a", "a", "a", "b"]) == [
        {"reference": "a", "predicted": "b", "count": 2},
        {"reference": "b", "predicted": "c", "count": 1},
    ]


@pytest.mark.parametrize("confidence, correct", [([1.2], [True]), ([float("nan")], [True]), ([0.5, 0.5], [True])])
def test_bad_confidences_are_refused(confidence: list[float], correct: list[bool]) -> None:
    with pytest.raises(ValueError):
        summarise(confidence, correct)


def test_summary_splits_confidence_by_outcome() -> None:
    s = summarise([0.9, 0.3], [True, False])
    assert s["accuracy"] == 0.5 and s["confidence"]["when_correct"] == 0.9 and s["confidence"]["when_wrong"] == 0.3
