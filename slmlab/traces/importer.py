"""Import a trace file (or a folder of same-format files) into the warehouse: all-or-nothing, idempotent.

Parsing and validation happen in a private in-memory DuckDB, so the warehouse file is locked only for the
final insert, which runs in one transaction: a failure or a killed process leaves it exactly as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from slmlab import __version__, store
from slmlab.paths import resolve_db_path
from slmlab.traces.call_tables import drop_trace_table
from slmlab.traces.datasets import parquet_dataset
from slmlab.traces.errors import TraceInputError, on_upload
from slmlab.traces.formats import FORMATS
from slmlab.traces.formats.base import LogFormat, TraceFormat, is_log_format
from slmlab.traces.labelling import (
    DATA_CLASSES,
    DRAW,
    LABEL_FIELDS,
    TASKS,
    LabelMix,
    draw_labels,
    load_label_mix,
)
from slmlab.traces.reading import (
    LEGACY_HASH_PREFIX,
    SUPPORTED_SUFFIXES,
    FileSample,
    content_hash,
    legacy_content_hash,
    read_jsonl_raw,
    sample,
)
from slmlab.traces.records import insert_records
from slmlab.traces.staged import ImportOptions, StagedTrace
from slmlab.traces.streaming import STREAM_BYTES, StagedLog
from slmlab.traces.workload import WORKLOAD_FIELDS
from slmlab.traces.writing import insert_trace, lay_out

Progress = Callable[[str], None]
HASH_FIRST_BYTES = 64 << 20  # files up to this size are hashed before they are read (see import_trace)
STAGING_MEMORY_SHARE = 50  # percent of physical memory DuckDB may use to validate one file (README: Limits on input)
DEFAULT_LABEL_MIX = load_label_mix(None)
# Labels unless told otherwise: the default mix for workloads (traffic without labels), none for recorded outcomes
# (benchmark prompts are no enterprise traffic: synthetic residency on them would invent violations)
AUTO_LABELS = "auto"


def labels_for(label_mix: LabelMix | str | None, kind: str) -> LabelMix | None:
    """The mix a trace of this kind is labelled with: an explicit mix (or None) as given, 'auto' by kind."""
    if isinstance(label_mix, str):
        return DEFAULT_LABEL_MIX if kind == "workload" else None
    return label_mix


@dataclass(frozen=True)
class ImportResult:
    """What an import did: which trace, how many rows, and whether it was already there."""

    trace_id: int
    name: str
    format: str
    rows: int
    outcomes: int
    already_imported: bool
    seconds: float
    report: dict[str, object] = field(default_factory=dict)
    labelling: dict[str, object] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        """For `--json` output."""
        return {
            "trace_id": self.trace_id,
            "name": self.name,
            "format": self.format,
            "rows": self.rows,
            "outcomes": self.outcomes,
            "already_imported": self.already_imported,
            "seconds": round(self.seconds, 3),
            "report": self.report,
            "labelling": self.labelling,
        }


def source_files(source: Path) -> list[Path]:
    """The file itself, or a folder's supported files in name order."""
    if not source.exists():
        raise TraceInputError(source, "file not found")
    if source.is_file():
        return [source]
    files = sorted(p for p in source.iterdir() if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES)
    if not files:
        raise TraceInputError(source, "folder holds no .csv, .jsonl or .parquet files")
    return files


def detect_format(path: Path) -> TraceFormat:
    """The first registered format whose signature matches the file's header or first record."""
    peek = sample(path)
    for fmt in FORMATS.values():
        if fmt.matches(peek):
            return fmt
    raise TraceInputError(
        path,
        f"cannot tell the format from its columns ({', '.join(peek.columns)})",
        hint=f"pass --format ({', '.join(FORMATS)}), or --map FIELD=COLUMN to read it as generic; "
        "the README lists each format's columns",
    )


