"""oracle: the cheapest model that answers correctly: the upper bound no real router can beat."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulators.inputs import ReplayInputs
from simulators.policies.base import NO_MODEL, Policy, Routing, single


@dataclass(frozen=True)
class Oracle(Policy):
    """Knows every answer in advance: the cheapest right model (ties: the likelier one), else the cheapest."""

    name = "oracle"
    kind = "reference"  # it knows every answer in advance
    summary = "the cheapest model that answers correctly (the cheapest at all when none does): the upper bound"

    def route(self, inputs: ReplayInputs, candidates: np.ndarray) -> Routing:
        right = inputs.correct & candidates
        key = np.where(candidates, inputs.cost_usd, np.inf) - 1e-12 * inputs.p_correct  # cost first, then quality
        best_right = np.argmin(np.where(right, key, np.inf), axis=1)
        cheapest = np.argmin(key, axis=1)
        choice = np.where(right.any(axis=1), best_right, cheapest)
        return single(np.where(candidates.any(axis=1), choice, NO_MODEL))
