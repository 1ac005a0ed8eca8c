"""Benchmark harness: config parsing, statistics, model checks, the isolated worker and the CLI, on SmolLM2."""

from __future__ import annotations

import json
import math
from pathlib import Path

import duckdb
import pytest

from app.cli.main import main
from bench.runner import BenchConfig, BenchError, parse_test, run_isolated
from bench.stats import percentile, summarise
from slmlab.models import ModelError, gguf_metadata, resolve_model, shipped_models

SMOLLM2 = "smollm2-135m"


@pytest.fixture(scope="module")
def smollm2_path() -> Path:
    return resolve_model(SMOLLM2)


@pytest.fixture(scope="module")
def truncated_gguf(tmp_path_factory: pytest.TempPathFactory, smollm2_path: Path) -> Path:
    path = tmp_path_factory.mktemp("models") / "truncated.gguf"
    data = smollm2_path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.mark.parametrize(("test", "expected"), [("pp512", (512, 0)), ("tg128", (0, 128)), ("pp512+tg128", (512, 128))])
def test_llama_bench_test_names(test: str, expected: tuple[int, int]) -> None:
    assert parse_test(test) == expected


@pytest.mark.parametrize("bad", ["", "pp", "512", "tg128+pp512", "pp512+", "pp-1"])
def test_bad_test_names_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match="not like pp512"):
        parse_test(bad)


@pytest.mark.parametrize("field", [{"reps": 0}, {"threads": 0}, {"type_k": "f8"}, {"depth": -1}])
def test_bad_configs_are_rejected(field: dict) -> None:
    with pytest.raises(ValueError):
        BenchConfig(**field)


def test_summary_uses_student_t_interval() -> None:
    summary = summarise([10.0, -12.0, 14.0, 36.0])  # a quantity that can be negative: the plain t interval
    assert summary.mean == 12.0 and summary.interval == "t"
    half = 3.182 * summary.sd / math.sqrt(4)
    assert summary.ci95_low == pytest.approx(12.0 - half) and summary.ci95_high == pytest.approx(12.0 + half)
    assert summarise([5.0]).ci95_low is None


def test_positive_quantities_get_intervals_that_never_go_below_zero() -> None:
    """The issue's decode interval [-0.07, 1.98] tok/s: n=2, far apart. On the log scale it stays positive."""
    summary = summarise([0.25, 1.65])
    assert summary.n == 2 and summary.interval == "t on the log scale"
    assert 0 < summary.ci95_low < summary.mean < summary.ci95_high
    factor = math.exp(12.706 * summary.sd / summary.mean / math.sqrt(2))
    assert summary.ci95_low == pytest.approx(summary.mean / factor)
    tight = summarise([10.0, 12.0, 14.0])  # skewed upwards, as a positive quantity's uncertainty is
    half = 4.303 * 2.0 / math.sqrt(3)
    assert 12.0 - half < tight.ci95_low < 12.0 and tight.ci95_high > 12.0 + half
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5 and percentile([1.0, 2.0, 3.0, 4.0], 100) == 4.0


def test_gguf_metadata_of_the_shipped_smollm2(smollm2_path: Path) -> None:
    meta = gguf_metadata(smollm2_path)
    assert (meta.architecture, meta.quantization, meta.n_layer, meta.chat_template) == ("llama", "Q4_1", 30, True)
    assert meta.parameters == 134_515_008 and meta.kv_width == (192, 192)
    assert meta.sha256 == "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"


@pytest.mark.model
def test_both_shipped_models_resolve_by_key() -> None:
    for model in shipped_models():
        assert resolve_model(model.key) == model.path


