"""Home: what the portfolio would cost and why, in one screen, with the way to every other page."""

from __future__ import annotations

import math

import polars as pl
import streamlit as st

from app import state, vega
from app.pages import PAGES
from app.widgets import resolve_replay
from simulators.headline import headline
from slmlab.replay_store import load_run
from slmlab.traces.defaults import DEFAULT_TRACES

db = state.database_path()
st.title("slmlab")
st.markdown(
    "What happens to **cost, latency, quality and data residency** if you move from one frontier-model API "
    "to a portfolio of small local models with an orchestration layer in front? Measured on this machine, "
    "replayed on recorded traffic, priced from a catalogue; every assumption is named and editable."
)

# The page's frame first, filled once the replay is read: the browser loads Vega's code meanwhile.
traffic = st.empty()
comparison = st.container()
chart = st.empty()
chart.vega_lite_chart(
    vega.placeholder("Every policy of the newest replay: cost against quality (loading...)"), width="stretch"
)

trace = DEFAULT_TRACES[0].stem
try:
    run = load_run(resolve_replay(db, "trace", trace), db)
    top = headline(run)
except ValueError as error:
    chart.empty()
    st.error(str(error))
    st.stop()


def _money(value: object) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"${float(value):,.0f}"


def _column(container, title: str, figures: dict[str, object], base: dict[str, object] | None) -> None:  # type: ignore[no-untyped-def]
    """One side of the comparison as metrics, with the change against frontier-only on the other side."""
    container.subheader(title)
    container.caption(f"policy: **{figures['policy']}**")

    def delta(key: str, scale: float = 1.0, fmt: str = "{:+,.2f}") -> str | None:
        if base is None:
            return None
        return fmt.format((float(figures[key]) - float(base[key])) * scale)  # type: ignore[arg-type]

    container.metric(
        "cost per 1,000 requests",
        f"${float(figures['cost_per_1k_usd']):,.2f}",  # type: ignore[arg-type]
        delta=delta("cost_per_1k_usd", fmt="{:+,.2f} USD"),
        delta_color="inverse",
    )
    container.metric(
        "quality (share answered right)",
        f"{float(figures['quality']):.1%}",  # type: ignore[arg-type]
        delta=delta("quality", 100, "{:+.1f} points"),
    )
    container.metric(
        "p95 latency",
        f"{float(figures['p95_ms']) / 1000:,.1f} s",  # type: ignore[arg-type]
        delta=delta("p95_ms", 1 / 1000, "{:+,.1f} s"),
        delta_color="inverse",
    )
    container.metric(
        "residency violations",
        f"{int(figures['residency_violations']):,}",  # type: ignore[call-overload]
        delta=delta("residency_violations", fmt="{:+,.0f}"),
        delta_color="inverse",
    )
    container.metric(
        "36 months at this traffic (projected)",
        _money(figures["total_36_months_usd"]),
        help=f"break-even against frontier-only: {figures['break_even_month']}",
    )


traffic.markdown(f"**On your traffic:** trace `{top.trace}`, {top.requests:,} requests, replay run {top.run_id}.")

points = pl.DataFrame(
    [{"policy": label, "cost_usd": s["cost_usd"], "quality": s["quality"]} for label, s in run["policies"].items()],  # type: ignore[union-attr]
    schema={"policy": pl.String, "cost_usd": pl.Float64, "quality": pl.Float64},
)
chart.vega_lite_chart(
    vega.policy_scatter(points, f"Every policy of replay run {top.run_id}: cost against quality"),
    width="stretch",
    height=460,
    key="home_chart",
)
st.caption(
    "One point per policy as configured (the Routing replay page sweeps each one's settings). The oracle knows "
    "every answer in advance: a bound, not a policy you can deploy."
)

with comparison:
    left, right = st.columns(2)
    _column(left, "Today: frontier-only", top.baseline, None)
    if top.chosen is None:
        right.info("No policy in this replay uses a local model; replay with local models on the Routing replay page.")
    else:
        _column(right, "With small local models", top.chosen, top.baseline)
        (right.success if top.reached_floor else right.warning)(
            f"Chosen by rule: {top.rule}."
            + ("" if top.reached_floor else " None reached that floor here, so this is the one with the best quality.")
        )
    st.caption("  \n".join(["**Where these numbers come from.**", *top.sources]))

st.subheader("Go deeper")
for info in PAGES[1:]:
    st.page_link(info.file, label=f"**{info.title}**: {info.what}")
