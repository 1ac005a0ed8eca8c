"""A streamed gateway log's own table of calls (`store.m020_trace_call_tables`): the typed staging table of a large
import is kept, renamed `trace_calls_<trace_id>`, instead of being copied into `request_records_base` and
`request_details_base`; the `request_records` and `request_details` views read those tables and every trace table,
so readers see one set of columns whatever the import path."""

from __future__ import annotations

import duckdb

from slmlab.store import DETAILS_BASE, RECORDS_BASE
from slmlab.traces.gateway import RECORD_COLUMNS
from slmlab.traces.reading import ident

PREFIX = "trace_calls_"


def table_name(trace_id: int) -> str:
    """The trace table of one trace."""
    return f"{PREFIX}{int(trace_id)}"


def record_values(present: set[str]) -> dict[str, str]:
    """SQL over a trace table (alias `c`) for each column of `request_records`, from the call fields it holds (NULL
    for those it lacks): latency from the recorded duration, else end minus start; time to first token likewise."""

    def col(name: str) -> str:
        return f"c.{ident(name)}" if name in present else "NULL"

    latency = (
        'coalesce(c.duration_ms, (c."end" - c.start) / 1e6)'
        if {"duration_ms", "end"} <= present
        else "c.duration_ms"
        if "duration_ms" in present
        else '(c."end" - c.start) / 1e6'
        if "end" in present
        else "NULL"
    )
    first = (
        'CASE WHEN c.first_token IS NOT NULL AND (c."end" IS NULL OR c.first_token < c."end") '
        "THEN (c.first_token - c.start) / 1e6 END"
        if "first_token" in present
        else "NULL"
    )
    values = {
        "model": col("model"),
        "provider": col("provider"),
        "latency_ms": latency,
        "ttft_ms": f"coalesce(c.ttft_ms, {first})" if "ttft_ms" in present else first,
        "cost_usd": col("cost_usd"),
        "cached_tokens": col("cached_tokens"),
        "status": col("status"),
        "error": col("error"),
        "team": col("team"),
        "user_id": col("user"),
        "tags": col("tags"),
        "response": col("response"),
    }
    assert tuple(values) == RECORD_COLUMNS
    return values


def detail_values(present: set[str]) -> dict[str, str] | None:
    """SQL over a trace table for the columns of `request_details` (the request id, else the file row, and the
    prompt); None when the log has neither an id nor text, as the in-memory import then stores no details."""
    if "request_id" not in present and "prompt" not in present:
        return None
    request_id = "c.request_id" if "request_id" in present else "NULL"
    return {
        "request_id": f"coalesce({request_id}, CAST(c.rowid + 1 AS VARCHAR))",
        "category": "NULL",
        "prompt": "c.prompt" if "prompt" in present else "NULL",
        "reference": "NULL",
        "prefix_hash_ids": "NULL",
    }


def refresh_views(con: duckdb.DuckDBPyConnection) -> None:
    """Recreate `request_records` and `request_details` over their base tables and every trace table (after a
    streamed import or a removal, inside its transaction)."""
    found = con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() AND schema_name = 'main' "
        f"AND NOT temporary AND starts_with(table_name, '{PREFIX}') ORDER BY table_name"
    ).fetchall()
    traces = [
        (int(name.removeprefix(PREFIX)), name, set(con.table(name).columns))
        for (name,) in found
        if name.removeprefix(PREFIX).isdigit()
    ]
    for view, base, values_for in (
        ("request_records", RECORDS_BASE, record_values),
        ("request_details", DETAILS_BASE, detail_values),
    ):
        types = con.execute(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = current_database() "
            "AND schema_name = 'main' AND table_name = ? ORDER BY column_index",
            [base],
        ).fetchall()
        columns = [name for name, _ in types]
        branches = [f"SELECT {', '.join(ident(c) for c in columns)} FROM {base}"]
        for trace_id, table, present in traces:
            values = values_for(present)
            if values is None:
                continue
            assert [name for name, _ in types[2:]] == list(values), (view, columns, list(values))
            typed = {
                "trace_id": f"CAST({trace_id} AS INTEGER)",
                "seq": "CAST(coalesce(k.seq, c.rowid) AS BIGINT)",
                **{name: f"CAST({values[name]} AS {kind})" for name, kind in types[2:]},
            }
            branches.append(
                f"SELECT {', '.join(f'{sql} AS {ident(name)}' for name, sql in typed.items())} FROM {table} c "
                f"LEFT JOIN call_moves k ON k.trace_id = {trace_id} AND k.file_row = c.rowid"
            )
        con.execute(f"CREATE OR REPLACE VIEW {view} AS {' UNION ALL '.join(branches)}")


def drop_trace_table(con: duckdb.DuckDBPyConnection, trace_id: int) -> None:
    """Remove a trace's own table of calls and its moved ranks, if it has them (inside the caller's transaction)."""
    con.execute(f"DROP TABLE IF EXISTS {table_name(trace_id)}")
    con.execute("DELETE FROM call_moves WHERE trace_id = ?", [int(trace_id)])
    refresh_views(con)
