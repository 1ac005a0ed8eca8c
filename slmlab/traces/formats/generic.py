"""Any CSV / Parquet / JSONL workload, with `--map FIELD=COLUMN` for columns not named like slmlab's fields."""

from __future__ import annotations

from pathlib import Path

import duckdb

from slmlab.traces.reading import FileSample
from slmlab.traces.staged import ImportOptions, StagedTrace
from slmlab.traces.workload import REQUIRED_FIELDS, WORKLOAD_FIELDS, stage_workload


class GenericFormat:
    """Columns already named like slmlab's fields map themselves; `--map` names the rest."""

    name = "generic"
    summary = (
        "generic CSV/Parquet/JSONL: columns named "
        + ", ".join(WORKLOAD_FIELDS)
        + " or mapped with --map FIELD=COLUMN; arrival is a date-time or seconds (--arrival-unit ms for ms)"
    )

    def matches(self, sample: FileSample) -> bool:
        return set(REQUIRED_FIELDS) <= set(sample.columns)

    def stage(self, con: duckdb.DuckDBPyConnection, path: Path, options: ImportOptions) -> StagedTrace:
        def mapping_for(columns: tuple[str, ...]) -> dict[str, str]:
            return {**{field: field for field in WORKLOAD_FIELDS if field in columns}, **options.mapping}

        return stage_workload(
            con,
            path,
            mapping_for,
            arrival_unit=options.arrival_unit,
            ignore=options.ignore,
            hint="map file columns with --map FIELD=COLUMN and skip unwanted ones with --ignore COLUMN",
        )


FORMAT = GenericFormat()
