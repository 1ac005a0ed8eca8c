"""How well confidence predicts correctness: calibration error, reliability bins, accuracy against coverage."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class ReliabilityBin:
    """Requests whose confidence fell in [low, high): how sure the model was and how often it was right."""

    low: float
    high: float
    count: int
    mean_confidence: float | None
    accuracy: float | None


@dataclass(frozen=True)
class CoveragePoint:
    """Answer only the `coverage` share of requests the model is surest of: this accuracy, above this threshold."""

    coverage: float
    accuracy: float
    threshold: float


def _arrays(confidence: Sequence[float], correct: Sequence[bool]) -> tuple[np.ndarray, np.ndarray]:
    conf = np.asarray(confidence, dtype=np.float64)
    right = np.asarray(correct, dtype=np.float64)
    if conf.shape != right.shape:
        raise ValueError("confidence and correctness must have the same length")
    if conf.size and (np.isnan(conf).any() or conf.min() < 0 or conf.max() > 1):
        raise ValueError("confidences must lie in [0, 1]")
    return conf, right


def reliability(confidence: Sequence[float], correct: Sequence[bool], bins: int = 10) -> list[ReliabilityBin]:
    """Equal-width confidence bins; the last bin includes 1.0."""
    conf, right = _arrays(confidence, correct)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(conf, edges[1:-1], right=False), 0, bins - 1)
    out = []
    for b in range(bins):
        members = index == b
        n = int(members.sum())
        out.append(
            ReliabilityBin(
                float(edges[b]),
                float(edges[b + 1]),
                n,
                float(conf[members].mean()) if n else None,
                float(right[members].mean()) if n else None,
            )
        )
    return out


def expected_calibration_error(confidence: Sequence[float], correct: Sequence[bool], bins: int = 10) -> float | None:
    """Sum over bins of (bin share) x |accuracy - mean confidence|: 0 is perfect; None without data."""
    return _ece(reliability(confidence, correct, bins))


def _ece(bins: list[ReliabilityBin]) -> float | None:
    """Calibration error from already computed bins."""
    total = sum(b.count for b in bins)
    if not total:
        return None
    return float(
        sum(
            b.count / total * abs(b.accuracy - b.mean_confidence)
            for b in bins
            if b.count and b.accuracy is not None and b.mean_confidence is not None
        )
    )


def brier_score(confidence: Sequence[float], correct: Sequence[bool]) -> float | None:
    """Mean squared gap between confidence and the 0/1 outcome."""
    conf, right = _arrays(confidence, correct)
    return float(np.mean((conf - right) ** 2)) if conf.size else None


def coverage_curve(confidence: Sequence[float], correct: Sequence[bool]) -> list[CoveragePoint]:
    """Selective prediction: keep the k most confident answers for every k (ties kept together)."""
    conf, right = _arrays(confidence, correct)
    if not conf.size:
        return []
    order = np.argsort(-conf, kind="stable")
    sorted_conf, sorted_right = conf[order], right[order]
    hits = np.cumsum(sorted_right)
    n = conf.size
    points = []
    for k in range(1, n + 1):
        if k < n and sorted_conf[k] == sorted_conf[k - 1]:
            continue  # a threshold cannot split tied confidences
        points.append(CoveragePoint(k / n, float(hits[k - 1] / k), float(sorted_conf[k - 1])))
    return points


def accuracy_at_coverage(curve: list[CoveragePoint], coverage: float) -> float | None:
    """Accuracy when answering at least `coverage` of requests (the first curve point reaching it)."""
    for point in curve:
        if point.coverage >= coverage - 1e-12:
            return point.accuracy
    return None


def confusions(predicted: Sequence[str], reference: Sequence[str], top: int = 10) -> list[dict[str, object]]:
    """The most frequent (reference -> predicted) mistakes."""
    pairs = Counter((r, p) for p, r in zip(predicted, reference) if p != r)
    return [{"reference": r, "predicted": p, "count": n} for (r, p), n in pairs.most_common(top)]


def summarise(confidence: Sequence[float], correct: Sequence[bool], bins: int = 10) -> dict[str, object]:
    """Everything the CLI and the dashboard report about one evaluation's confidence."""
    conf, right = _arrays(confidence, correct)
    curve = coverage_curve(confidence, correct)
    binned = reliability(confidence, correct, bins)

    def mean(values: np.ndarray) -> float | None:
        return float(values.mean()) if values.size else None

    return {
        "n": int(conf.size),
        "accuracy": mean(right),
        "expected_calibration_error": _ece(binned),
        "brier_score": brier_score(confidence, correct),
        "confidence": {
            "mean": mean(conf),
            "when_correct": mean(conf[right == 1]),
            "when_wrong": mean(conf[right == 0]),
            **({f"p{q}": float(np.percentile(conf, q)) for q in (10, 50, 90)} if conf.size else {}),
        },
        "accuracy_at_coverage": {f"{c:.0%}": accuracy_at_coverage(curve, c) for c in (0.25, 0.5, 0.8)},
        "reliability": [asdict(b) for b in binned],
    }
