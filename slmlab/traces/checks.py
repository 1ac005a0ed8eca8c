"""Column checks over a staging table: one scan counts every problem, a second names the first rows.

Each check is a SQL expression that yields the reason a value is bad (or NULL), and an expression that
yields the typed value; importers build their canonical columns from the typed expressions only after
every check has passed, so nothing half-valid ever reaches the warehouse.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from slmlab.traces.errors import TraceInputError
from slmlab.traces.reading import ROW, ident, sql_quote

FIRST_TIMESTAMP, LAST_TIMESTAMP = "1677-09-21 00:12:44", "2262-04-11 23:47:16"  # int64 ns since 1970


@dataclass(frozen=True)
class Check:
    """A column check: `reason` is SQL giving why a row's value is bad (NULL when fine), `typed` its clean value."""

    column: str
    what: str
    reason: str
    typed: str


def _text(column: str) -> str:
    return f"CAST({ident(column)} AS VARCHAR)"


def _missing(column: str) -> str:
    return f"{ident(column)} IS NULL OR trim({_text(column)}) = ''"


MAX_COUNT = 2**53 - 1  # the largest whole number every path (DuckDB, Arrow, numpy float maths) keeps exactly
_WHOLE = r"\+?[0-9]+(\.0*)?([eE]\+?[0-9]+)?"  # digits, an all-zero fraction, a non-negative exponent: exact


def _number_reasons(column: str, number: str) -> list[str]:
    """Reasons any number is refused: digit separators (which DuckDB reads silently), not a number, infinite or NaN,
    and a value too small for a double that would be stored as 0."""
    text = f"trim({_text(column)})"
    mantissa = f"regexp_extract({text}, '^[+-]?[0-9]*[.]?[0-9]*')"
    return [
        f"WHEN contains({text}, '_') THEN 'written with a digit separator (_)'",
        f"WHEN {number} IS NULL THEN 'not a number'",
        f"WHEN NOT isfinite({number}) THEN 'not finite'",
        f"WHEN {number} = 0 AND regexp_matches({mantissa}, '[1-9]') THEN 'too small to store (it would read as 0)'",
    ]


def count_check(column: str, what: str) -> Check:
    """A whole, non-negative number such as a token count, kept exactly: at most 2^53 - 1, written as digits."""
    number = f"TRY_CAST({_text(column)} AS DOUBLE)"
    reason = (
        f"CASE WHEN {_missing(column)} THEN 'missing' " + " ".join(_number_reasons(column, number)) + " "
        f"WHEN {number} < 0 THEN 'negative' "
        f"WHEN {number} <> floor({number}) THEN 'not a whole number' "
        f"WHEN {number} > {MAX_COUNT} THEN 'above {MAX_COUNT:,} (2^53 - 1), the largest count kept exactly' "
        f"WHEN NOT regexp_full_match(trim({_text(column)}), '{_WHOLE}') THEN 'not written as a whole number' END"
    )
    return Check(column, what, reason, f"CAST({number} AS BIGINT)")


def number_check(
    column: str, what: str, *, minimum: float | None = None, maximum: float | None = None, optional: bool = False
) -> Check:
    """A finite number within optional bounds; an optional one may be blank."""
    number = f"TRY_CAST({_text(column)} AS DOUBLE)"
    cases = [] if optional else [f"WHEN {_missing(column)} THEN 'missing'"]
    blank_guard = f"NOT ({_missing(column)}) AND " if optional else ""
    cases += [f"WHEN {blank_guard}{reason.removeprefix('WHEN ')}" for reason in _number_reasons(column, number)]
    if minimum is not None:
        cases.append(f"WHEN {number} < {minimum!r} THEN 'below {minimum:g}'")
    if maximum is not None:
        cases.append(f"WHEN {number} > {maximum!r} THEN 'above {maximum:g}'")
    return Check(column, what, "CASE " + " ".join(cases) + " END", number)


def timestamp_check(column: str, what: str) -> Check:
    """A date-time DuckDB can parse to nanoseconds (ISO 8601, 'YYYY-MM-DD hh:mm:ss.fffffff'), on one line."""
    stamp = f"TRY_CAST({_text(column)} AS TIMESTAMP_NS)"
    reason = (
        f"CASE WHEN {_missing(column)} THEN 'missing' "
        f"WHEN regexp_matches({_text(column)}, '[[:cntrl:]]') THEN 'not a date-time (it holds a line break or "
        f"control character)' "
        f"WHEN {stamp} IS NULL AND TRY_CAST({_text(column)} AS TIMESTAMP) IS NOT NULL "
        f"THEN 'outside {FIRST_TIMESTAMP} to {LAST_TIMESTAMP}, the range of nanosecond times' "
        f"WHEN {stamp} IS NULL THEN 'not a date-time' END"
    )
    return Check(column, what, reason, stamp)