def check_options(files: list[Path], fmt: str, options: ImportOptions) -> None:
    """The options name a known format, known fields and columns every file has: checked before anything else,
    so a wrong option is an error even when the bytes are already stored."""
    if fmt != "auto" and fmt not in FORMATS:
        raise ValueError(f"unknown format '{fmt}'; choose auto or one of {', '.join(FORMATS)}")
    unknown_fields = sorted(set(options.mapping) - set(WORKLOAD_FIELDS))
    if unknown_fields:
        raise ValueError(
            f"--map names unknown field(s) {', '.join(unknown_fields)}; fields are {', '.join(WORKLOAD_FIELDS)}"
        )
    named = {**dict.fromkeys(options.mapping.values(), "--map"), **dict.fromkeys(options.ignore, "--ignore")}
    if not named:
        return
    for path in files:
        peek = sample(path)
        missing = [column for column in named if column not in peek.columns]
        if missing and peek.container == "jsonl":  # a key may first appear in a later record
            con = duckdb.connect()
            try:
                missing = [column for column in missing if column not in read_jsonl_raw(con, path)]
            finally:
                con.close()
        if missing:
            raise TraceInputError(
                path,
                "; ".join(f"{named[name]} names column '{name}', which the file does not have" for name in missing),
                hint=f"its columns are {', '.join(peek.columns)}",
            )


def _resolve_format(files: list[Path], name: str, options: ImportOptions) -> TraceFormat:
    if name == "auto" and options.mapping:
        return FORMATS["generic"]  # a column map only means something to the generic format
    if name != "auto":
        if name not in FORMATS:
            raise ValueError(f"unknown format '{name}'; choose auto or one of {', '.join(FORMATS)}")
        return FORMATS[name]
    chosen = detect_format(files[0])
    for other in files[1:]:
        if detect_format(other).name != chosen.name:
            raise TraceInputError(other, f"is not in the same format as {files[0].name} ({chosen.name})")
    return chosen


def stage_files(
    files: list[Path], fmt: str = "auto", options: ImportOptions | None = None
) -> tuple[TraceFormat, StagedTrace]:
    """Check the options, detect the format, read and validate every file: all an import does before it writes."""
    options = options or ImportOptions()
    check_options(files, fmt, options)
    chosen = _resolve_format(files, fmt, options)
    return chosen, _stage_all(chosen, files, options)


def _staging_memory_bytes() -> int:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") * STAGING_MEMORY_SHARE // 100
    except (ValueError, OSError):
        return 4 << 30


def _stage_all(fmt: TraceFormat, files: list[Path], options: ImportOptions) -> StagedTrace:
    staged = []
    limit = _staging_memory_bytes()
    for path in files:
        con = duckdb.connect(config={"memory_limit": f"{limit >> 20}MiB"})
        try:
            staged.append(fmt.stage(con, path, options))
        except duckdb.OutOfMemoryException as error:
            raise TraceInputError(
                path,
                f"needs more than {limit / 2**30:.1f} GiB ({STAGING_MEMORY_SHARE}% of this machine's memory) "
                "to validate",
                hint="split it into smaller files and import them as a folder",
            ) from error
        finally:
            con.close()
    if len(staged) == 1:
        return staged[0]
    if staged[0].kind == "workload":
        raise TraceInputError(
            files[0].parent, "a folder import is for outcome files; import workload traces one file at a time"
        )
    return _concatenate(staged, files)


def _prefixed(table: pa.Table, prefix: str) -> pa.Table:
    column = table.schema.get_field_index("request_id")
    ids = pc.binary_join_element_wise(prefix, table.column("request_id").cast(pa.string()), "/")
    return table.set_column(column, "request_id", ids)


def _concatenate(staged: list[StagedTrace], files: list[Path]) -> StagedTrace:
    requests = pa.concat_tables(
        [_prefixed(s.requests, f.stem) for s, f in zip(staged, files)], promote_options="default"
    )
    requests = requests.set_column(requests.schema.get_field_index("seq"), "seq", pa.array(np.arange(len(requests))))
    outcomes = pa.concat_tables(
        [_prefixed(s.outcomes, f.stem) for s, f in zip(staged, files) if s.outcomes is not None],
        promote_options="default",
    )
    report = {"files": [f.name for f in files], "models": sorted(set(outcomes.column("model").to_pylist()))}
    return StagedTrace(kind=staged[0].kind, requests=requests, outcomes=outcomes, report=report)


