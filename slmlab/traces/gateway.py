"""The shared path for gateway and observability logs (LiteLLM spend logs, OTLP GenAI spans, Langfuse
observations, OpenAI usage exports): one recorded call per request, and what the log recorded stays recorded.

A format says where each call field is in its file (`CallFields`: a SQL expression per field over its source);
this module reads, checks and types them, orders requests by arrival, and splits them into the canonical request
fields (arrival, tokens, the tenant label) and the recorded figures stored beside them (`store.m012_request_records`:
model, provider, latency, time to first token, cost, status, team, user, tags). Prompt and response text is read
only when the user asks for it (`--keep-text`): logs can hold personal data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from slmlab import store
from slmlab.traces import checks
from slmlab.traces.errors import TraceInputError
from slmlab.traces.reading import ROW, ident
from slmlab.traces.staged import ImportOptions, StagedTrace, one_chunk
from slmlab.traces.workload import MAX_SPAN_NS, arrival_offsets_ns

TIME_FIELDS = ("start", "end", "first_token")
OFFSET_PATTERN = "[+-][0-9][0-9](:?[0-9][0-9])?$"  # a date-time text ending in a UTC offset: read as TIMESTAMPTZ
COUNT_FIELDS = ("input_tokens", "output_tokens", "cached_tokens")
NUMBER_FIELDS = ("duration_ms", "ttft_ms", "cost_usd")
TEXT_FIELDS = ("request_id", "model", "provider", "status", "error", "tenant", "team", "user", "tags")
PRIVATE_TEXT = ("prompt", "response")  # read only with --keep-text
CALL_FIELDS = ("start", "end", "first_token", *NUMBER_FIELDS, *COUNT_FIELDS, *TEXT_FIELDS, *PRIVATE_TEXT)
RECORD_COLUMNS = (
    "model",
    "provider",
    "latency_ms",
    "ttft_ms",
    "cost_usd",
    "cached_tokens",
    "status",
    "error",
    "team",
    "user_id",
    "tags",
    "response",
)
WHAT = {
    "start": "request start time",
    "end": "request end time",
    "first_token": "first-token time",
    "duration_ms": "recorded latency (ms)",
    "ttft_ms": "recorded time to first token (ms)",
    "cost_usd": "recorded cost ($)",
    "input_tokens": "input token count",
    "output_tokens": "output token count",
    "cached_tokens": "cached input tokens",
}


@dataclass(frozen=True)
class CallFields:
    """Where one format finds each call field: SQL over `source` (a FROM clause) giving text or numbers, the name
    of the log field it came from (for messages and provenance), and how its times are written."""

    source: str
    exprs: dict[str, str]
    names: dict[str, str]
    time_unit: str = "timestamp"  # 'timestamp' (date-time text), 'ns' / 'ms' / 's' since the epoch
    ordered_by: str | None = None  # SQL that keeps the source's record order (JSON records carry __row)
    assumptions: tuple[str, ...] = ()
    extra_report: dict[str, object] = field(default_factory=dict)


def _time_check(name: str, unit: str, *, optional: bool) -> checks.Check:
    text = f"CAST({ident(name)} AS VARCHAR)"
    missing = f"{ident(name)} IS NULL OR trim({text}) = ''"
    if unit == "timestamp":
        typed = f"epoch_ns(TRY_CAST({text} AS TIMESTAMPTZ))"
        what = "a date-time"
    else:
        scale = {"ns": "", "ms": " * 1e6", "s": " * 1e9"}[unit]
        number = f"round(TRY_CAST({text} AS DOUBLE){scale})" if scale else text
        typed = f"TRY_CAST({number} AS BIGINT)"  # out of the int64 ns range: NULL, then named as not a time
        what = f"a number of {dict(ns='nanoseconds', ms='milliseconds', s='seconds')[unit]} since 1970"
    bad = (
        f"WHEN regexp_matches({text}, '[[:cntrl:]]') THEN 'not {what} (it holds a line break or control character)' "
        f"WHEN {typed} IS NULL THEN 'not {what}'"
    )
    reason = f"CASE WHEN {missing} THEN NULL {bad} END" if optional else f"CASE WHEN {missing} THEN 'missing' {bad} END"
    return checks.Check(name, WHAT[name], reason, typed)


def _optional_count(name: str) -> checks.Check:
    base = checks.count_check(name, WHAT[name])
    blank = f"{ident(name)} IS NULL OR trim(CAST({ident(name)} AS VARCHAR)) = ''"
    return checks.Check(
        name,
        base.what,
        f"CASE WHEN {blank} THEN NULL ELSE {base.reason} END",
        f"CASE WHEN {blank} THEN NULL ELSE {base.typed} END",
    )


def _checks_for(present: list[str], unit: str) -> list[checks.Check]:
    found = []
    for name in present:
        if name in TIME_FIELDS:
            found.append(_time_check(name, unit, optional=name != "start"))
        elif name in COUNT_FIELDS:
            found.append(_optional_count(name))
        elif name in NUMBER_FIELDS:
            found.append(checks.number_check(name, WHAT[name], minimum=0.0, optional=True))
        else:
            found.append(checks.text_check(name, name.replace("_", " ")))
    return found


def _select(fields: CallFields, present: list[str]) -> str:
    columns = ", ".join(f"{fields.exprs[name]} AS {ident(name)}" for name in present)
    order = f" ORDER BY {fields.ordered_by}" if fields.ordered_by else ""
    return f"SELECT {columns} FROM {fields.source}{order}"


def _blank(raw: str) -> str:
    """Empty (a value of spaces only fails the fast read and is judged by the row-by-row checks)."""
    return f"({raw} IS NULL OR CAST({raw} AS VARCHAR) = '')"


def _fast_value(name: str, unit: str) -> tuple[str, str, str]:
    """(parsed value from raw text `r_<name>`, condition that rejects it, final value; `@` stands for the parsed
    value) for the one-pass typed read: each
    value is parsed once, where the checks of `checks.py` parse it again for every reason they give."""
    raw = ident(f"r_{name}")
    text = f"CAST({raw} AS VARCHAR)"
    if name in TIME_FIELDS:
        if unit == "timestamp":  # ICU's time-zone parser only for text that ends in a UTC offset
            # The regex only where an offset can be: a '+', or a '-' besides a date's two (3 or more, or a text
            # with fewer than 2: not an ISO date). A text with exactly two '-' can only end in '-dd' as a date without
            # a time, which both casts read as the same midnight UTC. Half the regex's cost on ISO times.
            maybe = f"(contains({text}, '+') OR {text} LIKE '%-%-%-%' OR {text} NOT LIKE '%-%-%')"
            offset = f"({maybe} AND regexp_matches({text}, '{OFFSET_PATTERN}'))"
            parsed = (
                f"CASE WHEN {offset} THEN epoch_ns(TRY_CAST({text} AS TIMESTAMPTZ)) "
                f"ELSE epoch_ns(TRY_CAST({text} AS TIMESTAMP_NS)) END"
            )
        else:
            parsed = _time_check(name, unit, optional=True).typed.replace(ident(name), raw)
        bad = f"(@ IS NULL AND NOT {_blank(raw)}) OR contains({text}, chr(10)) OR contains({text}, chr(13))"
        bad += f" OR {_blank(raw)}" if name == "start" else ""
        return parsed, bad, "@"
    if name in COUNT_FIELDS or name in NUMBER_FIELDS:
        # DuckDB reads '1_000' as 1000 and '1e-400' as 0: such text, and counts above 2^53 - 1, go to the checks
        exponent = f"contains({text}, 'e') OR contains({text}, 'E')"
        if name in COUNT_FIELDS:
            whole = f" OR @ <> floor(@) OR @ > {checks.MAX_COUNT} OR {exponent}"
        else:
            whole = f" OR (@ = 0 AND ({exponent} OR length({text}) > 30))"
        bad = f"(@ IS NULL AND NOT {_blank(raw)}) OR NOT isfinite(@) OR @ < 0 OR contains({text}, '_'){whole}"
        return f"TRY_CAST({text} AS DOUBLE)", bad, "CAST(@ AS BIGINT)" if name in COUNT_FIELDS else "@"
    return f"NULLIF(trim({text}), '')", "false", "@"


def typed_select(select: str, found: list[checks.Check], unit: str) -> str:
    """SQL giving every value parsed once and checked; a bad value stops the query with error(), and the caller
    then names the rows with the checks of `checks.py` (`_checked_read`)."""
    inner, outer = [], []
    for check in found:
        parsed, bad, final = _fast_value(check.column, unit)
        inner.append(f"{ident(check.column)} AS {ident('r_' + check.column)}, {parsed} AS {ident('v_' + check.column)}")
        v = ident("v_" + check.column)
        outer.append(
            f"CASE WHEN coalesce({bad.replace('@', v)}, false) THEN error('rejected by the typed read') "
            f"ELSE {final.replace('@', v)} END AS {ident(check.column)}"
        )
    return f"SELECT {', '.join(outer)} FROM (SELECT {', '.join(inner)} FROM ({select}))"


def _typed_read(con: duckdb.DuckDBPyConnection, select: str, found: list[checks.Check], unit: str) -> pa.Table | None:
    """The typed values in one parallel pass; None when a value fails."""
    try:
        return store.query_arrow(con, typed_select(select, found, unit))
    except duckdb.Error:
        return None


def check_rows(con: duckdb.DuckDBPyConnection, path: Path, select: str, found: list[checks.Check]) -> None:
    """The values read again as text into `calls_raw` with a row number, so an error names the field and its first
    bad rows."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE calls_raw AS SELECT row_number() OVER () AS {ROW}, * FROM ({select})")
    checks.run_checks(con, path, "calls_raw", found)


