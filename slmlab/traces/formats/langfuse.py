"""Langfuse observation exports: a trace as the public API returns it (`{"trace": ..., "observations": [...]}`),
a `{"data": [...]}` page of observations, or observations as a JSON array, JSON Lines or CSV. Every GENERATION
(or EMBEDDING) observation is one model call."""

from __future__ import annotations

from pathlib import Path

import duckdb

from slmlab.traces.documents import DOC, load_documents
from slmlab.traces.errors import TraceInputError
from slmlab.traces.gateway import CallFields, stage_calls
from slmlab.traces.reading import ROW, FileSample, container_of, csv_header, csv_options, ident, sql_quote
from slmlab.traces.staged import ImportOptions, StagedTrace

CALL_TYPES = ("GENERATION", "EMBEDDING")
OBSERVATION = {"type", "traceId", "startTime"}


def _fields(value, usage, cost, trace) -> tuple[dict[str, str], dict[str, str]]:
    def first(*options: str) -> str:
        return "coalesce(" + ", ".join(f"NULLIF(CAST({o} AS VARCHAR), '')" for o in options) + ")"

    exprs = {
        "request_id": value("id"),
        "start": value("startTime"),
        "end": value("endTime"),
        "first_token": value("completionStartTime"),
        "model": first(value("model"), value("providedModelName")),
        "input_tokens": first(usage("input"), value("inputUsage"), value("promptTokens")),
        "output_tokens": first(usage("output"), value("completionTokens")),
        "cached_tokens": first(
            usage("input_cached_tokens"), usage("prompt_details.cache_read"), usage("input_cache_read")
        ),
        "cost_usd": first(cost("total"), value("calculatedTotalCost"), value("totalCost")),
        "status": f"CASE WHEN upper({value('level')}) = 'ERROR' THEN 'failure' ELSE 'success' END",
        "error": value("statusMessage"),
        "user": first(value("userId"), trace("userId")),
        "tags": trace("tags"),
        "prompt": value("input"),
        "response": value("output"),
    }
    names = {
        "request_id": "id",
        "start": "startTime",
        "end": "endTime",
        "first_token": "completionStartTime",
        "model": "model",
        "input_tokens": "usageDetails.input",
        "output_tokens": "usageDetails.output",
        "cached_tokens": "usageDetails.input_cached_tokens",
        "cost_usd": "costDetails.total / calculatedTotalCost",
        "status": "level",
        "error": "statusMessage",
        "user": "userId (observation or trace)",
        "tags": "trace.tags",
        "prompt": "input",
        "response": "output",
    }
    return exprs, names


class LangfuseFormat:
    """Generations with model, usage and cost details, start, completion-start and end times, level."""

    name = "langfuse"
    summary = (
        "Langfuse observations export (trace JSON with observations, API page, JSON Lines or CSV): GENERATION "
        "observations with model, usageDetails, costDetails, startTime, completionStartTime, endTime"
    )

    def matches(self, sample: FileSample) -> bool:
        columns = set(sample.columns)
        return (
            {"trace", "observations"} <= columns
            or columns >= OBSERVATION
            or {f"data.{c}" for c in OBSERVATION} <= columns
        )

    def stage(self, con: duckdb.DuckDBPyConnection, path: Path, options: ImportOptions) -> StagedTrace:
        return stage_calls(con, path, self.call_fields(con, path, options), options)

    def call_fields(self, con: duckdb.DuckDBPyConnection, path: Path, options: ImportOptions) -> CallFields:
        """Where each call field is, over tables this prepares in `con` (also used by the streamed import)."""
        kinds = ", ".join(sql_quote(t) for t in CALL_TYPES)
        if container_of(path) == "csv":
            columns = csv_header(path)
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE obs AS SELECT row_number() OVER () AS {ROW}, * "
                f"FROM read_csv({sql_quote(str(path))}, {csv_options(columns)})"
            )

            def value(key: str) -> str:
                return ident(key) if key in columns else "CAST(NULL AS VARCHAR)"

            def parsed(column: str, key: str) -> str:
                return (
                    f"(TRY_CAST({ident(column)} AS JSON)->>{sql_quote('$.' + chr(34) + key + chr(34))})"
                    if column in columns
                    else "CAST(NULL AS VARCHAR)"
                )

            exprs, names = _fields(
                value,
                lambda k: parsed("usageDetails", k),
                lambda k: parsed("costDetails", k),
                lambda k: "CAST(NULL AS VARCHAR)",
            )
            calls = f"(SELECT * FROM obs WHERE upper(trim({value('type')})) IN ({kinds}))"
        else:
            load_documents(con, path)
            con.execute(f"""
                CREATE OR REPLACE TEMP TABLE obs AS
                SELECT row_number() OVER (ORDER BY {DOC}, idx) AS {ROW}, record, trace FROM (
                    SELECT {DOC}, trace, generate_subscripts(items, 1) AS idx, unnest(items) AS record FROM (
                        SELECT {DOC}, doc->'trace' AS trace,
                               CASE WHEN json_type(doc->'observations') = 'ARRAY'
                                    THEN CAST(doc->'observations' AS JSON[])
                                    WHEN json_type(doc->'data') = 'ARRAY' THEN CAST(doc->'data' AS JSON[])
                                    WHEN json_type(doc) = 'ARRAY' THEN CAST(doc AS JSON[])
                                    ELSE [doc] END AS items
                        FROM docs))
            """)

            def value(key: str) -> str:
                return f"(record->>{sql_quote('$.' + chr(34) + key + chr(34))})"

            def detail(group: str, fallback: str):
                def get(key: str) -> str:
                    path = sql_quote(f'$."{group}"."{key}"')
                    other = sql_quote(f'$."{fallback}"."{key}"')
                    return f"coalesce(record->>{path}, record->>{other})"

                return get

            def trace(key: str) -> str:
                if key == "tags":
                    return (
                        "CASE WHEN json_type(trace->'tags') = 'ARRAY' THEN "
                        "NULLIF(array_to_string(from_json(trace->'tags', '[\"VARCHAR\"]'), ','), '') END"
                    )
                return f"(trace->>{sql_quote(key)})"

            exprs, names = _fields(value, detail("usageDetails", "usage"), detail("costDetails", "costDetails"), trace)
            calls = f"(SELECT * FROM obs WHERE upper(record->>'type') IN ({kinds}))"
        total, kept = con.execute(f"SELECT (SELECT count(*) FROM obs), (SELECT count(*) FROM {calls})").fetchall()[0]
        if not kept:
            raise TraceInputError(
                path,
                f"none of its {total} observation(s) is a GENERATION",
                column="type",
                hint="slmlab reads Langfuse GENERATION (and EMBEDDING) observations; spans, events and agents "
                "are skipped",
            )
        fields = CallFields(
            source=f"{calls} AS c",
            exprs=exprs,
            names=names,
            ordered_by=ROW,
            extra_report={"observations": int(total), "generations": int(kept)},
        )
        return fields


FORMAT = LangfuseFormat()
