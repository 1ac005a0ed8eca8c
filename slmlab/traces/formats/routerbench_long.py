"""RouterBench long CSV (the layout its `convert_to_wide_format` starts from): one row per prompt and model with
sample_id, model_name, performance and optionally prompt, eval_name, model_response, cost."""

from __future__ import annotations

from pathlib import Path

import duckdb

from slmlab.traces import checks
from slmlab.traces.errors import TraceInputError
from slmlab.traces.formats.routerbench import skip_unscored
from slmlab.traces.outcome_sets import stage_outcome_set
from slmlab.traces.reading import INDEX, ROW, FileSample, ident, read_csv_raw
from slmlab.traces.staged import ImportOptions, StagedTrace

REQUIRED = ("sample_id", "model_name", "performance")
OPTIONAL = ("prompt", "eval_name", "model_response", "cost", "total_cost", "oracle_model_to_route_to", INDEX)


class RouterBenchLongFormat:
    """One recorded score (and cost) per prompt and model; a prompt some model has no score for is dropped whole."""

    name = "routerbench-long"
    summary = (
        "RouterBench long CSV: sample_id, model_name, performance (0..1), optional prompt, eval_name, model_response, "
        "cost (rows with a blank performance are skipped and counted)"
    )

    def matches(self, sample: FileSample) -> bool:
        return sample.container == "csv" and set(REQUIRED) <= set(sample.columns)

    def stage(self, con: duckdb.DuckDBPyConnection, path: Path, options: ImportOptions) -> StagedTrace:
        columns = read_csv_raw(con, path)
        checks.require_columns(path, columns, REQUIRED, OPTIONAL)
        report = skip_unscored(con, path, "raw", "sample_id", ["performance"])
        cost_column = next((c for c in ("cost", "total_cost") if c in columns), None)
        cost = checks.number_check(cost_column, "cost ($)", minimum=0, optional=True) if cost_column else None
        checks.run_checks(
            con,
            path,
            "raw",
            [
                checks.text_check("sample_id", "sample id", optional=False),
                checks.text_check("model_name", "model name", optional=False),
                checks.number_check("performance", "performance (0..1)", minimum=0, maximum=1),
                *([cost] if cost else []),
            ],
        )
        checks.check_unique(con, path, "raw", "sample_id || ' ' || model_name", "sample_id", "(sample_id, model)")
        # a replay needs every model's score on every prompt: prompts that lack one (after the skip) are dropped
        models = [r[0] for r in con.execute("SELECT DISTINCT model_name FROM raw ORDER BY 1").fetchall()]
        incomplete = con.execute(
            f"SELECT count(*) FROM (SELECT sample_id FROM raw GROUP BY sample_id HAVING count(*) < {len(models)})"
        ).fetchall()[0][0]
        if incomplete and incomplete == con.execute("SELECT count(DISTINCT sample_id) FROM raw").fetchall()[0][0]:
            raise TraceInputError(  # dropping every prompt would store an empty trace
                path,
                f"no prompt has a score for every one of the {len(models)} models "
                f"({', '.join(models[:5])}{', ...' if len(models) > 5 else ''})",
                column="model_name",
                hint="a replay needs every model's score on each prompt; check the model_name column",
            )
        if incomplete:
            con.execute(
                f"DELETE FROM raw WHERE sample_id IN "
                f"(SELECT sample_id FROM raw GROUP BY sample_id HAVING count(*) < {len(models)})"
            )
        text = {c: (ident(c) if c in columns else "NULL") for c in ("prompt", "eval_name", "model_response")}
        requests_sql = (
            f"SELECT min({ROW}) AS {ROW}, sample_id AS request_id, any_value({text['prompt']}) AS prompt, "
            f"any_value({text['eval_name']}) AS category FROM raw GROUP BY sample_id"
        )
        outcomes_sql = (
            f"SELECT sample_id AS request_id, model_name AS model, TRY_CAST(performance AS DOUBLE) AS score, "
            f"{cost.typed if cost else 'NULL'} AS cost_usd, {text['model_response']} AS response FROM raw"
        )
        return stage_outcome_set(
            con,
            path,
            requests_sql,
            outcomes_sql,
            {
                "layout": "long (one row per prompt and model)",
                "index_column_ignored": INDEX in columns,
                **report,
                "prompts_dropped_missing_a_model": int(incomplete),
            },
        )


FORMAT = RouterBenchLongFormat()
