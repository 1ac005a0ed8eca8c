"""Replays checked against a real batched engine, in the warehouse: `bench/validation.py` saves one row per
`slmlab validate`; the CLI and the Routing replay page read them back."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import duckdb

from slmlab import store

PLAY_FIELDS = (
    "reps",
    "errors_by_rep",
    "decode_tok_s_by_rep",
    "real_spread",
    "steps_by_rep",
    "errors_at_play_speed",
    "errors_at_play_speed_by_rep",
    "sensitivity",
    "contention",
)


def save_validation(record: dict[str, object], *, db: str | Path | None = None) -> int:
    """Store one validation (the `as_dict()` of a `bench.validation.Validation`); returns its id."""
    with store.transaction(db) as con:
        next_id = con.execute("SELECT coalesce(max(validation_id), 0) + 1 FROM validations").fetchall()[0][0]
        con.execute(
            "INSERT INTO validations (validation_id, created_at, trace, model, load, requests, config, curve, "
            "errors, per_request, plays) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                next_id,
                datetime.now(UTC).replace(tzinfo=None),
                record["trace"],
                record["model"],
                record["load"],
                record["requests"],
                json.dumps(record["config"]),
                json.dumps(record["curve"]),
                json.dumps(record["errors"]),
                json.dumps(record["per_request"]),
                json.dumps({k: record[k] for k in PLAY_FIELDS if k in record}),
            ],
        )
    return int(next_id)


def load_validations(*, db: str | Path | None = None, trace: str | None = None) -> list[dict[str, object]]:
    """Stored validations, newest first (optionally of one trace), with their JSON parsed."""
    where = "WHERE trace = ?" if trace else ""
    with store.connect(db, read_only=True) as con:
        try:
            rows = con.execute(
                "SELECT validation_id, created_at, trace, model, load, requests, config, curve, errors, per_request, "
                f"coalesce(plays, '{{}}') FROM validations {where} ORDER BY validation_id DESC",
                [trace] if trace else [],
            ).fetchall()
        except duckdb.CatalogException:  # a database not yet upgraded to m014 holds none
            return []
    keys = ("validation_id", "created_at", "trace", "model", "load", "requests")
    return [
        {
            **dict(zip(keys, row[:6])),
            **{k: json.loads(v) for k, v in zip(("config", "curve", "errors", "per_request"), row[6:10])},
            **json.loads(row[10]),
        }
        for row in rows
    ]


def slice_of(validation: dict[str, object]) -> tuple[int, int]:
    """(first request, requests) of a stored validation's slice (a record without them: from position 0)."""
    config = cast(dict[str, object], validation.get("config") or {})
    plays = int(cast(int, validation.get("reps") or 1))
    count = int(cast(int, config.get("count", int(cast(int, validation["requests"])) // plays)))
    return int(cast(int, config.get("start", 0))), count


def errors_text(errors: dict[str, dict[str, dict[str, float]]]) -> str:
    """'ttft p50 +1.2%, ...': a validation's percentile errors in one wording for the CLI and the Routing page."""
    return ", ".join(f"{m} {q} {e['error']:+.1%}" for m, by_q in errors.items() for q, e in by_q.items())


def sizes_played(validation: dict[str, object]) -> str:
    """'scaled' or 'capped' (`validate --tokens`); validations stored before the option were capped."""
    return str(cast(dict[str, object], validation.get("config") or {}).get("tokens", "capped"))


def slice_label(validation: dict[str, object]) -> str:
    """'requests 161-320': which requests of the trace were played (1-based, as a reader counts), and ', sizes
    scaled' where they kept the trace's spread of sizes (`validate --tokens scaled`) rather than capped."""
    start, count = slice_of(validation)
    scaled = ", sizes scaled" if sizes_played(validation) == "scaled" else ""
    return f"requests {start + 1:,}-{start + count:,}{scaled}"


def newest_by_load(validations: list[dict[str, object]]) -> list[dict[str, object]]:
    """The newest validation of each slice (trace, first request, requests, sizes capped or scaled) at each load
    (of a newest-first list), lightest load first, as table rows: the pooled error of each percentile, plays, and
    whether other processes took CPU during it. Two slices at one load are two rows: one's result is not the
    other's."""
    seen: dict[tuple[float, str, int, int, str], dict[str, object]] = {}
    for v in validations:
        seen.setdefault((float(cast(float, v["load"])), str(v.get("trace", "")), *slice_of(v), sizes_played(v)), v)
    rows = []
    for (load, *_), v in sorted(seen.items()):
        errors = cast(dict[str, dict[str, dict[str, float]]], v["errors"])
        contention = cast(dict[str, object], v.get("contention") or {})
        rows.append(
            {
                "validation": v["validation_id"],
                "load": load,
                "slice": slice_label(v),
                "plays": int(cast(int, v.get("reps") or 1)),
                **{f"{m} {q}": errors[m][q]["error"] for m in ("ttft", "latency") for q in ("p50", "p95")},
                "contended": "yes" if contention.get("contended") else "no" if contention else "not sampled",
            }
        )
    return rows


def trace_slice(trace: str, start: int, count: int, *, db: str | Path | None = None) -> list[tuple[float, int, int]]:
    """(arrival s, input tokens, output tokens) of `count` requests of a stored trace from position `start`, in
    arrival order; a ValueError names the trace when it has no such requests or records no arrivals/tokens."""
    with store.connect(db, read_only=True) as con:
        rows = con.execute(
            "SELECT r.arrival_s, r.input_tokens, r.output_tokens FROM requests r JOIN traces t USING (trace_id) "
            "WHERE t.name = ? ORDER BY r.seq LIMIT ? OFFSET ?",
            [trace, int(count), int(start)],
        ).fetchall()
    if not rows:
        raise ValueError(f"trace '{trace}' has no requests from position {start} (see `slmlab traces`)")
    if any(r[0] is None or r[1] is None or r[2] is None for r in rows):
        raise ValueError(f"trace '{trace}': a validation needs recorded arrival times and token counts")
    return [(float(a), int(i), int(o)) for a, i, o in rows]


def cdf_points(record: dict[str, object]) -> list[dict[str, object]]:
    """Empirical CDFs of a stored validation, for the overlay: one row per (metric, real or simulated, request):
    seconds and the share of requests at or under it."""
    rows: list[dict[str, object]] = []
    requests = cast(list[dict[str, float]], record["per_request"])
    for metric in ("ttft", "latency"):
        for side, key in (("real", f"real_{metric}_s"), ("simulated", f"sim_{metric}_s")):
            values = sorted(float(r[key]) for r in requests)
            rows += [
                {"metric": metric, "series": f"{metric} {side}", "seconds": v, "share": (i + 1) / len(values)}
                for i, v in enumerate(values)
            ]
    return rows
