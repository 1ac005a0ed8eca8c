"""Write a validated trace into the warehouse: one narrow row per request, the trace's label combinations once,
and details only for the requests that have any (the layout `store.m009_narrow_requests` explains)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from slmlab.store import DETAILS_BASE
from slmlab.traces.label_sets import encode_label_sets
from slmlab.traces.staged import one_chunk

ROW_FIELDS = ("seq", "source_row", "arrival_ns", "input_tokens", "output_tokens")
DETAIL_FIELDS = ("category", "prompt", "reference", "prefix_hash_ids")


def detail_rows(requests: pa.Table) -> pa.Table | None:
    """The requests with an id other than their source row number, or any text or prefix ids; None if none do."""
    columns = requests.column_names
    needed = np.zeros(requests.num_rows, dtype=bool)
    if "request_id" in columns:
        generated = requests.column("source_row").cast(pa.string()) if "source_row" in columns else None
        ids = requests.column("request_id").cast(pa.string())
        same = pc.equal(ids, generated) if generated is not None else pa.nulls(len(ids), pa.bool_())
        needed |= ~pc.fill_null(same, False).to_numpy(zero_copy_only=False)
    present = [name for name in DETAIL_FIELDS if name in columns]
    for name in present:
        needed |= pc.is_valid(requests.column(name)).to_numpy(zero_copy_only=False)
    if not needed.any():
        return None
    picked = requests.filter(pa.array(needed))
    request_id = picked.column("request_id" if "request_id" in columns else "source_row").cast(pa.string())
    return pa.table({"seq": picked.column("seq"), "request_id": request_id, **{n: picked.column(n) for n in present}})


@dataclass(frozen=True)
class StoredRequests:
    """A trace's requests as the warehouse stores them, prepared before the database is locked."""

    rows: pa.Table
    label_sets: pa.Table
    details: pa.Table | None

    @property
    def count(self) -> int:
        """How many requests."""
        return self.rows.num_rows


def lay_out(requests: pa.Table) -> StoredRequests:
    """Split canonical request fields (`staged.REQUEST_FIELDS`) into the rows, label sets and details to write."""
    label_set, label_sets = encode_label_sets(requests)
    # One chunk per column: DuckDB writes each Arrow batch of a multi-batch table into row groups of its own and
    # merges them when it checkpoints, which rewrote a 5-million-row trace once more (0.6 s) as the file closed.
    rows = pa.table({f: one_chunk(requests.column(f)) for f in ROW_FIELDS if f in requests.column_names})
    return StoredRequests(rows.append_column("label_set", pa.array(label_set)), label_sets, detail_rows(requests))


def _insert(con: duckdb.DuckDBPyConnection, table: str, trace_id: int, rows: pa.Table) -> None:
    con.register("staged_rows", rows)
    try:
        con.execute(f"INSERT INTO {table} BY NAME SELECT {int(trace_id)} AS trace_id, * FROM staged_rows")
    finally:
        con.unregister("staged_rows")


def insert_trace(
    con: duckdb.DuckDBPyConnection,
    *,
    name: str,
    source_file: str,
    fmt: str,
    digest: str,
    kind: str,
    requests: StoredRequests,
    labelling: dict[str, object],
    report: dict[str, object],
    first_arrival_ns: int | None = None,
) -> int:
    """Write one trace row and its requests inside the caller's transaction; returns the new trace id.

    `first_arrival_ns` is the absolute time of the first arrival (ns since the epoch) where the source records one.
    """
    trace_id = int(
        con.execute(
            "INSERT INTO traces (name, source_file, format, content_hash, imported_at, row_count, kind, labelling, "
            "import_report, first_arrival_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, make_timestamp_ns(?)) RETURNING "
            "trace_id",
            [
                name,
                source_file,
                fmt,
                digest,
                datetime.now(UTC).replace(tzinfo=None),
                requests.count,
                kind,
                json.dumps(labelling),
                json.dumps(report),
                first_arrival_ns,
            ],
        ).fetchall()[0][0]
    )
    _insert(con, "request_rows", trace_id, requests.rows)
    _insert(con, "label_sets", trace_id, requests.label_sets)
    if requests.details is not None:
        _insert(con, DETAILS_BASE, trace_id, requests.details)
    return trace_id
