"""Reports a buyer can send: a projection and a claim check as one self-contained HTML file (summary first, charts
as inline SVG, formatted tables, a few printed pages), a PDF of it printed by Chromium, and CSV / Parquet tables.

Every figure goes through `simulators.formatting`, so a report never shows a raw Python value.
"""

from __future__ import annotations

import csv
import html
import io
import os
import shutil
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

from app import svg
from simulators import formatting as fmt
from simulators.claims import Claim, Verdict
from simulators.formatting import Column, table
from simulators.projection import CostAssumptions, Projection
from simulators.provenance import figure_sources, run_lines
from simulators.results import BASELINE, focus_policy, summaries_from_dicts
from simulators.tables import REFERENCE_SUFFIX, projection_table

CHROMIUM = Path(os.environ.get("SLMLAB_CHROMIUM", "/usr/bin/chromium"))
_STYLE = """body{font-family:sans-serif;margin:2em auto;max-width:900px;color:#222;line-height:1.4}
h1{font-size:1.5em;margin-bottom:.2em} h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
.answer{font-size:1.15em;padding:.8em 1em;border-radius:6px;margin:1em 0}
.good{background:#e8f5e9;border:1px solid #66bb6a} .bad{background:#ffebee;border:1px solid #e57373}
.open{background:#fff8e1;border:1px solid #ffb74d}
table{border-collapse:collapse;font-size:13px;margin:.5em 0} td,th{border:1px solid #ccc;padding:3px 8px}
th{background:#f3f3f3;text-align:left} td.r{text-align:right} td.l{text-align:left}
.note{color:#555;font-size:12px} svg{max-width:100%;height:auto}
@media print{body{margin:0;max-width:none} h2{break-after:avoid} svg,table{break-inside:avoid}}"""


def _document(title: str, body: str) -> str:
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f'<style>{_STYLE}</style></head><body>{body}<p class="note">Written by slmlab '
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC.</p></body></html>"
    )


def _list(items: list[str]) -> str:
    return "<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in items) + "</ul>"


# --- projection -------------------------------------------------------------------------------------------------


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


def projection_focus(projection: Projection, run: dict[str, object]) -> str | None:
    """The policy the projection puts beside frontier-only: the focus rule by total cost over the horizon; without
    a policy that answers in-house, the cheapest other deployable policy; None when only the baseline is left."""
    summaries = summaries_from_dicts(run["policies"])  # type: ignore[arg-type]
    totals = {p.policy: float(p.cumulative[-1]) for p in projection.policies}
    focus = focus_policy({k: v for k, v in summaries.items() if k in totals}, totals).policy
    others = [k for k in totals if k in summaries and not summaries[k].is_reference and not summaries[k].is_baseline]
    return focus or (min(others, key=totals.__getitem__) if others else None)


