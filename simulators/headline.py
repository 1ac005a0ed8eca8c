"""The one comparison a new user needs first: frontier-only against the best policy that uses the small local
models, on the same replay, with where every number came from.

"Best" is the one focus rule of `simulators.results.focus_policy`: among deployable policies that answer some
requests in-house (never a reference such as the oracle, which knows the answers), the cheapest whose quality
is at least `QUALITY_FLOOR` of frontier-only's and whose residency violations are no more than frontier-only's;
when none qualifies, the one with the highest quality, and the headline says that none reached the floor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from simulators.projection import CostAssumptions, basis_from_run, project
from simulators.provenance import Provenance, figure_sources, is_scaled, run_lines
from simulators.results import (
    BASELINE,
    QUALITY_FLOOR,
    JsonRecord,
    PolicySummary,
    focus_policy,
    summaries_from_dicts,
)

__all__ = ["QUALITY_FLOOR", "Figures", "Headline", "headline"]


@dataclass(frozen=True)
class Figures:
    """One side of the comparison: the policy's replay summary, its 36-month total, and each figure's source."""

    summary: PolicySummary
    total_36_months_usd: float | None
    break_even_month: int | None
    sources: dict[str, Provenance]

    @property
    def policy(self) -> str:
        return self.summary.policy


@dataclass(frozen=True)
class Headline:
    """Frontier-only and the chosen small-model policy side by side, the rule that chose it, and the sources."""

    run_id: int
    trace: str
    requests: int
    scaled: bool  # a what-if replay (volume or speed changed): not the traffic as recorded
    baseline: Figures
    chosen: Figures | None
    rule: str
    reached_floor: bool
    sources: list[str]

    def kinds(self) -> list[str]:
        """The source kinds behind the figures shown, weakest last, each once."""
        order = ("measured", "recorded", "catalogue", "assumption")
        seen = {p.kind for side in (self.baseline, self.chosen) if side for p in side.sources.values()}
        return [k for k in order if k in seen]


def headline(run: JsonRecord) -> Headline:
    """The headline of a stored replay (`load_run`), with a default 36-month projection."""
    summaries = summaries_from_dicts(run["policies"])
    focus = focus_policy(summaries)
    try:
        projection = project(basis_from_run(run), CostAssumptions())
        totals = {p.policy: (float(p.cumulative[-1]), p.break_even_month) for p in projection.policies}
    except ValueError:  # a trace without arrival times has no monthly rate to project
        totals = {}

    def figures(name: str) -> Figures:
        total, even = totals.get(name, (math.nan, None))
        return Figures(
            summaries[name], None if math.isnan(total) else total, even, figure_sources(run, summaries[name])
        )

    inputs: JsonRecord = run.get("inputs") or {}
    sources = [
        *run_lines(run),
        "36-month totals: the default projection (every input an assumption you can change on the Projection page).",
    ]
    return Headline(
        run_id=int(run["run_id"]),
        trace=str(run["trace"]),
        requests=summaries[BASELINE].requests,
        scaled=is_scaled(inputs),
        baseline=figures(BASELINE),
        chosen=figures(focus.policy) if focus.policy else None,
        rule=focus.rule,
        reached_floor=focus.reached_floor,
        sources=sources,
    )