def label_requests(requests: pa.Table, mix: LabelMix | None) -> tuple[pa.Table, dict[str, object]]:
    """Fill the label fields a source did not record from the seeded mix; says which fields are synthetic."""
    recorded = [f for f in LABEL_FIELDS if f in requests.column_names and requests.column(f).null_count < len(requests)]
    missing = [f for f in LABEL_FIELDS if f not in recorded]
    provenance: dict[str, object] = {
        "recorded_fields": recorded,
        "synthetic_fields": [],
        "method": "recorded" if recorded else "none",
    }
    if mix is None or not missing:
        return requests, provenance
    # Rows may be in file order; each request's labels follow from its rank in arrival order all the same.
    seq = requests.column("seq").to_numpy() if "seq" in requests.column_names else None
    tokens = (
        requests.column("input_tokens").to_numpy(zero_copy_only=False)
        if "input_tokens" in requests.column_names
        else np.zeros(len(requests))
    )
    vocabularies = {"task": TASKS, "data_class": DATA_CLASSES}
    given = {
        name: pc.fill_null(pc.index_in(requests.column(name), value_set=pa.array(vocabulary)), -1).to_numpy()
        for name, vocabulary in vocabularies.items()
        if name in recorded
    }
    labels = draw_labels(tokens, mix, given, arrival_rank=seq)
    for name in missing:
        column = pa.DictionaryArray.from_arrays(  # small codes: cheap to build and to encode as label sets
            pa.array(labels.codes(name), type=pa.int8()),
            pa.array(labels.vocabulary(name), type=pa.float64() if name == "latency_slo_ms" else pa.string()),
        )
        if name in requests.column_names:
            requests = requests.set_column(requests.schema.get_field_index(name), name, column)
        else:
            requests = requests.append_column(name, column)
    provenance.update(
        method="synthetic" if not recorded else "mixed",
        synthetic_fields=missing,
        seed=mix.seed,
        mix_name=mix.name,
        mix=mix.to_json(),
        draw=DRAW,  # traces labelled before 2026-11-28 lack this key: they used one numpy PCG64 stream
    )
    return requests, provenance


def _already_imported(
    con: duckdb.DuckDBPyConnection, digest: str, started: float, legacy: Callable[[], str] | None = None
) -> ImportResult | None:
    """The trace stored from these bytes, by their key; by their sha256 key too (`legacy`) while the database
    holds traces imported before BLAKE3 keys."""
    query = (
        "SELECT t.trace_id, t.name, t.format, t.row_count, "
        "(SELECT count(*) FROM outcomes o WHERE o.trace_id = t.trace_id) FROM traces t WHERE content_hash = ?"
    )
    rows = con.execute(query, [digest]).fetchall()
    if (
        not rows
        and legacy is not None
        and con.execute(f"SELECT count(*) FROM traces WHERE content_hash LIKE '{LEGACY_HASH_PREFIX}%'").fetchall()[0][0]
    ):
        rows = con.execute(query, [legacy()]).fetchall()
    if not rows:
        return None
    trace_id, name, fmt, count, outcomes = rows[0]
    return ImportResult(trace_id, name, fmt, count, outcomes, True, time.perf_counter() - started)


