"""Recorded workloads: formats, validation, enterprise labelling and the import into the warehouse."""

from simulators.traces.errors import TraceInputError
from simulators.traces.importer import ImportResult, detect_format, import_trace
from simulators.traces.summary import TraceSummary, list_traces

__all__ = ["ImportResult", "TraceInputError", "TraceSummary", "detect_format", "import_trace", "list_traces"]
