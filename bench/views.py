"""Stored benchmark runs as tables for the dashboard: one row per run with its summaries flattened."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from slmlab import store

METRICS = ("prefill_tok_s", "decode_tok_s", "ttft_ms", "request_latency_ms", "aggregate_gen_tok_s")
CONFIG_AXES = ("threads", "n_batch", "n_ubatch", "depth", "n_gpu_layers", "flash_attn", "type_k", "concurrency")


def runs_frame(db: str | Path | None) -> pl.DataFrame:
    """Every run with hardware, model, configuration, each metric's mean and 95% interval, and roofline."""
    with store.connect(db, read_only=True) as con:
        rows = con.execute(
            "SELECT run_id, started_at, source, coalesce(regexp_extract(model_path, '([^/]+?)(\\.gguf)?$', 1), "
            "model_name), "
            "test, config, fingerprint, census, summary, roofline, sweep_id, peak_rss_bytes, load_s, contended, "
            "contention FROM bench_runs "
            "ORDER BY run_id"
        ).fetchall()
    records = []
    for row in rows:
        run_id, started, source, model, test, config, fingerprint, census, summary, roofline, sweep, rss = row[:12]
        load_s, contended, contention = row[12:]
        config, census, summary = json.loads(config), json.loads(census), json.loads(summary)
        roof = json.loads(roofline) if roofline else {}
        itl = summary.get("inter_token_latency_ms") or {}
        record = {
            "run_id": run_id,
            "started_at": started,
            "source": source,
            "model": model,
            "test": test,
            "machine": f"{census.get('cpu_model', '?')} ({fingerprint[:6]})",
            "fingerprint": fingerprint,
            "sweep_id": sweep,
            "peak_rss_mb": rss / 1e6 if rss else None,
            "load_s": load_s,
            "itl_p50_ms": itl.get("p50"),
            "itl_p95_ms": itl.get("p95"),
            "itl_p99_ms": itl.get("p99"),
            "contended": contended,  # None: stored before contention was sampled
            "contention_note": "; ".join(json.loads(contention).get("reasons") or []) if contention else None,
            "roofline_efficiency": roof.get("efficiency"),
            "roofline_bound": roof.get("bound"),
            "ceiling_tok_s": roof.get("ceiling_tok_s"),
            **{axis: config.get(axis, config.get(f"n_{axis}")) for axis in CONFIG_AXES},
        }
        for metric in METRICS:
            stats = summary.get(metric) or {}
            record |= {
                metric: stats.get("mean"),
                f"{metric}_low": stats.get("ci95_low"),
                f"{metric}_high": stats.get("ci95_high"),
            }
        record["label"] = f"#{run_id} {model} {test} t{record['threads']}" + (
            f" x{record['concurrency']}" if (record["concurrency"] or 1) > 1 else ""
        )
        records.append(record)
    return pl.DataFrame(records, infer_schema_length=None) if records else pl.DataFrame()


def samples(db: str | Path | None, run_id: int, metric: str) -> list[float]:
    """The raw samples of one metric of one run (e.g. every inter-token latency)."""
    with store.connect(db, read_only=True) as con:
        return [
            row[0]
            for row in con.execute(
                "SELECT value FROM bench_samples WHERE run_id = ? AND metric = ? ORDER BY rep", [run_id, metric]
            ).fetchall()
        ]
