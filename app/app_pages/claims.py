"""Vendor claims: test "X% cheaper than frontier-only at >= Y% of its quality with p95 <= Z s" against a stored
replay of your own traffic; the answer is supported, not supported, or not testable with this data."""

from __future__ import annotations

import polars as pl
import streamlit as st

from app import charts, state
from app.widgets import replay_choice, resolve_replay
from simulators.claims import Claim, check_claim

db = state.database_path()
st.title("Vendor claims")
st.caption(
    "Checks a vendor's claim against a stored replay of your own traffic. Every deployable policy as "
    "configured and every point of its sweep is a candidate setting (the oracle knows every answer in advance "
    "and never counts); the claim is supported when one setting meets every part of it. Costs are catalogue "
    "prices x the trace's tokens, quality and p95 latency are the replay's, all read back from the database "
    f"`{db}`."
)
with st.expander("What 'not testable' means"):
    st.markdown(
        "A claim is **not testable** when this data cannot confirm or refute part of it, so no verdict is given:\n"
        "- **Quality**: every quality figure in the replay is an *assumption* (from the assumptions file), not a "
        "recorded or measured outcome. Import recorded outcomes or run `slmlab eval` to measure it.\n"
        "- **Latency**: the trace records no arrival times, so there is no queueing to measure a p95 from.\n"
        "- **Assumed confidence**: the only settings that meet the claim route on a confidence signal that was "
        "assumed, not measured (e.g. a cascade's threshold). Measure the small model's confidence (`slmlab eval`).\n\n"
        "Cost is always testable: catalogue prices x the trace's recorded tokens."
    )

CRITERIA = ("cheaper", "quality", "p95")


def _counts(counts: dict[str, int] | None) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in (counts or {}).items()) or "-"


def _criteria_table(claim: Claim, closest: dict) -> pl.DataFrame:
    """One row per criterion of the claim: claimed, the closest candidate's figure, and its margin."""
    margins = closest.get("margins") or {}
    p95 = closest.get("p95_s")
    rows = {
        "cheaper": (
            claim.cheaper_pct,
            f">= {claim.cheaper_pct:g}% saving" if claim.cheaper_pct is not None else "",
            f"{float(closest['cost_saving']):.1%} saving",
        ),
        "quality": (
            claim.quality_pct,
            f">= {claim.quality_pct:g}% of frontier-only's" if claim.quality_pct is not None else "",
            f"{float(closest['quality_share_of_frontier']):.1%} of frontier-only's",
        ),
        "p95": (
            claim.p95_s,
            f"<= {claim.p95_s:g} s" if claim.p95_s is not None else "",
            "n/a" if p95 is None else f"{float(p95):,.2f} s",
        ),
    }
    table = []
    for criterion, (asked, claimed, figure) in rows.items():
        if asked is None:
            continue
        margin = margins.get(criterion)
        table.append(
            {
                "criterion": criterion,
                "claimed": claimed,
                "closest candidate": figure,
                "margin": margin,
                "result": "not testable" if margin is None else ("met" if margin >= -1e-12 else "missed"),
            }
        )
    return pl.DataFrame(
        table,
        schema={
            "criterion": pl.String,
            "claimed": pl.String,
            "closest candidate": pl.String,
            "margin": pl.Float64,
            "result": pl.String,
        },
    )


kind, value = replay_choice(db, "claim", "the replay whose policies and sweep points are the candidates")
with st.form("claim"):
    st.markdown("**The claim** (tick each part the vendor claims)")
    columns = st.columns(3)
    use = {
        "cheaper": columns[0].checkbox("Cheaper than frontier-only", value=True, key="use_cheaper"),
        "quality": columns[1].checkbox("Quality", value=False, key="use_quality"),
        "p95": columns[2].checkbox("p95 latency", value=False, key="use_p95"),
    }
    numbers = {
        "cheaper": columns[0].number_input(
            "by at least (%)",
            min_value=0.0,
            value=50.0,
            step=5.0,
            key="cheaper_pct",
            help="saving against frontier-only, from 0 to below 100",
        ),
        "quality": columns[1].number_input(
            "at least (% of frontier-only's quality)",
            min_value=0.0,
            value=95.0,
            step=1.0,
            key="quality_pct",
            help="share of requests answered right, as a percentage of frontier-only's",
        ),
        "p95": columns[2].number_input(
            "p95 at most (seconds)",
            min_value=0.0,
            value=2.0,
            step=0.5,
            key="p95_s",
            help="95th percentile of end-to-end latency (queue wait + first token + generation)",
        ),
    }
    submitted = st.form_submit_button("Check claim", type="primary")

