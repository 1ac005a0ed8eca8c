"""OpenTelemetry traces in OTLP JSON (the file exporter's JSON Lines, or one `{"resourceSpans": ...}` document):
every span that follows the GenAI semantic conventions is one model call."""

from __future__ import annotations

from pathlib import Path

import duckdb

from slmlab.traces.documents import load_documents
from slmlab.traces.errors import TraceInputError
from slmlab.traces.gateway import CallFields, stage_calls
from slmlab.traces.reading import FileSample, sql_quote
from slmlab.traces.staged import ImportOptions, StagedTrace

# Current attribute names first, then the names earlier versions of the conventions (and OpenLLMetry, OpenLIT) used.
ATTRIBUTES = {
    "model": ("gen_ai.response.model", "gen_ai.request.model"),
    "provider": ("gen_ai.provider.name", "gen_ai.system"),
    "input_tokens": ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens"),
    "output_tokens": ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens"),
    "cached_tokens": ("gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cached_input_tokens"),
    # pydantic-ai (Logfire) records the call's cost in USD as operation.cost
    "cost_usd": ("gen_ai.usage.cost", "gen_ai.usage.cost_usd", "operation.cost"),
    "user": ("user.id", "enduser.id", "gen_ai.request.user"),
    "tenant": ("tenant.id",),
    "error": ("error.type",),
    "prompt": ("gen_ai.input.messages", "gen_ai.prompt"),
    "response": ("gen_ai.output.messages", "gen_ai.completion"),
}
CALL_MARKERS = ATTRIBUTES["model"] + ATTRIBUTES["input_tokens"] + ATTRIBUTES["output_tokens"]
# Spans that wrap model calls (an agent run, a tool) carry their children's usage: counting them would count twice.
WRAPPERS = ("invoke_agent", "create_agent", "execute_tool", "invoke_workflow")
VALUE = (
    "coalesce(a->'value'->>'stringValue', a->'value'->>'intValue', a->'value'->>'doubleValue', "
    "a->'value'->>'boolValue', CAST(a->'value'->'arrayValue' AS VARCHAR))"
)


