"""What every format hands to the importer: validated requests (and recorded outcomes) in canonical columns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pyarrow as pa

# The canonical request fields a staged trace may hold (what the warehouse's `requests` view shows, less trace_id;
# arrival as nanoseconds after the first arrival, whose absolute time is `StagedTrace.first_arrival_ns`).
REQUEST_FIELDS = (
    "request_id",
    "seq",
    "source_row",
    "arrival_ns",
    "input_tokens",
    "output_tokens",
    "task",
    "data_class",
    "residency",
    "tenant",
    "latency_slo_ms",
    "category",
    "prompt",
    "reference",
    "prefix_hash_ids",
)
OUTCOME_FIELDS = (
    "request_id",
    "model",
    "correct",
    "score",
    "confidence",
    "input_tokens",
    "output_tokens",
    "latency_ms",
    "cost_usd",
    "response",
    "judge",
    "source",
    "source_detail",
)


@dataclass(frozen=True)
class ImportOptions:
    """How to read a file: the column mapping and extra-column policy of the generic format, arrival units."""

    mapping: dict[str, str] = field(default_factory=dict)
    ignore: tuple[str, ...] = ()
    arrival_unit: Literal["auto", "timestamp", "s", "ms"] = "auto"
    keep_text: bool = False  # gateway/observability logs: store prompt and response text (personal data)


@dataclass(frozen=True)
class StagedTrace:
    """A file's content after validation: requests (in file order, numbered by arrival in `seq`), optional
    recorded outcomes."""

    kind: Literal["workload", "outcomes"]
    requests: pa.Table
    outcomes: pa.Table | None
    report: Mapping[str, object]
    first_arrival_ns: int | None = None  # ns since the epoch, where the source records absolute times
    recorded: pa.Table | None = None  # per request what a gateway log recorded (`gateway.py`), by `seq`


def parse_mapping(pairs: Sequence[str]) -> dict[str, str]:
    """`--map` values ("arrival=ts,input_tokens=prompt_len", repeatable) as {field: column}."""
    mapping: dict[str, str] = {}
    for chunk in pairs:
        for pair in filter(None, (p.strip() for p in chunk.split(","))):
            field_name, sep, column = pair.partition("=")
            if not sep or not field_name.strip() or not column.strip():
                raise ValueError(f"--map expects FIELD=COLUMN pairs, got '{pair}'")
            mapping[field_name.strip()] = column.strip()
    return mapping


def one_chunk(column: pa.ChunkedArray) -> pa.Array:
    """A column as one Arrow array. Numbers are joined with numpy, whose freed memory the process reuses
    (`slmlab.allocator`), rather than Arrow's allocator, which returns it to the system after each import."""
    if column.num_chunks == 1:
        return column.chunk(0)
    if column.num_chunks == 0 or column.null_count or not pa.types.is_primitive(column.type):
        return column.combine_chunks()
    return pa.array(np.concatenate([chunk.to_numpy() for chunk in column.chunks]), type=column.type)
