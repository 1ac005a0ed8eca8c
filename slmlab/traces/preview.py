"""What an import would do with a file, before it runs: the detected format and, for gateway and observability logs,
which log field each slmlab field is read from (the Workloads page shows it under the upload)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from slmlab.traces.errors import on_upload
from slmlab.traces.formats import FORMATS
from slmlab.traces.gateway import PRIVATE_TEXT
from slmlab.traces.importer import detect_format
from slmlab.traces.reading import sample
from slmlab.traces.staged import ImportOptions


@dataclass(frozen=True)
class ImportPreview:
    """The format an import would use and where it finds each field."""

    format: str
    summary: str
    columns: tuple[str, ...]
    mapping: dict[str, str] = field(default_factory=dict)  # slmlab field -> the log field it is read from
    assumptions: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


def preview_file(path: Path, fmt: str = "auto", options: ImportOptions | None = None) -> ImportPreview:
    """Detect (or take) the format and, for a log format, resolve its field mapping without importing anything."""
    options = options or ImportOptions()
    chosen = detect_format(path) if fmt == "auto" else FORMATS.get(fmt)
    if chosen is None:
        raise ValueError(f"unknown format '{fmt}'; choose auto or one of {', '.join(FORMATS)}")
    peek = sample(path)
    if not hasattr(chosen, "call_fields"):
        return ImportPreview(chosen.name, chosen.summary, peek.columns)
    con = duckdb.connect()
    try:
        fields = chosen.call_fields(con, path, options)
    finally:
        con.close()
    notes = []
    if not options.keep_text and any(name in fields.exprs for name in PRIVATE_TEXT):
        notes.append("prompt and response text is in the log but will not be stored (ask to keep text to store it)")
    mapping = {
        name: fields.names.get(name, name) for name in fields.exprs if options.keep_text or name not in PRIVATE_TEXT
    }
    return ImportPreview(chosen.name, chosen.summary, peek.columns, mapping, tuple(fields.assumptions), tuple(notes))


def preview_upload(
    filename: str, content: bytes, fmt: str = "auto", options: ImportOptions | None = None
) -> ImportPreview:
    """`preview_file` for bytes received by the dashboard; errors name the uploaded file."""
    return on_upload(filename, content, lambda path: preview_file(path, fmt, options))
