"""Batched service curves from other machines, so a hardware profile can describe a machine slmlab did not run on.

Two sources, both stored as `source = 'imported'` under the machine name given on import (this machine's replay
never reads them unless a profile names that machine):
* llama-batched-bench's JSON Lines (`--output-format jsonl`): per (PP, TG, B) the prompt time `t_pp` with
  `speed_pp` = B x PP / t_pp (prompts not shared) and the generation time `t_tg` with `speed_tg` = B x TG / t_tg
  (aggregate). One curve per (PP, TG); a B run more than once (`-npl 1,1,1,4`) is averaged. The file names
  neither the model nor the machine, so both are given on import; contention was not sampled there, and the
  stored contention record says so.
* the curves of an slmlab benchmark export (`slmlab bench export` on the other machine, `bench.exchange`).

Imports are all or nothing and idempotent: a curve's id is a hash of its machine, model and figures.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import datetime
from pathlib import Path
from typing import Any, TypeGuard

import duckdb

from simulators.deployment import wake_is_valid
from slmlab import store
from slmlab.service_curves import CurvePoint, CurveRun, insert_service_curve

BATCHED_BENCH_FIELDS = ("pp", "tg", "pl", "t_pp", "speed_pp", "t_tg", "speed_tg", "n_kv_max", "n_threads")
MACHINE_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


def check_machine(machine: str) -> str:
    """A machine name a profile can refer to: letters, digits, - _ . (it is shown and typed on the command line)."""
    name = (machine or "").strip()
    if not name or not set(name) <= MACHINE_CHARS or len(name) > 64:
        raise ValueError(f"machine name '{machine}': use 1-64 letters, digits, '-', '_' or '.' (e.g. h200-server)")
    return name


def is_batched_bench(records: object) -> bool:
    """Whether parsed JSON looks like llama-batched-bench's JSON Lines (one object per batch size)."""
    return isinstance(records, list) and bool(records) and all(isinstance(r, dict) and "pl" in r for r in records)


def is_number(value: object) -> TypeGuard[int | float]:
    """A finite int or float, never a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _number(record: dict, key: str, where: str, *, whole: bool = False, positive: bool = True) -> float:
    value = record.get(key)
    if not is_number(value):
        raise ValueError(f"{where}: field '{key}' must be a number, found {value!r}")
    if whole and value != int(value):
        raise ValueError(f"{where}: field '{key}' must be a whole number, found {value!r}")
    if positive and value <= 0:
        raise ValueError(f"{where}: field '{key}' must be above 0, found {value!r}")
    return float(value)


Imported = tuple[str, CurveRun, list[CurvePoint], datetime | None]  # id, run, points, when measured (None: now)


def batched_bench_curves(
    records: list[Any], path: str | Path, *, model: str, machine: str, kv_bytes_per_token: int
) -> list[Imported]:
    """llama-batched-bench records as (curve id, run, points), one curve per (PP, TG); errors name the line."""
    groups: dict[tuple[int, int], dict[int, list[dict]]] = {}
    shared: dict[str, Any] = {}
    for index, record in enumerate(records):
        where = f"{path}: line {index + 1}"
        if not isinstance(record, dict):
            raise ValueError(f"{where}: expected a JSON object, found {type(record).__name__}")
        missing = [k for k in BATCHED_BENCH_FIELDS if k not in record]
        if missing:
            raise ValueError(f"{where}: not llama-batched-bench --output-format jsonl (missing {', '.join(missing)})")
        if record.get("is_pp_shared"):
            raise ValueError(
                f"{where}: the prompt is shared by the whole batch (-pps), so its prompt speed is not that of "
                "independent requests; rerun without -pps"
            )
        pp, tg, pl = (int(_number(record, k, where, whole=True)) for k in ("pp", "tg", "pl"))
        for key in ("t_pp", "speed_pp", "t_tg", "speed_tg", "n_kv_max", "n_threads"):
            _number(record, key, where, whole=key in ("n_kv_max", "n_threads"))
        groups.setdefault((pp, tg), {}).setdefault(pl, []).append(record)
        for key in ("n_batch", "n_ubatch", "flash_attn", "n_gpu_layers", "n_threads", "n_threads_batch", "n_kv_max"):
            if key in record:
                shared.setdefault(key, record[key])
    if not groups:
        raise ValueError(f"{path}: holds no llama-batched-bench lines")
    curves: list[Imported] = []
    for (pp, tg), by_batch in sorted(groups.items()):
        if 1 not in by_batch:
            raise ValueError(f"{path}: PP {pp}, TG {tg} has no B = 1 line (-npl must include 1)")
        points = []
        for batch, runs in sorted(by_batch.items()):

            def mean(key: str, runs: list[dict] = runs) -> float:
                return sum(float(r[key]) for r in runs) / len(runs)

            points.append(
                CurvePoint(
                    batch=batch,
                    n_ctx=int(max(r.get("n_kv", batch * (pp + tg)) for r in runs)),
                    fits=True,
                    prefill_tok_s=mean("speed_pp"),
                    decode_tok_s=mean("speed_tg"),
                    itl_s=mean("t_tg") / tg,
                    ttft_s=mean("t_pp"),
                )
            )
        config = {
            "source": "llama-batched-bench --output-format jsonl",
            "file": Path(path).name,
            **shared,
            "reps_per_batch": {str(b): len(r) for b, r in sorted(by_batch.items())},
        }
        run = CurveRun(
            model=model,
            machine=machine,
            n_threads=int(shared.get("n_threads", 0)),
            n_gpu_layers=int(shared.get("n_gpu_layers", 0)),
            pp=pp,
            tg=tg,
            kv_bytes_per_token=kv_bytes_per_token,
            contended=False,
            contention={"sampled": False, "note": "imported from llama-batched-bench: contention was not sampled"},
            config=config,
            versions={},
            source="imported",
        )
        curves.append((_curve_id(run, points), run, points, None))
    return curves


def _curve_id(run: CurveRun, points: list[CurvePoint]) -> str:
    """The same curve imported twice gets the same id (and is skipped the second time)."""
    text = json.dumps([run.machine, run.model, run.pp, run.tg, [list(p.__dict__.values()) for p in points]])
    return "imp-" + hashlib.sha256(text.encode()).hexdigest()[:12]


def store_curves(con: duckdb.DuckDBPyConnection, curves: list[Imported]) -> list[str]:
    """Insert the curves not stored yet inside the caller's transaction; returns the new ids."""
    new = []
    for curve_id, run, points, created in curves:
        if con.execute("SELECT count(*) FROM service_curves WHERE curve_id = ?", [curve_id]).fetchall()[0][0]:
            continue
        insert_service_curve(con, run, points, curve_id, created)
        new.append(curve_id)
    return new


