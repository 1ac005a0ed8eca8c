"""Replay a trace through routing policies: attempts -> queues on local capacity -> cost, latency, correctness,
residency; then the metrics of every policy beside the frontier-only baseline of the same run.

Vectorised over requests. Latency model (seconds):
* API model: time to first token (assumption or override) + output tokens / output speed; no queue (an API
  is treated as unlimited capacity).
* local model: `servers` replicas, FIFO on the time the request reaches the model: exact Lindley recursion for
  one server, Kiefer-Wolfowitz for several (see `simulators.queueing`). Service time = input tokens / prefill
  speed + output tokens / decode speed, from this machine's benchmark or the default profile.
* a cascade's later attempt starts when the earlier one finishes, so the first attempt's latency is added.
Without recorded arrival times (outcome files) there is no queueing: every request is served on arrival.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from simulators import kernels, metrics
from simulators.inputs import CONFIDENCE_SOURCES, ReplayError, ReplayInputs
from simulators.policies.base import NO_MODEL, Policy, Routing
from simulators.policies.registry import BASELINE, sweep_of, with_value
from simulators.quality import SOURCES
from simulators.queueing import fifo
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


@dataclass(frozen=True)
class ReplayResult:
    """Every policy's outcome and summary, the baseline's name, and (with a sweep) the cost-quality points."""

    inputs: ReplayInputs
    outcomes: dict[str, Outcome]
    summaries: dict[str, dict[str, object]]
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


def execute(inputs: ReplayInputs, routing: Routing, name: str) -> Outcome:
    """Charge every attempt, queue local attempts, and read off the answer of the last one."""
    attempts = routing.attempts
    n, k = attempts.shape
    used, gap = kernels.attempt_layout(attempts, len(inputs.model_names))
    if gap:  # skipped tiers: close the gaps
        attempts = np.take_along_axis(attempts, np.argsort(attempts < 0, axis=1, kind="stable"), axis=1)
        used, _ = kernels.attempt_layout(attempts, len(inputs.model_names))
    tier_local = used[:, inputs.is_local].any(axis=1)
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
    return Outcome(
        policy=name,
        routing=routing,
        model=routing.final,
        cost_usd=cost,
        queue_wait_s=wait,
        ttft_s=ttft,
        latency_s=latency,
        first_attempt_s=first_attempt,
        wasted_tokens=wasted,
        correct=correct,
        residency_violation=violation,
        slo_violation=late,
    )


def replay_policy(inputs: ReplayInputs, policy: Policy) -> Outcome:
    """One policy routed over every model of the portfolio (wrappers narrow that themselves) and executed."""
    return execute(inputs, policy.route(inputs, np.ones((inputs.n, len(inputs.model_names)), dtype=bool)), policy.label)


def summarise(inputs: ReplayInputs, outcome: Outcome) -> dict[str, object]:
    """The headline figures of one policy (the comparison with the baseline is added by `compare`)."""
    n = inputs.n
    final = outcome.model.astype(np.int64)
    answered = final >= 0
    rows = np.flatnonzero(answered)
    names = inputs.model_names
    escalated = (outcome.routing.attempts >= 0).sum(axis=1) > 1
    local = answered & inputs.is_local[np.maximum(final, 0)]
    violations = outcome.residency_violation
    by_class = {DATA_CLASSES[c]: int(np.sum(violations & (inputs.data_class == c))) for c in range(len(DATA_CLASSES))}
    summary: dict[str, object] = {
        "requests": n,
        "rejected": int(n - answered.sum()),
        "cost_usd": float(outcome.cost_usd.sum()),
        "cost_per_1k_usd": float(outcome.cost_usd.sum() / n * 1000) if n else 0.0,
        "quality": float(outcome.correct.mean()) if n else float("nan"),
        "quality_source": metrics.counts_by_name(inputs.quality_source[rows, final[rows]], SOURCES),
        "latency_ms": {k: v * 1000 for k, v in metrics.latency_percentiles(outcome.latency_s[answered]).items()},
        "ttft_ms": {k: v * 1000 for k, v in metrics.latency_percentiles(outcome.ttft_s[answered]).items()},
        "queue_wait_ms_p95": float(np.percentile(outcome.queue_wait_s[answered], 95) * 1000) if rows.size else 0.0,
        "slo_violations": int(outcome.slo_violation.sum()),
        "escalation_rate": float(escalated.mean()) if n else 0.0,
        "wasted_tokens": int(outcome.wasted_tokens.sum()),
        "escalation_added_ms_mean": float(np.nanmean(outcome.first_attempt_s) * 1000) if escalated.any() else 0.0,
        "in_house_share": float(local.mean()) if n else 0.0,
        "frontier_share": float(np.mean(final == inputs.frontier)) if n else 0.0,
        "residency_violations": int(violations.sum()),
        "residency_violations_by_class": {k: v for k, v in by_class.items() if v},
        "models": metrics.counts_by_name(final, names),
        "local_load": local_load(inputs, outcome.routing),
    }
    first = outcome.routing.attempts[:, 0]
    deciding = first >= 0
    if outcome.routing.attempts.shape[1] > 1 and deciding.any():  # what the cascade's decisions rested on
        summary["confidence_source"] = metrics.counts_by_name(
            inputs.confidence_source[np.flatnonzero(deciding), first[deciding]], CONFIDENCE_SOURCES
        )
    if outcome.routing.reason is not None:
        summary["reasons"] = metrics.counts_by_name(outcome.routing.reason.astype(np.int64), outcome.routing.reasons)
    summary.update(dict(outcome.routing.notes.items()))
    return summary


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


def compare(summaries: dict[str, dict[str, object]], weak: str | None) -> None:
    """Add each policy's cost ratio, quality change and PGR against frontier-only (strong) and the weak model."""
    base = summaries[BASELINE]
    low = summaries.get(weak) if weak else None
    for summary in summaries.values():
        summary["vs_baseline"] = {
            "cost_ratio": (summary["cost_usd"] / base["cost_usd"]) if base["cost_usd"] else None,  # type: ignore[operator]
            "cost_saved_usd": base["cost_usd"] - summary["cost_usd"],  # type: ignore[operator]
            "quality_delta": summary["quality"] - base["quality"],  # type: ignore[operator]
            "p95_latency_delta_ms": summary["latency_ms"]["p95"] - base["latency_ms"]["p95"],  # type: ignore[index]
        }
        if low is not None and low["quality"] != base["quality"]:
            summary["pgr"] = metrics.pgr(summary["quality"], low["quality"], base["quality"])  # type: ignore[arg-type]


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
    summaries: dict[str, dict[str, object]] = {}
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
        summaries[policy.label] = {"parameters": policy.describe(), **summarise(inputs, outcome)}
        step()
    weak = next((label for label in summaries if label == "small-only"), None)
    if weak is None and BASELINE in summaries:
        from simulators.policies.small_only import SmallOnly

        summaries["small-only (reference)"] = summarise(inputs, replay_policy(inputs, SmallOnly()))
        weak = "small-only (reference)"
    compare(summaries, weak)
    points: list[dict[str, object]] = []
    if sweep:
        points = sweep_points(inputs, policies, summaries, weak, progress, step)
    return ReplayResult(inputs=inputs, outcomes=outcomes, summaries=summaries, points=points)


