"""The shared path for recorded-quality files (RouteLLM, MT-Bench, RouterBench): requests plus per-model outcomes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import duckdb

from slmlab import store
from slmlab.traces.reading import ROW, sql_quote
from slmlab.traces.staged import StagedTrace


def per_model_outcomes(models: Sequence[str], select_for_model: Callable[[str], str]) -> str:
    """UNION ALL of one outcome SELECT per model column of a wide file."""
    return " UNION ALL ".join(select_for_model(model) for model in models)


def stage_outcome_set(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    requests_sql: str,
    outcomes_sql: str,
    report: dict[str, object],
) -> StagedTrace:
    """Run the format's validated SELECTs; requests keep file order as their `seq`."""
    requests = store.query_arrow(
        con,
        f"SELECT row_number() OVER (ORDER BY {ROW}) - 1 AS seq, {ROW} AS source_row, * EXCLUDE ({ROW}) "
        f"FROM ({requests_sql}) ORDER BY seq",
    )
    outcomes = store.query_arrow(
        con,
        f"SELECT *, 'recorded' AS source, {sql_quote(path.name)} AS source_detail FROM ({outcomes_sql}) "
        f"ORDER BY request_id, model",
    )
    return StagedTrace(
        kind="outcomes",
        requests=requests,
        outcomes=outcomes,
        report={**report, "models": sorted(set(outcomes.column("model").to_pylist()))},
    )
