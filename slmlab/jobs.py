"""Long work in a background thread, so the dashboard stays responsive while it polls progress and can cancel."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


class Cancelled(Exception):
    """The user stopped the work; raised from a progress callback (isolated workers are killed on the way out)."""


@dataclass(kw_only=True)
class BackgroundJob:
    """Mutable progress of one job; written by the worker thread, read by the page."""

    done_steps: int = 0
    total_steps: int = 0
    stage: str = ""  # what the job is doing now, in words
    result: object | None = None
    error: str | None = None
    cancelled: bool = False
    _thread: threading.Thread | None = field(default=None, repr=False)

    def cancel(self) -> None:
        """Ask the job to stop: it does at its next progress report."""
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
        """Run the work from a daemon thread."""
        self._thread = threading.Thread(target=self._run, name=type(self).__name__, daemon=True)
        self._thread.start()
        return self

    def _steps(self, done: int, total: int) -> None:
        """Progress callback for counted steps; the place where a cancelled job stops."""
        self.done_steps, self.total_steps = done, total
        self._stop_if_cancelled()

    def _say(self, stage: str) -> None:
        """Progress callback for stages in words; a cancelled job stops here too."""
        self.stage = stage
        self._stop_if_cancelled()

    def _stop_if_cancelled(self) -> None:
        if self.cancelled:
            raise Cancelled("cancelled")

    def _run(self) -> None:
        try:
            self.result = self.work()
        except Cancelled as stop:
            self.error = (
                f"Cancelled by you: {stop}" if str(stop) != "cancelled" else "Cancelled by you; nothing was stored"
            )
        except Exception as error:  # shown on the page in words; the dashboard itself carries on
            self.error = str(error)

    def work(self) -> object:
        """The job itself; returns its result."""
        raise NotImplementedError
