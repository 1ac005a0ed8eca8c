"""Production-scale imports of gateway logs with bounded memory: a log of 100 million requests does not fit in
memory as Arrow tables, so it is checked and typed into an on-disk DuckDB staging file, labelled in batches, and
copied into the warehouse by DuckDB itself.

The result is the same trace as the in-memory path (`gateway.stage_calls`): the same checks, arrival ranks, recorded
figures and labels. Labels are drawn per batch with the counter-based labeller (`label_kernel`), which gives each
request the same labels whatever batch it is in. Memory stays near `MEMORY_LIMIT` plus one batch.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import blake3
import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from slmlab.traces.errors import TraceInputError
from slmlab.traces.gateway import (
    PRIVATE_TEXT,
    RECORD_COLUMNS,
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

STREAM_BYTES = 512 << 20  # gateway logs larger than this are imported through the staging file
MEMORY_LIMIT = "2GB"  # DuckDB's share while staging and while writing; it spills to disk beyond it
BATCH_ROWS = 1 << 21
HASH_BLOCK = 16 << 20
READER_MEMORY = "512MB"  # the staging file's reader while it is copied: it only streams


@dataclass(frozen=True)
class StagedLog:
    """A gateway log checked and typed in a staging file, ready to be copied into the warehouse."""

    folder: Path
    rows: int
    first_arrival_ns: int
    ordered: bool  # file order is arrival order (seq = file row - 1)
    present: tuple[str, ...]
    report: dict[str, object]

    @property
    def file(self) -> Path:
        """The staging database."""
        return self.folder / "staging.duckdb"

    def discard(self) -> None:
        """Remove the staging files."""
        shutil.rmtree(self.folder, ignore_errors=True)


def stage_log(
    path: Path,
    fields_for: Callable[[duckdb.DuckDBPyConnection], CallFields],
    options: ImportOptions,
    *,
    temp_dir: Path | None = None,
) -> StagedLog:
    """Check and type every call into `calls` of a staging file, in file order; nothing is held in memory."""
    folder = Path(tempfile.mkdtemp(prefix="slmlab-stage-", dir=temp_dir))
    try:
        con = duckdb.connect(str(folder / "staging.duckdb"))
        try:
            con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
            con.execute(f"SET temp_directory = {sql_quote(str(folder / 'spill'))}")
            con.execute("SET preserve_insertion_order = true")
            con.execute("PRAGMA force_compression = 'uncompressed'")  # a scratch file: writing beats its size
            con.execute("SET TimeZone = 'UTC'")
            return _stage(con, path, fields_for(con), options, folder)
        finally:
            con.close()
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _stage(
    con: duckdb.DuckDBPyConnection, path: Path, fields: CallFields, options: ImportOptions, folder: Path
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
    found = _checks_for(present, fields.time_unit)
    select = _select(fields, present)
    try:
        con.execute(f"CREATE TABLE calls AS {typed_select(select, found, fields.time_unit)}")
        validation = "typed read"
    except duckdb.Error:
        try:
            check_rows(con, path, select, found)  # names the field and its first bad rows
        except duckdb.Error as error:  # the file itself cannot be read (a line over the limit, broken quoting)
            raise TraceInputError(path, f"cannot be read: {str(error).splitlines()[0]}") from error
        columns = ", ".join(f"{c.typed} AS {ident(c.column)}" for c in found)  # values the fast read was strict about
        con.execute(f"CREATE TABLE calls AS SELECT {columns} FROM calls_raw ORDER BY __row")
        con.execute("DROP TABLE calls_raw")
        validation = "row-by-row checks"
    rows, first, last, backwards = con.execute(
        'SELECT count(*), min(start), max(start), count_if("end" < start) FROM calls'
        if "end" in present
        else "SELECT count(*), min(start), max(start), 0 FROM calls"
    ).fetchall()[0]
    if not rows:
        raise TraceInputError(path, "holds no LLM calls")
    if int(last) - int(first) >= MAX_SPAN_NS:  # the in-memory path's check (workload.arrival_offsets_ns)
        far = con.execute(
            f"SELECT rowid + 1, start FROM calls WHERE start - {int(first)}::HUGEINT >= {MAX_SPAN_NS} ORDER BY rowid"
        ).fetchall()
        raise TraceInputError(
            path,
            f"arrival times span more than 146 years (nanoseconds after the first arrival are stored as 64-bit "
            f"integers); the first arrival is {np.datetime64(int(first), 'ns')}",
            column=fields.names.get("start", "start"),
            offenders=[(int(r), str(np.datetime64(int(v), "ns"))) for r, v in far[:5]],
            total=len(far),
        )
    if backwards:
        bad = con.execute('SELECT rowid + 1 FROM calls WHERE "end" < start ORDER BY rowid LIMIT 5').fetchall()
        raise TraceInputError(
            path,
            f"'{fields.names.get('end', 'end')}' is before the request start",
            column=fields.names.get("end", "end"),
            offenders=[(int(r), "ends before it starts") for (r,) in bad],
            total=int(backwards),
        )
    for name in ("end", "first_token"):  # a recorded time more than 146 years after the start: refused, not wrapped
        if name in present:
            far = con.execute(
                f"SELECT rowid + 1 FROM calls WHERE {ident(name)}::HUGEINT - start >= {MAX_SPAN_NS} ORDER BY rowid"
            ).fetchall()
            if far:
                raise TraceInputError(
                    path,
                    f"'{fields.names.get(name, name)}' is more than 146 years after the request start",
                    column=fields.names.get(name, name),
                    offenders=[(int(r), "more than 146 years after the start") for (r,) in far[:5]],
                    total=len(far),
                )
    out_of_order = _out_of_order(con)
    if out_of_order:  # each row's rank in arrival order, in file order (a sort that DuckDB spills to disk)
        con.execute(
            "CREATE TABLE ranks AS SELECT seq FROM (SELECT rowid AS r, CAST(row_number() OVER "
            "(ORDER BY start, rowid) - 1 AS BIGINT) AS seq FROM calls) ORDER BY r"
        )
    report = {
        "recorded": {},
        "log_fields": {n: fields.names[n] for n in present if n in fields.names},
        "rows_out_of_order": out_of_order,
        "validation": validation + " (streamed through a staging file)",
        "text": "stored (--keep-text)"
        if options.keep_text
        else "not stored (pass --keep-text to keep prompts and responses)",
        "assumptions": list(fields.assumptions),
        **fields.extra_report,
        "label_fields": {
            label: fields.names.get(label, label) for label in ("tenant", "team", "user", "tags") if label in present
        },
    }
    return StagedLog(folder, int(rows), int(first), not out_of_order, tuple(present), report)


def _batches(con: duckdb.DuckDBPyConnection, sql: str) -> pa.RecordBatchReader:
    """A query's result as Arrow batches of BATCH_ROWS (`to_arrow_reader` in DuckDB 2, `fetch_record_batch` in 1.x)."""
    relation = con.sql(sql)
    reader = getattr(relation, "to_arrow_reader", None) or relation.fetch_record_batch
    return reader(BATCH_ROWS)


