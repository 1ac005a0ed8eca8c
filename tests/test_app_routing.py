"""The Routing replay page through AppTest, on replays of the embedded Azure trace stored in a real DuckDB file."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Button

from app.cli.main import main as cli_main
from app.jobs import ReplayJob
from app.workflows import simulate
from simulators.inputs import ReplayConfig
from simulators.policies.registry import parse_policies
from simulators.runs import SimRun
from slmlab.paths import PROJECT_ROOT
from slmlab.replay_store import load_run, stored_runs
from slmlab.traces.defaults import ensure_default_workloads

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
    headline = next(d.value for d in at.dataframe if "policy" in d.value.columns)  # the form's quality editor first
    assert {"frontier-only", "cascade", "oracle"} <= set(headline["policy"])
    assert headline.set_index("policy").loc["frontier-only", "cost vs frontier-only"] == "1.00x"
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


def run_button(at: AppTest) -> Button:
    return [b for b in at.button if b.label == "Run replay"][0]


def wait_for_the_job(at: AppTest, seconds: float = 120) -> None:
    """Rerun the page (as its 1 s status fragment would) until the replay job reports success or failure."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not at.success and not at.error:
        time.sleep(0.5)
        at.run()
    assert not at.exception, at.exception


def test_run_replay_on_the_page_stores_a_new_run(db: Path) -> None:
    at = open_page()
    [m for m in at.multiselect if m.label == "Policies"][0].set_value(["frontier-only", "small-only"])
    run_button(at).click().run()
    assert isinstance(at.session_state["replay_job"], ReplayJob)  # started in the background, not in the page's run
    wait_for_the_job(at)
    assert not at.error, at.error[0].value
    assert any("Stored replay run 1: 2 policies" in s.value for s in at.success)
    assert [r["policies"] for r in stored_runs(db)] == [["frontier-only", "small-only"]]
    assert [s for s in at.selectbox if s.label == "Stored run"][0].value.startswith(f"run 1: {TRACE}")
    assert {"frontier-only", "small-only"} <= set(headline_of(at)["policy"])
    assert [c.value for c in at.code] == [f"slmlab simulate --trace {TRACE} --policy frontier-only,small-only"]


def headline_of(at: AppTest):  # type: ignore[no-untyped-def]
    """The table of every policy (the form's quality editor is a dataframe too, and comes first)."""
    return next(d.value for d in at.dataframe if "policy" in d.value.columns)


def test_a_deployment_rule_by_data_class_reaches_the_replay_and_its_command(db: Path) -> None:
    """Untick 'internal' for cloud-us in the rules table: the API models there may no longer take internal data."""
    at = open_page()
    [m for m in at.multiselect if m.label == "Policies"][0].set_value(["frontier-only", "cascade"])
    locations = ["cloud-eu", "cloud-us"]  # the table's rows, in order
    at.session_state["data_rules"] = {
        "edited_rows": {locations.index("cloud-us"): {"internal": False}},
        "added_rows": [],
        "deleted_rows": [],
    }
    run_button(at).click().run()
    wait_for_the_job(at)
    assert not at.error, at.error[0].value
    command = at.code[0].value
    overrides = json.loads((db.parent / command.split("--overrides ")[1].split()[0]).read_text())
    assert {o["name"]: o["data_classes"] for o in overrides} == {"gpt-4o": ["public"], "gpt-4o-mini": ["public"]}
    (run,) = stored_runs(db)
    internal = load_run(run["run_id"], db)["policies"]["frontier-only"]["residency_violations_by_class"]["internal"]
    assert internal > 0  # frontier-only (gpt-4o, cloud-us) now breaks the rule for every internal request