class OtlpJsonFormat:
    """Spans with gen_ai.* attributes: model, provider, token usage, start and end times, status."""

    name = "otlp_json"
    summary = (
        "OTLP JSON traces (file exporter / collector): spans with gen_ai.request.model, gen_ai.usage.input_tokens "
        "and output_tokens (or the older prompt_tokens/completion_tokens), start and end times"
    )

    def matches(self, sample: FileSample) -> bool:
        return "resourceSpans" in sample.columns or "resource_spans" in sample.columns

    def stage(self, con: duckdb.DuckDBPyConnection, path: Path, options: ImportOptions) -> StagedTrace:
        return stage_calls(con, path, self.call_fields(con, path, options), options)

    def call_fields(self, con: duckdb.DuckDBPyConnection, path: Path, options: ImportOptions) -> CallFields:
        """Where each call field is, over tables this prepares in `con` (also used by the streamed import)."""
        load_documents(con, path)
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE spans AS
            WITH rs AS (SELECT __doc, generate_subscripts(x, 1) AS i, unnest(x) AS r
                        FROM (SELECT __doc,
                                     CAST(coalesce(doc->'resourceSpans', doc->'resource_spans', '[]') AS JSON[]) AS x
                              FROM docs)),
                 ss AS (SELECT __doc, i, r, generate_subscripts(x, 1) AS j, unnest(x) AS s
                        FROM (SELECT __doc, i, r, CAST(coalesce(r->'scopeSpans', r->'scope_spans',
                                     r->'instrumentationLibrarySpans', '[]') AS JSON[]) AS x FROM rs)),
                 sp AS (SELECT __doc, i, r, j, generate_subscripts(x, 1) AS k, unnest(x) AS span
                        FROM (SELECT __doc, i, r, j, CAST(coalesce(s->'spans', '[]') AS JSON[]) AS x FROM ss))
            SELECT row_number() OVER (ORDER BY __doc, i, j, k) AS __row, span,
                   (SELECT {VALUE}
                    FROM (SELECT unnest(CAST(coalesce(r->'resource'->'attributes', '[]') AS JSON[])) AS a)
                    WHERE a->>'key' = 'service.name') AS service
            FROM sp
        """)
        if not con.execute("SELECT count(*) FROM spans").fetchall()[0][0]:
            raise TraceInputError(path, "holds no spans", hint="expected an OTLP JSON export with resourceSpans")
        wanted = sorted({key for keys in ATTRIBUTES.values() for key in keys} | {"gen_ai.operation.name"})
        listed = ", ".join(sql_quote(k) for k in wanted)
        pivot = ", ".join(
            f"max(v) FILTER (WHERE k = {sql_quote(k)}) AS {sql_quote(k).replace(chr(39), chr(34))}" for k in wanted
        )
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE attrs AS
            SELECT __row, {pivot} FROM (
                SELECT __row, a->>'key' AS k, {VALUE} AS v
                FROM (SELECT __row, unnest(CAST(coalesce(span->'attributes', '[]') AS JSON[])) AS a FROM spans)
            ) WHERE k IN ({listed}) GROUP BY __row
        """)
        markers = " OR ".join(f'a."{k}" IS NOT NULL' for k in CALL_MARKERS)
        wrappers = ", ".join(sql_quote(w) for w in WRAPPERS)
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE calls AS
            SELECT s.__row, s.span, s.service, a.* EXCLUDE (__row) FROM spans s JOIN attrs a USING (__row)
            WHERE ({markers}) AND coalesce(a."gen_ai.operation.name", '') NOT IN ({wrappers})
        """)
        total, kept = con.execute("SELECT (SELECT count(*) FROM spans), (SELECT count(*) FROM calls)").fetchall()[0]
        if not kept:
            span_names = [r[0] for r in con.execute("SELECT DISTINCT span->>'name' FROM spans LIMIT 5").fetchall()]
            raise TraceInputError(
                path,
                f"none of its {total} span(s) is a GenAI model call (spans: {', '.join(map(str, span_names))})",
                hint="slmlab reads spans with gen_ai.request.model or gen_ai.usage.* attributes "
                "(OpenTelemetry GenAI semantic conventions)",
            )
        exprs = {
            "request_id": "coalesce(span->>'spanId', span->>'span_id')",
            "start": "coalesce(span->>'startTimeUnixNano', span->>'start_time_unix_nano')",
            "end": "coalesce(span->>'endTimeUnixNano', span->>'end_time_unix_nano')",
            "status": "CASE WHEN span->'status'->>'code' IN ('2', 'STATUS_CODE_ERROR') THEN 'failure' "
            "ELSE 'success' END",
            # an SDK given no service.name reports "unknown_service[:<executable>]": that names no team
            "team": "CASE WHEN starts_with(service, 'unknown_service') THEN NULL ELSE service END",
        }
        names = {
            "request_id": "spanId",
            "start": "startTimeUnixNano",
            "end": "endTimeUnixNano",
            "status": "status.code",
            "team": "resource service.name",
        }
        for name, keys in ATTRIBUTES.items():
            exprs[name] = "coalesce(" + ", ".join(f'"{k}"' for k in keys) + ")" if len(keys) > 1 else f'"{keys[0]}"'
            names[name] = " / ".join(keys)
        exprs["error"] = f"coalesce(NULLIF(span->'status'->>'message', ''), {exprs['error']})"
        fields = CallFields(
            source="calls",
            exprs=exprs,
            names=names,
            time_unit="ns",
            ordered_by="__row",
            extra_report={
                "spans": int(total),
                "genai_spans": int(kept),
                "skipped_spans": "spans without gen_ai model or usage attributes, and agent/"
                "tool spans that wrap model calls",
            },
        )
        return fields


FORMAT = OtlpJsonFormat()
