"""The Workloads page's upload with gateway and observability logs: mapping preview, the CLI's messages."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from slmlab.paths import PROJECT_ROOT
from tests.conftest import SAMPLES

MAIN = str(PROJECT_ROOT / "app" / "main.py")


@pytest.fixture
def app(db: Path) -> AppTest:
    at = AppTest.from_file(MAIN, default_timeout=120)
    at.switch_page("app_pages/workloads.py").run()
    assert not at.exception, at.exception
    return at


def test_a_litellm_log_shows_its_mapping_then_imports_with_what_it_recorded(app: AppTest) -> None:
    content = (SAMPLES / "litellm_spend_logs_payload.json").read_bytes()
    app.file_uploader[0].set_value(("spend.json", content, "application/json")).run()
    assert not app.exception
    assert any("litellm_spend" in c.value for c in app.caption)
    (mapping,) = app.dataframe
    rows = dict(zip(mapping.value["slmlab field"], mapping.value["read from the log"]))
    assert rows["cost_usd"] == "spend" and rows["start"] == "startTime" and "prompt" not in rows
    assert any("will not be stored" in c.value for c in app.caption)
    app.button[0].click().run()
    assert any("Imported 1 requests as trace 'spend'" in s.value for s in app.success)
    assert any(c.value.startswith("recorded per request: model") and "cost_usd" in c.value for c in app.caption)
    assert any("task, data_class, residency, tenant, latency_slo_ms are synthetic" in c.value for c in app.caption)


def test_an_openai_usage_export_shows_its_assumption_before_and_after_import(app: AppTest) -> None:
    content = (SAMPLES / "openai_usage_completions_example.json").read_bytes()
    app.file_uploader[0].set_value(("usage.json", content, "application/json")).run()
    assert any(w.value.startswith("ASSUMPTION: arrival times reconstructed") for w in app.warning)
    app.button[0].click().run()
    assert any("Imported 5 requests" in s.value for s in app.success)


def test_an_otlp_file_without_genai_spans_gives_the_cli_error(app: AppTest) -> None:
    content = (SAMPLES / "otlp_proto_example_trace.json").read_bytes()
    app.file_uploader[0].set_value(("spans.json", content, "application/json")).run()
    assert any(e.value.startswith("spans.json: none of its 1 span(s) is a GenAI model call") for e in app.error)
