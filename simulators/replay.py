"""Replay a trace through routing policies: attempts -> queues on local capacity -> cost, latency, correctness,
residency; then the metrics of every policy beside the frontier-only baseline of the same run.

Vectorised over requests. Latency model (seconds):
* API model: time to first token (assumption or override) + output tokens / output speed; no queue (an API
  is treated as unlimited capacity).
* local model: `servers` replicas, FIFO on the time the request reaches the model: exact Lindley recursion for
  one server, Kiefer-Wolfowitz for several (see `simulators.queueing`). Service time = input tokens / prefill
  speed + output tokens / decode speed, from this machine's benchmark or the default profile.
* a cascade's later attempt starts when the earlier one finishes, so the first attempt's latency is added.
* an API attempt whose latency an outcome file or gateway log recorded takes exactly that long (its first token no
  later than that); the catalogue's assumption times only what was not recorded (`_retimed`).
Without recorded arrival times (outcome files) there is no queueing: every request is served on arrival.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from simulators import fleet, kernels, metrics
from simulators.catalog import RESIDENCY_LOCATIONS
from simulators.fleet import ModelFleet
from simulators.inputs import CONFIDENCE_SOURCES, COST_SOURCES, LATENCY_SOURCES, ReplayError, ReplayInputs
from simulators.policies.base import NO_MODEL, Policy, Routing
from simulators.policies.registry import BASELINE, sweep_of, with_value
from simulators.quality import SOURCES
from simulators.queueing import fifo
from simulators.results import WEAK_REFERENCE, CostParts, Percentiles, PolicySummary, compare
from slmlab.traces.labelling import DATA_CLASSES


@dataclass(frozen=True)
class Outcome:
    """Per request of one policy: where it went and what that cost, took and gave."""

    policy: str
    routing: Routing
    model: np.ndarray  # int16 final model column, -1 rejected
    cost_usd: np.ndarray
    queue_wait_s: np.ndarray
    ttft_s: np.ndarray
    latency_s: np.ndarray
    first_attempt_s: np.ndarray  # NaN unless escalated: the time spent before the answering attempt started
    wasted_tokens: np.ndarray  # tokens processed by attempts whose answer was thrown away
    correct: np.ndarray  # bool
    residency_violation: np.ndarray  # bool: some attempt went where the request's data may not go
    slo_violation: np.ndarray  # bool: latency over the request's SLO
    fleets: dict[str, ModelFleet] = field(default_factory=dict)  # local model -> its batched fleet (if deployed)
    # recorded latencies: whether the answering attempt took its recorded time (None: nothing recorded), and how many
    # attempts with a recorded latency were timed by the catalogue instead (a local queue after them; see `_retimed`)
    latency_recorded: np.ndarray | None = None
    latency_fallback_attempts: int = 0


@dataclass(frozen=True)
class ReplayResult:
    """Every policy's outcome and summary, the baseline's name, and (with a sweep) the cost-quality points."""

    inputs: ReplayInputs
    outcomes: dict[str, Outcome]
    summaries: dict[str, PolicySummary]
    points: list[dict[str, object]] = field(default_factory=list)


def _topological(attempts: np.ndarray, m: int) -> list[int]:
    """Models in an order where every model comes after those whose attempts feed it (a cascade chain)."""
    if attempts.shape[1] == 1:
        return list(range(m))
    edges: set[tuple[int, int]] = set()
    for t in range(attempts.shape[1] - 1):
        a, b = attempts[:, t].astype(np.int64), attempts[:, t + 1].astype(np.int64)
        both = (a >= 0) & (b >= 0)
        counts = np.bincount(a[both] * m + b[both], minlength=m * m)
        edges |= {(int(code) // m, int(code) % m) for code in np.flatnonzero(counts)}
    order, remaining = [], set(range(m))
    while remaining:
        ready = sorted(j for j in remaining if not any(a in remaining and b == j for a, b in edges))
        if not ready:
            raise ReplayError("a policy sends requests around a loop of models; cannot order their queues")
        order += ready
        remaining -= set(ready)
    return order


def _queue_start(inputs: ReplayInputs, j: int, arrive: np.ndarray, service: np.ndarray) -> np.ndarray:
    """When each request arriving at local model j (in the order given) starts service: FIFO on its servers."""
    if not inputs.has_arrivals:
        return arrive
    if arrive.size > 1 and np.any(arrive[1:] < arrive[:-1]):
        order = np.argsort(arrive, kind="stable")  # FIFO by the time the request reaches the model
        begins = np.empty_like(arrive)
        begins[order] = fifo(arrive[order], service[order], inputs.config.servers).start
        return begins
    return fifo(arrive, service, inputs.config.servers).start


def _times_by_model(inputs: ReplayInputs, attempts: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(ready, start) per tier in general: models in dependency order, each queue over all its tiers at once."""
    n, k = attempts.shape
    ready, start, finish = np.zeros((k, n)), np.zeros((k, n)), np.zeros((k, n))
    ready[0] = inputs.arrival_s
    for j in _topological(attempts, len(inputs.model_names)):
        tiers = [(t, r) for t in range(k) if (r := np.flatnonzero(attempts[:, t] == j)).size]
        for t, r in tiers:
            if t:
                ready[t, r] = finish[t - 1, r]
        if inputs.is_local[j]:
            begins = _queue_start(
                inputs,
                j,
                np.concatenate([ready[t, r] for t, r in tiers]),
                np.concatenate([inputs.service_s[r, j] for _, r in tiers]),
            )
        else:
            begins = np.concatenate([ready[t, r] for t, r in tiers])
        offset = 0
        for t, r in tiers:
            start[t, r] = begins[offset : offset + r.size]
            finish[t, r] = start[t, r] + inputs.service_s[r, j]
            offset += r.size
    return [(ready[t], start[t]) for t in range(k)]