if not submitted:
    st.info("Tick the parts of the claim, set the figures and press **Check claim**.")
    st.stop()

try:
    claim = Claim(
        cheaper_pct=float(numbers["cheaper"]) if use["cheaper"] else None,
        quality_pct=float(numbers["quality"]) if use["quality"] else None,
        p95_s=float(numbers["p95"]) if use["p95"] else None,
    )
    run_id = resolve_replay(db, kind, value)
    version = state.database_version(db)
    run = state.replay_run(str(db), version, run_id)
    points = state.replay_points(str(db), version, run_id).to_dicts()
    verdict = check_claim(claim, run, points)
except ValueError as error:
    st.error(str(error))
    st.stop()

headline = (
    f"**{verdict.verdict.upper()}**: {verdict.claim}. Tested on replay run {verdict.run_id} of "
    f"'{verdict.trace}' ({verdict.candidates} policy settings scored)."
)
{"supported": st.success, "not supported": st.error}.get(verdict.verdict, st.warning)(headline)
st.markdown("**Why**\n" + "\n".join(f"- {reason}" for reason in verdict.reasons))

c = verdict.closest
sources = verdict.sources
quality = sources.get("quality") or {}
assumed_quality = bool(quality) and all(set(q) <= {"assumption"} for q in quality.values())
if c:
    knob = f" at {c['parameter']}={c['value']:g}" if c.get("parameter") else " as configured"
    p95_text = "n/a" if c.get("p95_s") is None else f"{c['p95_s']:,.2f} s"
    st.subheader("Closest candidate" if verdict.verdict != "supported" else "Candidate that meets the claim")
    st.markdown(
        f"**{c['policy']}**{knob}: saves {c['cost_saving']:.1%} against frontier-only, quality "
        f"{c['quality_share_of_frontier']:.1%} of frontier-only's"
        + (" (from assumed quality figures)" if assumed_quality else "")
        + f", p95 {p95_text}"
        + (" (its routing rests on an assumed confidence signal)" if c.get("assumed_confidence") else "")
        + "."
    )
    st.dataframe(
        _criteria_table(claim, c),
        hide_index=True,
        width="stretch",
        column_config={
            "margin": st.column_config.NumberColumn(
                "margin",
                format="percent",
                help="as a share of the claimed figure: above 0 met with room to spare, below 0 missed by that much",
            )
        },
    )
else:
    st.info("No candidate could be scored: no part of this claim can be tested on this replay.")

if verdict.evaluated:
    st.plotly_chart(
        charts.claim_candidates(verdict.evaluated, claim.cheaper_pct, claim.quality_pct, c), width="stretch"
    )
    st.caption(
        "Each point is a policy as configured or a point of its sweep (the oracle is never a candidate); green "
        "points meet every part of the claim this data can test. Quality shares rest on the sources below."
    )

st.caption(
    "  \n".join(
        [
            f"**Sources**: replay run {verdict.run_id} of '{verdict.trace}' (seed {run['seed']}, content hash "
            f"{str(run.get('trace_hash'))[:12]}); baseline frontier-only = {sources.get('baseline_model')}.",
            f"**Cost**: prices from catalogue version {sources.get('prices')} x tokens ("
            + "; ".join(f"{side} {_counts(counts)}" for side, counts in (sources.get("tokens") or {}).items())
            + ").",
            "**Quality** (per model, requests by source): "
            + "; ".join(f"{m} {_counts(q)}" for m, q in quality.items())
            + ".",
            f"**Latency**: arrivals {sources.get('arrivals')}; p95 as stored with each policy and sweep point.",
        ]
    )
)
