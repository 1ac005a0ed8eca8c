"""budget: a monthly spending cap; as the month's spend crosses each step, requests go to the next, cheaper tier
(frontier -> cheaper API model -> local small model by default)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulators.inputs import ReplayError, ReplayInputs
from simulators.policies.base import NO_MODEL, Policy, Routing, choose, column, param, single


@dataclass(frozen=True)
class Budget(Policy):
    """Spend-to-date per budget month decides the tier; exact, since spend only grows within a month."""

    name = "budget"
    summary = "a monthly cap: degrade frontier -> cheaper API -> local as the month's spend crosses each step"
    sweep = ("budget_share", tuple(i / 10 for i in range(11)))
    monthly_usd: float = param(0.0, "the monthly cap in USD (0: budget_share of the frontier-only spend)")
    budget_share: float = param(0.5, "cap as a share of frontier-only's mean spend per month, when monthly_usd is 0")
    tiers: tuple[str, ...] = param(
        ("frontier", "cheaper-api", "small"),
        "models from preferred to cheapest ('cheaper-api': the cheapest other API model)",
    )
    steps: tuple[float, ...] = param((0.8, 1.0), "share of the cap spent at which each next tier takes over")

    def tier_columns(self, inputs: ReplayInputs) -> list[int]:
        """The tiers as model columns, 'cheaper-api' resolved (and dropped when there is no other API model)."""
        columns: list[int] = []
        for tier in self.tiers:
            if tier == "cheaper-api":
                others = [j for j in np.flatnonzero(~inputs.is_local) if j != inputs.frontier]
                if others:
                    columns.append(int(min(others, key=lambda j: inputs.cost_usd[:, j].mean())))
            else:
                columns.append(column(inputs, tier))
        return list(dict.fromkeys(columns))

    def cap_usd(self, inputs: ReplayInputs) -> float:
        """The monthly cap in USD."""
        if self.monthly_usd > 0:
            return self.monthly_usd
        months = max(1, len(np.unique(inputs.month)))
        return self.budget_share * float(inputs.cost_usd[:, inputs.frontier].sum()) / months

    def route(self, inputs: ReplayInputs, candidates: np.ndarray) -> Routing:
        tiers = self.tier_columns(inputs)
        steps = list(self.steps[: len(tiers) - 1])
        if len(steps) != len(tiers) - 1 or any(b < a for a, b in zip(steps, steps[1:])):
            raise ReplayError(
                f"budget: need one non-decreasing step per tier after the first (tiers {self.tiers}, "
                f"steps {self.steps})"
            )
        cap = self.cap_usd(inputs)
        picks = [choose(t, inputs, candidates) for t in tiers]
        costs = [np.where(p >= 0, inputs.cost_usd[np.arange(inputs.n), np.maximum(p, 0)], 0.0) for p in picks]
        tier_of = np.full(inputs.n, len(tiers) - 1, dtype=np.int8)
        bounds = np.flatnonzero(np.diff(inputs.month)) + 1
        for rows in np.split(np.arange(inputs.n), bounds):  # requests are in arrival order, so months are runs
            start, spent = 0, 0.0
            for t in range(len(tiers) - 1):
                limit = steps[t] * cap
                spend = np.cumsum(costs[t][rows[start:]])
                served = 0 if spent >= limit else min(len(spend), int(np.searchsorted(spend, limit - spent)) + 1)
                tier_of[rows[start : start + served]] = t
                spent += float(spend[served - 1]) if served else 0.0
                start += served
        choice = np.choose(tier_of, picks) if picks else np.full(inputs.n, NO_MODEL)
        names = tuple(f"tier {t + 1}: {inputs.model_names[c]}" for t, c in enumerate(tiers))
        return single(choice, reason=tier_of, reasons=names, notes={"monthly_cap_usd": cap})
