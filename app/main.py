"""slmlab dashboard entry point: navigation and shared start-up, nothing else."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `streamlit run app/main.py` from anywhere

from app import state
from app.pages import PAGES
from slmlab.allocator import keep_freed_memory
from slmlab.paths import NO_DEFAULTS_ENV_VAR


def main() -> None:
    """Configure the page, make sure the default workload is stored, and run the chosen page."""
    st.set_page_config(page_title="slmlab", layout="wide")
    keep_freed_memory()  # the replay and imports reuse freed blocks instead of paying page faults (process-wide)
    try:
        if not os.environ.get(NO_DEFAULTS_ENV_VAR):  # `slmlab dashboard --no-defaults` skips the embedded workload
            state.ensure_defaults(str(state.database_path()))
    except state.DatabaseUnavailable as error:
        st.error(f"{error}. Point SLMLAB_DB (or `slmlab --db`) at another file, or move this one aside.")
        st.stop()
    pages = [st.Page(p.file, title=p.title, icon=p.icon, default=p is PAGES[0]) for p in PAGES]
    st.navigation(pages).run()


# Streamlit runs this file as __main__. A spawned worker process (a benchmark or an evaluation started from the
# dashboard) may import it as __mp_main__ while bootstrapping, and must not run the dashboard there.
if __name__ == "__main__":
    main()
