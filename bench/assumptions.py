"""Frontier-model quality that cannot be measured here (no API is reachable), stored as an explicit assumption."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

from bench.evaluate import ensure_task_trace
from bench.tasks import Task
from slmlab import __version__, store


def assume_accuracy(
    model: str,
    task: Task,
    accuracy: float,
    *,
    split: str = "test",
    db: str | Path | None = None,
    note: str | None = None,
) -> tuple[int, int]:
    """Store `accuracy` as the expected score of `model` on every request of a task split; returns (run id, rows).

    Rows have `source = 'assumption'`, score = the accuracy, and no per-request correctness or confidence, so
    nothing downstream can mistake them for measurements. Setting it again replaces the earlier assumption.
    """
    if not 0.0 <= accuracy <= 1.0:
        raise ValueError(f"accuracy must be between 0 and 1, got {accuracy}")
    examples = task.examples(split)
    key = hashlib.sha256(json.dumps({"assumed": model, "task": task.name, "split": split}).encode()).hexdigest()[:24]
    detail = f"assumption: accuracy {accuracy:.3f} for {model} on {task.name}/{split}, set by the user" + (
        f" ({note})" if note else ""
    )
    now = datetime.now(UTC).replace(tzinfo=None)
    config = {"task": task.name, "split": split, "assumed_accuracy": accuracy, "note": note, "variant": "assumption"}
    summary = {"n": len(examples), "accuracy": accuracy, "assumed": True}
    with store.transaction(db) as con:
        trace_id = ensure_task_trace(con, task, split, examples)
        old = con.execute("SELECT run_id FROM eval_runs WHERE run_key = ?", [key]).fetchall()
        if old:
            run_id = int(old[0][0])
            con.execute("DELETE FROM outcomes WHERE eval_run_id = ?", [run_id])
            con.execute(
                "UPDATE eval_runs SET updated_at = ?, config = ?, summary = ? WHERE run_id = ?",
                [now, json.dumps(config), json.dumps(summary), run_id],
            )
        else:
            run_id = int(
                con.execute(
                    "INSERT INTO eval_runs (run_key, started_at, updated_at, source, model_name, task, split, "
                    "trace_id, "
                    "config, versions, summary) VALUES (?, ?, ?, 'assumption', ?, ?, ?, ?, ?, ?, ?) RETURNING run_id",
                    [
                        key,
                        now,
                        now,
                        model,
                        task.name,
                        split,
                        trace_id,
                        json.dumps(config),
                        json.dumps({"slmlab": __version__}),
                        json.dumps(summary),
                    ],
                ).fetchall()[0][0]
            )
        con.execute(
            "INSERT INTO outcomes (trace_id, request_id, model, correct, score, confidence, source, source_detail, "
            "eval_run_id, judge) SELECT trace_id, request_id, ?, NULL, ?, NULL, 'assumption', ?, ?, 'none (assumed)' "
            "FROM requests WHERE trace_id = ?",
            [model, accuracy, detail, run_id, trace_id],
        )
    return run_id, len(examples)
