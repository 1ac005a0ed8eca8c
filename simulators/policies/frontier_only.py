"""frontier-only: every request to the frontier model; the baseline every replay reports against."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulators.inputs import ReplayInputs
from simulators.policies.base import Policy, Routing, choose, column, param, single


@dataclass(frozen=True)
class SingleModel(Policy):
    """Send everything to one model (a name, or a role); the base of frontier-only and small-only."""

    model: str = param("frontier", "the model to send everything to (a name, or the role 'frontier' or 'small')")

    def route(self, inputs: ReplayInputs, candidates: np.ndarray) -> Routing:
        return single(choose(column(inputs, self.model), inputs, candidates))


@dataclass(frozen=True)
class FrontierOnly(SingleModel):
    """Send everything to the frontier model."""

    name = "frontier-only"
    summary = "every request to the frontier model: today's architecture and the baseline of every run"
