"""Quality per request and model with its source: recorded files, measured evaluations, task accuracy, assumptions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.cli.main import main
from bench.evaluate import EvalConfig, evaluate
from simulators.quality import SOURCES, QualityUnknown
from simulators.quality import quality_matrix as _quality_matrix
from slmlab import replay_store, store
from tests.conftest import AZURE_CODE, ROUTELLM

WEAK, STRONG = "mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview"


def quality_matrix(trace: str, models: list[str], *, db, assumed=None):  # type: ignore[no-untyped-def]
    """The matrix as a replay reads it: through the warehouse's reader on one connection."""
    with replay_store.reader(db) as warehouse:
        return _quality_matrix(trace, models, warehouse=warehouse, assumed=assumed)


def test_recorded_routellm_outcomes_are_used_as_recorded(db: Path, capsys) -> None:
    assert main(["import", str(ROUTELLM / "mmlu"), "--name", "mmlu"]) == 0
    capsys.readouterr()
    q = quality_matrix("mmlu", [WEAK, STRONG], db=db)
    assert q.p_correct.shape == (14042, 2) and q.source_counts() == {
        WEAK: {"recorded": 14042},
        STRONG: {"recorded": 14042},
    }
    assert q.p_correct.mean(axis=0) == pytest.approx([0.6808, 0.8058], abs=1e-4)  # the published MMLU accuracies


@pytest.mark.model
def test_measured_outcomes_then_task_accuracy_then_assumptions(db: Path, capsys) -> None:
    result = evaluate("smollm2-135m", EvalConfig(task="banking77", limit=4, threads=1), db=db)
    assert main(["eval", "--model", "gpt-4o", "--task", "banking77", "--assume-accuracy", "0.9"]) == 0
    q = quality_matrix("task:banking77:test", ["smollm2-135m", "gpt-4o"], db=db)
    assert q.source_counts() == {"smollm2-135m": {"measured": 4, "measured-task": 3076}, "gpt-4o": {"assumption": 3080}}
    measured = q.source[:, 0] == SOURCES.index("measured")
    assert np.all(~np.isnan(q.confidence[measured, 0])) and np.all(np.isnan(q.confidence[~measured, 0]))
    assert np.all(q.p_correct[~measured, 0] == pytest.approx(result.summary["accuracy"]))
    assert np.all(q.p_correct[:, 1] == 0.9)

    capsys.readouterr()
    code = main(["import", str(AZURE_CODE), "--name", "code"])
    printed = capsys.readouterr()
    assert code == 0 and "imported 8,819 requests as trace 'code'" in printed.out, printed
    with pytest.raises(QualityUnknown, match=r"requests of 'code' have no quality figure for smollm2-135m"):
        quality_matrix("code", ["smollm2-135m"], db=db)
    q = quality_matrix("code", ["smollm2-135m"], db=db, assumed={"smollm2-135m": 0.4})
    counts = q.source_counts()["smollm2-135m"]
    with store.connect(db, read_only=True) as con:
        tickets = con.execute(
            "SELECT count(*) FROM requests JOIN traces USING (trace_id) "
            "WHERE name = 'code' AND task = 'ticket-classification'"
        ).fetchall()[0][0]
    assert counts == {"measured-task": tickets, "assumption": 8819 - tickets}


@pytest.mark.slow
@pytest.mark.model
def test_of_several_variants_the_most_accurate_one_is_used(db: Path) -> None:
    better = evaluate("smollm2-135m", EvalConfig(task="banking77", limit=6, threads=1), db=db)
    worse = evaluate("smollm2-135m", EvalConfig(task="banking77", limit=6, threads=1, constrained=False), db=db)
    assert better.summary["accuracy"] >= worse.summary["accuracy"]
    q = quality_matrix("task:banking77:test", ["smollm2-135m"], db=db)
    chosen = better if better.summary["accuracy"] > worse.summary["accuracy"] else worse  # ties: the newer
    task_rows = q.source[:, 0] == SOURCES.index("measured-task")
    assert np.all(q.p_correct[task_rows, 0] == pytest.approx(chosen.summary["accuracy"]))


def test_unknown_trace_and_no_models_are_clear_errors(db: Path) -> None:
    with pytest.raises(ValueError, match="at least one model"):
        quality_matrix("x", [], db=db)
    with store.connect(db):  # an empty, migrated database
        pass
    with pytest.raises(ValueError, match="no trace named 'x'"):
        quality_matrix("x", ["m"], db=db)
