"""RouteLLM outcome CSVs: `prompt,<model A>,<model B>` booleans, optionally `<model>_response` answer columns."""

from __future__ import annotations

from pathlib import Path

import duckdb

from slmlab.traces import checks
from slmlab.traces.errors import TraceInputError
from slmlab.traces.outcome_sets import per_model_outcomes, stage_outcome_set
from slmlab.traces.reading import ROW, FileSample, ident, read_csv_raw, sql_quote
from slmlab.traces.staged import ImportOptions, StagedTrace

RESPONSE_SUFFIX = "_response"


class RouteLLMFormat:
    """Per-prompt correctness of each model (MMLU subjects, GSM8K with answers)."""

    name = "routellm"
    summary = "RouteLLM outcome CSV: prompt,<model>,... booleans; optional <model>_response columns"

    def matches(self, sample: FileSample) -> bool:
        return sample.container == "csv" and len(sample.columns) >= 2 and sample.columns[0] == "prompt"

    def stage(self, con: duckdb.DuckDBPyConnection, path: Path, options: ImportOptions) -> StagedTrace:
        columns = read_csv_raw(con, path)
        if columns[0] != "prompt":
            raise TraceInputError(
                path,
                f"the first column must be 'prompt', found '{columns[0]}'",
                hint="expected prompt,<model A>,<model B>",
            )
        models = [c for c in columns[1:] if not c.endswith(RESPONSE_SUFFIX)]
        if not models:
            raise TraceInputError(path, "no model columns after 'prompt'", hint="expected prompt,<model A>,<model B>")
        responses = {c[: -len(RESPONSE_SUFFIX)] for c in columns if c.endswith(RESPONSE_SUFFIX)}
        orphans = sorted(responses - set(models))
        if orphans:
            raise TraceInputError(
                path, f"unknown column(s) {', '.join(o + RESPONSE_SUFFIX for o in orphans)}: no matching model column"
            )
        checks.run_checks(
            con,
            path,
            "raw",
            [
                checks.text_check("prompt", "prompt", optional=False),
                *(checks.boolean_check(model, f"correctness of {model} (True/False)") for model in models),
            ],
        )
        category = path.stem.removesuffix("_responses")
        requests_sql = (
            f"SELECT {ROW}, CAST({ROW} AS VARCHAR) AS request_id, prompt, {sql_quote(category)} AS category FROM raw"
        )

        def outcome_select(model: str) -> str:
            correct = f"lower(trim({ident(model)})) IN ('true', '1')"
            response = ident(model + RESPONSE_SUFFIX) if model in responses else "NULL"
            return (
                f"SELECT CAST({ROW} AS VARCHAR) AS request_id, {sql_quote(model)} AS model, {correct} AS correct, "
                f"CASE WHEN {correct} THEN 1.0 ELSE 0.0 END AS score, {response} AS response FROM raw"
            )

        outcomes_sql = per_model_outcomes(models, outcome_select)
        return stage_outcome_set(con, path, requests_sql, outcomes_sql, {"models_in_file": models})


FORMAT = RouteLLMFormat()
