"""What gateway and observability logs recorded per request (`store.m012_request_records`): written with the trace,
read back as arrays for the bill and latency checks in `simulators.recorded`."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from slmlab import store
from slmlab.paths import resolve_db_path


def insert_records(con: duckdb.DuckDBPyConnection, trace_id: int, records: pa.Table) -> None:
    """Write one trace's recorded figures inside the caller's transaction."""
    con.register("staged_records", records)
    try:
        con.execute(
            f"INSERT INTO {store.RECORDS_BASE} BY NAME SELECT {int(trace_id)} AS trace_id, * FROM staged_records"
        )
    finally:
        con.unregister("staged_records")


def _trace_id(con: duckdb.DuckDBPyConnection, name: str, db: str | Path | None) -> int:
    found = con.execute("SELECT trace_id FROM traces WHERE name = ?", [name]).fetchall()
    if not found:
        raise ValueError(f"no trace named '{name}' in {resolve_db_path(db)}")
    return int(found[0][0])


def load_records(db: str | Path | None, name: str) -> dict[str, np.ndarray]:
    """The recorded calls of one trace as arrays in arrival order (the fields of `simulators.recorded.RecordedCalls`);
    a clear error when the trace has none (it was not imported from a gateway or observability log)."""
    with store.connect(db, read_only=True) as con:
        trace_id = _trace_id(con, name, db)
        table = store.query_arrow(
            con,
            f"""
            SELECT r.request_id, c.model, r.input_tokens, r.output_tokens, c.cached_tokens, c.cost_usd, c.latency_ms,
                   c.ttft_ms, c.status
            FROM request_records c JOIN requests r ON r.trace_id = c.trace_id AND r.seq = c.seq
            WHERE c.trace_id = {trace_id} ORDER BY c.seq
        """,
        )
    if table.num_rows == 0:
        raise ValueError(
            f"trace '{name}' has no recorded calls: only LiteLLM, OTLP, Langfuse and OpenAI usage imports "
            "record model, cost and latency per request"
        )

    def numbers(column: str) -> np.ndarray:
        return table.column(column).to_numpy(zero_copy_only=False).astype(float)

    return {
        "request_id": np.array(table.column("request_id").to_pylist(), dtype=object),
        "model": np.array(table.column("model").to_pylist(), dtype=object),
        "input_tokens": numbers("input_tokens"),
        "output_tokens": numbers("output_tokens"),
        "cached_tokens": numbers("cached_tokens"),
        "cost_usd": numbers("cost_usd"),
        "latency_ms": numbers("latency_ms"),
        "ttft_ms": numbers("ttft_ms"),
        "status": np.array(table.column("status").to_pylist(), dtype=object),
    }


def recorded_summary(
    con: duckdb.DuckDBPyConnection, reports: dict[int, str] | None = None
) -> dict[int, dict[str, object]]:
    """Per trace with recorded calls: how many requests carry each recorded figure, total logged spend, models, and
    the assumptions the import made (reconstructed arrivals)."""
    rows = con.execute("""
        SELECT trace_id, count(*), count(model), count(provider), count(latency_ms), count(ttft_ms), count(cost_usd),
               sum(cost_usd), count(status), coalesce(sum(CASE WHEN status = 'failure' THEN 1 ELSE 0 END), 0),
               count(team), count(user_id), count(tags),
               list(DISTINCT model ORDER BY model) FILTER (WHERE model IS NOT NULL)
        FROM request_records GROUP BY trace_id
    """).fetchall()
    found = {}
    for trace_id, n, model, provider, latency, ttft, cost, spend, status, failed, team, user, tags, models in rows:
        counts = {
            "model": model,
            "provider": provider,
            "latency_ms": latency,
            "ttft_ms": ttft,
            "cost_usd": cost,
            "status": status,
            "team": team,
            "user": user,
            "tags": tags,
        }
        found[int(trace_id)] = {
            "source": "recorded",
            "requests": int(n),
            "fields": {name: int(c) for name, c in counts.items() if c},
            "logged_spend_usd": None if spend is None else round(float(spend), 8),
            "failed_requests": int(failed),
            "models": list(models or []),
            "assumptions": json.loads((reports or {}).get(trace_id) or "{}").get("assumptions") or [],
        }
    return found


def label_sources(labelling: dict[str, object], report: dict[str, object]) -> dict[str, str]:
    """Where each label of a trace came from, field by field: recorded in the log (and from which log field),
    synthetic (drawn from the label mix), or absent."""
    from slmlab.traces.labelling import LABEL_FIELDS

    log_fields = report.get("label_fields")
    log_fields = log_fields if isinstance(log_fields, dict) else {}  # {label field: log field}, parsed JSON
    recorded = labelling.get("recorded_fields")
    recorded = recorded if isinstance(recorded, list) else []
    synthetic = labelling.get("synthetic_fields")
    synthetic = synthetic if isinstance(synthetic, list) else []
    sources = {}
    for name in LABEL_FIELDS:
        if name in recorded:
            sources[name] = f"recorded ({log_fields[name]})" if name in log_fields else "recorded"
        elif name in synthetic:
            sources[name] = f"synthetic (mix '{labelling.get('mix_name')}', seed {labelling.get('seed')})"
        else:
            sources[name] = "none"
    for name in ("team", "user", "tags"):
        if name in log_fields:
            sources[name] = f"recorded ({log_fields[name]})"
    return sources
