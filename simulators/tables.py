"""The tables every interface shows of a replay and a projection: one set of rows and columns per table, rendered by
`simulators.formatting` as text (CLI), strings (pages), raw figures (CSV, JSON) or HTML (reports), so the same run
reads the same on the command line, on every page and in every download."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from simulators.formatting import Column, Table, counts, duration_ms, table
from simulators.metrics import SWEEP_FIGURES
from simulators.projection import Projection
from simulators.results import BASELINE, PolicySummary

REFERENCE_SUFFIX = " (reference: knows every answer)"

POLICY_COLUMNS = (
    Column("policy", "policy"),
    Column("cost_usd", "cost", "money", "API spend + the local fleet over the trace"),
    Column("cost_per_1k_usd", "cost per 1,000 requests", "money", "the one figure Home, the CLI and reports compare"),
    Column("cost_ratio", "cost vs frontier-only", "ratio"),
    Column("servers_needed", "servers needed", "count", "local servers the policy needs for the SLO (per model)"),
    Column("quality", "quality", "share", "share of requests answered right"),
    Column("quality_delta", "quality vs frontier-only", "points"),
    Column("p95_latency", "p95 latency", "text", "end-to-end; 'overloaded' when a fixed fleet's queue keeps growing"),
    Column("in_house_share", "answered in-house", "share"),
    Column("escalation_rate", "escalated", "share"),
    Column("residency_violations", "residency violations", "count"),
    Column(
        "confidential_off_premises",
        "confidential sent off premises",
        "count",
        "confidential requests that some attempt sent to a model off the premises (an API)",
    ),
    Column("rejected", "rejected", "count"),
    Column("quality_source", "quality source (requests)"),
    Column(
        "local_load",
        "local load",
        "text",
        "service time asked of each local model / its capacity over the trace; above 1 its queue grows",
    ),
)


def p95_text(summary: PolicySummary) -> str:
    """The p95 cell: scaled to h / min / s / ms, or 'overloaded' (a growing queue has no meaningful p95)."""
    return "overloaded" if summary.overloaded else duration_ms(summary.p95_ms)


def policy_rows(summaries: Mapping[str, PolicySummary]) -> list[dict[str, object]]:
    """One row per policy with its figures beside frontier-only's."""
    rows: list[dict[str, object]] = []
    for s in summaries.values():
        versus = s.vs_baseline
        rows.append(
            {
                "policy": s.policy,
                "cost_usd": s.cost_usd,
                "cost_per_1k_usd": s.cost_per_1k_usd,
                "cost_ratio": None if versus is None else versus.cost_ratio,
                "servers_needed": s.servers_needed,
                "quality": s.quality,
                "quality_delta": None if versus is None else versus.quality_delta,
                "p95_latency": p95_text(s),
                "in_house_share": s.in_house_share,
                "escalation_rate": s.escalation_rate,
                "residency_violations": s.residency_violations,
                "confidential_off_premises": s.off_premises_by_class.get("confidential", 0),
                "rejected": s.rejected,
                "quality_source": counts(s.quality_source),
                "local_load": ", ".join(f"{m} {v:.2f}" for m, v in s.local_load.items()) or "-",
            }
        )
    return rows


def policy_table(summaries: Mapping[str, PolicySummary]) -> Table:
    """Every policy of a replay beside frontier-only."""
    return table(policy_rows(summaries), POLICY_COLUMNS)


SWEEP_COLUMNS = (
    Column("policy", "policy"),
    Column("parameter", "swept setting"),
    Column("points", "points", "count"),
    *(Column(key, name, "number") for key, name in SWEEP_FIGURES.items()),
)


def sweep_table(summaries: Mapping[str, PolicySummary]) -> Table:
    """The stored sweep figures (AIQ, APGR, CPT) of every swept policy."""
    rows = [
        {"policy": s.policy, **{c.key: s.sweep.get(c.key) for c in SWEEP_COLUMNS[1:]}}
        for s in summaries.values()
        if s.sweep
    ]
    return table(rows, SWEEP_COLUMNS)


def residency_table(summaries: Mapping[str, PolicySummary], known_classes: Sequence[str] = ()) -> Table:
    """Residency violations by data class per policy, with the routing reasons the policy recorded; `known_classes`
    orders the classes (others follow alphabetically)."""
    seen = {c for s in summaries.values() for c in s.residency_violations_by_class}
    classes = [c for c in known_classes if c in seen] + sorted(seen - set(known_classes))
    columns = (
        Column("policy", "policy"),
        Column("violations", "violations", "count"),
        *(Column(f"class:{c}", c, "count") for c in classes),
        Column("rejected", "rejected", "count"),
        Column("reasons", "routing reasons (requests)"),
    )
    rows = [
        {
            "policy": s.policy,
            "violations": s.residency_violations,
            **{f"class:{c}": s.residency_violations_by_class.get(c, 0) for c in classes},
            "rejected": s.rejected,
            "reasons": counts(s.reasons),
        }
        for s in summaries.values()
    ]
    return table(rows, columns)


