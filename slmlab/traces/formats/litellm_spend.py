"""LiteLLM proxy spend logs (the `LiteLLM_SpendLogs` table): a CSV export, or JSON rows as `/spend/logs` returns them
(one object, an array, JSON Lines, or a `{"data": [...]}` page)."""

from __future__ import annotations

from pathlib import Path

import duckdb

from slmlab.traces.datasets import parquet_source
from slmlab.traces.documents import load_documents, records_sql
from slmlab.traces.gateway import CallFields, stage_calls
from slmlab.traces.reading import FileSample, container_of, csv_header, csv_options, ident, sql_quote
from slmlab.traces.staged import ImportOptions, StagedTrace

SIGNATURE = {"request_id", "spend", "startTime"}
MAX_LINE_BYTES = 8 << 20
ONE_PLAIN_TAG = r'\["[ !#-\[\]-~]*"\]'  # RE2: a JSON array of one string of printable ASCII, no quote or backslash


def _fields(value, metadata: str, has) -> tuple[dict[str, str], dict[str, str]]:
    """SQL per call field from a row's value getter; `has` says whether the log has a column."""

    def meta(path: str) -> str:
        return f"({metadata}->>{sql_quote(path)})"

    def first(*options: str) -> str:
        return "coalesce(" + ", ".join(f"NULLIF({o}, '')" for o in options) + ")" if len(options) > 1 else options[0]

    exprs: dict[str, str] = {}
    names: dict[str, str] = {}

    def put(name: str, sql: str, source: str) -> None:
        exprs[name], names[name] = sql, source

    for name, column in (
        ("request_id", "request_id"),
        ("start", "startTime"),
        ("end", "endTime"),
        ("first_token", "completionStartTime"),
        ("duration_ms", "request_duration_ms"),
        ("model", "model"),
        ("input_tokens", "prompt_tokens"),
        ("output_tokens", "completion_tokens"),
        ("cost_usd", "spend"),
        ("prompt", "messages"),
        ("response", "response"),
    ):
        if has(column):
            put(name, value(column), column)
    provider = [value("custom_llm_provider")] if has("custom_llm_provider") else []
    put(
        "provider",
        first(*provider, meta("$.model_map_information.model_map_value.litellm_provider")),
        "custom_llm_provider" if provider else "metadata.model_map_information",
    )
    put(
        "cached_tokens",
        first(
            meta("$.usage_object.prompt_tokens_details.cached_tokens"),
            meta("$.additional_usage_values.cache_read_input_tokens"),
        ),
        "metadata.usage_object.prompt_tokens_details.cached_tokens",
    )
    status = value("status") if has("status") else meta("$.status")
    put(
        "status",
        # the two values LiteLLM writes compared as they are first: no lower-cased, trimmed copy of each
        f"CASE WHEN {status} = 'success' THEN 'success' WHEN {status} = 'failure' THEN 'failure' "
        f"WHEN lower(trim({status})) IN ('failure', 'error', 'failed') THEN 'failure' "
        f"WHEN NULLIF(trim({status}), '') IS NULL THEN NULL ELSE 'success' END",
        "status",
    )
    put(
        "error",
        first(meta("$.error_information.error_message"), meta("$.error_information.error_class")),
        "metadata.error_information",
    )
    team = [value("team_id")] if has("team_id") else []
    put(
        "team",
        first(meta("$.user_api_key_team_alias"), *team, meta("$.user_api_key_team_id")),
        "metadata.user_api_key_team_alias / team_id",
    )
    put("tenant", exprs["team"], names["team"])
    users = [value(c) for c in ("end_user", "user") if has(c)]
    put("user", first(*users, meta("$.user_api_key_user_id")), "end_user / user / metadata.user_api_key_user_id")
    if has("request_tags"):
        tags = value("request_tags")
        text = f"CAST({tags} AS VARCHAR)"
        # no tags ('[]') and one plain ASCII tag without quotes or backslashes ('["prod"]') read without parsing
        # JSON (three parses a row took a tenth of the 10M-row streamed import's typed read); the rest as JSON
        put(
            "tags",
            f"CASE WHEN {text} = '[]' THEN NULL WHEN regexp_full_match({text}, {sql_quote(ONE_PLAIN_TAG)}) "
            f"THEN NULLIF({text}[3:-3], '') "
            f"WHEN json_valid({text}) AND json_type(CAST({text} AS JSON)) = 'ARRAY' THEN "
            f"NULLIF(array_to_string(from_json({text}, '[\"VARCHAR\"]'), ','), '') END",
            "request_tags",
        )
    return exprs, names


