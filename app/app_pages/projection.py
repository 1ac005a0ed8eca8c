"""Projection: cost per month over a horizon for every policy of a stored replay, break-even against frontier-only,
what moves the saving, how sure it is, named scenarios and reports."""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from dataclasses import Field, fields
from pathlib import Path

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from app import charts, state
from app.report import (
    monthly_rows,
    parquet_bytes,
    pdf_bytes,
    projection_focus,
    projection_html,
    write_csv,
    write_html,
)
from app.widgets import column_help, replay_choice, resolve_replay
from app.workflows import compare_scenarios, monte_carlo, save_scenario
from simulators import formatting as fmt
from simulators.projection import CostAssumptions, Projection, basis_from_run, project
from simulators.results import summaries_from_dicts
from simulators.tables import projection_table, scenario_table
from simulators.uncertainty import tornado

db = state.database_path()
st.title("Projection")
st.caption(
    "Turns one stored replay (an hour or a file of your traffic) into monthly costs per policy over a horizon: "
    "API spend scaled to a month, and for policies that use a local model the servers that traffic needs, "
    "their amortised price, energy and operations. Every input beyond the replay is a named assumption with "
    "its default; the replay's API cost, local load and request count are read back from the database "
    f"`{db}`."
)

TRAFFIC_AND_PRICES = (
    "months",
    "traffic_hours_per_month",
    "monthly_requests",
    "growth_per_month",
    "api_price_change_per_year",
)
# widget bounds only (the library checks what it must): below these an input has no meaning
MINIMUM = {"months": 1, "server_lifetime_months": 1.0, "growth_per_month": -0.99, "api_price_change_per_year": -0.99}
STEP = {"monthly_requests": 10_000.0}
BASELINE = "frontier-only"


def _step(f: Field) -> float:
    """A round step for a float input: a tenth of its range, else of its default."""
    low, high = f.metadata.get("low"), f.metadata.get("high")
    if f.name in STEP:
        return STEP[f.name]
    span = (high - low) / 10 if low is not None else abs(float(f.default)) / 10  # type: ignore[arg-type]
    return 10.0 ** math.floor(math.log10(span)) if span > 0 else 1.0


def _assumption_input(container: DeltaGenerator, f: Field, disabled: bool = False) -> int | float:
    """One number input generated from a CostAssumptions field: its default, help text and range."""
    low, high, default = f.metadata.get("low"), f.metadata.get("high"), float(f.default)  # type: ignore[arg-type]
    help_text = (
        f"{f.metadata['help']}. Default {default:g}"
        + (f"; the sensitivity and Monte Carlo analyses vary it from {low:g} to {high:g}" if low is not None else "")
        + f". CLI: `slmlab project --set {f.name}=...`"
    )
    label, key, minimum = f.name.replace("_", " "), f"assume_{f.name}", MINIMUM.get(f.name, 0)
    if f.type in (int, "int"):
        return int(
            container.number_input(
                label, min_value=int(minimum), value=int(default), step=1, help=help_text, key=key, disabled=disabled
            )
        )
    return float(
        container.number_input(
            label,
            min_value=float(minimum),
            value=default,
            step=_step(f),
            format="%g",
            help=help_text,
            key=key,
            disabled=disabled,
        )
    )


def _assumption_inputs() -> tuple[dict[str, object], dict[str, object] | None, int, int]:
    """Every CostAssumptions field as an input (grouped), the price-trend toggle, and the uncertainty settings."""
    values: dict[str, object] = {}
    trend = None
    by_name = {f.name: f for f in fields(CostAssumptions)}
    with st.expander("Assumptions (each has a default; hover for what it means and its range)", expanded=True):
        st.markdown("**Traffic & prices**")
        columns = st.columns(len(TRAFFIC_AND_PRICES))
        fit = st.toggle(
            "Fit the API price trend from history",
            key="fit_price_trend",
            help="fit the API price change per year from the shipped price history (simonw/llm-prices) "
            "instead of assuming it; when it cannot be fitted the assumption is kept",
        )
        if fit:
            trend = state.price_trend()
            if trend.get("method") == "fitted":
                change = float(trend["api_price_change_per_year"])  # type: ignore[arg-type]
                st.caption(
                    f"Fitted: API prices {change:+.1%} a year, the median "
                    f"over {trend.get('models_used')} models of the shipped price history; it replaces "
                    "the assumption."
                )
            else:
                st.warning(
                    f"The price trend cannot be fitted: {trend.get('reason')}. The assumed "
                    "api_price_change_per_year is kept."
                )
        fitted = bool(trend and trend.get("method") == "fitted")
        for column, name in zip(columns, TRAFFIC_AND_PRICES):
            values[name] = _assumption_input(
                column, by_name[name], disabled=fitted and name == "api_price_change_per_year"
            )
        if fitted:
            values["api_price_change_per_year"] = float(trend["api_price_change_per_year"])  # type: ignore[index, arg-type]
        st.markdown("**Hardware & energy** (only policies that use a local model own servers)")
        rest = [f for f in fields(CostAssumptions) if f.name not in TRAFFIC_AND_PRICES]
        columns = st.columns(4)
        for i, f in enumerate(rest):
            values[f.name] = _assumption_input(columns[i % 4], f)
        st.markdown("**Uncertainty**")
        left, right, _ = st.columns([1, 1, 2])
        draws = int(
            left.number_input(
                "Monte Carlo draws (0 = off)",
                min_value=0,
                value=0,
                step=100,
                key="draws",
                help="every ranged assumption drawn from a triangular distribution over its range, peaking at the "
                "value set above, with a block bootstrap of the replayed trace; 500 draws take a second or less",
            )
        )
        seed = int(
            right.number_input(
                "Seed",
                min_value=0,
                value=0,
                step=1,
                key="uncertainty_seed",
                help="seed of the Monte Carlo and bootstrap draws",
            )
        )
    return values, trend, draws, seed


