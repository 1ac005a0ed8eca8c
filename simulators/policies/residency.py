"""residency-aware: a filter in front of any policy: it never sends a request to a location its data class or
residency requirement forbids, and reports what it had to keep local or reject."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulators.inputs import ReplayInputs
from simulators.policies.base import NO_MODEL, Policy, Routing, param
from simulators.policies.frontier_only import FrontierOnly

REASONS = ("kept-local", "moved-region", "rejected")


@dataclass(frozen=True)
class ResidencyAware(Policy):
    """Run the inner policy on the permitted models only; compare with what it would have done unfiltered."""

    name = "residency-aware"
    summary = (
        "filter in front of another policy (default frontier-only): never breaks residency; "
        "counts kept-local and rejected"
    )
    inner: Policy = param(FrontierOnly(), "the policy that chooses among the permitted models")

    def route(self, inputs: ReplayInputs, candidates: np.ndarray) -> Routing:
        routed = self.inner.route(inputs, candidates & inputs.permitted)
        unfiltered = self.inner.route(inputs, candidates).final
        final = routed.final
        changed = final != unfiltered
        was_cloud = (unfiltered >= 0) & ~inputs.is_local[np.maximum(unfiltered, 0)]
        now_local = (final >= 0) & inputs.is_local[np.maximum(final, 0)]
        reason = np.full(inputs.n, NO_MODEL, dtype=np.int8)
        reason[changed & (final >= 0)] = REASONS.index("moved-region")
        reason[changed & was_cloud & now_local] = REASONS.index("kept-local")
        reason[final == NO_MODEL] = REASONS.index("rejected")
        return Routing(attempts=routed.attempts, reason=reason, reasons=REASONS, notes=routed.notes)
