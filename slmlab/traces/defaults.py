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
