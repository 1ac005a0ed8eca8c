"""First-use work done while the browser loads Streamlit's page, so the first session starts warm.

A fresh dashboard process is idle between answering its first HTTP request and receiving the session's script
run (the browser is loading Streamlit's JavaScript, about a second). This thread fills that gap: it imports what
Home imports, makes sure the embedded default workload is stored through the same cached call the first page makes
(Streamlit runs a cached function once per process; a page arriving meanwhile waits for it), then imports what the
other pages add and builds one throwaway Plotly figure (Plotly validates lazily on first use). It cannot change
what a page shows, only how soon.
"""

from __future__ import annotations

import importlib
import logging
import socket
import sys
import threading
import time

# What Home and its libraries import on first use, heaviest first; then what the other pages add (Plotly), warmed
# after the embedded workload is stored, so it never delays Home.
HOME_MODULES = (
    "numpy",
    "polars",
    "pyarrow",
    "app.state",
    "app.vega",
    "app.widgets",
    "simulators.headline",
    "simulators.runs",
)
PAGE_MODULES = (
    "plotly.graph_objects",
    "plotly.express",
    "plotly.io",
    "streamlit.elements.plotly_chart",
    "app.charts",
    "app.report",
    "simulators.projection",
)
MODULES = HOME_MODULES + PAGE_MODULES


def warm(defaults: bool = False) -> float:
    """Import the page libraries, store the embedded workload as the first page would (with `defaults`), and
    render one small Plotly figure to JSON; returns the seconds it took."""
    started = time.perf_counter()
    for name in HOME_MODULES:
        importlib.import_module(name)
    from app import state

    if defaults:
        state.ensure_defaults(str(state.database_path()))
    for name in PAGE_MODULES:
        importlib.import_module(name)
    import polars as pl

    from app import charts

    points = pl.DataFrame(
        {
            "policy": ["a", "b"],
            "parameter": [None, None],
            "value": [None, None],
            "cost_usd": [1.0, 2.0],
            "quality": [0.5, 0.6],
        },
        schema={
            "policy": pl.String,
            "parameter": pl.String,
            "value": pl.Float64,
            "cost_usd": pl.Float64,
            "quality": pl.Float64,
        },
    )
    charts.replay_pareto(points, "warm-up").to_json()
    return time.perf_counter() - started


THREAD_NAME = "slmlab-warmup"


class _NotFromWarmUp(logging.Filter):
    """Drops Streamlit's 'missing ScriptRunContext' notice for the warm-up thread (outside a session by design)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return threading.current_thread().name != THREAD_NAME


def _wait_until_serving(host: str, port: int, timeout_s: float) -> bool:
    """True once something accepts connections on host:port (the Streamlit server, started by this process)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, port), timeout=0.1).close()
            return True
        except OSError:
            time.sleep(0.02)
    return False


def warm_when_serving(host: str, port: int, defaults: bool = True, timeout_s: float = 60.0) -> threading.Thread:
    """Start a daemon thread that warms up once the server answers (before that it would only slow the start)."""

    def run() -> None:
        logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").addFilter(_NotFromWarmUp())
        if _wait_until_serving(host, port, timeout_s):
            interval = sys.getswitchinterval()
            sys.setswitchinterval(0.0005)  # hand the interpreter back to the server often: it is serving the page
            try:
                warm(defaults)
            except Exception:
                pass
            finally:
                sys.setswitchinterval(interval)

    thread = threading.Thread(target=run, name=THREAD_NAME, daemon=True)
    thread.start()
    return thread
