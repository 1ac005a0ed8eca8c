"""Service curves in the warehouse: saved in one transaction, the newest uncontended curve read back as arrays."""

from __future__ import annotations

import numpy as np
import pytest

from slmlab import store
from slmlab.service_curves import CurvePoint, CurveRun, list_service_curves, load_service_curve, save_service_curve


def _run(contended: bool = False, machine: str = "m1", model: str = "smollm2-135m") -> CurveRun:
    return CurveRun(
        model=model,
        machine=machine,
        n_threads=2,
        n_gpu_layers=0,
        pp=128,
        tg=128,
        kv_bytes_per_token=30_720,
        contended=contended,
        contention={"others_cores_mean": 0.0},
        config={"flash_attn": "auto"},
        versions={"llama_cpp_python": "test"},
    )


def _points(scale: float = 1.0) -> list[CurvePoint]:
    return [
        CurvePoint(1, 256, True, 90.0 * scale, 40.0 * scale, 0.025, 0.03, 1.4),
        CurvePoint(4, 1024, True, 100.0 * scale, 120.0 * scale, 0.033, 0.04, 5.1),
        CurvePoint(64, 16384, False),
    ]


def test_migration_creates_the_columns_the_replay_reads(db) -> None:
    with store.connect(db) as con:
        columns = {row[0] for row in con.execute("DESCRIBE service_curves").fetchall()}
    assert {
        "curve_id",
        "created_at",
        "model",
        "machine",
        "n_threads",
        "n_gpu_layers",
        "n_ctx",
        "pp",
        "tg",
        "batch",
        "prefill_tok_s",
        "decode_tok_s",
        "itl_s",
        "ttft_s",
        "kv_bytes_per_token",
        "fits",
        "contended",
        "wake",
    } <= columns


def test_newest_uncontended_curve_is_loaded_as_arrays(db) -> None:
    old = save_service_curve(_run(), _points(1.0), db=db)
    new = save_service_curve(_run(), _points(2.0), db=db)
    busy = save_service_curve(_run(contended=True), _points(0.1), db=db)
    curve = load_service_curve("smollm2-135m", "m1", db=db)
    assert curve is not None and curve.curve_id == new != old
    assert curve.batch.tolist() == [1, 4, 64] and curve.batch.dtype == np.int64
    assert curve.decode_tok_s[:2].tolist() == [80.0, 240.0] and np.isnan(curve.decode_tok_s[2])
    assert curve.fits.tolist() == [True, True, False] and curve.max_batch == 4
    assert not curve.contended and curve.kv_bytes_per_token == 30_720
    assert load_service_curve("smollm2-135m", "m1", db=db, include_contended=True).curve_id == busy
    assert load_service_curve("smollm2-135m", db=db, curve_id=busy).contended  # picked by id: allowed
    assert load_service_curve("smollm2-135m", "other-machine", db=db) is None
    assert load_service_curve("gemma3-270m", db=db) is None
    listed = list_service_curves(db=db)
    assert [row["curve_id"] for row in listed][0] == busy and listed[0]["contended"]


def test_the_wake_cost_measured_with_a_curve_reaches_the_replay(db) -> None:
    from dataclasses import replace

    from simulators.deployment import stored_curve

    wake = ((0.3, 0.002), (1.0, 0.005), (3.0, 0.03))
    measured = save_service_curve(replace(_run(), wake=wake), _points(), db=db)
    plain = save_service_curve(_run(machine="m2"), _points(), db=db)
    loaded = load_service_curve("smollm2-135m", "m1", db=db)
    assert loaded is not None and loaded.curve_id == measured and loaded.wake == wake
    assert stored_curve(loaded, 1e8).wake == wake  # the form the replay serves with
    unmeasured = load_service_curve("smollm2-135m", "m2", db=db)
    assert unmeasured is not None and unmeasured.curve_id == plain and stored_curve(unmeasured, 1e8).wake == ()


def test_an_empty_curve_is_refused(db) -> None:
    with pytest.raises(ValueError, match="at least one batch size"):
        save_service_curve(_run(), [], db=db)
