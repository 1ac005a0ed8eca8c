"""Run a routing replay and keep it: every run is stored with its full configuration, seed, trace hash and
catalogue version, so the same inputs reproduce it, and the dashboard and CLI read results back from DuckDB."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import duckdb
import numpy as np
import pyarrow as pa

from simulators.inputs import CONFIDENCE_SOURCES, ReplayConfig, ReplayInputs, build_inputs
from simulators.policies.base import Policy
from simulators.metrics import counts_by_name
from simulators.quality import SOURCES
from simulators.traces.labelling import DATA_CLASSES, TASKS
from slmlab import __version__, store

if TYPE_CHECKING:  # the engine (and numba) load only when a replay runs, not to read stored ones
    from simulators.replay import Outcome, ReplayResult

STORE_REQUESTS_LIMIT = 250_000  # per-request rows are kept for traces up to this size (the drill-down needs them)


@dataclass(frozen=True)
class SimRun:
    """A stored replay: its id, how long it took, and the result (arrays in memory, summaries in DuckDB)."""

    run_id: int
    seconds: float
    result: ReplayResult
    requests_stored: bool

    def as_dict(self) -> dict[str, object]:
        """What `slmlab simulate --json` prints."""
        inputs = self.result.inputs
        return clean({
            "run_id": self.run_id, "trace": inputs.config.trace, "trace_hash": inputs.trace_hash,
            "catalogue_version": inputs.portfolio.catalogue_version, "seed": inputs.config.seed,
            "seconds": self.seconds, "requests": inputs.n, "baseline": "frontier-only",
            "frontier_model": inputs.model_names[inputs.frontier], "small_model": inputs.model_names[inputs.small],
            "inputs": input_provenance(inputs), "policies": self.result.summaries, "points": self.result.points,
        })  # type: ignore[return-value]


def clean(value: object) -> object:
    """JSON-safe: NaN and infinities become null, numpy scalars plain numbers, tuples lists."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def input_provenance(inputs: ReplayInputs) -> dict[str, object]:
    """Where every input figure came from: quality and confidence per model, token counts, arrivals."""
    names = inputs.model_names
    quality = {name: counts_by_name(inputs.quality_source[:, j], SOURCES) for j, name in enumerate(names)}
    confidence = {name: counts_by_name(inputs.confidence_source[:, j], CONFIDENCE_SOURCES)
                  for j, name in enumerate(names) if inputs.is_local[j] or j == inputs.small}
    return {
        "quality_source": quality, "confidence_source": confidence, "token_source": inputs.token_sources,
        "arrivals": "recorded" if inputs.has_arrivals else "none recorded: no queueing, every request served on arrival",
        "span_s": float(inputs.arrival_s[-1] - inputs.arrival_s[0]) if inputs.has_arrivals and inputs.n > 1 else None,
        "speed": inputs.config.speed, "volume": inputs.config.volume, "servers_per_local_model": inputs.config.servers,
        "assumptions_file": inputs.config.assumptions,
    }


def _attempt_labels(attempts: np.ndarray, names: tuple[str, ...]) -> list[str | None]:
    combos, inverse = np.unique(attempts, axis=0, return_inverse=True)
    text = [" > ".join(names[j] for j in row if j >= 0) or None for row in combos]
    return [text[i] for i in inverse.ravel()]