def projection_html(
    projection: Projection,
    run: dict[str, object],
    *,
    uncertainty: dict[str, object] | None = None,
    sensitivity: dict[str, object] | None = None,
) -> str:
    """The projection report: the answer and key figures, what was assumed, charts, the per-policy table, sources."""
    a, months = projection.assumptions, projection.assumptions.months
    base = projection.get(BASELINE)
    focus = (sensitivity or {}).get("policy") or projection_focus(projection, run)
    if focus:
        chosen = projection.get(str(focus))
        saving = float(base.cumulative[-1] - chosen.cumulative[-1])
        good = saving > 0
        answer = (
            f"Over {months} months, <b>{html.escape(str(focus))}</b> costs {fmt.money(chosen.cumulative[-1])} "
            f"against {fmt.money(base.cumulative[-1])} for frontier-only: "
            + (f"{fmt.money(saving)} saved" if good else f"{fmt.money(-saving)} more")
            + (
                f", breaking even in month {chosen.break_even_month}."
                if chosen.break_even_month
                else ", never breaking even on this horizon."
            )
        )
    else:
        good, answer = False, "No policy in this replay uses a local model: only frontier-only is projected."
    changed = [f.name for f in fields_of(a) if getattr(a, f.name) != f.default]
    assumed = [
        f"{months} months; traffic grows {a.growth_per_month:.1%} a month; API prices change "
        f"{float(projection.price_trend.get('api_price_change_per_year', a.api_price_change_per_year)):+.0%} a "
        f"year ({projection.price_trend.get('method', 'assumption')}).",
        f"A local server costs {fmt.money(a.server_capex_usd)} over {a.server_lifetime_months:g} months, "
        f"{fmt.money(a.ops_usd_per_server_month)} a month to run, {a.server_watts_busy:g} W busy at "
        f"{fmt.money(a.tariff_usd_per_kwh)} per kWh; "
        + (
            f"{a.servers} servers, fixed."
            if a.servers
            else f"servers bought as traffic needs them at {a.target_utilisation:.0%} utilisation."
        ),
        (
            "Changed from the defaults: " + ", ".join(changed) + "."
            if changed
            else "Every assumption is at its default."
        ),
    ]
    summaries = summaries_from_dicts(run["policies"])  # type: ignore[arg-type]
    if focus and str(focus) in summaries:
        kinds = figure_sources(run, summaries[str(focus)])
        assumed.append(
            f"The replay's figures for {focus}: "
            + ", ".join(f"{kinds[k].figure} {kinds[k].kind}" for k in ("cost", "quality", "latency", "residency"))
            + " (measured > recorded > catalogue > assumption; each figure carries its weakest source)."
        )
    chart = svg.line_chart(
        f"Cumulative cost per policy over {months} months",
        [
            (p.policy, list(range(1, months + 1)), p.cumulative.tolist())
            for p in projection.policies
            if not _is_reference(run, p.policy)
        ],
        "month",
        lambda v: fmt.money(v, cents=False),
        bands={
            name: (band["cumulative_p5"], band["cumulative_p95"])  # type: ignore[index]
            for name, band in ((uncertainty or {}).get("policies") or {}).items()  # type: ignore[union-attr]
            if band and name in (BASELINE, focus)
        },
    )
    tornado = ""
    if sensitivity and sensitivity.get("bars"):
        bars = sensitivity["bars"]
        tornado = svg.bar_chart(
            f"What moves the saving of {sensitivity['policy']} over {months} months",
            [(str(b["assumption"]).replace("_", " "), float(b["saving_low"]), float(b["saving_high"])) for b in bars],
            float(bars[0]["base_saving"]),  # type: ignore[index]
            lambda v: fmt.money(v, cents=False),
            "assumption at the low end of its range",
            "at the high end",
        )
    yearly = _yearly(projection, run)
    assumptions_table = table(
        [
            {
                "assumption": f.name.replace("_", " "),
                "value": getattr(a, f.name),
                "source": "set by you" if getattr(a, f.name) != f.default else "default",
                "help": f.metadata.get("help", ""),
            }
            for f in fields_of(a)
        ],
        [
            Column("assumption", "assumption"),
            Column("value", "value", "number"),
            Column("source", "source"),
            Column("help", "meaning"),
        ],
    )
    body = (
        f"<h1>Cost projection: {html.escape(str(run['trace']))}, {months} months</h1>"
        f'<div class="answer {"good" if good else "bad"}">{answer}</div>'
        f"<h2>Key figures</h2>{projection_table(projection, summaries, months, uncertainty).html()}"
        f"<h2>What was assumed</h2>{_list(assumed)}"
        f"<h2>Cost over time</h2>{chart}{tornado}"
        f"<h2>Cost per year</h2>{yearly}"
        f"<h2>Sources</h2>{_list(run_lines(run) + [_uncertainty_line(uncertainty)])}"
        f"<h2>Every assumption</h2>{assumptions_table.html()}"
        '<p class="note">The month-by-month table is in the CSV / Parquet download.</p>'
    )
    return _document(f"slmlab projection: {run['trace']}", body)


def fields_of(a: CostAssumptions):  # type: ignore[no-untyped-def]
    from dataclasses import fields

    return fields(a)


def _is_reference(run: dict[str, object], policy: str) -> bool:
    s = summaries_from_dicts(run["policies"]).get(policy)  # type: ignore[arg-type]
    return bool(s and s.is_reference)


def _yearly(projection: Projection, run: dict[str, object]) -> str:
    """Total cost per policy and year (a few rows instead of one per month)."""
    years = (projection.assumptions.months + 11) // 12
    rows = []
    for p in projection.policies:
        row: dict[str, object] = {"policy": p.policy + (REFERENCE_SUFFIX if _is_reference(run, p.policy) else "")}
        for y in range(years):
            row[f"y{y + 1}"] = float(p.monthly[12 * y : 12 * (y + 1)].sum())
        rows.append(row)
    return table(
        rows, [Column("policy", "policy")] + [Column(f"y{y + 1}", f"year {y + 1}", "money") for y in range(years)]
    ).html()


def _uncertainty_line(uncertainty: dict[str, object] | None) -> str:
    if not uncertainty:
        return "No Monte Carlo draws: the figures are the projection at the values shown."
    return (
        f"Uncertainty: {uncertainty['draws']} Monte Carlo draws (seed {uncertainty['seed']}), every ranged "
        "assumption drawn from a triangular distribution over its range peaking at the value used; shaded bands: "
        f"p5-p95 of frontier-only and the policy in focus. Replay resampled: {uncertainty.get('bootstrap')}."
    )


def write_html(
    projection: Projection,
    run: dict[str, object],
    path: str | Path,
    *,
    uncertainty: dict[str, object] | None = None,
    sensitivity: dict[str, object] | None = None,
) -> Path:
    """The projection report as one HTML file that opens anywhere, offline."""
    Path(path).write_text(
        projection_html(projection, run, uncertainty=uncertainty, sensitivity=sensitivity), encoding="utf-8"
    )
    return Path(path)


