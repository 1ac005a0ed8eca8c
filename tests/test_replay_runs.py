"""Routing replays for real: the embedded Azure traces, the RouteLLM recorded outcomes, the real SmolLM2
evaluation feeding quality and confidence, stored runs, and a golden seeded run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import duckdb
import numpy as np
import pytest

from app.cli.main import main
from app.workflows import build_inputs, simulate
from bench.evaluate import EvalConfig, evaluate
from simulators.catalog import load_price_catalogue
from simulators.inputs import ReplayConfig
from simulators.policies.registry import POLICIES, parse_policies
from simulators.replay import run_policies
from simulators.runs import clean
from slmlab.replay_store import load_points, load_requests, load_run, stored_runs
from slmlab.traces.defaults import ensure_default_workloads
from tests.conftest import ROUTELLM

CONV = "azure-llm-inference-2023-conv"
CODE = "azure-llm-inference-2023-code"
GOLDEN = Path(__file__).parent / "golden" / "replay_azure_code_seed7.json"
WEAK, STRONG = "mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview"


def test_done_means_simulate_all_policies_on_the_embedded_default(db: Path, capsys) -> None:
    assert main(["simulate", "--policy", "all", "--json"]) == 0  # imports the embedded traces on first use
    report = json.loads(capsys.readouterr().out)
    assert report["trace"] == CONV and report["frontier_model"] == "gpt-4o"
    assert set(report["policies"]) >= {
        "frontier-only",
        "small-only",
        "random",
        "static-map",
        "cascade",
        "budget",
        "residency-aware+frontier-only",
        "slo-overflow+small-only",
        "learned",
        "oracle",
    }
    for summary in report["policies"].values():
        assert {"cost_usd", "quality", "quality_source", "latency_ms", "residency_violations", "vs_baseline"} <= set(
            summary
        )
        assert (
            summary["latency_ms"]["p95"] > 0 and sum(summary["quality_source"].values()) + summary["rejected"] == 19366
        )
    price = load_price_catalogue()["gpt-4o"]
    con = duckdb.connect(str(db), read_only=True)
    expected = con.execute(
        "SELECT sum(input_tokens * ? + output_tokens * ?) FROM requests r JOIN traces t USING "
        "(trace_id) WHERE t.name = ?",
        [price["input_cost_per_token"], price["output_cost_per_token"], CONV],
    ).fetchall()[0][0]
    con.close()
    assert report["policies"]["frontier-only"]["cost_usd"] == pytest.approx(expected, rel=1e-12)
    assert report["policies"]["residency-aware+frontier-only"]["residency_violations"] == 0
    assert report["policies"]["frontier-only"]["residency_violations"] > 0  # confidential data sent to a US region


def test_routellm_mmlu_random_router_recovers_half_the_gap_and_the_oracle_beats_the_strong_model(
    db: Path, capsys
) -> None:
    assert main(["import", str(ROUTELLM / "mmlu"), "--name", "mmlu"]) == 0
    inputs = build_inputs(ReplayConfig("mmlu"), db=db)
    assert inputs.model_names == (STRONG, WEAK) and inputs.frontier == 0 and inputs.small == 1
    result = run_policies(inputs, parse_policies("small-only,random,oracle"), sweep=True)
    s = result.summaries
    assert s["frontier-only"].quality == pytest.approx(0.8058, abs=1e-4)  # recorded outcomes used as recorded
    assert s["small-only"].quality == pytest.approx(0.6808, abs=1e-4)
    assert 0.45 <= s["random"].sweep["apgr"] <= 0.55
    assert s["oracle"].quality >= s["frontier-only"].quality and s["oracle"].cost_usd < s["frontier-only"].cost_usd
    assert s["oracle"].quality == pytest.approx(np.mean(inputs.correct.any(axis=1)))
    assert inputs.token_sources["input"] == {"estimated from text length": 14042}  # and said so


@pytest.mark.model
def test_measured_quality_and_confidence_of_the_real_small_model_feed_the_replay(db: Path) -> None:
    ensure_default_workloads(db)
    evaluate("smollm2-135m", EvalConfig(task="banking77", limit=6, threads=1), db=db)
    inputs = build_inputs(ReplayConfig(CONV, local_models=("smollm2-135m",)), db=db)
    j = inputs.model_names.index("smollm2-135m")
    tickets = inputs.task == 2  # ticket-classification, the enterprise task banking77 stands for
    assert set(inputs.quality_source[tickets, j].tolist()) == {2}  # measured-task
    assert set(inputs.quality_source[~tickets, j].tolist()) == {3}  # assumption for the rest
    assert set(inputs.confidence_source[tickets, j].tolist()) <= {1}  # resampled from measured confidences
    report = simulate(ReplayConfig(CONV, local_models=("smollm2-135m",)), parse_policies("cascade"), db=db).as_dict()
    assert report["inputs"]["quality_source"]["smollm2-135m"]["measured-task"] == int(tickets.sum())


def test_runs_are_stored_with_everything_needed_to_reproduce_them(db: Path) -> None:
    ensure_default_workloads(db)
    config = ReplayConfig(CODE, seed=3, volume=0.5)
    first = simulate(config, parse_policies("random,cascade"), sweep=True, db=db)
    again = simulate(config, parse_policies("random,cascade"), sweep=True, db=db)
    assert clean(first.result.summaries) == clean(again.result.summaries)
    other = simulate(ReplayConfig(CODE, seed=4, volume=0.5), parse_policies("random"), db=db)
    assert other.result.summaries["random"].cost_usd != first.result.summaries["random"].cost_usd
    stored = load_run(first.run_id, db)
    assert stored["config"]["replay"]["seed"] == 3 and stored["config"]["replay"]["volume"] == 0.5
    assert [p["policy"] for p in stored["config"]["policies"]] == ["frontier-only", "random", "cascade"]
    assert stored["policies"]["cascade"]["cost_usd"] == pytest.approx(first.result.summaries["cascade"].cost_usd)
    runs = stored_runs(db)
    assert [r["run_id"] for r in runs] == [other.run_id, again.run_id, first.run_id]
    assert runs[-1]["trace_hash"] and runs[-1]["catalogue_version"] == "litellm 1.110.2"
    rows = load_requests(first.run_id, db, policy="cascade")
    assert rows.num_rows == first.result.inputs.n and set(rows.column("policy").to_pylist()) == {"cascade"}
    api = first.result.summaries["cascade"].cost_parts.api_usd  # per request: API spend; the fleet is per run
    assert rows.column("cost_usd").to_numpy().sum() == pytest.approx(api)
    points = load_points(first.run_id, db)
    assert points.num_rows == 1 + 21 + 21 and any(points.column("pareto").to_pylist())


def test_time_and_volume_scaling(db: Path) -> None:
    ensure_default_workloads(db)
    base = build_inputs(ReplayConfig(CODE, size_to=None), db=db)  # a fixed fleet: the queue shows the load
    fast = build_inputs(ReplayConfig(CODE, speed=4, size_to=None), db=db)
    assert np.allclose(fast.arrival_s * 4, base.arrival_s)
    double = build_inputs(ReplayConfig(CODE, volume=2), db=db)
    assert double.n == 2 * base.n and (double.copy == np.tile([0, 1], base.n)).all()
    half = build_inputs(ReplayConfig(CODE, volume=0.5), db=db)
    assert abs(half.n - base.n / 2) < 4 * np.sqrt(base.n / 4)  # each kept with probability 1/2
    slow = run_policies(base, parse_policies("small-only"))
    hurried = run_policies(fast, parse_policies("small-only"))
    assert hurried.summaries["small-only"].queue_wait_p95_ms > slow.summaries["small-only"].queue_wait_p95_ms


@pytest.mark.model
def test_missing_quality_is_an_error_that_names_the_model(db: Path, capsys) -> None:
    code = main(["simulate", "--trace", CODE, "--policy", "cascade", "--no-assumptions"])
    err = capsys.readouterr().err
    assert code == 2 and "no quality figure for smollm2-135m" in err and "slmlab eval" in err
    assert main(["simulate", "--trace", "nope"]) == 2 and "no trace named 'nope'" in capsys.readouterr().err
    assert main(["simulate", "--trace", CODE, "--param", "cascade.threshold=x"]) == 2
    assert "threshold must be float" in capsys.readouterr().err


@pytest.mark.model
def test_cli_prints_every_policy_with_sources(db: Path, capsys) -> None:
    assert main(["simulate", "--trace", CODE, "--policy", "cascade,residency-aware+cascade", "--sweep"]) == 0
    out = capsys.readouterr().out
    assert "baseline frontier-only = gpt-4o" in out and "residency-aware+cascade" in out and "APGR" in out
    assert "quality per model from: smollm2-135m assumption" in out and "Pareto front" in out
    assert main(["simulate", "--history"]) == 0 and "trace azure-llm-inference-2023-code" in capsys.readouterr().out
    assert main(["simulate", "--list"]) == 0
    listing = capsys.readouterr().out
    assert all(f"{name}: " in listing for name in POLICIES)


def _ten_digits(text: str) -> float:
    """Ten significant digits: the last bits of a float depend on summation order, the result does not."""
    return float(f"{float(text):.10g}")


def test_seeded_replay_matches_the_golden_file(db: Path) -> None:
    """A change to any policy, the engine or the inputs shows up as a reviewed diff of this file."""
    ensure_default_workloads(db)
    result = run_policies(
        build_inputs(ReplayConfig(CODE, seed=7, volume=0.25), db=db), parse_policies("all"), sweep=True
    )
    summary = json.loads(json.dumps(clean(result.summaries), sort_keys=True), parse_float=_ten_digits)
    if os.environ.get("SLMLAB_UPDATE_GOLDEN"):  # regenerate deliberately, then review and commit the diff
        GOLDEN.write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
    assert summary == json.loads(GOLDEN.read_text(), parse_float=_ten_digits)


def test_residency_filter_in_front_of_a_cascade_escalates_to_a_permitted_region(db: Path) -> None:
    ensure_default_workloads(db)
    inputs = build_inputs(ReplayConfig(CODE), db=db)
    result = run_policies(inputs, parse_policies("cascade,residency-aware+cascade"))
    filtered = result.outcomes["residency-aware+cascade"]
    assert result.summaries["residency-aware+cascade"].residency_violations == 0
    assert result.summaries["cascade"].residency_violations > 0
    eu = inputs.model_names.index("azure/eu/gpt-4o")
    escalated_eu = (filtered.model == eu) & ((filtered.routing.attempts >= 0).sum(axis=1) == 2)
    assert escalated_eu.any()  # confidential data barred from the US region went to the EU one instead
    local_only = inputs.residency == 2  # on-premises-only: nowhere to escalate, the small model's answer stands
    assert np.all(inputs.is_local[filtered.model[local_only]])


@pytest.mark.model
def test_hardware_what_if_takes_local_speeds_from_an_imported_benchmark(db: Path, tmp_path: Path, capsys) -> None:
    """A faster machine benchmarked elsewhere (llama-bench JSON of an RTX 4080) serves the small model in the replay."""
    from tests.test_exchange import LLAMA_BENCH

    ensure_default_workloads(db)
    (tmp_path / "rtx4080.json").write_text(json.dumps(LLAMA_BENCH))
    assert main(["bench", "import", str(tmp_path / "rtx4080.json")]) == 0
    capsys.readouterr()
    here = build_inputs(ReplayConfig(CODE, local_models=("smollm2-135m",)), db=db)
    there = build_inputs(ReplayConfig(CODE, local_models=("smollm2-135m",), profiles=("smollm2-135m=1,2",)), db=db)
    model = there.portfolio.get("smollm2-135m")
    assert (model.prefill_tok_s.value, model.output_tok_s.value) == (7100.002165, 118.881588)
    assert model.output_tok_s.source == "imported" and "RTX 4080" in model.output_tok_s.detail
    assert there.service_s[:, 0].sum() < here.service_s[:, 0].sum()  # the queue of the faster machine is shorter
    assert (
        main(
            [
                "simulate",
                "--trace",
                CODE,
                "--policy",
                "small-only",
                "--local",
                "smollm2-135m",
                "--profile",
                "smollm2-135m=9",
            ]
        )
        == 2
    )
    assert "no benchmark run 9" in capsys.readouterr().err
    assert main(["simulate", "--trace", CODE, "--profile", "gpt-4o=1"]) == 2
    assert "not a local model of the portfolio" in capsys.readouterr().err
