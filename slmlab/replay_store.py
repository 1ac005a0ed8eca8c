"""What replays read from the warehouse and what they leave in it: the one place their SQL lives.

A replay's inputs are read through one `ReplayReader` on one read-only connection and handed to the replay
layer (`simulators/`), which opens no database; a finished run comes back here to be stored in one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from slmlab import store
from slmlab.paths import resolve_db_path
from slmlab.service_curves import ServiceCurve, newest_service_curve


class NotStored(ValueError):
    """A trace, run or scenario that the database does not hold; the message lists what it does hold."""


@dataclass(frozen=True)
class TraceRow:
    """The stored facts of a trace that a replay records beside its results."""

    trace_id: int
    name: str
    content_hash: str
    kind: str


@dataclass(frozen=True)
class BenchRow:
    """One stored benchmark run, as the portfolio reads it (summary and census are parsed JSON)."""

    run_id: int
    source: str
    model_name: str
    summary: dict
    census: dict
    peak_rss_bytes: int | None
    selection: str = ""  # why this run was chosen (portfolio: best of the newest uncontended sweep)


_REQUESTS = """
WITH answers AS (SELECT request_id, ceil(avg(length(response)) / $chars) AS tokens FROM outcomes
                 WHERE trace_id = $trace AND response IS NOT NULL GROUP BY ALL)
SELECT r.request_id, r.arrival_s, r.task, r.data_class, r.residency, r.latency_slo_ms, r.category,
       coalesce(r.input_tokens, ceil(length(r.prompt) / $chars), $input) AS input_tokens,
       CASE WHEN r.input_tokens IS NOT NULL THEN 0 WHEN r.prompt IS NOT NULL THEN 1 ELSE 2 END AS input_source,
       coalesce(r.output_tokens, a.tokens, $output) AS output_tokens,
       CASE WHEN r.output_tokens IS NOT NULL THEN 0 WHEN a.tokens IS NOT NULL THEN 1 ELSE 2 END AS output_source
FROM requests r LEFT JOIN answers a USING (request_id) WHERE r.trace_id = $trace ORDER BY r.seq
"""

# Of several evaluations of one model on one task set, the one with the highest accuracy (then the larger, then the
# newer): the variant one would deploy. Quality and the measured confidences both read these runs.
_CHOSEN_EVAL_RUNS = """
run_accuracy AS (
    SELECT e.run_id, e.model_name, e.task, e.updated_at, avg(CAST(o.correct AS DOUBLE)) AS accuracy, count(*) AS n
    FROM eval_runs e JOIN outcomes o ON o.eval_run_id = e.run_id
    WHERE e.source = 'measured' AND o.correct IS NOT NULL GROUP BY ALL),
chosen_runs AS (
    SELECT run_id FROM run_accuracy
    QUALIFY row_number() OVER (PARTITION BY model_name, task ORDER BY accuracy DESC, n DESC, updated_at DESC) = 1)"""

_QUALITY = (
    """
WITH req AS (SELECT request_id, seq, task FROM requests WHERE trace_id = $trace),
m AS (SELECT * FROM (VALUES $models) AS t(model, position)),
recorded AS (
    SELECT request_id, model, avg(coalesce(score, CAST(correct AS DOUBLE))) AS p
    FROM outcomes WHERE trace_id = $trace AND source = 'recorded' GROUP BY ALL),"""
    + _CHOSEN_EVAL_RUNS
    + """,
measured AS (
    SELECT request_id, model, avg(CAST(correct AS DOUBLE)) AS p, avg(confidence) AS c
    FROM outcomes WHERE trace_id = $trace AND eval_run_id IN (SELECT run_id FROM chosen_runs) GROUP BY ALL),
task_accuracy AS (
    SELECT r.task, o.model, avg(CAST(o.correct AS DOUBLE)) AS p
    FROM outcomes o JOIN requests r ON r.trace_id = o.trace_id AND r.request_id = o.request_id
    WHERE o.eval_run_id IN (SELECT run_id FROM chosen_runs) GROUP BY ALL),
assumed AS (
    SELECT request_id, model, avg(score) AS p FROM outcomes
    WHERE trace_id = $trace AND source = 'assumption' GROUP BY ALL)
