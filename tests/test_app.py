"""The dashboard's Workloads page, driven by Streamlit's AppTest against a real database file."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from slmlab.paths import PROJECT_ROOT
from tests.conftest import AZURE_CODE, SAMPLES, snapshot

MAIN = str(PROJECT_ROOT / "app" / "main.py")


@pytest.fixture
def app(db: Path) -> AppTest:
    at = AppTest.from_file(MAIN, default_timeout=120)
    at.switch_page("app_pages/workloads.py").run()  # directly: the Home page would replay the default trace first
    assert not at.exception, at.exception
    return at


def _metrics(at: AppTest) -> dict[str, str]:
    return {metric.label: metric.value for metric in at.metric}


def test_first_launch_shows_the_embedded_azure_workload(app: AppTest) -> None:
    assert app.title[0].value == "Workloads"
    options = [s for s in app.selectbox if s.label == "Trace"][0].options
    assert options == [
        "azure-llm-inference-2023-conv (19,366 requests, workload)",
        "azure-llm-inference-2023-code (8,819 requests, workload)",
    ]
    metrics = _metrics(app)
    assert metrics["Requests"] == "19,366" and metrics["Arrival rate"] == "5.53 req/s"
    assert any("SYNTHETIC" in w.value and "seed 20231116" in w.value for w in app.warning)
    assert len(app.get("plotly_chart")) >= 1


def test_choosing_another_trace_updates_the_figures(app: AppTest) -> None:
    trace = [s for s in app.selectbox if s.label == "Trace"][0]
    trace.select("azure-llm-inference-2023-code (8,819 requests, workload)").run()
    assert not app.exception
    assert _metrics(app)["Requests"] == "8,819"


def test_upload_imports_a_file(app: AppTest) -> None:
    content = (SAMPLES / "mooncake_trace_head.jsonl").read_bytes()
    app.file_uploader[0].set_value(("mooncake.jsonl", content, "application/json")).run()
    app.button[0].click().run()
    assert not app.exception
    assert any("Imported 206 requests as trace 'mooncake'" in s.value for s in app.success)
    assert any(
        "mooncake (206 requests, workload)" in o for o in [s for s in app.selectbox if s.label == "Trace"][0].options
    )


def test_upload_reports_out_of_order_arrivals(app: AppTest) -> None:
    lines = AZURE_CODE.read_text().splitlines()
    lines[3], lines[4] = lines[4], lines[3]
    app.file_uploader[0].set_value(("shuffled.csv", ("\n".join(lines) + "\n").encode(), "text/csv")).run()
    app.button[0].click().run()
    assert any("1 row(s) arrived earlier" in i.value for i in app.info)


def test_upload_of_a_bad_file_shows_the_same_error_and_changes_nothing(app: AppTest, db: Path) -> None:
    lines = AZURE_CODE.read_text().splitlines()
    lines[5] = lines[5].rsplit(",", 1)[0] + ",-2"
    before = snapshot(db)
    app.file_uploader[0].set_value(("bad-trace.csv", ("\n".join(lines) + "\n").encode(), "text/csv")).run()
    app.button[0].click().run()
    assert not app.exception
    (error,) = app.error
    assert error.value.startswith("bad-trace.csv: column 'GeneratedTokens': bad output tokens")
    assert "row 5: '-2' is negative" in error.value
    assert snapshot(db) == before


def test_reupload_says_already_imported(app: AppTest) -> None:
    app.file_uploader[0].set_value((AZURE_CODE.name, AZURE_CODE.read_bytes(), "text/csv")).run()
    app.button[0].click().run()
    assert any("already stored as trace 'azure-llm-inference-2023-code'" in i.value for i in app.info)


def test_an_unreadable_database_gives_a_clear_error_not_a_crash(db: Path) -> None:
    db.write_text("not a duckdb file\n" * 100)
    at = AppTest.from_file(MAIN, default_timeout=60)
    at.run()
    assert not at.exception
    assert "cannot open the database" in at.error[0].value


def test_upload_speaks_the_pages_words_ignores_columns_keeps_the_result_and_shows_the_new_trace(app: AppTest) -> None:
    usage = b"ts,prompt_len,gen_len,user_id\n0.0,10,5,a\n1.5,20,7,b\n3.0,30,9,c\n"
    app.file_uploader[0].set_value(("usage.csv", usage, "text/csv")).run()
    [t for t in app.text_input if t.label == "Column mapping"][0].set_value(
        "arrival=ts,input_tokens=prompt_len,output_tokens=gen_len"
    ).run()
    assert not app.error, app.error[0].value  # Format 'auto' with a mapping previews as generic, as it imports
    [b for b in app.button if b.label == "Import"][0].click().run()
    said = " ".join(e.value for e in app.error)
    assert "unknown column(s) user_id" in said and "**Ignore columns**" in said and "--" not in said
    [t for t in app.text_input if t.label == "Ignore columns"][0].set_value("user_id").run()
    assert any("unknown column(s) user_id" in e.value for e in app.error)  # the failed import stays until the next
    [b for b in app.button if b.label == "Import"][0].click().run()
    assert not app.error, app.error[0].value
    assert any("Imported 3 requests as trace 'usage'" in s.value for s in app.success)
    assert [s for s in app.selectbox if s.label == "Trace"][0].value == "usage (3 requests, workload)"
    assert _metrics(app)["Requests"] == "3"  # the page shows the trace just imported
    [s for s in app.selectbox if s.label == "Trace"][0].select(
        "azure-llm-inference-2023-code (8,819 requests, workload)"
    ).run()
    assert any("Imported 3 requests as trace 'usage'" in s.value for s in app.success)  # the result stays visible
