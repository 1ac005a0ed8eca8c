"""Speed check for trace import: slmlab's validated import of a generated N-row Azure-format CSV versus
DuckDB's bare `read_csv` of the same file into a table, in the same run. Goal: ratio >= 0.5.

    .venv/bin/python perf/import_speed.py [--rows 5000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from slmlab.allocator import keep_freed_memory
from slmlab.traces.importer import import_trace


def generate_trace(path: Path, rows: int, seed: int = 7) -> None:
    """An Azure-format CSV with realistic token shapes and 100 ns timestamps, written by DuckDB."""
    duckdb.sql(
        f"""
        COPY (
            SELECT strftime(TIMESTAMP '2023-11-16 18:15:46' + to_microseconds(CAST(i * 180 AS BIGINT)),
                            '%Y-%m-%d %H:%M:%S')
                   || '.' || lpad(CAST((i * 7919 + {seed}) % 10000000 AS VARCHAR), 7, '0') AS "TIMESTAMP",
                   CAST(1 + (hash(i, {seed}) % 8000) AS BIGINT) AS "ContextTokens",
                   CAST(1 + (hash(i, {seed} + 1) % 700) AS BIGINT) AS "GeneratedTokens"
            FROM range({rows}) t(i)
        ) TO '{path}' (HEADER, DELIMITER ',')
        """
    )


def bare_read_csv(path: Path, db: Path) -> float:
    """DuckDB on its own: sniff the CSV and load it into a table of a fresh database file."""
    started = time.perf_counter()
    con = duckdb.connect(str(db))
    con.execute(f"CREATE TABLE t AS SELECT * FROM read_csv('{path}')")
    con.close()
    return time.perf_counter() - started


def slmlab_import(path: Path, db: Path, label: bool = True) -> float:
    """Full slmlab import: hash, validate every column, sort, label (unless told not to), write in one transaction."""
    started = time.perf_counter()
    import_trace(path, db=db, **({} if label else {"label_mix": None}))
    return time.perf_counter() - started


def main() -> None:
    keep_freed_memory()  # as the CLI and the dashboard do at their start
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="slmlab-perf-") as folder:
        csv = Path(folder) / "trace.csv"
        print(f"generating {args.rows:,} rows ...", flush=True)
        generate_trace(csv, args.rows)
        print(f"file: {csv.stat().st_size / 1e6:,.1f} MB", flush=True)
        bare, labelled, unlabelled = [], [], []
        for attempt in range(args.repeat):
            bare.append(bare_read_csv(csv, Path(folder) / f"bare{attempt}.duckdb"))
            labelled.append(slmlab_import(csv, Path(folder) / f"slmlab{attempt}.duckdb"))
            unlabelled.append(slmlab_import(csv, Path(folder) / f"nolabels{attempt}.duckdb", label=False))
            print(
                f"  run {attempt + 1}: bare read_csv {bare[-1]:.2f} s, slmlab import {labelled[-1]:.2f} s "
                f"(ratio {bare[-1] / labelled[-1]:.2f}), with --label-mix none {unlabelled[-1]:.2f} s "
                f"(ratio {bare[-1] / unlabelled[-1]:.2f})",
                flush=True,
            )
    bare_s = statistics.median(bare)
    print(f"bare DuckDB read_csv into a table:  {args.rows / bare_s:,.0f} rows/s (median {bare_s:.2f} s)")
    for label, times in (("slmlab import (default labels)", labelled), ("slmlab import --label-mix none", unlabelled)):
        median = statistics.median(times)
        per_run = statistics.median(b / t for b, t in zip(bare, times))  # each import against the bare load beside it
        print(
            f"{label + ':':35} {args.rows / median:,.0f} rows/s (median {median:.2f} s), "
            f"ratio to bare {bare_s / median:.2f}, median of per-run ratios {per_run:.2f} (goal >= 0.50)"
        )


if __name__ == "__main__":
    main()
