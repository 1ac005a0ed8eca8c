"""Cached reads of the warehouse for pages: keyed by the file's modification time so new imports show up."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import streamlit as st

from slmlab.paths import resolve_db_path
from slmlab.store import DatabaseUnavailable
from slmlab.traces.defaults import ensure_default_workloads
from slmlab.traces.summary import TraceSummary, list_traces, requests_frame

if TYPE_CHECKING:
    from simulators.inputs import ReplayConfig, ReplayInputs

__all__ = [
    "DatabaseUnavailable",
    "database_path",
    "database_version",
    "ensure_defaults",
    "price_trend",
    "replay_points",
    "replay_requests",
    "replay_run",
    "replay_runs",
    "requests",
    "scenarios",
    "traces",
]


def database_path() -> Path:
    """The warehouse the dashboard shows (`SLMLAB_DB`, else results/slmlab.duckdb)."""
    return resolve_db_path().resolve()


def database_version(db: Path) -> float:
    """Changes whenever a writer commits, so cached queries refresh."""
    stamps = [p.stat().st_mtime for p in (db, db.with_name(db.name + ".wal")) if p.exists()]
    return max(stamps, default=0.0)


@st.cache_resource(show_spinner="Loading the embedded default workload...")
def ensure_defaults(db: str) -> int:
    """Import the shipped Azure traces once per dashboard process (a no-op when already stored)."""
    return len(ensure_default_workloads(db))


@st.cache_data(show_spinner=False)
def traces(db: str, version: float) -> list[TraceSummary]:
    """All trace summaries."""
    return list_traces(db)


@st.cache_data(show_spinner="Taking the hardware census...")
def census() -> dict:
    """This machine's census (cached: the hardware does not change while the dashboard runs)."""
    from bench.hardware import take_census

    return take_census().as_dict()


@st.cache_data(show_spinner=False)
def census_fingerprint() -> str:
    """The short hash stored with every run measured on this machine."""
    from bench.hardware import take_census

    return take_census().fingerprint()


@st.cache_data(show_spinner=False)
def energy_note() -> str:
    """Which energy counters this machine exposes."""
    try:
        from bench.energy import available_counters
    except ImportError:
        return "not checked"
    return available_counters()[1]


@st.cache_data(show_spinner=False)
def bench_runs(db: str, version: float) -> pl.DataFrame:
    """All stored benchmark runs."""
    from bench.views import runs_frame

    return runs_frame(db)


@st.cache_data(show_spinner=False)
def service_curves(db: str, version: float) -> list[dict[str, object]]:
    """One line per stored batched service curve, newest first."""
    from slmlab.service_curves import list_service_curves

    return list_service_curves(db=db)


@st.cache_data(show_spinner=False)
def service_curve(db: str, version: float, curve_id: str):
    """One stored service curve as arrays."""
    from slmlab.service_curves import load_service_curve

    return load_service_curve("", db=db, curve_id=curve_id)


@st.cache_data(show_spinner=False)
def bench_samples(db: str, version: float, run_id: int, metric: str) -> list[float]:
    """Raw samples of one metric of one run."""
    from bench.views import samples

    return samples(db, run_id, metric)


@st.cache_data(show_spinner="Reading requests...")
def requests(db: str, version: float, trace_id: int) -> pl.DataFrame:
    """One trace's requests for the charts."""
    return requests_frame(db, trace_id)


@st.cache_data(show_spinner=False)
def eval_runs(db: str, version: float) -> pl.DataFrame:
    """Every stored evaluation with its headline figures."""
    from bench.quality import stored_evaluations

    rows = [r.as_dict() for r in stored_evaluations(db)]
    frame = pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame()
    return frame.rename({"expected_calibration_error": "calibration_error"}) if rows else frame


@st.cache_data(show_spinner="Reading outcomes...")
def eval_outcomes(db: str, version: float, run_id: int) -> pl.DataFrame:
    """Per-request outcomes of one evaluation."""
    from bench.quality import outcomes_frame

    return outcomes_frame(db, run_id)


@st.cache_data(show_spinner=False)
def replay_runs(db: str, version: float) -> list[dict[str, object]]:
    """Every stored routing replay, newest first."""
    from slmlab.replay_store import stored_runs

    return stored_runs(db)


@st.cache_data(show_spinner=False)
def replay_run(db: str, version: float, run_id: int) -> dict[str, object]:
    """One stored replay: configuration, portfolio, input provenance and per-policy summaries."""
    from slmlab.replay_store import load_run

    return load_run(run_id, db)


@st.cache_data(show_spinner=False)
def replay_points(db: str, version: float, run_id: int) -> pl.DataFrame:
    """The cost-quality points of a replay's sweep (empty without one)."""
    from slmlab.replay_store import load_points

    return pl.from_arrow(load_points(run_id, db))  # type: ignore[return-value]


@st.cache_data(show_spinner="Reading per-request results...")
def replay_requests(
    db: str, version: float, run_id: int, policy: str | None = None, limit: int | None = None
) -> pl.DataFrame:
    """A replay's per-request results (optionally one policy, first `limit` requests)."""
    from slmlab.replay_store import load_requests

    return pl.from_arrow(load_requests(run_id, db, policy=policy, limit=limit))  # type: ignore[return-value]


@st.cache_data(show_spinner=False)
def price_trend() -> dict[str, object]:
    """The API price change per year fitted from the shipped price history, or why it cannot be fitted."""
    from simulators.projection import fitted_price_trend

    return fitted_price_trend()


@st.cache_data(show_spinner=False)
def scenarios(db: str, version: float) -> list[dict[str, object]]:
    """Every saved projection scenario, newest first."""
    from slmlab.replay_store import list_scenarios

    return list_scenarios(db)


@st.cache_resource(show_spinner="Loading the trace, the portfolio and every request's quality...", max_entries=4)
def replay_inputs(db: str, version: float, config: ReplayConfig) -> ReplayInputs:
    """A replay's inputs, built once and kept in memory, so a what-if slider only re-runs the policy."""
    from app.workflows import build_inputs

    return build_inputs(config, db=db)
