"""The Routing replay page through AppTest, on replays of the embedded Azure trace stored in a real DuckDB file."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from simulators.inputs import ReplayConfig
from simulators.policies.registry import parse_policies
from simulators.runs import simulate, stored_runs
from simulators.traces.defaults import ensure_default_workloads
from slmlab.paths import PROJECT_ROOT

MAIN = str(PROJECT_ROOT / "app" / "main.py")
TRACE = "azure-llm-inference-2023-conv"


def open_page() -> AppTest:
    at = AppTest.from_file(MAIN, default_timeout=120)
    # open the page directly: the Home page would replay the default trace first
    at.switch_page("app_pages/routing.py").run()
    assert not at.exception, at.exception
    return at


def test_empty_state_says_how_to_start(db: Path) -> None:
    at = open_page()
    assert at.title[0].value == "Routing replay"
    assert any("No replays stored yet" in i.value and "slmlab simulate" in i.value for i in at.info)
    assert [b for b in at.button if b.label == "Run replay"]


def test_a_stored_replay_is_tabled_and_charted(db: Path) -> None:
    ensure_default_workloads(db)
    run = simulate(ReplayConfig(TRACE), parse_policies("frontier-only,cascade,oracle"), sweep=True, db=db)
    at = open_page()
    assert not at.error
    assert [s for s in at.selectbox if s.label == "Stored run"][0].value.startswith(f"run {run.run_id}: {TRACE}")
    headline = at.dataframe[0].value
    assert {"frontier-only", "cascade", "oracle"} <= set(headline["policy"])
    assert headline.set_index("policy").loc["frontier-only", "cost_ratio"] == 1.0
    assert len(at.get("plotly_chart")) >= 3  # Pareto, latency CDF, cost by model
    assert any("catalogue version litellm" in c.value and "**Quality**" in c.value for c in at.caption)
    drill = at.dataframe[-1].value
    assert len(drill) == 500 and {"model", "latency_ms", "quality_source", "residency_violation"} <= set(drill.columns)
    [s for s in at.selectbox if s.label == "Policy"][0].select("oracle").run()
    assert not at.exception
    assert any("'oracle'" in c.value for c in at.caption)


def test_a_run_without_a_sweep_or_request_rows_says_so(db: Path) -> None:
    ensure_default_workloads(db)
    simulate(ReplayConfig(TRACE), parse_policies("cascade"), db=db, store_requests=False)
    at = open_page()
    assert not at.exception
    assert any("Tick **Sweep** for the full curves" in i.value for i in at.info)
    assert any("stored summaries only" in i.value for i in at.info)
    assert len(at.get("plotly_chart")) == 1


def test_run_replay_on_the_page_stores_a_new_run(db: Path) -> None:
    at = open_page()
    [m for m in at.multiselect if m.label == "Policies"][0].set_value(["frontier-only", "small-only"])
    [b for b in at.button if b.label == "Run replay"][0].click().run()
    assert not at.exception, at.exception
    assert not at.error, at.error[0].value
    assert any("Stored replay run 1" in s.value for s in at.success)
    assert [r["policies"] for r in stored_runs(db)] == [["frontier-only", "small-only"]]
    assert {"frontier-only", "small-only"} <= set(at.dataframe[0].value["policy"])


def test_a_bad_parameter_is_shown_not_raised(db: Path) -> None:
    at = open_page()
    [m for m in at.multiselect if m.label == "Policies"][0].set_value(["cascade"])
    [t for t in at.text_area if t.label.startswith("Policy parameters")][0].set_value("cascade.nope=1")
    [b for b in at.button if b.label == "Run replay"][0].click().run()
    assert not at.exception
    assert any("no parameter 'nope'" in e.value for e in at.error)
    assert stored_runs(db) == []


def test_the_what_if_slider_re_simulates_without_storing(db: Path) -> None:
    ensure_default_workloads(db)
    simulate(ReplayConfig(TRACE), parse_policies("cascade"), db=db)
    at = open_page()
    costs = {m.label: m.value for m in at.metric}
    assert any("re-simulated over 19,366 requests" in c.value for c in at.caption)
    at.slider(key="what_if_value").set_value(0.9).run()
    assert not at.exception
    moved = {m.label: m.value for m in at.metric}
    assert moved["cost (USD)"] != costs["cost (USD)"]  # a higher threshold escalates more: dearer
    assert len(stored_runs(db)) == 1  # nothing stored