def _sources(projection: Projection, run: dict, trend: dict | None, uncertainty: dict | None) -> str:
    """Where every number on this page comes from."""
    a = projection.as_dict()
    basis, assumed = projection.basis, projection.assumptions
    inputs = run["inputs"]
    span = f" over {basis.span_s / 60:,.0f} minutes of recorded arrivals" if basis.span_s else " (no arrival times)"
    scale = (
        f"{assumed.monthly_requests:,.0f} requests a month / {basis.requests:,} replayed"
        if assumed.monthly_requests
        else f"the trace's request rate x {assumed.traffic_hours_per_month:g} traffic hours a month"
    )
    sources = {
        k: "set by you" if str(v).endswith("(set by the user)") else "default"
        for k, v in a["assumption_sources"].items()
    }  # type: ignore[union-attr]
    if trend and trend.get("method") == "fitted":
        sources["api_price_change_per_year"] = (
            f"fitted from the shipped price history, {trend.get('models_used')} models"
        )
    price = (
        f"fitted, {float(trend['api_price_change_per_year']):+.1%} a year"
        if trend and trend.get("method") == "fitted"
        else f"assumed, {assumed.api_price_change_per_year:+.1%} a year"
        + (f" (not fitted: {trend.get('reason')})" if trend else "")
    )
    lines = [
        f"**Replay**: run {basis.run_id} of '{basis.trace}' (content hash {str(run.get('trace_hash'))[:12]}), seed "
        f"{run['seed']}, prices from catalogue version {run.get('catalogue_version')}, {basis.requests:,} "
        f"requests{span}, "
        f"{basis.servers_per_local_model} server(s) per local model. API cost, local load, quality, p95 and residency "
        "violations per policy are the run's stored figures.",
        f"**Scale**: x{a['monthly_scale']:,.1f} a month = {scale}. **API price trend**: {price}.",
        "**Quality** (per model, requests by source): "
        + "; ".join(f"{m} {fmt.counts(c)}" for m, c in inputs.get("quality_source", {}).items())
        + ".",
        "**Assumptions**: " + ", ".join(f"{k} = {v:g} ({sources[k]})" for k, v in a["assumptions"].items()) + ".",
    ]
    if uncertainty:
        lines.append(
            f"**Uncertainty**: {uncertainty['draws']} Monte Carlo draws (seed {uncertainty['seed']}), every "
            "ranged assumption drawn from a triangular distribution over its range (hover an input for it) "
            "peaking at the value set above (the range widens to include it); replay resampled: "
            f"{uncertainty['bootstrap']}."
        )
    return "  \n".join(lines)


def _download_html(
    projection: Projection, run: dict, uncertainty: dict | None, sensitivity: dict | None
) -> Callable[[], bytes]:
    """A callable that writes the HTML report when the button is pressed (summary first, charts as inline SVG)."""

    def build() -> bytes:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "projection.html"
            return write_html(projection, run, path, uncertainty=uncertainty, sensitivity=sensitivity).read_bytes()

    return build


def _download_csv(projection: Projection) -> Callable[[], bytes]:
    """A callable that writes the monthly cost table as CSV when the button is pressed."""

    def build() -> bytes:
        with tempfile.TemporaryDirectory() as folder:
            return write_csv(projection, Path(folder) / "projection.csv").read_bytes()

    return build


try:
    run_id = resolve_replay(
        db,
        *replay_choice(
            db, "projection", "the replay whose API cost, local load and request count the projection scales"
        ),
    )
    version = state.database_version(db)
    run = state.replay_run(str(db), version, run_id)
except ValueError as error:
    st.error(str(error))
    st.stop()

values, trend, draws, seed = _assumption_inputs()
try:
    assumptions = CostAssumptions().with_values(**values)
    projection = project(basis_from_run(run), assumptions, trend)
    uncertainty = monte_carlo(projection, draws=draws, seed=seed, db=str(db)) if draws else None
except ValueError as error:
    st.error(str(error))
    st.stop()

months = assumptions.months
st.subheader(f"Every policy over {months} months")
overview = projection_table(projection, summaries_from_dicts(run["policies"]), months, uncertainty)
st.dataframe(overview.formatted(), hide_index=True, width="stretch", column_config=column_help(overview))
st.caption(_sources(projection, run, trend, uncertainty))

