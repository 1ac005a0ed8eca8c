"""A policy's attempts through the local deployments: each local model's requests through its fleet (sized to the
SLO unless fixed), API attempts as soon as they are ready, then every attempt charged and timed.

Models are walked in dependency order (a cascade's later tier waits for the earlier one), so each local model
sees its requests at the time they reach it, whatever tier they come from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulators import serving
from simulators.deployment import Deployment, FleetCost, Served, Sizing, fleet_cost, serve, size_fleet
from simulators.results import LocalFleet
from slmlab.parallel import in_chunks


@dataclass(frozen=True)
class ModelFleet:
    """One local model's fleet in one policy: how many servers, whether sized, what it gave and cost."""

    model: str
    profile: str
    slots: int
    servers: int
    requests: int
    sizing: Sizing | None  # None: the fleet was fixed
    ttft_p95_s: float
    latency_p95_s: float
    utilisation: float  # busy server-time / (servers x span)
    overloaded: bool
    backlog_end: int
    backlog_growth_per_hour: float
    cost: FleetCost

    def summary(self, curve_source: str = "") -> LocalFleet:
        """The typed figures a policy summary carries."""
        sizing = self.sizing
        return LocalFleet(
            model=self.model,
            profile=self.profile,
            slots=self.slots,
            servers=self.servers,
            sized=sizing is not None,
            requests=self.requests,
            ttft_p95_ms=None if self.overloaded else self.ttft_p95_s * 1000,
            latency_p95_ms=None if self.overloaded else self.latency_p95_s * 1000,
            utilisation=self.utilisation,
            overloaded=self.overloaded,
            backlog_growth_per_hour=self.backlog_growth_per_hour,
            cost_usd=self.cost.total_usd,
            slo=str(sizing.slo) if sizing else None,
            slo_attainable=sizing.attainable if sizing else None,
            floor_ms=sizing.floor_s * 1000 if sizing else None,
            curve_source=curve_source,
            energy_source=self.cost.energy_source,
        )

    def as_dict(self) -> dict[str, object]:
        """JSON-ready, for the summary."""
        out: dict[str, object] = {
            "profile": self.profile,
            "slots": self.slots,
            "servers": self.servers,
            "requests": self.requests,
            "sized": self.sizing is not None,
            "ttft_p95_ms": self.ttft_p95_s * 1000,
            "latency_p95_ms": self.latency_p95_s * 1000,
            "utilisation": self.utilisation,
            "overloaded": self.overloaded,
            "backlog_end": self.backlog_end,
            "backlog_growth_per_hour": self.backlog_growth_per_hour,
            "cost_usd": {
                "hardware": self.cost.hardware_usd,
                "energy": self.cost.energy_usd,
                "operations": self.cost.operations_usd,
            },
            "energy_source": self.cost.energy_source,
        }
        if self.sizing is not None:
            out.update(
                {
                    "slo": str(self.sizing.slo),
                    "slo_attainable": self.sizing.attainable,
                    "sized_to_s": self.sizing.target_s,
                    "floor_s": self.sizing.floor_s,
                }
            )
        return out


def _fleet_of(
    deployment: Deployment,
    ready: np.ndarray,
    tokens_in: np.ndarray,
    tokens_out: np.ndarray,
    span_s: float,
    joules_per_token: float | None,
) -> tuple[Served, ModelFleet]:
    """Serve one model's requests (sorted by ready time) on its fixed or sized fleet."""
    sizing = None
    if deployment.servers is None and deployment.slo is not None:
        sizing, served = size_fleet(deployment, deployment.slo, ready, tokens_in, tokens_out)
    else:
        served = serve(deployment, deployment.servers or 1, ready, tokens_in, tokens_out)
    n = ready.size
    ttft = served.first - ready
    latency = served.finish - ready
    cost = fleet_cost(
        deployment.profile, served.servers, span_s, served.busy_s, float(tokens_out.sum()), joules_per_token
    )
    return served, ModelFleet(
        model=deployment.model,
        profile=deployment.profile.name,
        slots=deployment.slots,
        servers=served.servers,
        requests=n,
        sizing=sizing,
        ttft_p95_s=float(np.percentile(ttft, 95)) if n else 0.0,
        latency_p95_s=float(np.percentile(latency, 95)) if n else 0.0,
        utilisation=served.busy_s / (served.servers * span_s) if span_s > 0 else 0.0,
        overloaded=served.overloaded,
        backlog_end=served.backlog_end,
        backlog_growth_per_hour=served.backlog_growth_per_hour if served.overloaded else 0.0,
        cost=cost,
    )


def settle(
    order: list[int],
    attempts: np.ndarray,
    arrival: np.ndarray,
    first_token_s: np.ndarray,
    service_s: np.ndarray,
    rates: np.ndarray,
    tokens_in: np.ndarray,
    tokens_out: np.ndarray,
    permitted: np.ndarray,
    correct: np.ndarray,
    slo_ms: np.ndarray,
    names: tuple[str, ...],
    deployments: dict[str, Deployment],
    joules: dict[str, float],
) -> tuple[tuple[np.ndarray, ...], dict[str, ModelFleet]]:
    """The outputs of `kernels.settle` (cost, wait, TTFT, latency, time before the answering attempt, wasted
    tokens, correct, residency broken, SLO missed) with local attempts served by their deployments, and the fleet
    of each local model used. `order`: models in dependency order."""
    n, k = attempts.shape
    span = float(arrival[-1] - arrival[0]) if n > 1 else 0.0
    ready, start, first, finish = (np.zeros((k, n)) for _ in range(4))
    ready[0] = arrival
    fleets: dict[str, ModelFleet] = {}
    for j in order:
        tiers = [(t, r) for t in range(k) if (r := np.flatnonzero(attempts[:, t] == j)).size]
        if not tiers:
            continue
        for t, r in tiers:
            if t:
                ready[t, r] = finish[t - 1, r]
        rows = np.concatenate([r for _, r in tiers])
        when = np.concatenate([ready[t, r] for t, r in tiers])
        if names[j] in deployments:
            ordered = when.size < 2 or bool(np.all(when[1:] >= when[:-1]))  # first tier: already in arrival order
            sort = np.arange(when.size) if ordered else np.argsort(when, kind="stable")
            served, fleets[names[j]] = _fleet_of(
                deployments[names[j]],
                when[sort],
                tokens_in[rows[sort]],
                tokens_out[rows[sort]],
                span,
                joules.get(names[j]),
            )
            begin, got, end = (np.empty(rows.size) for _ in range(3))
            begin[sort], got[sort], end[sort] = served.start, served.first, served.finish
        else:
            begin, got, end = when, when + first_token_s[rows, j], when + service_s[rows, j]
        offset = 0
        for t, r in tiers:
            part = slice(offset, offset + r.size)
            start[t, r], first[t, r], finish[t, r] = begin[part], got[part], end[part]
            offset += r.size
    total, wait, ttft, latency, first_attempt, wasted = (np.empty(n) for _ in range(6))
    right, violation, late = (np.empty(n, dtype=np.bool_) for _ in range(3))
    outputs = (total, wait, ttft, latency, first_attempt, wasted, right, violation, late)
    in_chunks(
        serving.account_timed,
        n,
        attempts,
        start,
        first,
        finish,
        arrival,
        rates,
        tokens_in,
        tokens_out,
        permitted,
        correct,
        slo_ms,
        *outputs,
    )
    return outputs, fleets
