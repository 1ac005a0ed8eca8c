"""Benchmarks and evaluations started from the dashboard, as background jobs (see `slmlab.jobs`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bench.evaluate import EvalConfig, EvalResult, evaluate
from bench.results import BenchResult, benchmark
from bench.runner import BenchConfig
from bench.tasks import Task
from slmlab.jobs import BackgroundJob


@dataclass
class ModelJob(BackgroundJob):
    """Work on one model file (itself in an isolated worker process, killed when the job is cancelled)."""

    model: str
    db: str | Path | None


@dataclass
class BenchJob(ModelJob):
    """One quick benchmark run."""

    config: BenchConfig = field(default_factory=BenchConfig)
    result: BenchResult | None = field(default=None, kw_only=True)

    def work(self) -> BenchResult:
        return benchmark(
            self.model,
            self.config,
            db=self.db,
            quick=True,
            progress=lambda message: self._steps(message["progress"], message["of"]),
        )


@dataclass
class EvalJob(ModelJob):
    """One evaluation (or its resumption) of a model on a task."""

    config: EvalConfig | None = None
    task: Task | None = None
    result: EvalResult | None = field(default=None, kw_only=True)

    def work(self) -> EvalResult:
        assert self.config is not None
        return evaluate(self.model, self.config, task=self.task, db=self.db, progress=self._steps)
