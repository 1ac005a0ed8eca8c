"""The shared path for arrival traces (Azure, Mooncake, generic): map columns, check them, sort by arrival."""

from __future__ import annotations

import mmap
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Literal

import duckdb
import numpy as np
import pyarrow as pa

from slmlab import store
from slmlab.traces import checks
from slmlab.traces.errors import TraceInputError
from slmlab.traces.labelling import DATA_CLASSES, RESIDENCIES
from slmlab.traces.reading import (
    LINE,
    ROW,
    container_of,
    csv_header,
    csv_options,
    ident,
    json_key_path,
    read_raw,
    sql_quote,
    table_columns,
)
from slmlab.traces.staged import StagedTrace, one_chunk

ArrivalUnit = Literal["auto", "timestamp", "s", "ms"]
REQUIRED_FIELDS = ("arrival", "input_tokens", "output_tokens")
OPTIONAL_FIELDS = (
    "request_id",
    "task",
    "data_class",
    "residency",
    "tenant",
    "latency_slo_ms",
    "category",
    "prompt",
    "reference",
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


def _arrival_check(column: str, unit: ArrivalUnit) -> tuple[checks.Check, ArrivalUnit]:
    if unit == "timestamp":
        return checks.timestamp_check(column, "arrival time"), "timestamp"
    check = checks.number_check(column, f"arrival time (number of {'milliseconds' if unit == 'ms' else 'seconds'})")
    return check, unit


def _resolve_auto_unit(con: duckdb.DuckDBPyConnection, table: str, column: str) -> ArrivalUnit:
    text = f"CAST({ident(column)} AS VARCHAR)"
    numeric, stamps = con.execute(
        f"SELECT count_if(TRY_CAST({text} AS DOUBLE) IS NOT NULL), count_if(TRY_CAST({text} AS TIMESTAMP_NS) IS "
        f"NOT NULL) "
        f"FROM {table}"
    ).fetchall()[0]
    return "s" if numeric >= stamps and numeric > 0 else "timestamp"


def _hash_ids_check(path: Path, con: duckdb.DuckDBPyConnection, table: str, column: str) -> str:
    source = f"({LINE}->{sql_quote(json_key_path(column))})" if LINE in table_columns(con, table) else ident(column)
    typed = f"TRY_CAST({source} AS BIGINT[])"
    bad = con.execute(
        f"SELECT {ROW}, left(CAST({source} AS VARCHAR), 60), count(*) OVER () FROM {table} "
        f"WHERE {source} IS NOT NULL AND {typed} IS NULL ORDER BY {ROW} LIMIT 5"
    ).fetchall()
    if bad:
        raise TraceInputError(
            path,
            "bad prefix hash ids (need a list of integers)",
            column=column,
            offenders=[(row, f"{value!r}") for row, value, _ in bad],
            total=int(bad[0][2]),
        )
    return typed


def _checked_mapping(
    path: Path, file_columns: tuple[str, ...], mapping: Mapping[str, str], ignore: tuple[str, ...], hint: str | None
) -> dict[str, str]:
    unknown_fields = sorted(set(mapping) - set(WORKLOAD_FIELDS))
    if unknown_fields:
        raise TraceInputError(
            path,
            f"--map names unknown field(s) {', '.join(unknown_fields)}",
            hint=f"fields are {', '.join(WORKLOAD_FIELDS)}",
        )
    missing = [f for f in REQUIRED_FIELDS if f not in mapping]
    if missing:
        raise TraceInputError(
            path,
            f"no column is mapped to {', '.join(missing)}; the file has {', '.join(file_columns)}",
            hint=hint or "map them with --map FIELD=COLUMN, e.g. --map arrival=ts,input_tokens=prompt_len",
        )
    checks.require_columns(path, file_columns, mapping.values(), ignore, hint=hint)
    return dict(mapping)


# The typed read checks every value inside DuckDB's parallel scan: a value that fails ends the query with
# error(), and the file is then read again as text and checked row by row, to name the offending rows.
# Token counts are read as DOUBLE and checked to be whole: DuckDB's CSV reader rounds '12.5' into a BIGINT.
_FAST_FIELDS = ("input_tokens", "output_tokens", "latency_slo_ms")
_FAST_LINE_BYTES = 2 * 1024 * 1024  # DuckDB's default; a longer line fails the typed read and takes the checked path
use_fast_path = True  # tests switch it off to prove both paths store the same rows


# DuckDB's typed CSV read accepts what the checks refuse, without a trace in the value: '1_000' as 1000, '1e-400'
# as 0, a quoted date-time split over two lines. A file whose data holds none of these bytes cannot contain any
# of them; any other file takes the row-by-row path (four memchr scans: about 0.1 s for 5 million rows).
_TYPED_READ_DIFFERS = (b"_", b"e", b"E", b'"')


def _typed_read_differs(path: Path) -> bool:
    """True when the data rows hold a byte on which the typed read could accept a value the checks refuse."""
    if path.stat().st_size == 0:
        return True
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        start = data.find(b"\n") + 1
        return start == 0 or any(data.find(byte, start) >= 0 for byte in _TYPED_READ_DIFFERS)


def _checked(condition: str, value: str, name: str) -> str:
    return f"CASE WHEN {condition} THEN {value} ELSE error('rejected by the typed read') END AS {name}"


def _fast_csv(
    con: duckdb.DuckDBPyConnection, path: Path, columns: tuple[str, ...], mapping: dict[str, str], unit: ArrivalUnit
) -> pa.Table | None:
    """Typed parallel read for clean CSVs; None sends the file down the row-by-row diagnostic path."""
    if not use_fast_path or unit == "auto" or not set(mapping) <= {"arrival", *_FAST_FIELDS}:
        return None
    if _typed_read_differs(path):
        return None
    arrival = mapping["arrival"]
    types = dict.fromkeys(columns, "VARCHAR")
    types[arrival] = "TIMESTAMP_NS" if unit == "timestamp" else "DOUBLE"
    types.update({mapping[field]: "DOUBLE" for field in _FAST_FIELDS if field in mapping})
    spec = "{" + ", ".join(f"{sql_quote(name)}: '{kind}'" for name, kind in types.items()) + "}"
    at = ident(arrival)
    if unit == "timestamp":
        select = [_checked(f"{at} IS NOT NULL", f"epoch_ns({at})", "arrival_key_ns")]
    else:
        select = [_checked(f"isfinite({at})", f"{at}{' / 1000.0' if unit == 'ms' else ''}", "key")]
    for field in _FAST_FIELDS:
        if field in mapping:
            value = ident(mapping[field])
            whole = (
                f" AND {value} = floor({value}) AND {value} <= {checks.MAX_COUNT}" if field != "latency_slo_ms" else ""
            )
            cast = f"CAST({value} AS BIGINT)" if whole else value
            select.append(_checked(f"isfinite({value}) AND {value} >= 0{whole}", cast, field))
    try:
        return store.query_arrow(
            con,
            f"SELECT {', '.join(select)} FROM read_csv({sql_quote(str(path))}, "
            f"{csv_options(columns, spec, _FAST_LINE_BYTES)})",
        )
    except duckdb.Error:
        return None


MAX_SPAN_NS = _MAX_SPAN_NS = 2**62  # arrivals are stored as int64 nanoseconds after the first one


def _arrival_text(value: float | np.integer | np.floating, unit: ArrivalUnit) -> str:
    if unit == "timestamp":
        return str(np.datetime64(int(value), "ns"))
    return f"{float(value)!r} s"


def _refuse_span(
    path: Path, key: np.ndarray, too_far: np.ndarray, file_rows: np.ndarray, column: str, unit: ArrivalUnit
) -> None:
    if len(too_far):
        raise TraceInputError(
            path,
            f"arrival times span more than {_MAX_SPAN_NS / 1e9 / 86_400 / 365.25:.0f} years (nanoseconds after the "
            f"first arrival are stored as 64-bit integers); the first arrival is {_arrival_text(key.min(), unit)}",
            column=column,
            offenders=[(int(file_rows[i]), _arrival_text(key[i], unit)) for i in too_far[:5]],
            total=len(too_far),
        )


def arrival_offsets_ns(path: Path, key_ns: np.ndarray, file_rows: np.ndarray, column: str) -> np.ndarray:
    """Nanoseconds after the first arrival, exactly (the difference of two int64 fits a uint64, which wraps where
    int64 would not); a span over 2^62 ns is refused: the one check every import path (CSV, JSON, Parquet, logs)
    makes before arrivals are stored."""
    if not len(key_ns):
        return np.zeros(0, np.int64)
    offset = key_ns.view(np.uint64) - np.uint64(int(key_ns.min()) % 2**64)
    _refuse_span(path, key_ns, np.flatnonzero(offset >= np.uint64(_MAX_SPAN_NS)), file_rows, column, "timestamp")
    return offset.astype(np.int64)


def _in_arrival_order(
    path: Path, table: pa.Table, unit: ArrivalUnit, file_rows: np.ndarray, column: str
) -> tuple[pa.Table, int, int | None]:
    """Number requests by arrival (`seq`; ties keep file order) and add arrival_ns; count rows that arrived early.

    Rows stay in file order: only the arrival ranks are computed, not a sorted copy of every column (readers
    order by seq). Also returns the first arrival in ns since the epoch for absolute timestamps (None for
    relative times).
    """
    if unit == "timestamp":
        key = table.column("arrival_key_ns").to_numpy()  # nanoseconds since the epoch
        table = table.drop_columns(["arrival_key_ns"])
    else:
        key = table.column("key").to_numpy()
        table = table.drop_columns(["key"])
    out_of_order = int(np.count_nonzero(key[1:] < key[:-1]))
    seq = np.arange(len(key), dtype=np.int64)
    if out_of_order:  # each row's rank in arrival order
        arrival_order = np.argsort(key, kind="stable")
        seq[arrival_order] = np.arange(len(key), dtype=np.int64)
    first = key.min() if len(key) else 0
    if unit == "timestamp":
        arrival_ns = arrival_offsets_ns(path, key, file_rows, column)
        first_ns = int(first) if len(key) else None
    else:
        offset = (key - first) * 1e9
        _refuse_span(path, key, np.flatnonzero(~(offset < _MAX_SPAN_NS)), file_rows, column, unit)  # NaN too
        arrival_ns, first_ns = np.rint(offset).astype(np.int64), None
    table = pa.table({name: one_chunk(table.column(name)) for name in table.column_names})  # read once, not per use
    table = table.append_column("source_row", pa.array(file_rows, type=pa.int64()))
    table = table.append_column("seq", pa.array(seq))
    return table.append_column("arrival_ns", pa.array(arrival_ns, type=pa.int64())), out_of_order, first_ns


def stage_workload(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    mapping_for: Callable[[tuple[str, ...]], Mapping[str, str]],
    *,
    arrival_unit: ArrivalUnit,
    ignore: tuple[str, ...] = (),
    hint: str | None = None,
) -> StagedTrace:
    """Validate mapped columns, then order requests by arrival (ties keep file order) and count re-sorted rows.

    A clean CSV takes a typed, parallel read; anything that read rejects is re-read as text and checked
    row by row, so the error names the column and the first offending rows.
    """
    table = "raw"
    fast = None
    if container_of(path) == "csv":
        columns = csv_header(path)
        mapping = _checked_mapping(path, columns, mapping_for(columns), ignore, hint)
        fast = _fast_csv(con, path, columns, mapping, arrival_unit)
    if fast is not None:
        requests, out_of_order, first_ns = _in_arrival_order(
            path, fast, arrival_unit, np.arange(1, fast.num_rows + 1), mapping["arrival"]
        )
        if not requests.num_rows:
            raise TraceInputError(path, "has no data rows (only a header or blank lines)")
    else:
        columns = read_raw(con, path, table)
        mapping = _checked_mapping(path, columns, mapping_for(columns), ignore, hint)
        if arrival_unit == "auto":
            arrival_unit = _resolve_auto_unit(con, table, mapping["arrival"])
        requests, out_of_order, first_ns = _checked_slow(con, path, table, mapping, arrival_unit)
    report = {
        "arrival_unit": arrival_unit,
        "rows_out_of_order": out_of_order,
        "mapping": mapping,
        "ignored_columns": list(ignore),
        "validation": "typed read" if fast is not None else "row-by-row checks",
    }
    return StagedTrace(kind="workload", requests=requests, outcomes=None, report=report, first_arrival_ns=first_ns)


def _checked_slow(
    con: duckdb.DuckDBPyConnection, path: Path, table: str, mapping: dict[str, str], arrival_unit: ArrivalUnit
) -> tuple[pa.Table, int, int | None]:
    arrival, arrival_unit = _arrival_check(mapping["arrival"], arrival_unit)
    field_checks = {
        field: _field_check(field, column)
        for field, column in mapping.items()
        if field not in ("arrival", "prefix_hash_ids")
    }
    checks.run_checks(con, path, table, [arrival, *field_checks.values()])
    if "request_id" in mapping:
        checks.check_unique(con, path, table, field_checks["request_id"].typed, mapping["request_id"], "request ids")
    projections = {field: check.typed for field, check in field_checks.items()}
    if "prefix_hash_ids" in mapping:
        projections["prefix_hash_ids"] = _hash_ids_check(path, con, table, mapping["prefix_hash_ids"])
    if arrival_unit == "timestamp":
        projections = {"arrival_key_ns": f"epoch_ns({arrival.typed})", **projections}
    else:
        projections = {"key": arrival.typed if arrival_unit == "s" else f"({arrival.typed}) / 1000.0", **projections}
    select = ", ".join(f"{sql} AS {ident(field)}" for field, sql in projections.items())
    typed = store.query_arrow(con, f"SELECT {ROW}, {select} FROM {table} ORDER BY {ROW}")
    con.execute(f"DROP TABLE {table}")
    file_rows = typed.column(ROW).to_numpy()
    return _in_arrival_order(path, typed.drop_columns([ROW]), arrival_unit, file_rows, mapping["arrival"])
