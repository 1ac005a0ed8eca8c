"""Widgets shared by pages: the live status of a background job."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from bench.jobs import BackgroundJob


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
        st.progress(job.fraction, text=running(job))
