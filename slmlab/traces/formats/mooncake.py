"""Mooncake / FAST'25 JSONL: `timestamp` (ms from trace start), `input_length`, `output_length`, `hash_ids`."""

from __future__ import annotations

from pathlib import Path

import duckdb

from slmlab.traces.reading import FileSample
from slmlab.traces.staged import ImportOptions, StagedTrace
from slmlab.traces.workload import stage_workload

FIELDS = {
    "arrival": "timestamp",
    "input_tokens": "input_length",
    "output_tokens": "output_length",
    "prefix_hash_ids": "hash_ids",
}


class MooncakeFormat:
    """Arrival offsets in ms plus the prompt-prefix block ids that show KV-cache sharing."""

    name = "mooncake"
    summary = "Mooncake / FAST'25 JSONL: timestamp (ms), input_length, output_length, hash_ids"

    def matches(self, sample: FileSample) -> bool:
        return sample.container == "jsonl" and {"timestamp", "input_length", "output_length"} <= set(sample.columns)

    def stage(self, con: duckdb.DuckDBPyConnection, path: Path, options: ImportOptions) -> StagedTrace:
        def mapping_for(keys: tuple[str, ...]) -> dict[str, str]:
            return {field: key for field, key in FIELDS.items() if field != "prefix_hash_ids" or key in keys}

        return stage_workload(
            con,
            path,
            mapping_for,
            arrival_unit="ms",
            hint="a Mooncake record has the keys timestamp, input_length, output_length and hash_ids",
        )


FORMAT = MooncakeFormat()
