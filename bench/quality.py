"""Read-side views of stored evaluations for the CLI and the dashboard: runs, their figures, per-request rows."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from bench.calibration import confusions, coverage_curve, reliability
from slmlab import store
from slmlab.paths import resolve_db_path


@dataclass(frozen=True)
class EvalRunRow:
    """One stored evaluation (measured or assumed) with its headline figures."""

    run_id: int
    source: str
    model: str
    task: str
    split: str
    variant: str
    n: int
    accuracy: float | None
    mean_score: float | None  # share of fields right for extraction; equals accuracy for classification
    calibration_error: float | None
    validity_rate: float | None
    updated_at: object

    def as_dict(self) -> dict[str, object]:
        """For `--json`."""
        return {
            "run_id": self.run_id,
            "source": self.source,
            "model": self.model,
            "task": self.task,
            "split": self.split,
            "variant": self.variant,
            "n": self.n,
            "accuracy": self.accuracy,
            "mean_score": self.mean_score,
            "expected_calibration_error": self.calibration_error,
            "validity_rate": self.validity_rate,
            "updated_at": self.updated_at,
        }


def stored_evaluations(db: str | Path | None = None) -> list[EvalRunRow]:
    """Every evaluation in the database, newest first; figures over all its stored requests."""
    if not resolve_db_path(db).exists():
        return []
    with store.connect(db, read_only=True) as con:
        rows = con.execute(
            "SELECT e.run_id, e.source, e.model_name, e.task, e.split, e.config, e.updated_at, count(o.request_id), "
            "avg(CAST(o.correct AS DOUBLE)), avg(o.score), avg(CAST(json_extract(o.details, '$.valid') AS DOUBLE)), "
            "e.summary FROM eval_runs e LEFT JOIN outcomes o ON o.eval_run_id = e.run_id "
            "GROUP BY ALL ORDER BY e.updated_at DESC, e.run_id DESC"
        ).fetchall()
    out = []
    for run_id, source, model, task, split, config, updated, n, acc, score, valid, summary in rows:
        config, summary = json.loads(config), json.loads(summary) if summary else {}
        accuracy = summary.get("accuracy", score) if source == "assumption" else acc
        out.append(
            EvalRunRow(
                run_id,
                source,
                model,
                task,
                split,
                config.get("variant", ""),
                n,
                accuracy,
                score,
                summary.get("expected_calibration_error"),
                valid,
                updated,
            )
        )
    return out


def outcomes_frame(db: str | Path | None, run_id: int) -> pl.DataFrame:
    """Per-request rows of one evaluation: text, reference, answer, right or wrong, confidence, tokens, latency."""
    with store.connect(db, read_only=True) as con:
        table = store.query_arrow(
            con,
            (
                "SELECT o.request_id, r.prompt AS text, r.reference, o.response AS answer, o.correct, o.score, "
                "o.confidence, CAST(json_extract(o.details, '$.valid') AS BOOLEAN) AS valid, o.input_tokens, "
                "o.output_tokens, o.latency_ms, r.data_class, o.source, o.source_detail "
                f"FROM outcomes o JOIN requests r ON r.trace_id = o.trace_id AND r.request_id = o.request_id "
                f"WHERE o.eval_run_id = {int(run_id)} ORDER BY r.seq"
            ),
        )
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)  # a table, never a single column
    return frame


def run_figures(frame: pl.DataFrame, bins: int = 10) -> dict[str, object]:
    """Reliability bins, coverage curve and confusions of one evaluation's rows, ready for charts."""
    measured = frame.filter(pl.col("confidence").is_not_null() & pl.col("correct").is_not_null())
    confidence = measured["confidence"].to_list()
    correct = measured["correct"].to_list()
    return {
        "reliability": reliability(confidence, correct, bins),
        "coverage": coverage_curve(confidence, correct),
        "confusions": confusions(measured["answer"].to_list(), measured["reference"].to_list(), top=15),
    }
