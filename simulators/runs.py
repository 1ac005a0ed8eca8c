"""A finished routing replay in the form it is kept: its full configuration, seed, trace hash, catalogue version
and per-request rows, so the same inputs reproduce it (the warehouse stores it: `slmlab.replay_store`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pyarrow as pa

from simulators.inputs import CONFIDENCE_SOURCES, COST_SOURCES, LATENCY_SOURCES, ReplayConfig, ReplayInputs
from simulators.metrics import counts_by_name
from simulators.policies.base import Policy
from simulators.quality import SOURCES
from simulators.results import JsonRecord
from slmlab import __version__
from slmlab.traces.labelling import DATA_CLASSES, TASKS

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
        document = clean(
            {
                "run_id": self.run_id,
                "trace": inputs.config.trace,
                "trace_hash": inputs.trace_hash,
                "catalogue_version": inputs.portfolio.catalogue_version,
                "seed": inputs.config.seed,
                "seconds": self.seconds,
                "requests": inputs.n,
                "baseline": "frontier-only",
                "frontier_model": inputs.model_names[inputs.frontier],
                "small_model": inputs.model_names[inputs.small],
                "inputs": input_provenance(inputs),
                "policies": self.result.summaries,
                "points": self.result.points,
            }
        )
        return cast(dict[str, object], document)  # clean() keeps a dict a dict


def clean(value: object) -> object:
    """JSON-safe: NaN and infinities become null, numpy scalars plain numbers, tuples lists, typed results
    (anything with `as_dict`, such as a `PolicySummary`) their stored layout."""
    as_dict = getattr(value, "as_dict", None)
    if callable(as_dict) and not isinstance(value, type):
        value = as_dict()
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
    confidence = {
        name: counts_by_name(inputs.confidence_source[:, j], CONFIDENCE_SOURCES)
        for j, name in enumerate(names)
        if inputs.is_local[j] or j == inputs.small
    }
    cost = {name: counts_by_name(inputs.cost_source[:, j], COST_SOURCES) for j, name in enumerate(names)}
    latency = (  # only where some latency was recorded (API models), so other runs keep their stored layout
        {}
        if inputs.recorded_latency is None
        else {
            name: counts_by_name(inputs.latency_source[:, j], LATENCY_SOURCES)
            for j, name in enumerate(names)
            if not inputs.is_local[j]
        }
    )
    return {
        "roles": dict(inputs.roles),
        "quality_source": quality,
        "cost_source": cost,
        "confidence_source": confidence,
        **({"latency_source": latency} if latency else {}),
        "token_source": inputs.token_sources,
        "arrivals": "recorded"
        if inputs.has_arrivals
        else "none recorded: no queueing, every request served on arrival",
        "span_s": float(inputs.arrival_s[-1] - inputs.arrival_s[0]) if inputs.has_arrivals and inputs.n > 1 else None,
        "speed": inputs.config.speed,
        "volume": inputs.config.volume,
        "servers_per_local_model": inputs.config.servers,
        "local_serving": {  # how local models were served (each policy's fleet is in its summary)
            model: {
                "profile": d.profile.name,
                "slots": d.slots,
                "fleet": f"sized to {d.slo}" if d.servers is None else f"{d.servers} fixed",
                "curve": d.curve.source,
                "priced_as": d.profile.as_dict(),  # the profile's figures then: a projection prices the fleet so
            }
            for model, d in inputs.deployments.items()
        },
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
    vocabulary_task, vocabulary_class = (
        np.array([*TASKS, None], dtype=object),
        np.array([*DATA_CLASSES, None], dtype=object),
    )
    return pa.table(
        {
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
        }
    )


def stored_form(
    config: ReplayConfig, policies: list[Policy], sweep: bool, result: ReplayResult, seconds: float, keep_requests: bool
) -> dict[str, object]:
    """A finished replay as JSON-ready documents, in the fields the warehouse's `RunRecord` stores."""
    inputs = result.inputs
    record = {
        "replay": config.as_dict(),
        "policies": [p.describe() for p in policies],
        "sweep": sweep,
        "frontier_model": inputs.model_names[inputs.frontier],
        "small_model": inputs.model_names[inputs.small],
    }
    return {
        "trace_id": inputs.trace_id,
        "trace_name": config.trace,
        "trace_hash": inputs.trace_hash,
        "catalogue_version": inputs.portfolio.catalogue_version,
        "seed": config.seed,
        "config": clean(record),
        "portfolio": clean([m.as_dict() for m in inputs.portfolio.models]),
        "inputs": clean(input_provenance(inputs)),
        "summary": clean(result.summaries),
        "versions": {"slmlab": __version__, "numpy": np.__version__},
        "seconds": seconds,
        "requests_stored": keep_requests,
    }


def request_tables(result: ReplayResult) -> list[pa.Table]:
    """Every policy's per-request rows (run id -1 until the warehouse numbers the run)."""
    return [_request_table(-1, result.inputs, outcome) for outcome in result.outcomes.values()]


def replay_config_of(run: JsonRecord) -> ReplayConfig:
    """The replay configuration a stored run was made with (JSON lists back to tuples)."""
    from simulators.inputs import ReplayConfig

    stored = dict(run["config"]["replay"])
    known = set(ReplayConfig.__dataclass_fields__)
    # written by ReplayConfig.as_dict, so each known key holds its field's value (JSON lists back to tuples)
    values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in stored.items() if k in known}
    return ReplayConfig(**values)
