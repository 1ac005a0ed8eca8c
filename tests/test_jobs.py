"""Background jobs: progress, results, errors and cancellation, with a fake job, a real replay and the real SmolLM2."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.jobs import ReplayJob
from bench.evaluate import EvalConfig
from bench.jobs import EvalJob
from simulators.inputs import ReplayConfig
from simulators.policies.registry import parse_policies
from slmlab.jobs import BackgroundJob
from slmlab.replay_store import load_points, stored_runs
from slmlab.traces.defaults import ensure_default_workloads

TRACE = "azure-llm-inference-2023-conv"


@dataclass
class Counting(BackgroundJob):
    """Reports 100 steps, slowly, then returns how many it made."""

    def work(self) -> object:
        for step in range(1, 101):
            time.sleep(0.01)
            self._steps(step, 100)
        return 100


def wait(job: BackgroundJob, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not job.finished and time.monotonic() < deadline:
        time.sleep(0.02)
    assert job.finished


def test_a_job_reports_progress_and_its_result() -> None:
    job = Counting().start()
    wait(job)
    assert job.result == 100 and job.error is None and job.fraction == 1.0


def test_a_cancelled_job_stops_at_its_next_progress_report() -> None:
    job = Counting().start()
    while job.done_steps < 3:
        time.sleep(0.005)
    job.cancel()
    wait(job)
    assert job.result is None and job.error.startswith("Cancelled by you") and job.done_steps < 100


def before_each_step(job: BackgroundJob, call: Callable[[int, int], None]) -> BackgroundJob:
    """Have `call(done, total)` run just before each of the job's step reports."""
    report = job._steps

    def steps(done: int, total: int) -> None:
        call(done, total)
        report(done, total)

    job._steps = steps  # type: ignore[method-assign]
    return job


def test_a_replay_job_counts_every_policy_and_sweep_point_and_stores_the_run(db: Path) -> None:
    seen: list[tuple[int, int]] = []
    job = before_each_step(ReplayJob.every_policy(TRACE, db), lambda done, total: seen.append((done, total)))
    wait(job.start(), 240)  # the default trace is imported on the way
    assert job.error is None and job.result is not None
    points = job.result.result.points
    swept = sum(1 for p in points if p["parameter"] is not None)
    total = len(parse_policies("all")) + swept
    assert swept > 0 and seen == [(done, total) for done in range(total + 1)]  # one step each, none skipped
    assert job.fraction == 1.0 and job.stage.startswith("storing the run")
    assert [r["run_id"] for r in stored_runs(db)] == [job.result.run_id]
    assert len(load_points(job.result.run_id, db)) == len(points)


def test_a_cancelled_replay_stops_at_its_next_step_and_stores_nothing(db: Path) -> None:
    ensure_default_workloads(db)
    job = ReplayJob.of(ReplayConfig(TRACE), parse_policies("all"), sweep=True, db=db)
    before_each_step(job, lambda done, total: job.cancel() if done == 3 else None)  # as the Cancel button does
    wait(job.start(), 240)
    assert job.result is None and job.error == "Cancelled by you; nothing was stored"
    assert job.done_steps == 3 < job.total_steps
    assert stored_runs(db) == []


@pytest.mark.model
def test_cancelling_a_real_evaluation_keeps_what_it_stored(db: Path) -> None:
    job = EvalJob(model="smollm2-135m", db=db, config=EvalConfig(task="banking77", limit=60, threads=1)).start()
    deadline = time.monotonic() + 240
    while job.done_steps < 2 and not job.finished and time.monotonic() < deadline:
        time.sleep(0.05)
    job.cancel()
    wait(job, 120)
    assert job.error and job.error.startswith("Cancelled by you")
    assert "requests are stored, run the same command again to continue" in job.error
