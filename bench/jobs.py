"""A benchmark running in a background thread, so the dashboard stays responsive while it polls progress."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from bench.results import BenchResult, benchmark
from bench.runner import BenchConfig


@dataclass
class BenchJob:
    """Mutable progress of one run; written by the worker thread, read by the page."""

    model: str
    config: BenchConfig
    db: str | Path | None
    done_steps: int = 0
    total_steps: int = 0
    result: BenchResult | None = None
    error: str | None = None
    _thread: threading.Thread | None = field(default=None, repr=False)

    @property
    def finished(self) -> bool:
        """True once the run stored its result or failed."""
        return self.result is not None or self.error is not None

    @property
    def fraction(self) -> float:
        """Share of repetitions done (warm-up included), for a progress bar."""
        return self.done_steps / self.total_steps if self.total_steps else 0.0

    def start(self) -> BenchJob:
        """Run the benchmark (isolated worker process) from a daemon thread."""
        self._thread = threading.Thread(target=self._run, name=f"bench-{self.model}", daemon=True)
        self._thread.start()
        return self

    def _progress(self, message: dict) -> None:
        self.done_steps, self.total_steps = message["progress"], message["of"]

    def _run(self) -> None:
        try:
            self.result = benchmark(self.model, self.config, db=self.db, quick=True, progress=self._progress)
        except Exception as error:  # shown on the page in words; the dashboard itself carries on
            self.error = str(error)
