"""Batched serving in one context: continuous batching on the real model, the service curve, the KV limit."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench.batched import (
    BatchedServer,
    CurveConfig,
    kv_bytes_per_cell,
    largest_fitting_batch,
    measure_curve,
)
from bench.engine import Engine, EngineConfig, KVCacheFull


def test_kv_arithmetic_and_the_largest_batch_that_fits() -> None:
    # SmolLM2-135M: 30 layers, 3 KV heads x 64 -> 192 K + 192 V elements a layer, f16
    assert kv_bytes_per_cell(30, 192, 192) == 23_040
    assert kv_bytes_per_cell(30, 192, 192, "q8_0", "q8_0") == 12_240
    cells = 256  # PP 128 + TG 128
    assert largest_fitting_batch(23_040, cells, free_bytes=10**9, reserve_bytes=10**8) == 152
    assert largest_fitting_batch(23_040, cells, free_bytes=10**8, reserve_bytes=2 * 10**8) == 0


def test_engine_config_refuses_more_sequences_than_a_step_holds() -> None:
    with pytest.raises(ValueError, match="cannot exceed n_batch"):
        EngineConfig(n_ctx=4096, threads=1, n_batch=8, n_seq_max=16)
    with pytest.raises(ValueError, match="flash_attn"):
        EngineConfig(n_ctx=64, threads=1, flash_attn="sometimes")


@pytest.fixture(scope="module")
def smollm2_file() -> str:
    from slmlab.models import resolve_model

    return str(resolve_model("smollm2-135m"))


@pytest.mark.slow
@pytest.mark.model
def test_continuous_batching_admits_into_freed_slots_and_matches_one_at_a_time(smollm2_file: str) -> None:
    with Engine(smollm2_file, EngineConfig(n_ctx=512, threads=2, n_seq_max=2)) as engine:
        server = BatchedServer(engine)
        prompts = [list(range(100, 120)), list(range(200, 230)), list(range(300, 310))]
        requests = [server.submit(p, n) for p, n in zip(prompts, (8, 5, 4))]
        server.step()
        assert [s.slot for s in server.active] == [0, 1] and len(server.waiting) == 1  # two slots, one queued
        finished = server.run()
        assert [s.request_id for s in finished] == [1, 0, 2]  # the short one finishes first, the third takes its slot
        assert requests[2].slot == requests[1].slot
        assert [len(r.generated) for r in requests] == [8, 5, 4]
        assert all(engine.next_position(slot) == 0 for slot in (0, 1))  # finished sequences freed their cells
        for prompt, request in zip(prompts, requests):  # same greedy tokens as decoding each request alone
            engine.clear()
            engine.prompt(np.asarray(prompt, dtype=np.int32))
            alone = [engine.greedy()]
            for i in range(request.max_new - 1):
                engine.step(alone[-1], len(prompt) + i)
                alone.append(engine.greedy())
            assert alone == request.generated


@pytest.mark.model
def test_a_full_kv_cache_is_a_clear_error(smollm2_file: str) -> None:
    with Engine(smollm2_file, EngineConfig(n_ctx=256, threads=1)) as engine:
        with pytest.raises(KVCacheFull, match="no room in the KV cache"):
            for position in range(engine.n_ctx + 1):
                engine.step(100, position)
        with pytest.raises(ValueError, match="does not fit in a slot"):
            BatchedServer(engine).submit(list(range(100, 300)), max_new=100)


@pytest.mark.model
def test_curve_measures_fitting_batches_and_reports_where_kv_runs_out(smollm2_file: str) -> None:
    config = CurveConfig(batches=(1, 2, 64), pp=8, tg=4, threads=1)
    kv = kv_bytes_per_cell(30, 192, 192)
    # free memory for the weights, the reserve and 3 sequences' cells: B=64 cannot fit
    points = measure_curve(
        smollm2_file, config, kv_per_cell=kv, weights_bytes=10**8, free_bytes=10**8 + 256 * 1024 * 1024 + 3 * 12 * kv
    )
    assert [(p.batch, p.fits) for p in points] == [(1, True), (2, True), (64, False)]
    assert "largest B that fits: 3" in points[2].reason and points[2].decode_tok_s is None
    for point in points[:2]:
        assert point.prefill_tok_s > 0 and point.decode_tok_s > 0 and point.ttft_s > 0
        assert point.itl_s > 0 and point.itl_p95_s >= point.itl_s * 0.5


@pytest.mark.model
def test_cli_parallel_stores_a_curve_the_replay_can_load(capsys, db) -> None:
    from app.cli.main import main
    from slmlab.service_curves import load_service_curve

    code = main(
        ["bench", "--model", "smollm2-135m", "--parallel", "1,2", "--pp", "8", "--tg", "4", "--threads", "1", "--json"]
        + ["--wake-rounds", "1"]
    )
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and [p["batch"] for p in out["points"]] == [1, 2] and out["model"] == "smollm2-135m"
    curve = load_service_curve("smollm2-135m", out["machine"], db=db, include_contended=True)
    assert curve is not None and curve.curve_id == out["curve_id"] and curve.batch.tolist() == [1, 2]
    assert curve.kv_bytes_per_token == 23_040 and curve.contended == out["contention"]["contended"]
    # what waking from idle costs the next step, measured after the curve, stored with it, read by the replay
    assert [w["idle_s"] for w in out["wake"]] == [0.3, 1.0, 3.0] and all(w["extra_s"] >= 0 for w in out["wake"])
    assert curve.wake == tuple((w["idle_s"], w["extra_s"]) for w in out["wake"])
