"""cascade: try the small model first; keep its answer when its confidence clears the tier's threshold, else
escalate to the next tier. The engine charges every attempt, so the wasted small-model tokens and the added
latency of the first attempt show up in cost, latency and the escalation figures."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulators import kernels
from simulators.inputs import ReplayError, ReplayInputs
from simulators.policies.base import NO_MODEL, Policy, Routing, choose, column, param


@dataclass(frozen=True)
class Cascade(Policy):
    """Confidence cascade over one or more tiers; the last tier always answers."""

    name = "cascade"
    summary = "small model first, escalate when its confidence is below the threshold (tiers and thresholds editable)"
    sweep = ("threshold", tuple(i / 20 for i in range(21)))
    tiers: tuple[str, ...] = param(("small", "frontier"), "models tried in order (names or roles)")
    threshold: float = param(0.5, "confidence the first tier needs to keep its answer")
    later_thresholds: tuple[float, ...] = param(
        (), "thresholds of the middle tiers (one per tier after the first, before the last)"
    )

    def route(self, inputs: ReplayInputs, candidates: np.ndarray) -> Routing:
        tiers = [column(inputs, t) for t in self.tiers]
        thresholds = [self.threshold, *self.later_thresholds]
        if len(tiers) < 2 or len(set(tiers)) != len(tiers) or len(thresholds) != len(tiers) - 1:
            raise ReplayError(
                f"cascade: need two or more distinct tiers and one threshold per tier but the last "
                f"(tiers {self.tiers}, thresholds {thresholds})"
            )
        n = inputs.n
        if candidates.all():
            targets = np.broadcast_to(np.array(tiers, dtype=np.int16), (n, len(tiers)))
        else:  # a tier the request may not use is replaced by the best model it may use (an EU region, say)
            targets = np.column_stack(
                [
                    np.full(n, model, dtype=np.int16)
                    if candidates[:, model].all()
                    else choose(model, inputs, candidates)
                    for model in tiers
                ]
            )
            for t in range(1, len(tiers)):  # never the same model twice for one request
                targets[(targets[:, :t] == targets[:, t : t + 1]).any(axis=1), t] = NO_MODEL
        attempts, unrouted = kernels.cascade(targets, inputs.confidence, np.array(thresholds))
        if unrouted:
            nothing = (attempts < 0).all(axis=1)
            attempts[nothing, 0] = choose(NO_MODEL, inputs, candidates)[nothing]
        return Routing(attempts=attempts)
