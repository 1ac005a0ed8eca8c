"""Routing metrics as their authors define them: RouteLLM's PGR, APGR and CPT, RouterBench's AIQ, and latency
percentiles; pure functions on arrays, checked against hand-computed cases."""

from __future__ import annotations

import numpy as np


def pgr(quality: float, weak: float, strong: float) -> float:
    """Performance gap recovered (RouteLLM): 0 at the weak model's quality, 1 at the strong model's."""
    if strong == weak:
        raise ValueError("PGR is undefined when the strong and weak models score the same")
    return (quality - weak) / (strong - weak)


def _curve(strong_share: np.ndarray, quality: np.ndarray, weak: float, strong: float) -> tuple[np.ndarray, np.ndarray]:
    share = np.asarray(strong_share, dtype=np.float64)
    gain = (np.asarray(quality, dtype=np.float64) - weak) / (strong - weak)
    if share.shape != gain.shape or share.size == 0 or np.any((share < 0) | (share > 1)):
        raise ValueError("a routing curve needs strong-model shares in [0, 1], one quality per share")
    share, gain = np.concatenate([[0.0], share, [1.0]]), np.concatenate([[0.0], gain, [1.0]])  # the two models alone
    order = np.argsort(share, kind="stable")
    return share[order], gain[order]


def apgr(strong_share: np.ndarray, quality: np.ndarray, weak: float, strong: float) -> float:
    """Average PGR (RouteLLM): the area under PGR against the share of calls to the strong model (random: 0.5)."""
    share, gain = _curve(strong_share, quality, weak, strong)
    return float(np.sum((share[1:] - share[:-1]) * (gain[1:] + gain[:-1]) / 2))


def cpt(strong_share: np.ndarray, quality: np.ndarray, weak: float, strong: float, target: float) -> float:
    """Call-performance threshold (RouteLLM): the least share of strong-model calls that reaches PGR `target`."""
    share, gain = _curve(strong_share, quality, weak, strong)
    for i in range(len(share)):
        if gain[i] >= target:
            if i == 0 or gain[i - 1] >= target:
                return float(share[i])
            fraction = (target - gain[i - 1]) / (gain[i] - gain[i - 1])
            return float(share[i - 1] + fraction * (share[i] - share[i - 1]))
    return 1.0


def upper_hull(cost: np.ndarray, quality: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The upper convex hull of (cost, quality) points, cheapest first."""
    points = sorted(set(zip(np.asarray(cost, dtype=float).tolist(), np.asarray(quality, dtype=float).tolist())))
    hull: list[tuple[float, float]] = []
    for point in points:
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            if (x2 - x1) * (point[1] - y1) - (y2 - y1) * (point[0] - x1) >= 0:  # hull[-1] lies on or below the chord
                hull.pop()
            else:
                break
        if hull and hull[-1][0] == point[0]:
            hull[-1] = max(hull[-1], point)
        else:
            hull.append(point)
    return np.array([p[0] for p in hull]), np.array([p[1] for p in hull])


def aiq(cost: np.ndarray, quality: np.ndarray) -> float:
    """Average improvement in quality (RouterBench): the mean height of the non-decreasing convex hull of a
    router's cost-quality points over the cost range they span."""
    xs, ys = upper_hull(cost, quality)
    if len(xs) < 2:
        return float(ys[0]) if len(ys) else float("nan")
    peak = int(np.argmax(ys))
    ys = np.where(np.arange(len(ys)) > peak, ys[peak], ys)  # spending more never lowers the best quality reachable
    area = np.sum((xs[1:] - xs[:-1]) * (ys[1:] + ys[:-1]) / 2)
    return float(area / (xs[-1] - xs[0]))


def latency_percentiles(latency_ms: np.ndarray, percentiles: tuple[int, ...] = (50, 95, 99)) -> dict[str, float]:
    """p50 / p95 / p99 (linear interpolation between order statistics)."""
    values = np.asarray(latency_ms, dtype=np.float64)
    if values.size == 0:
        return {f"p{p}": float("nan") for p in percentiles}
    found = np.percentile(values, percentiles)  # one partition for all of them
    return {f"p{p}": float(v) for p, v in zip(percentiles, found)}


def counts_by_name(codes: np.ndarray, names: tuple[str, ...]) -> dict[str, int]:
    """How many codes name each entry of `names` (codes are indexes; -1 is none), leaving out the zero counts."""
    codes = np.asarray(codes).astype(np.int64, copy=False)
    counts = np.bincount(codes[codes >= 0], minlength=len(names))
    return {name: int(c) for name, c in zip(names, counts) if c}
