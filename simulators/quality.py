"""How likely each model is to answer each request of a trace correctly, and where that number came from.

Per (request, model), in order of preference:
1. `recorded`: an outcome recorded for this very request in an imported file (RouteLLM, RouterBench, MT-Bench);
2. `measured`: an outcome measured here for this very request (`slmlab eval` on a task trace);
3. `measured-task`: the model's measured accuracy on the request's enterprise task, averaged over the
   evaluated requests, for traffic such as the Azure traces that carries no answers.
Of several evaluations of one model on one task set (variants: shots, label style, free decoding), the one
with the highest accuracy is used (then the larger, then the newer): the variant one would deploy.
4. `assumption`: an accuracy the user stored for this request (`slmlab eval --assume-accuracy`) or passes in.
A request × model with none of these is an error that names the model, never a silent default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from simulators.data import Warehouse
from simulators.metrics import counts_by_name

SOURCES = ("recorded", "measured", "measured-task", "assumption")


class QualityUnknown(ValueError):
    """Some requests have no quality figure for a model; the message names the model and how to supply one."""


@dataclass(frozen=True)
class QualityMatrix:
    """P(correct) and confidence per request (rows, arrival order) and model (columns), with each cell's source."""

    request_ids: tuple[str, ...]
    models: tuple[str, ...]
    p_correct: np.ndarray  # float64, shape (requests, models)
    confidence: np.ndarray  # float64, NaN where no per-request confidence was measured
    source: np.ndarray  # int8 index into SOURCES

    def source_counts(self) -> dict[str, dict[str, int]]:
        """For each model, how many requests took their quality from each source."""
        return {model: counts_by_name(self.source[:, j], SOURCES) for j, model in enumerate(self.models)}


Assumed = Mapping[str, "float | Mapping[str, float]"]  # model -> accuracy, or model -> {task or "*": accuracy}


def _assumed_for(model: str, tasks: np.ndarray, assumed: Assumed | None) -> np.ndarray | None:
    """The assumed accuracy of `model` per request (NaN where no assumption covers the request's task)."""
    if not assumed or model not in assumed:
        return None
    entry = assumed[model]
    by_task = {"*": float(entry)} if isinstance(entry, (int, float)) else {k: float(v) for k, v in entry.items()}
    for task, value in by_task.items():
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"assumed accuracy of {model} on {task} must be between 0 and 1, got {value}")
    default = by_task.get("*", np.nan)
    return np.array([by_task.get(t, default) if t is not None else default for t in tasks], dtype=np.float64)


def quality_matrix(
    trace: str, models: list[str], *, warehouse: Warehouse, assumed: Assumed | None = None
) -> QualityMatrix:
    """The quality of every (request, model) of a stored trace; `assumed` fills what nothing else covers."""
    if not models:
        raise ValueError("name at least one model")
    table = warehouse.quality(warehouse.trace(trace).trace_id, list(models))
    count = table.num_rows // len(models)
    p = table.column("p").to_numpy(zero_copy_only=False).astype(np.float64).reshape(count, len(models))
    c = table.column("c").to_numpy(zero_copy_only=False).astype(np.float64).reshape(count, len(models))
    src = table.column("src").to_numpy(zero_copy_only=False)
    source = np.where(np.isnan(src.astype(np.float64)), -1, src).astype(np.int8).reshape(count, len(models))
    tasks = np.array(table.column("task").to_pylist()[:: len(models)], dtype=object)
    for j, model in enumerate(models):
        missing = source[:, j] == -1
        if not missing.any():
            continue
        fill = _assumed_for(model, tasks[missing], assumed)
        if fill is not None:
            p[missing, j] = fill
            source[missing, j] = np.where(np.isnan(fill), -1, SOURCES.index("assumption"))
            missing = source[:, j] == -1
        if missing.any():
            uncovered = sorted({str(t) for t in tasks[missing]})
            raise QualityUnknown(
                f"{int(missing.sum()):,} of {count:,} requests of '{trace}' have no quality figure for {model} "
                f"(tasks: {', '.join(uncovered[:6])}): no recorded or measured outcome and no measured accuracy on "
                "their task. Run `slmlab eval` for it, or set an accuracy (`slmlab eval --assume-accuracy`, or an "
                "assumptions file for the replay)"
            )
    request_ids = tuple(table.column("request_id").to_pylist()[:: len(models)])
    return QualityMatrix(request_ids, tuple(models), p, c, source)


def measured_confidences(warehouse: Warehouse) -> dict[tuple[str, str, bool], np.ndarray]:
    """The confidences measured per (model, enterprise task, answer right?) in the evaluations quality uses."""
    return {
        (model, task, right): np.asarray(values, dtype=np.float64)
        for model, task, right, values in warehouse.confidences()
    }
