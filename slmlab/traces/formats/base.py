"""The contract every trace format meets: recognise a file, then stage it as canonical requests/outcomes."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, TypeGuard

import duckdb

from slmlab.traces.gateway import CallFields
from slmlab.traces.reading import FileSample
from slmlab.traces.staged import ImportOptions, StagedTrace


class TraceFormat(Protocol):
    """A trace or outcome file layout; one file per format under `formats/`, listed in `formats/__init__.py`."""

    name: str
    summary: str

    def matches(self, sample: FileSample) -> bool:
        """True when the header (or first record) is unmistakably this format."""
        ...

    def stage(self, con: duckdb.DuckDBPyConnection, path: Path, options: ImportOptions) -> StagedTrace:
        """Read, validate and convert the file; raise TraceInputError on anything wrong."""
        ...


class LogFormat(TraceFormat, Protocol):
    """A gateway or observability log format: its call fields can be resolved alone (preview, streamed import)."""

    def call_fields(self, con: duckdb.DuckDBPyConnection, path: Path, options: ImportOptions) -> CallFields:
        """Where this log keeps each call field, as SQL over the file."""
        ...


def is_log_format(fmt: TraceFormat) -> TypeGuard[LogFormat]:
    """True for formats that read gateway logs (they resolve call fields), so they can be streamed."""
    return hasattr(fmt, "call_fields")
