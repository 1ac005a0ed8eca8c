"""The one comparison a new user needs first: frontier-only against the best policy that uses the small local
models, on the same replay, with where every number came from.

"Best" is a stated rule, not a judgement call: among deployable policies that answer some requests in-house
(never the oracle, which knows the answers), the cheapest whose quality is at least `QUALITY_FLOOR` of
frontier-only's and whose residency violations are no more than frontier-only's; when none qualifies, the
one with the highest quality, and the headline says that none reached the floor.
"""

from __future__ import annotations

from dataclasses import dataclass

from simulators.projection import CostAssumptions, basis_from_run, project

QUALITY_FLOOR = 0.95
NOT_CANDIDATES = ("frontier-only", "oracle", "small-only (reference)")


@dataclass(frozen=True)
class Headline:
    """Frontier-only and the chosen small-model policy side by side, the rule that chose it, and the sources."""

    run_id: int
    trace: str
    requests: int
    baseline: dict[str, object]
    chosen: dict[str, object] | None
    rule: str
    reached_floor: bool
    sources: list[str]


def _figures(label: str, summary: dict[str, object], total_36: float, break_even: object) -> dict[str, object]:
    return {
        "policy": label,
        "cost_usd": summary["cost_usd"],
        "cost_per_1k_usd": summary["cost_per_1k_usd"],
        "quality": summary["quality"],
        "p95_ms": (summary.get("latency_ms") or {}).get("p95"),  # type: ignore[union-attr]
        "residency_violations": summary["residency_violations"],
        "in_house_share": summary["in_house_share"],
        "total_36_months_usd": total_36,
        "break_even_month": break_even,
    }


def headline(run: dict[str, object]) -> Headline:
    """The headline of a stored replay (`simulators.runs.load_run`), with a default 36-month projection."""
    summaries: dict[str, dict[str, object]] = run["policies"]  # type: ignore[assignment]
    base = summaries["frontier-only"]
    candidates = {
        label: s
        for label, s in summaries.items()
        if label not in NOT_CANDIDATES and float(s.get("in_house_share") or 0) > 0
    }  # type: ignore[arg-type]
    floor = QUALITY_FLOOR * float(base["quality"])  # type: ignore[arg-type]
    good = {
        label: s
        for label, s in candidates.items()
        if float(s["quality"]) >= floor  # type: ignore[arg-type]
        and int(s["residency_violations"]) <= int(base["residency_violations"])
    }  # type: ignore[arg-type]
    if good:
        label = min(good, key=lambda name: float(good[name]["cost_usd"]))  # type: ignore[arg-type]
    elif candidates:
        label = max(candidates, key=lambda name: float(candidates[name]["quality"]))  # type: ignore[arg-type]
    else:
        label = None
    try:
        projection = project(basis_from_run(run), CostAssumptions())
        totals = {p.policy: (float(p.cumulative[-1]), p.break_even_month or "never") for p in projection.policies}
    except ValueError:  # a trace without arrival times has no monthly rate to project
        totals = {}
    inputs = run["inputs"]  # type: ignore[index]
    quality = "; ".join(
        f"{m}: " + ", ".join(f"{k} {v:,}" for k, v in c.items()) for m, c in inputs["quality_source"].items()
    )  # type: ignore[union-attr]
    local = [m for m in run.get("portfolio") or [] if m.get("kind") == "local"]  # type: ignore[union-attr]
    speeds = "; ".join(
        f"{m['name']}: {m['output_tok_s']['source']} ({m['output_tok_s'].get('detail', '')})" for m in local
    )
    sources = [
        f"Replay run {run['run_id']} of '{run['trace']}' (seed {run['seed']}), prices from "
        f"{run.get('catalogue_version')}.",
        f"Quality per model: {quality}.",
        f"Local model speed: {speeds or 'no local models'}; "
        "API latency: assumptions (600 ms to first token, 80 tok/s).",
        f"Arrivals: {inputs.get('arrivals')}; {inputs.get('servers_per_local_model')} server(s) per local model.",  # type: ignore[union-attr]
        "36-month totals: the default projection (every input an assumption you can change on the Projection page).",
    ]

    def figures(name: str) -> dict[str, object]:
        total, even = totals.get(name, (float("nan"), "n/a"))
        return _figures(name, summaries[name], total, even)

    rule = (
        f"the cheapest policy that answers some requests in-house, reaches {QUALITY_FLOOR:.0%} of frontier-only's "
        "quality and breaks residency no more often than frontier-only"
    )
    first = next(iter(summaries.values()))
    return Headline(
        run_id=int(run["run_id"]),
        trace=str(run["trace"]),
        requests=int(first["requests"]),  # type: ignore[arg-type]
        baseline=figures("frontier-only"),
        chosen=figures(label) if label else None,
        rule=rule,
        reached_floor=bool(good),
        sources=sources,
    )
