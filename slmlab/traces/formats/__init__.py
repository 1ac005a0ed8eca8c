"""Registry of trace formats: one module per format, one line here; detection tries them in this order."""

from __future__ import annotations

from slmlab.traces.formats import azure, generic, mooncake, mtbench, routellm, routerbench
from slmlab.traces.formats.base import TraceFormat

FORMATS: dict[str, TraceFormat] = {
    fmt.name: fmt
    for fmt in (
        azure.FORMAT,
        mooncake.FORMAT,
        routerbench.FORMAT,
        routellm.FORMAT,
        mtbench.FORMAT,
        generic.FORMAT,
    )
}
