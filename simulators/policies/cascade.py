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
        columns = []
        done = np.zeros(n, dtype=bool)
        for t, model in enumerate(tiers):
            here = ~done & candidates[:, model]
            columns.append(np.where(here, model, NO_MODEL).astype(np.int16))
            if t < len(tiers) - 1:
                done |= here & (inputs.confidence[:, model] >= thresholds[t])
        attempts = np.column_stack(columns)
        # A request whose last permitted tier was not the final tier keeps that answer; none permitted: fall back.
        nothing = np.logical_and.reduce([column < 0 for column in columns])
        if nothing.any():
            attempts[nothing, 0] = choose(NO_MODEL, inputs, candidates)[nothing]
        return Routing(attempts=attempts)