def projection_columns(months: int, *, uncertainty: bool = False) -> tuple[Column, ...]:
    """The projection table's columns (with the Monte Carlo band when one was drawn)."""
    columns = (
        Column("policy", "policy"),
        Column(
            "cost_per_1k_usd",
            "cost per 1,000 requests (replay)",
            "money",
            "the replayed cost per 1,000 requests, as on Home, Routing replay and the CLI",
        ),
        Column("total_usd", f"total over {months} months", "money"),
        Column("saving_usd", "saving against frontier-only", "money"),
        Column("month_1_usd", "month 1", "money"),
        Column("last_month_usd", f"month {months}", "money"),
        Column("break_even", "break-even", "text", "first month from which its cumulative cost stays at or below"),
        Column("servers", "servers (first-last month)", "text", "local servers owned; '-' when it uses none"),
        Column(
            "short_of_capacity_from", "short of capacity from", "text", "the first month the local fleet cannot keep up"
        ),
        Column("quality", "quality (replay)", "share"),
        Column("residency_violations", "residency violations (replay)", "count"),
    )
    band = (
        Column("total_p5", "total, 5th percentile", "money"),
        Column("total_p95", "total, 95th percentile", "money"),
        Column("break_even_share", "draws that break even", "share"),
    )
    return columns + band if uncertainty else columns


def break_even_text(policy: str, month: int | None) -> str:
    """'baseline', 'never' or 'month 7'."""
    if policy == BASELINE:
        return "baseline"
    return "never" if month is None else f"month {month}"


def projection_rows(
    projection: Projection, summaries: Mapping[str, PolicySummary], uncertainty: Mapping[str, object] | None = None
) -> list[dict[str, object]]:
    """One row per projected policy: its totals beside the replay's cost per 1,000, quality and residency."""
    base_total = float(projection.get(BASELINE).cumulative[-1])
    bands = dict((uncertainty or {}).get("policies") or {})  # type: ignore[call-overload]
    rows: list[dict[str, object]] = []
    for p in projection.policies:
        s = summaries.get(p.policy)
        band = bands.get(p.policy) or {}
        rows.append(
            {
                "policy": p.policy + (REFERENCE_SUFFIX if s is not None and s.is_reference else ""),
                "cost_per_1k_usd": None if s is None else s.cost_per_1k_usd,
                "total_usd": float(p.cumulative[-1]),
                "saving_usd": base_total - float(p.cumulative[-1]),
                "month_1_usd": float(p.monthly[0]),
                "last_month_usd": float(p.monthly[-1]),
                "break_even": break_even_text(p.policy, p.break_even_month),
                "servers": "-" if not p.servers[-1] else f"{int(p.servers[0])}-{int(p.servers[-1])}",
                "short_of_capacity_from": "-"
                if p.short_of_capacity_from is None
                else f"month {p.short_of_capacity_from}",
                "quality": None if s is None else s.quality,
                "residency_violations": None if s is None else s.residency_violations,
                "total_p5": band.get("total_p5"),
                "total_p95": band.get("total_p95"),
                "break_even_share": band.get("break_even_share"),
            }
        )
    return rows


def projection_table(
    projection: Projection,
    summaries: Mapping[str, PolicySummary],
    months: int,
    uncertainty: Mapping[str, object] | None = None,
) -> Table:
    """Every projected policy over the horizon."""
    return table(
        projection_rows(projection, summaries, uncertainty),
        projection_columns(months, uncertainty=uncertainty is not None),
    )


SCENARIO_COLUMNS = (
    Column("scenario", "scenario"),
    Column("policy", "policy"),
    Column("months", "months", "count"),
    Column("total_usd", "total over the horizon", "money"),
    Column("break_even", "break-even"),
    Column("servers_at_end", "servers at the end", "count"),
)


def scenario_table(rows: Sequence[Mapping[str, object]]) -> Table:
    """Saved scenarios side by side (`simulators.scenarios.compare_scenarios` rows)."""
    return table(
        [
            {
                **row,
                "break_even": break_even_text(
                    str(row["policy"]),
                    None if row.get("break_even_month") in (None, "never") else int(row["break_even_month"]),  # type: ignore[call-overload]
                ),
            }
            for row in rows
        ],
        SCENARIO_COLUMNS,
    )
