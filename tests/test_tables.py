"""The shared tables: one row set per table, the same cell text on the CLI, pages and reports; and the projection
keeps what the user asked to replay (by the policy's kind and the run's configuration, not by its label)."""

from __future__ import annotations

import re

from simulators.projection import basis_from_run
from simulators.results import WEAK_REFERENCE, summaries_from_dicts
from simulators.tables import POLICY_COLUMNS, policy_table, residency_table, sweep_table


def summary(cost: float, quality: float, kind: str, **extra: object) -> dict[str, object]:
    """A stored policy summary with the fields the tables and the projection read."""
    return {
        "kind": kind,
        "requests": 2000,
        "cost_usd": cost,
        "quality": quality,
        "latency_ms": {"p50": 800.0, "p95": 4240.0},
        "in_house_share": 0.25,
        "residency_violations_by_class": {"confidential": 3},
        "residency_violations": 3,
        "reasons": {"kept-local": 10},
        "quality_source": {"assumption": 2000},
        **extra,
    }


RUN = {
    "run_id": 7,
    "trace": "hand",
    "inputs": {"span_s": 3600.0},
    "config": {"policies": [{"policy": "frontier-only"}, {"policy": "cascade"}, {"policy": "oracle"}]},
    "portfolio": [],
    "policies": {
        "frontier-only": summary(10.0, 0.9, "baseline"),
        "cascade": summary(6.0, 0.88, "deployable", sweep={"parameter": "threshold", "points": 9, "apgr": 0.5}),
        "oracle": summary(3.0, 0.97, "reference"),
        # added by the replay for the PGR, and (as a test of the rule) under a label without "(reference)"
        "small-only, for the PGR": summary(1.0, 0.5, "reference"),
    },
}


def test_the_projection_keeps_asked_policies_and_drops_a_reference_the_replay_added() -> None:
    kept = [p.policy for p in basis_from_run(RUN).policies]
    assert kept == ["frontier-only", "cascade", "oracle"]  # the oracle was asked for: shown as a bound
    legacy = {**RUN, "config": {}, "policies": {"frontier-only": RUN["policies"]["frontier-only"]}}
    legacy["policies"][WEAK_REFERENCE] = summary(1.0, 0.5, "reference")
    assert [p.policy for p in basis_from_run(legacy).policies] == ["frontier-only"]


def test_every_cell_is_written_for_people_and_the_raw_figures_stay_numbers() -> None:
    summaries = summaries_from_dicts(RUN["policies"])  # type: ignore[arg-type]
    table = policy_table(summaries)
    shown = {row["policy"]: row for row in table.formatted()}
    assert shown["cascade"]["cost per 1,000 requests"] == "$3.00"
    assert shown["cascade"]["p95 latency"] == "4.24 s" and shown["cascade"]["quality"] == "88.0%"
    assert shown["oracle"]["servers needed"] == "n/a"
    raw = {row["policy"]: row for row in table.raw()}
    assert raw["cascade"]["cost_per_1k_usd"] == 3.0  # downloads keep the figure, not its text
    assert [c.key for c in table.columns] == [c.key for c in POLICY_COLUMNS]
    text = table.text()
    assert all(len(line) < 400 for line in text.splitlines()) and "$3.00" in text
    for cell in (c for row in table.formatted() for c in row.values()):
        assert "None" not in cell and "{" not in cell and not re.search(r"\d\.\d{5,}", cell), cell
    assert table.csv().splitlines()[0].startswith("policy,cost_usd,cost_per_1k_usd")


def test_sweep_and_residency_tables() -> None:
    summaries = summaries_from_dicts(RUN["policies"])  # type: ignore[arg-type]
    (swept,) = sweep_table(summaries).formatted()
    assert swept["policy"] == "cascade" and swept["APGR"] == "0.50" and swept["AIQ (paper formula)"] == "n/a"
    residency = residency_table(summaries, ("public", "confidential")).formatted()
    assert residency[0]["confidential"] == "3" and residency[0]["routing reasons (requests)"] == "kept-local 10"
