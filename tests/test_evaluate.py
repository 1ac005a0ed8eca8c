"""Evaluations end to end with the real SmolLM2 in its isolated worker, writing real outcomes to DuckDB."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from app.cli.main import main
from bench.evaluate import EvalConfig, EvalError, evaluate
from bench.tasks import resolve_task
from slmlab.paths import PROJECT_ROOT


def rows(db: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


@pytest.mark.slow
@pytest.mark.model
def test_done_means_200_banking77_outcomes_with_accuracy_calibration_and_validity(db: Path, capsys) -> None:
    """The issue's acceptance command."""
    assert main(["eval", "--model", "smollm2-135m", "--task", "banking77", "--limit", "200", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 200 and report["added"] == 200 and report["source"] == "measured"
    assert 0.0 <= report["accuracy"] <= 1.0 and 0.0 <= report["expected_calibration_error"] <= 1.0
    assert report["validity_rate"] == 1.0  # constrained decoding: always one of the 77 labels
    assert set(report["confidence"]) >= {"mean", "when_correct", "when_wrong", "p10", "p50", "p90"}
    assert len(report["reliability"]) == 10 and sum(b["count"] for b in report["reliability"]) == 200
    stored = rows(
        db,
        "SELECT count(*), count(DISTINCT request_id), min(confidence) > 0, max(confidence) <= 1, "
        "bool_and(source = 'measured'), count(DISTINCT model) FROM outcomes WHERE model = 'smollm2-135m'",
    )
    assert stored == [(200, 200, True, True, True, 1)]
    labels = rows(db, "SELECT DISTINCT o.response FROM outcomes o")
    task = resolve_task("banking77")
    assert all(label in task.labels for (label,) in labels)  # stored as canonical labels
    trace = rows(
        db, "SELECT kind, format, row_count, labelling->>'method' FROM traces WHERE name = 'task:banking77:test'"
    )
    assert trace == [("task", "task", 3080, "mixed")]  # task recorded, data class and residency drawn
    requests = rows(
        db,
        "SELECT count(*) FROM requests r JOIN outcomes o USING (trace_id, request_id) "
        "WHERE r.task = 'ticket-classification' AND r.reference IS NOT NULL AND r.data_class IS NOT NULL",
    )
    assert requests == [(200,)]


@pytest.mark.slow
@pytest.mark.model
def test_a_larger_limit_extends_the_same_run_and_nothing_is_stored_twice(db: Path) -> None:
    first = evaluate("smollm2-135m", EvalConfig(task="banking77", limit=3, threads=1), db=db)
    again = evaluate("smollm2-135m", EvalConfig(task="banking77", limit=3, threads=1), db=db)
    more = evaluate("smollm2-135m", EvalConfig(task="banking77", limit=5, threads=1), db=db)
    assert (first.added, again.added, again.already_stored, more.added) == (3, 0, 3, 2)
    assert first.run_id == again.run_id == more.run_id
    assert rows(db, "SELECT count(*), count(DISTINCT request_id) FROM outcomes") == [(5, 5)]
    other = evaluate("smollm2-135m", EvalConfig(task="banking77", limit=2, shots=2, threads=1), db=db)
    assert other.run_id != first.run_id  # a different prompt is a different evaluation


@pytest.mark.slow
@pytest.mark.model
def test_an_evaluation_killed_midway_resumes_where_it_stopped(db: Path, tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "app.cli",
        "--db",
        str(db),
        "eval",
        "--model",
        "smollm2-135m",
        "--task",
        "banking77",
        "--limit",
        "60",
        "--threads",
        "1",
    ]
    process = subprocess.Popen(
        command, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline, stored = time.monotonic() + 240, 0
    try:
        while time.monotonic() < deadline and stored < 20:
            time.sleep(0.5)
            try:
                stored = rows(db, "SELECT count(*) FROM outcomes")[0][0] if db.exists() else 0
            except duckdb.Error:
                stored = 0  # the writer holds the file for a moment
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the CLI and its worker, mid-run
        process.wait()
    assert 20 <= stored < 60
    result = evaluate("smollm2-135m", EvalConfig(task="banking77", limit=60, threads=1), db=db)
    assert result.already_stored >= 20 and result.already_stored + result.added == 60
    assert rows(db, "SELECT count(*), count(DISTINCT request_id), count(DISTINCT eval_run_id) FROM outcomes") == [
        (60, 60, 1)
    ]


@pytest.mark.model
def test_free_decoding_measures_how_often_answers_are_valid(db: Path) -> None:
    result = evaluate("smollm2-135m", EvalConfig(task="banking77", limit=4, constrained=False, threads=1), db=db)
    assert 0.0 <= result.summary["validity_rate"] <= 1.0
    raw = rows(db, "SELECT details->>'raw_answer', CAST(details->>'valid' AS BOOLEAN), response FROM outcomes")
    assert len(raw) == 4 and all(text is not None for text, _, _ in raw)
    assert all(response == text for text, valid, response in raw if not valid)  # invalid answers kept verbatim


@pytest.mark.slow
@pytest.mark.model
def test_invoice_extraction_is_schema_valid_with_per_field_confidence(db: Path) -> None:
    result = evaluate("smollm2-135m", EvalConfig(task="invoices", limit=2, threads=1), db=db)
    assert result.summary["validity_rate"] == 1.0 and set(result.summary["field_accuracy"]) == {
        "vendor",
        "date",
        "currency",
        "total",
        "line_items",
    }
    details = [json.loads(d) for (d,) in rows(db, "SELECT details FROM outcomes")]
    assert all(set(d["field_confidence"]) == set(d["fields"]) for d in details)
    assert rows(db, "SELECT DISTINCT source_detail LIKE '%(synthetic task)' FROM outcomes") == [(True,)]


@pytest.mark.model
def test_a_users_labelled_csv_is_evaluated_and_stays_available_by_name(db: Path, tmp_path: Path, capsys) -> None:
    path = tmp_path / "support-queue.csv"
    path.write_text(
        "body,queue\n"
        + "".join(
            f"{t},{q}\n"
            for t, q in [
                ("My invoice total is wrong", "billing"),
                ("The app crashes on start", "technical"),
                ("Please refund my last payment", "billing"),
                ("I cannot log in", "technical"),
                ("Where is my parcel", "delivery"),
                ("Courier never came", "delivery"),
            ]
        )
    )
    code = main(
        [
            "eval",
            "--model",
            "smollm2-135m",
            "--task-csv",
            str(path),
            "--text-column",
            "body",
            "--label-column",
            "queue",
            "--limit",
            "0",
            "--threads",
            "1",
            "--json",
        ]
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["task"] == "support-queue" and report["n"] == 6
    task = resolve_task("support-queue", db)
    assert task.labels == ("billing", "delivery", "technical") and len(task.examples("test")) == 6
    assert rows(db, "SELECT format FROM traces WHERE name = 'task:support-queue:test'") == [("labelled-csv",)]


def test_a_frontier_accuracy_is_stored_as_an_assumption_and_replaced_when_set_again(db: Path, capsys) -> None:
    assert main(["eval", "--model", "gpt-4o", "--task", "banking77", "--assume-accuracy", "0.9"]) == 0
    assert main(["eval", "--model", "gpt-4o", "--task", "banking77", "--assume-accuracy", "0.93"]) == 0
    assert "assumption" in capsys.readouterr().out
    assert rows(
        db,
        "SELECT count(*), min(score), max(score), bool_and(correct IS NULL), bool_and(confidence IS NULL), "
        "bool_and(source = 'assumption') FROM outcomes",
    ) == [(3080, 0.93, 0.93, True, True, True)]
    assert main(["eval", "--list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["evaluations"]
    assert [(e["model"], e["source"], e["accuracy"]) for e in listed] == [("gpt-4o", "assumption", 0.93)]


@pytest.mark.model
@pytest.mark.parametrize(
    "args, message",
    [
        (["--task", "nope"], "unknown task 'nope'"),
        (["--task", "banking77", "--split", "dev"], "splits test, train, not 'dev'"),
        (["--task", "banking77", "--assume-accuracy", "1.5"], "between 0 and 1"),
        (["--task-csv", "missing.csv"], "missing.csv: no such file"),
        (["--task", "banking77", "--shots", "-1"], "shots must be between"),
    ],
)
def test_bad_evaluation_requests_exit_2_with_a_clear_message(db: Path, capsys, args: list[str], message: str) -> None:
    assert main(["eval", "--model", "smollm2-135m", *args]) == 2
    assert message in capsys.readouterr().err
    assert not db.exists() or rows(db, "SELECT count(*) FROM outcomes") == [(0,)]


def test_a_bad_model_file_is_refused_before_anything_is_stored(db: Path, tmp_path: Path, capsys) -> None:
    bogus = tmp_path / "broken.gguf"
    bogus.write_bytes(b"GGUF" + b"\0" * 64)
    assert main(["eval", "--model", str(bogus), "--task", "banking77", "--limit", "2"]) == 2
    assert "broken.gguf" in capsys.readouterr().err


@pytest.mark.model
def test_a_failure_inside_the_worker_is_an_error_in_words(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bench.evaluate.PROMPT_VERSION", -1)  # new run key, so the worker really starts
    with pytest.raises(EvalError, match="0 of 2 requests are stored"):
        evaluate("smollm2-135m", EvalConfig(task="banking77", limit=2, n_ctx=64, threads=1), db=db)