def _charged(inputs: ReplayInputs, attempts: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Each request's cost with every attempt charged as recorded where the outcome file recorded it, plus the
    model's per-call fee where not: the engine prices attempts per token, this adds the difference."""
    adjust = inputs.cost_adjustment
    if adjust is None:
        return cost
    cost = cost.copy()
    rows = np.arange(attempts.shape[0])
    for t in range(attempts.shape[1]):
        j = attempts[:, t].astype(np.int64)
        made = j >= 0
        cost[made] += adjust[rows[made], j[made]]
    return cost


@dataclass(frozen=True)
class Retimed:
    """A request's TTFT, latency, time before the answering attempt and SLO miss with recorded API latencies."""

    ttft_s: np.ndarray
    latency_s: np.ndarray
    first_attempt_s: np.ndarray
    slo_violation: np.ndarray
    answered_recorded: np.ndarray  # bool: the answering attempt took its recorded time
    fallback_attempts: int


def _answering_tier(attempts: np.ndarray) -> np.ndarray:
    """Each request's tier of its last attempt (-1: none), attempts without gaps."""
    return (attempts >= 0).sum(axis=1) - 1


def _retimed(
    inputs: ReplayInputs,
    attempts: np.ndarray,
    ttft: np.ndarray,
    latency: np.ndarray,
    first_attempt: np.ndarray,
    late: np.ndarray,
) -> Retimed | None:
    """The engine's times (every attempt timed from the models' rates) shifted to the recorded API latencies, exactly:
    an API attempt never queues, so taking its recorded time instead moves every later attempt of the request by the
    difference, and the answering attempt's first token by the shifts before it plus its own first-token change.
    That is exact unless a local attempt comes later in the request on a trace with arrivals (its queue, and so other
    requests, would move): such attempts keep the catalogue's time and are counted (`fallback_attempts`).
    None: nothing recorded. Attempts have no gaps."""
    recorded = inputs.recorded_latency
    if recorded is None:
        return None
    n, k = attempts.shape
    rows = np.arange(n)
    service_change = inputs.service_as_recorded_s - inputs.service_s  # 0 where nothing was recorded
    first_change = inputs.first_token_as_recorded_s - inputs.first_token_s
    last_local = np.full(n, -1)  # the tier of each request's last local attempt
    if inputs.has_arrivals:
        for t in range(k):
            j = attempts[:, t].astype(np.int64)
            last_local[(j >= 0) & inputs.is_local[np.maximum(j, 0)]] = t
    answering = _answering_tier(attempts)
    before, total, own = np.zeros(n), np.zeros(n), np.zeros(n)
    answered_recorded = np.zeros(n, dtype=bool)
    fallbacks = 0
    for t in range(k):
        j = np.maximum(attempts[:, t].astype(np.int64), 0)
        has = (attempts[:, t] >= 0) & ~np.isnan(recorded[rows, j])
        fell = has & (t < last_local)
        fallbacks += int(fell.sum())
        used = has & ~fell
        change = np.where(used, service_change[rows, j], 0.0)
        total += change
        last = t == answering
        before += np.where(last, 0.0, change)
        own += np.where(used & last, first_change[rows, j], 0.0)
        answered_recorded |= used & last
    latency = latency + total
    with np.errstate(invalid="ignore"):  # rejected requests: NaN latency, not late; no SLO (NaN): not late
        slo_violation = np.where(np.isnan(latency), late, latency > inputs.slo_ms / 1000.0)
    return Retimed(
        ttft_s=ttft + before + own,
        latency_s=latency,
        first_attempt_s=first_attempt + before,
        slo_violation=slo_violation,
        answered_recorded=answered_recorded,
        fallback_attempts=fallbacks,
    )


def _recorded_of(inputs: ReplayInputs, attempts: np.ndarray) -> np.ndarray | None:
    """Whether each request's answering attempt took its recorded latency (the batched path applies every one)."""
    if inputs.recorded_latency is None:
        return None
    answering = _answering_tier(attempts)
    rows = np.flatnonzero(answering >= 0)
    j = attempts[rows, answering[rows]].astype(np.int64)
    found = np.zeros(attempts.shape[0], dtype=bool)
    found[rows] = ~np.isnan(inputs.recorded_latency[rows, j])
    return found


def execute(inputs: ReplayInputs, routing: Routing, name: str) -> Outcome:
    """Charge every attempt, queue local attempts, and read off the answer of the last one."""
    attempts = routing.attempts
    n, k = attempts.shape
    used, gap = kernels.attempt_layout(attempts, len(inputs.model_names))
    if gap:  # skipped tiers: close the gaps
        attempts = np.take_along_axis(attempts, np.argsort(attempts < 0, axis=1, kind="stable"), axis=1)
        used, _ = kernels.attempt_layout(attempts, len(inputs.model_names))
    # numpy's stubs type any(axis=1) as scalar-or-array; of a 2-D array it is a 1-D array
    tier_local: np.ndarray = used[:, inputs.is_local].any(axis=1)  # type: ignore[assignment]
    if inputs.deployments and inputs.has_arrivals and tier_local.any():
        return _execute_deployed(inputs, routing, attempts, name)
    given = np.empty((0, n))
    if k > 1 and inputs.has_arrivals and np.any(used[:, inputs.is_local].sum(axis=0) > 1):
        # a local model serving two tiers: its queue mixes both, so order the models instead of the tiers
        given = np.stack([start for _, start in _times_by_model(inputs, attempts)])
    cost, wait, ttft, latency, first_attempt, wasted, correct, violation, late = kernels.settle(
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
        inputs.config.servers,
        inputs.has_arrivals,
        given,
    )
    retimed = _retimed(inputs, attempts, ttft, latency, first_attempt, late)
    if retimed is None:
        settled = (cost, wait, ttft, latency, first_attempt, wasted, correct, violation, late)
        return _outcome(inputs, routing, attempts, name, settled)
    times = (retimed.ttft_s, retimed.latency_s, retimed.first_attempt_s)
    return _outcome(
        inputs,
        routing,
        attempts,
        name,
        (cost, wait, *times, wasted, correct, violation, retimed.slo_violation),
        latency_recorded=retimed.answered_recorded,
        latency_fallback_attempts=retimed.fallback_attempts,
    )


def _outcome(
    inputs: ReplayInputs, routing: Routing, attempts: np.ndarray, name: str, settled: tuple, **extra: Any
) -> Outcome:
    """An Outcome from the settled arrays (cost, wait, TTFT, latency, time before the answering attempt, wasted
    tokens, correct, residency broken, SLO missed), every attempt charged as recorded where it was."""
    cost, wait, ttft, latency, first_attempt, wasted, correct, violation, late = settled
    return Outcome(
        policy=name,
        routing=routing,
        model=routing.final,
        cost_usd=_charged(inputs, attempts, cost),
        queue_wait_s=wait,
        ttft_s=ttft,
        latency_s=latency,
        first_attempt_s=first_attempt,
        wasted_tokens=wasted,
        correct=correct,
        residency_violation=violation,
        slo_violation=late,
        **extra,
    )


def _execute_deployed(inputs: ReplayInputs, routing: Routing, attempts: np.ndarray, name: str) -> Outcome:
    """`execute` with local models served by their deployments (continuous batching, fleets sized to the SLO). Recorded
    API latencies go into the walk itself (models in dependency order), so a local fleet after a recorded API attempt
    sees the request when it really arrives there: exact, nothing falls back."""
    joules = {
        m.name: float(m.energy_j_per_token.value)
        for m in inputs.portfolio.models
        if m.kind == "local" and m.energy_j_per_token is not None and m.energy_j_per_token.value is not None
    }
    outputs, fleets = fleet.settle(
        _topological(attempts, len(inputs.model_names)),
        attempts,
        inputs.arrival_s,
        inputs.first_token_as_recorded_s,
        inputs.service_as_recorded_s,
        inputs.rates,
        inputs.input_tokens,
        inputs.output_tokens,
        inputs.permitted,
        inputs.correct,
        inputs.slo_ms,
        inputs.model_names,
        inputs.deployments,
        joules,
    )
    return _outcome(
        inputs, routing, attempts, name, outputs, fleets=fleets, latency_recorded=_recorded_of(inputs, attempts)
    )


def replay_policy(inputs: ReplayInputs, policy: Policy) -> Outcome:
    """One policy routed over every model of the portfolio (wrappers narrow that themselves) and executed."""
    return execute(inputs, policy.route(inputs, np.ones((inputs.n, len(inputs.model_names)), dtype=bool)), policy.label)


def summarise(inputs: ReplayInputs, outcome: Outcome, policy: Policy | None = None) -> PolicySummary:
    """The headline figures of one policy, typed (the comparison with the baseline is added by `compare`)."""
    n = inputs.n
    final = outcome.model.astype(np.int64)
    answered = final >= 0
    rows = np.flatnonzero(answered)
    escalated = (outcome.routing.attempts >= 0).sum(axis=1) > 1
    local = answered & inputs.is_local[np.maximum(final, 0)]
    violations = outcome.residency_violation
    by_class = {DATA_CLASSES[c]: int(np.sum(violations & (inputs.data_class == c))) for c in range(len(DATA_CLASSES))}
    first = outcome.routing.attempts[:, 0]
    deciding = first >= 0
    confidence = (  # what a cascade's decisions rested on
        metrics.counts_by_name(inputs.confidence_source[np.flatnonzero(deciding), first[deciding]], CONFIDENCE_SOURCES)
        if outcome.routing.attempts.shape[1] > 1 and deciding.any()
        else {}
    )
    reasons = (
        metrics.counts_by_name(outcome.routing.reason.astype(np.int64), outcome.routing.reasons)
        if outcome.routing.reason is not None
        else {}
    )
    label = policy.label if policy is not None else outcome.policy
    kind = "baseline" if label == BASELINE else (policy.kind if policy is not None else "deployable")
    api_usd = float(outcome.cost_usd.sum())
    fleets = tuple(
        f.summary(inputs.deployments[m].curve.source if m in inputs.deployments else "")
        for m, f in outcome.fleets.items()
    )
    parts = None
    if outcome.fleets:
        parts = CostParts(
            api_usd=api_usd,
            hardware_usd=sum(f.cost.hardware_usd for f in outcome.fleets.values()),
            energy_usd=sum(f.cost.energy_usd for f in outcome.fleets.values()),
            operations_usd=sum(f.cost.operations_usd for f in outcome.fleets.values()),
        )
    elif inputs.deployments and inputs.has_arrivals:
        parts = CostParts(api_usd=api_usd)  # no local model used: the fleet costs nothing
    overloaded = any(f.overloaded for f in outcome.fleets.values())  # a growing queue: no latency to report

    def durations(values: np.ndarray) -> Percentiles:
        if overloaded:
            return Percentiles()
        return Percentiles.from_dict({k: v * 1000 for k, v in metrics.latency_percentiles(values[answered]).items()})

    return PolicySummary(
        policy=label,
        kind=kind,
        requests=n,
        rejected=int(n - answered.sum()),
        cost_usd=parts.total_usd if parts is not None else api_usd,
        quality=float(outcome.correct.mean()) if n else float("nan"),
        in_house_share=float(local.mean()) if n else 0.0,
        frontier_share=float(np.mean(final == inputs.frontier)) if n else 0.0,
        latency=durations(outcome.latency_s),
        ttft=durations(outcome.ttft_s),
        queue_wait_p95_ms=float(np.percentile(outcome.queue_wait_s[answered], 95) * 1000) if rows.size else 0.0,
        slo_violations=int(outcome.slo_violation.sum()),
        escalation_rate=float(escalated.mean()) if n else 0.0,
        escalation_added_ms_mean=float(np.nanmean(outcome.first_attempt_s) * 1000) if escalated.any() else 0.0,
        wasted_tokens=int(outcome.wasted_tokens.sum()),
        residency_violations=int(violations.sum()),
        residency_violations_by_class={k: v for k, v in by_class.items() if v},
        quality_source=metrics.counts_by_name(inputs.quality_source[rows, final[rows]], SOURCES),
        models=metrics.counts_by_name(final, inputs.model_names),
        local_load={m: f.utilisation for m, f in outcome.fleets.items()}
        if outcome.fleets
        else local_load(inputs, outcome.routing),
        confidence_source=confidence,
        latency_source=latency_sources(inputs, outcome, final, rows),
        reasons=reasons,
        parameters=policy.describe() if policy is not None else {},
        notes=dict(outcome.routing.notes),
        off_premises_by_class=off_premises(inputs, outcome.routing),
        cost_parts=parts,
        fleet=fleets,
        extra={**recorded_notes(inputs, final, rows, confidence), **latency_notes(outcome)},
    )


def latency_sources(inputs: ReplayInputs, outcome: Outcome, final: np.ndarray, rows: np.ndarray) -> dict[str, int]:
    """Answered requests by where their answering attempt's time came from: recorded (the API call's own latency),
    else the model's timing source (an API's assumed or overridden speeds, a local model's measured or assumed
    ones). Empty when the trace recorded no latency, so runs without one keep their stored layout."""
    if inputs.recorded_latency is None or outcome.latency_recorded is None:
        return {}
    source = np.where(
        outcome.latency_recorded[rows], LATENCY_SOURCES.index("recorded"), inputs.model_latency_source[final[rows]]
    )
    return metrics.counts_by_name(source, LATENCY_SOURCES)


def latency_notes(outcome: Outcome) -> dict[str, object]:
    """How many attempts with a recorded latency were timed from the catalogue instead, and why (none: nothing)."""
    count = outcome.latency_fallback_attempts
    if not count:
        return {}
    return {
        "latency_fallback_attempts": count,
        "latency_note": (
            f"{count:,} API attempts with a recorded latency were timed from the catalogue instead: a local attempt "
            "of the same request queues after them, and moving it would move that queue"
        ),
    }


def _fractional_scores(inputs: ReplayInputs) -> bool:
    """Recorded outcomes with scores between 0 and 1: quality (answers realised right or wrong) then differs from
    the mean recorded score the peers report, so that score is reported too and their metrics use it."""
    if inputs.trace_kind != "outcomes":
        return False
    p = inputs.p_correct
    return bool(np.any((p > 0) & (p < 1)))


def recorded_notes(
    inputs: ReplayInputs, final: np.ndarray, rows: np.ndarray, confidence: dict[str, int]
) -> dict[str, object]:
    """Where the answering attempt's cost came from (recorded or priced), and a note when drawn confidences (an
    assumption) decided a cascade: its rank against the other policies then follows from that assumption."""
    sources = metrics.counts_by_name(inputs.cost_source[rows, final[rows]], COST_SOURCES)
    extra: dict[str, object] = {"cost_source": sources}
    if _fractional_scores(inputs):  # the peers average recorded scores (MT-Bench ratings, RouterBench partial credit)
        extra["score"] = float(inputs.p_correct[rows, final[rows]].sum() / inputs.n) if inputs.n else float("nan")
    drawn = confidence.get("assumption", 0)
    if drawn:
        a, b = inputs.config.confidence_right, inputs.config.confidence_wrong
        extra["confidence_note"] = (
            f"assumption decides this result: {drawn:,} of {sum(confidence.values()):,} keep-or-escalate decisions "
            f"rest on drawn confidences (Beta{a} when the answer is right, Beta{b} when wrong), not recorded ones"
        )
    return extra


ON_PREMISES = RESIDENCY_LOCATIONS["on-premises-only"]


def off_premises(inputs: ReplayInputs, routing: Routing) -> dict[str, int]:
    """Requests of each data class that some attempt sent off the premises (to a model not on-device/on-premises)."""
    outside = np.array([m.location not in ON_PREMISES for m in inputs.portfolio.models] + [False])
    sent = outside[routing.attempts.astype(np.int64)].any(axis=1)  # -1 pads index the trailing False
    return {DATA_CLASSES[c]: int(np.sum(sent & (inputs.data_class == c))) for c in range(len(DATA_CLASSES))}


def local_load(inputs: ReplayInputs, routing: Routing) -> dict[str, float]:
    """Offered load on each local model as a share of its capacity: service seconds asked for / (trace span x
    servers). Above 1 the queue grows without bound over the trace (the latency figures show by how much)."""
    if not inputs.has_arrivals or inputs.n < 2:
        return {}
    span = float(inputs.arrival_s[-1] - inputs.arrival_s[0]) or 1.0
    load = {}
    for j in np.flatnonzero(inputs.is_local):
        asked = sum(
            float(inputs.service_s[routing.attempts[:, t] == j, j].sum()) for t in range(routing.attempts.shape[1])
        )
        if asked:
            load[inputs.model_names[j]] = asked / (span * inputs.config.servers)
    return load


def run_policies(
    inputs: ReplayInputs,
    policies: list[Policy],
    *,
    sweep: bool = False,
    progress: Callable[[str], None] | None = None,
    steps: Callable[[int, int], None] | None = None,
) -> ReplayResult:
    """Replay every policy on the same inputs; with `sweep`, also vary each sweepable policy over its grid.
    `steps(done, total)` counts policies and sweep points for a progress bar; raising from it stops the replay."""
    outcomes: dict[str, Outcome] = {}
    summaries: dict[str, PolicySummary] = {}
    total = len(policies) + (sum(len(grid[1]) for grid in map(sweep_of, policies) if grid) if sweep else 0)
    done = 0

    def step() -> None:
        nonlocal done
        done += 1
        if steps:
            steps(done, total)

    if steps:
        steps(0, total)
    for policy in policies:
        if progress:
            progress(f"replaying {policy.label}")
        outcome = replay_policy(inputs, policy)
        outcomes[policy.label] = outcome
        summaries[policy.label] = summarise(inputs, outcome, policy)
        step()
    weak = next((label for label in summaries if label == "small-only"), None)
    if weak is None and BASELINE in summaries:
        from simulators.policies.small_only import SmallOnly

        reference = summarise(inputs, replay_policy(inputs, SmallOnly()))
        summaries[WEAK_REFERENCE] = replace(reference, policy=WEAK_REFERENCE, kind="reference")
        weak = WEAK_REFERENCE
    if BASELINE in summaries:
        summaries = compare(summaries, weak)
    points: list[dict[str, object]] = []
    if sweep:
        points = sweep_points(inputs, policies, summaries, weak, progress, step)
    return ReplayResult(inputs=inputs, outcomes=outcomes, summaries=summaries, points=points)


def sweep_points(
    inputs: ReplayInputs,
    policies: list[Policy],
    summaries: dict[str, PolicySummary],
    weak: str | None,
    progress: Callable[[str], None] | None = None,
    step: Callable[[], None] | None = None,
) -> list[dict[str, object]]:
    """Cost-quality points of every policy (sweepable ones over their grid), the Pareto front marked, and
    APGR / CPT(50%) / CPT(80%) (RouteLLM's evaluate.py) and AIQ (RouterBench's code and its paper's formula) added
    to each swept policy's summary, over the points the sweep reached; `step()` follows each point run."""
    points: list[dict[str, object]] = []
    swept: list[tuple[str, np.ndarray, np.ndarray]] = []
    for policy in policies:
        grid = sweep_of(policy)
        if grid is None:
            s = summaries[policy.label]
            points.append(
                {
                    "policy": policy.label,
                    "parameter": None,
                    "value": None,
                    "cost_usd": s.cost_usd,
                    "quality": s.quality,
                    "frontier_share": s.frontier_share,
                    "p95_ms": s.p95_ms,
                }
            )
            continue
        key, values = grid
        if progress:
            progress(f"sweeping {policy.label} over {key} ({len(values)} points)")
        curve = []
        for value in values:
            s = summarise(inputs, replay_policy(inputs, with_value(policy, key, value)), policy)
            curve.append(s)
            points.append(
                {
                    "policy": policy.label,
                    "parameter": key,
                    "value": value,
                    "cost_usd": s.cost_usd,
                    "quality": s.quality,
                    "frontier_share": s.frontier_share,
                    "p95_ms": s.p95_ms,
                }
            )
            if step:
                step()
        cost = np.array([c.cost_usd for c in curve])
        scored = all("score" in c.extra for c in curve)  # fractional recorded scores: the peers average them
        quality = np.array([c.extra["score"] if scored else c.quality for c in curve], dtype=np.float64)
        share = np.array([c.frontier_share for c in curve])
        sweep: dict[str, object] = {
            "parameter": key,
            "points": len(values),
            "aiq_paper": metrics.aiq_paper(cost, quality),
            "aiq_routerbench_max_cost_usd": metrics.routerbench_hull_max_cost(cost, quality),
        }
        if scored:
            sweep["quality_figure"] = "mean recorded score"
        swept.append((policy.label, cost, quality))
        if weak is not None:
            low, high = (
                (float(summaries[weak].extra["score"]), float(summaries[BASELINE].extra["score"]))  # type: ignore[arg-type]
                if scored and "score" in summaries[weak].extra and "score" in summaries[BASELINE].extra
                else (summaries[weak].quality, summaries[BASELINE].quality)
            )
            if low != high:
                sweep |= {
                    "apgr": metrics.apgr(share, quality, low, high),
                    "cpt50": metrics.cpt(share, quality, low, high, 0.5),
                    "cpt80": metrics.cpt(share, quality, low, high, 0.8),
                }
        summaries[policy.label] = replace(summaries[policy.label], sweep=sweep)
    # RouterBench's calc_AIQ compares routers together: every hull is extended flat to the largest hull cost of the
    # group and its area divided by that cost; the group here is every policy swept in this run
    ends = [float(summaries[label].sweep["aiq_routerbench_max_cost_usd"]) for label, _, _ in swept]  # type: ignore[index,arg-type]
    top = max((e for e in ends if not np.isnan(e)), default=float("nan"))
    for label, cost, quality in swept:
        figures = {"aiq_routerbench": metrics.aiq_routerbench(cost, quality, top), "aiq_routerbench_max_cost_usd": top}
        summaries[label] = replace(summaries[label], sweep={**summaries[label].sweep, **figures})  # type: ignore[dict-item]
    attainable = [i for i, p in enumerate(points) if not summaries[str(p["policy"])].is_reference]
    front = pareto_front([(float(points[i]["cost_usd"]), float(points[i]["quality"])) for i in attainable])  # type: ignore[arg-type]
    for point in points:
        point["pareto"] = False
    for i, on in zip(attainable, front):
        points[i]["pareto"] = on
    return points


def pareto_front(points: list[tuple[float, float]]) -> list[bool]:
    """Which (cost, quality) points no other point beats (cheaper or equal and at least as good, better in one);
    of identical points only the first is marked."""
    flags = []
    for i, (c, q) in enumerate(points):
        dominated = any((c2 <= c and q2 >= q) and (c2 < c or q2 > q) for j, (c2, q2) in enumerate(points) if j != i)
        repeated = (c, q) in points[:i]
        flags.append(not dominated and not repeated)
    return flags


__all__ = ["NO_MODEL", "Outcome", "ReplayResult", "execute", "pareto_front", "run_policies", "summarise"]


def resimulate(
    inputs: ReplayInputs, policy: Policy, key: str | None = None, value: float | None = None
) -> PolicySummary:
    """One policy (one parameter changed) on inputs already built: the dashboard's what-if slider, in milliseconds.
    Nothing is stored; a stored run is what `simulators.runs.simulate` makes."""
    if key is not None:
        policy = with_value(policy, key, value)  # type: ignore[arg-type]
    return summarise(inputs, replay_policy(inputs, policy), policy)
