"""slo-overflow: keep the inner policy's local requests local while the local queue can meet their latency SLO;
when it would not, send the request to the cloud instead (if its data may go there).

The router predicts each local request's latency at its arrival, in arrival order, from what it knows then. A
model served by a batched deployment is `servers` x `slots` lanes, each request taking its prompt at the curve's
single-prompt speed and its output at the per-sequence speed of a full batch (the slowest a sequence decodes on
that server, so the estimate errs towards overflowing); without a deployment (a trace without arrivals, or FIFO
serving) one request at a time per server. The replay then serves what was kept local on the deployment itself,
so the latency it reports is the serving model's, not this estimate."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulators.inputs import ReplayInputs
from simulators.policies.base import NO_MODEL, Policy, Routing, choose, column, param
from simulators.policies.small_only import SmallOnly
from simulators.queueing import fifo_admission

REASONS = ("overflow", "kept-local-over-slo")


@dataclass(frozen=True)
class SloOverflow(Policy):
    """Admission control on the local queue: predicted wait + service over the request's SLO goes to `fallback`."""

    name = "slo-overflow"
    summary = "local first (default small-only), overflow to the cloud when the local queue would break the SLO"
    inner: Policy = param(SmallOnly(), "the policy whose local first attempts are checked against the SLO")
    fallback: str = param("frontier", "where an overflowing request goes (the best permitted cloud model if barred)")
    default_slo_ms: float = param(0.0, "SLO for requests without one (0: such requests never overflow)")
    servers: int = param(
        0, "servers per local model the router counts on (0: a fixed fleet's size, else one server of its slots)"
    )

    def route(self, inputs: ReplayInputs, candidates: np.ndarray) -> Routing:
        routed = self.inner.route(inputs, candidates)
        attempts = routed.attempts.copy()
        first = attempts[:, 0]
        slo_s = np.where(np.isnan(inputs.slo_ms), self.default_slo_ms or np.inf, inputs.slo_ms) / 1000.0
        cloud = candidates & ~inputs.is_local[None, :]
        fallback = choose(column(inputs, self.fallback), inputs, cloud)
        reason = np.full(inputs.n, NO_MODEL, dtype=np.int8)
        for j in np.flatnonzero(inputs.is_local):
            rows = np.flatnonzero(first == j)
            if not rows.size:
                continue
            lanes, service = self.lanes(inputs, int(j), rows)
            admitted, over = fifo_admission(
                inputs.arrival_s[rows], service, lanes, slo_s[rows], can_refuse=fallback[rows] >= 0
            )
            refused = rows[~admitted]
            attempts[refused] = NO_MODEL
            attempts[refused, 0] = fallback[refused]
            reason[refused] = REASONS.index("overflow")
            reason[rows[admitted & over]] = REASONS.index("kept-local-over-slo")  # its data may not leave
        return Routing(attempts=attempts, reason=reason, reasons=REASONS, notes=routed.notes)

    def lanes(self, inputs: ReplayInputs, j: int, rows: np.ndarray) -> tuple[int, np.ndarray]:
        """How many requests local model j serves at once, and each request's predicted time on one lane."""
        deployment = inputs.deployments.get(inputs.model_names[j]) if inputs.has_arrivals else None
        if deployment is None:  # FIFO: one request at a time per server, at the model's single-sequence speed
            return self.servers or inputs.config.servers, inputs.service_s[rows, j]
        slots = deployment.slots
        full_batch_itl = deployment.curve.iteration_s(slots)[slots]
        one_prompt_s = deployment.curve.prompt_s(slots)[1]
        service = inputs.input_tokens[rows] * one_prompt_s + inputs.output_tokens[rows] * full_batch_itl
        return (self.servers or deployment.servers or 1) * slots, service