def _request_table(run_id: int, inputs: ReplayInputs, outcome: Outcome) -> pa.Table:
    names = inputs.model_names
    final = outcome.model.astype(np.int64)
    answered = final >= 0
    name_of = np.array([*names, None], dtype=object)
    routing = outcome.routing
    reasons = np.array([*routing.reasons, None], dtype=object)
    reason = reasons[routing.reason] if routing.reason is not None else np.full(inputs.n, None, dtype=object)
    tries = (routing.attempts >= 0).sum(axis=1)
    decision = np.where(~answered, "rejected", np.where(tries > 1, "escalated", "answered")).astype(object)
    source_names = np.array([*SOURCES, None], dtype=object)
    source = np.where(answered, inputs.quality_source[np.arange(inputs.n), np.maximum(final, 0)], -1)
    vocabulary_task, vocabulary_class = np.array([*TASKS, None], dtype=object), np.array([*DATA_CLASSES, None], dtype=object)
    return pa.table({
        "run_id": pa.array(np.full(inputs.n, run_id, dtype=np.int32)),
        "policy": pa.array([outcome.policy] * inputs.n, type=pa.string()),
        "seq": pa.array(np.arange(inputs.n, dtype=np.int64)),
        "request_id": pa.array(inputs.request_ids.tolist(), type=pa.string()),
        "copy": pa.array(inputs.copy),
        "decision": pa.array(decision.tolist(), type=pa.string()),
        "model": pa.array(name_of[final].tolist(), type=pa.string()),
        "attempts": pa.array(_attempt_labels(routing.attempts, names), type=pa.string()),
        "reason": pa.array(reason.tolist(), type=pa.string()),
        "cost_usd": pa.array(outcome.cost_usd),
        "queue_wait_ms": pa.array(outcome.queue_wait_s * 1000),
        "ttft_ms": pa.array(outcome.ttft_s * 1000, from_pandas=True),
        "latency_ms": pa.array(outcome.latency_s * 1000, from_pandas=True),
        "correct": pa.array(outcome.correct),
        "quality_source": pa.array(source_names[source].tolist(), type=pa.string()),
        "residency_violation": pa.array(outcome.residency_violation),
        "slo_violation": pa.array(outcome.slo_violation),
        "data_class": pa.array(vocabulary_class[inputs.data_class].tolist(), type=pa.string()),
        "task": pa.array(vocabulary_task[inputs.task].tolist(), type=pa.string()),
    })


def simulate(config: ReplayConfig, policies: list[Policy], *, sweep: bool = False, db: str | Path | None = None,
             store_requests: bool | None = None, progress: Callable[[str], None] | None = None,
             steps: Callable[[int, int], None] | None = None) -> SimRun:
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
    record = {
        "replay": config.as_dict(), "policies": [p.describe() for p in policies], "sweep": sweep,
        "frontier_model": inputs.model_names[inputs.frontier], "small_model": inputs.model_names[inputs.small],
    }
    with store.transaction(db) as con:
        run_id = int(con.execute(
            "INSERT INTO sim_runs (created_at, trace_id, trace_name, trace_hash, catalogue_version, seed, config, "
            "portfolio, inputs, summary, versions, seconds, requests_stored) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "RETURNING run_id",
            [datetime.now(timezone.utc).replace(tzinfo=None), inputs.trace_id, config.trace, inputs.trace_hash,
             inputs.portfolio.catalogue_version, config.seed, json.dumps(clean(record)),
             json.dumps(clean([m.as_dict() for m in inputs.portfolio.models])), json.dumps(clean(input_provenance(inputs))),
             json.dumps(clean(result.summaries)),
             json.dumps({"slmlab": __version__, "numpy": np.__version__, "duckdb": duckdb.__version__}), seconds, keep],
        ).fetchall()[0][0])
        if keep:
            for outcome in result.outcomes.values():
                con.register("policy_requests", _request_table(run_id, inputs, outcome))
                con.execute("INSERT INTO sim_requests SELECT * FROM policy_requests")
                con.unregister("policy_requests")
        if result.points:
            points = pa.Table.from_pylist([{"run_id": run_id, **p} for p in clean(result.points)])  # type: ignore[arg-type]
            points = points.cast(pa.schema([("run_id", pa.int32()), ("policy", pa.string()), ("parameter", pa.string()),
                                            ("value", pa.float64()), ("cost_usd", pa.float64()), ("quality", pa.float64()),
                                            ("frontier_share", pa.float64()), ("p95_ms", pa.float64()), ("pareto", pa.bool_())]))
            con.register("sweep_points", points)
            con.execute("INSERT INTO sim_points SELECT * FROM sweep_points")
            con.unregister("sweep_points")
    return SimRun(run_id=run_id, seconds=seconds, result=result, requests_stored=keep)


def stored_runs(db: str | Path | None = None) -> list[dict[str, object]]:
    """Every stored replay, newest first: id, when, trace, seed, policies, and whether per-request rows exist."""
    with store.connect(db, read_only=True) as con:
        rows = con.execute(
            "SELECT run_id, created_at, trace_name, trace_hash, catalogue_version, seed, seconds, requests_stored, "
            "config FROM sim_runs ORDER BY run_id DESC").fetchall()
    keys = ("run_id", "created_at", "trace", "trace_hash", "catalogue_version", "seed", "seconds", "requests_stored")
    return [{**dict(zip(keys, row[:-1])), "policies": [p["policy"] for p in json.loads(row[-1])["policies"]]}
            for row in rows]