def _checked_read(con: duckdb.DuckDBPyConnection, path: Path, select: str, found: list[checks.Check]) -> pa.Table:
    """The values checked row by row (a clear error), then typed."""
    check_rows(con, path, select, found)
    columns = ", ".join(f"{c.typed} AS {ident(c.column)}" for c in found)
    return store.query_arrow(con, f"SELECT {columns} FROM calls_raw ORDER BY {ROW}")


def _column_array(table: pa.Table, name: str, dtype: type = np.float64) -> np.ndarray:
    return one_chunk(table.column(name)).to_numpy(zero_copy_only=False).astype(dtype, copy=False)


def _array(table: pa.Table, name: str, dtype: type = np.float64) -> np.ndarray | None:
    if name not in table.column_names:
        return None
    return _column_array(table, name, dtype)


def _ms_after_start(table: pa.Table, name: str) -> np.ndarray | None:
    """Milliseconds from the start to a recorded time (NaN where the log has none), in exact integer ns first."""
    if name not in table.column_names:
        return None
    end, start = one_chunk(table.column(name)), one_chunk(table.column("start"))
    try:
        span = pc.subtract_checked(end, start)
    except pa.ArrowInvalid:  # more than 292 years apart: as doubles, for _require_order to refuse
        as_ms = [array.to_numpy(zero_copy_only=False).astype(np.float64) for array in (end, start)]
        return (as_ms[0] - as_ms[1]) / 1e6
    return span.to_numpy(zero_copy_only=False).astype(np.float64) / 1e6