def sweep_points(
    inputs: ReplayInputs,
    policies: list[Policy],
    summaries: dict[str, dict[str, object]],
    weak: str | None,
    progress: Callable[[str], None] | None = None,
    step: Callable[[], None] | None = None,
) -> list[dict[str, object]]:
    """Cost-quality points of every policy (sweepable ones over their grid), the Pareto front marked, and
    APGR / CPT(50%) / CPT(80%) / AIQ added to each swept policy's summary; `step()` follows each point run."""
    points: list[dict[str, object]] = []
    for policy in policies:
        grid = sweep_of(policy)
        if grid is None:
            s = summaries[policy.label]
            points.append(
                {
                    "policy": policy.label,
                    "parameter": None,
                    "value": None,
                    "cost_usd": s["cost_usd"],
                    "quality": s["quality"],
                    "frontier_share": s["frontier_share"],
                    "p95_ms": s["latency_ms"]["p95"],
                }
            )  # type: ignore[index]
            continue
        key, values = grid
        if progress:
            progress(f"sweeping {policy.label} over {key} ({len(values)} points)")
        curve = []
        for value in values:
            s = summarise(inputs, replay_policy(inputs, with_value(policy, key, value)))
            curve.append(s)
            points.append(
                {
                    "policy": policy.label,
                    "parameter": key,
                    "value": value,
                    "cost_usd": s["cost_usd"],
                    "quality": s["quality"],
                    "frontier_share": s["frontier_share"],
                    "p95_ms": s["latency_ms"]["p95"],
                }
            )  # type: ignore[index]
            if step:
                step()
        summary = summaries[policy.label]
        cost = np.array([c["cost_usd"] for c in curve])
        quality = np.array([c["quality"] for c in curve])
        share = np.array([c["frontier_share"] for c in curve])
        summary["sweep"] = {"parameter": key, "points": len(values), "aiq": metrics.aiq(cost, quality)}
        if weak is not None:
            low, high = summaries[weak]["quality"], summaries[BASELINE]["quality"]
            if low != high:
                summary["sweep"].update(
                    {  # type: ignore[union-attr]
                        "apgr": metrics.apgr(share, quality, low, high),  # type: ignore[arg-type]
                        "cpt50": metrics.cpt(share, quality, low, high, 0.5),  # type: ignore[arg-type]
                        "cpt80": metrics.cpt(share, quality, low, high, 0.8),  # type: ignore[arg-type]
                    }
                )
    attainable = [i for i, p in enumerate(points) if p["policy"] not in UNATTAINABLE]
    front = pareto_front([(float(points[i]["cost_usd"]), float(points[i]["quality"])) for i in attainable])  # type: ignore[arg-type]
    for point in points:
        point["pareto"] = False
    for i, on in zip(attainable, front):
        points[i]["pareto"] = on
    return points


UNATTAINABLE = ("oracle",)  # a bound, drawn for reference but never on the Pareto front of real policies


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
) -> dict[str, object]:
    """One policy (one parameter changed) on inputs already built: the dashboard's what-if slider, in milliseconds.
    Nothing is stored; a stored run is what `simulators.runs.simulate` makes."""
    if key is not None:
        policy = with_value(policy, key, value)  # type: ignore[arg-type]
    return summarise(inputs, replay_policy(inputs, policy))
