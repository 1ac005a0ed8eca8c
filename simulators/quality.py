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
from pathlib import Path

import numpy as np

from simulators.metrics import counts_by_name
from slmlab import store

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


_QUERY = """
WITH req AS (SELECT request_id, seq, task FROM requests WHERE trace_id = $trace),
m AS (SELECT * FROM (VALUES $models) AS t(model, position)),
recorded AS (
    SELECT request_id, model, avg(coalesce(score, CAST(correct AS DOUBLE))) AS p
    FROM outcomes WHERE trace_id = $trace AND source = 'recorded' GROUP BY ALL),
run_accuracy AS (
    SELECT e.run_id, e.model_name, e.task, e.updated_at, avg(CAST(o.correct AS DOUBLE)) AS accuracy, count(*) AS n
    FROM eval_runs e JOIN outcomes o ON o.eval_run_id = e.run_id
    WHERE e.source = 'measured' AND o.correct IS NOT NULL GROUP BY ALL),
chosen_runs AS (
    SELECT run_id FROM run_accuracy
    QUALIFY row_number() OVER (PARTITION BY model_name, task ORDER BY accuracy DESC, n DESC, updated_at DESC) = 1),
measured AS (
    SELECT request_id, model, avg(CAST(correct AS DOUBLE)) AS p, avg(confidence) AS c
    FROM outcomes WHERE trace_id = $trace AND eval_run_id IN (SELECT run_id FROM chosen_runs) GROUP BY ALL),
task_accuracy AS (
    SELECT r.task, o.model, avg(CAST(o.correct AS DOUBLE)) AS p
    FROM outcomes o JOIN requests r ON r.trace_id = o.trace_id AND r.request_id = o.request_id
    WHERE o.eval_run_id IN (SELECT run_id FROM chosen_runs) GROUP BY ALL),
assumed AS (
    SELECT request_id, model, avg(score) AS p FROM outcomes
    WHERE trace_id = $trace AND source = 'assumption' GROUP BY ALL)
SELECT req.request_id, req.task, m.model,
       coalesce(rec.p, mea.p, ta.p, ass.p) AS p,
       mea.c AS c,
       CASE WHEN rec.p IS NOT NULL THEN 0 WHEN mea.p IS NOT NULL THEN 1 WHEN ta.p IS NOT NULL THEN 2
            WHEN ass.p IS NOT NULL THEN 3 END AS src
FROM req CROSS JOIN m
LEFT JOIN recorded rec ON rec.request_id = req.request_id AND rec.model = m.model
LEFT JOIN measured mea ON mea.request_id = req.request_id AND mea.model = m.model
LEFT JOIN task_accuracy ta ON ta.task = req.task AND ta.model = m.model
LEFT JOIN assumed ass ON ass.request_id = req.request_id AND ass.model = m.model
ORDER BY req.seq, m.position
"""


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


def quality_matrix(trace: str, models: list[str], *, db: str | Path | None = None,
                   assumed: Assumed | None = None) -> QualityMatrix:
    """The quality of every (request, model) of a stored trace; `assumed` fills what nothing else covers."""
    if not models:
        raise ValueError("name at least one model")
    with store.connect(db, read_only=True) as con:
        found = con.execute("SELECT trace_id FROM traces WHERE name = ?", [trace]).fetchall()
        if not found:
            raise ValueError(f"no trace named '{trace}'")
        table = store.query_arrow(con, _QUERY.replace("$trace", str(int(found[0][0])))
                                  .replace("$models", ", ".join(f"({_quote(m)}, {i})" for i, m in enumerate(models))))
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
                "assumptions file for the replay)")
    request_ids = tuple(table.column("request_id").to_pylist()[:: len(models)])
    return QualityMatrix(request_ids, tuple(models), p, c, source)


_CONFIDENCE_QUERY = """
WITH run_accuracy AS (
    SELECT e.run_id, e.model_name, e.task, e.updated_at, avg(CAST(o.correct AS DOUBLE)) AS accuracy, count(*) AS n
    FROM eval_runs e JOIN outcomes o ON o.eval_run_id = e.run_id
    WHERE e.source = 'measured' AND o.correct IS NOT NULL GROUP BY ALL),
chosen_runs AS (
    SELECT run_id FROM run_accuracy
    QUALIFY row_number() OVER (PARTITION BY model_name, task ORDER BY accuracy DESC, n DESC, updated_at DESC) = 1)
SELECT o.model, r.task, o.correct, list(o.confidence ORDER BY o.confidence) AS confidences
FROM outcomes o JOIN requests r ON r.trace_id = o.trace_id AND r.request_id = o.request_id
WHERE o.eval_run_id IN (SELECT run_id FROM chosen_runs) AND o.confidence IS NOT NULL AND o.correct IS NOT NULL
GROUP BY ALL
"""


def measured_confidences(db: str | Path | None = None) -> dict[tuple[str, str, bool], np.ndarray]:
    """The confidences measured per (model, enterprise task, answer right?) in the evaluations quality uses."""
    with store.connect(db, read_only=True) as con:
        rows = con.execute(_CONFIDENCE_QUERY).fetchall()
    return {(model, task, bool(correct)): np.asarray(values, dtype=np.float64) for model, task, correct, values in rows}


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
