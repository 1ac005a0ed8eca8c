"""RouterBench wide CSV: sample_id, prompt, eval_name, per model `<m>`, `<m>|model_response`, `<m>|total_cost`,
as published (an unnamed pandas index column first is read and ignored; rows with a blank score are skipped and
counted)."""

from __future__ import annotations

from pathlib import Path

import duckdb

from slmlab.traces import checks
from slmlab.traces.errors import TraceInputError
from slmlab.traces.outcome_sets import per_model_outcomes, stage_outcome_set
from slmlab.traces.reading import INDEX, ROW, FileSample, ident, read_csv_raw, sql_quote
from slmlab.traces.staged import ImportOptions, StagedTrace

FIXED = ("sample_id", "prompt", "eval_name")
ORACLE = "oracle_model_to_route_to"
RESPONSE, COST = "|model_response", "|total_cost"


def _blank(column: str) -> str:
    return f"({ident(column)} IS NULL OR trim({ident(column)}) = '')"


def skip_unscored(
    con: duckdb.DuckDBPyConnection, path: Path, table: str, key: str, scores: list[str]
) -> dict[str, object]:
    """Delete the rows where some score is blank, and say how many, which models and the first ids: a published
    RouterBench file has prompts some model never got a score for, and a replay needs every model's score."""
    if not scores:
        return {"unscored_rows_skipped": 0}
    blank_any = " OR ".join(_blank(s) for s in scores)
    per_model = ", ".join(f"count(*) FILTER (WHERE {_blank(s)})" for s in scores)
    counts = con.execute(f"SELECT count(*), {per_model} FROM {table} WHERE {blank_any}").fetchall()[0]
    skipped = int(counts[0])
    report: dict[str, object] = {"unscored_rows_skipped": skipped}
    if skipped:
        first = con.execute(f"SELECT {ident(key)} FROM {table} WHERE {blank_any} ORDER BY {ROW} LIMIT 5").fetchall()
        total = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
        if skipped == total:
            raise TraceInputError(path, f"every one of its {total:,} rows has a blank score; nothing to import")
        report["unscored_by_model"] = {s: int(c) for s, c in zip(scores, counts[1:]) if c}
        report["unscored_first_ids"] = [str(r[0]) for r in first]
        con.execute(f"DELETE FROM {table} WHERE {blank_any}")
    return report


class RouterBenchFormat:
    """Scores in 0..1 and dollar cost per model per prompt, as published by RouterBench."""

    name = "routerbench"
    summary = (
        "RouterBench wide CSV: sample_id, prompt, eval_name, <model>, <model>|model_response, <model>|total_cost "
        "(an unnamed index column first is ignored; rows with a blank score are skipped and counted)"
    )

    def matches(self, sample: FileSample) -> bool:
        return sample.container == "csv" and set(FIXED) <= set(sample.columns) and "model_name" not in sample.columns

    def stage(self, con: duckdb.DuckDBPyConnection, path: Path, options: ImportOptions) -> StagedTrace:
        columns = read_csv_raw(con, path)
        models = [c for c in columns if "|" not in c and c not in (*FIXED, ORACLE, INDEX)]
        allowed = [*models, ORACLE, INDEX, *(m + RESPONSE for m in models), *(m + COST for m in models)]
        checks.require_columns(path, columns, FIXED, allowed)
        skipped = skip_unscored(con, path, "raw", "sample_id", models)
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
            {
                "layout": "wide (one column per model)",
                "index_column_ignored": INDEX in columns,
                **skipped,
                "oracle_column": ORACLE in columns,
                "note": "the oracle column is recomputable from scores and costs",
            },
        )


FORMAT = RouterBenchFormat()
