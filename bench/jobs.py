"""Long work in a background thread, so the dashboard stays responsive while it polls progress."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from bench.evaluate import EvalConfig, EvalResult, evaluate
from bench.isolation import Cancelled
from bench.results import BenchResult, benchmark
from bench.runner import BenchConfig
from bench.tasks import Task


@dataclass
class BackgroundJob:
    """Mutable progress of one job; written by the worker thread, read by the page."""

    model: str
    db: str | Path | None
    done_steps: int = 0
    total_steps: int = 0
    result: object | None = None
    error: str | None = None
    cancelled: bool = False
    _thread: threading.Thread | None = field(default=None, repr=False)

    def cancel(self) -> None:
        """Ask the job to stop: it does at its next progress report, and its worker process is killed."""
        self.cancelled = True

    @property
    def finished(self) -> bool:
        """True once the job stored its result or failed."""
        return self.result is not None or self.error is not None

    @property
    def fraction(self) -> float:
        """Share of steps done, for a progress bar."""
        return self.done_steps / self.total_steps if self.total_steps else 0.0

    def start(self) -> BackgroundJob:
        """Run the work (itself in an isolated worker process) from a daemon thread."""
        self._thread = threading.Thread(target=self._run, name=f"{type(self).__name__}-{self.model}", daemon=True)
        self._thread.start()
        return self

    def _steps(self, done: int, total: int) -> None:
        self.done_steps, self.total_steps = done, total
        if self.cancelled:
            raise Cancelled("cancelled")

    def _run(self) -> None:
        try:
            self.result = self.work()
        except Cancelled as stop:
            self.error = f"Cancelled by you: {stop}" if str(stop) != "cancelled" else "Cancelled by you; nothing was stored"
        except Exception as error:  # shown on the page in words; the dashboard itself carries on
            self.error = str(error)

    def work(self) -> object:
        """The job itself; returns its result."""
        raise NotImplementedError


@dataclass
class BenchJob(BackgroundJob):
    """One quick benchmark run."""

    config: BenchConfig = field(default_factory=BenchConfig)
    result: BenchResult | None = None

    def work(self) -> BenchResult:
        return benchmark(self.model, self.config, db=self.db, quick=True,
                         progress=lambda message: self._steps(message["progress"], message["of"]))


@dataclass
class EvalJob(BackgroundJob):
    """One evaluation (or its resumption) of a model on a task."""

    config: EvalConfig | None = None
    task: Task | None = None
    result: EvalResult | None = None

    def work(self) -> EvalResult:
        assert self.config is not None
        return evaluate(self.model, self.config, task=self.task, db=self.db, progress=self._steps)