def _stored_earlier(
    db: str | Path | None,
    files: list[Path],
    root: Path | None,
    started: float,
    legacy: Callable[[], str],
    *,
    unless_new_from: str | None = None,
) -> tuple[ImportResult | None, str | None]:
    """The trace already stored from these bytes, and their hash (None, None: not looked up). With
    `unless_new_from`, a file over HASH_FIRST_BYTES is hashed only if a trace came from that path before; others
    are hashed later, beside the labelling. A database that does not exist is not created: a failed import
    must leave no file."""
    if not resolve_db_path(db).exists():
        return None, None
    with store.connect(db, read_only=True) as con:
        large = sum(f.stat().st_size for f in files) > HASH_FIRST_BYTES
        if (
            unless_new_from is not None
            and large
            and not con.execute("SELECT count(*) FROM traces WHERE source_file = ?", [unless_new_from]).fetchall()[0][0]
        ):
            return None, None
        digest = content_hash(files, root)
        return _already_imported(con, digest, started, legacy), digest


def _import_streamed(
    chosen: LogFormat,
    path: Path,
    *,
    db: str | Path | None,
    name: str,
    source_file: str,
    digest: str | None,
    root: Path | None,
    label_mix: LabelMix | str | None,
    options: ImportOptions,
    started: float,
    say: Progress,
    legacy: Callable[[], str],
) -> ImportResult:
    """A gateway log too large for memory: typed into a staging table of the warehouse, labelled in batches, and
    kept as the trace's table of calls (`streaming.py`). A database this creates is removed again when the import
    fails, as the in-memory path never creates one."""
    from slmlab.traces.streaming import bounded_memory, phase, stage_log, staging_area, streamed_hash, warm_labeller

    database = resolve_db_path(db)
    existed = database.exists()
    mix = labels_for(label_mix, "workload")
    try:
        with (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="slmlab-hash") as helper,
            store.connect(db) as con,
            bounded_memory(con),
            staging_area(con) as calls,
        ):
            hashing = helper.submit(streamed_hash, [path], root) if digest is None else None
            helper.submit(warm_labeller, mix)  # after the hash, while the log is read; its outcome is not needed
            say(f"reading and validating as {chosen.name} (streamed through a staging table)")
            # Staged before the transaction begins: rows a transaction appends have row ids from 2^62, and the
            # staging table's row ids are the file's row numbers.
            staged = stage_log(con, path, lambda c: chosen.call_fields(c, path, options), options, calls)
            with phase("hash: wait for the file's digest"):
                digest = hashing.result() if hashing is not None else digest
            assert digest is not None  # either given or hashed just above
            con.execute("BEGIN TRANSACTION")
            try:
                found = _already_imported(con, digest, started, legacy)
                if found is None:
                    trace_id, report, labelling = _write_streamed(
                        con, chosen, path, name, source_file, digest, staged, mix
                    )
            except BaseException:
                con.execute("ROLLBACK")
                raise
            with phase("commit"):
                con.execute("COMMIT")
            with phase("checkpoint"):  # here, counted, rather than when the warehouse next closes
                con.execute("CHECKPOINT")
            if found is not None:
                return found
    except BaseException:
        if not existed:
            for leftover in (database, database.with_name(database.name + ".wal")):
                leftover.unlink(missing_ok=True)
            shutil.rmtree(database.with_name(database.name + ".tmp"), ignore_errors=True)
        raise
    return ImportResult(
        trace_id, name, chosen.name, staged.rows, 0, False, time.perf_counter() - started, report, labelling
    )


def _write_streamed(
    con: duckdb.DuckDBPyConnection,
    chosen: LogFormat,
    path: Path,
    name: str,
    source_file: str,
    digest: str,
    staged: StagedLog,
    mix: LabelMix | None,
) -> tuple[int, dict[str, object], dict[str, object]]:
    """The trace row, then its staged requests, inside the caller's transaction."""
    from slmlab.traces.streaming import write_staged
    from slmlab.traces.writing import StoredRequests

    if con.execute("SELECT count(*) FROM traces WHERE name = ?", [name]).fetchall()[0][0]:
        raise TraceInputError(
            path, f"a different trace named '{name}' already exists", hint="choose another name with --name"
        )
    rows, sets = pa.table({"seq": pa.array([], pa.int64())}), pa.table({"label_set": pa.array([], pa.int32())})
    report = {**staged.report, "slmlab_version": __version__, "files": [path.name]}
    trace_id = insert_trace(
        con,
        name=name,
        source_file=source_file,
        fmt=chosen.name,
        digest=digest,
        kind="workload",
        requests=StoredRequests(rows, sets, None),
        labelling={},
        report=report,
        first_arrival_ns=staged.first_arrival_ns,
    )
    labelling, recorded = write_staged(con, trace_id, staged, mix)
    report.update(recorded)
    con.execute(
        "UPDATE traces SET row_count = ?, labelling = ?, import_report = ? WHERE trace_id = ?",
        [staged.rows, json.dumps(labelling), json.dumps(report, default=str), trace_id],
    )
    return trace_id, report, labelling


