"""The contract every trace format meets: recognise a file, then stage it as canonical requests/outcomes."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import duckdb

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