SELECT req.request_id, req.task, m.model,
       coalesce(rec.p, mea.p, ta.p, ass.p) AS p,
       mea.c AS c,
       CASE WHEN rec.p IS NOT NULL THEN 0 WHEN mea.p IS NOT NULL THEN 1 WHEN ta.p IS NOT NULL THEN 2
            WHEN ass.p IS NOT NULL THEN 3 END AS src
FROM req CROSS JOIN m
LEFT JOIN recorded rec ON rec.request_id = req.request_id AND rec.model = m.model
LEFT JOIN measured mea ON mea.request_id = req.request_id AND mea.model = m.model
LEFT JOIN task_accuracy ta ON ta.task = req.task AND ta.model = m.model
LEFT JOIN assumed ass ON ass.request_id = req.request_id AND ass.model = m.model
ORDER BY req.seq, m.position
"""
)

_CONFIDENCES = (
    "WITH"
    + _CHOSEN_EVAL_RUNS
    + """
SELECT o.model, r.task, o.correct, list(o.confidence ORDER BY o.confidence) AS confidences
FROM outcomes o JOIN requests r ON r.trace_id = o.trace_id AND r.request_id = o.request_id
WHERE o.eval_run_id IN (SELECT run_id FROM chosen_runs) AND o.confidence IS NOT NULL AND o.correct IS NOT NULL
GROUP BY ALL
"""
)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class ReplayReader:
    """Reads a replay's inputs on one read-only connection (None: no database file yet, so nothing is stored)."""

    def __init__(self, con: duckdb.DuckDBPyConnection | None) -> None:
        self._con = con

    def _rows(self, sql: str, params: Sequence[object] = ()) -> list[tuple]:
        return [] if self._con is None else self._con.execute(sql, list(params)).fetchall()

    def _arrow(self, sql: str) -> pa.Table:
        if self._con is None:
            raise NotStored("no database yet: import a trace first (`slmlab defaults` imports the embedded ones)")
        return store.query_arrow(self._con, sql)

    def trace(self, name: str) -> TraceRow:
        """The named trace; NotStored lists the stored names."""
        found = self._rows("SELECT trace_id, content_hash, kind FROM traces WHERE name = ?", [name])
        if not found:
            names = [r[0] for r in self._rows("SELECT name FROM traces ORDER BY trace_id")]
            raise NotStored(
                f"no trace named '{name}'; stored traces: {', '.join(names) or 'none'} "
                "(`slmlab defaults` imports the embedded ones)"
            )
        return TraceRow(int(found[0][0]), name, str(found[0][1]), str(found[0][2]))

    def recorded_models(self, trace_id: int) -> tuple[str, ...]:
        """The models an imported outcome file recorded answers for."""
        return tuple(
            r[0]
            for r in self._rows(
                "SELECT DISTINCT model FROM outcomes WHERE trace_id = ? AND source = 'recorded' ORDER BY model",
                [trace_id],
            )
        )

    def recorded_figures(self, trace_id: int) -> list[tuple[str, str, float | None, float | None, float | None]]:
        """(request, model, cost USD, latency ms, confidence) an imported outcome file recorded, where it recorded
        any of the three: these win over catalogue prices and assumed confidences in a replay."""
        return self._rows(
            "SELECT request_id, model, avg(cost_usd), avg(latency_ms), avg(confidence) FROM outcomes "
            "WHERE trace_id = ? AND source = 'recorded' "
            "AND (cost_usd IS NOT NULL OR latency_ms IS NOT NULL OR confidence IS NOT NULL) GROUP BY ALL",
            [trace_id],
        )

    def recorded_latencies(self, trace_id: int) -> pa.Table:
        """(request_id, model as logged, latency_ms end to end) of each call a gateway or observability log recorded
        a latency for, failed calls left out (as the latency check leaves them out): these win over the catalogue's
        assumed API latency in a replay. Arrow, as a log may hold millions of calls."""
        if self._con is None:
            return pa.table(
                {
                    "request_id": pa.array([], pa.string()),
                    "model": pa.array([], pa.string()),
                    "latency_ms": pa.array([], pa.float64()),
                }
            )
        return self._arrow(
            "SELECT request_id, model, avg(latency_ms) AS latency_ms FROM recorded_calls "
            f"WHERE trace_id = {int(trace_id)} AND model IS NOT NULL AND latency_ms IS NOT NULL "
            "AND status IS DISTINCT FROM 'failure' GROUP BY ALL"
        )

    def requests(self, trace_id: int, *, chars_per_token: float, input_tokens: int, output_tokens: int) -> pa.Table:
        """The trace's requests in arrival order, token counts filled from text length or the given assumptions,
        with a code per side saying which (0 recorded, 1 from text, 2 assumption)."""
        sql = (
            _REQUESTS.replace("$trace", str(int(trace_id)))
            .replace("$chars", repr(float(chars_per_token)))
            .replace("$input", str(int(input_tokens)))
            .replace("$output", str(int(output_tokens)))
        )
        return self._arrow(sql)

    def quality(self, trace_id: int, models: list[str]) -> pa.Table:
        """Per (request, model) in arrival order: P(correct), measured confidence and the source code of each."""
        sql = _QUALITY.replace("$trace", str(int(trace_id))).replace(
            "$models", ", ".join(f"({_quote(m)}, {i})" for i, m in enumerate(models))
        )
        return self._arrow(sql)

    def confidences(self) -> list[tuple[str, str, bool, list[float]]]:
        """Measured confidences per (model, enterprise task, answer right?) of the evaluations quality uses."""
        return [(m, t, bool(c), list(v)) for m, t, c, v in self._rows(_CONFIDENCES)]

    def latest_bench(self, model_name: str) -> BenchRow | None:
        """The best decode of the newest uncontended sweep of a model measured here (a lone run is a sweep of one).

        A run marked contended is never chosen here: its speed is the machine's load (pick it by id with
        `--profile MODEL=RUN` if it is wanted). Runs stored before contention was sampled count as uncontended.
        """
        rows = self._rows(_BEST_OF_NEWEST_SWEEP, [model_name])
        if not rows:
            return None
        *fields, sweep_id, config = rows[0]
        threads = json.loads(config or "{}").get("threads")
        why = (
            f"best decode of the newest uncontended sweep {sweep_id} (threads={threads})"
            if sweep_id
            else f"newest uncontended run (threads={threads})"
        )
        row = _bench_row(tuple(fields))
        return BenchRow(row.run_id, row.source, row.model_name, row.summary, row.census, row.peak_rss_bytes, why)

    def service_curve(self, model: str, machine: str | None = None) -> ServiceCurve | None:
        """The newest uncontended batched service curve of a model, chosen as `slmlab bench` chooses it."""
        return newest_service_curve(self._rows, model, machine)

    def hardware_profiles(self) -> dict[str, dict]:
        """The user's hardware profiles (`slmlab profiles add`), by name, as serving_profiles.json entries."""
        rows = self._rows("SELECT name, profile FROM hardware_profiles ORDER BY name")
        return {name: json.loads(profile) for name, profile in rows}

    def has_measured_runs(self) -> bool:
        """Whether any benchmark ran on this machine (reading GGUF names is only worth it then)."""
        return (
            bool(self._rows("SELECT count(*) FROM bench_runs WHERE source = 'measured'")[0][0]) if self._con else False
        )

    def bench_run(self, run_id: int) -> BenchRow:
        """A chosen benchmark run, measured here or imported; NotStored names the id."""
        rows = self._rows(
            "SELECT run_id, source, model_name, summary, census, peak_rss_bytes FROM bench_runs WHERE run_id = ?",
            [run_id],
        )
        if not rows:
            raise NotStored(f"no benchmark run {run_id} (see `slmlab bench compare`)")
        return _bench_row(rows[0])

    def run_costs(self, run_id: int) -> pa.Table:
        """A stored run's per-request cost with each request's arrival, per policy in arrival order (bootstrap)."""
        return self._arrow(
            f"""
            SELECT s.policy, r.arrival_s, s.cost_usd FROM sim_requests s
            JOIN sim_runs u ON u.run_id = s.run_id
            JOIN requests r ON r.trace_id = u.trace_id AND r.request_id = s.request_id
            WHERE s.run_id = {int(run_id)} ORDER BY s.policy, s.seq"""
        )