def _import_dataset(
    pattern: Path,
    files: list[Path],
    *,
    db: str | Path | None,
    fmt: str,
    name: str | None,
    label_mix: LabelMix | str | None,
    options: ImportOptions,
    started: float,
    say: Progress,
) -> ImportResult:
    """A hive-partitioned Parquet dataset (a folder of `key=value/` folders, or a glob) as one gateway-log trace."""
    from slmlab.traces.datasets import parquet_source
    from slmlab.traces.streaming import streamed_hash

    con = duckdb.connect()
    try:
        columns = tuple(r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {parquet_source(pattern)}").fetchall())
    except duckdb.Error as error:
        raise TraceInputError(pattern, f"cannot be read as Parquet: {str(error).splitlines()[0]}") from error
    finally:
        con.close()
    peek = FileSample(pattern, "parquet", columns)
    readers = [f for f in FORMATS.values() if is_log_format(f) and "parquet" in getattr(f, "containers", ())]
    chosen = FORMATS.get(fmt) if fmt != "auto" else next((f for f in readers if f.matches(peek)), None)
    if chosen is None or chosen not in readers or not is_log_format(chosen):
        raise TraceInputError(
            pattern,
            f"a Parquet dataset is read as a gateway log; its columns ({', '.join(columns)}) match none",
            hint=f"formats that read Parquet datasets: {', '.join(f.name for f in readers)}",
        )
    top = Path(str(pattern).split("*")[0].rstrip("/")) if "*" in str(pattern) else pattern.parent.parent
    root = top if top.is_dir() else None
    digest = streamed_hash(files, root)
    legacy = partial(legacy_content_hash, files, root)
    return _import_streamed(
        chosen,
        pattern,
        db=db,
        name=name or (root.name if root else "dataset"),
        source_file=str(pattern),
        digest=digest,
        root=root,
        label_mix=label_mix,
        options=options,
        started=started,
        say=say,
        legacy=legacy,
    )


def import_trace(
    source: str | Path,
    *,
    db: str | Path | None = None,
    fmt: str = "auto",
    name: str | None = None,
    label_mix: LabelMix | str | None = AUTO_LABELS,
    options: ImportOptions | None = None,
    progress: Progress | None = None,
    display_name: str | None = None,
) -> ImportResult:
    """Validate and store one trace; importing the same bytes again changes nothing and says so."""
    started = time.perf_counter()
    say = progress or (lambda _message: None)
    if (dataset := parquet_dataset(source)) is not None:  # hive-partitioned Parquet: one trace
        return _import_dataset(
            *dataset,
            db=db,
            fmt=fmt,
            name=name,
            label_mix=label_mix,
            options=options or ImportOptions(),
            started=started,
            say=say,
        )
    source = Path(source)
    files = source_files(source)
    options = options or ImportOptions()
    root = source if source.is_dir() else None
    # A file of up to HASH_FIRST_BYTES, or one imported from the same path before, is hashed before anything
    # else, so importing it again stops there. Other large files are hashed beside the labelling (BLAKE3
    # releases the GIL): the read keeps every core busy, labelling runs mostly on one. The write checks in any
    # case that the bytes are not stored yet.
    source_file = str(display_name or source.resolve())
    legacy = partial(legacy_content_hash, files, root)
    check_options(files, fmt, options)
    found, digest = _stored_earlier(db, files, root, started, legacy, unless_new_from=source_file)
    if found:
        return found
    try:
        chosen = _resolve_format(files, fmt, options)
        if is_log_format(chosen) and len(files) == 1 and files[0].stat().st_size > STREAM_BYTES:
            return _import_streamed(
                chosen,
                files[0],
                db=db,
                name=name or source.stem,
                source_file=source_file,
                digest=digest,
                root=root,
                label_mix=label_mix,
                options=options,
                started=started,
                say=say,
                legacy=legacy,
            )
        say(f"reading and validating as {chosen.name}")
        staged = _stage_all(chosen, files, options)
    except Exception:  # a file that is already stored is reported as such, even if reading it fails this time
        if digest is None and (found := _stored_earlier(db, files, root, started, legacy)[0]):
            return found
        raise
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="slmlab-hash") as helper:
        hashing = helper.submit(content_hash, files, root) if digest is None else None
        say("labelling")
        requests, labelling = label_requests(staged.requests, labels_for(label_mix, staged.kind))
        stored = lay_out(requests)
        digest = hashing.result() if hashing is not None else digest
    assert digest is not None  # either looked up before or hashed just above
    trace_name = name or source.stem
    report = {**staged.report, "slmlab_version": __version__, "files": [f.name for f in files]}
    say("writing")
    with store.transaction(db) as con:
        if found := _already_imported(con, digest, started, legacy):  # or by another process meanwhile
            return found
        clash = con.execute("SELECT source_file FROM traces WHERE name = ?", [trace_name]).fetchall()
        if clash:
            raise TraceInputError(
                display_name or source,
                f"a different trace named '{trace_name}' already exists (from {clash[0][0]})",
                hint="choose another name with --name",
            )
        trace_id = insert_trace(
            con,
            name=trace_name,
            source_file=source_file,
            fmt=chosen.name,
            digest=digest,
            kind=staged.kind,
            requests=stored,
            labelling=labelling,
            report=report,
            first_arrival_ns=staged.first_arrival_ns,
        )
        outcome_rows = 0
        if staged.outcomes is not None:
            con.register("staged_outcomes", staged.outcomes)
            con.execute(f"INSERT INTO outcomes BY NAME SELECT {int(trace_id)} AS trace_id, * FROM staged_outcomes")
            outcome_rows = len(staged.outcomes)
        if staged.recorded is not None:
            insert_records(con, trace_id, staged.recorded)
    return ImportResult(
        trace_id,
        trace_name,
        chosen.name,
        stored.count,
        outcome_rows,
        False,
        time.perf_counter() - started,
        report,
        labelling,
    )


