"""Move benchmark runs between machines: export to JSON, import it (or llama-bench's own JSON) elsewhere, compare.

Imports are all-or-nothing (one transaction) and idempotent: a run already stored with the same fingerprint,
model, test, start time and config is skipped. Imported runs keep their start time and get `source = 'imported'`.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from bench.curve_import import Imported, export_curves, exported_curves, is_number, store_curves
from bench.stats import summarise
from slmlab import store

FORMAT = "slmlab-bench"
VERSION = 1
JSON_COLUMNS = ("model", "config", "census", "versions", "summary", "roofline", "contention")
REQUIRED = ("model_sha256", "test", "config", "fingerprint", "census", "versions", "summary", "started_at")
OBJECT_FIELDS = ("config", "census", "versions", "summary")
INSERT_COLUMNS = (
    "started_at",
    "model_name",
    "model_path",
    "model_sha256",
    "model",
    "test",
    "config",
    "fingerprint",
    "census",
    "versions",
    "load_s",
    "peak_rss_bytes",
    "summary",
    "roofline",
    "sweep_id",
    "contended",  # other processes took CPU past the threshold during the run (None: not sampled)
    "contention",  # what was sampled: other processes' CPU, load, steal, GPU processes
)
LLAMA_BENCH_REQUIRED = ("model_filename", "n_prompt", "n_gen", "avg_ts", "test_time")
LLAMA_BENCH_CONFIG = (
    "n_batch",
    "n_ubatch",
    "n_threads",
    "type_k",
    "type_v",
    "n_gpu_layers",
    "flash_attn",
    "n_prompt",
    "n_gen",
    "n_depth",
)

Run = dict[str, Any]
Sample = tuple[int, str, float]


def _timestamp(text: object, where: str) -> datetime:
    """ISO 8601 text as a naive UTC datetime (the warehouse stores TIMESTAMP without zone)."""
    try:
        moment = datetime.fromisoformat(str(text))
    except ValueError:
        raise ValueError(f"{where}: '{text}' is not an ISO 8601 time") from None
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def read_json(path: str | Path) -> Any:
    """Parse a JSON file, or a JSON Lines file as a list; errors name the file."""
    text = Path(path).read_text(encoding="utf-8-sig")
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        lines = [line for line in text.splitlines() if line.strip()]
        if len(lines) > 1 and all(line.lstrip().startswith("{") for line in lines):
            try:
                return [json.loads(line) for line in lines]
            except json.JSONDecodeError:
                pass
        raise ValueError(f"{path}: not valid JSON ({error})") from None


def export_runs(db: str | Path | None, run_ids: list[int] | None = None) -> dict[str, Any]:
    """A JSON-ready document of the runs (all, or those listed) with their raw samples."""
    ids = None if run_ids is None else [int(run_id) for run_id in run_ids]
    where = "" if ids is None else f" WHERE run_id IN ({', '.join('?' * len(ids))})" if ids else " WHERE false"
    with store.connect(db, read_only=True) as con:
        cursor = con.execute(f"SELECT * FROM bench_runs{where} ORDER BY run_id", ids or [])
        names = [column[0] for column in cursor.description]
        runs = [dict(zip(names, row)) for row in cursor.fetchall()]
        samples = con.execute(
            f"SELECT run_id, rep, metric, value FROM bench_samples{where} ORDER BY run_id, metric, rep", ids or []
        ).fetchall()
        curves = export_curves(con) if ids is None else []  # batched service curves travel with a full export
    missing = sorted(set(ids or []) - {run["run_id"] for run in runs})
    if missing:
        raise ValueError(f"no such benchmark run(s): {', '.join(map(str, missing))}")
    by_run: dict[int, list[dict[str, Any]]] = {}
    for run_id, rep, metric, value in samples:
        by_run.setdefault(run_id, []).append({"rep": rep, "metric": metric, "value": value})
    for run in runs:
        run["started_at"] = run["started_at"].isoformat()
        run.update({column: json.loads(run[column]) for column in JSON_COLUMNS if run[column] is not None})
        run["samples"] = by_run.get(run["run_id"], [])
    exported_at = datetime.now(UTC).isoformat()
    return {"format": FORMAT, "version": VERSION, "exported_at": exported_at, "runs": runs, "curves": curves}


def write_export(db: str | Path | None, path: str | Path, run_ids: list[int] | None = None) -> int:
    """Write the export document (UTF-8, indented); returns the number of runs written."""
    document = export_runs(db, run_ids)
    Path(path).write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return len(document["runs"])


def _validate_export_run(run: object, where: str) -> tuple[Run, list[Sample]]:
    """Check one exported run; returns its row values and samples."""
    if not isinstance(run, dict):
        raise ValueError(f"{where}: expected an object, found {type(run).__name__}")
    for key in REQUIRED:
        if run.get(key) in (None, ""):
            raise ValueError(f"{where}: required field '{key}' is missing")
    for key in OBJECT_FIELDS:
        if not isinstance(run[key], dict):
            raise ValueError(f"{where}: field '{key}' must be an object, found {type(run[key]).__name__}")
    for key in ("model_sha256", "test", "fingerprint"):
        if not isinstance(run[key], str):
            raise ValueError(f"{where}: field '{key}' must be text")
    if run.get("contended") is not None and not isinstance(run["contended"], bool):
        raise ValueError(f"{where}: field 'contended' must be true, false or null")
    if run.get("contention") is not None and not isinstance(run["contention"], dict):
        raise ValueError(f"{where}: field 'contention' must be an object or null")
    if not isinstance(run.get("samples", []), list):
        raise ValueError(f"{where}: field 'samples' must be a list")
    samples: list[Sample] = []
    for index, sample in enumerate(run.get("samples", [])):
        place = f"{where}, samples[{index}]"
        if not isinstance(sample, dict) or not {"rep", "metric", "value"} <= sample.keys():
            raise ValueError(f"{place}: expected an object with rep, metric and value")
        if not is_number(sample["value"]):
            raise ValueError(f"{place}: value {sample['value']!r} is not a number")
        if (
            not isinstance(sample["rep"], int)
            or isinstance(sample["rep"], bool)
            or not isinstance(sample["metric"], str)
        ):
            raise ValueError(f"{place}: rep must be a whole number and metric text")
        samples.append((sample["rep"], sample["metric"], float(sample["value"])))
    row = {column: run.get(column) for column in INSERT_COLUMNS}
    row["started_at"] = _timestamp(run["started_at"], f"{where}, field 'started_at'")
    row["model"] = run.get("model") or {}
    return row, samples


def _insert(con: duckdb.DuckDBPyConnection, row: Run, samples: list[Sample]) -> int | None:
    """Insert one imported run and its samples; None when the same run is already stored."""
    stored = con.execute(
        "SELECT config FROM bench_runs WHERE fingerprint = ? AND model_sha256 = ? AND test = ? AND started_at = ?",
        [row["fingerprint"], row["model_sha256"], row["test"], row["started_at"]],
    ).fetchall()
    if any(json.loads(config) == row["config"] for (config,) in stored):
        return None
    values = [
        json.dumps(row.get(c)) if c in JSON_COLUMNS and row.get(c) is not None else row.get(c) for c in INSERT_COLUMNS
    ]
    run_id = con.execute(
        f"INSERT INTO bench_runs (source, {', '.join(INSERT_COLUMNS)}) "
        f"VALUES ('imported', {', '.join('?' * len(INSERT_COLUMNS))}) RETURNING run_id",
        values,
    ).fetchall()[0][0]
    if samples:
        con.executemany("INSERT INTO bench_samples VALUES (?, ?, ?, ?)", [(run_id, *s) for s in samples])
    return int(run_id)


def _store_all(
    db: str | Path | None, runs: list[tuple[Run, list[Sample]]], curves: list[Imported] | None = None
) -> list[int]:
    """Insert validated runs (and curves) in one transaction; returns the ids of the runs that were new."""
    with store.transaction(db) as con:
        inserted = [_insert(con, row, samples) for row, samples in runs]
        store_curves(con, curves or [])
    return [run_id for run_id in inserted if run_id is not None]


def import_runs(db: str | Path | None, path: str | Path, machine: str | None = None) -> list[int]:
    """Import an slmlab export, all or nothing, skipping runs and curves already stored; returns the new run ids.
    Its service curves are stored as imported, under `machine` when given (else the exporting machine's name)."""
    document = read_json(path)
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        found = document.get("format") if isinstance(document, dict) else type(document).__name__
        raise ValueError(f"{path}: not an slmlab benchmark export (format is {found!r}, expected {FORMAT!r})")
    if document.get("version") != VERSION:
        raise ValueError(f"{path}: export version {document.get('version')!r} is not supported (expected {VERSION})")
    if not isinstance(document.get("runs"), list):
        raise ValueError(f"{path}: field 'runs' must be a list")
    runs = [_validate_export_run(run, f"{path}: run {index}") for index, run in enumerate(document["runs"])]
    return _store_all(db, runs, exported_curves(document.get("curves") or [], path, machine))


def _llama_bench_run(record: object, where: str) -> tuple[Run, list[Sample]]:
    """Map one llama-bench JSON record to a bench_runs row and its samples."""
    if not isinstance(record, dict):
        raise ValueError(f"{where}: expected an object, found {type(record).__name__}")
    for key in LLAMA_BENCH_REQUIRED:
        if key not in record:
            raise ValueError(f"{where}: required field '{key}' is missing")
    n_prompt, n_gen = record["n_prompt"], record["n_gen"]
    if (
        not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in (n_prompt, n_gen))
        or not n_prompt + n_gen
    ):
        raise ValueError(
            f"{where}: n_prompt and n_gen must be whole numbers >= 0, not both 0 (found {n_prompt!r}, {n_gen!r})"
        )
    samples_ts = record.get("samples_ts") or []
    if not isinstance(samples_ts, list):
        raise ValueError(f"{where}: field 'samples_ts' must be a list")
    numbers = [("avg_ts", record["avg_ts"])] + [(f"samples_ts[{i}]", v) for i, v in enumerate(samples_ts)]
    for key, value in numbers + ([("stddev_ts", record["stddev_ts"])] if "stddev_ts" in record else []):
        if not is_number(value):
            raise ValueError(f"{where}: field '{key}' value {value!r} is not a number")
    test = "+".join(part for part in (f"pp{n_prompt}" if n_prompt else "", f"tg{n_gen}" if n_gen else "") if part)
    metric = "total_tok_s" if n_prompt and n_gen else "prefill_tok_s" if n_prompt else "decode_tok_s"
    spread = summarise([float(v) for v in samples_ts]) if samples_ts else None
    hardware = [record.get("cpu_info"), record.get("gpu_info"), record.get("backends")]
    row: Run = {
        "started_at": _timestamp(record["test_time"], f"{where}, field 'test_time'"),
        "model_name": Path(str(record["model_filename"])).stem,
        "model_path": record["model_filename"],
        "model_sha256": f"unknown:{record['model_filename']}",
        "model": {
            "filename": record["model_filename"],
            "type": record.get("model_type"),
            "size_bytes": record.get("model_size"),
            "parameters": record.get("model_n_params"),
        },
        "test": test,
        "config": {key: record[key] for key in LLAMA_BENCH_CONFIG if key in record} | {"reps": len(samples_ts)},
        "fingerprint": hashlib.sha256(json.dumps(hardware).encode()).hexdigest()[:16],
        "census": {"cpu_model": hardware[0], "gpus": hardware[1], "backends": hardware[2], "source": "llama-bench"},
        "versions": {"llama_cpp_build": record.get("build_commit"), "build_number": record.get("build_number")},
        "load_s": None,
        "peak_rss_bytes": None,
        "roofline": None,
        "sweep_id": None,
        "summary": {
            metric: {
                "n": spread.n if spread else None,
                "mean": record["avg_ts"],
                "sd": record.get("stddev_ts"),
                "ci95_low": spread.ci95_low if spread else None,
                "ci95_high": spread.ci95_high if spread else None,
            }
        },
    }
    return row, [(rep, metric, float(value)) for rep, value in enumerate(samples_ts)]


