"""The portfolio's local speed: the best configuration of the newest uncontended sweep, never a contended run
(issue 15: a contended 1.6 tok/s run was adopted, and a sweep's last point instead of its best)."""

from __future__ import annotations

from bench.results import save_run
from bench.runner import BenchConfig, RawRun
from bench.stats import summarise
from slmlab.replay_store import reader
from tests.conftest import tiny_gguf_metadata

MODEL = tiny_gguf_metadata()


def _store(db, decode: float, threads: int, contended: bool, sweep: str | None) -> int:
    samples = {"decode_tok_s": [decode, decode]}
    raw = RawRun(
        load_s=0.1,
        samples=samples,
        inter_token_ms=[],
        perf=[],
        peak_rss_bytes=1,
        versions={},
        summaries={k: summarise(v) for k, v in samples.items()},
        contention={"contended": contended, "reasons": ["busy"] if contended else []},
    )
    config = BenchConfig(test="tg8", threads=threads)
    return save_run(db, MODEL, config, {}, "machine", raw, None, sweep)


def test_best_of_newest_uncontended_sweep_is_the_local_speed(db) -> None:
    _store(db, 30.0, 2, False, "old-sweep")  # older sweep, faster: not the newest
    best = _store(db, 22.6, 1, False, "new-sweep")
    _store(db, 9.0, 2, False, "new-sweep")  # the sweep's last point is not its best
    _store(db, 1.6, 1, True, None)  # newest of all, but contended
    with reader(db) as warehouse:
        row = warehouse.latest_bench("tiny")
    assert row is not None and row.run_id == best and row.summary["decode_tok_s"]["mean"] == 22.6
    assert row.selection == "best decode of the newest uncontended sweep new-sweep (threads=1)"


def test_only_contended_runs_give_no_local_speed(db) -> None:
    _store(db, 1.6, 1, True, None)
    with reader(db) as warehouse:
        assert warehouse.latest_bench("tiny") is None
        assert warehouse.bench_run(1).run_id == 1  # still there to be picked by id
