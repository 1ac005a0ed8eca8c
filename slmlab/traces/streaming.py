"""Production-scale imports of gateway logs with bounded memory: a log of 100 million requests does not fit in
memory as Arrow tables, so it is checked and typed in one parallel read into a staging table of the warehouse
(DuckDB writes it to the file as it goes, beyond `MEMORY_LIMIT`), labelled in batches into `request_rows`, and kept
as the trace's own table of calls (`call_tables`): its recorded columns are written once, not copied. A failed
import drops the staging table and rolls back.

The result is the same trace as the in-memory path (`gateway.stage_calls`): the same checks, arrival ranks, recorded
figures and labels. Labels are drawn per batch with the counter-based labeller (`label_kernel`), which gives each
request the same labels whatever batch it is in. Memory stays near `MEMORY_LIMIT` plus one batch.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import blake3
import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from slmlab.store import query_arrow
from slmlab.traces.call_tables import record_values, refresh_views, table_name
from slmlab.traces.errors import TraceInputError
from slmlab.traces.gateway import (
    PRIVATE_TEXT,
    CallFields,
    _checks_for,
    _select,
    check_rows,
    typed_select,
)
from slmlab.traces.labelling import DATA_CLASSES, DRAW, RESIDENCIES, TASKS, LabelMix, draw_labels
from slmlab.traces.reading import HASH_PREFIX, ident, sql_quote
from slmlab.traces.staged import ImportOptions
from slmlab.traces.workload import MAX_SPAN_NS

STREAM_BYTES = 512 << 20  # gateway logs larger than this are imported through the staging table
MEMORY_LIMIT = "2GB"  # DuckDB's share while staging and writing; it writes the staging table to the file beyond it
ROW_GROUP = 122_880  # DuckDB's rows per row group
BATCH_ROWS = 4 * ROW_GROUP  # rows labelled at a time: small arrays are reused, large ones fault in again
HASH_BLOCK = 16 << 20
STAGING_PREFIX = "slmlab_staging_"  # a warehouse table until the import commits; one left by a crash is dropped
_STAGING_NOW: set[str] = set()  # staging tables of imports running in this process (the dashboard's uploads)
RANKS = "slmlab_stream_ranks"  # temporary tables of the import's warehouse connection, gone when it closes
RUNS = "slmlab_stream_runs"  # rows whose arrival rank is found by a sort among their neighbours (`_arrival_ranks`)
RANK_BLOCK = 1 << 20  # file rows per block of the checks pass and of the arrival-rank pass


PROFILE = os.environ.get("SLMLAB_IMPORT_PROFILE") == "1"  # each phase's seconds on stderr (perf/import_100m.py)


@contextlib.contextmanager
def phase(name: str) -> Iterator[None]:
    """Time one phase of a streamed import on stderr when SLMLAB_IMPORT_PROFILE=1, to find where a 100M-row import
    spends its time without a profiler's overhead."""
    if not PROFILE:
        yield
        return
    started = time.perf_counter()
    try:
        yield
    finally:
        print(f"slmlab-profile {name} {time.perf_counter() - started:.2f} s", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class StagedLog:
    """A gateway log checked and typed into a staging table of a warehouse connection (`staging_area`), in file
    order."""

    rows: int
    first_arrival_ns: int
    ordered: bool  # file order is arrival order (seq = file row - 1); otherwise `RANKS` maps rowid to seq
    present: tuple[str, ...]
    report: dict[str, object]
    tenant_column: str  # the staging column that holds the tenant label
    calls: str  # the staging table (`staging_area`)


@contextlib.contextmanager
def bounded_memory(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """DuckDB's buffer pool capped at MEMORY_LIMIT while a log streams through `con`, so a 100M-row log spills the
    staging table and the transaction's new rows to disk instead of growing the process; the settings are restored
    at the end (other connections of this process share them). Rows keep file order: ranks and rows depend on it."""
    saved = con.execute(
        "SELECT current_setting('memory_limit'), current_setting('preserve_insertion_order')"
    ).fetchall()[0]
    con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
    con.execute("SET preserve_insertion_order = true")
    con.execute("SET SESSION TimeZone = 'UTC'")  # a date-time without an offset is UTC, as the tools write them
    try:
        yield
    finally:
        with contextlib.suppress(duckdb.Error):  # an aborted transaction refuses it; the connection closes after
            con.execute(f"SET memory_limit = {sql_quote(str(saved[0]))}")
            con.execute(f"SET preserve_insertion_order = {str(saved[1]).lower()}")


@contextlib.contextmanager
def staging_area(con: duckdb.DuckDBPyConnection) -> Iterator[str]:
    """The staging table's name: a table of the warehouse, written (and committed) before the import's transaction so
    that its row ids are the file's rows (rows a transaction appends have row ids from 2^62). The import renames it into
    the trace's table of calls (`call_tables`); otherwise it is dropped when the block ends, as are tables a crashed
    import left."""
    for (leftover,) in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() AND schema_name = 'main' "
        f"AND starts_with(table_name, '{STAGING_PREFIX}')"
    ).fetchall():
        if leftover not in _STAGING_NOW:  # not another import of this process (another process cannot write)
            con.execute(f"DROP TABLE IF EXISTS main.{ident(leftover)}")
    table = f"{STAGING_PREFIX}{uuid.uuid4().hex[:12]}"
    name = f"main.{table}"
    _STAGING_NOW.add(table)
    try:
        yield name
    finally:
        _STAGING_NOW.discard(table)
        with contextlib.suppress(duckdb.Error), phase("cleanup: drop the staging table (gone when kept)"):
            con.execute(f"DROP TABLE IF EXISTS {name}")  # the connection closes next in any case
            con.execute(f"DROP TABLE IF EXISTS temp.main.{RANKS}")
            con.execute(f"DROP TABLE IF EXISTS temp.main.{RUNS}")


def warm_labeller(mix: LabelMix | None) -> None:
    """Load the compiled label kernel (about half a second) in a helper thread while DuckDB reads the log."""
    if mix is not None:
        draw_labels(np.zeros(1, dtype=np.int64), mix, {}, arrival_rank=np.zeros(1, dtype=np.int64))


def stage_log(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    fields_for: Callable[[duckdb.DuckDBPyConnection], CallFields],
    options: ImportOptions,
    staging: str,
) -> StagedLog:
    """Check and type every call into the staging table (`staging_area`) of the warehouse connection
    `con`, in file order, in one parallel read (inside `bounded_memory`); nothing is held in Python."""
    with phase("stage: format's fields (schema sniffing)"):
        fields = fields_for(con)
    staged = _stage(con, path, fields, options, staging)
    # The format's own temporary tables (`requests`, `calls`, ...) would hide the warehouse's tables of the same
    # name from this connection while it writes: they are not needed any more.
    for kind, name in con.execute(
        "SELECT 'TABLE', table_name FROM duckdb_tables() WHERE temporary "
        "UNION ALL SELECT 'VIEW', view_name FROM duckdb_views() WHERE temporary AND NOT internal"
    ).fetchall():
        if name not in (RANKS, RUNS):
            con.execute(f"DROP {kind} IF EXISTS temp.main.{ident(name)}")
    return staged


def _stage(
    con: duckdb.DuckDBPyConnection, path: Path, fields: CallFields, options: ImportOptions, staging: str
) -> StagedLog:
    present = [n for n in fields.exprs if options.keep_text or n not in PRIVATE_TEXT]
    present = [
        n
        for n in (
            "start",
            "end",
            "first_token",
            "duration_ms",
            "ttft_ms",
            "cost_usd",
            "input_tokens",
            "output_tokens",
            "cached_tokens",
            "request_id",
            "model",
            "provider",
            "status",
            "error",
            "tenant",
            "team",
            "user",
            "tags",
            "prompt",
            "response",
        )
        if n in present
    ]
    if "start" not in present:
        raise TraceInputError(path, "no request start time found", hint="every call needs the time it was sent")
    # LiteLLM's tenant is its team: one column read, typed and kept, not two
    shared = "tenant" in present and "team" in present and fields.exprs["tenant"] == fields.exprs["team"]
    stored = [n for n in present if not (shared and n == "tenant")]
    found = _checks_for(stored, fields.time_unit)
    select = _select(fields, stored)
    calls = staging
    try:
        with phase("stage: typed read into the staging table"):
            typed = typed_select(select, found, fields.time_unit)
            con.execute(f"CREATE TABLE {calls} ({_staging_columns(con, typed)})")
            con.execute(f"INSERT INTO {calls} {typed}")  # a fresh table: its row ids are the file's rows
        validation = "typed read"
    except duckdb.Error:
        con.execute(f"DROP TABLE IF EXISTS {calls}")  # created, and empty: the failed insert is rolled back
        try:
            check_rows(con, path, select, found)  # names the field and its first bad rows
        except duckdb.Error as error:  # the file itself cannot be read (a line over the limit, broken quoting)
            raise TraceInputError(path, f"cannot be read: {str(error).splitlines()[0]}") from error
        columns = ", ".join(f"{c.typed} AS {ident(c.column)}" for c in found)  # values the fast read was strict about
        con.execute(f"CREATE TABLE {calls} AS SELECT {columns} FROM calls_raw ORDER BY __row")
        con.execute("DROP TABLE calls_raw")
        validation = "row-by-row checks"
    # One pass, per block of RANK_BLOCK file rows, for the count, the span, ends before starts, recorded times more
    # than 146 years after the start, and each block's earliest and latest start (for the arrival ranks).
    backwards_sql = 'count_if("end" < start)' if "end" in present else "0"
    far_sql = {
        name: f"count_if({ident(name)}::HUGEINT - start >= {MAX_SPAN_NS})" if name in present else "0"
        for name in ("end", "first_token")
    }
    with phase("checks: count, span, ends before starts, 146-year ends (one pass)"):
        blocks = con.execute(
            f"SELECT rowid // {RANK_BLOCK} AS block, count(*), min(start), max(start), {backwards_sql}, "
            f"{far_sql['end']}, {far_sql['first_token']} FROM {calls} GROUP BY block ORDER BY block"
        ).fetchall()
    if not blocks:
        raise TraceInputError(path, "holds no LLM calls")
    rows = sum(int(b[1]) for b in blocks)
    first, last = min(int(b[2]) for b in blocks), max(int(b[3]) for b in blocks)
    backwards = sum(int(b[4]) for b in blocks)
    if last - first >= MAX_SPAN_NS:  # the in-memory path's check (workload.arrival_offsets_ns)
        far = con.execute(
            f"SELECT rowid + 1, start FROM {calls} WHERE start - {first}::HUGEINT >= {MAX_SPAN_NS} ORDER BY rowid"
        ).fetchall()
        raise TraceInputError(
            path,
            f"arrival times span more than 146 years (nanoseconds after the first arrival are stored as 64-bit "
            f"integers); the first arrival is {np.datetime64(first, 'ns')}",
            column=fields.names.get("start", "start"),
            offenders=[(int(r), str(np.datetime64(int(v), "ns"))) for r, v in far[:5]],
            total=len(far),
        )
    if backwards:
        bad = con.execute(f'SELECT rowid + 1 FROM {calls} WHERE "end" < start ORDER BY rowid LIMIT 5').fetchall()
        raise TraceInputError(
            path,
            f"'{fields.names.get('end', 'end')}' is before the request start",
            column=fields.names.get("end", "end"),
            offenders=[(int(r), "ends before it starts") for (r,) in bad],
            total=int(backwards),
        )
    for index, name in ((5, "end"), (6, "first_token")):  # more than 146 years after the start: refused, not wrapped
        if sum(int(b[index]) for b in blocks):
            far = con.execute(
                f"SELECT rowid + 1 FROM {calls} WHERE {ident(name)}::HUGEINT - start >= {MAX_SPAN_NS} ORDER BY rowid"
            ).fetchall()
            raise TraceInputError(
                path,
                f"'{fields.names.get(name, name)}' is more than 146 years after the request start",
                column=fields.names.get(name, name),
                offenders=[(int(r), "more than 146 years after the start") for (r,) in far[:5]],
                total=len(far),
            )
    with phase("ranks"):
        ordered = _arrival_ranks(con, calls, [int(b[2]) for b in blocks])
    report = {
        "recorded": {},
        "log_fields": {n: fields.names[n] for n in present if n in fields.names},
        "rows_out_of_order": 0,  # counted while the rows are written (`_labelled_rows`) when not `ordered`
        "validation": validation + " (streamed through a staging table)",
        "text": "stored (--keep-text)"
        if options.keep_text
        else "not stored (pass --keep-text to keep prompts and responses)",
        "assumptions": list(fields.assumptions),
        **fields.extra_report,
        "label_fields": {
            label: fields.names.get(label, label) for label in ("tenant", "team", "user", "tags") if label in present
        },
    }
    return StagedLog(int(rows), int(first), ordered, tuple(present), report, "team" if shared else "tenant", calls)


ZSTD_COLUMNS = ("request_id", "prompt", "response")  # mostly unique text: zstd writes it in half the time (m008)


def _staging_columns(con: duckdb.DuckDBPyConnection, typed: str) -> str:
    """The staging table's columns, typed as the read gives them; request ids and text compressed with zstd (DuckDB
    chooses per column otherwise: 0.55 s of 1.3 s per 10M request ids saved)."""
    described = con.execute(f"DESCRIBE {typed}").fetchall()
    return ", ".join(
        f"{ident(name)} {kind}{' USING COMPRESSION zstd' if name in ZSTD_COLUMNS and kind == 'VARCHAR' else ''}"
        for name, kind, *_ in described
    )


def _arrival_ranks(con: duckdb.DuckDBPyConnection, calls: str, block_min: list[int]) -> bool:
    """Each row's rank in arrival order (start, then file row) into `RANKS` where it is not the row's own position;
    returns whether none is (the file is in arrival order). Without sorting the whole log: one pass in file order
    cuts it wherever every start above the cut is at most every start below it (the latest start so far against
    the earliest still to come, from `block_min` per RANK_BLOCK rows). Rows between two cuts are ranked among
    themselves, after every row above them; a row alone between cuts is in place. A log that is mostly in order
    sorts a few short runs of rows instead of spilling a sort of all of them; a reversed log is one run."""
    top = np.iinfo(np.int64).max
    after = [*np.minimum.accumulate(np.array(block_min[::-1], dtype=np.int64))[::-1][1:].tolist(), top]
    con.execute(f"CREATE TEMP TABLE {RUNS} (r BIGINT, run BIGINT, start BIGINT)")
    latest, run, cut = np.iinfo(np.int64).min, 0, True  # carried across blocks
    for block, later in enumerate(after):
        lo = block * RANK_BLOCK
        got = query_arrow(
            con, f"SELECT rowid AS r, start FROM {calls} WHERE rowid BETWEEN {lo} AND {lo + RANK_BLOCK - 1}"
        )
        rowid, start = _in_file_order(_numpy(got.column("r")).astype(np.int64), _numpy(got.column("start")))
        start = start.astype(np.int64)
        so_far = np.maximum.accumulate(start)
        np.maximum(so_far, latest, out=so_far)
        to_come = np.empty_like(start)  # the earliest start below each row
        to_come[-1] = later
        to_come[:-1] = np.minimum.accumulate(start[::-1])[::-1][1:]
        np.minimum(to_come, later, out=to_come)
        cuts = so_far <= to_come  # a cut below the row: ties keep file order, so a tie does not cross it
        begins = np.empty_like(cuts)
        begins[0], begins[1:] = cut, cuts[:-1]
        latest, cut = int(so_far[-1]), bool(cuts[-1])
        alone = begins & cuts
        if bool(alone.all()):
            run = int(rowid[-1]) + 1
            continue
        runs = np.maximum.accumulate(np.where(begins, rowid, run))
        run = int(runs[-1]) if not cut else int(rowid[-1]) + 1
        moved = ~alone
        con.from_arrow(pa.table({"r": rowid[moved], "run": runs[moved], "start": start[moved]})).insert_into(RUNS)
    # in file order: each batch of `_labelled_rows` then reads the few row groups of its rows, not all of them
    con.execute(
        f"CREATE TEMP TABLE {RANKS} AS SELECT r, seq FROM (SELECT r, run + CAST(row_number() OVER "
        f"(PARTITION BY run ORDER BY start, r) - 1 AS BIGINT) AS seq FROM {RUNS}) WHERE seq <> r ORDER BY r"
    )
    con.execute(f"DROP TABLE {RUNS}")
    return not con.execute(f"SELECT count(*) FROM {RANKS}").fetchall()[0][0]


def _seq_sql(staged: StagedLog, rows: str = "") -> tuple[str, str]:
    """FROM clause and seq expression over the staging table (`c`) for the warehouse's tables, in file order;
    `rows` (a condition on the row id) limits the join to one batch."""
    if staged.ordered:
        return f"{staged.calls} c", "c.rowid"
    within = f" AND k.r {rows}" if rows else ""
    return f"{staged.calls} c LEFT JOIN {RANKS} k ON k.r = c.rowid{within}", "coalesce(k.seq, c.rowid)"


class _Labeller:
    """Draws each batch's synthetic labels and numbers label combinations by their digits, across batches."""

    def __init__(self, mix: LabelMix | None, tenants: list[str] | None) -> None:
        self.mix = mix
        self.tenants = tenants  # recorded tenant labels, or None when the mix draws them
        self.tenant_values = tenants if tenants is not None else (list(mix.tenant) if mix else [])
        self.radix = (len(TASKS) + 1, len(DATA_CLASSES) + 1, len(RESIDENCIES) + 1, len(self.tenant_values) + 1)
        self.used: set[int] = set()

    def codes(self, tokens: np.ndarray, seq: np.ndarray, tenant: pa.Array | None) -> np.ndarray:
        n = len(tokens)
        drawn = draw_labels(tokens, self.mix, {}, arrival_rank=seq) if self.mix is not None else None
        key = np.zeros(n, dtype=np.int64)  # the digits (code + 1, 0 for none) in place: no array per digit
        for name, radix in zip(("task", "data_class", "residency", "tenant"), self.radix):
            key *= radix
            if name == "tenant" and self.tenants is not None:
                if tenant is not None:
                    index = pc.index_in(tenant, value_set=pa.array(self.tenants))
                    key += pc.fill_null(index, -1).to_numpy(zero_copy_only=False)
                    key += 1
            elif drawn is not None:
                key += drawn.codes(name)
                key += 1
        combinations = int(np.prod(self.radix))
        used = np.flatnonzero(np.bincount(key, minlength=combinations)) if combinations <= 1 << 22 else np.unique(key)
        self.used.update(used.tolist())  # counting beats sorting while the combinations are few
        return key

    def label_sets(self, slo_by_task: dict[str, float] | None) -> pa.Table:
        keys = np.array(sorted(self.used), dtype=np.int64)
        columns: dict[str, list] = {"label_set": keys.astype(np.int32).tolist()}
        rest = keys.copy()
        decoded = []
        for radix in reversed(self.radix):
            rest, digit = np.divmod(rest, radix)
            decoded.append(digit)
        task, data_class, residency, tenant = reversed(decoded)

        def value(vocabulary, digit):
            return [None if d == 0 else vocabulary[d - 1] for d in digit]

        columns["task"] = value(TASKS, task)
        columns["data_class"] = value(DATA_CLASSES, data_class)
        columns["residency"] = value(RESIDENCIES, residency)
        columns["tenant"] = value(self.tenant_values, tenant)
        columns["latency_slo_ms"] = [
            None if t is None or slo_by_task is None else float(slo_by_task[t]) for t in columns["task"]
        ]
        return pa.table(
            columns,
            schema=pa.schema(
                [
                    ("label_set", pa.int32()),
                    ("task", pa.string()),
                    ("data_class", pa.string()),
                    ("residency", pa.string()),
                    ("tenant", pa.string()),
                    ("latency_slo_ms", pa.float64()),
                ]
            ),
        )


def _labelled_rows(con: duckdb.DuckDBPyConnection, trace_id: int, staged: StagedLog, labeller: _Labeller) -> int:
    """request_rows in file order, BATCH_ROWS at a time, each with its label combination (drawn in Python: each batch is
    fetched, then labelled in a helper thread while DuckDB inserts the batch before it); returns how many rows started
    before the row above them (0 when the log is `ordered`)."""
    out_of_order, last = 0, None
    tenant = f", c.{ident(staged.tenant_column)} AS tenant" if "tenant" in staged.present else ""
    tokens = {n: (f"coalesce(c.{n}, 0)" if n in staged.present else "0") for n in ("input_tokens", "output_tokens")}
    pending: Future[pa.Table] | None = None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="slmlab-label") as helper:
        for lo in range(0, staged.rows, BATCH_ROWS):
            within = f"BETWEEN {lo} AND {lo + BATCH_ROWS - 1}"
            source, seq = _seq_sql(staged, within)
            batch = _arrow(
                con,
                f"SELECT CAST({seq} AS BIGINT) AS seq, CAST(c.rowid + 1 AS BIGINT) AS source_row, "
                f"c.start - {staged.first_arrival_ns} AS arrival_ns, "
                f"CAST({tokens['input_tokens']} AS BIGINT) AS input_tokens, "
                f"CAST({tokens['output_tokens']} AS BIGINT) AS output_tokens{tenant} "
                f"FROM {source} WHERE c.rowid {within}",
            )
            if not staged.ordered:
                out_of_order, last = _count_backwards(batch, out_of_order, last)
            labelled = helper.submit(_labelled, labeller, batch, bool(tenant))  # one at a time, in batch order
            if pending is not None:
                _insert_rows(con, trace_id, pending.result())
            pending = labelled
        if pending is not None:
            _insert_rows(con, trace_id, pending.result())
    return out_of_order


