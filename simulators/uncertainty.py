"""How sure is a projection? A tornado over the main assumptions, and bands from a Monte Carlo over the
assumption ranges combined with a block bootstrap of the replayed trace.

* Sensitivity (tornado): each ranged assumption at the low and the high end of its range, all others at their
  values; the bar is the policy's saving against frontier-only over the horizon.
* Monte Carlo: every ranged assumption drawn from a triangular distribution over its range with the mode at
  the value in use (the default or yours; the range widens to include it), seeded PCG64, all draws evaluated at
  once (the projection math is numpy).
* Bootstrap: the trace's time is cut into blocks (hours, or 5-minute blocks for traces shorter than two hours)
  and blocks are drawn with replacement; each draw scales every policy's API cost by its resampled total and
  its local busy time by the resampled request count, the same blocks for every policy (paired). Needs the
  replay's per-request rows; without them the bands cover the assumptions only, and say so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from simulators.projection import CostAssumptions, PolicyReplay, Projection, components, project

if TYPE_CHECKING:
    import pyarrow as pa

BOOTSTRAP_STREAM, DRAW_STREAM = 1, 2


def tornado(projection: Projection, policy: str) -> list[dict[str, float | str]]:
    """The policy's saving over the horizon with each ranged assumption at its low and high end, widest first."""
    if policy == "frontier-only":
        raise ValueError("choose a policy other than the baseline for the sensitivity analysis")

    def saving(a: CostAssumptions) -> float:
        p = project(projection.basis, a)
        return float(p.get("frontier-only").cumulative[-1] - p.get(policy).cumulative[-1])

    base = saving(projection.assumptions)
    bars: list[dict[str, float | str]] = []
    for name, (low, high) in CostAssumptions.ranges().items():
        bars.append(
            {
                "assumption": name,
                "low": low,
                "high": high,
                "base_saving": base,
                "saving_low": saving(projection.assumptions.with_values(**{name: low})),
                "saving_high": saving(projection.assumptions.with_values(**{name: high})),
            }
        )
    return sorted(bars, key=lambda b: -abs(float(b["saving_high"]) - float(b["saving_low"])))


def bootstrap_multipliers(
    costs: pa.Table | None, draws: int, seed: int
) -> tuple[dict[str, np.ndarray], np.ndarray, str] | None:
    """Per policy, each draw's resampled API cost over the replayed one, the resampled request count over the
    replayed one, and how the blocks were cut; None without per-request rows or arrival times."""
    table = costs
    if table is None or table.num_rows == 0:
        return None
    policy = np.array(table.column("policy").to_pylist(), dtype=object)
    arrival = table.column("arrival_s").to_numpy(zero_copy_only=False).astype(np.float64)
    cost = table.column("cost_usd").to_numpy(zero_copy_only=False).astype(np.float64)
    if np.isnan(arrival).any():
        return None
    span = float(np.nanmax(arrival) - np.nanmin(arrival))
    width, unit = (3600.0, "hours") if span >= 7200 else (300.0, "5-minute blocks")
    block = np.floor((arrival - np.nanmin(arrival)) / width).astype(np.int64)
    blocks = int(block.max()) + 1
    rng = np.random.Generator(np.random.PCG64([seed, BOOTSTRAP_STREAM]))
    counts = np.stack(
        [np.bincount(rng.integers(0, blocks, blocks), minlength=blocks) for _ in range(draws)]
    )  # (draws, blocks)
    multipliers: dict[str, np.ndarray] = {}
    requests_ratio: np.ndarray | None = None
    for name in dict.fromkeys(policy.tolist()):
        rows = policy == name
        per_block_cost = np.bincount(block[rows], weights=cost[rows], minlength=blocks)
        per_block_requests = np.bincount(block[rows], minlength=blocks).astype(np.float64)
        total = per_block_cost.sum()
        multipliers[name] = (counts @ per_block_cost) / total if total > 0 else np.ones(draws)
        if requests_ratio is None:
            requests_ratio = (counts @ per_block_requests) / per_block_requests.sum()
    if requests_ratio is None:  # no policy at all: cannot happen, the table has rows
        return None
    return multipliers, requests_ratio, f"{blocks} {unit} of the trace, drawn with replacement"


def _break_even_months(cumulative: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    """Per draw, the 1-based month from which cumulative cost stays at or below the baseline's; 0 for never."""
    below = cumulative <= baseline + 1e-9
    months = below.shape[1]
    last_above = months - 1 - np.argmax((~below)[:, ::-1], axis=1)
    any_above = (~below).any(axis=1)
    return np.where(~below[:, -1], 0, np.where(any_above, last_above + 2, 1))


def monte_carlo(
    projection: Projection, *, draws: int = 1000, seed: int = 0, costs: pa.Table | None = None
) -> dict[str, object]:
    """p5 / p50 / p95 of every policy's monthly cumulative cost and total, and how often it breaks even."""
    if draws < 10:
        raise ValueError("use at least 10 draws")
    rng = np.random.Generator(np.random.PCG64([seed, DRAW_STREAM]))
    drawn = {}
    for name, (low, high) in CostAssumptions.ranges().items():  # most likely at your value, spread over the range
        value = float(getattr(projection.assumptions, name))
        low, high = min(low, value), max(high, value)
        drawn[name] = rng.triangular(low, value, high, size=(draws, 1)) if high > low else np.full((draws, 1), value)
    assumptions = projection.assumptions.with_values(**drawn)
    boot = bootstrap_multipliers(costs, draws, seed)
    cumulative = {}
    for p in projection.basis.policies:
        api_factor, busy_factor = np.ones((draws, 1)), np.ones((draws, 1))
        if boot is not None and p.policy in boot[0]:
            api_factor, busy_factor = boot[0][p.policy][:, None], boot[1][:, None]
        varied = PolicyReplay(
            policy=p.policy,
            api_cost_usd=p.api_cost_usd * api_factor,
            local_load={m: v * busy_factor for m, v in p.local_load.items()},
            quality=p.quality,
            p95_ms=p.p95_ms,
            residency_violations=p.residency_violations,
        )
        c = components(projection.basis, varied, assumptions, projection.assumptions.months)
        monthly = np.broadcast_to(
            c["api"] + c["hardware"] + c["energy"] + c["operations"], (draws, projection.assumptions.months)
        )
        cumulative[p.policy] = np.cumsum(monthly, axis=1)
    base = cumulative["frontier-only"]
    policies = {}
    for name, cum in cumulative.items():
        band = np.percentile(cum, [5, 50, 95], axis=0)
        entry = {
            "cumulative_p5": band[0].round(2).tolist(),
            "cumulative_p50": band[1].round(2).tolist(),
            "cumulative_p95": band[2].round(2).tolist(),
            "total_p5": float(band[0, -1]),
            "total_p50": float(band[1, -1]),
            "total_p95": float(band[2, -1]),
        }
        if name != "frontier-only":
            months = _break_even_months(cum, base)
            entry["break_even_share"] = float(np.mean(months > 0))
            entry["break_even_month_p50"] = float(np.median(months[months > 0])) if np.any(months > 0) else None
            entry["saving_p5_p50_p95"] = np.percentile(base[:, -1] - cum[:, -1], [5, 50, 95]).round(2).tolist()
        policies[name] = entry
    return {
        "draws": draws,
        "seed": seed,
        "ranges": CostAssumptions.ranges(),
        "bootstrap": boot[2] if boot is not None else "none: the replay has no per-request rows or arrival times",
        "policies": policies,
    }
