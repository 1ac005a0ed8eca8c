"""What a stored trace looks like: size, time span, arrival rate, token statistics, label mix and provenance."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import cast

import polars as pl

from slmlab import store
from slmlab.traces.records import label_sources, recorded_summary


@dataclass(frozen=True)
class TokenStats:
    """Distribution of one token column (None where the trace records no counts)."""

    mean: float | None
    p50: float | None
    p95: float | None
    max: int | None


@dataclass(frozen=True)
class TraceSummary:
    """One row of `slmlab traces`: every figure is computed from the stored requests."""

    trace_id: int
    name: str
    format: str
    kind: str
    source_file: str
    imported_at: str
    rows: int
    outcomes: int
    models: list[str]
    time_span_s: float | None
    arrival_rate_per_s: float | None
    input_tokens: TokenStats
    output_tokens: TokenStats
    task_mix: dict[str, float]
    data_class_mix: dict[str, float]
    residency_mix: dict[str, float]
    labelling: dict[str, object]
    label_sources: dict[str, str] = field(default_factory=dict)  # per label field: recorded, synthetic or none
    recorded: dict[str, object] | None = None  # gateway/observability logs: what the log recorded per request

    def as_dict(self) -> dict[str, object]:
        """JSON-ready."""
        return asdict(self)


_STATS_SQL = """
SELECT t.trace_id, t.name, t.format, t.kind, t.source_file, CAST(t.imported_at AS VARCHAR), t.row_count,
       (SELECT count(*) FROM outcomes o WHERE o.trace_id = t.trace_id),
       (SELECT list(DISTINCT o.model ORDER BY o.model) FROM outcomes o WHERE o.trace_id = t.trace_id),
       max(r.arrival_s) - min(r.arrival_s),
       avg(r.input_tokens), quantile_cont(r.input_tokens, 0.5), quantile_cont(r.input_tokens, 0.95),
       max(r.input_tokens),
       avg(r.output_tokens), quantile_cont(r.output_tokens, 0.5), quantile_cont(r.output_tokens, 0.95),
       max(r.output_tokens),
       t.labelling
FROM traces t LEFT JOIN requests r USING (trace_id)
{where}
GROUP BY ALL ORDER BY t.trace_id
"""


def _mix(con, column: str) -> dict[int, dict[str, float]]:
    rows = con.execute(
        f"SELECT trace_id, {column}, count(*) / sum(count(*)) OVER (PARTITION BY trace_id) FROM requests "
        f"WHERE {column} IS NOT NULL GROUP BY trace_id, {column} ORDER BY trace_id, 3 DESC, 2"
    ).fetchall()
    mixes: dict[int, dict[str, float]] = {}
    for trace_id, label, share in rows:
        mixes.setdefault(trace_id, {})[label] = round(float(share), 4)
    return mixes


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(float(value), 1)


def _stats(mean: float | None, p50: float | None, p95: float | None, top: float | None) -> TokenStats:
    return TokenStats(_rounded(mean), _rounded(p50), _rounded(p95), None if top is None else int(top))


def list_traces(db: str | Path | None = None, name: str | None = None) -> list[TraceSummary]:
    """Summaries of all stored traces (or the one named)."""
    with store.connect(db, read_only=True) as con:
        where = "WHERE t.name = ?" if name else ""
        rows = con.execute(_STATS_SQL.format(where=where), [name] if name else []).fetchall()
        mixes = {column: _mix(con, column) for column in ("task", "data_class", "residency")}
        reports = dict(con.execute("SELECT trace_id, import_report FROM traces").fetchall())
        recorded = recorded_summary(con, reports)
    summaries = []
    for row in rows:
        trace_id, span = row[0], row[9]
        summaries.append(
            TraceSummary(
                trace_id=trace_id,
                name=row[1],
                format=row[2],
                kind=row[3],
                source_file=row[4],
                imported_at=row[5],
                rows=int(row[6]),
                outcomes=int(row[7]),
                models=list(row[8] or []),
                time_span_s=None if span is None else round(float(span), 3),
                arrival_rate_per_s=round(row[6] / span, 4) if span else None,
                input_tokens=_stats(*row[10:14]),
                output_tokens=_stats(*row[14:18]),
                task_mix=mixes["task"].get(trace_id, {}),
                data_class_mix=mixes["data_class"].get(trace_id, {}),
                residency_mix=mixes["residency"].get(trace_id, {}),
                labelling=json.loads(row[18]),
                label_sources=label_sources(json.loads(row[18]), json.loads(reports.get(trace_id) or "{}")),
                recorded=recorded.get(trace_id),
            )
        )
    return summaries


def requests_frame(db: str | Path | None, trace_id: int) -> pl.DataFrame:
    """The columns the workload charts need, in arrival order."""
    with store.connect(db, read_only=True) as con:
        table = store.query_arrow(
            con,
            "SELECT seq, arrival_s, arrived_at, input_tokens, output_tokens, task, data_class, residency, tenant, "
            f"latency_slo_ms, category FROM requests WHERE trace_id = {int(trace_id)} ORDER BY seq",
        )
    return cast(pl.DataFrame, pl.from_arrow(table))  # a Table always converts to a DataFrame (no overload says so)


def labelling_note(labelling: dict[str, object]) -> str:
    """One sentence on where the labels came from, shown next to every label chart."""
    synthetic = labelling.get("synthetic_fields")
    synthetic = synthetic if isinstance(synthetic, list) else []  # parsed JSON: a list of field names
    recorded = labelling.get("recorded_fields")
    recorded = recorded if isinstance(recorded, list) else []
    parts = []
    if synthetic:
        parts.append(
            f"{', '.join(synthetic)} are SYNTHETIC: drawn by slmlab's labeller from mix "
            f"'{labelling.get('mix_name')}' with seed {labelling.get('seed')}"
        )
    if recorded:
        parts.append(f"{', '.join(recorded)} are recorded in the source file")
    return "; ".join(parts) + "." if parts else "No task, data-class or residency labels."