_BEST_OF_NEWEST_SWEEP = """
WITH ok AS (
    SELECT run_id, source, model_name, summary, census, peak_rss_bytes, sweep_id, config, started_at,
           CAST(json_extract(summary, '$.decode_tok_s.mean') AS DOUBLE) AS decode
    FROM bench_runs
    WHERE model_name = ? AND source = 'measured' AND NOT coalesce(contended, false)
      AND json_extract(summary, '$.decode_tok_s.mean') IS NOT NULL
), newest AS (SELECT run_id, sweep_id FROM ok ORDER BY started_at DESC, run_id DESC LIMIT 1)
SELECT ok.run_id, source, model_name, summary, census, peak_rss_bytes, ok.sweep_id, config FROM ok, newest
WHERE (newest.sweep_id IS NULL AND ok.run_id = newest.run_id) OR ok.sweep_id = newest.sweep_id
ORDER BY decode DESC, ok.run_id DESC LIMIT 1
"""


def _bench_row(row: tuple) -> BenchRow:
    run_id, source, model_name, summary, census, rss = row
    return BenchRow(
        int(run_id),
        str(source),
        str(model_name),
        json.loads(summary or "{}"),
        json.loads(census or "{}"),
        None if rss is None else int(rss),
    )


@contextmanager
def reader(db: str | Path | None = None) -> Iterator[ReplayReader]:
    """One read-only connection for everything a replay reads (no connection where no database exists yet)."""
    if not resolve_db_path(db).exists():
        yield ReplayReader(None)
        return
    with store.connect(db, read_only=True) as con:
        yield ReplayReader(con)