def import_batched_bench(
    db: str | Path | None, path: str | Path, records: list[Any], *, model: str, machine: str
) -> list[str]:
    """Store llama-batched-bench output as the named model's curves on the named machine; returns the new ids."""
    from bench.batched import canonical_model_name, model_kv_bytes_per_cell
    from slmlab.models import gguf_metadata, resolve_model

    name = canonical_model_name(model)
    kv = model_kv_bytes_per_cell(gguf_metadata(resolve_model(model)))  # llama-batched-bench's default f16 cache
    curves = batched_bench_curves(records, path, model=name, machine=check_machine(machine), kv_bytes_per_token=kv)
    with store.transaction(db) as con:
        return store_curves(con, curves)


def export_curves(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Every stored curve with its points, JSON-ready, for `slmlab bench export`."""
    cursor = con.execute("SELECT * FROM service_curves ORDER BY created_at, curve_id, batch")
    names = [column[0] for column in cursor.description]
    curves: dict[str, dict[str, Any]] = {}
    for row in cursor.fetchall():
        values = dict(zip(names, row))
        curve = curves.setdefault(
            values["curve_id"],
            {
                key: values[key]
                for key in (
                    "curve_id",
                    "model",
                    "model_path",
                    "model_sha256",
                    "machine",
                    "n_threads",
                    "n_gpu_layers",
                    "pp",
                    "tg",
                    "kv_bytes_per_token",
                    "contended",
                )
            }
            | {
                "created_at": values["created_at"].isoformat(),
                **{k: json.loads(values[k]) if values[k] is not None else None for k in ("contention", "config")},
                "versions": json.loads(values["versions"]),
                "wake": json.loads(values["wake"]) if values["wake"] is not None else [],
                "points": [],
            },
        )
        curve["points"].append(
            {k: values[k] for k in ("batch", "n_ctx", "fits", "prefill_tok_s", "decode_tok_s", "itl_s", "itl_p95_s")}
            | {"ttft_s": values["ttft_s"]}
        )
    return list(curves.values())


def exported_curves(curves: object, path: str | Path, machine: str | None) -> list[Imported]:
    """The curves of an slmlab export, checked, under `machine` when given (else the exporting machine's name)."""
    if not isinstance(curves, list):
        raise ValueError(f"{path}: field 'curves' must be a list")
    out: list[Imported] = []
    for index, curve in enumerate(curves):
        where = f"{path}: curve {index}"
        try:
            points = [
                CurvePoint(
                    batch=int(p["batch"]),
                    n_ctx=int(p["n_ctx"]),
                    fits=bool(p["fits"]),
                    prefill_tok_s=p.get("prefill_tok_s"),
                    decode_tok_s=p.get("decode_tok_s"),
                    itl_s=p.get("itl_s"),
                    itl_p95_s=p.get("itl_p95_s"),
                    ttft_s=p.get("ttft_s"),
                )
                for p in curve["points"]
            ]
            for p in points:
                for value in (p.prefill_tok_s, p.decode_tok_s):
                    if p.fits and not (is_number(value) and value > 0):
                        raise ValueError(f"batch {p.batch}: speed {value!r} is not a positive number")
            run = CurveRun(
                model=str(curve["model"]),
                machine=check_machine(machine) if machine else str(curve["machine"]),
                n_threads=int(curve["n_threads"]),
                n_gpu_layers=int(curve["n_gpu_layers"]),
                pp=int(curve["pp"]),
                tg=int(curve["tg"]),
                kv_bytes_per_token=int(curve["kv_bytes_per_token"]),
                contended=bool(curve["contended"]),
                model_path=curve.get("model_path"),
                model_sha256=curve.get("model_sha256"),
                contention=curve.get("contention"),
                config=curve.get("config") or {},
                versions=curve.get("versions") or {},
                source="imported",
                wake=tuple((float(idle), float(extra)) for idle, extra in curve.get("wake") or []),
            )
            if not wake_is_valid(run.wake):
                raise ValueError(
                    "wake: [idle seconds, extra seconds] pairs need rising idle times above 0, extras >= 0"
                )
            created = datetime.fromisoformat(str(curve["created_at"]))
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{where}: missing or bad field ({error})") from None
        if not points:
            raise ValueError(f"{where}: no points")
        out.append((_curve_id(run, points), run, points, created))
    return out
