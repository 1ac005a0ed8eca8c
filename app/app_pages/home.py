"""Home: what the portfolio would cost and why, in one screen, with the way to every other page."""

from __future__ import annotations

import polars as pl
import streamlit as st

from app import state, vega
from app.pages import PAGES
from app.widgets import resolve_replay
from simulators import formatting as fmt
from simulators.headline import Figures, headline
from simulators.results import summaries_from_dicts
from slmlab.replay_store import load_run
from slmlab.traces.defaults import DEFAULT_TRACES

db = state.database_path()
st.title("slmlab")
intro = st.empty()

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

WORDS = {
    "measured": "measured on a machine",
    "recorded": "recorded in your traffic",
    "catalogue": "priced from a published catalogue",
    "assumption": "assumed (named and editable)",
}
intro.markdown(
    "What happens to **cost, latency, quality and data residency** if you move from one frontier-model API to a "
    "portfolio of small local models with an orchestration layer in front? On this replay the figures below are "
    + ", ".join(f"{fmt.badge(kind)} {WORDS[kind]}" for kind in top.kinds())
    + "; each figure carries the badge of its weakest source."
)


def _column(container, title: str, figures: Figures, base: Figures | None) -> None:  # type: ignore[no-untyped-def]
    """One side of the comparison as metrics, each with its source badge, the change against frontier-only beside."""
    s, b = figures.summary, (base.summary if base else None)
    container.subheader(title)
    container.caption(f"policy: **{figures.policy}**")
    sources = figures.sources

    def metric(
        label: str, value: str, source: str, delta: str | None = None, colour: str = "normal", help: str | None = None
    ) -> None:
        container.metric(label, value, delta=delta, delta_color=colour, help=help)  # type: ignore[arg-type]
        container.markdown(
            f"{fmt.badge(sources[source].kind)} <small>{sources[source].detail}</small>", unsafe_allow_html=True
        )

    def signed_money(value: float) -> str:
        return ("+" if value > 0 else "") + fmt.money(value)

    metric(
        "cost per 1,000 requests",
        fmt.money(s.cost_per_1k_usd),
        "cost",
        None if b is None else signed_money(s.cost_per_1k_usd - b.cost_per_1k_usd),
        "inverse",
    )
    metric(
        "answered in-house",
        fmt.share(s.in_house_share),
        "in_house",
        None if b is None else fmt.points(s.in_house_share - b.in_house_share),
    )
    metric(
        "quality (share answered right)",
        fmt.share(s.quality),
        "quality",
        None if b is None else fmt.points(s.quality - b.quality),
    )
    p95 = s.p95_ms
    metric(
        "p95 latency",
        fmt.duration_ms(p95),
        "latency",
        None if b is None or p95 is None or b.p95_ms is None else fmt.duration_ms(p95 - b.p95_ms, signed=True),
        "inverse",
    )
    if s.fleet:  # every local model the policy uses: servers needed for the SLO, or overloaded
        container.caption("  \n".join(f"Local servers: {f.describe()}" for f in s.fleet))
    metric(
        "residency violations",
        fmt.count(s.residency_violations),
        "residency",
        None if b is None else f"{s.residency_violations - b.residency_violations:+,}",
        "inverse",
    )
    metric(
        "36 months at this traffic (projected)",
        fmt.money(figures.total_36_months_usd),
        "projection",
        help="break-even against frontier-only: "
        + (
            "baseline" if base is None else f"month {figures.break_even_month}" if figures.break_even_month else "never"
        ),
    )


what = (
    f"a **scaled what-if** of trace `{top.trace}` ({fmt.count(top.requests)} requests after scaling, not your "
    "recorded traffic)"
    if top.scaled
    else f"trace `{top.trace}`, {fmt.count(top.requests)} requests"
)
traffic.markdown(f"**{'On a scaled what-if' if top.scaled else 'On your traffic'}:** {what}, replay run {top.run_id}.")

points = pl.DataFrame(
    [{"policy": label, "cost_usd": s["cost_usd"], "quality": s["quality"]} for label, s in run["policies"].items()],  # type: ignore[union-attr]
    schema={"policy": pl.String, "cost_usd": pl.Float64, "quality": pl.Float64},
)
chart.vega_lite_chart(
    vega.policy_scatter(
        points,
        f"Every policy of replay run {top.run_id}: cost against quality",
        [label for label, s in summaries_from_dicts(run["policies"]).items() if s.is_reference],  # type: ignore[arg-type]
    ),
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
