"""slmlab dashboard entry point: navigation and shared start-up, nothing else."""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `streamlit run app/main.py` from anywhere

from app import state  # noqa: E402

st.set_page_config(page_title="slmlab", layout="wide")
try:
    state.ensure_defaults(str(state.database_path()))
except state.DatabaseUnavailable as error:
    st.error(f"{error}. Point SLMLAB_DB (or `slmlab --db`) at another file, or move this one aside.")
    st.stop()
pages = [
    st.Page("app_pages/workloads.py", title="Workloads", icon=":material/timeline:", default=True),
    st.Page("app_pages/benchmarks.py", title="Hardware & benchmarks", icon=":material/speed:"),
    st.Page("app_pages/quality.py", title="Model quality", icon=":material/fact_check:"),
]
st.navigation(pages).run()
