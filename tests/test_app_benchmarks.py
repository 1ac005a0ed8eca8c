"""The Hardware & benchmarks page through AppTest, with real runs of the shipped SmolLM2 model."""

from __future__ import annotations

import time
from pathlib import Path

import duckdb
import pytest
from streamlit.testing.v1 import AppTest

from app.cli.main import main
from slmlab.paths import PROJECT_ROOT

MAIN = str(PROJECT_ROOT / "app" / "main.py")


def open_page(db: Path) -> AppTest:
    at = AppTest.from_file(MAIN, default_timeout=120)
    # open the page directly: the Home page would replay the default trace first
    at.switch_page("app_pages/benchmarks.py").run()
    assert not at.exception, at.exception
    return at


def test_census_card_and_empty_state(db: Path) -> None:
    at = open_page(db)
    assert at.title[0].value == "Hardware & benchmarks"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["CPU"] and metrics["Memory"].endswith("GiB") and metrics["llama.cpp GPU offload"] in ("yes", "no")
    assert any("NPUs:" in md.value and "Energy counters:" in md.value for md in at.markdown)
    assert any("No benchmark runs yet" in i.value for i in at.info)


@pytest.mark.slow
@pytest.mark.model
def test_stored_runs_are_charted(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "bench",
                "--model",
                "smollm2-135m",
                "--test",
                "pp16+tg8",
                "--reps",
                "2",
                "--threads",
                "1",
                "--sweep",
                "concurrency=1,2",
            ]
        )
        == 0
    )
    capsys.readouterr()
    at = open_page(db)
    charts = at.get("plotly_chart")
    assert len(charts) >= 5  # decode and prefill with intervals, roofline, latency histogram, sweep heat map, capacity
    assert not at.info or all("No benchmark runs" not in i.value for i in at.info)


def test_a_benchmark_started_on_the_page_runs_in_the_background_and_is_stored(db: Path) -> None:
    at = open_page(db)
    [s for s in at.selectbox if s.label == "Test"][0].select("pp64+tg32")
    [n for n in at.number_input if n.label == "Repetitions"][0].set_value(1)
    [n for n in at.number_input if n.label == "Threads"][0].set_value(1)
    [b for b in at.button if b.label == "Run benchmark"][0].click().run()
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not at.success and not at.error:
        time.sleep(1.0)
        at.run()
    assert not at.error, at.error[0].value
    assert any("Stored bench run 1" in s.value for s in at.success)
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT test FROM bench_runs").fetchall() == [("pp64+tg32",)]
    con.close()


def test_a_bad_model_path_on_the_page_is_an_error_not_a_crash(db: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"not a model")
    at = open_page(db)
    [s for s in at.selectbox if s.label == "Model"][0].select("Other .gguf file").run()
    [t for t in at.text_input if t.label == "Path to a .gguf file"][0].input(str(broken))
    [b for b in at.button if b.label == "Run benchmark"][0].click().run()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not at.error:
        time.sleep(0.5)
        at.run()
    assert not at.exception
    assert "not a GGUF file" in at.error[0].value and "Nothing was stored" in at.error[0].value


def test_batched_curve_latency_figures_and_contention_are_shown(db: Path) -> None:
    """A stored service curve is drawn against B; a contended run is warned about, with TTFT/load/RSS/ITL shown."""
    from bench.results import save_run
    from bench.runner import BenchConfig, RawRun
    from bench.stats import summarise
    from slmlab.service_curves import CurvePoint, CurveRun, save_service_curve
    from tests.conftest import tiny_gguf_metadata

    model = tiny_gguf_metadata()
    samples = {"decode_tok_s": [20.0, 22.0], "ttft_ms": [400.0, 420.0]}
    raw = RawRun(
        load_s=0.25,
        samples=samples,
        inter_token_ms=[45.0, 50.0, 60.0],
        perf=[],
        peak_rss_bytes=180_000_000,
        versions={},
        summaries={k: summarise(v) for k, v in samples.items()},
        itl_percentiles_ms={"p50": 50.0, "p95": 59.0, "p99": 59.8},
        contention={"contended": True, "reasons": ["other processes used 1.50 cores"]},
    )
    save_run(db, model, BenchConfig(test="pp16+tg8", threads=1), {"cpu_model": "test CPU"}, "fp", raw, None)
    run = CurveRun(
        model="tiny",
        machine="fp",
        n_threads=1,
        n_gpu_layers=0,
        pp=128,
        tg=128,
        kv_bytes_per_token=23_040,
        contended=False,
        wake=((0.3, 0.0125), (1.0, 0.02), (3.0, 0.0451)),
    )
    save_service_curve(
        run,
        [
            CurvePoint(1, 256, True, 90.0, 40.0, 0.025, 0.03, 1.4),
            CurvePoint(4, 1024, True, 100.0, 120.0, 0.033, 0.04, 5.1),
            CurvePoint(512, 131072, False),
        ],
        db=db,
    )
    at = open_page(db)
    assert any("1 run(s) were contended" in w.value for w in at.warning)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["TTFT"] == "410 ms" and metrics["Load time"] == "0.25 s" and metrics["Peak RSS"] == "180 MB"
    assert (metrics["ITL p50"], metrics["ITL p95"], metrics["ITL p99"]) == ("50.00 ms", "59.00 ms", "59.80 ms")
    titles = [c.proto.spec for c in at.get("plotly_chart")]
    assert any("aggregate decode and per-sequence latency against B" in t for t in titles)
    assert any("KV cache ran out past B = 4" in c.value for c in at.caption)
    # the wake cost the replay charges, in the CLI's words and figures
    assert any(
        "a lone 128-token prompt step took +12.5 ms after 0.3 s, +20.0 ms after 1 s, +45.1 ms after 3 s more" in c.value
        for c in at.caption
    )