class LiteLLMSpendFormat:
    """One row per proxied call: model, tokens, spend, start/end/first-token times, team, user and tags."""

    name = "litellm_spend"
    containers = ("csv", "jsonl", "json", "parquet")  # Parquet also as a hive-partitioned dataset (folder or glob)
    summary = (
        "LiteLLM spend logs (LiteLLM_SpendLogs): CSV export or /spend/logs JSON; request_id, startTime, endTime, "
        "completionStartTime, model, prompt_tokens, completion_tokens, spend, status, team, user, request_tags"
    )

    def matches(self, sample: FileSample) -> bool:
        columns = set(sample.columns)
        return columns >= SIGNATURE or {f"data.{c}" for c in SIGNATURE} <= columns

    def stage(self, con: duckdb.DuckDBPyConnection, path: Path, options: ImportOptions) -> StagedTrace:
        return stage_calls(con, path, self.call_fields(con, path, options), options)

    def call_fields(self, con: duckdb.DuckDBPyConnection, path: Path, options: ImportOptions) -> CallFields:
        """Where each call field is, over tables this prepares in `con` (also used by the streamed import)."""
        if container_of(path) in ("csv", "parquet"):
            if container_of(path) == "csv":
                columns = csv_header(path)
                # Lines of up to 8 MB (a longer line, a whole conversation in one cell, is refused clearly), read in
                # buffers of two such lines (16 MB) rather than DuckDB's 16 (128 MB): a buffer then holds about one
                # DuckDB row group or less, which DuckDB packs into whole row groups. From 128 MB buffers a kept
                # staging table (`call_tables`) had a partly filled row group per buffer, and every later checkpoint
                # of the warehouse rewrote the table to merge them (5 s per 10M rows).
                dialect = csv_options(columns, max_line_bytes=MAX_LINE_BYTES, buffer_bytes=2 * MAX_LINE_BYTES)
                source = f"read_csv({sql_quote(str(path))}, {dialect})"
            else:  # a Parquet file, or a hive-partitioned dataset (`datasets.py`)
                source = parquet_source(path)
                columns = tuple(r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall())

            def value(column: str) -> str:
                return f"CAST({ident(column)} AS VARCHAR)"

            metadata = (
                'TRY_CAST(CAST("metadata" AS VARCHAR) AS JSON)' if "metadata" in columns else "CAST(NULL AS JSON)"
            )
            exprs, names = _fields(value, metadata, lambda c: c in columns)
            fields = CallFields(source=source, exprs=exprs, names=names)
        else:
            load_documents(con, path)
            nested = con.execute("SELECT count_if(json_type(doc->'data') = 'ARRAY') FROM docs").fetchall()[0][0]
            con.execute(f"CREATE OR REPLACE TEMP TABLE rows AS {records_sql('docs', '$.data' if nested else None)}")
            keys = {r[0] for r in con.execute("SELECT DISTINCT unnest(json_keys(record)) FROM rows").fetchall()}

            def value(column: str) -> str:
                return f"(record->>{sql_quote(column)})"

            metadata = (
                "CASE WHEN json_type(record->'metadata') = 'VARCHAR' THEN TRY_CAST(record->>'metadata' AS JSON) "
                "ELSE record->'metadata' END"
            )
            exprs, names = _fields(value, metadata, lambda c: c in keys)
            fields = CallFields(source="rows", exprs=exprs, names=names, ordered_by="__row")
        return fields


FORMAT = LiteLLMSpendFormat()