# --- runs ---------------------------------------------------------------------------------------------------------

_POINT_SCHEMA = pa.schema(
    [
        ("run_id", pa.int32()),
        ("policy", pa.string()),
        ("parameter", pa.string()),
        ("value", pa.float64()),
        ("cost_usd", pa.float64()),
        ("quality", pa.float64()),
        ("frontier_share", pa.float64()),
        ("p95_ms", pa.float64()),
        ("pareto", pa.bool_()),
    ]
)


@dataclass(frozen=True)
class RunRecord:
    """A finished replay as the warehouse stores it: identifying facts plus JSON-ready documents."""

    trace_id: int
    trace_name: str
    trace_hash: str
    catalogue_version: str
    seed: int
    config: dict
    portfolio: list
    inputs: dict
    summary: object
    versions: dict
    seconds: float
    requests_stored: bool


def save_run(
    record: RunRecord,
    request_tables: Iterable[pa.Table] = (),
    points: list[dict] | None = None,
    *,
    db: str | Path | None = None,
) -> int:
    """Store a run, its per-request rows (each table built for run id -1, renumbered here) and sweep points in one
    transaction; returns the new run id."""
    with store.transaction(db) as con:
        run_id = int(
            con.execute(
                "INSERT INTO sim_runs (created_at, trace_id, trace_name, trace_hash, catalogue_version, seed, config, "
                "portfolio, inputs, summary, versions, seconds, requests_stored) VALUES (?, ?, ?, ?, ?, ?, ?, ?, "
                "?, ?, ?, ?, ?) "
                "RETURNING run_id",
                [
                    datetime.now(UTC).replace(tzinfo=None),
                    record.trace_id,
                    record.trace_name,
                    record.trace_hash,
                    record.catalogue_version,
                    record.seed,
                    json.dumps(record.config),
                    json.dumps(record.portfolio),
                    json.dumps(record.inputs),
                    json.dumps(record.summary),
                    json.dumps({**record.versions, "duckdb": duckdb.__version__}),
                    record.seconds,
                    record.requests_stored,
                ],
            ).fetchall()[0][0]
        )
        for table in request_tables:
            table = table.set_column(0, "run_id", pa.array([run_id] * table.num_rows, type=pa.int32()))
            con.register("policy_requests", table)
            con.execute("INSERT INTO sim_requests SELECT * FROM policy_requests")
            con.unregister("policy_requests")
        if points:
            con.register(
                "sweep_points", pa.Table.from_pylist([{"run_id": run_id, **p} for p in points]).cast(_POINT_SCHEMA)
            )
            con.execute("INSERT INTO sim_points SELECT * FROM sweep_points")
            con.unregister("sweep_points")
    return run_id


def stored_runs(db: str | Path | None = None) -> list[dict[str, object]]:
    """Every stored replay, newest first: id, when, trace, seed, policies, and whether per-request rows exist."""
    with store.connect(db, read_only=True) as con:
        rows = con.execute(
            "SELECT run_id, created_at, trace_name, trace_hash, catalogue_version, seed, seconds, requests_stored, "
            "config FROM sim_runs ORDER BY run_id DESC"
        ).fetchall()
    keys = ("run_id", "created_at", "trace", "trace_hash", "catalogue_version", "seed", "seconds", "requests_stored")
    return [
        {**dict(zip(keys, row[:-1])), "policies": [p["policy"] for p in json.loads(row[-1])["policies"]]}
        for row in rows
    ]