def _out_of_order(con: duckdb.DuckDBPyConnection) -> int:
    """How many rows started before the row above them, read in file order in batches."""
    count, last = 0, None
    reader = _batches(con, "SELECT start FROM calls")
    for batch in reader:
        start = batch.column(0).to_numpy()
        if last is not None and len(start):
            count += int(start[0] < last)
        count += int(np.count_nonzero(start[1:] < start[:-1]))
        if len(start):
            last = start[-1]
    return count


def _seq_sql(staged: StagedLog) -> tuple[str, str]:
    """FROM clause and seq expression over the attached staging file `stage`."""
    if staged.ordered:
        return "stage.calls c", "c.rowid"
    return "stage.calls c POSITIONAL JOIN stage.ranks k", "k.seq"


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
        digits = [np.zeros(n, dtype=np.int64) for _ in range(4)]
        if self.mix is not None:
            drawn = draw_labels(tokens, self.mix, {}, arrival_rank=seq)
            for i, name in enumerate(("task", "data_class", "residency")):
                digits[i] = drawn.codes(name).astype(np.int64) + 1
            if self.tenants is None:
                digits[3] = drawn.codes("tenant").astype(np.int64) + 1
        if self.tenants is not None and tenant is not None:
            index = pc.index_in(tenant, value_set=pa.array(self.tenants))
            digits[3] = pc.fill_null(index, -1).to_numpy(zero_copy_only=False).astype(np.int64) + 1
        key = np.zeros(n, dtype=np.int64)
        for digit, radix in zip(digits, self.radix):
            key = key * radix + digit
        self.used.update(np.unique(key).tolist())
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


def _reader(staged: StagedLog) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the staging file that only streams it, with a small buffer pool of its own."""
    con = duckdb.connect(str(staged.file), read_only=True)
    con.execute(f"SET memory_limit = '{READER_MEMORY}'")
    con.execute(f"SET temp_directory = {sql_quote(str(staged.folder / 'spill'))}")
    return con


def _row_batches(staged: StagedLog, labeller: _Labeller) -> Iterator[pa.RecordBatch]:
    """request_rows in file order, one batch at a time, with each request's label combination."""
    con = _reader(staged)
    try:
        seq = "calls.rowid" if staged.ordered else "seq"
        source = "calls" if staged.ordered else "calls POSITIONAL JOIN ranks"
        tenant = ", tenant" if "tenant" in staged.present else ""
        tokens = {n: (f"coalesce({n}, 0)" if n in staged.present else "0") for n in ("input_tokens", "output_tokens")}
        reader = _batches(
            con,
            f"SELECT CAST({seq} AS BIGINT) AS seq, CAST(calls.rowid + 1 AS BIGINT) AS source_row, "
            f"start - {staged.first_arrival_ns} AS arrival_ns, "
            f"CAST({tokens['input_tokens']} AS BIGINT) AS input_tokens, "
            f"CAST({tokens['output_tokens']} AS BIGINT) AS output_tokens{tenant} FROM {source}",
        )
        for batch in reader:
            key = labeller.codes(
                batch.column(3).to_numpy(zero_copy_only=False),
                batch.column(0).to_numpy(),
                batch.column(5) if tenant else None,
            )
            yield pa.RecordBatch.from_arrays(
                [*batch.columns[:5], pa.array(key.astype(np.int32))],
                names=["seq", "source_row", "arrival_ns", "input_tokens", "output_tokens", "label_set"],
            )
    finally:
        con.close()


