"""MT-Bench judgement JSONL (RouteLLM's copy): question_id, model, judge, score 1-10, turn."""

from __future__ import annotations

from pathlib import Path

import duckdb

from slmlab.traces import checks
from slmlab.traces.outcome_sets import stage_outcome_set
from slmlab.traces.reading import LINE, ROW, FileSample, read_jsonl_raw
from slmlab.traces.staged import ImportOptions, StagedTrace

REQUIRED = ("question_id", "model", "score", "turn")
OPTIONAL = ("judge", "user_prompt", "judgment", "tstamp")


class MTBenchFormat:
    """One judge rating per question, turn and model; a request is one (question, turn)."""

    name = "mtbench"
    summary = "MT-Bench judgement JSONL: question_id, model, judge, score (1-10), turn"

    def matches(self, sample: FileSample) -> bool:
        return sample.container == "jsonl" and set(REQUIRED) <= set(sample.columns)

    def stage(self, con: duckdb.DuckDBPyConnection, path: Path, options: ImportOptions) -> StagedTrace:
        keys = read_jsonl_raw(con, path)
        checks.require_columns(path, keys, REQUIRED, OPTIONAL)
        question, turn = checks.count_check("question_id", "question id"), checks.count_check("turn", "turn")
        checks.run_checks(
            con,
            path,
            "raw",
            [
                question,
                turn,
                checks.text_check("model", "model", optional=False),
                checks.number_check("score", "judge score (1-10)", minimum=1, maximum=10),
            ],
        )
        request_id = f"CAST({question.typed} AS VARCHAR) || '-turn' || CAST({turn.typed} AS VARCHAR)"
        checks.check_unique(con, path, "raw", f"{request_id} || ' ' || model", "question_id", "(question, turn, model)")
        judge = f"array_to_string(TRY_CAST({LINE}->'judge' AS VARCHAR[]), '/')" if "judge" in keys else "NULL"
        requests_sql = (
            f"SELECT min({ROW}) AS {ROW}, request_id, 'mt-bench' AS category FROM "
            f"(SELECT {ROW}, {request_id} AS request_id, {question.typed} AS q, {turn.typed} AS t FROM raw) "
            f"GROUP BY request_id, q, t ORDER BY q, t"
        )
        outcomes_sql = (
            f"SELECT {request_id} AS request_id, model, TRY_CAST(score AS DOUBLE) / 10.0 AS score, "
            f"{judge} AS judge FROM raw"
        )
        return stage_outcome_set(
            con, path, requests_sql, outcomes_sql, {"score_scale": "judge rating 1-10 stored as rating / 10"}
        )


FORMAT = MTBenchFormat()
