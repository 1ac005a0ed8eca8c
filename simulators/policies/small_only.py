"""small-only: every request to one small local model (the other end of the cost-quality range)."""

from __future__ import annotations

from dataclasses import dataclass

from simulators.policies.base import param
from simulators.policies.frontier_only import SingleModel


@dataclass(frozen=True)
class SmallOnly(SingleModel):
    """Send everything to the small model."""

    name = "small-only"
    summary = "every request to the small local model: the cheapest end, and the weak model of PGR"
    model: str = param("small", "the model to send everything to (a name, or the role 'small' or 'frontier')")