def _require_order(path: Path, fields: CallFields, name: str, span_ms: np.ndarray | None) -> None:
    """A recorded end or first token before the start is a broken log, not something to guess around."""
    if span_ms is None:
        return
    bad = np.flatnonzero(span_ms < 0)
    if len(bad):
        raise TraceInputError(
            path,
            f"'{fields.names.get(name, name)}' is before the request start",
            column=fields.names.get(name, name),
            offenders=[(int(i) + 1, f"{span_ms[i]:.1f} ms before the start") for i in bad[:5]],
            total=len(bad),
        )
    far = np.flatnonzero(span_ms >= MAX_SPAN_NS / 1e6)
    if len(far):
        raise TraceInputError(
            path,
            f"'{fields.names.get(name, name)}' is more than 146 years after the request start",
            column=fields.names.get(name, name),
            offenders=[(int(i) + 1, f"{span_ms[i]:.3g} ms after the start") for i in far[:5]],
            total=len(far),
        )


def _arrival_order(start_ns: np.ndarray) -> tuple[np.ndarray, int]:
    """Each request's rank in arrival order (ties keep file order) and how many rows arrived before the row above."""
    out_of_order = int(np.count_nonzero(start_ns[1:] < start_ns[:-1]))
    seq = np.arange(len(start_ns), dtype=np.int64)
    if out_of_order:
        order = np.argsort(start_ns, kind="stable")
        seq[order] = np.arange(len(start_ns), dtype=np.int64)
    return seq, out_of_order