def boolean_check(column: str, what: str) -> Check:
    """True/False (any case) or 1/0."""
    low = f"lower(trim({_text(column)}))"
    reason = (
        f"CASE WHEN {_missing(column)} THEN 'missing' "
        f"WHEN {low} NOT IN ('true', 'false', '1', '0') THEN 'not True/False' END"
    )
    return Check(column, what, reason, f"{low} IN ('true', '1')")


def text_check(column: str, what: str, *, optional: bool = True) -> Check:
    """Free text; required text may not be blank."""
    reason = "NULL" if optional else f"CASE WHEN {_missing(column)} THEN 'missing' END"
    return Check(column, what, reason, f"NULLIF(trim({_text(column)}), '')" if optional else _text(column))


def vocabulary_check(column: str, what: str, allowed: Iterable[str]) -> Check:
    """One of a fixed set of labels (data class, residency)."""
    values = sorted(allowed)
    listed = ", ".join(sql_quote(v) for v in values)
    reason = (
        f"CASE WHEN {_missing(column)} THEN 'missing' "
        f"WHEN trim({_text(column)}) NOT IN ({listed}) THEN 'not one of {'/'.join(values)}' END"
    )
    return Check(column, what, reason, f"trim({_text(column)})")


def run_checks(con: duckdb.DuckDBPyConnection, path: Path, table: str, checks: Sequence[Check]) -> None:
    """Raise a TraceInputError naming the first failing column, its first offending rows and their count."""
    if not checks:
        return
    counts = con.execute(
        "SELECT " + ", ".join(f"count_if(({check.reason}) IS NOT NULL)" for check in checks) + f" FROM {table}"
    ).fetchall()[0]
    for check, bad in zip(checks, counts):
        if not bad:
            continue
        rows = con.execute(
            f"SELECT {ROW}, reason, value FROM (SELECT {ROW}, ({check.reason}) AS reason, "
            f"left({_text(check.column)}, 60) AS value FROM {table}) WHERE reason IS NOT NULL ORDER BY {ROW} LIMIT 5"
        ).fetchall()
        raise TraceInputError(
            path,
            f"bad {check.what}",
            column=check.column,
            offenders=[
                (row, f"{value!r} is {reason}" if value not in (None, "") else reason) for row, reason, value in rows
            ],
            total=int(bad),
        )


def check_unique(con: duckdb.DuckDBPyConnection, path: Path, table: str, key_sql: str, column: str, what: str) -> None:
    """Every key appears once; names the rows that repeat an earlier key."""
    total, rows = _duplicates(con, table, key_sql)
    if total:
        raise TraceInputError(
            path,
            f"duplicate {what}",
            column=column,
            offenders=[(row, f"{key!r} repeats row {first}") for row, key, first in rows],
            total=total,
        )


def _duplicates(con: duckdb.DuckDBPyConnection, table: str, key_sql: str) -> tuple[int, list[tuple[int, str, int]]]:
    query = (
        f"SELECT {ROW}, key, first FROM (SELECT {ROW}, CAST({key_sql} AS VARCHAR) AS key, "
        f"min({ROW}) OVER (PARTITION BY {key_sql}) AS first FROM {table}) WHERE {ROW} <> first"
    )
    total = con.execute(f"SELECT count(*) FROM ({query})").fetchall()[0][0]
    rows = con.execute(f"{query} ORDER BY {ROW} LIMIT 5").fetchall() if total else []
    return int(total), rows


def require_columns(
    path: Path,
    present: Sequence[str],
    required: Iterable[str],
    allowed_extra: Iterable[str] = (),
    *,
    hint: str | None = None,
) -> None:
    """Missing required columns and columns the format does not know are both errors: nothing is dropped silently."""
    required = list(required)
    missing = [name for name in required if name not in present]
    if missing:
        raise TraceInputError(
            path, f"missing column(s) {', '.join(missing)}; the file has {', '.join(present) or 'none'}", hint=hint
        )
    known = set(required) | set(allowed_extra)
    unknown = [name for name in present if name not in known]
    if unknown:
        raise TraceInputError(path, f"unknown column(s) {', '.join(unknown)}", hint=hint)
