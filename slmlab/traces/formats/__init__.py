"""Registry of trace formats: one module per format, one line here; detection tries them in this order."""

from __future__ import annotations

from slmlab.traces.formats import (
    azure,
    generic,
    langfuse,
    litellm_spend,
    mooncake,
    mtbench,
    openai_usage,
    otlp_json,
    routellm,
    routerbench,
    routerbench_long,
)
from slmlab.traces.formats.base import TraceFormat

FORMATS: dict[str, TraceFormat] = {
    fmt.name: fmt
    for fmt in (
        azure.FORMAT,
        mooncake.FORMAT,
        routerbench.FORMAT,
        routerbench_long.FORMAT,
        routellm.FORMAT,
        mtbench.FORMAT,
        litellm_spend.FORMAT,
        otlp_json.FORMAT,
        langfuse.FORMAT,
        openai_usage.FORMAT,
        generic.FORMAT,
    )
}