def remove_trace(name: str, *, db: str | Path | None = None) -> int:
    """Delete one trace and everything stored under it; returns how many requests went."""
    with store.transaction(db) as con:
        found = con.execute("SELECT trace_id, row_count FROM traces WHERE name = ?", [name]).fetchall()
        if not found:
            raise ValueError(f"no trace named '{name}' in {resolve_db_path(db)}")
        trace_id, rows = found[0]
        for table in ("outcomes", store.RECORDS_BASE, store.DETAILS_BASE, "label_sets", "request_rows", "traces"):
            con.execute(f"DELETE FROM {table} WHERE trace_id = ?", [trace_id])
        drop_trace_table(con, trace_id)
    return int(rows)


def import_upload(
    filename: str,
    content: bytes,
    *,
    db: str | Path | None = None,
    fmt: str = "auto",
    name: str | None = None,
    label_mix: LabelMix | str | None = AUTO_LABELS,
    options: ImportOptions | None = None,
    progress: Progress | None = None,
) -> ImportResult:
    """Import bytes received by the dashboard; errors name the uploaded file, not the temporary copy."""

    def run(path: Path) -> ImportResult:
        return import_trace(
            path,
            db=db,
            fmt=fmt,
            name=name or path.stem,
            label_mix=label_mix,
            options=options,
            progress=progress,
            display_name=f"upload:{path.name}",
        )

    return on_upload(filename, content, run)
