"""Batched service curves in the warehouse: how fast one model serves B sequences at once on one machine.

`bench/batched.py` measures a curve and saves it here; the batching replay reads the newest uncontended curve
for a model and machine with `load_service_curve`, as plain arrays (it never opens the database itself).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np

from slmlab import store


@dataclass(frozen=True)
class CurvePoint:
    """One measured (or refused) batch size of a curve, as `save_service_curve` stores it."""

    batch: int
    n_ctx: int
    fits: bool
    prefill_tok_s: float | None = None
    decode_tok_s: float | None = None  # aggregate over the B sequences
    itl_s: float | None = None  # per-sequence inter-token latency (mean decode step)
    itl_p95_s: float | None = None
    ttft_s: float | None = None


@dataclass(frozen=True)
class CurveRun:
    """What a whole curve shares: model, machine, configuration, contention verdict."""

    model: str
    machine: str
    n_threads: int
    n_gpu_layers: int
    pp: int
    tg: int
    kv_bytes_per_token: int
    contended: bool
    model_path: str | None = None
    model_sha256: str | None = None
    contention: dict | None = None
    config: dict | None = None
    versions: dict | None = None
    source: str = "measured"  # 'imported': read from another machine's file (`bench.curve_import`)
    wake: tuple[tuple[float, float], ...] = ()  # (idle s, what the first step after it adds, s); empty: not measured


@dataclass(frozen=True, eq=False)
class ServiceCurve:
    """One stored curve as arrays indexed by batch size (ascending); speeds are NaN where B did not fit."""

    curve_id: str
    created_at: datetime
    model: str
    machine: str
    n_threads: int
    n_gpu_layers: int
    pp: int
    tg: int
    kv_bytes_per_token: int
    contended: bool
    batch: np.ndarray  # int64
    n_ctx: np.ndarray  # int64
    fits: np.ndarray  # bool
    prefill_tok_s: np.ndarray  # float64
    decode_tok_s: np.ndarray  # float64, aggregate
    itl_s: np.ndarray  # float64, per sequence
    ttft_s: np.ndarray  # float64
    source: str = "measured"  # or 'imported' from another machine
    wake: tuple[tuple[float, float], ...] = ()  # (idle s, extra s of the first step after it); empty: not measured

    @property
    def max_batch(self) -> int:
        """The largest B that fitted and was measured (0 when none did)."""
        fitted = self.batch[self.fits]
        return int(fitted.max()) if len(fitted) else 0


COLUMNS = (
    "curve_id, created_at, model, machine, n_threads, n_gpu_layers, pp, tg, kv_bytes_per_token, contended, "
    "batch, n_ctx, fits, prefill_tok_s, decode_tok_s, itl_s, ttft_s, source, wake"
)
# a curve measured on some machine (machine None) is one measured here: an imported one only when its machine is named
MEASURED_HERE = "source = 'measured'"


def save_service_curve(
    run: CurveRun, points: list[CurvePoint], *, db: str | Path | None = None, curve_id: str | None = None
) -> str:
    """Store every point of one curve in one transaction; returns its id."""
    import uuid

    curve_id = curve_id or uuid.uuid4().hex[:12]
    with store.transaction(db) as con:
        insert_service_curve(con, run, points, curve_id)
    return curve_id


def insert_service_curve(
    con: duckdb.DuckDBPyConnection,
    run: CurveRun,
    points: list[CurvePoint],
    curve_id: str,
    created: datetime | None = None,
) -> None:
    """Insert one curve inside the caller's transaction (an import stores several all or nothing)."""
    if not points:
        raise ValueError("a service curve needs at least one batch size")
    created = created or datetime.now(UTC).replace(tzinfo=None)
    rows = [
        (
            curve_id,
            created,
            run.model,
            run.model_path,
            run.model_sha256,
            run.machine,
            run.n_threads,
            run.n_gpu_layers,
            p.n_ctx,
            run.pp,
            run.tg,
            p.batch,
            p.prefill_tok_s,
            p.decode_tok_s,
            p.itl_s,
            p.itl_p95_s,
            p.ttft_s,
            run.kv_bytes_per_token,
            p.fits,
            run.contended,
            json.dumps(run.contention) if run.contention is not None else None,
            json.dumps(run.config or {}),
            json.dumps(run.versions or {}),
            run.source,
            json.dumps([list(w) for w in run.wake]) if run.wake else None,
        )
        for p in points
    ]
    con.executemany(
        "INSERT INTO service_curves (curve_id, created_at, model, model_path, model_sha256, machine, "
        "n_threads, n_gpu_layers, n_ctx, pp, tg, batch, prefill_tok_s, decode_tok_s, itl_s, itl_p95_s, "
        "ttft_s, kv_bytes_per_token, fits, contended, contention, config, versions, source, wake) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )


def _curve(rows: list[tuple]) -> ServiceCurve:
    """Rows of one curve (ordered by batch) as a ServiceCurve."""
    first = rows[0]

    def column(index: int, dtype) -> np.ndarray:
        values = [row[index] for row in rows]
        if dtype is np.float64:
            return np.array([np.nan if v is None else v for v in values], dtype=np.float64)
        return np.array(values, dtype=dtype)

    return ServiceCurve(
        curve_id=first[0],
        created_at=first[1],
        model=first[2],
        machine=first[3],
        n_threads=int(first[4]),
        n_gpu_layers=int(first[5]),
        pp=int(first[6]),
        tg=int(first[7]),
        kv_bytes_per_token=int(first[8]),
        contended=bool(first[9]),
        batch=column(10, np.int64),
        n_ctx=column(11, np.int64),
        fits=column(12, bool),
        prefill_tok_s=column(13, np.float64),
        decode_tok_s=column(14, np.float64),
        itl_s=column(15, np.float64),
        ttft_s=column(16, np.float64),
        source=str(first[17] or "measured"),
        wake=tuple((float(idle), float(extra)) for idle, extra in json.loads(first[18] or "[]")),
    )


def newest_service_curve(
    rows: Callable[[str, Sequence[object]], list[tuple]],
    model: str,
    machine: str | None = None,
    *,
    curve_id: str | None = None,
    include_contended: bool = False,
) -> ServiceCurve | None:
    """The newest uncontended curve for a model (on one machine when given, else one measured here: a curve imported
    from another machine is only read under its machine's name), or a named curve; None when absent. `rows` runs a
    query on whichever connection the caller holds, so the CLI and the replay's reader pick the same curve.

    A contended curve is returned only when asked for by id or with `include_contended`: a busy machine's
    figures are not the model's speed.
    """
    where, params = ["model = ?"], [model]
    if machine is not None:
        where.append("machine = ?")
        params.append(machine)
    else:
        where.append(MEASURED_HERE)
    if curve_id is not None:
        where, params = ["curve_id = ?"], [curve_id]
    elif not include_contended:
        where.append("NOT contended")
    newest = rows(
        f"SELECT curve_id FROM service_curves WHERE {' AND '.join(where)} "
        "ORDER BY created_at DESC, curve_id DESC LIMIT 1",
        params,
    )
    if not newest:
        return None
    return _curve(rows(f"SELECT {COLUMNS} FROM service_curves WHERE curve_id = ? ORDER BY batch", [newest[0][0]]))


def load_service_curve(
    model: str,
    machine: str | None = None,
    *,
    db: str | Path | None = None,
    curve_id: str | None = None,
    include_contended: bool = False,
) -> ServiceCurve | None:
    """`newest_service_curve` read from the warehouse file (the CLI and pages)."""
    with store.connect(db, read_only=True) as con:
        return newest_service_curve(
            lambda sql, params: con.execute(sql, list(params)).fetchall(),
            model,
            machine,
            curve_id=curve_id,
            include_contended=include_contended,
        )


def list_service_curves(*, db: str | Path | None = None) -> list[dict[str, object]]:
    """One line per stored curve, newest first: id, model, machine, configuration, B range, contention."""
    with store.connect(db, read_only=True) as con:
        rows = con.execute(
            "SELECT curve_id, max(created_at), any_value(model), any_value(machine), any_value(n_threads), "
            "any_value(n_gpu_layers), any_value(pp), any_value(tg), list(batch ORDER BY batch), "
            "max(batch) FILTER (WHERE fits), bool_or(contended), any_value(source) FROM service_curves "
            "GROUP BY curve_id ORDER BY 2 DESC"
        ).fetchall()
    keys = (
        "curve_id",
        "created_at",
        "model",
        "machine",
        "n_threads",
        "n_gpu_layers",
        "pp",
        "tg",
        "batches",
        "max_batch",
        "contended",
        "source",
    )
    return [dict(zip(keys, row)) for row in rows]
