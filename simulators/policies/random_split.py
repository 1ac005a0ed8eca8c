"""random: a seeded coin per request between the strong and the weak model (RouteLLM's random baseline)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulators.inputs import ReplayInputs
from simulators.policies.base import Policy, Routing, choose, column, param, policy_rng, single


@dataclass(frozen=True)
class RandomSplit(Policy):
    """Send a fixed share of requests, drawn at random, to the strong model."""

    name = "random"
    summary = "a seeded coin per request: strong model with probability strong_share, else the weak one"
    sweep = ("strong_share", tuple(i / 20 for i in range(21)))
    strong_share: float = param(0.5, "probability of sending a request to the strong model")
    strong: str = param("frontier", "the strong model")
    weak: str = param("small", "the weak model")

    def route(self, inputs: ReplayInputs, candidates: np.ndarray) -> Routing:
        heads = policy_rng(inputs, self.name).random(inputs.n) < self.strong_share
        target = np.where(heads, column(inputs, self.strong), column(inputs, self.weak))
        return single(choose(target, inputs, candidates))