def test_keep_confidential_data_local_sends_no_confidential_request_off_the_premises(db: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    at = open_page()
    [m for m in at.multiselect if m.label == "Policies"][0].set_value(["frontier-only", "cascade", "random"])
    at.toggle(key="keep_confidential_local").set_value(True)
    at.text_input(key="replay_scenario_name").set_value("local confidential")
    run_button(at).click().run()
    wait_for_the_job(at)
    assert not at.error, at.error[0].value
    (run,) = stored_runs(db)
    assert run["policies"] == ["frontier-only", "residency-aware+cascade", "residency-aware+random"]
    table = headline_of(at).set_index("policy")
    kept = table.loc[["residency-aware+cascade", "residency-aware+random"], "confidential sent off premises"]
    assert kept.tolist() == ["0", "0"]
    assert int(table.loc["frontier-only", "confidential sent off premises"].replace(",", "")) > 0  # today's baseline
    saved, command = at.code[0].value.splitlines()
    assert saved == "slmlab simulate --scenario 'local confidential'"
    assert "--policy frontier-only,residency-aware+cascade,residency-aware+random --overrides " in command
    overrides = json.loads((db.parent / command.split("--overrides ")[1].split()[0]).read_text())
    assert all("confidential" not in o["data_classes"] and "regulated" not in o["data_classes"] for o in overrides)
    # the one command the page shows replays the same thing from the CLI
    assert cli_main(["--db", str(db), "simulate", "--scenario", "local confidential", "--json"]) == 0
    again = json.loads(capsys.readouterr().out)["policies"]
    first = load_run(int(run["run_id"]), db)["policies"]
    assert {p: s["cost_usd"] for p, s in again.items()} == {p: s["cost_usd"] for p, s in first.items()}
    assert again["residency-aware+cascade"]["off_premises_by_class"]["confidential"] == 0


def test_a_running_replay_shows_progress_and_keeps_the_page_usable(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ensure_default_workloads(db)
    earlier = simulate(ReplayConfig(TRACE), parse_policies("cascade"), db=db)
    release = threading.Event()

    def held(*args: object, steps: Callable[[int, int], None], **kwargs: object) -> SimRun:
        def held_steps(done: int, total: int) -> None:
            steps(done, total)
            if done == 1:
                assert release.wait(60), "the test never released the replay"

        return simulate(*args, steps=held_steps, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("app.jobs.simulate", held)
    at = open_page()
    [m for m in at.multiselect if m.label == "Policies"][0].set_value(["frontier-only", "small-only"])
    run_button(at).click().run()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and at.session_state["replay_job"].done_steps < 1:
        time.sleep(0.1)
    at.run()
    try:
        (bar,) = at.get("progress")
        assert "Replaying 'azure-llm-inference-2023-conv': replaying frontier-only (step 1 of 2)" in bar.proto.text
        assert run_button(at).disabled  # one replay at a time
        assert [b for b in at.button if b.label == "Cancel"]
        # the rest of the page works meanwhile: the stored run is shown and its drill-down can be changed
        assert [s for s in at.selectbox if s.label == "Stored run"][0].value.startswith(f"run {earlier.run_id}:")
        [s for s in at.selectbox if s.label == "Policy"][0].select("cascade").run()
        assert not at.exception and len(stored_runs(db)) == 1
    finally:
        release.set()
    wait_for_the_job(at)
    assert any(f"Stored replay run {earlier.run_id + 1}: 2 policies" in s.value for s in at.success)
    assert not run_button(at).disabled
    assert [s for s in at.selectbox if s.label == "Stored run"][0].value.startswith(f"run {earlier.run_id + 1}:")


def test_cancelling_a_replay_on_the_page_stores_nothing(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    def held(*args: object, steps: Callable[[int, int], None], **kwargs: object) -> SimRun:
        def held_steps(done: int, total: int) -> None:
            if done == 1:
                assert release.wait(60), "the test never released the replay"
            steps(done, total)

        return simulate(*args, steps=held_steps, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("app.jobs.simulate", held)
    at = open_page()
    run_button(at).click().run()
    [b for b in at.button if b.label == "Cancel"][0].click().run()
    release.set()
    wait_for_the_job(at)
    assert any("Cancelled by you; nothing was stored" in e.value for e in at.error)
    assert stored_runs(db) == []
    assert not run_button(at).disabled


def test_a_bad_parameter_is_shown_not_raised(db: Path) -> None:
    at = open_page()
    [m for m in at.multiselect if m.label == "Policies"][0].set_value(["cascade"])
    [t for t in at.text_area if t.label.startswith("Policy parameters")][0].set_value("cascade.nope=1")
    run_button(at).click().run()
    assert not at.exception
    assert any("Replay not started" in e.value and "no parameter 'nope'" in e.value for e in at.error)
    assert "replay_job" not in at.session_state
    assert stored_runs(db) == []


def test_a_replay_that_fails_in_the_background_says_so_and_stores_nothing(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreadable(config: ReplayConfig, db: object = None) -> None:
        raise ValueError(f"trace '{config.trace}' cannot be read")

    monkeypatch.setattr("app.workflows.build_inputs", unreadable)  # in the job's thread, after the form's checks
    at = open_page()
    run_button(at).click().run()
    wait_for_the_job(at)
    assert any(e.value == f"Replay failed; nothing was stored: trace '{TRACE}' cannot be read" for e in at.error)
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
    assert moved["cost per 1,000 requests"] != costs["cost per 1,000 requests"]  # higher threshold: dearer
    assert len(stored_runs(db)) == 1  # nothing stored