def load_run(run_id: int, db: str | Path | None = None) -> dict[str, object]:
    """A stored run's configuration, portfolio, input provenance and per-policy summary."""
    with store.connect(db, read_only=True) as con:
        row = con.execute(
            "SELECT config, portfolio, inputs, summary, trace_name, seed, created_at, catalogue_version, "
            "trace_hash FROM sim_runs WHERE run_id = ?",
            [run_id],
        ).fetchall()
    if not row:
        raise NotStored(f"no stored replay with id {run_id}")
    config, portfolio, inputs, summary, trace, seed, created, catalogue, trace_hash = row[0]
    return {
        "run_id": run_id,
        "trace": trace,
        "seed": seed,
        "created_at": created,
        "catalogue_version": catalogue,
        "trace_hash": trace_hash,
        "config": json.loads(config),
        "portfolio": json.loads(portfolio),
        "inputs": json.loads(inputs),
        "policies": json.loads(summary),
    }


def latest_run_id(trace: str, db: str | Path | None = None) -> int | None:
    """The newest stored replay of a trace, if any."""
    with store.connect(db, read_only=True) as con:
        rows = con.execute("SELECT max(run_id) FROM sim_runs WHERE trace_name = ?", [trace]).fetchall()
    return None if rows[0][0] is None else int(rows[0][0])


def load_points(run_id: int, db: str | Path | None = None) -> pa.Table:
    """The cost-quality points of a run's sweep (empty without one)."""
    with store.connect(db, read_only=True) as con:
        return store.query_arrow(
            con, f"SELECT * EXCLUDE (run_id) FROM sim_points WHERE run_id = {int(run_id)} ORDER BY policy, value"
        )


def load_requests(
    run_id: int, db: str | Path | None = None, *, policy: str | None = None, limit: int | None = None
) -> pa.Table:
    """A run's per-request results (optionally one policy, first `limit` requests in arrival order)."""
    where = f"run_id = {int(run_id)}" + (f" AND policy = {_quote(policy)}" if policy else "")
    with store.connect(db, read_only=True) as con:
        return store.query_arrow(
            con,
            f"SELECT * EXCLUDE (run_id) FROM sim_requests WHERE {where} ORDER BY policy, seq"
            + (f" LIMIT {int(limit)}" if limit else ""),
        )


# --- scenarios ----------------------------------------------------------------------------------------------------


def save_scenario(name: str, run_id: int, assumptions: dict, result: dict, *, db: str | Path | None = None) -> None:
    """Store (or replace) a projection under a name, with the run it scales and its assumptions."""
    if not name.strip():
        raise ValueError("a scenario needs a name")
    with store.transaction(db) as con:
        con.execute("DELETE FROM scenarios WHERE name = ?", [name])
        con.execute(
            "INSERT INTO scenarios VALUES (?, ?, ?, ?, ?)",
            [
                name,
                datetime.now(UTC).replace(tzinfo=None),
                run_id,
                json.dumps(assumptions),
                json.dumps(result, default=str),
            ],
        )


def list_scenarios(db: str | Path | None = None) -> list[dict[str, object]]:
    """Every saved scenario, newest first: name, when, the run it scales, its horizon."""
    with store.connect(db, read_only=True) as con:
        rows = con.execute(
            "SELECT name, saved_at, run_id, assumptions FROM scenarios ORDER BY saved_at DESC"
        ).fetchall()
    return [{"name": n, "saved_at": t, "run_id": r, "months": json.loads(a)["months"]} for n, t, r, a in rows]


def load_scenario(name: str, db: str | Path | None = None) -> dict[str, object]:
    """A saved scenario's result (as `Projection.as_dict`); the error lists the saved names."""
    with store.connect(db, read_only=True) as con:
        rows = con.execute("SELECT result FROM scenarios WHERE name = ?", [name]).fetchall()
        names = [r[0] for r in con.execute("SELECT name FROM scenarios ORDER BY name").fetchall()]
    if not rows:
        raise NotStored(f"no scenario named '{name}'; saved: {', '.join(names) or 'none'}")
    return json.loads(rows[0][0])
