"""Local models served with continuous batching: one slot is exactly today's FIFO queue, batching and KV memory
behave as a server does, the sized fleet is the smallest that meets the SLO, an undersized one is reported as
overloaded, and the replay's cost is API spend + that fleet."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from app.workflows import build_inputs
from simulators.deployment import (
    Deployment,
    DeploymentError,
    HardwareProfile,
    Slo,
    assumed_curve,
    fleet_cost,
    percentile_of,
    profile,
    serve,
    size_fleet,
)
from simulators.inputs import ReplayConfig
from simulators.policies.registry import parse_policies
from simulators.queueing import fifo
from simulators.replay import replay_policy, run_policies, summarise
from slmlab.traces.defaults import ensure_default_workloads

CODE = "azure-llm-inference-2023-code"
PREFILL, DECODE = 285.0, 113.0


def _profile(memory: float = 4e9, slots: int = 8) -> HardwareProfile:
    return HardwareProfile(
        name="test", description="a test machine", memory_bytes=memory, slots=slots, capex_usd=3650.0,
        lifetime_months=10.0, watts_busy=100.0, watts_idle=50.0, ops_usd_per_month=73.05, tariff_usd_per_kwh=0.5,
        batch_speedup=((1, 1.0), (4, 2.0), (8, 2.5)), source="unit test",
    )  # fmt: skip


def _deployment(slots: int, memory: float = 4e9, servers: int | None = 1) -> Deployment:
    prof = _profile(memory, slots)
    curve = assumed_curve(prof, DECODE, PREFILL, 1000.0, 1e8, "test speeds")
    return Deployment("m", prof, curve, slots, servers)


def _requests(n: int, rate: float, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    arrival = np.cumsum(rng.exponential(1 / rate, n))
    return arrival, rng.integers(10, 600, n).astype(float), rng.integers(1, 300, n).astype(float)


@pytest.mark.parametrize("servers", [1, 3])
def test_one_slot_is_exactly_the_fifo_queue(servers: int) -> None:
    arrival, tokens_in, tokens_out = _requests(3000, 0.35 * servers)
    service = tokens_in / PREFILL + tokens_out / DECODE
    expected = fifo(arrival, service, servers)
    served = serve(_deployment(1), servers, arrival, tokens_in, tokens_out)
    np.testing.assert_allclose(served.start, expected.start, rtol=0, atol=1e-9)
    np.testing.assert_allclose(served.first, expected.start + tokens_in / PREFILL, rtol=0, atol=1e-9)
    np.testing.assert_allclose(served.finish, expected.finish, rtol=0, atol=1e-9)
    assert served.busy_s == pytest.approx(service.sum(), rel=1e-9)


def test_batching_runs_sequences_together_at_the_curves_speed() -> None:
    """Four prompts at once on one 4-slot server: each later prompt is processed in the next step beside one decode
    token of each running sequence (prompt time + each running token at the decode curve's slope, the iteration's
    fixed part paid once by the step), and all four run together."""
    dep = _deployment(4)
    served = serve(dep, 1, np.zeros(4), np.full(4, 57.0), np.full(4, 100.0))
    itl, beside = dep.curve.iteration_s(4), dep.curve.beside_prompts_s(4)
    assert itl[4] == pytest.approx(4 / (2.0 * DECODE))  # the curve: 2x aggregate at batch 4
    # slope (itl[4] - itl[1]) / 3 = 1 / (3 DECODE) a running sequence; an iteration of one costs 1 / DECODE
    np.testing.assert_allclose(beside, np.arange(5) / (3 * DECODE))
    assert served.first[0] == pytest.approx(57.0 / PREFILL)
    np.testing.assert_allclose(np.diff(served.first), 57.0 / PREFILL + beside[1:4])
    assert np.all(served.start[1:] == served.first[:-1])  # admitted at the end of the previous step
    assert np.all(served.first < served.finish.min())  # all four decode together
    alone = serve(_deployment(1), 1, np.zeros(4), np.full(4, 57.0), np.full(4, 100.0))
    assert served.finish.max() < alone.finish.max()  # batching serves the four sooner than one at a time


def test_waking_an_idle_server_costs_its_first_step_the_measured_wake() -> None:
    """A request that finds the server idle pays the wake cost at that idle time (linear between measured gaps,
    flat beyond) in its prompt step, once; one that joins a busy server pays none; no wake measured, no cost."""
    plain = _deployment(4)
    woken = replace(plain, curve=replace(plain.curve, wake=((1.0, 0.02), (3.0, 0.04))))
    # at 0 (idle 0: nothing), 0.1 s (joins the busy server: nothing), then about 2 s and 200 s after it emptied
    arrival = np.array([0.0, 0.1, 2.5, 200.0])
    tokens_in, tokens_out = np.full(4, 57.0), np.full(4, 10.0)
    base, served = serve(plain, 1, arrival, tokens_in, tokens_out), serve(woken, 1, arrival, tokens_in, tokens_out)
    np.testing.assert_allclose(served.first[:2], base.first[:2], rtol=0, atol=1e-12)
    idle = arrival[2] - base.finish[:2].max()
    assert 1.0 < idle < 3.0
    assert served.first[2] - base.first[2] == pytest.approx(0.02 + (idle - 1.0) / 2.0 * 0.02)
    assert served.first[3] - base.first[3] == pytest.approx(0.04)  # beyond the last measured gap: flat
    assert served.finish[3] - served.first[3] == pytest.approx(base.finish[3] - base.first[3])  # decode unchanged
    assert base.first[0] == pytest.approx(57.0 / PREFILL)  # the first request found the server at its start
    with pytest.raises(DeploymentError, match="wake"):
        replace(plain.curve, wake=((3.0, 0.04), (1.0, 0.02)))


def test_kv_memory_bounds_the_sequences_running_at_once() -> None:
    arrival, tokens_in, tokens_out = np.zeros(6), np.full(6, 100.0), np.full(6, 100.0)
    roomy = serve(_deployment(8, memory=1e8 + 6 * 200_000.0), 1, arrival, tokens_in, tokens_out)
    tight = serve(_deployment(8, memory=1e8 + 2 * 200_000.0), 1, arrival, tokens_in, tokens_out)  # two fit
    assert np.all(roomy.start < roomy.finish.min())  # all six admitted before any ends
    running = [np.sum((tight.start <= t) & (tight.finish > t)) for t in np.unique(tight.start)]
    assert max(running) == 2 and tight.finish.max() > roomy.finish.max()


def test_the_sized_fleet_is_the_smallest_that_meets_the_slo() -> None:
    arrival, tokens_in, tokens_out = _requests(4000, 6.0)
    slo = Slo.parse("ttft_p95=3s")
    dep = replace(_deployment(8, servers=None), slo=slo)
    sizing, served = size_fleet(dep, slo, arrival, tokens_in, tokens_out)
    assert sizing.attainable and served.servers == sizing.servers > 1
    assert percentile_of(served, arrival, "ttft", 95) <= 3.0
    fewer = serve(dep, sizing.servers - 1, arrival, tokens_in, tokens_out)
    assert percentile_of(fewer, arrival, "ttft", 95) > 3.0
    one_slot = replace(_deployment(1, servers=None), slo=slo)
    assert size_fleet(one_slot, slo, arrival, tokens_in, tokens_out)[0].servers > sizing.servers  # batching pays


def test_an_unattainable_slo_is_sized_to_its_floor_and_said_so() -> None:
    arrival, tokens_in, tokens_out = _requests(2000, 2.0)
    slo = Slo.parse("ttft_p95=100ms")  # prompts alone take longer than that
    sizing, served = size_fleet(replace(_deployment(8, servers=None), slo=slo), slo, arrival, tokens_in, tokens_out)
    floor = np.percentile(tokens_in / PREFILL, 95)
    assert not sizing.attainable and sizing.floor_s == pytest.approx(floor)
    assert percentile_of(served, arrival, "ttft", 95) <= floor * 1.1 + 1e-9


def test_an_undersized_fleet_is_overloaded_with_its_backlog_growth() -> None:
    arrival, tokens_in, tokens_out = _requests(3000, 5.0)
    served = serve(_deployment(8), 1, arrival, tokens_in, tokens_out)
    assert served.overloaded and served.backlog_end > 1000
    assert served.backlog_growth_per_hour == pytest.approx(served.backlog_end / (served.span_s / 3600))
    assert not serve(_deployment(8), 20, arrival, tokens_in, tokens_out).overloaded


def test_fleet_cost_is_amortised_hardware_energy_and_operations() -> None:
    cost = fleet_cost(_profile(), servers=2, span_s=7200.0, busy_s=3600.0)
    assert cost.hardware_usd == pytest.approx(2 * 2 * 3650.0 / 10 / 730.5)
    assert cost.operations_usd == pytest.approx(2 * 2 * 73.05 / 730.5)
    assert cost.energy_usd == pytest.approx((3600 * 100 + (14400 - 3600) * 50) / 3.6e6 * 0.5)


def test_slo_parsing_and_the_shipped_profile() -> None:
    assert Slo.parse("p95=2s") == Slo("latency", 95.0, 2.0)
    assert Slo.parse("ttft_p99=250ms") == Slo("ttft", 99.0, 0.25)
    with pytest.raises(DeploymentError, match="METRIC=TIME"):
        Slo.parse("fast please")
    shipped = profile("this-machine")
    assert shipped.slots >= 1 and "assumption" in shipped.source
    with pytest.raises(DeploymentError, match="known: this-machine"):
        profile("nope")


def test_one_slot_through_the_engine_gives_todays_per_request_latencies(db: Path) -> None:
    ensure_default_workloads(db)
    fifo_inputs = build_inputs(ReplayConfig(CODE, size_to=None, servers=2), db=db)
    deployed = {m: replace(d, slots=1, servers=2) for m, d in fifo_inputs.deployments.items()}
    old = replace(fifo_inputs, deployments={})
    for policy in [p for p in parse_policies("small-only,cascade") if p.label != "frontier-only"]:
        before, after = replay_policy(old, policy), replay_policy(replace(fifo_inputs, deployments=deployed), policy)
        assert after.fleets and not before.fleets
        np.testing.assert_allclose(after.latency_s, before.latency_s, rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(after.ttft_s, before.ttft_s, rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(after.queue_wait_s, before.queue_wait_s, rtol=1e-12, atol=1e-9)
        assert np.array_equal(after.cost_usd, before.cost_usd)


def test_the_default_replay_sizes_every_local_fleet_and_costs_it(db: Path) -> None:
    ensure_default_workloads(db)
    inputs = build_inputs(ReplayConfig(CODE), db=db)
    result = run_policies(inputs, parse_policies("small-only,cascade"))
    for label in ("small-only", "cascade"):
        s = result.summaries[label]
        assert s.servers_needed and s.servers_needed >= 1 and not s.overloaded
        assert s.cost_parts is not None and s.cost_usd == pytest.approx(s.cost_parts.total_usd)
        assert s.cost_parts.fleet_usd > 0 and math.isfinite(s.latency.p95_ms or math.nan)
    base = result.summaries["frontier-only"]
    assert base.servers_needed is None and base.cost_parts is not None and base.cost_parts.fleet_usd == 0
    fixed = build_inputs(ReplayConfig(CODE, size_to=None, servers=1, speed=20.0), db=db)
    small_only = next(p for p in parse_policies("small-only") if p.label == "small-only")
    squeezed = summarise(fixed, replay_policy(fixed, small_only))
    assert squeezed.overloaded and squeezed.latency.p95_ms is None  # a growing queue, not a 49-hour p95
    assert squeezed.fleet[0].backlog_growth_per_hour > 0


def test_home_and_the_stored_run_show_the_servers_each_local_policy_needs(db: Path) -> None:
    """Done means: on the embedded default every p95 is finite and every policy using a local model shows its
    servers needed for the default SLO, in the stored run every page reads and on Home."""
    from streamlit.testing.v1 import AppTest

    from simulators.results import PolicySummary
    from slmlab.paths import PROJECT_ROOT
    from slmlab.replay_store import load_run, stored_runs

    at = AppTest.from_file(str(PROJECT_ROOT / "app" / "main.py"), default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    (run,) = stored_runs(db)
    stored = load_run(int(run["run_id"]), db)["policies"]
    local_users = 0
    for label, values in stored.items():
        s = PolicySummary.from_dict(label, values)
        assert s.p95_ms is not None and math.isfinite(s.p95_ms) and not s.overloaded
        if s.in_house_share > 0:
            local_users += 1
            assert s.servers_needed and all(f.sized and f.slo == "ttft_p95=2s" for f in s.fleet)
            assert s.cost_parts is not None and s.cost_usd == pytest.approx(s.cost_parts.total_usd)
    assert local_users >= 5
    home = [c.value for c in at.caption if "Local servers:" in c.value]
    assert home and all(" needs " in c and "x this-machine" in c for c in home)
    assert any("served with continuous batching" in c.value and "sized to ttft_p95=2s" in c.value for c in at.caption)


def test_one_cost_per_1000_requests_on_the_replay_and_the_projections_first_month(db: Path, capsys) -> None:
    """The same run, the same cost per 1,000 requests: the replay's (API + fleet over the trace) and the
    projection's first month at the trace's own rate (no growth or price change yet)."""
    import json as _json

    from app.cli.main import main

    assert main(["simulate", "--policy", "small-only,cascade", "--json"]) == 0
    run = _json.loads(capsys.readouterr().out)
    assert main(["project", "--run", str(run["run_id"]), "--json"]) == 0
    projection = _json.loads(capsys.readouterr().out)
    per_month = projection["monthly_scale"] * run["requests"]
    for label in ("frontier-only", "small-only", "cascade"):
        replayed = run["policies"][label]["cost_per_1k_usd"]
        projected = projection["policies"][label]["monthly_usd"][0] / per_month * 1000
        assert projected == pytest.approx(replayed, rel=1e-6)
