"""The embedded default workload: the two Azure 2023 traces with the default enterprise label mix."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from slmlab.paths import DATASETS_DIR

if TYPE_CHECKING:
    from slmlab.traces.importer import ImportResult

DEFAULT_TRACES = (
    DATASETS_DIR / "traces" / "azure-llm-inference-2023-conv.csv",
    DATASETS_DIR / "traces" / "azure-llm-inference-2023-code.csv",
)


def ensure_default_workloads(db: str | Path | None = None) -> list[ImportResult]:
    """Import the shipped traces unless already present (idempotent by content hash)."""
    from slmlab.traces.importer import import_trace  # on use: the trace names alone need no importer

    return [import_trace(path, db=db) for path in DEFAULT_TRACES]


def ensure_default_trace(name: str, db: str | Path | None = None) -> None:
    """Import the embedded default traces when `name` is one of them, so a fresh database needs no setup step."""
    if name in {path.stem for path in DEFAULT_TRACES}:
        ensure_default_workloads(db)


def choose_trace(db: str | Path | None = None) -> tuple[str, str]:
    """The trace a command replays when none is named, and why: the newest trace imported by the user (the one
    just imported, usually), else the embedded default. Commands print the reason next to the name."""
    from slmlab import store
    from slmlab.paths import resolve_db_path

    defaults = [path.stem for path in DEFAULT_TRACES]
    if resolve_db_path(db).exists():
        with store.connect(db, read_only=True) as con:
            rows = con.execute(
                "SELECT name FROM traces WHERE kind IN ('workload', 'outcomes') AND name NOT IN (SELECT unnest(?)) "
                "ORDER BY trace_id DESC LIMIT 1",
                [defaults],
            ).fetchall()
        if rows:
            return str(rows[0][0]), "the newest imported trace (name one with --trace)"
    return defaults[0], "the embedded default (no other trace imported; name one with --trace)"
