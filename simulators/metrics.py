"""Routing metrics as their authors compute them: RouteLLM's PGR, APGR and CPT (`routellm/evals/evaluate.py`),
RouterBench's AIQ both as its code computes it (`evaluation/AIQ.py`) and as its paper writes it, and latency
percentiles; pure functions on arrays, each checked against a re-implementation of the peer's own code."""

from __future__ import annotations

import numpy as np


def pgr(quality: float, weak: float, strong: float) -> float:
    """Performance gap recovered (RouteLLM): 0 at the weak model's quality, 1 at the strong model's."""
    if strong == weak:
        raise ValueError("PGR is undefined when the strong and weak models score the same")
    return (quality - weak) / (strong - weak)


def trapezoid(y: np.ndarray, x: np.ndarray) -> float:
    """The trapezoid rule as numpy's `trapz` / `trapezoid` computes it (the peers' area function)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2.0)) if x.size > 1 else 0.0


def _by_share(strong_share: np.ndarray, quality: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The points a policy reached, ordered by strong-model share as RouteLLM orders them (pandas `sort_values`,
    numpy's default sort); nothing is added at either end."""
    share = np.asarray(strong_share, dtype=np.float64)
    values = np.asarray(quality, dtype=np.float64)
    if share.shape != values.shape or share.ndim != 1 or share.size == 0 or np.any((share < 0) | (share > 1)):
        raise ValueError("a routing curve needs strong-model shares in [0, 1], one quality per share")
    order = np.argsort(share)
    return share[order], values[order]


def apgr(strong_share: np.ndarray, quality: np.ndarray, weak: float, strong: float) -> float:
    """Average PGR as RouteLLM's `evaluate.py` computes it: the area under quality against the share of strong-model
    calls over the shares the sweep reached, less the weak model's area over the same span, divided by the gap
    between the strong and the weak model's areas (random routing over 0..100%: 0.5). NaN when the sweep spans
    no share or the two models score the same."""
    share, values = _by_share(strong_share, quality)
    weak_area = trapezoid(np.full(share.size, weak), share)
    strong_area = trapezoid(np.full(share.size, strong), share)
    if strong_area == weak_area:
        return float("nan")
    return (trapezoid(values, share) - weak_area) / (strong_area - weak_area)


def cpt(strong_share: np.ndarray, quality: np.ndarray, weak: float, strong: float, target: float) -> float:
    """Call-performance threshold as RouteLLM computes it: `np.interp` of the quality weak + target x (strong -
    weak) over the sweep's (quality, share) points ordered by share. Like RouteLLM's, the answer is only
    meaningful where quality rises with share; past the sweep's best quality it is the share of its last point."""
    share, values = _by_share(strong_share, quality)
    return float(np.interp(target * (strong - weak) + weak, values, share))


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


def routerbench_hull(cost: np.ndarray, quality: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The "non-decreasing convex hull" as RouterBench's `get_non_descreasing_convex_hull_of` builds it: the
    cheapest point as given, every cost strictly inside the range raised to the upper hull, the dearest point
    only if it is not below the hull at the last inner cost, then (one pass) every point lower than the point
    before it dropped. Needs a cost strictly between the cheapest and the dearest (RouterBench's code fails
    without one)."""
    x, y = np.asarray(cost, dtype=np.float64), np.asarray(quality, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError("AIQ needs one quality per cost")
    order = np.argsort(x)  # as RouterBench sorts (numpy's default sort): decides which of tied end points is used
    x, y = x[order], y[order]
    inner = np.unique(x[(x > x[0]) & (x < x[-1])]) if x.size else x
    if inner.size == 0:
        raise ValueError("RouterBench's AIQ needs at least three distinct costs")
    hull_x, hull_y = upper_hull(x, y)
    raised = np.interp(inner, hull_x, hull_y)
    xs, ys = [x[0], *inner], [y[0], *raised]
    if y[-1] >= raised[-1]:
        xs.append(x[-1])
        ys.append(y[-1])
    xs_a, ys_a = np.array(xs), np.array(ys)
    keep = np.concatenate([[True], ys_a[1:] >= ys_a[:-1]])  # compared with the point before, dropped or not
    return xs_a[keep], ys_a[keep]


def aiq_routerbench(cost: np.ndarray, quality: np.ndarray, max_cost: float | None = None) -> float:
    """AIQ as RouterBench's code computes it (`calc_AIQ`): the area under the non-decreasing convex hull, extended
    flat to the largest cost, divided by that largest cost (the area starts at the cheapest point, not at 0).
    `max_cost`: the largest hull cost over all routers compared together (default: this curve's own), as
    `calc_AIQ` does for a list of routers. NaN where there are fewer than three distinct costs."""
    try:
        xs, ys = routerbench_hull(cost, quality)
    except ValueError:
        return float("nan")
    top = float(xs.max()) if max_cost is None else float(max_cost)
    if top <= 0:
        return float("nan")
    return trapezoid(np.append(ys, ys[-1]), np.append(xs, top)) / top


def routerbench_hull_max_cost(cost: np.ndarray, quality: np.ndarray) -> float:
    """The largest cost on a curve's RouterBench hull (NaN without one): `calc_AIQ`'s common right end."""
    try:
        return float(routerbench_hull(cost, quality)[0].max())
    except ValueError:
        return float("nan")


def aiq_paper(cost: np.ndarray, quality: np.ndarray) -> float:
    """AIQ as the RouterBench paper writes it (Hu et al. 2024, arXiv:2403.12031): the mean height of the
    non-decreasing convex hull of a router's cost-quality points over the cost range they span,
    1 / (c_max - c_min) x integral from c_min to c_max."""
    xs, ys = upper_hull(cost, quality)
    if len(xs) < 2:
        return float(ys[0]) if len(ys) else float("nan")
    peak = int(np.argmax(ys))
    ys = np.where(np.arange(len(ys)) > peak, ys[peak], ys)  # spending more never lowers the best quality reachable
    return trapezoid(ys, xs) / float(xs[-1] - xs[0])


aiq = aiq_paper  # the name earlier slmlab results used for the paper's formula


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


# The figures a sweep stores, with the names the pages and the CLI print (README "Routing metrics")
SWEEP_FIGURES: dict[str, str] = {
    "aiq_routerbench": "AIQ (RouterBench code)",
    "aiq_paper": "AIQ (paper formula)",
    "apgr": "APGR",
    "cpt50": "CPT(50%)",
    "cpt80": "CPT(80%)",
}
