"""Partitioned Parquet datasets (hive layout, `day=2025-01-24/part-0.parquet`) named by a folder or a glob: imported as
one trace, read by DuckDB with the partition keys as columns."""

from __future__ import annotations

import glob
from pathlib import Path

from slmlab.traces.errors import TraceInputError
from slmlab.traces.reading import sql_quote

PARQUET = (".parquet", ".pq")


def parquet_dataset(source: str | Path) -> tuple[Path, list[Path]] | None:
    """(glob pattern, its files) when `source` is a glob of Parquet files or a folder with Parquet files in
    subfolders (hive layout); None for anything else: a single file and a flat folder keep their own meaning."""
    text = str(source)
    if any(ch in text for ch in "*?["):
        files = sorted(Path(p) for p in glob.glob(text, recursive=True) if p.lower().endswith(PARQUET))
        if not files:
            raise TraceInputError(text, "matches no Parquet files", hint="a glob such as 'logs/**/*.parquet'")
        return Path(text), files
    folder = Path(source)
    if not folder.is_dir():
        return None
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in PARQUET)
    if not any(p.parent != folder for p in files):
        return None  # a flat folder keeps its meaning: the folder import of outcome files
    return folder / "**" / "*.parquet", files


def parquet_source(path: Path) -> str:
    """read_parquet over a file or a dataset glob, hive partition keys as columns, files with differing columns
    united by name."""
    return f"read_parquet({sql_quote(str(path))}, hive_partitioning=true, union_by_name=true)"