ROW_SCHEMA = pa.schema(
    [
        ("seq", pa.int64()),
        ("source_row", pa.int64()),
        ("arrival_ns", pa.int64()),
        ("input_tokens", pa.int64()),
        ("output_tokens", pa.int64()),
        ("label_set", pa.int32()),
    ]
)


def write_staged(
    con: duckdb.DuckDBPyConnection,
    trace_id: int,
    staged: StagedLog,
    mix: LabelMix | None,
) -> tuple[dict[str, object], dict[str, object]]:
    """Copy a staged log into the warehouse inside the caller's transaction; returns its labelling provenance and the
    recorded-field counts."""
    tenants = None
    if "tenant" in staged.present:
        probe = _reader(staged)
        try:
            tenants = [
                r[0]
                for r in probe.execute(
                    "SELECT DISTINCT tenant FROM calls WHERE tenant IS NOT NULL ORDER BY tenant"
                ).fetchall()
            ] or None
        finally:
            probe.close()
    labeller = _Labeller(mix, tenants)
    # The warehouse's buffer pool holds the transaction's new rows: capped, so a 100M-row log spills them to disk
    # instead of growing the process (restored at the end: other connections of this process share the setting).
    limit = con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
    try:
        return _write(con, trace_id, staged, mix, labeller, tenants)
    finally:
        with contextlib.suppress(duckdb.Error):  # an aborted transaction refuses it; the connection closes after
            con.execute(f"SET memory_limit = {sql_quote(str(limit))}")


def _write(
    con: duckdb.DuckDBPyConnection,
    trace_id: int,
    staged: StagedLog,
    mix: LabelMix | None,
    labeller: _Labeller,
    tenants: list[str] | None,
) -> tuple[dict[str, object], dict[str, object]]:
    reader = pa.RecordBatchReader.from_batches(ROW_SCHEMA, _row_batches(staged, labeller))
    con.register("staged_rows", reader)
    try:
        con.execute(f"INSERT INTO request_rows BY NAME SELECT {int(trace_id)} AS trace_id, * FROM staged_rows")
    finally:
        con.unregister("staged_rows")
    slo = dict(mix.latency_slo_ms_by_task) if mix is not None else None
    sets = labeller.label_sets(slo)
    con.register("staged_sets", sets)
    try:
        con.execute(f"INSERT INTO label_sets BY NAME SELECT {int(trace_id)} AS trace_id, * FROM staged_sets")
    finally:
        con.unregister("staged_sets")
    con.execute(f"ATTACH {sql_quote(str(staged.file))} AS stage (READ_ONLY)")
    try:
        source, seq = _seq_sql(staged)
        present = set(staged.present)

        def col(name: str, sql: str | None = None) -> str:
            return (sql or f"c.{ident(name)}") if name in present else "NULL"

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
        ttft = f"coalesce(c.ttft_ms, {first})" if "ttft_ms" in present else first
        values = {
            "model": col("model"),
            "provider": col("provider"),
            "latency_ms": latency,
            "ttft_ms": ttft,
            "cost_usd": col("cost_usd"),
            "cached_tokens": col("cached_tokens"),
            "status": col("status"),
            "error": col("error"),
            "team": col("team"),
            "user_id": col("user"),
            "tags": col("tags"),
            "response": col("response"),
        }
        assert set(values) == set(RECORD_COLUMNS)
        con.execute(
            f"INSERT INTO request_records (trace_id, seq, {', '.join(values)}) SELECT {int(trace_id)}, {seq}, "
            f"{', '.join(values.values())} FROM {source}"
        )
        if "request_id" in present or "prompt" in present:
            con.execute(
                f"INSERT INTO request_details (trace_id, seq, request_id, prompt) SELECT {int(trace_id)}, {seq}, "
                f"coalesce({col('request_id')}, CAST(c.rowid + 1 AS VARCHAR)), {col('prompt')} FROM {source}"
            )
        counts = con.execute(
            "SELECT " + ", ".join(f"count({v})" if v != "NULL" else "0" for v in values.values()) + f" FROM {source}"
        ).fetchall()[0]
    finally:
        con.execute("DETACH stage")
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
    }


def streamed_hash(paths: list[Path], root: Path | None = None) -> str:
    """`reading.content_hash` (the same BLAKE3 key) read in blocks instead of memory-mapped: a mapped 100 GB log
    would count its pages in the process's resident memory while the streamed import keeps its own bounded."""
    digest = blake3.blake3()
    for path in paths:
        if root is not None:
            digest.update(str(path.relative_to(root)).encode() + b"\0")
        with path.open("rb") as handle:
            while block := handle.read(HASH_BLOCK):
                digest.update(block)
    return HASH_PREFIX + digest.hexdigest()
