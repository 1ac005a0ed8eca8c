"""RouterBench wide CSV: sample_id, prompt, eval_name, per model `<m>`, `<m>|model_response`, `<m>|total_cost`."""

from __future__ import annotations

from pathlib import Path

import duckdb

from slmlab.traces import checks
from slmlab.traces.outcome_sets import per_model_outcomes, stage_outcome_set
from slmlab.traces.reading import ROW, FileSample, ident, read_csv_raw, sql_quote
from slmlab.traces.staged import ImportOptions, StagedTrace

FIXED = ("sample_id", "prompt", "eval_name")
ORACLE = "oracle_model_to_route_to"
RESPONSE, COST = "|model_response", "|total_cost"


class RouterBenchFormat:
    """Scores in 0..1 and dollar cost per model per prompt, as published by RouterBench."""

    name = "routerbench"
    summary = "RouterBench wide CSV: sample_id, prompt, eval_name, <model>, <model>|model_response, <model>|total_cost"

    def matches(self, sample: FileSample) -> bool:
        return sample.container == "csv" and set(FIXED) <= set(sample.columns)

    def stage(self, con: duckdb.DuckDBPyConnection, path: Path, options: ImportOptions) -> StagedTrace:
        columns = read_csv_raw(con, path)
        models = [c for c in columns if "|" not in c and c not in (*FIXED, ORACLE)]
        allowed = [*models, ORACLE, *(m + RESPONSE for m in models), *(m + COST for m in models)]
        checks.require_columns(path, columns, FIXED, allowed)
        costs = {
            m: checks.number_check(m + COST, f"total cost of {m} ($)", minimum=0, optional=True)
            for m in models
            if m + COST in columns
        }
        checks.run_checks(
            con,
            path,
            "raw",
            [
                checks.text_check("sample_id", "sample id", optional=False),
                *(checks.number_check(m, f"score of {m} (0..1)", minimum=0, maximum=1) for m in models),
                *costs.values(),
            ],
        )
        checks.check_unique(con, path, "raw", "sample_id", "sample_id", "sample ids")
        requests_sql = f"SELECT {ROW}, sample_id AS request_id, prompt, eval_name AS category FROM raw"

        def outcome_select(model: str) -> str:
            response = ident(model + RESPONSE) if model + RESPONSE in columns else "NULL"
            cost = costs[model].typed if model in costs else "NULL"
            return (
                f"SELECT sample_id AS request_id, {sql_quote(model)} AS model, TRY_CAST({ident(model)} AS "
                f"DOUBLE) AS score, "
                f"{cost} AS cost_usd, {response} AS response FROM raw"
            )

        return stage_outcome_set(
            con,
            path,
            requests_sql,
            per_model_outcomes(models, outcome_select),
            {"oracle_column": ORACLE in columns, "note": "the oracle column is recomputable from scores and costs"},
        )


FORMAT = RouterBenchFormat()
