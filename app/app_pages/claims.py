"""Vendor claims: test "X% cheaper than frontier-only at >= Y% of its quality with p95 <= Z s" against a stored
replay of your own traffic; the answer is supported, not supported, or not testable with this data, with a report
a buyer can send."""

from __future__ import annotations

import polars as pl
import streamlit as st

from app import charts, state
from app.report import MARGIN_COLUMNS, claim_html, margin_rows, pdf_bytes
from app.widgets import replay_choice, resolve_replay
from simulators import formatting as fmt
from simulators.claims import Claim, check_claim
from simulators.formatting import table
from simulators.provenance import run_lines

db = state.database_path()
st.title("Vendor claims")
st.caption(
    "Checks a vendor's claim against a stored replay of your own traffic. Every deployable policy as "
    "configured and every point of its sweep is a candidate setting (the oracle knows every answer in advance "
    "and never counts); the claim is supported when one setting meets every part of it. Costs are catalogue "
    "prices x the trace's tokens, quality and p95 latency are the replay's, all read back from the database "
    f"`{db}`."
)
with st.expander("What 'supported', 'not supported' and 'not testable' mean"):
    st.markdown(
        "- **Supported**: one setting meets every part of the claim, on figures this data can test.\n"
        "- **Not supported**: no setting meets the parts this data *can* test, together. The claim needs one "
        "setting that meets every part, so it fails whatever the untestable parts would show.\n"
        "- **Not testable**: a setting meets every testable part, but a part cannot be tested here:\n"
        "  - *quality*: every quality figure in the replay is an assumption, not a recorded or measured outcome "
        "(import recorded outcomes or run `slmlab eval`);\n"
        "  - *latency*: the trace records no arrival times, so there is no queueing to measure a p95 from;\n"
        "  - *assumed confidence*: the only settings that meet it route on an assumed confidence signal.\n\n"
        "Margins are in the claim's own units: percentage points of saving and of frontier-only's quality, "
        "seconds of p95. Cost is always testable: catalogue prices x the trace's recorded tokens."
    )

kind, value = replay_choice(db, "claim", "the replay whose policies and sweep points are the candidates")
with st.form("claim"):
    st.markdown("**The claim** (every part you enter is tested; untick a part the vendor does not claim)")
    columns = st.columns(3)
    use = {
        "cheaper": columns[0].checkbox("Cheaper than frontier-only", value=True, key="use_cheaper"),
        "quality": columns[1].checkbox("Quality", value=True, key="use_quality"),
        "p95": columns[2].checkbox("p95 latency", value=True, key="use_p95"),
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

if not submitted and "claim_checked" not in st.session_state:
    st.info("Set the figures of the claim and press **Check claim**.")
    st.stop()
st.session_state["claim_checked"] = True  # the verdict stays after a download button's rerun

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

c = verdict.closest
if c:
    st.subheader("Candidate that meets the claim" if verdict.verdict == "supported" else "Closest candidate")
    st.markdown(
        f"**{c.setting}**: saves {fmt.share(c.cost_saving)} against frontier-only, quality "
        f"{fmt.share(c.quality_share_of_frontier)} of frontier-only's, p95 {fmt.duration(c.p95_s)}"
        + (" (its routing rests on an assumed confidence signal)" if c.assumed_confidence else "")
        + "."
    )
    st.dataframe(
        pl.DataFrame(table(margin_rows(verdict), MARGIN_COLUMNS).formatted()),
        hide_index=True,
        width="stretch",
        key="claim_margins",
    )
st.markdown("**Why**\n" + "\n".join(f"- {reason}" for reason in verdict.reasons))

left, right, _ = st.columns([1, 1, 2])
document = claim_html(claim, verdict, run)
left.download_button(
    "Download claim report (HTML)",
    document.encode(),
    file_name=f"claim-run{verdict.run_id}.html",
    mime="text/html",
    on_click="ignore",
    help="verdict and key figures first, then the candidates, sources and assumptions: one file that opens offline",
)


def _pdf() -> bytes:
    """The same report printed to PDF by headless Chromium when the button is pressed."""
    try:
        return pdf_bytes(document)
    except ValueError as error:  # no Chromium here: the HTML report says the same
        return str(error).encode()


right.download_button(
    "Download claim report (PDF)",
    _pdf,
    file_name=f"claim-run{verdict.run_id}.pdf",
    mime="application/pdf",
    on_click="ignore",
    help="the same report as PDF (printed by headless Chromium; takes a few seconds)",
)

if verdict.evaluated:
    st.plotly_chart(
        charts.claim_candidates(verdict.evaluated, claim.cheaper_pct, claim.quality_pct, c), width="stretch"
    )
    st.caption(
        "Each point is a policy as configured or a point of its sweep (the oracle is never a candidate); green "
        "points meet every part of the claim this data can test. Quality shares rest on the sources below."
    )

st.caption("  \n".join(["**Sources**", *run_lines(run)]))