# --- claim ------------------------------------------------------------------------------------------------------

MARGIN_COLUMNS = (
    Column("criterion", "criterion"),
    Column("claimed", "claimed"),
    Column("figure", "closest candidate"),
    Column("margin", "margin"),
    Column("result", "result"),
)


def margin_rows(verdict: Verdict) -> list[dict[str, object]]:
    """One row per criterion of the claim: claimed, the closest candidate's figure, the margin in the claim's units."""
    return [
        {"criterion": m.criterion, "claimed": m.claimed, "figure": m.figure, "margin": m.text, "result": m.result}
        for m in verdict.margins
    ]


def claim_html(claim: Claim, verdict: Verdict, run: dict[str, object]) -> str:
    """The claim report: verdict and key figures first, then the candidates, the reasons, sources and assumptions."""
    style = {"supported": "good", "not supported": "bad"}.get(verdict.verdict, "open")
    c = verdict.closest
    key = (
        ""
        if c is None
        else f"<p>Closest candidate: <b>{html.escape(c.setting)}</b>: saves {fmt.share(c.cost_saving)} against "
        f"frontier-only, quality {fmt.share(c.quality_share_of_frontier)} of frontier-only's, p95 "
        f"{fmt.duration(c.p95_s)}.</p>"
    )
    chart = svg.scatter_chart(
        "Every candidate setting against the claim (green: meets every part that can be tested)",
        [(e.cost_saving, e.quality_share_of_frontier, e.meets_testable) for e in verdict.evaluated],
        "saving against frontier-only",
        "quality / frontier-only's",
        lambda v: fmt.share(v, 0),
        lambda v: fmt.share(v, 0),
        None if claim.cheaper_pct is None else claim.cheaper_pct / 100,
        None if claim.quality_pct is None else claim.quality_pct / 100,
        None if c is None else (c.cost_saving, c.quality_share_of_frontier),
    )
    candidates = table(
        [
            {
                "setting": e.setting,
                "saving": e.cost_saving,
                "quality": e.quality_share_of_frontier,
                "p95": e.p95_s,
                "meets": e.meets_testable,
            }
            for e in verdict.evaluated[:15]
        ],
        [
            Column("setting", "setting"),
            Column("saving", "saving", "share"),
            Column("quality", "quality / frontier-only's", "share"),
            Column("p95", "p95", "duration_s"),
            Column("meets", "meets the testable parts"),
        ],
    )
    body = (
        f"<h1>Vendor claim check: {html.escape(str(run['trace']))}</h1>"
        f'<div class="answer {style}"><b>{html.escape(verdict.verdict.upper())}</b>: '
        f"{html.escape(verdict.claim)}.</div>{key}"
        f"<h2>Key figures</h2>{table(margin_rows(verdict), MARGIN_COLUMNS).html()}"
        f"<h2>Why</h2>{_list(list(verdict.reasons))}"
        f'<h2>Candidates</h2>{chart}<p class="note">{verdict.candidates} settings scored (every deployable policy '
        "as configured and every sweep point; the oracle knows every answer and never counts). The 15 closest to "
        f"the claim:</p>{candidates.html()}"
        f"<h2>Sources and assumptions</h2>{_list(run_lines(run))}"
    )
    return _document(f"slmlab claim check: {run['trace']}", body)


def pdf_bytes(document: str, timeout_s: float = 60.0) -> bytes:
    """The HTML printed to PDF by headless Chromium (raises ValueError when it is not installed or fails)."""
    chromium = CHROMIUM if CHROMIUM.exists() else Path(shutil.which("chromium") or "/nonexistent")
    if not chromium.exists():
        raise ValueError(f"PDF needs Chromium at {CHROMIUM} (set SLMLAB_CHROMIUM); download the HTML report instead")
    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder) / "report.html", Path(folder) / "report.pdf"
        source.write_text(document, encoding="utf-8")
        result = subprocess.run(
            [
                str(chromium),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-pdf-header-footer",
                f"--print-to-pdf={target}",
                source.as_uri(),
            ],
            capture_output=True,
            timeout=timeout_s,
            check=False,
        )
        if not target.exists():
            raise ValueError(
                f"Chromium could not print the report (exit {result.returncode}): "
                + result.stderr.decode(errors="replace")[-300:]
            )
        return target.read_bytes()


def parquet_bytes(rows: list[dict[str, object]] | pa.Table) -> bytes:
    """A table (rows or an Arrow table) as Parquet bytes, for a download button."""
    import pyarrow.parquet as pq

    data = rows if isinstance(rows, pa.Table) else pa.Table.from_pylist(rows)
    sink = io.BytesIO()
    pq.write_table(data, sink)
    return sink.getvalue()
