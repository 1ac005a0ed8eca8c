"""small-only: every request to one small local model (the other end of the cost-quality range)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulators.inputs import ReplayInputs
from simulators.policies.base import Policy, Routing, choose, column, param, single


@dataclass(frozen=True)
class SmallOnly(Policy):
    """Send everything to the small model."""

    name = "small-only"
    summary = "every request to the small local model: the cheapest end, and the weak model of PGR"
    model: str = param("small", "the model to send everything to (a name, or the role 'small')")

    def route(self, inputs: ReplayInputs, candidates: np.ndarray) -> Routing:
        return single(choose(column(inputs, self.model), inputs, candidates))
