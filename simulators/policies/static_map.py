"""static-map: a fixed enterprise task -> model table, as many teams start."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulators.inputs import ReplayError, ReplayInputs
from simulators.policies.base import Policy, Routing, choose, column, param, single
from slmlab.traces.labelling import TASKS


@dataclass(frozen=True)
class StaticMap(Policy):
    """Route by the request's task; tasks not in the map (and unlabelled requests) go to `otherwise`."""

    name = "static-map"
    summary = "a fixed task -> model table (default: classification and QC checks local, the rest frontier)"
    mapping: str = param(
        "ticket-classification=small,quality-control-check=small",
        "comma-separated task=model pairs (models by name or role)",
    )
    otherwise: str = param("frontier", "the model for every other task")

    def route(self, inputs: ReplayInputs, candidates: np.ndarray) -> Routing:
        target = np.full(inputs.n, column(inputs, self.otherwise), dtype=np.int16)
        for pair in filter(None, (p.strip() for p in self.mapping.split(","))):
            task, _, model = pair.partition("=")
            if task not in TASKS or not model:
                raise ReplayError(f"static-map: '{pair}' is not task=model (tasks: {', '.join(TASKS)})")
            target[inputs.task == TASKS.index(task)] = column(inputs, model)
        return single(choose(target, inputs, candidates))