@pytest.mark.model
@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp, _: tmp / "missing.gguf", "no such file"),
        (lambda tmp, _: tmp, "is a folder"),
        (lambda tmp, _: (tmp / "notes.gguf").write_text("hello") and tmp / "notes.gguf", "not a GGUF file"),
        (lambda tmp, truncated: truncated, "truncated or corrupt"),
    ],
)
def test_bad_model_paths_get_clear_errors(tmp_path: Path, truncated_gguf: Path, make, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        resolve_model(str(make(tmp_path, truncated_gguf)))


def test_isolated_run_on_the_real_model(smollm2_path: Path) -> None:
    progress: list[dict] = []
    raw = run_isolated(smollm2_path, BenchConfig(test="pp32+tg16", reps=2, threads=1), progress.append)
    assert [p["progress"] for p in progress] == [1, 2, 3] and progress[0]["warmup"]
    for metric in ("prefill_tok_s", "decode_tok_s", "ttft_ms", "llama_prefill_tok_s", "llama_decode_tok_s"):
        assert len(raw.samples[metric]) == 2 and all(v > 0 for v in raw.samples[metric]), metric
    assert raw.summaries["decode_tok_s"].n == 2
    assert len(raw.inter_token_ms) == 2 * 16 and raw.itl_percentiles_ms["p50"] > 0
    # llama.cpp's own count: the whole 32-token prompt is evaluated in every repetition (no cached prefix), then
    # 16 single-token decode steps (bench.engine decodes the first generated token as a step of its own)
    assert [(p["n_p_eval"], p["n_eval"]) for p in raw.perf] == [(32, 16), (32, 16)]
    ours, theirs = raw.summaries["decode_tok_s"].mean, raw.summaries["llama_decode_tok_s"].mean
    assert 0.5 < ours / theirs < 2.0  # the harness and llama.cpp's own counters agree on the order of magnitude
    assert raw.peak_rss_bytes > smollm2_path.stat().st_size / 2


def test_a_file_llama_cpp_cannot_load_is_an_error_and_the_caller_survives(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"GGUF" + b"\0" * 4096)
    with pytest.raises(BenchError, match="failed in the worker"):
        run_isolated(bogus, BenchConfig(test="tg4", reps=1))


def test_a_hanging_run_is_stopped_at_the_timeout(smollm2_path: Path) -> None:
    with pytest.raises(BenchError, match="did not finish within"):
        run_isolated(smollm2_path, BenchConfig(test="pp512+tg512", reps=20, timeout_s=1.0))


def test_a_model_larger_than_free_memory_is_refused_before_loading(smollm2_path: Path, monkeypatch) -> None:
    import psutil

    class Tiny:
        available = 50 * 1024 * 1024

    monkeypatch.setattr(psutil, "virtual_memory", lambda: Tiny())
    with pytest.raises(
        BenchError, match=r"needs about 0\.18 GB \(file 0\.10 GB \+ 10% \+ 64 MB\), 0\.05 GB are available"
    ):
        run_isolated(smollm2_path, BenchConfig(test="tg4", reps=1))


@pytest.mark.model
def test_cli_quick_bench_prints_figures_and_stores_the_run(capsys, db: Path) -> None:
    """The issue's acceptance path: a quick JSON run with intervals, TTFT, RSS and roofline, stored."""
    code = main(["bench", "--model", SMOLLM2, "--quick", "--json", "--threads", "1"])
    out = capsys.readouterr().out
    assert code == 0
    result = json.loads(out)
    for metric in ("prefill_tok_s", "decode_tok_s", "ttft_ms"):
        summary = result["metrics"][metric]
        assert summary["n"] == 3 and summary["ci95_low"] <= summary["mean"] <= summary["ci95_high"]
    assert result["peak_rss_bytes"] > 0 and 0 < result["roofline"]["efficiency"] < 1.5
    con = duckdb.connect(str(db), read_only=True)
    runs = con.execute("SELECT run_id, test, model_sha256, fingerprint FROM bench_runs").fetchall()
    samples = con.execute("SELECT count(*) FROM bench_samples WHERE metric = 'decode_tok_s'").fetchall()[0][0]
    con.close()
    assert runs == [(result["run_id"], "pp64+tg32", result["model"]["sha256"], result["fingerprint"])]
    assert samples == 3


@pytest.mark.model
def test_cli_truncated_model_exits_2_and_stores_nothing(capsys, db: Path, truncated_gguf: Path) -> None:
    code = main(["bench", "--model", str(truncated_gguf), "--quick"])
    err = capsys.readouterr().err
    assert code == 2 and "truncated" in err and str(truncated_gguf) in err
    assert (
        not db.exists()
        or duckdb.connect(str(db), read_only=True).execute("SELECT count(*) FROM bench_runs").fetchall()[0][0] == 0
    )


def test_sweep_grid_is_the_cartesian_product_with_typed_values() -> None:
    from bench.runner import parse_sweep, sweep_configs

    axes = parse_sweep(["threads=1,2", "flash_attn=0,1", "type_k=q8_0"])
    configs = sweep_configs(BenchConfig(test="tg8"), axes)
    assert [(c.threads, c.flash_attn, c.type_k, c.type_v) for c in configs] == [
        (1, "off", "q8_0", "q8_0"),
        (1, "on", "q8_0", "q8_0"),
        (2, "off", "q8_0", "q8_0"),
        (2, "on", "q8_0", "q8_0"),
    ]


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        (["colour=red"], "cannot sweep colour"),
        (["threads=two"], "not a whole number"),
        (["threads"], "AXIS=V1,V2"),
        (["flash_attn=maybe"], "flash_attn must be one of auto, on, off"),
        (["test=pp0x"], "not like pp512"),
    ],
)
def test_bad_sweeps_are_rejected(specs: list[str], message: str) -> None:
    from bench.runner import parse_sweep, sweep_configs

    with pytest.raises(ValueError, match=message):
        sweep_configs(BenchConfig(test="tg8"), parse_sweep(specs))


