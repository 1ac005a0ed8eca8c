"""The Home page through AppTest: the first thing a new user sees, on the embedded defaults with no setup."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from simulators.headline import headline
from simulators.inputs import ReplayConfig
from slmlab.paths import PROJECT_ROOT
from slmlab.replay_store import load_run, stored_runs
from slmlab.traces.defaults import DEFAULT_TRACES

MAIN = str(PROJECT_ROOT / "app" / "main.py")
TRACE = DEFAULT_TRACES[0].stem


def test_first_run_shows_the_headline_comparison_with_sources(db: Path) -> None:
    at = AppTest.from_file(MAIN, default_timeout=120)
    at.run()  # a fresh database: imports the default traces and replays every policy first
    assert not at.exception, at.exception
    assert at.title[0].value == "slmlab"
    (run,) = stored_runs(db)
    top = headline(load_run(int(run["run_id"]), db))
    metrics = {m.label for m in at.metric}
    assert {
        "cost per 1,000 requests",
        "answered in-house",
        "quality (share answered right)",
        "p95 latency",
        "residency violations",
        "36 months at this traffic (projected)",
    } <= metrics
    assert any(f"policy: **{top.chosen.policy}**" in c.value for c in at.caption)
    assert any("Where these numbers come from" in c.value and "litellm 1.110.2" in c.value for c in at.caption)
    assert any("Chosen by rule" in s.value for s in [*at.success, *at.warning])
    # every figure carries the badge of its source; on the default trace quality and latency are assumptions
    badges = [m.value for m in at.markdown if "-badge[" in m.value]
    assert len(at.metric) == 12 and len(badges) >= len(at.metric)
    shown = {m.label: m.value for m in at.metric}
    assert shown["answered in-house"].endswith("%")
    assert sum(":orange-badge[assumption]" in b for b in badges) >= 4
    assert "Measured on this machine" not in at.markdown[0].value
    (chart,) = at.get("vega_lite_chart")  # Vega-Lite, not Plotly: see app/vega.py
    drawn = pa.ipc.open_stream(chart.proto.data.data).read_all().to_pydict()
    stored = load_run(int(run["run_id"]), db)["policies"]
    assert drawn["policy"] == list(stored) and drawn["cost_usd"] == [stored[p]["cost_usd"] for p in stored]
    assert f"replay run {run['run_id']}" in json.loads(chart.proto.spec)["title"]
    at.run()  # a second visit reuses the stored replay
    assert len(stored_runs(db)) == 1 and not at.exception


def test_a_failed_first_replay_is_shown_with_a_way_to_try_again(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def unreadable(config: ReplayConfig, db: object = None) -> None:
        raise ValueError("the disk is full")

    at = AppTest.from_file(MAIN, default_timeout=120)
    with monkeypatch.context() as patch:
        patch.setattr("app.workflows.build_inputs", unreadable)  # inside the first replay's background job
        at.run()
        assert not at.exception, at.exception
        assert [e.value for e in at.error] == [f"The first replay of '{TRACE}' stopped: the disk is full"]
        assert stored_runs(db) == [] and not at.metric
        failed = at.session_state[f"first_replay_{TRACE}"]
        at.run()  # not retried behind the user's back
        assert at.session_state[f"first_replay_{TRACE}"] is failed and len(at.error) == 1
    [b for b in at.button if b.label == "Replay again"][0].click().run()
    assert not at.exception and not at.error
    assert len(stored_runs(db)) == 1 and "cost per 1,000 requests" in {m.label for m in at.metric}


def test_headline_rule_by_hand() -> None:
    def summary(cost: float, quality: float, in_house: float, violations: int = 0) -> dict:
        return {
            "cost_usd": cost,
            "cost_per_1k_usd": cost,
            "quality": quality,
            "latency_ms": {"p95": 1.0},
            "residency_violations": violations,
            "in_house_share": in_house,
            "requests": 10,
        }

    run = {
        "run_id": 1,
        "trace": "t",
        "seed": 0,
        "inputs": {"quality_source": {}},
        "portfolio": [],
        "policies": {
            "frontier-only": summary(100, 0.9, 0, 5),
            "cheap-bad": summary(10, 0.5, 1),
            "good": summary(60, 0.88, 0.5),
            "cheaper-good-but-leaky": summary(50, 0.89, 0.3, 9),
            "oracle": summary(5, 0.99, 0.5),
        },
    }
    top = headline(run)
    assert top.chosen.policy == "good" and top.reached_floor  # the leaky one breaks residency more than baseline
    run["policies"].pop("good")
    run["policies"].pop("cheaper-good-but-leaky")
    fallback = headline(run)
    assert fallback.chosen.policy == "cheap-bad" and not fallback.reached_floor


def test_a_scaled_replay_is_named_as_a_scaled_what_if(db: Path) -> None:
    from app.cli.main import main

    assert main(["simulate", "--volume", "2", "--policy", "cascade", "--json"]) == 0  # the trace's newest run
    at = AppTest.from_file(MAIN, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    said = " ".join(m.value for m in at.markdown)
    assert "On a scaled what-if" in said and "not your recorded traffic" in said and "On your traffic" not in said
    assert any("scaled what-if (volume x2)" in c.value for c in at.caption)
