"""Recorded workloads: formats, validation, enterprise labelling and the import into the warehouse.

The names below load on first use, so that reading `slmlab.traces.defaults` (the CLI's help, the dashboard's
launcher) does not pull in polars, numpy and DuckDB before they are needed."""

from __future__ import annotations

import importlib

_EXPORTS = {
    "TraceInputError": "errors",
    "ImportResult": "importer",
    "detect_format": "importer",
    "import_trace": "importer",
    "TraceSummary": "summary",
    "list_traces": "summary",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> object:
    """Import the submodule that defines `name` when it is first asked for."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'slmlab.traces' has no attribute '{name}'")
    return getattr(importlib.import_module(f"slmlab.traces.{_EXPORTS[name]}"), name)
