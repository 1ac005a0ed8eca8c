"""Routing replays started from the dashboard, as background jobs (see `slmlab.jobs`), so the page never freezes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from app.workflows import replay_every_policy, simulate
from simulators.inputs import ReplayConfig
from simulators.policies.base import Policy
from simulators.runs import SimRun
from slmlab.jobs import BackgroundJob


@dataclass
class ReplayJob(BackgroundJob):
    """One replay: a step per policy and per sweep point; cancelled, it stops at the next step and stores nothing
    (a run is stored in one transaction at the very end)."""

    trace: str
    replay: Callable[..., SimRun]  # simulate with its arguments bound; called with progress= and steps=
    result: SimRun | None = field(default=None, kw_only=True)

    @classmethod
    def of(
        cls, config: ReplayConfig, policies: list[Policy], *, sweep: bool = False, db: str | Path | None = None
    ) -> ReplayJob:
        """The replay the Routing replay page's form asks for."""
        return cls(config.trace, partial(simulate, config, policies, sweep=sweep, db=db))

    @classmethod
    def every_policy(cls, trace: str, db: str | Path | None = None) -> ReplayJob:
        """The first replay of a trace that has none stored (see `replay_every_policy`)."""
        return cls(trace, partial(replay_every_policy, trace, db))

    def work(self) -> SimRun:
        return self.replay(progress=self._say, steps=self._steps)
