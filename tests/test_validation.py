"""`slmlab validate`: errors of simulated against real percentiles, the stored record, and (with the real model)
a short run through llama.cpp's batched engine and the serving model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from app.cli.main import main
from bench.validation import percentile_errors, step_check
from simulators.deployment import ServiceCurve
from slmlab.traces.defaults import ensure_default_workloads
from slmlab.validations import load_validations, newest_by_load, save_validation, trace_slice

CONV = "azure-llm-inference-2023-conv"


def test_errors_are_simulated_over_real_percentiles_minus_one() -> None:
    real = {"ttft": np.array([1.0, 2.0, 3.0]), "latency": np.array([2.0, 4.0, 6.0])}
    simulated = {"ttft": real["ttft"] * 1.1, "latency": real["latency"] * 0.8}
    errors = percentile_errors(real, simulated)
    assert errors["ttft"]["p50"] == pytest.approx({"simulated_ms": 2200.0, "real_ms": 2000.0, "error": 0.1})
    assert errors["latency"]["p95"]["error"] == pytest.approx(-0.2)


def test_a_slice_of_a_stored_trace_and_a_stored_validation_round_trip(db: Path, capsys) -> None:
    ensure_default_workloads(db)
    rows = trace_slice(CONV, 5, 3, db=db)
    assert len(rows) == 3 and rows[0][0] <= rows[1][0] <= rows[2][0] and all(i > 0 and o > 0 for _, i, o in rows)
    with pytest.raises(ValueError, match="no requests from position"):
        trace_slice(CONV, 10**9, 3, db=db)
    record = {"trace": CONV, "model": "m", "load": 0.5, "requests": 3, "config": {"slots": 4}, "curve": {},
              "errors": {"ttft": {"p50": {"error": 0.1}}}, "per_request": [{"real_ttft_s": 1.0}]}  # fmt: skip
    first = save_validation(record, db=db)
    assert save_validation(record, db=db) == first + 1
    stored = load_validations(db=db)
    assert [s["validation_id"] for s in stored] == [first + 1, first]
    assert stored[0]["errors"] == record["errors"] and stored[0]["per_request"] == record["per_request"]
    capsys.readouterr()
    assert main(["validate", "--list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split("  ")[0] for line in listed] == [f"validation {first + 1}", f"validation {first}"]
    assert all("load 0.5, requests 1-3: ttft p50 +10.0%" in line for line in listed)


@pytest.mark.model
@pytest.mark.slow
def test_validate_plays_a_slice_through_the_real_batched_engine(db: Path, capsys, monkeypatch) -> None:
    import bench.validation
    from bench.engine import Engine

    engines: list[Engine] = []

    def engine(*args, **kwargs) -> Engine:
        engines.append(Engine(*args, **kwargs))
        return engines[-1]

    monkeypatch.setattr(bench.validation, "Engine", engine)
    argv = ["validate", "--slice", "4", "--load", "0.5", "--slots", "2", "--max-input", "8", "--max-output", "4"]
    argv += ["--wake-rounds", "1"]  # sizes scaled by default
    assert main([*argv, "--reps", "2", "--json"]) == 0
    # the slots share one KV cache, as llama-server's default slots do: with a cache per slot llama.cpp computes a
    # step in pieces whenever the busy slots are not 0..B-1, which the curve never sees (README, validation)
    assert [(e.config.kv_unified, e.config.n_seq_max) for e in engines] == [(True, 2)]
    report = json.loads(capsys.readouterr().out)
    assert report["requests"] == 8 and report["validation_id"] == 1 and report["reps"] == 2  # 4 requests x 2 plays
    assert [r["rep"] for r in report["per_request"]] == [0, 0, 0, 0, 1, 1, 1, 1]
    # the trace's sizes scaled so the slice's 95th percentiles meet the caps (8 and 4), as stored and played
    from bench.validation import ValidationConfig, sizes

    played = sizes(trace_slice(CONV, 0, 4, db=db), ValidationConfig(CONV, max_input=8, max_output=4, tokens="scaled"))
    assert report["config"]["tokens"] == "scaled"
    assert [(r["input_tokens"], r["output_tokens"]) for r in report["per_request"][:4]] == list(zip(*played))
    assert len(report["errors_by_rep"]) == 2 and len(report["decode_tok_s_by_rep"]) == 2
    assert "contended" in report["contention"]
    # what waking costs after each idle gap, measured on the same engine; every play's curve carries it
    assert [idle for idle, _ in report["curve"]["wake"]] == [0.3, 1.0, 3.0]
    assert all(extra >= 0 for _, extra in report["curve"]["wake"])
    first = [r for r in report["per_request"] if r["rep"] == 0]
    real = {m: np.array([r[f"real_{m}_s"] for r in first]) for m in ("ttft", "latency")}
    sim = {m: np.array([r[f"sim_{m}_s"] for r in first]) for m in ("ttft", "latency")}
    assert report["errors_by_rep"][0] == percentile_errors(real, sim)  # each play's own errors, the pooled below
    plays = [r["ttft"]["p95"]["real_ms"] for r in report["errors_by_rep"]]
    assert [c["steps"] > 0 and c["real_over_model_total"] > 0 for c in report["steps_by_rep"]] == [True, True]
    assert report["real_spread"]["ttft"]["p95"] == pytest.approx((max(plays) - min(plays)) / np.mean(plays))
    stored = load_validations(db=db)[0]
    assert stored["errors_by_rep"] == report["errors_by_rep"] and stored["reps"] == 2
    assert newest_by_load([stored])[0]["plays"] == 2
    assert newest_by_load([stored])[0]["slice"] == "requests 1-4, sizes scaled"
    # the same plays simulated at the speed their steps ran, and what a 1% slower machine moves: stored with them
    assert stored["errors_at_play_speed"] == report["errors_at_play_speed"] and len(stored["sensitivity"]) == 2
    assert stored["errors_at_play_speed_by_rep"] == report["errors_at_play_speed_by_rep"]
    for metric in ("ttft", "latency"):
        for q in ("p50", "p95"):
            assert report["errors_at_play_speed"][metric][q]["real_ms"] == report["errors"][metric][q]["real_ms"]
            assert np.isfinite(report["sensitivity"][metric][q])
    for metric in ("ttft", "latency"):
        for q in ("p50", "p95"):
            e = report["errors"][metric][q]
            assert e["real_ms"] > 0 and e["simulated_ms"] > 0
            assert e["error"] == pytest.approx(e["simulated_ms"] / e["real_ms"] - 1)
    rows = report["per_request"]
    assert all(r["real_latency_s"] >= r["real_ttft_s"] > 0 and r["sim_latency_s"] >= r["sim_ttft_s"] > 0 for r in rows)
    assert "measured before, between and after 2 plays" in report["curve"]["source"]
    assert "serving loop" in report["curve"]["source"]
    assert report["curve"]["batch"] == [1, 2]  # every batch size the server can run, none interpolated


def test_the_routing_page_overlays_the_newest_validations_cdfs(db: Path) -> None:
    from streamlit.testing.v1 import AppTest

    from app.workflows import simulate
    from simulators.inputs import ReplayConfig
    from simulators.policies.registry import parse_policies
    from slmlab.paths import PROJECT_ROOT
    from slmlab.validations import cdf_points

    ensure_default_workloads(db)
    simulate(ReplayConfig(CONV), parse_policies("frontier-only"), db=db)
    per_request = [{"real_ttft_s": t, "sim_ttft_s": t * 1.1, "real_latency_s": 2 * t, "sim_latency_s": 1.9 * t}
                   for t in (0.5, 1.0, 2.0)]  # fmt: skip
    errors = {m: {q: {"error": e} for q in ("p50", "p95")} for m, e in (("ttft", 0.1), ("latency", -0.05))}
    at_speed = {m: {q: {"error": e} for q in ("p50", "p95")} for m, e in (("ttft", 0.02), ("latency", -0.01))}
    record = {"trace": CONV, "model": "smollm2-135m", "load": 0.9, "requests": 3, "config": {"slots": 4},
              "curve": {}, "errors": errors, "per_request": per_request, "errors_at_play_speed": at_speed}  # fmt: skip
    rows = cdf_points(record)
    assert len(rows) == 12 and [r["share"] for r in rows[:3]] == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert {r["series"] for r in rows} == {"ttft real", "ttft simulated", "latency real", "latency simulated"}
    save_validation(record, db=db)
    at = AppTest.from_file(str(PROJECT_ROOT / "app" / "main.py"), default_timeout=120)
    at.switch_page("app_pages/routing.py").run()
    assert not at.exception, at.exception
    assert any(h.value == "Simulator against a real batched engine" for h in at.subheader)
    assert any(
        "requests 1-3 of this trace" in c.value
        and "ttft p50 +10.0%" in c.value
        and "latency p95 -5.0%" in c.value
        and "at the speed each play's steps ran" in c.value
        and "ttft p95 +2.0%, latency p50 -1.0%" in c.value
        for c in at.caption
    )
    table = next(d.value for d in at.dataframe if "slice" in d.value.columns)  # errors in percent, as captioned
    assert table["ttft p50"].tolist() == pytest.approx([10.0]) and table["slice"].tolist() == ["requests 1-3"]


def test_the_table_keeps_the_newest_validation_of_each_slice_and_load() -> None:
    def record(vid: int, load: float, error: float, start: int = 0, tokens: str = "capped", **extra: object):
        errors = {m: {q: {"error": error} for q in ("p50", "p95")} for m in ("ttft", "latency")}
        config = {"start": start, "count": 10, **({"tokens": tokens} if tokens != "capped" else {})}
        return {"validation_id": vid, "load": load, "requests": 30, "errors": errors, "config": config, **extra}

    newest_first = [
        record(5, 0.9, 0.05, tokens="scaled", reps=3),  # the same slice with the trace's sizes kept: its own row
        record(4, 0.9, 0.12, start=160, reps=3),
        record(3, 0.9, 0.04, reps=3, contention={"contended": False}),
        record(2, 0.3, -0.08, reps=3),
        record(1, 0.9, -0.3, reps=3),
    ]
    rows = newest_by_load(newest_first)
    assert [(r["validation"], r["load"], r["slice"], r["plays"]) for r in rows] == [
        (2, 0.3, "requests 1-10", 3),
        (3, 0.9, "requests 1-10", 3),
        (5, 0.9, "requests 1-10, sizes scaled", 3),
        (4, 0.9, "requests 161-170", 3),
    ]
    assert rows[1]["latency p95"] == 0.04 and rows[0]["contended"] == "not sampled" and rows[1]["contended"] == "no"


def test_each_step_is_checked_against_the_models_cost_of_that_step() -> None:
    curve = ServiceCurve(
        batch=(1, 2), decode_tok_s=(100.0, 160.0), prefill_tok_s=200.0, prefill_by_batch=(200.0, 250.0),
        kv_bytes_per_token=0.0, weights_bytes=0.0, source="test", wake=((1.0, 0.02), (3.0, 0.04)),
    )  # fmt: skip
    # (decoding, prompt tokens, prompts admitted, seconds, idle before): a decode step of 1 (model 10 ms), of 2
    # (12.5 ms), a step admitting 2 prompts of 25 tokens beside 1 decoding sequence: 50 / 250 s + the decode
    # curve's slope (12.5 - 10 ms) for the running one, not its whole 10 ms iteration = 202.5 ms; and one prompt of
    # 20 tokens on a server idle for 2 s: 100 ms + the wake cost halfway between 1 s (20 ms) and 3 s (40 ms)
    steps = np.array([[1, 0, 0, 0.011, 0], [2, 0, 0, 0.0125, 0], [1, 50, 2, 0.21, 0], [0, 20, 1, 0.13, 2.0]])
    check = step_check(steps, curve, slots=2)
    assert check["steps"] == 4
    model = 0.010 + 0.0125 + 0.2025 + 0.13
    assert check["real_over_model_total"] == pytest.approx((0.011 + 0.0125 + 0.21 + 0.13) / model)
    assert check["real_over_model_median_decode_only"] == pytest.approx((1.1 + 1.0) / 2)
    assert check["real_over_model_median_with_prompts"] == pytest.approx((0.21 / 0.2025 + 1.0) / 2)


@pytest.mark.parametrize(
    "bad",
    [{"reps": 0}, {"reps": 21}, {"curve_reps": 0}, {"load": 2.5}, {"count": 1}, {"wake_rounds": -1}, {"tokens": "x"}],
)
def test_a_validation_config_out_of_range_is_refused(bad: dict) -> None:
    from bench.validation import ValidationConfig

    with pytest.raises(ValueError):
        ValidationConfig(trace=CONV, **bad)
    ValidationConfig(trace=CONV, reps=3, curve_reps=10, wake_rounds=0)  # in range


def test_scaled_sizes_keep_the_slices_spread_and_capped_ones_clip_it() -> None:
    from bench.validation import ValidationConfig, sizes

    # prompts 100..2000 and outputs 10..390 tokens: the 95th percentiles are 1905 and 371
    requests = [(float(i), 100 * (i + 1), 10 + 20 * i) for i in range(20)]
    capped = sizes(requests, ValidationConfig(trace=CONV, max_input=64, max_output=16, tokens="capped"))
    assert capped[0].tolist() == [64.0] * 20 and capped[1].tolist() == [10.0] + [16.0] * 19
    tokens_in, tokens_out = sizes(requests, ValidationConfig(trace=CONV, max_input=64, max_output=16, tokens="scaled"))
    assert tokens_in.tolist() == np.clip(np.rint(np.arange(100, 2001, 100) * 64 / 1905), 1, 64).tolist()
    assert tokens_in[0] == 3 and tokens_in[9] == 34 and tokens_in[-1] == 64  # 100, 1000 and 2000 (clipped)
    assert tokens_out.tolist() == np.clip(np.rint(np.arange(10, 391, 20) * 16 / 371), 1, 16).tolist()
    assert tokens_out.min() == 1 and len(set(tokens_out.tolist())) > 10


def test_a_slower_machines_curve_takes_each_step_that_much_longer() -> None:
    from bench.validation import sensitivity, slower

    curve = ServiceCurve(
        batch=(1, 2), decode_tok_s=(100.0, 160.0), prefill_tok_s=200.0, prefill_by_batch=(200.0, 250.0),
        kv_bytes_per_token=0.0, weights_bytes=0.0, source="test", wake=((1.0, 0.02), (3.0, 0.04)),
    )  # fmt: skip
    twice = slower(curve, 2.0)
    assert twice.iteration_s(2) == pytest.approx(2 * curve.iteration_s(2))
    assert twice.prompt_s(2) == pytest.approx(2 * curve.prompt_s(2))
    assert twice.beside_prompts_s(2) == pytest.approx(2 * curve.beside_prompts_s(2))
    assert twice.wake == ((1.0, 0.04), (3.0, 0.08)) and twice.batch == curve.batch and twice.source == "test"
    times = {"ttft": np.array([0.1, 0.2, 0.4]), "latency": np.array([1.0, 2.0, 3.0])}
    moved = sensitivity(times, {"ttft": times["ttft"] * 1.05, "latency": times["latency"] + 0.5})
    assert moved["ttft"] == pytest.approx({"p50": 0.05, "p95": 0.05})
    assert moved["latency"] == pytest.approx({"p50": 0.25, "p95": 0.5 / np.percentile([1.0, 2.0, 3.0], 95)})