st.plotly_chart(charts.cumulative_cost(projection, uncertainty), width="stretch")
st.caption(
    f"Cumulative cost from this projection of run {run_id}"
    + (
        f"; shaded: p5-p95 of {uncertainty['draws']} Monte Carlo draws."
        if uncertainty
        else "; set Monte Carlo draws above for a p5-p95 band."
    )
    + " Latency is the replay's: replay with more servers (Routing replay page) to see the queue a fleet gives."
)

names = [p.policy for p in projection.policies]
others = [n for n in names if n != BASELINE]
focus = projection_focus(projection, run) or (others[0] if others else BASELINE)  # the one focus rule, as on Home
components_tab, tornado_tab = st.tabs(["Cost components", "What moves the saving"])
with components_tab:
    chosen = st.selectbox("Policy", names, index=names.index(focus), key="components_policy")
    st.plotly_chart(charts.monthly_cost_components(projection, chosen), width="stretch")
    st.caption(
        "API: the replay's API cost x monthly scale x growth x price trend. Hardware: servers x capex / "
        "lifetime. Energy: servers x (idle W + (busy W - idle W) x utilisation) x hours x tariff. Operations: "
        "servers x operations per server and month. Every factor but the replay's cost and load is an "
        "assumption above."
    )
sensitivity = None
with tornado_tab:
    if not others:
        st.info(f"Run {run_id} has only the frontier-only baseline: nothing to compare.")
    else:
        policy = st.selectbox(
            "Policy",
            others,
            index=others.index(focus),
            key="tornado_policy",
            help="default: the cheapest deployable policy over the horizon",
        )
        try:
            sensitivity = {"policy": policy, "bars": tornado(projection, policy)}
        except ValueError as error:
            st.error(str(error))
        if sensitivity:
            st.plotly_chart(charts.tornado(sensitivity["bars"], policy), width="stretch")  # type: ignore[arg-type]
            st.caption(
                f"Saving of {policy} against frontier-only over {months} months with each ranged assumption "
                "at the low and the high end of its range (hover an input for it), every other at its value "
                "above. An assumption whose value sits at one end of its range has no bar on that side."
            )

st.subheader("Scenarios")
left, right = st.columns(2)
with left:
    name = st.text_input(
        "Scenario name",
        key="scenario_name",
        placeholder="e.g. growth 5%, own servers",
        help="saving under an existing name replaces it",
    )
    if st.button("Save scenario", help="stores this projection (run, assumptions, result) in the database"):
        try:
            save_scenario(name, projection, db=db)
            st.success(f"Saved scenario '{name.strip()}' (run {run_id}, {months} months).")
        except ValueError as error:
            st.error(str(error))
saved = state.scenarios(str(db), state.database_version(db))
with right:
    if not saved:
        st.info("No scenarios saved yet. Name this projection and press **Save scenario**.")
    else:
        chosen_names = st.multiselect(
            "Compare saved scenarios", [str(s["name"]) for s in saved], key="compare", help="newest first"
        )
        if chosen_names:
            try:
                rows = compare_scenarios(chosen_names, db)
            except ValueError as error:
                st.error(str(error))
                rows = []
            if rows:
                compared = scenario_table(rows)
                st.dataframe(compared.formatted(), hide_index=True, width="stretch")
                st.caption(
                    "Read back from the saved scenarios: "
                    + "; ".join(
                        f"'{s['name']}' scales run {s['run_id']} over {s['months']} months, saved "
                        f"{s['saved_at']:%Y-%m-%d %H:%M} UTC"
                        for s in saved
                        if s["name"] in chosen_names
                    )
                    + "."
                )

st.subheader("Export")
left, pdf_column, right, third = st.columns(4)
left.download_button(
    "Download HTML report",
    _download_html(projection, run, uncertainty, sensitivity),
    file_name=f"projection-run{run_id}.html",
    mime="text/html",
    on_click="ignore",
    help="the answer and key figures first, what was assumed, charts, per-policy and yearly tables, sources",
)


def _download_pdf() -> bytes:
    """The same report printed to PDF by headless Chromium when the button is pressed."""
    try:
        return pdf_bytes(projection_html(projection, run, uncertainty=uncertainty, sensitivity=sensitivity))
    except ValueError as error:  # no Chromium here: the HTML report is the same
        return str(error).encode()


pdf_column.download_button(
    "Download PDF report",
    _download_pdf,
    file_name=f"projection-run{run_id}.pdf",
    mime="application/pdf",
    on_click="ignore",
    help="the same report as PDF, a few pages (printed by headless Chromium; takes a few seconds)",
)
right.download_button(
    "Download monthly costs (CSV)",
    _download_csv(projection),
    file_name=f"projection-run{run_id}.csv",
    mime="text/csv",
    on_click="ignore",
    help="one row per policy and month, by cost component",
)
third.download_button(
    "Download monthly costs (Parquet)",
    lambda: parquet_bytes(monthly_rows(projection)),
    file_name=f"projection-run{run_id}.parquet",
    mime="application/octet-stream",
    on_click="ignore",
    help="the same table as Parquet, typed, for a notebook or a warehouse",
)