def stage_calls(con: duckdb.DuckDBPyConnection, path: Path, fields: CallFields, options: ImportOptions) -> StagedTrace:
    """Check and type the calls a format located, then hand the importer requests plus their recorded figures."""
    con.execute("SET TimeZone = 'UTC'")  # a date-time without an offset is UTC, as the tools write them
    keep_text = getattr(options, "keep_text", False)
    present = [n for n in CALL_FIELDS if n in fields.exprs and (keep_text or n not in PRIVATE_TEXT)]
    if "start" not in present:
        raise TraceInputError(path, "no request start time found", hint="every call needs the time it was sent")
    found = _checks_for(present, fields.time_unit)
    select = _select(fields, present)
    typed = _typed_read(con, select, found, fields.time_unit)
    validation = "typed read"
    if typed is None:
        typed = _checked_read(con, path, select, found)
        validation = "row-by-row checks"
    if typed.num_rows == 0:
        raise TraceInputError(path, "holds no LLM calls", hint="the README lists what each log format must contain")
    start = _column_array(typed, "start", np.int64)  # always selected: checked above
    latency = _array(typed, "duration_ms")
    from_end = _ms_after_start(typed, "end")
    _require_order(path, fields, "end", from_end)
    if latency is None:
        latency = from_end
    elif from_end is not None:
        latency = np.where(np.isnan(latency), from_end, latency)
    ttft = _array(typed, "ttft_ms")
    first = _ms_after_start(typed, "first_token")
    _require_order(path, fields, "first_token", first)
    if first is not None and from_end is not None:
        # LiteLLM writes completionStartTime = endTime for a call that did not stream: no first token was seen.
        first = np.where(first >= from_end, np.nan, first)
    if ttft is None:
        ttft = first
    elif first is not None:
        ttft = np.where(np.isnan(ttft), first, ttft)
    seq, out_of_order = _arrival_order(start)
    first_ns = int(start.min())
    count = typed.num_rows

    def column(name: str) -> pa.Array | None:
        return one_chunk(typed.column(name)) if name in typed.column_names else None

    def tokens(name: str) -> pa.Array:
        values = column(name)
        return pa.array(np.zeros(count, dtype=np.int64)) if values is None else pc.fill_null(values, 0)

    requests = {
        "seq": pa.array(seq),
        "source_row": pa.array(np.arange(1, count + 1, dtype=np.int64)),
        "arrival_ns": pa.array(arrival_offsets_ns(path, start, np.arange(1, count + 1), fields.names.get("start", ""))),
        "input_tokens": tokens("input_tokens"),
        "output_tokens": tokens("output_tokens"),
    }
    for name, canonical in (("request_id", "request_id"), ("tenant", "tenant"), ("prompt", "prompt")):
        if (values := column(name)) is not None and values.null_count < count:
            requests[canonical] = values
    if "request_id" in requests:
        ids = requests["request_id"]
        missing = pc.is_null(ids)
        if pc.any(missing).as_py():  # a call without an id keeps its row number as its id
            requests["request_id"] = pc.if_else(missing, requests["source_row"].cast(pa.string()), ids)
        duplicated = len(pc.unique(requests["request_id"])) < count
        if duplicated:
            requests.pop("request_id")  # ids that repeat (retries logged twice) cannot key requests; rows do
    records = {"seq": pa.array(seq)}
    for name in RECORD_COLUMNS:
        source = {"latency_ms": None, "ttft_ms": None, "user_id": "user"}.get(name, name)
        if name == "latency_ms" and latency is not None:
            records[name] = pa.array(latency, mask=np.isnan(latency))
        elif name == "ttft_ms" and ttft is not None:
            records[name] = pa.array(ttft, mask=np.isnan(ttft))
        elif source is not None and (values := column(source)) is not None:
            records[name] = values
    recorded_counts = {name: count - records[name].null_count for name in records if name != "seq"}
    report = {
        "recorded": {name: "recorded" for name, n in recorded_counts.items() if n},
        "recorded_rows": recorded_counts,
        "log_fields": {name: fields.names[name] for name in present if name in fields.names},
        "rows_out_of_order": out_of_order,
        "rows_without_token_counts": int(
            sum(
                (typed.column(n).null_count if n in typed.column_names else count)
                for n in ("input_tokens", "output_tokens")
            )
        ),
        "duplicate_request_ids": "request_id" in present and "request_id" not in requests,
        "text": "stored (--keep-text)" if keep_text else "not stored (pass --keep-text to keep prompts and responses)",
        "validation": validation,
        "assumptions": list(fields.assumptions),
        "label_fields": {
            label: fields.names.get(source, source)
            for label, source in (("tenant", "tenant"), ("team", "team"), ("user", "user"), ("tags", "tags"))
            if (source in present and recorded_counts.get("user_id" if source == "user" else source, 0))
            or (label == "tenant" and "tenant" in requests)
        },
        **fields.extra_report,
    }
    return StagedTrace(
        kind="workload",
        requests=pa.table(requests),
        outcomes=None,
        report=report,
        first_arrival_ns=first_ns,
        recorded=pa.table(records),
    )
