"""Policies and the replay engine on hand-built inputs whose every figure can be worked out by hand."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from simulators.catalog import Figure, Portfolio, PortfolioModel
from simulators.deployment import Deployment, HardwareProfile, ServiceCurve
from simulators.inputs import ReplayConfig, ReplayError, ReplayInputs, model_rates
from simulators.policies.budget import Budget
from simulators.policies.cascade import Cascade
from simulators.policies.learned import Learned
from simulators.policies.registry import POLICIES, parse_params, parse_policies, parse_policy
from simulators.policies.residency import ResidencyAware
from simulators.policies.slo_overflow import SloOverflow
from simulators.queueing import fifo_admission
from simulators.replay import execute, pareto_front, run_policies
from slmlab.traces.labelling import DATA_CLASSES, RESIDENCIES

SMALL, BIG = 0, 1


def model(
    name: str,
    kind: str,
    location: str,
    classes: tuple[str, ...],
    *,
    input_price: float = 0.0,
    ttft_ms: float = 0.0,
    prefill: float | None = None,
    decode: float = 1.0,
) -> PortfolioModel:
    def figure(value: float) -> Figure:
        return Figure(value, "assumption")

    return PortfolioModel(
        name=name,
        kind=kind,
        location=location,
        data_classes=classes,
        context_window=None,
        input_usd_per_mtok=figure(input_price),
        output_usd_per_mtok=figure(0.0),
        ttft_ms=figure(ttft_ms),
        output_tok_s=figure(decode),
        prefill_tok_s=None if prefill is None else figure(prefill),
    )


def make_inputs(
    n: int,
    *,
    arrivals=None,
    small_service=2.0,
    big_latency=1.0,
    big_cost=1.0,
    confidence=None,
    correct_small=None,
    correct_big=None,
    data_class=None,
    residency=None,
    slo_ms=None,
    servers: int = 1,
) -> ReplayInputs:
    """Two models and requests of 10 input and 6 output tokens: a local model (free, prefill 0.5 s, `small_service`
    s per request, one FIFO server) and a cloud-us API one (first token 0.2 s, `big_latency` s, `big_cost` USD)."""
    full = (n, 2)
    correct = np.ones(full, dtype=bool)
    if correct_small is not None:
        correct[:, SMALL] = correct_small
    if correct_big is not None:
        correct[:, BIG] = correct_big
    conf = np.full(full, 0.5)
    if confidence is not None:
        conf[:, SMALL] = confidence
    dc = (
        np.zeros(n, dtype=np.int8)
        if data_class is None
        else np.array([DATA_CLASSES.index(d) for d in data_class], dtype=np.int8)
    )
    res = (
        np.zeros(n, dtype=np.int8)
        if residency is None
        else np.array([RESIDENCIES.index(r) for r in residency], dtype=np.int8)
    )
    portfolio = Portfolio(
        (
            model("small", "local", "on-premises", DATA_CLASSES, prefill=20.0, decode=6 / (small_service - 0.5)),
            model(
                "big",
                "api",
                "cloud-us",
                ("public", "internal"),
                input_price=big_cost * 1e5,
                ttft_ms=200.0,
                decode=6 / (big_latency - 0.2),
            ),
        )
    )
    permitted = np.ones(full, dtype=bool)
    permitted[:, BIG] = np.isin(dc, [0, 1]) & (res == 0)
    return ReplayInputs(
        config=ReplayConfig("hand", servers=servers),
        trace_id=1,
        trace_hash="h",
        trace_kind="workload",
        portfolio=portfolio,
        frontier=BIG,
        small=SMALL,
        request_ids=np.array([f"r{i}" for i in range(n)], dtype=object),
        copy=np.zeros(n, dtype=np.int32),
        has_arrivals=True,
        arrival_s=np.arange(n, dtype=float) if arrivals is None else np.asarray(arrivals, dtype=float),
        month=np.zeros(n, dtype=np.int32),
        input_tokens=np.full(n, 10.0),
        output_tokens=np.full(n, 6.0),
        task=np.zeros(n, dtype=np.int8),
        data_class=dc,
        residency=res,
        category=np.full(n, -1, dtype=np.int32),
        slo_ms=np.full(n, np.nan) if slo_ms is None else np.asarray(slo_ms, dtype=float),
        p_correct=correct.astype(float),
        quality_source=np.zeros(full, dtype=np.int8),
        correct=correct,
        confidence=conf,
        confidence_source=np.zeros(full, dtype=np.int8),
        rates=np.stack([model_rates(m) for m in portfolio.models]),
        is_local=np.array([True, False]),
        permitted=permitted,
        token_sources={},
    )


def route(policy, inputs):
    return policy.route(inputs, np.ones((inputs.n, 2), dtype=bool))


def test_local_queue_is_fifo_lindley_and_api_has_none() -> None:
    inputs = make_inputs(3, arrivals=[0, 1, 2], small_service=2.0)
    small = execute(inputs, route(parse_policy("small-only"), inputs), "small-only")
    assert small.queue_wait_s.tolist() == [0, 1, 2]  # each waits for the one before: 2 s service, 1 s apart
    assert small.latency_s.tolist() == [2, 3, 4]
    assert small.ttft_s.tolist() == [0.5, 1.5, 2.5]  # wait + prefill
    big = execute(inputs, route(parse_policy("frontier-only"), inputs), "frontier-only")
    assert big.queue_wait_s.tolist() == [0, 0, 0] and big.latency_s.tolist() == [1, 1, 1]
    assert big.cost_usd.tolist() == [1, 1, 1]


def test_cascade_charges_the_wasted_attempt_and_its_latency() -> None:
    inputs = make_inputs(3, arrivals=[0, 10, 20], confidence=[0.9, 0.2, 0.6], correct_small=[True, False, False])
    outcome = execute(inputs, route(Cascade(threshold=0.5), inputs), "cascade")
    assert outcome.model.tolist() == [SMALL, BIG, SMALL]
    assert outcome.cost_usd.tolist() == [0, 1, 0]  # only the escalated request pays the API
    assert outcome.latency_s.tolist() == [2, 3, 2]  # the escalated one: 2 s local attempt, then 1 s API
    assert outcome.wasted_tokens.tolist() == [0, 16, 0]  # 10 in + 6 out thrown away
    assert np.isnan(outcome.first_attempt_s[0]) and outcome.first_attempt_s[1] == 2
    assert outcome.correct.tolist() == [True, True, False]  # confident and wrong is kept: the cascade's real risk


def test_cascade_threshold_one_escalates_everything_and_zero_nothing() -> None:
    inputs = make_inputs(4, confidence=[0.1, 0.5, 0.7, 0.99])
    assert (route(Cascade(threshold=0.0), inputs).final == SMALL).all()
    assert (route(Cascade(threshold=1.0), inputs).final == BIG).all()


def test_residency_filter_never_violates_and_reports_kept_local_and_rejected() -> None:
    inputs = make_inputs(
        3, data_class=["internal", "regulated", "regulated"], residency=["any", "any", "on-premises-only"]
    )
    plain = execute(inputs, route(parse_policy("frontier-only"), inputs), "frontier-only")
    assert plain.residency_violation.tolist() == [False, True, True]
    routing = route(ResidencyAware(), inputs)
    filtered = execute(inputs, routing, "residency-aware")
    assert not filtered.residency_violation.any()
    assert filtered.model.tolist() == [BIG, SMALL, SMALL]
    assert [routing.reasons[r] if r >= 0 else None for r in routing.reason] == [None, "kept-local", "kept-local"]
    no_local = replace(inputs, permitted=np.column_stack([np.zeros(3, bool), inputs.permitted[:, BIG]]))
    rejected = route(ResidencyAware(), no_local)
    assert rejected.final.tolist() == [BIG, -1, -1] and rejected.reason.tolist()[1:] == [2, 2]


def test_budget_steps_down_exactly_when_the_cap_is_spent() -> None:
    inputs = make_inputs(6, big_cost=1.0)
    routing = route(Budget(monthly_usd=3.0, tiers=("frontier", "small"), steps=(1.0,)), inputs)
    assert routing.final.tolist() == [BIG, BIG, BIG, SMALL, SMALL, SMALL]
    two_months = replace(inputs, month=np.array([0, 0, 0, 1, 1, 1], dtype=np.int32))
    assert route(Budget(monthly_usd=2.0, tiers=("frontier", "small"), steps=(1.0,)), two_months).final.tolist() == [
        BIG,
        BIG,
        SMALL,
        BIG,
        BIG,
        SMALL,
    ]  # the cap starts afresh each month
    assert Budget(budget_share=0.5).cap_usd(inputs) == 3.0  # half of frontier-only's 6 USD in one month


def test_slo_overflow_sends_to_the_cloud_only_what_the_queue_would_make_late() -> None:
    inputs = make_inputs(4, arrivals=[0, 0, 0, 10], small_service=2.0, slo_ms=[3000] * 4)
    routing = route(SloOverflow(), inputs)
    assert routing.final.tolist() == [SMALL, BIG, BIG, SMALL]  # the 2nd would wait 2 s + 2 s service > 3 s
    outcome = execute(inputs, routing, "slo-overflow")
    assert not outcome.slo_violation.any()
    barred = make_inputs(3, arrivals=[0, 0, 0], slo_ms=[3000] * 3, data_class=["regulated"] * 3)
    assert route(SloOverflow(), barred).final.tolist() == [SMALL, BIG, BIG]  # alone it overflows regardless...
    kept = SloOverflow().route(barred, barred.permitted)  # ...behind residency-aware it may not
    assert kept.final.tolist() == [SMALL] * 3  # regulated data may not leave: kept local, counted late
    assert [kept.reasons[r] for r in kept.reason[1:]] == ["kept-local-over-slo"] * 2
    assert not execute(barred, route(ResidencyAware(inner=SloOverflow()), barred), "r").residency_violation.any()


def test_slo_overflow_counts_on_a_batched_deployments_slots() -> None:
    """With a deployment the router sees servers x slots lanes, each request predicted at the full batch's per-sequence
    speed: 10 prompt tokens at 20 tok/s (0.5 s) + 6 output tokens at 4 / 12 s each (2 s) = 2.5 s."""
    inputs = make_inputs(5, arrivals=[0] * 5, slo_ms=[3000] * 5)
    assert route(SloOverflow(), inputs).final.tolist() == [SMALL, BIG, BIG, BIG, BIG]  # FIFO: one at a time
    curve = ServiceCurve(
        batch=(1, 4), decode_tok_s=(6.0, 12.0), prefill_tok_s=20.0, kv_bytes_per_token=0.0, weights_bytes=0.0,
        source="test",
    )  # fmt: skip
    machine = HardwareProfile(
        name="test", description="a test machine", memory_bytes=4e9, slots=4, capex_usd=1.0, lifetime_months=1.0,
        watts_busy=1.0, watts_idle=1.0, ops_usd_per_month=0.0, tariff_usd_per_kwh=0.0, batch_speedup=((1, 1.0),),
        source="unit test",
    )  # fmt: skip
    batched = replace(inputs, deployments={"small": Deployment("small", machine, curve, 4, None)})
    assert route(SloOverflow(), batched).final.tolist() == [SMALL] * 4 + [BIG]  # 4 lanes; the 5th would wait 2.5 s
    assert route(SloOverflow(servers=2), batched).final.tolist() == [SMALL] * 5
    fixed = replace(batched, deployments={"small": Deployment("small", machine, curve, 4, 2)})
    assert route(SloOverflow(), fixed).final.tolist() == [SMALL] * 5  # a fixed fleet of two servers: its size


def test_fifo_admission_by_hand() -> None:
    admitted, over = fifo_admission(
        np.array([0.0, 0.0, 1.0, 5.0]),
        np.array([2.0, 2.0, 2.0, 2.0]),
        1,
        np.array([3.0, 3.0, 3.0, 3.0]),
        np.array([True, True, False, True]),
    )
    assert admitted.tolist() == [True, False, True, True]  # 2nd refused (would finish at 4 > 3); 3rd cannot be
    assert over.tolist() == [False, True, False, False]  # the 3rd starts at 2 (the refused one never queued): 3 s
    two, _ = fifo_admission(np.zeros(3), np.full(3, 2.0), 2, np.full(3, 3.0), np.ones(3, bool))
    assert two.tolist() == [True, True, False]


def test_learned_router_never_sees_the_outcome_of_the_request_it_routes() -> None:
    rng = np.random.default_rng(1)
    n = 400
    inputs = make_inputs(n, correct_small=rng.random(n) < 0.5)
    inputs = replace(inputs, task=(np.arange(n) % 3).astype(np.int8))
    router = Learned(folds=4)
    before = router.predict(inputs)
    flipped_correct = inputs.correct.copy()
    flipped_correct[7, SMALL] = ~flipped_correct[7, SMALL]
    after = router.predict(replace(inputs, correct=flipped_correct))
    assert after[7] == before[7]  # its own outcome does not move its prediction (cross-fitting, no leakage)
    assert np.any(after != before)  # but it is used to train the routes of requests in other folds


def test_learned_router_finds_the_task_where_the_small_model_is_right() -> None:
    n = 600
    task = (np.arange(n) % 2).astype(np.int8)
    inputs = replace(make_inputs(n, correct_small=task == 1), task=task)
    assert (route(Learned(), inputs).final == np.where(task == 1, SMALL, BIG)).all()


def test_oracle_takes_the_cheapest_right_model() -> None:
    inputs = make_inputs(3, correct_small=[True, False, False], correct_big=[True, True, False])
    assert route(parse_policy("oracle"), inputs).final.tolist() == [SMALL, BIG, SMALL]  # none right: the cheapest


def test_policy_specs_parse_and_bad_ones_name_the_fault() -> None:
    policies = parse_policies("cascade,residency-aware+cascade", parse_params(["cascade.threshold=0.8"]))
    assert [p.label for p in policies] == ["frontier-only", "cascade", "residency-aware+cascade"]
    assert policies[1].threshold == 0.8 and policies[2].inner.threshold == 0.8
    assert [p.label for p in parse_policies("all")][: len(POLICIES)] == [
        "frontier-only",
        "small-only",
        "random",
        "static-map",
        "cascade",
        "residency-aware+frontier-only",
        "budget",
        "slo-overflow+small-only",
        "learned",
        "oracle",
    ]
    assert [p.label for p in parse_policies("all,residency-aware+cascade,cascade")][-1] == "residency-aware+cascade"
    for spec, params, message in [
        ("nope", [], "no policy 'nope'"),
        ("cascade+oracle", [], "only wrappers"),
        ("cascade", ["cascade.thresh=1"], "no parameter 'thresh'"),
        ("cascade", ["cascade.threshold=high"], "threshold must be float"),
        ("cascade", ["threshold=1"], "is not policy.key=value"),
    ]:
        with pytest.raises(ReplayError, match=message):
            parse_policies(spec, parse_params(params))


def test_a_cascade_that_names_a_model_outside_the_portfolio_is_refused() -> None:
    inputs = make_inputs(2)
    with pytest.raises(ReplayError, match="'gpt-9' is not in the portfolio"):
        route(Cascade(tiers=("small", "gpt-9")), inputs)


def test_pareto_front_by_hand() -> None:
    points = [(0.0, 0.2), (1.0, 0.5), (2.0, 0.4), (3.0, 0.9), (3.0, 0.9), (0.0, 0.1)]
    assert pareto_front(points) == [True, True, False, True, False, False]


def test_run_reports_every_policy_against_the_baseline() -> None:
    inputs = make_inputs(10, confidence=np.linspace(0, 1, 10), correct_small=np.arange(10) >= 5)
    result = run_policies(inputs, parse_policies("small-only,cascade"), sweep=True)
    base, cascade = result.summaries["frontier-only"], result.summaries["cascade"]
    assert base.cost_usd == 10 and base.quality == 1.0 and result.summaries["small-only"].quality == 0.5
    assert cascade.vs_baseline.cost_ratio == pytest.approx(0.5)  # confidence >= 0.5 kept local: 5 of 10
    assert cascade.pgr == pytest.approx(1.0)  # and exactly the right ones: full gap recovered at half the cost
    # a perfect ranking of a 50/50 split: PGR climbs 0 -> 1 over the first half of strong calls, then stays at 1;
    # the sweep reaches shares 0 .. 0.9 (at threshold 1 the confidence-1.0 request stays local), and RouteLLM's
    # APGR averages over the shares reached: (0.25 + 0.4) / 0.9
    assert cascade.sweep["apgr"] == pytest.approx(0.65 / 0.9) and cascade.sweep["cpt50"] == pytest.approx(0.25)


def test_a_local_model_serving_two_tiers_queues_both_in_arrival_order() -> None:
    from simulators.policies.base import Routing

    inputs = replace(
        make_inputs(3, arrivals=[0, 0, 0], small_service=2.0, big_latency=1.0), is_local=np.array([True, True])
    )
    routing = Routing(attempts=np.array([[SMALL, BIG], [BIG, -1], [SMALL, -1]], dtype=np.int16))
    outcome = execute(inputs, routing, "hand")
    # small: r0 0-2, r2 2-4; big: r1 0-1, then r0 (escalated at 2) 2-3
    assert outcome.latency_s.tolist() == [3, 1, 4] and outcome.queue_wait_s.tolist() == [0, 0, 2]


@pytest.mark.parametrize("servers", [1, 3])
@pytest.mark.parametrize("big_is_local", [False, True])
def test_every_timing_path_agrees_with_the_model_ordered_one(servers: int, big_is_local: bool) -> None:
    """One pass per request (API escalation), tier after tier (a local second tier), and given starts all replay
    a cascade alike."""
    from simulators import kernels
    from simulators.replay import _times_by_model

    rng = np.random.default_rng(5)
    inputs = make_inputs(300, arrivals=np.sort(rng.random(300) * 100), confidence=rng.random(300), servers=servers)
    inputs = replace(inputs, is_local=np.array([True, big_is_local]))
    attempts = route(Cascade(), inputs).attempts
    given = np.stack([start for _, start in _times_by_model(inputs, attempts)])
    tier_local = kernels.attempt_layout(attempts, 2)[0][:, inputs.is_local].any(axis=1)
    common = (
        attempts,
        inputs.arrival_s,
        inputs.rates,
        inputs.input_tokens,
        inputs.output_tokens,
        inputs.permitted,
        inputs.correct,
        inputs.slo_ms,
        inputs.is_local,
        tier_local,
        servers,
        True,
    )
    ours, theirs = kernels.settle(*common, np.empty((0, 300))), kernels.settle(*common, given)
    for a, b in zip(ours, theirs):
        assert np.allclose(a, b, equal_nan=True)
    assert np.nanmax(ours[1]) > 0  # the queues were busy enough to make anyone wait


@pytest.mark.parametrize("cores", [2, 3])
def test_splitting_the_requests_across_cores_changes_no_result(monkeypatch: pytest.MonkeyPatch, cores: int) -> None:
    """Every policy's outcome is the same computed in one chunk or in one chunk per core (forced here on a
    small replay: the real split starts at 100k requests)."""
    from simulators import kernels

    rng = np.random.default_rng(8)
    inputs = make_inputs(
        500,
        arrivals=np.sort(rng.random(500) * 300),
        confidence=rng.random(500),
        data_class=rng.choice(["public", "confidential"], 500),
        correct_small=rng.random(500) < 0.7,
    )
    policies = parse_policies("all")
    monkeypatch.setattr(kernels, "PARALLEL_FROM", 10**9)
    one = run_policies(inputs, policies)
    monkeypatch.setattr(kernels, "PARALLEL_FROM", 1)
    monkeypatch.setattr(kernels, "CORES", cores)
    split = run_policies(inputs, policies)
    assert one.outcomes.keys() == split.outcomes.keys()
    for name, outcome in one.outcomes.items():
        other = split.outcomes[name]
        assert np.array_equal(outcome.routing.attempts, other.routing.attempts), name
        for field in (
            "model",
            "cost_usd",
            "queue_wait_s",
            "ttft_s",
            "latency_s",
            "first_attempt_s",
            "wasted_tokens",
            "correct",
            "residency_violation",
            "slo_violation",
        ):
            assert np.array_equal(getattr(outcome, field), getattr(other, field), equal_nan=True), (name, field)


def test_attempt_layout_finds_the_models_of_each_tier_and_the_gaps_and_final_the_answering_model() -> None:
    from simulators import kernels
    from simulators.policies.base import Routing

    attempts = np.array([[0, 1], [-1, 2], [1, -1], [-1, -1]], dtype=np.int16)
    used, gap = kernels.attempt_layout(attempts, 3)
    assert used.tolist() == [[True, True, False], [False, True, True]] and gap
    assert not kernels.attempt_layout(attempts[[0, 2, 3]], 3)[1]  # padding after the last attempt is no gap
    assert Routing(attempts=attempts).final.tolist() == [1, 2, 1, -1]