def _labelled(labeller: _Labeller, batch: pa.Table, tenant: bool) -> pa.Table:
    """One batch's request_rows with their label combinations, in one chunk (`_arrow`)."""
    key = labeller.codes(
        _numpy(batch.column("input_tokens")),
        _numpy(batch.column("seq")),
        batch.column("tenant").combine_chunks() if tenant else None,
    )
    label_set = key.astype(np.int32)
    return batch.select(["seq", "source_row", "arrival_ns", "input_tokens", "output_tokens"]).append_column(
        "label_set", pa.chunked_array([label_set])
    )


def _insert_rows(con: duckdb.DuckDBPyConnection, trace_id: int, rows: pa.Table) -> None:
    _append(con, "request_rows", trace_id, rows)


def _append(con: duckdb.DuckDBPyConnection, table: str, trace_id: int, rows: pa.Table) -> None:
    """Append an Arrow table's columns, by name, with `trace_id`. Through a relation, not `con.register`: a
    registered object is a temporary view's dependency, and dropping the view inside the import's transaction keeps
    it until the commit, so every batch stayed in memory (about 60 bytes a row: 8 GB at 100M rows)."""
    columns = con.table(table).columns
    assert set(columns) == {"trace_id", *rows.column_names}, (table, columns, rows.column_names)
    con.from_arrow(rows).project(
        ", ".join(f"CAST({int(trace_id)} AS INTEGER) AS trace_id" if c == "trace_id" else ident(c) for c in columns)
    ).insert_into(table)