def import_llama_bench(db: str | Path | None, path: str | Path) -> list[int]:
    """Import llama-bench `-o json` (or `-o jsonl`) output, all or nothing; returns the new run ids."""
    records = read_json(path)
    if not isinstance(records, list):
        raise ValueError(f"{path}: expected a JSON array of llama-bench records (llama-bench -o json)")
    runs = [_llama_bench_run(record, f"{path}: record {index}") for index, record in enumerate(records)]
    return _store_all(db, runs)


def compare(db: str | Path | None = None) -> list[dict[str, Any]]:
    """One row per run, across machines: hardware, model, test, settings, decode/prefill mean and 95% interval."""
    with store.connect(db, read_only=True) as con:
        rows = con.execute(
            "SELECT run_id, source, fingerprint, census, model_name, test, config, summary, contended "
            "FROM bench_runs ORDER BY run_id"
        ).fetchall()
    table = []
    for run_id, source, fingerprint, census, model_name, test, config, summary, contended in rows:
        census, config, summary = json.loads(census), json.loads(config), json.loads(summary)
        row = {
            "run_id": run_id,
            "source": source,
            "fingerprint": fingerprint,
            "cpu_model": census.get("cpu_model"),
            "model_name": model_name,
            "test": test,
            "threads": config.get("threads", config.get("n_threads")),
            "n_gpu_layers": config.get("n_gpu_layers"),
            "contended": contended,
        }
        for short, metric in (("decode", "decode_tok_s"), ("prefill", "prefill_tok_s")):
            stats = summary.get(metric) or {}
            row |= {f"{short}_{key}": stats.get(key) for key in ("mean", "ci95_low", "ci95_high")}
        table.append(row)
    return table
