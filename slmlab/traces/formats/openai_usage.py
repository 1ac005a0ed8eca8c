"""OpenAI-style usage exports (`GET /v1/organization/usage/completions`): pages of time buckets, each with results
that count requests and tokens per model, project, user or key.

The export records no single request, so the requests are reconstructed, and the trace says so: the
`num_model_requests` requests of a result are spread evenly over their bucket, request i of n arriving at
start + (i + 0.5) x width / n, and the result's input, output and cached tokens are split evenly between them (the
first `total mod n` requests take one token more, so the totals are exactly the export's). Arrival times, per-request
token counts and therefore any latency or queueing figure derived from them are an ASSUMPTION, not a record.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from slmlab.traces import checks
from slmlab.traces.documents import DOC, load_documents
from slmlab.traces.errors import TraceInputError
from slmlab.traces.gateway import CallFields, stage_calls
from slmlab.traces.reading import ROW, FileSample
from slmlab.traces.staged import ImportOptions, StagedTrace

MAX_BUCKET_REQUESTS = 100_000_000  # requests one usage bucket may reconstruct (README: Limits on input)

ASSUMPTION = (
    "arrival times reconstructed: the export counts requests per time bucket, so the n requests of each "
    "result are spread evenly over the bucket (request i at start + (i + 0.5) x width / n) and its tokens "
    "are split evenly between them; per-request arrivals and token counts are an assumption"
)


def _split(total: str) -> str:
    """Request i's share of a result's total: an even split, the first `total mod n` requests one token more."""
    return (
        f"CASE WHEN {total} IS NULL THEN NULL ELSE CAST({total} // n + CASE WHEN i < {total} % n THEN 1 ELSE 0 END "
        f"AS VARCHAR) END"
    )


class OpenAIUsageFormat:
    """Usage buckets of an OpenAI-compatible usage API, expanded into evenly spread requests."""

    name = "openai_usage"
    summary = (
        "OpenAI usage export (/organization/usage/completions pages): buckets with start_time, end_time and "
        "results of num_model_requests, input_tokens, output_tokens per model; arrivals are reconstructed"
    )

    def matches(self, sample: FileSample) -> bool:
        columns = set(sample.columns)
        return "data.results" in columns and {"data.start_time", "data.end_time"} <= columns

    def stage(self, con: duckdb.DuckDBPyConnection, path: Path, options: ImportOptions) -> StagedTrace:
        return stage_calls(con, path, self.call_fields(con, path, options), options)

    def call_fields(self, con: duckdb.DuckDBPyConnection, path: Path, options: ImportOptions) -> CallFields:
        """Where each call field is, over tables this prepares in `con` (also used by the streamed import)."""
        load_documents(con, path)
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE results AS
            SELECT row_number() OVER (ORDER BY {DOC}, b, r) AS {ROW}, bucket->>'start_time' AS start_time,
                   bucket->>'end_time' AS end_time, result->>'num_model_requests' AS num_model_requests,
                   result->>'input_tokens' AS input_tokens, result->>'output_tokens' AS output_tokens,
                   result->>'input_cached_tokens' AS input_cached_tokens, result->>'model' AS model,
                   result->>'project_id' AS project_id, result->>'user_id' AS user_id,
                   result->>'api_key_id' AS api_key_id, result->>'service_tier' AS service_tier
            FROM (SELECT {DOC}, b, bucket, generate_subscripts(rs, 1) AS r, unnest(rs) AS result FROM (
                  SELECT {DOC}, b, bucket, CAST(coalesce(bucket->'results', '[]') AS JSON[]) AS rs FROM (
                  SELECT {DOC}, generate_subscripts(bs, 1) AS b, unnest(bs) AS bucket FROM (
                  SELECT {DOC}, CAST(coalesce(doc->'data', '[]') AS JSON[]) AS bs FROM docs))))
        """)
        if not con.execute("SELECT count(*) FROM results").fetchall()[0][0]:
            raise TraceInputError(path, "holds no usage results", hint="expected pages with data[].results[]")
        earliest, latest = -(2**63) / 1e9, (2**63 - 1) / 1e9  # 1677..2262: nanoseconds in int64
        start, end = (
            checks.number_check("start_time", "bucket start (Unix seconds)", minimum=earliest, maximum=latest),
            checks.number_check("end_time", "bucket end (Unix seconds)", minimum=earliest, maximum=latest),
        )
        counts = [
            checks.count_check("num_model_requests", "number of requests"),
            checks.number_check(  # each request of a bucket becomes a row: a bound before any row is made
                "num_model_requests",
                f"number of requests (at most {MAX_BUCKET_REQUESTS:,} per bucket)",
                maximum=MAX_BUCKET_REQUESTS,
            ),
        ]
        counts += [
            checks.Check(c.column, c.what, f"CASE WHEN {c.column} IS NULL THEN NULL ELSE {c.reason} END", c.typed)
            for c in (
                checks.count_check(n, n.replace("_", " "))
                for n in ("input_tokens", "output_tokens", "input_cached_tokens")
            )
        ]
        checks.run_checks(con, path, "results", [start, end, *counts])
        bad = con.execute(
            f"SELECT {ROW}, start_time, end_time FROM results "
            f"WHERE TRY_CAST(end_time AS DOUBLE) <= TRY_CAST(start_time AS DOUBLE) ORDER BY {ROW}"
        ).fetchall()
        if bad:
            raise TraceInputError(
                path,
                "bucket ends before it starts",
                column="end_time",
                offenders=[(row, f"{s} .. {e}") for row, s, e in bad],
                total=len(bad),
            )
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE requests AS
            SELECT row_number() OVER (ORDER BY {ROW}, i) AS {ROW}, * EXCLUDE ({ROW}) FROM (
                SELECT {ROW}, unnest(range(n)) AS i, * EXCLUDE ({ROW}) FROM (
                    SELECT {ROW}, CAST(num_model_requests AS BIGINT) AS n, CAST(start_time AS DOUBLE) AS t0,
                           CAST(end_time AS DOUBLE) AS t1, CAST(input_tokens AS BIGINT) AS tin,
                           CAST(output_tokens AS BIGINT) AS tout, CAST(input_cached_tokens AS BIGINT) AS tcached,
                           model, project_id, user_id, api_key_id
                    FROM results))
        """)
        if not con.execute("SELECT count(*) FROM requests").fetchall()[0][0]:
            raise TraceInputError(path, "its usage results count no requests", column="num_model_requests")
        exprs = {
            "start": "CAST(round(t0 * 1e9 + (i + 0.5) * (t1 - t0) * 1e9 / n) AS BIGINT)",
            "model": "model",
            "provider": "'openai'",
            "input_tokens": _split("tin"),
            "output_tokens": _split("tout"),
            "cached_tokens": _split("tcached"),
            "tenant": "project_id",
            "team": "project_id",
            "user": "coalesce(user_id, api_key_id)",
        }
        names = {
            "start": "bucket start_time/end_time (reconstructed)",
            "model": "results.model",
            "provider": "(openai)",
            "input_tokens": "results.input_tokens / num_model_requests",
            "output_tokens": "results.output_tokens / num_model_requests",
            "cached_tokens": "results.input_cached_tokens / num_model_requests",
            "tenant": "results.project_id",
            "team": "results.project_id",
            "user": "results.user_id / api_key_id",
        }
        fields = CallFields(
            source="requests",
            exprs=exprs,
            names=names,
            time_unit="ns",
            ordered_by=ROW,
            assumptions=(ASSUMPTION,),
            extra_report={
                "arrivals": "reconstructed (assumption)",
                "usage_results": int(con.execute("SELECT count(*) FROM results").fetchall()[0][0]),
            },
        )
        return fields


FORMAT = OpenAIUsageFormat()
