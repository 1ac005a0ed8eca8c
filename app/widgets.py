"""Widgets shared by pages: the live status of a background job, and the choice of a stored replay."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import streamlit as st

from app import state
from bench.jobs import BackgroundJob
from simulators.runs import latest_run_id, run_for
from simulators.traces.defaults import DEFAULT_TRACES


@st.fragment(run_every=1.0)
def job_status(key: str, running: Callable[[BackgroundJob], str], stored: Callable[[BackgroundJob], str],
               failed: Callable[[BackgroundJob], str]) -> None:
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
        if right.button("Cancel", key=f"{key}_cancel", disabled=job.cancelled,
                        help="stops at the next progress report; an evaluation keeps the answers it stored"):
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
    source = left.radio("Replay", ["newest replay of a trace", "a stored run"], horizontal=True, key=f"{key}_source",
                        help=purpose)
    if source == "a stored run":
        if runs:
            by_label = {f"run {r['run_id']}: {r['trace']}, seed {r['seed']}, {r['created_at']:%Y-%m-%d %H:%M} UTC, "
                        f"{len(r['policies'])} policies": int(r["run_id"]) for r in runs}  # type: ignore[arg-type, index]
            return "run", by_label[right.selectbox("Stored run", list(by_label), key=f"{key}_run",
                                                   help="newest first; a run with a sweep tests every setting")]
        right.info("No replays stored yet: using the newest replay of a trace.")
    return "trace", right.selectbox("Trace", trace_names, index=trace_names.index(default_trace), key=f"{key}_trace",
                                    help="workload traces (task sets are left out); its newest stored replay is used, "
                                         "or every policy is replayed with its sweep first")


def resolve_replay(db: Path, kind: str, value: object) -> int:
    """The run id a `replay_choice` stands for, replaying the trace first (with a status box) when none is stored."""
    if kind == "run":
        return int(value)  # type: ignore[call-overload]
    trace = str(value)
    found = latest_run_id(trace, db)
    if found is not None:
        return found
    with st.status(f"No replay of '{trace}' stored yet: replaying every policy with its sweep first...",
                   expanded=False) as status:
        run_id = run_for(trace, db=db, progress=status.write)
        status.update(label=f"Stored replay run {run_id} of '{trace}'", state="complete")
    return run_id