def load_run(run_id: int, db: str | Path | None = None) -> dict[str, object]:
    """A stored run's configuration, portfolio, input provenance and per-policy summary."""
    with store.connect(db, read_only=True) as con:
        row = con.execute("SELECT config, portfolio, inputs, summary, trace_name, seed, created_at, catalogue_version, "
                          "trace_hash FROM sim_runs WHERE run_id = ?", [run_id]).fetchall()
    if not row:
        raise ValueError(f"no stored replay with id {run_id}")
    config, portfolio, inputs, summary, trace, seed, created, catalogue, trace_hash = row[0]
    return {"run_id": run_id, "trace": trace, "seed": seed, "created_at": created, "catalogue_version": catalogue,
            "trace_hash": trace_hash, "config": json.loads(config), "portfolio": json.loads(portfolio),
            "inputs": json.loads(inputs), "policies": json.loads(summary)}


def latest_run_id(trace: str, db: str | Path | None = None) -> int | None:
    """The newest stored replay of a trace, if any."""
    with store.connect(db, read_only=True) as con:
        rows = con.execute("SELECT max(run_id) FROM sim_runs WHERE trace_name = ?", [trace]).fetchall()
    return None if rows[0][0] is None else int(rows[0][0])


def load_points(run_id: int, db: str | Path | None = None) -> pa.Table:
    """The cost-quality points of a run's sweep (empty without one)."""
    with store.connect(db, read_only=True) as con:
        return store.query_arrow(con, f"SELECT * EXCLUDE (run_id) FROM sim_points WHERE run_id = {int(run_id)} "
                                      "ORDER BY policy, value")


def load_requests(run_id: int, db: str | Path | None = None, *, policy: str | None = None,
                  limit: int | None = None) -> pa.Table:
    """A run's per-request results (optionally one policy, first `limit` requests in arrival order)."""
    where = f"run_id = {int(run_id)}" + (f" AND policy = '{policy.replace(chr(39), chr(39) * 2)}'" if policy else "")
    with store.connect(db, read_only=True) as con:
        return store.query_arrow(con, f"SELECT * EXCLUDE (run_id) FROM sim_requests WHERE {where} ORDER BY policy, seq"
                                      + (f" LIMIT {int(limit)}" if limit else ""))


def run_for(trace: str, run_id: int | None = None, *, db: str | Path | None = None,
            progress: Callable[[str], None] | None = None) -> int:
    """The replay a projection or claim check reads: the one named, else the trace's newest, else a new replay of
    every policy with its sweep (so claims can be tested against every setting)."""
    if run_id is not None:
        load_run(run_id, db)  # raises with a clear message when there is no such run
        return run_id
    from simulators.traces.defaults import ensure_default_trace

    ensure_default_trace(trace, db)
    found = latest_run_id(trace, db)
    if found is not None:
        return found

    if progress:
        progress(f"no stored replay of '{trace}' yet: replaying every policy with its sweep first")
    return replay_every_policy(trace, db, progress=progress).run_id


def replay_every_policy(trace: str, db: str | Path | None = None, *, progress: Callable[[str], None] | None = None,
                        steps: Callable[[int, int], None] | None = None) -> SimRun:
    """A new replay of every policy with its sweep on the trace's defaults: what a projection, a claim check or the
    Home page reads when the trace has no stored replay (the sweep lets a claim be tested against every setting)."""
    from simulators.policies.registry import parse_policies
    from simulators.traces.defaults import ensure_default_trace

    ensure_default_trace(trace, db)
    return simulate(ReplayConfig(trace), parse_policies("all"), sweep=True, db=db, progress=progress, steps=steps)


def replay_config_of(run: dict[str, object]) -> "ReplayConfig":
    """The replay configuration a stored run was made with (JSON lists back to tuples)."""
    from simulators.inputs import ReplayConfig

    stored = dict(run["config"]["replay"])  # type: ignore[index]
    known = {f for f in ReplayConfig.__dataclass_fields__}
    return ReplayConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in stored.items() if k in known})
