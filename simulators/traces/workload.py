"""The shared path for arrival traces (Azure, Mooncake, generic): map columns, check them, sort by arrival."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import duckdb

from slmlab import store

from simulators.traces import checks
from simulators.traces.errors import TraceInputError
from simulators.traces.labelling import DATA_CLASSES, RESIDENCIES
from simulators.traces.reading import LINE, ROW, ident, sql_quote
from simulators.traces.staged import StagedTrace

ArrivalUnit = Literal["auto", "timestamp", "s", "ms"]
REQUIRED_FIELDS = ("arrival", "input_tokens", "output_tokens")
OPTIONAL_FIELDS = (
    "request_id", "task", "data_class", "residency", "tenant", "latency_slo_ms", "category", "prompt", "reference",
    "prefix_hash_ids",
)
WORKLOAD_FIELDS = REQUIRED_FIELDS + OPTIONAL_FIELDS


def _field_check(field: str, column: str) -> checks.Check:
    what = field.replace("_", " ")
    if field in ("input_tokens", "output_tokens"):
        return checks.count_check(column, f"{what} (need whole numbers >= 0)")
    if field == "latency_slo_ms":
        return checks.number_check(column, "latency SLO (ms)", minimum=0.0)
    if field == "data_class":
        return checks.vocabulary_check(column, "data class", DATA_CLASSES)
    if field == "residency":
        return checks.vocabulary_check(column, "residency requirement", RESIDENCIES)
    if field in ("request_id", "task", "tenant"):
        return checks.text_check(column, what, optional=False)
    return checks.text_check(column, what)


def _arrival_check(column: str, unit: ArrivalUnit) -> tuple[checks.Check, str]:
    if unit == "timestamp":
        return checks.timestamp_check(column, "arrival time"), "timestamp"
    check = checks.number_check(column, f"arrival time (number of {'milliseconds' if unit == 'ms' else 'seconds'})")
    return check, unit


def _resolve_auto_unit(con: duckdb.DuckDBPyConnection, table: str, column: str) -> ArrivalUnit:
    text = f"CAST({ident(column)} AS VARCHAR)"
    numeric, stamps = con.execute(
        f"SELECT count_if(TRY_CAST({text} AS DOUBLE) IS NOT NULL), count_if(TRY_CAST({text} AS TIMESTAMP_NS) IS NOT NULL) "
        f"FROM {table}"
    ).fetchall()[0]
    return "s" if numeric >= stamps and numeric > 0 else "timestamp"


def _hash_ids_check(path: Path, con: duckdb.DuckDBPyConnection, table: str, column: str) -> str:
    source = f"({LINE}->{sql_quote(column)})" if LINE in _columns(con, table) else ident(column)
    typed = f"TRY_CAST({source} AS BIGINT[])"
    bad = con.execute(
        f"SELECT {ROW}, left(CAST({source} AS VARCHAR), 60), count(*) OVER () FROM {table} "
        f"WHERE {source} IS NOT NULL AND {typed} IS NULL ORDER BY {ROW} LIMIT 5"
    ).fetchall()
    if bad:
        raise TraceInputError(
            path, "bad prefix hash ids (need a list of integers)", column=column,
            offenders=[(row, f"{value!r}") for row, value, _ in bad], total=int(bad[0][2]),
        )
    return typed


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    return [row[0] for row in con.execute(f"DESCRIBE {table}").fetchall()]


def stage_workload(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    file_columns: tuple[str, ...],
    mapping: Mapping[str, str],
    *,
    arrival_unit: ArrivalUnit,
    ignore: tuple[str, ...] = (),
    table: str = "raw",
    hint: str | None = None,
) -> StagedTrace:
    """Validate mapped columns, then order requests by arrival (ties keep file order) and count re-sorted rows."""
    unknown_fields = sorted(set(mapping) - set(WORKLOAD_FIELDS))
    if unknown_fields:
        raise TraceInputError(
            path, f"--map names unknown field(s) {', '.join(unknown_fields)}",
            hint=f"fields are {', '.join(WORKLOAD_FIELDS)}",
        )
    missing = [f for f in REQUIRED_FIELDS if f not in mapping]
    if missing:
        raise TraceInputError(
            path, f"no column is mapped to {', '.join(missing)}; the file has {', '.join(file_columns)}",
            hint=hint or "map them with --map FIELD=COLUMN, e.g. --map arrival=ts,input_tokens=prompt_len",
        )
    checks.require_columns(path, file_columns, mapping.values(), ignore, hint=hint)

    if arrival_unit == "auto":
        arrival_unit = _resolve_auto_unit(con, table, mapping["arrival"])
    arrival, arrival_unit = _arrival_check(mapping["arrival"], arrival_unit)
    field_checks = {field: _field_check(field, column) for field, column in mapping.items()
                    if field not in ("arrival", "prefix_hash_ids")}
    checks.run_checks(con, path, table, [arrival, *field_checks.values()])
    if "request_id" in mapping:
        checks.check_unique(con, path, table, field_checks["request_id"].typed, mapping["request_id"], "request ids")

    projections = {field: check.typed for field, check in field_checks.items()}
    if "prefix_hash_ids" in mapping:
        projections["prefix_hash_ids"] = _hash_ids_check(path, con, table, mapping["prefix_hash_ids"])
    projections.setdefault("request_id", f"CAST({ROW} AS VARCHAR)")
    if arrival_unit == "timestamp":
        key = f"epoch_ns({arrival.typed})"
        projections["arrived_at"] = arrival.typed
        arrival_s = "(key - min(key) OVER ()) / 1e9"
    else:
        key = arrival.typed if arrival_unit == "s" else f"({arrival.typed}) / 1000.0"
        arrival_s = "key - min(key) OVER ()"
    select = ", ".join(f"{sql} AS {ident(field)}" for field, sql in projections.items())
    con.execute(f"CREATE OR REPLACE TEMP TABLE typed AS SELECT {ROW}, {key} AS key, {select} FROM {table}")
    con.execute(f"DROP TABLE {table}")
    out_of_order = con.execute(
        f"SELECT count_if(key < prev) FROM (SELECT key, lag(key) OVER (ORDER BY {ROW}) AS prev FROM typed)"
    ).fetchall()[0][0]
    fields = ", ".join(ident(f) for f in projections)
    requests = store.query_arrow(
        con,
        f"SELECT row_number() OVER (ORDER BY key, {ROW}) - 1 AS seq, {arrival_s} AS arrival_s, {fields} "
        f"FROM typed ORDER BY seq"
    )
    con.execute("DROP TABLE typed")
    report = {
        "arrival_unit": arrival_unit,
        "rows_out_of_order": int(out_of_order),
        "mapping": dict(mapping),
        "ignored_columns": list(ignore),
    }
    return StagedTrace(kind="workload", requests=requests, outcomes=None, report=report)
