"""Widgets shared by pages: the live status of a background job, and the choice of a stored replay."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import streamlit as st

from app import state
from app.jobs import ReplayJob
from simulators.formatting import Table
from slmlab.jobs import BackgroundJob
from slmlab.replay_store import latest_run_id
from slmlab.traces.defaults import DEFAULT_TRACES


@st.fragment(run_every=1.0)
def job_status(
    key: str,
    running: Callable[[BackgroundJob], str],
    stored: Callable[[BackgroundJob], str],
    failed: Callable[[BackgroundJob], str],
) -> None:
    """Polls the job in `st.session_state[key]` once a second; the rest of the page stays usable meanwhile."""
    job: BackgroundJob | None = st.session_state.get(key)
    if job is None:
        return
    if job.error:
        st.error(failed(job))
    elif job.result:
        st.success(stored(job))
    else:
        left, right = st.columns([5, 1])
        left.progress(job.fraction, text=running(job) + (" (stopping...)" if job.cancelled else ""))
        if right.button(
            "Cancel",
            key=f"{key}_cancel",
            disabled=job.cancelled,
            help="stops at the next progress report; an evaluation keeps the answers it stored, "
            "a benchmark or a replay stores nothing",
        ):
            job.cancel()
    done = bool(job.error or job.result)
    if done and not st.session_state.get(f"{key}_shown"):
        st.session_state[f"{key}_shown"] = True
        st.rerun(scope="app")  # once: the page's charts and tables pick up the stored run without a manual rerun
    elif not done:
        st.session_state[f"{key}_shown"] = False


def replay_choice(db: Path, key: str, purpose: str) -> tuple[str, object]:
    """('trace', name): that trace's newest replay (replayed when there is none), or ('run', id): a stored run."""
    version = state.database_version(db)
    trace_names = [s.name for s in state.traces(str(db), version) if s.kind != "task"]
    default_trace = DEFAULT_TRACES[0].stem
    if default_trace not in trace_names:
        trace_names.insert(0, default_trace)  # run_for imports the embedded default traces when needed
    runs = state.replay_runs(str(db), version)
    left, right = st.columns([1, 2])
    source = left.radio(
        "Replay", ["newest replay of a trace", "a stored run"], horizontal=True, key=f"{key}_source", help=purpose
    )
    if source == "a stored run":
        if runs:
            by_label = {
                f"run {r['run_id']}: {r['trace']}, seed {r['seed']}, {r['created_at']:%Y-%m-%d %H:%M} UTC, "
                f"{len(r['policies'])} policies": int(r["run_id"])
                for r in runs
            }  # type: ignore[arg-type, index]
            return "run", by_label[
                right.selectbox(
                    "Stored run",
                    list(by_label),
                    key=f"{key}_run",
                    help="newest first; a run with a sweep tests every setting",
                )
            ]
        right.info("No replays stored yet: using the newest replay of a trace.")
    return "trace", right.selectbox(
        "Trace",
        trace_names,
        index=trace_names.index(default_trace),
        key=f"{key}_trace",
        help="workload traces (task sets are left out); its newest stored replay is used, "
        "or every policy is replayed with its sweep first",
    )


def follow_job(job: BackgroundJob, key: str, running: Callable[[BackgroundJob], str]) -> None:
    """Wait in this run of the page for a job that the rest of the page needs, with a progress bar and a Cancel button;
    any click ends the wait (the job carries on) and the page's next run picks the job up again."""
    box = st.empty()
    with box.container():
        bar = st.progress(job.fraction, text=running(job))
        st.button(
            "Cancel",
            key=f"{key}_cancel",
            on_click=job.cancel,
            disabled=job.cancelled,
            help="stops at the next progress report; nothing is stored",
        )
    while not job.finished:
        time.sleep(0.2)
        bar.progress(job.fraction, text=running(job) + (" (stopping...)" if job.cancelled else ""))
    box.empty()


def resolve_replay(db: Path, kind: str, value: object) -> int:
    """The run id a `replay_choice` stands for; a trace with no stored replay is replayed first, every policy with its
    sweep, in the background with progress and a Cancel button (a failure raises ValueError for the page to show)."""
    if kind == "run":
        return int(value)  # type: ignore[call-overload]
    trace = str(value)
    found = latest_run_id(trace, db)
    if found is not None:
        return found
    key = f"first_replay_{trace}"
    job: ReplayJob | None = st.session_state.get(key)
    if job is None or job.result is not None:  # none yet, or its run has been removed since
        job = st.session_state[key] = ReplayJob.every_policy(trace, db).start()
    follow_job(
        job,
        key,
        lambda job: (
            f"No replay of '{trace}' stored yet: replaying every policy with its sweep first: "
            f"{job.stage} (step {job.done_steps} of {job.total_steps or '?'})"
        ),
    )
    if job.result is None:
        st.button("Replay again", key=f"{key}_again", on_click=st.session_state.pop, args=(key,))
        raise ValueError(f"The first replay of '{trace}' stopped: {job.error}")
    return job.result.run_id


def column_help(table: Table) -> dict[str, object]:
    """A formatted table's column tooltips for `st.dataframe` (its headings are the keys of `Table.formatted`)."""
    return {c.heading: st.column_config.TextColumn(c.heading, help=c.help) for c in table.columns if c.help}
