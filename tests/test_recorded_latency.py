"""Recorded latency wins: an API attempt whose latency an outcome file or a gateway log recorded takes exactly that
long in a replay, the catalogue's assumption times only the rest, and every summary says which timed the answer.

Hand-built cases (figures worked out by hand, the two-model inputs of `tests.test_replay_policies`) and the shipped
LiteLLM and Langfuse logs, replayed as recorded."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import duckdb
import numpy as np
import pytest

from simulators.inputs import LATENCY_SOURCES, ReplayConfig, ReplayInputs
from simulators.policies.base import Routing
from simulators.policies.cascade import Cascade
from simulators.replay import execute, summarise
from simulators.results import PolicySummary
from slmlab.traces.importer import import_trace
from slmlab.traces.records import load_records
from tests.conftest import SAMPLES
from tests.test_replay_policies import BIG, SMALL, make_inputs, route

LITELLM = SAMPLES / "litellm_spend_logs_payload.json"
LANGFUSE_TOOLS = SAMPLES / "langfuse_pydantic-ai-tools-2025-12-04.trace.json"
ROUTERBENCH = SAMPLES / "routerbench_head.csv"


def recorded(inputs: ReplayInputs, big: list[float]) -> ReplayInputs:
    """`inputs` with these end-to-end seconds recorded on the API model (NaN: none) and nothing on the local one."""
    seconds = np.full((inputs.n, 2), np.nan)
    seconds[:, BIG] = big
    return replace(inputs, recorded_latency=np.asfortranarray(seconds))


def attempts(*rows: list[int]) -> Routing:
    return Routing(attempts=np.array(rows, dtype=np.int16))


# make_inputs: 10 input and 6 output tokens; the API model's first token 0.2 s and 1 s end to end, the local model
# 0.5 s prefill and 2 s service on one FIFO server


def test_frontier_only_takes_each_recorded_latency_and_the_catalogue_fills_the_rest() -> None:
    inputs = recorded(make_inputs(3, arrivals=[0, 1, 2], slo_ms=[200, 2000, 2000]), [0.15, 2.5, np.nan])
    outcome = execute(inputs, attempts([BIG], [BIG], [BIG]), "frontier-only")
    assert outcome.latency_s.tolist() == pytest.approx([0.15, 2.5, 1.0], abs=1e-12)
    assert outcome.ttft_s.tolist() == pytest.approx([0.15, 0.2, 0.2], abs=1e-12)  # min(0.2 s, recorded)
    assert outcome.queue_wait_s.tolist() == [0, 0, 0]
    assert outcome.slo_violation.tolist() == [False, True, False]  # the assumed 1 s: late, on time, on time
    assert outcome.latency_recorded.tolist() == [True, True, False] and outcome.latency_fallback_attempts == 0
    summary = summarise(inputs, outcome)
    assert summary.latency_source == {"recorded": 2, "assumption": 1}
    assert summary.as_dict()["latency_source"] == {"recorded": 2, "assumption": 1}
    assert PolicySummary.from_dict("x", summary.as_dict()).latency_source == summary.latency_source
    assert "latency_fallback_attempts" not in summary.extra


def test_nothing_recorded_changes_nothing_and_says_nothing() -> None:
    plain = make_inputs(3, arrivals=[0, 1, 2])
    outcome = execute(plain, attempts([BIG], [SMALL], [BIG]), "mixed")
    assert outcome.latency_s.tolist() == [1.0, 2.0, 1.0] and outcome.latency_recorded is None
    summary = summarise(plain, outcome)
    assert summary.latency_source == {} and "latency_source" not in summary.as_dict()


def test_a_cascade_escalating_from_local_to_a_recorded_api_call() -> None:
    base = make_inputs(3, arrivals=[0, 10, 20], confidence=[0.9, 0.2, 0.6], correct_small=[True, False, False])
    inputs = recorded(base, [0.4, 0.1, 0.4])
    outcome = execute(inputs, route(Cascade(threshold=0.5), inputs), "cascade")
    assert outcome.model.tolist() == [SMALL, BIG, SMALL]
    # request 1: 2 s local attempt, then the API call as recorded, 0.1 s (first token at min(0.2, 0.1) s)
    assert outcome.latency_s.tolist() == pytest.approx([2.0, 2.1, 2.0], abs=1e-12)
    assert outcome.ttft_s.tolist() == pytest.approx([0.5, 2.1, 0.5], abs=1e-12)
    assert outcome.first_attempt_s[1] == pytest.approx(2.0) and np.isnan(outcome.first_attempt_s[0])
    assert outcome.latency_fallback_attempts == 0
    summary = summarise(inputs, outcome)
    assert summary.latency_source == {"recorded": 1, "assumption": 2}  # two answered by the local model


def test_an_api_call_before_a_later_attempt_moves_that_attempt_without_arrivals() -> None:
    base = make_inputs(2)
    inputs = recorded(replace(base, has_arrivals=False, arrival_s=np.zeros(2)), [0.3, np.nan])
    outcome = execute(inputs, attempts([BIG, SMALL], [BIG, SMALL]), "api-then-local")
    # no arrivals, no queue: the local attempt starts when the API call ends (0.3 s recorded, 1 s assumed)
    assert outcome.latency_s.tolist() == pytest.approx([2.3, 3.0], abs=1e-12)
    assert outcome.ttft_s.tolist() == pytest.approx([0.8, 1.5], abs=1e-12)
    assert outcome.first_attempt_s.tolist() == pytest.approx([0.3, 1.0], abs=1e-12)
    assert outcome.latency_fallback_attempts == 0


def test_a_recorded_api_call_before_a_queued_local_attempt_falls_back_and_is_counted() -> None:
    inputs = recorded(make_inputs(2, arrivals=[0, 0.5]), [0.3, 0.4])
    outcome = execute(inputs, attempts([BIG, SMALL], [BIG, SMALL]), "api-then-local")
    # both API calls keep the assumed 1 s (moving them would move the local queue): local ready at 1.0 and 1.5 s,
    # 2 s each on one server, so request 1 waits until 3.0 s
    assert outcome.latency_s.tolist() == pytest.approx([3.0, 4.5], abs=1e-12)
    assert outcome.queue_wait_s.tolist() == pytest.approx([0.0, 1.5], abs=1e-12)
    assert outcome.latency_fallback_attempts == 2
    summary = summarise(inputs, outcome)
    assert summary.latency_source == {"assumption": 2}  # the local model answered both
    assert summary.extra["latency_fallback_attempts"] == 2
    assert "timed from the catalogue instead" in str(summary.extra["latency_note"])
    # a recorded call with no local attempt after it in its request still takes its recorded time
    outcome = execute(inputs, attempts([BIG, SMALL], [BIG, -1]), "mixed")
    assert outcome.latency_fallback_attempts == 1
    assert outcome.latency_s.tolist() == pytest.approx([3.0, 0.4], abs=1e-12)
    assert outcome.latency_recorded.tolist() == [False, True]


def _assumed(tmp_path: Path, *models: str) -> str:
    """A quality assumptions file for models no shipped file covers (the logs record no answer quality)."""
    path = tmp_path / "quality.json"
    path.write_text(json.dumps({"models": dict.fromkeys(models, 0.9)}), encoding="utf-8")
    return str(path)


def _litellm(db: Path, tmp_path: Path, **changes: str) -> str:
    """The shipped LiteLLM record imported as is, or with some fields changed (a copy in the test's folder)."""
    if not changes:
        return import_trace(LITELLM, db=db).name
    record = json.loads(LITELLM.read_text(encoding="utf-8"))
    path = tmp_path / "litellm_changed.json"
    path.write_text(json.dumps({**record, **changes}), encoding="utf-8")
    return import_trace(path, db=db).name


@pytest.mark.parametrize(("path", "model"), [(LITELLM, "gpt-4o"), (LANGFUSE_TOOLS, "gpt-4o-mini-2024-07-18")])
def test_shipped_logs_replay_at_their_recorded_latency(db: Path, tmp_path: Path, path: Path, model: str) -> None:
    from app.workflows import build_inputs
    from simulators.policies.registry import parse_policies
    from simulators.replay import run_policies

    name = import_trace(path, db=db).name
    calls = load_records(db, name)
    assert set(calls["model"]) == {model} and not np.isnan(calls["latency_ms"]).any()
    config = ReplayConfig(name, api_models=(model,), local_models=(), assumptions=_assumed(tmp_path, model))
    inputs = build_inputs(config, db=db)  # as recorded: each request on the model it was recorded on
    result = run_policies(inputs, parse_policies("frontier-only"))
    order = {rid: i for i, rid in enumerate(inputs.request_ids.tolist())}
    rows = [order[rid] for rid in calls["request_id"]]
    latency = result.outcomes["frontier-only"].latency_s[rows]
    np.testing.assert_allclose(latency, calls["latency_ms"] / 1000.0, rtol=0, atol=1e-9)
    assert result.summaries["frontier-only"].latency_source == {"recorded": len(rows)}


def test_the_litellm_call_times_the_default_portfolio_and_its_cascade_exactly(db: Path) -> None:
    from app.workflows import build_inputs

    inputs = build_inputs(ReplayConfig(import_trace(LITELLM, db=db).name), db=db)
    api, local = inputs.model_names.index("gpt-4o"), inputs.model_names.index("smollm2-135m")
    # recorded on gpt-4o only: the log's model maps to the catalogue key the bill check prices it as
    assert np.flatnonzero(~np.isnan(inputs.recorded_latency[0])).tolist() == [api]
    assert inputs.recorded_latency[0, api] == pytest.approx(0.004583, abs=1e-12)
    assert inputs.deployments  # arrivals recorded: local models are served by their deployments
    catalogue = replace(inputs, recorded_latency=None)
    change = inputs.recorded_latency[0, api] - inputs.service_s[0, api]
    for rows in ([local, api], [api, local]):  # a cascade up from local, and an API call before a local attempt
        timed, assumed = execute(inputs, attempts(rows), "x"), execute(catalogue, attempts(rows), "x")
        assert timed.latency_s[0] - assumed.latency_s[0] == pytest.approx(change, abs=1e-9)
        assert timed.latency_fallback_attempts == 0  # the batched path walks the recorded time itself
    answered = summarise(inputs, execute(inputs, attempts([local, api]), "x"))
    assert answered.latency_source == {"recorded": 1}
    answered = summarise(inputs, execute(inputs, attempts([api, local]), "x"))
    assert list(answered.latency_source) == [LATENCY_SOURCES[inputs.model_latency_source[local]]]


def test_local_fleets_see_requests_when_their_recorded_api_calls_end(db: Path, tmp_path: Path) -> None:
    from app.workflows import build_inputs

    name = import_trace(LANGFUSE_TOOLS, db=db).name
    api = "gpt-4o-mini-2024-07-18"
    config = ReplayConfig(
        name, api_models=(api,), local_models=("smollm2-135m",), assumptions=_assumed(tmp_path, api, "smollm2-135m")
    )
    inputs = build_inputs(config, db=db)
    assert inputs.deployments and inputs.n == 4
    j, local = inputs.model_names.index(api), inputs.model_names.index("smollm2-135m")
    outcome = execute(inputs, attempts(*[[j, local]] * inputs.n), "api-then-local")
    assert outcome.latency_fallback_attempts == 0
    # the local attempt is ready when the API call ends, arrival + its recorded latency; the fleet's queue comes after
    np.testing.assert_allclose(
        outcome.first_attempt_s - outcome.queue_wait_s, inputs.recorded_latency[:, j], rtol=0, atol=1e-9
    )


def test_a_logged_model_maps_to_the_catalogue_key_it_is_priced_as(db: Path, tmp_path: Path) -> None:
    from app.workflows import build_inputs

    name = _litellm(db, tmp_path, model="mistral-large-latest")  # the catalogue has 'mistral/mistral-large-latest'
    api = ("gpt-4o", "mistral/mistral-large-latest")
    config = ReplayConfig(name, api_models=api, local_models=(), assumptions=_assumed(tmp_path, *api))
    inputs = build_inputs(config, db=db)
    assert np.isnan(inputs.recorded_latency[0, 0]) and inputs.recorded_latency[0, 1] == pytest.approx(0.004583)


def test_a_failed_call_records_no_latency(db: Path, tmp_path: Path) -> None:
    from app.workflows import build_inputs
    from simulators.policies.registry import parse_policies
    from simulators.replay import run_policies

    name = _litellm(db, tmp_path, status="failure")
    inputs = build_inputs(ReplayConfig(name, api_models=("gpt-4o",), local_models=()), db=db)
    assert inputs.recorded_latency is None
    summary = run_policies(inputs, parse_policies("frontier-only")).summaries["frontier-only"]
    assert summary.latency_source == {} and summary.latency.p50_ms == pytest.approx(600 + 20 / 80 * 1000)


def test_an_outcome_files_recorded_latency_is_used_as_recorded(db: Path) -> None:
    from app.workflows import build_inputs
    from simulators.policies.registry import parse_policies
    from simulators.replay import run_policies

    name = import_trace(ROUTERBENCH, db=db).name
    con = duckdb.connect(str(db))  # the shipped RouterBench rows record no latency: add some to two of them
    try:
        ids = [r[0] for r in con.execute("SELECT request_id FROM requests ORDER BY seq LIMIT 2").fetchall()]
        con.execute(
            "UPDATE outcomes SET latency_ms = 1234.5 WHERE request_id = ? AND model = 'gpt-4-1106-preview'", [ids[0]]
        )
        con.execute(
            "UPDATE outcomes SET latency_ms = 50.0 WHERE request_id = ? AND model = 'gpt-4-1106-preview'", [ids[1]]
        )
    finally:
        con.close()
    inputs = build_inputs(ReplayConfig(name), db=db)
    j = inputs.model_names.index("gpt-4-1106-preview")
    assert int((~np.isnan(inputs.recorded_latency)).sum()) == 2
    result = run_policies(inputs, parse_policies("frontier-only"))
    assert inputs.model_names[inputs.frontier] == "gpt-4-1106-preview"
    outcome = result.outcomes["frontier-only"]
    rows = [inputs.request_ids.tolist().index(rid) for rid in ids]
    assert outcome.latency_s[rows].tolist() == pytest.approx([1.2345, 0.05], abs=1e-12)
    assert outcome.ttft_s[rows].tolist() == pytest.approx([0.6, 0.05], abs=1e-12)
    assert result.summaries["frontier-only"].latency_source == {"recorded": 2, "assumption": inputs.n - 2}
    others = np.delete(np.arange(inputs.n), rows)
    np.testing.assert_allclose(outcome.latency_s[others], inputs.service_s[others, j], rtol=0, atol=1e-12)


def test_simulate_says_which_latencies_were_recorded(db: Path, capsys) -> None:
    from app.cli.main import main

    name = import_trace(LITELLM, db=db).name
    assert main(["simulate", "--trace", name, "--policy", "frontier-only"]) == 0
    out = capsys.readouterr().out
    assert "latency per request as recorded for: gpt-4o 1" in out
    assert main(["simulate", "--trace", name, "--policy", "frontier-only", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["policies"]["frontier-only"]["latency_source"] == {"recorded": 1}
    assert report["inputs"]["latency_source"]["gpt-4o"] == {"recorded": 1}


def test_the_routing_page_says_which_latencies_were_recorded(db: Path) -> None:
    from streamlit.testing.v1 import AppTest

    from app.workflows import simulate
    from simulators.policies.registry import parse_policies
    from slmlab.paths import PROJECT_ROOT

    name = import_trace(LITELLM, db=db).name
    simulate(ReplayConfig(name), parse_policies("frontier-only"), db=db)
    at = AppTest.from_file(str(PROJECT_ROOT / "app" / "main.py"), default_timeout=120)
    at.switch_page("app_pages/routing.py").run()
    assert not at.exception, at.exception
    assert any("**Latency as recorded** per request" in c.value and "gpt-4o 1." in c.value for c in at.caption)
