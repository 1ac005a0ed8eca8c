"""Reports of a projection: a self-contained HTML file (charts, tables, sources, assumptions) and CSV tables."""

from __future__ import annotations

import csv
import html
from datetime import UTC, datetime
from pathlib import Path

import plotly.io as pio
import pyarrow as pa

from app import charts
from simulators.projection import Projection


def monthly_rows(projection: Projection) -> list[dict[str, object]]:
    """One row per (policy, month): the cost components, the month's total and the running total."""
    rows = []
    for p in projection.policies:
        for m in range(projection.assumptions.months):
            rows.append(
                {
                    "policy": p.policy,
                    "month": m + 1,
                    "api_usd": round(float(p.api[m]), 2),
                    "hardware_usd": round(float(p.hardware[m]), 2),
                    "energy_usd": round(float(p.energy[m]), 2),
                    "operations_usd": round(float(p.operations[m]), 2),
                    "servers": int(p.servers[m]),
                    "total_usd": round(float(p.monthly[m]), 2),
                    "cumulative_usd": round(float(p.cumulative[m]), 2),
                }
            )
    return rows


def write_csv(projection: Projection, path: str | Path) -> Path:
    """The monthly cost table as CSV."""
    rows = monthly_rows(projection)
    with Path(path).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return Path(path)


def _table(rows: list[dict[str, object]]) -> str:
    if not rows:
        return "<p>none</p>"
    head = "".join(f"<th>{html.escape(str(k))}</th>" for k in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row.values()) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def write_html(
    projection: Projection,
    run: dict[str, object],
    path: str | Path,
    *,
    uncertainty: dict[str, object] | None = None,
    sensitivity: dict[str, object] | None = None,
) -> Path:
    """One HTML file that opens anywhere, offline: plotly.js inlined once, every figure with its source."""
    figures = [charts.cumulative_cost(projection, uncertainty)]
    if sensitivity and sensitivity.get("bars"):
        figures.append(charts.tornado(sensitivity["bars"], str(sensitivity["policy"])))  # type: ignore[arg-type]
    parts = [pio.to_html(f, full_html=False, include_plotlyjs=(i == 0)) for i, f in enumerate(figures)]
    summary = [
        {
            "policy": p.policy,
            **{k: v for k, v in p.as_dict().items() if k not in ("monthly_usd", "cumulative_usd")},
            "quality": run["policies"][p.policy]["quality"],  # type: ignore[index]
            "residency_violations": run["policies"][p.policy]["residency_violations"],
        }  # type: ignore[index]
        for p in projection.policies
    ]
    a = projection.as_dict()
    sources = [
        f"Replay run {run['run_id']} of trace '{run['trace']}' (content hash {run.get('trace_hash')}), seed "
        f"{run['seed']}, prices from {run.get('catalogue_version')}.",
        "Quality per model from: " + "; ".join(f"{m}: {c}" for m, c in run["inputs"]["quality_source"].items()) + ".",  # type: ignore[index]
        f"API price trend: {a['price_trend']}.",
        "Every projection input below is an assumption (default or set by you); the replay's API cost, local load "
        "and request count are read from the stored run.",
    ]
    document = f"""<!doctype html><html><head><meta charset="utf-8"><title>slmlab projection</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1200px}} table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}} th{{background:#f3f3f3}}</style></head><body>
<h1>slmlab projection: {html.escape(str(run["trace"]))}, {a["months"]} months</h1>
<p>Written {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.</p>
<h2>Sources</h2><ul>{"".join(f"<li>{html.escape(s)}</li>" for s in sources)}</ul>
{"".join(parts)}
<h2>Per policy</h2>{_table(summary)}
<h2>Assumptions</h2>{
        _table(
            [{"assumption": k, "value": v, "source": a["assumption_sources"][k]} for k, v in a["assumptions"].items()]
        )
    }
<h2>Monthly costs</h2>{_table(monthly_rows(projection))}
</body></html>"""
    Path(path).write_text(document, encoding="utf-8")
    return Path(path)


def parquet_bytes(rows: list[dict[str, object]] | pa.Table) -> bytes:
    """A table (rows or an Arrow table) as Parquet bytes, for a download button."""
    import io

    import pyarrow.parquet as pq

    table = rows if isinstance(rows, pa.Table) else pa.Table.from_pylist(rows)
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()
