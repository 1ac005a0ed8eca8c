"""slo-overflow: keep the inner policy's local requests local while the local queue can meet their latency SLO;
when it would not, send the request to the cloud instead (if its data may go there)."""

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

    def route(self, inputs: ReplayInputs, candidates: np.ndarray) -> Routing:
        routed = self.inner.route(inputs, candidates)
        attempts = routed.attempts.copy()
        first = attempts[:, 0]
        slo_s = np.where(np.isnan(inputs.slo_ms), self.default_slo_ms or np.inf, inputs.slo_ms) / 1000.0
        cloud = candidates & ~inputs.is_local[None, :]
        fallback = choose(column(inputs, self.fallback), inputs, cloud)
        reason = np.full(inputs.n, NO_MODEL, dtype=np.int8)
        servers = inputs.config.servers
        for j in np.flatnonzero(inputs.is_local):
            rows = np.flatnonzero(first == j)
            if not rows.size:
                continue
            admitted, over = fifo_admission(
                inputs.arrival_s[rows], inputs.service_s[rows, j], servers, slo_s[rows], can_refuse=fallback[rows] >= 0
            )
            refused = rows[~admitted]
            attempts[refused] = NO_MODEL
            attempts[refused, 0] = fallback[refused]
            reason[refused] = REASONS.index("overflow")
            reason[rows[admitted & over]] = REASONS.index("kept-local-over-slo")  # its data may not leave
        return Routing(attempts=attempts, reason=reason, reasons=REASONS, notes=routed.notes)