def _count_backwards(batch: pa.Table, count: int, last: int | None) -> tuple[int, int | None]:
    """Rows of one batch (file rows lo..hi, in any order) that arrived before the file row above them."""
    _, arrival = _in_file_order(_numpy(batch.column("source_row")), _numpy(batch.column("arrival_ns")))
    if not len(arrival):
        return count, last
    count += int(last is not None and arrival[0] < last) + int(np.count_nonzero(arrival[1:] < arrival[:-1]))
    return count, int(arrival[-1])


def _in_file_order(row: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A block's row numbers and one column of it sorted by row number (a parallel scan may return a block's rows in
    any order); left as they are when already in order, as they nearly always are."""
    if len(row) > 1 and not bool(np.all(row[1:] > row[:-1])):
        order = np.argsort(row, kind="stable")
        return row[order], values[order]
    return row, values


def _arrow(con: duckdb.DuckDBPyConnection, sql: str) -> pa.Table:
    """A query's result (one batch) as an Arrow table of one chunk (`to_arrow_table` in DuckDB 2, `arrow` in 1.x):
    DuckDB inserts it on one thread while the labeller uses the other core; in chunks of one row group it inserted
    them in parallel and the request_rows loop of a 20M-row log took about 1 s longer (insert 3.7 against 2.9 s)."""
    relation = con.sql(sql)
    fetch = getattr(relation, "to_arrow_table", None) or relation.arrow
    return fetch(BATCH_ROWS)


def _numpy(column: pa.ChunkedArray) -> np.ndarray:
    return column.combine_chunks().to_numpy(zero_copy_only=False)


def write_staged(
    con: duckdb.DuckDBPyConnection,
    trace_id: int,
    staged: StagedLog,
    mix: LabelMix | None,
) -> tuple[dict[str, object], dict[str, object]]:
    """Write a staged log's requests and keep its staging table as the trace's calls, inside the caller's
    transaction, on the connection `stage_log` used (in `bounded_memory`); returns its labelling provenance, the
    recorded-field counts and the rows out of order."""
    tenants = None
    if "tenant" in staged.present:
        with phase("write: distinct tenants"):
            tenants = [
                r[0]
                for r in con.execute(
                    f"SELECT DISTINCT {ident(staged.tenant_column)} AS tenant FROM {staged.calls} "
                    "WHERE tenant IS NOT NULL ORDER BY tenant"
                ).fetchall()
            ] or None
    return _write(con, trace_id, staged, mix, _Labeller(mix, tenants), tenants)


def _write(
    con: duckdb.DuckDBPyConnection,
    trace_id: int,
    staged: StagedLog,
    mix: LabelMix | None,
    labeller: _Labeller,
    tenants: list[str] | None,
) -> tuple[dict[str, object], dict[str, object]]:
    with phase("write: label and append request_rows"):
        out_of_order = _labelled_rows(con, trace_id, staged, labeller)
    slo = dict(mix.latency_slo_ms_by_task) if mix is not None else None
    sets = labeller.label_sets(slo)
    _append(con, "label_sets", trace_id, sets)
    values = record_values(set(staged.present))
    with phase("write: recorded-field counts"):
        counts = con.execute(
            "SELECT "
            + ", ".join(f"count({v})" if v != "NULL" else "0" for v in values.values())
            + f" FROM {staged.calls} c"
        ).fetchall()[0]
    with phase("write: keep the staging table as the trace's calls"):
        con.execute(f"ALTER TABLE {staged.calls} RENAME TO {table_name(trace_id)}")
        if not staged.ordered:
            con.execute(f"INSERT INTO call_moves SELECT {int(trace_id)}, r, seq FROM {RANKS}")
        refresh_views(con)
    recorded_rows = {name: int(n) for name, n in zip(values, counts)}
    labelling: dict[str, object] = {
        "recorded_fields": ["tenant"] if tenants else [],
        "synthetic_fields": [],
        "method": "recorded" if tenants else "none",
    }
    if mix is not None:
        synthetic = ["task", "data_class", "residency", *([] if tenants else ["tenant"]), "latency_slo_ms"]
        labelling.update(
            method="mixed" if tenants else "synthetic",
            synthetic_fields=synthetic,
            seed=mix.seed,
            mix_name=mix.name,
            mix=mix.to_json(),
            draw=DRAW + " (drawn in batches while streaming)",
        )
    return labelling, {
        "recorded": {n: "recorded" for n, c in recorded_rows.items() if c},
        "recorded_rows": recorded_rows,
        "rows_out_of_order": out_of_order,
    }


def streamed_hash(paths: list[Path], root: Path | None = None) -> str:
    """`reading.content_hash` (the same BLAKE3 key) read in blocks instead of memory-mapped: a mapped 100 GB log
    would count its pages in the process's resident memory while the streamed import keeps its own bounded."""
    digest = blake3.blake3()
    with phase("hash (helper thread)"):
        for path in paths:
            if root is not None:
                digest.update(str(path.relative_to(root)).encode() + b"\0")
            block = bytearray(HASH_BLOCK)  # one buffer for the whole file, read into: no 16 MB allocation per block
            view = memoryview(block)
            with path.open("rb", buffering=0) as handle:
                while size := handle.readinto(block):
                    digest.update(view[:size])
    return HASH_PREFIX + digest.hexdigest()
