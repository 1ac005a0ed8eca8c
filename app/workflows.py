"""Read, compute, store: the sequences the CLI and the dashboard both run, written once.

The warehouse (`slmlab.replay_store`) reads a replay's inputs on one connection and stores finished runs; the
replay layer (`simulators/`) computes on what it is handed. This module joins the two for the interfaces.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from simulators.inputs import ReplayConfig, ReplayInputs
from simulators.inputs import build_inputs as _build_inputs
from simulators.policies.base import Policy
from simulators.runs import STORE_REQUESTS_LIMIT, SimRun, clean, request_tables, stored_form
from simulators.scenarios import compare_scenarios as _compare
from simulators.uncertainty import monte_carlo as _monte_carlo
from slmlab import replay_store
from slmlab.replay_store import latest_run_id, load_run, load_scenario

if TYPE_CHECKING:
    from simulators.projection import Projection


def build_inputs(config: ReplayConfig, *, db: str | Path | None = None) -> ReplayInputs:
    """A replay's inputs, read from the database in one read-only connection."""
    with replay_store.reader(db) as warehouse:
        return _build_inputs(config, warehouse=warehouse)


def simulate(
    config: ReplayConfig,
    policies: list[Policy],
    *,
    sweep: bool = False,
    db: str | Path | None = None,
    store_requests: bool | None = None,
    progress: Callable[[str], None] | None = None,
    steps: Callable[[int, int], None] | None = None,
) -> SimRun:
    """Build the inputs, replay every policy (and the sweeps), and store the run in one transaction; an exception
    from `progress` or `steps` (a cancelled job) leaves the database untouched."""
    from simulators.replay import run_policies

    started = time.perf_counter()
    if progress:
        progress(f"loading '{config.trace}', the portfolio and the quality of every request")
    inputs = build_inputs(config, db=db)
    result = run_policies(inputs, policies, sweep=sweep, progress=progress, steps=steps)
    seconds = time.perf_counter() - started
    keep = inputs.n <= STORE_REQUESTS_LIMIT if store_requests is None else store_requests
    if progress:
        progress("storing the run" + (" with per-request results" if keep else ""))
    record = replay_store.RunRecord(**stored_form(config, policies, sweep, result, seconds, keep))  # type: ignore[arg-type]
    run_id = replay_store.save_run(record, request_tables(result) if keep else (), clean(result.points), db=db)  # type: ignore[arg-type]
    return SimRun(run_id=run_id, seconds=seconds, result=result, requests_stored=keep)


def replay_every_policy(
    trace: str,
    db: str | Path | None = None,
    *,
    progress: Callable[[str], None] | None = None,
    steps: Callable[[int, int], None] | None = None,
) -> SimRun:
    """A new replay of every policy with its sweep on the trace's defaults: what a projection, a claim check or the
    Home page reads when the trace has no stored replay (the sweep lets a claim be tested against every setting)."""
    from simulators.policies.registry import parse_policies
    from slmlab.traces.defaults import ensure_default_trace

    ensure_default_trace(trace, db)
    return simulate(ReplayConfig(trace), parse_policies("all"), sweep=True, db=db, progress=progress, steps=steps)


def run_for(
    trace: str,
    run_id: int | None = None,
    *,
    db: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> int:
    """The replay a projection or claim check reads: the one named, else the trace's newest, else a new replay of
    every policy with its sweep (so claims can be tested against every setting)."""
    if run_id is not None:
        load_run(run_id, db)  # raises with a clear message when there is no such run
        return run_id
    from slmlab.traces.defaults import ensure_default_trace

    ensure_default_trace(trace, db)
    found = latest_run_id(trace, db)
    if found is not None:
        return found
    if progress:
        progress(f"no stored replay of '{trace}' yet: replaying every policy with its sweep first")
    return replay_every_policy(trace, db, progress=progress).run_id


def monte_carlo(
    projection: Projection, *, draws: int = 1000, seed: int = 0, db: str | Path | None = None, bootstrap: bool = True
) -> dict[str, object]:
    """Uncertainty bands of a projection, resampling the replay's stored per-request costs where it kept them."""
    costs = None
    if bootstrap:
        with replay_store.reader(db) as warehouse:
            costs = warehouse.run_costs(projection.basis.run_id)
    return _monte_carlo(projection, draws=draws, seed=seed, costs=costs)


def save_scenario(name: str, projection: Projection, *, db: str | Path | None = None) -> None:
    """Keep a projection under a name, with the run it scales and its assumptions."""
    replay_store.save_scenario(
        name, projection.basis.run_id, projection.assumptions.as_dict(), projection.as_dict(), db=db
    )


def compare_scenarios(names: list[str], db: str | Path | None = None) -> list[dict[str, object]]:
    """One row per (saved scenario, policy): total cost, break-even month, servers at the end."""
    return _compare({name: load_scenario(name, db) for name in names})


def hardware_profile_names(db: str | Path | None = None) -> list[str]:
    """The shipped hardware profiles and the user's stored ones, for the Routing replay form."""
    from simulators.deployment import load_profiles
    from slmlab.hardware_profiles import stored_profiles

    return list(load_profiles(stored=stored_profiles(db)))
