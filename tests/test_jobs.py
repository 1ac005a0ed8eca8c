"""Background jobs: progress, results, errors and cancellation, with a fake job and with the real SmolLM2."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from bench.evaluate import EvalConfig
from bench.jobs import BackgroundJob, EvalJob


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
    job = Counting(model="fake", db=None).start()
    wait(job)
    assert job.result == 100 and job.error is None and job.fraction == 1.0


def test_a_cancelled_job_stops_at_its_next_progress_report() -> None:
    job = Counting(model="fake", db=None).start()
    while job.done_steps < 3:
        time.sleep(0.005)
    job.cancel()
    wait(job)
    assert job.result is None and job.error.startswith("Cancelled by you") and job.done_steps < 100


def test_cancelling_a_real_evaluation_keeps_what_it_stored(db: Path) -> None:
    job = EvalJob(model="smollm2-135m", db=db, config=EvalConfig(task="banking77", limit=60, threads=1)).start()
    deadline = time.monotonic() + 240
    while job.done_steps < 2 and not job.finished and time.monotonic() < deadline:
        time.sleep(0.05)
    job.cancel()
    wait(job, 120)
    assert job.error and job.error.startswith("Cancelled by you")
    assert "requests are stored, run the same command again to continue" in job.error
