"""Azure LLM inference trace 2023 (Splitwise, ISCA'24): `TIMESTAMP,ContextTokens,GeneratedTokens`."""

from __future__ import annotations

from pathlib import Path

import duckdb

from slmlab.traces.reading import FileSample
from slmlab.traces.staged import ImportOptions, StagedTrace
from slmlab.traces.workload import stage_workload

COLUMNS = {"arrival": "TIMESTAMP", "input_tokens": "ContextTokens", "output_tokens": "GeneratedTokens"}


class AzureFormat:
    """Production arrivals with context and generated token counts; timestamps carry 100 ns digits."""

    name = "azure"
    summary = "Azure LLM inference trace CSV: TIMESTAMP,ContextTokens,GeneratedTokens"

    def matches(self, sample: FileSample) -> bool:
        return sample.container == "csv" and {"TIMESTAMP", "ContextTokens"} <= set(sample.columns)

    def stage(self, con: duckdb.DuckDBPyConnection, path: Path, options: ImportOptions) -> StagedTrace:
        return stage_workload(
            con,
            path,
            lambda _columns: COLUMNS,
            arrival_unit="timestamp",
            hint="an Azure trace has exactly the columns TIMESTAMP,ContextTokens,GeneratedTokens",
        )


FORMAT = AzureFormat()
