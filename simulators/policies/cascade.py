"""cascade: try the small model first; keep its answer when its confidence clears the tier's threshold, else
escalate to the next tier. The engine charges every attempt, so the wasted small-model tokens and the added
latency of the first attempt show up in cost, latency and the escalation figures."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
    later_thresholds: tuple[float, ...] = param((), "thresholds of the middle tiers (one per tier after the first, "
                                                     "before the last)")

    def route(self, inputs: ReplayInputs, candidates: np.ndarray) -> Routing:
        tiers = [column(inputs, t) for t in self.tiers]
        thresholds = [self.threshold, *self.later_thresholds]
        if len(tiers) < 2 or len(set(tiers)) != len(tiers) or len(thresholds) != len(tiers) - 1:
            raise ReplayError(f"cascade: need two or more distinct tiers and one threshold per tier but the last "
                              f"(tiers {self.tiers}, thresholds {thresholds})")
        n = inputs.n
        columns: list[np.ndarray] = []
        done = np.zeros(n, dtype=bool)
        for t, model in enumerate(tiers):
            if candidates[:, model].all():
                target = np.full(n, model, dtype=np.int16)
                confidence = inputs.confidence[:, model]
            else:  # a tier the request may not use is replaced by the best model it may use (an EU region, say)
                target = choose(model, inputs, candidates)
                confidence = inputs.confidence[np.arange(n), np.maximum(target, 0)]
            for earlier in columns:  # never the same model twice for one request
                target = np.where(earlier == target, NO_MODEL, target).astype(np.int16)
            here = ~done & (target >= 0)
            columns.append(np.where(here, target, NO_MODEL).astype(np.int16))
            if t < len(tiers) - 1:
                done |= here & (confidence >= thresholds[t])
        attempts = np.column_stack(columns)
        nothing = np.logical_and.reduce([column < 0 for column in columns])
        if nothing.any():
            attempts[nothing, 0] = choose(NO_MODEL, inputs, candidates)[nothing]
        return Routing(attempts=attempts)
