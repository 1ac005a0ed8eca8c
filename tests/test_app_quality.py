"""The Model quality page through AppTest, on evaluations of the real SmolLM2 stored in a real DuckDB file."""

from __future__ import annotations

import time
from pathlib import Path

import duckdb
import pytest
from streamlit.testing.v1 import AppTest

from app.cli.main import main
from bench.evaluate import EvalConfig, evaluate
from slmlab.paths import PROJECT_ROOT

MAIN = str(PROJECT_ROOT / "app" / "main.py")


def open_page() -> AppTest:
    at = AppTest.from_file(MAIN, default_timeout=120)
    # open the page directly: the Home page would replay the default trace first
    at.switch_page("app_pages/quality.py").run()
    assert not at.exception, at.exception
    return at


def test_empty_state_says_how_to_start(db: Path) -> None:
    at = open_page()
    assert at.title[0].value == "Model quality"
    assert any("No evaluations yet" in i.value for i in at.info)


@pytest.mark.slow
@pytest.mark.model
def test_stored_evaluations_are_charted_and_browsable(db: Path, capsys) -> None:
    evaluate("smollm2-135m", EvalConfig(task="banking77", limit=12, threads=1), db=db)
    assert main(["eval", "--model", "gpt-4o", "--task", "banking77", "--assume-accuracy", "0.9"]) == 0
    capsys.readouterr()
    at = open_page()
    assert len(at.get("plotly_chart")) >= 3  # accuracy by model, reliability, coverage (+ confusions if mistakes)
    table = at.dataframe[0].value
    assert set(table["source"]) == {"measured", "assumption"}
    browser = at.dataframe[-1].value
    assert len(browser) == 12 and {"text", "reference", "answer", "confidence"} <= set(browser.columns)
    [r for r in at.radio if r.label == "Show"][0].set_value("wrong").run()
    assert all(not right for right in at.dataframe[-1].value["correct"])


def test_an_assumption_set_on_the_page_is_stored_as_such(db: Path) -> None:
    at = open_page()
    [t for t in at.text_input if t.label == "Model name"][0].set_value("claude-x")
    [b for b in at.button if b.label == "Store assumption"][0].click().run()
    assert any("Stored: claude-x" in s.value for s in at.success)
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT DISTINCT model, source FROM outcomes").fetchall() == [("claude-x", "assumption")]
    con.close()


@pytest.mark.slow
def test_an_evaluation_started_on_the_page_runs_in_the_background_and_is_stored(db: Path) -> None:
    at = open_page()
    [n for n in at.number_input if n.label == "Requests (seeded sample)"][0].set_value(3)
    [b for b in at.button if b.label == "Run evaluation"][0].click().run()
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not at.success and not at.error:
        time.sleep(1.0)
        at.run()
    assert not at.error, at.error[0].value
    assert any("Stored eval run 1" in s.value for s in at.success)
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*) FROM outcomes WHERE source = 'measured'").fetchall() == [(3,)]
    con.close()


def test_a_bad_model_file_is_reported_on_the_page_and_the_dashboard_carries_on(db: Path, tmp_path: Path) -> None:
    bogus = tmp_path / "broken.gguf"
    bogus.write_bytes(b"GGUF" + b"\0" * 64)
    at = open_page()
    [s for s in at.selectbox if s.label == "Model"][0].select("Other .gguf file").run()
    [t for t in at.text_input if t.label == "Path to a .gguf file"][0].set_value(str(bogus)).run()
    [b for b in at.button if b.label == "Run evaluation"][0].click().run()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not at.error:
        time.sleep(0.5)
        at.run()
    assert not at.exception
    assert any("Evaluation stopped" in e.value and "broken.gguf" in e.value for e in at.error)


@pytest.mark.model
def test_a_worker_spawned_after_the_dashboard_ran_does_not_start_the_dashboard(
    db: Path, tmp_path: Path, monkeypatch
) -> None:
    """Spawned workers re-import the parent's main module; after a dashboard run that is app/main.py."""
    open_page()
    fresh = tmp_path / "fresh.duckdb"
    monkeypatch.setenv("SLMLAB_DB", str(fresh))
    evaluate("smollm2-135m", EvalConfig(task="banking77", limit=1, threads=1), db=fresh)
    con = duckdb.connect(str(fresh), read_only=True)
    assert con.execute("SELECT name FROM traces").fetchall() == [("task:banking77:test",)]  # no default workload
    con.close()