def test_concurrent_workers_give_per_request_samples_and_aggregate_throughput(smollm2_path: Path) -> None:
    raw = run_isolated(smollm2_path, BenchConfig(test="pp16+tg8", reps=2, threads=1, concurrency=2))
    assert len(raw.samples["decode_tok_s"]) == 4  # 2 workers x 2 repetitions, one sample per request
    assert len(raw.samples["aggregate_gen_tok_s"]) == 1 and raw.samples["aggregate_gen_tok_s"][0] > 0
    assert len(raw.inter_token_ms) == 2 * 2 * 8


@pytest.mark.slow
@pytest.mark.model
def test_cli_sweep_stores_every_point_under_one_sweep_id(capsys, db: Path) -> None:
    code = main(["bench", "--model", SMOLLM2, "--test", "tg8", "--reps", "1", "--sweep", "threads=1,2", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and [p["threads"] for p in out["points"]] == [1, 2]
    con = duckdb.connect(str(db), read_only=True)
    stored = con.execute("SELECT count(*), count(DISTINCT sweep_id), min(sweep_id) FROM bench_runs").fetchall()[0]
    itl = con.execute("SELECT count(*) FROM bench_samples WHERE metric = 'inter_token_ms'").fetchall()[0][0]
    con.close()
    assert stored == (2, 1, out["sweep_id"]) and itl == 2 * 8


@pytest.mark.model
def test_cli_export_import_and_compare_across_databases(capsys, db: Path, tmp_path: Path) -> None:
    assert main(["bench", "--model", SMOLLM2, "--test", "tg4", "--reps", "1", "--threads", "1"]) == 0
    exported = tmp_path / "runs.json"
    other = tmp_path / "gpu-server.duckdb"
    capsys.readouterr()
    assert main(["bench", "export", str(exported)]) == 0
    assert main(["--db", str(other), "bench", "import", str(exported)]) == 0
    assert main(["--db", str(other), "bench", "import", str(exported)]) == 0
    out = capsys.readouterr().out
    assert "imported 1 run(s)" in out and "imported 0 run(s)" in out and "all already stored" in out
    assert main(["--db", str(other), "bench", "compare", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["source"] == "imported" and row["test"] == "tg4" and row["decode_mean"] > 0


def test_cli_bench_without_model_or_file_exits_2(capsys) -> None:
    assert main(["bench"]) == 2 and "needs --model" in capsys.readouterr().err
    assert main(["bench", "export"]) == 2 and "needs a FILE" in capsys.readouterr().err


def test_energy_is_estimated_only_from_a_given_wattage_and_says_so(smollm2_path: Path) -> None:
    """This machine has no readable energy counter; with --watts the figure is labelled estimated."""
    from bench.energy import available_counters

    raw = run_isolated(smollm2_path, BenchConfig(test="tg8", reps=1, threads=1, watts_estimate=30.0))
    if available_counters()[0] == "none":
        assert raw.energy["source"] == "estimated" and "30" in raw.energy["note"]
        assert raw.energy["joules"] == pytest.approx(30.0 * raw.energy["seconds"], rel=1e-6)
    else:
        assert raw.energy["source"] == "measured"
    assert raw.energy["joules_per_token"] == pytest.approx(raw.energy["joules"] / 8)
    plain = run_isolated(smollm2_path, BenchConfig(test="tg8", reps=1, threads=1))
    assert plain.energy["source"] in ("measured", "unavailable")
    if plain.energy["source"] == "unavailable":
        assert plain.energy["joules_per_token"] is None


def test_watts_estimate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive number of watts"):
        BenchConfig(watts_estimate=0)
