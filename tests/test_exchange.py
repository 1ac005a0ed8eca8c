"""Exchanging benchmark runs between machines: export, import (all or nothing, idempotent), llama-bench JSON,
compare."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

import bench.exchange as exchange
from bench.exchange import compare, export_runs, import_llama_bench, import_runs, write_export
from bench.results import save_run
from bench.runner import BenchConfig, RawRun
from bench.stats import summarise
from slmlab.models import GGUFMetadata
from tests.conftest import snapshot

CENSUS = {"cpu_model": "Test CPU 8-Core", "physical_cores": 8, "gpus": [], "llama_system_info": "AVX2 = 1"}

# From llama.cpp's tools/llama-bench/README.md ("JSON" output example; ggml-org/llama.cpp), two records.
_LLAMA_BENCH_COMMON = {
    "build_commit": "8cf427ff",
    "build_number": 5163,
    "cpu_info": "AMD Ryzen 7 7800X3D 8-Core Processor",
    "gpu_info": "NVIDIA GeForce RTX 4080",
    "backends": "CUDA",
    "model_filename": "models/Qwen2.5-7B-Instruct-Q4_K_M.gguf",
    "model_type": "qwen2 7B Q4_K - Medium",
    "model_size": 4677120000,
    "model_n_params": 7615616512,
    "n_batch": 2048,
    "n_ubatch": 512,
    "n_threads": 8,
    "cpu_mask": "0x0",
    "cpu_strict": False,
    "poll": 50,
    "type_k": "f16",
    "type_v": "f16",
    "n_gpu_layers": -1,
    "n_cpu_moe": 0,
    "split_mode": "layer",
    "main_gpu": 0,
    "no_kv_offload": False,
    "flash_attn": -1,
    "devices": "auto",
    "tensor_split": "0.00",
    "tensor_buft_overrides": "none",
    "use_mmap": True,
    "use_direct_io": False,
    "embeddings": False,
    "no_op_offload": 0,
    "no_host": False,
    "repack": True,
    "fit_target": 0,
    "fit_min_ctx": 0,
    "n_depth": 0,
}
LLAMA_BENCH = [
    _LLAMA_BENCH_COMMON
    | {
        "n_prompt": 512,
        "n_gen": 0,
        "test_time": "2025-04-24T11:58:50Z",
        "avg_ns": 72135640,
        "stddev_ns": 1453752,
        "avg_ts": 7100.002165,
        "stddev_ts": 140.341520,
        "samples_ns": [74601900, 71632900, 71745200, 71952700, 70745500],
        "samples_ts": [6863.1, 7147.55, 7136.37, 7115.79, 7237.21],
    },
    _LLAMA_BENCH_COMMON
    | {
        "n_prompt": 0,
        "n_gen": 128,
        "test_time": "2025-04-24T11:58:51Z",
        "avg_ns": 1076767880,
        "stddev_ns": 9449585,
        "avg_ts": 118.881588,
        "stddev_ts": 1.041811,
        "samples_ns": [1075361300, 1065089400, 1071761200, 1081934900, 1089692600],
        "samples_ts": [119.03, 120.178, 119.43, 118.307, 117.464],
    },
]


def _model(name: str = "Tiny Test 1M") -> GGUFMetadata:
    return GGUFMetadata(
        path="/models/tiny.gguf",
        file_bytes=1_000_000,
        sha256="ab" * 32,
        architecture="llama",
        name=name,
        parameters=1_000_000,
        tensor_bytes=900_000,
        quantization="Q4_1",
        context_length=2048,
        n_layer=4,
        n_embd=64,
        n_head=4,
        n_head_kv=2,
        head_dim_k=None,
        head_dim_v=None,
        chat_template=True,
    )


BUSY = {"contended": True, "others_cores": 1.4, "load_1m": 3.2, "steal_share": 0.0, "gpu_other_processes": 0}


def _raw(samples: dict[str, list[float]]) -> RawRun:
    return RawRun(
        load_s=0.25,
        samples=samples,
        inter_token_ms=[10.0, 11.0, 12.0],
        perf=[],
        peak_rss_bytes=123_456,
        versions={"llama_cpp_python": "0.3.9"},
        summaries={k: summarise(v) for k, v in samples.items()},
        itl_percentiles_ms={"p50": 11.0, "p95": 11.9, "p99": 11.98},
    )


def _measured(db: Path) -> list[int]:
    """Two stored runs, as `slmlab bench` would save them, without running a model."""
    both = _raw(
        {"prefill_tok_s": [400.0, 410.0, 405.0], "decode_tok_s": [50.0, 52.0, 51.0], "ttft_ms": [80.0, 79.0, 81.0]}
    )
    decode = replace(_raw({"decode_tok_s": [48.5, 49.5]}), contention=BUSY)
    roofline = {"ceiling_tok_s": 90.0, "efficiency": 0.56}
    return [
        save_run(
            db,
            _model(),
            BenchConfig(test="pp64+tg16", reps=3, threads=4),
            CENSUS,
            "f1f1f1f1f1f1f1f1",
            both,
            roofline,
            sweep_id="sweep-7",
        ),
        save_run(db, _model(), BenchConfig(test="tg16", reps=2, threads=4), CENSUS, "f1f1f1f1f1f1f1f1", decode, None),
    ]


def _write(path: Path, content: object) -> Path:
    path.write_text(json.dumps(content), encoding="utf-8")
    return path


@pytest.fixture
def exported(db: Path, tmp_path: Path) -> Path:
    _measured(db)
    path = tmp_path / "laptop.json"
    assert write_export(db, path) == 2
    return path


def _samples(db: Path) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(
            "SELECT r.started_at, s.rep, s.metric, s.value FROM bench_samples s "
            "JOIN bench_runs r USING (run_id) ORDER BY ALL"
        ).fetchall()
    finally:
        con.close()


def test_export_document_has_every_column_parsed_and_the_samples(db: Path, exported: Path) -> None:
    document = json.loads(exported.read_text(encoding="utf-8"))
    assert (document["format"], document["version"]) == ("slmlab-bench", 1)
    assert datetime.fromisoformat(document["exported_at"]).tzinfo is not None
    first, second = document["runs"]
    assert {"run_id", "source", "model", "roofline", "load_s", "peak_rss_bytes", "samples"} <= first.keys()
    assert first["config"]["threads"] == 4 and first["census"] == CENSUS and first["roofline"]["ceiling_tok_s"] == 90.0
    assert first["summary"]["decode_tok_s"]["mean"] == pytest.approx(51.0) and second["roofline"] is None
    assert [s["value"] for s in first["samples"] if s["metric"] == "decode_tok_s"] == [50.0, 52.0, 51.0]
    assert len(first["samples"]) == 12 and len(second["samples"]) == 5  # + 3 inter-token latencies each
    assert (first["sweep_id"], second["sweep_id"]) == ("sweep-7", None)
    only = export_runs(db, [second["run_id"]])["runs"]
    assert [run["test"] for run in only] == ["tg16"]
    with pytest.raises(ValueError, match="no such benchmark run.*999"):
        export_runs(db, [999])


def test_import_into_another_database_preserves_runs_and_samples(db: Path, exported: Path, tmp_path: Path) -> None:
    target = tmp_path / "gpu-server.duckdb"
    new_ids = import_runs(target, exported)
    assert len(new_ids) == 2
    original, copied = export_runs(db)["runs"], export_runs(target)["runs"]
    assert [run["run_id"] for run in copied] == new_ids
    assert {run["source"] for run in original} == {"measured"} and {run["source"] for run in copied} == {"imported"}
    for before, after in zip(original, copied):
        for key in (
            "started_at",
            "summary",
            "config",
            "census",
            "versions",
            "model",
            "roofline",
            "fingerprint",
            "model_sha256",
            "test",
            "load_s",
            "peak_rss_bytes",
            "sweep_id",
            "samples",
            "contended",
            "contention",
        ):
            assert after[key] == before[key], key
    assert [run["contended"] for run in copied] == [None, True]  # a contended run stays marked on any machine
    assert copied[1]["contention"]["others_cores"] == 1.4
    assert _samples(target) == _samples(db) and len(_samples(target)) == 17


def test_reimport_is_a_no_op(db: Path, exported: Path, tmp_path: Path) -> None:
    target = tmp_path / "gpu-server.duckdb"
    assert len(import_runs(target, exported)) == 2
    before = snapshot(target)
    assert import_runs(target, exported) == []
    assert snapshot(target) == before
    assert import_runs(db, exported) == []  # back into the machine it came from: already there


def _missing_summary(doc: dict) -> None:
    del doc["runs"][1]["summary"]


def _wrong_format(doc: dict) -> None:
    doc["format"] = "llama-bench"


def _text_sample(doc: dict) -> None:
    doc["runs"][0]["samples"][2]["value"] = "fast"


def _newer_version(doc: dict) -> None:
    doc["version"] = 2


def _bad_time(doc: dict) -> None:
    doc["runs"][1]["started_at"] = "yesterday"


@pytest.mark.parametrize(
    ("corrupt", "fragments"),
    [
        (_missing_summary, ["run 1", "'summary'", "missing"]),
        (_wrong_format, ["not an slmlab benchmark export", "'llama-bench'"]),
        (_text_sample, ["run 0, samples[2]", "'fast' is not a number"]),
        (_newer_version, ["version 2"]),
        (_bad_time, ["run 1", "'started_at'", "'yesterday'"]),
    ],
)
def test_corrupted_export_is_refused_and_changes_nothing(exported: Path, tmp_path: Path, corrupt, fragments) -> None:
    target = tmp_path / "gpu-server.duckdb"
    import_llama_bench(target, _write(tmp_path / "bench.json", LLAMA_BENCH))
    document = json.loads(exported.read_text(encoding="utf-8"))
    corrupt(document)
    bad = _write(tmp_path / "damaged.json", document)
    before = snapshot(target)
    with pytest.raises(ValueError) as error:
        import_runs(target, bad)
    for fragment in ["damaged.json", *fragments]:
        assert fragment in str(error.value)
    assert snapshot(target) == before


def test_a_failure_mid_import_rolls_back_every_run(exported: Path, tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "gpu-server.duckdb"
    import_llama_bench(target, _write(tmp_path / "bench.json", LLAMA_BENCH))
    before = snapshot(target)
    real_insert, calls = exchange._insert, []

    def failing_second(con, row, samples):
        calls.append(row["test"])
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return real_insert(con, row, samples)

    monkeypatch.setattr(exchange, "_insert", failing_second)
    with pytest.raises(RuntimeError, match="disk full"):
        import_runs(target, exported)
    assert len(calls) == 2 and snapshot(target) == before


def test_llama_bench_json_imports_both_tests(db: Path, tmp_path: Path) -> None:
    ids = import_llama_bench(db, _write(tmp_path / "rtx4080.json", LLAMA_BENCH))
    assert len(ids) == 2
    pp, tg = export_runs(db)["runs"]
    assert (pp["test"], tg["test"]) == ("pp512", "tg128") and {pp["source"], tg["source"]} == {"imported"}
    assert (
        pp["started_at"] == "2025-04-24T11:58:50"
        and pp["model_sha256"] == "unknown:models/Qwen2.5-7B-Instruct-Q4_K_M.gguf"
    )
    assert pp["census"] == {
        "cpu_model": "AMD Ryzen 7 7800X3D 8-Core Processor",
        "gpus": "NVIDIA GeForce RTX 4080",
        "backends": "CUDA",
        "source": "llama-bench",
    }
    assert pp["versions"] == {"llama_cpp_build": "8cf427ff", "build_number": 5163}
    assert pp["fingerprint"] == tg["fingerprint"] and len(pp["fingerprint"]) == 16
    assert pp["config"] | {} == {
        "n_batch": 2048,
        "n_ubatch": 512,
        "n_threads": 8,
        "type_k": "f16",
        "type_v": "f16",
        "n_gpu_layers": -1,
        "flash_attn": -1,
        "n_prompt": 512,
        "n_gen": 0,
        "n_depth": 0,
        "reps": 5,
    }
    prefill, decode = pp["summary"]["prefill_tok_s"], tg["summary"]["decode_tok_s"]
    assert (prefill["mean"], prefill["sd"], decode["mean"], decode["sd"]) == (
        7100.002165,
        140.341520,
        118.881588,
        1.041811,
    )
    expected = summarise(LLAMA_BENCH[1]["samples_ts"])
    assert decode["n"] == 5 and decode["ci95_low"] == pytest.approx(expected.ci95_low)
    assert decode["ci95_low"] < decode["mean"] < decode["ci95_high"] and "decode_tok_s" not in pp["summary"]
    assert [s["value"] for s in tg["samples"]] == LLAMA_BENCH[1]["samples_ts"]
    assert {s["metric"] for s in pp["samples"]} == {"prefill_tok_s"}
    assert import_llama_bench(db, tmp_path / "rtx4080.json") == []


def test_llama_bench_older_records_and_combined_tests(db: Path, tmp_path: Path) -> None:
    old = copy.deepcopy(LLAMA_BENCH[1])
    del old["n_depth"], old["samples_ts"], old["samples_ns"]
    combined = LLAMA_BENCH[0] | {"n_gen": 128, "test_time": "2025-04-24T12:00:00Z"}
    lines = "\n".join(json.dumps(record) for record in (old, combined))  # -o jsonl
    (tmp_path / "bench.jsonl").write_text(lines, encoding="utf-8")
    assert len(import_llama_bench(db, tmp_path / "bench.jsonl")) == 2
    tg, both = export_runs(db)["runs"]
    assert tg["summary"]["decode_tok_s"] == {
        "n": None,
        "mean": 118.881588,
        "sd": 1.041811,
        "ci95_low": None,
        "ci95_high": None,
    }
    assert "n_depth" not in tg["config"] and tg["samples"] == [] and both["test"] == "pp512+tg128"


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        ({"results": []}, ["expected a JSON array"]),
        (
            [LLAMA_BENCH[0], {k: v for k, v in LLAMA_BENCH[1].items() if k != "avg_ts"}],
            ["record 1", "'avg_ts'", "missing"],
        ),
        ([LLAMA_BENCH[0] | {"samples_ts": [1.0, "fast"]}], ["record 0", "samples_ts[1]", "not a number"]),
        ([LLAMA_BENCH[1] | {"n_gen": 0}], ["record 0", "n_prompt and n_gen"]),
        ([LLAMA_BENCH[1] | {"test_time": "soon"}], ["record 0", "'test_time'", "'soon'"]),
        ('[{"n_prompt": 512,', ["not valid JSON"]),
    ],
)
def test_malformed_llama_bench_is_refused_and_changes_nothing(db: Path, tmp_path: Path, content, fragments) -> None:
    _measured(db)
    path = tmp_path / "broken-bench.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    before = snapshot(db)
    with pytest.raises(ValueError) as error:
        import_llama_bench(db, path)
    for fragment in ["broken-bench.json", *fragments]:
        assert fragment in str(error.value)
    assert snapshot(db) == before


def test_compare_puts_both_machines_side_by_side(db: Path, exported: Path, tmp_path: Path) -> None:
    target = tmp_path / "gpu-server.duckdb"
    import_llama_bench(target, _write(tmp_path / "rtx4080.json", LLAMA_BENCH))
    import_runs(target, exported)
    rows = compare(target)
    assert [(r["source"], r["test"], r["cpu_model"], r["threads"]) for r in rows] == [
        ("imported", "pp512", "AMD Ryzen 7 7800X3D 8-Core Processor", 8),
        ("imported", "tg128", "AMD Ryzen 7 7800X3D 8-Core Processor", 8),
        ("imported", "pp64+tg16", "Test CPU 8-Core", 4),
        ("imported", "tg16", "Test CPU 8-Core", 4),
    ]
    assert len({r["fingerprint"] for r in rows}) == 2 and [r["n_gpu_layers"] for r in rows] == [-1, -1, 0, 0]
    assert rows[0]["prefill_mean"] == 7100.002165 and rows[0]["decode_mean"] is None
    assert (
        rows[1]["decode_mean"] == 118.881588 and rows[1]["decode_ci95_low"] < 118.881588 < rows[1]["decode_ci95_high"]
    )
    assert rows[2]["decode_mean"] == pytest.approx(51.0) and rows[2]["prefill_mean"] == pytest.approx(405.0)
    assert rows[3]["decode_ci95_low"] == pytest.approx(summarise([48.5, 49.5]).ci95_low)
    assert [r["run_id"] for r in compare(db)] == [1, 2] and {r["source"] for r in compare(db)} == {"measured"}
    assert [r["contended"] for r in rows] == [None, None, None, True]
    assert [r["model_name"] for r in rows[2:]] == ["tiny", "tiny"]  # one name: the file's, not the header's
