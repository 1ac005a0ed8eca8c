"""The `slmlab` CLI end to end, in-process (fast) and as a real console script (the acceptance path)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli.main import build_parser, main
from slmlab import store
from tests.conftest import AZURE_CONV, ROUTELLM, SAMPLES


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_console_script_imports_the_azure_conversation_trace(tmp_path: Path) -> None:
    """The issue's acceptance path, through the installed `slmlab` entry point and a brand-new database."""
    exe = Path(sys.executable).with_name("slmlab")
    assert exe.exists(), f"the slmlab console script is not installed next to {sys.executable} (run scripts/setup.sh)"
    db = tmp_path / "new.duckdb"
    imported = subprocess.run([exe, "--db", str(db), "import", str(AZURE_CONV)], capture_output=True, text=True)
    assert imported.returncode == 0, imported.stderr
    assert "imported 19,366 requests" in imported.stdout
    listed = subprocess.run([exe, "--db", str(db), "traces", "--json"], capture_output=True, text=True, check=True)
    traces = json.loads(listed.stdout)
    assert [(t["name"], t["rows"]) for t in traces] == [("azure-llm-inference-2023-conv", 19_366)]


def test_import_then_traces_json_has_the_statistics(capsys, db: Path) -> None:
    code, out, _ = run_cli(capsys, "import", str(AZURE_CONV), "--json")
    assert code == 0 and json.loads(out)["rows"] == 19_366
    code, out, _ = run_cli(capsys, "traces", "--json")
    (trace,) = json.loads(out)
    assert trace["rows"] == 19_366 and trace["format"] == "azure"
    assert trace["time_span_s"] == pytest.approx(3501.72, abs=0.01)
    assert trace["arrival_rate_per_s"] == pytest.approx(19_366 / 3501.72, rel=1e-4)
    assert trace["input_tokens"]["max"] == 14_050 and trace["output_tokens"]["max"] == 1_000
    assert sum(trace["task_mix"].values()) == pytest.approx(1.0, abs=1e-3)
    assert trace["labelling"]["method"] == "synthetic"


def test_second_import_says_already_imported(capsys, db: Path) -> None:
    run_cli(capsys, "import", str(AZURE_CONV))
    code, out, _ = run_cli(capsys, "import", str(AZURE_CONV))
    assert code == 0 and "already imported" in out and "nothing changed" in out


def test_human_traces_listing_flags_synthetic_labels(capsys, db: Path) -> None:
    run_cli(capsys, "import", str(SAMPLES / "mooncake_trace_head.jsonl"), "--name", "mooncake")
    code, out, _ = run_cli(capsys, "traces")
    assert code == 0 and "mooncake  (id 1, mooncake, workload)" in out and "SYNTHETIC" in out


def test_traces_on_an_empty_database_says_how_to_start(capsys, db: Path) -> None:
    code, out, _ = run_cli(capsys, "traces")
    assert code == 0 and "slmlab import FILE" in out


def test_unknown_trace_name_exits_2(capsys, db: Path) -> None:
    code, _, err = run_cli(capsys, "traces", "nope")
    assert code == 2 and "no trace named 'nope'" in err


def test_generic_import_with_map_and_label_mix_none(capsys, db: Path, tmp_path: Path) -> None:
    source = tmp_path / "mine.csv"
    source.write_text("ts,prompt_len,gen_len,extra\n0.0,10,5,a\n0.5,20,6,b\n")
    code, out, err = run_cli(
        capsys,
        "import",
        str(source),
        "--map",
        "arrival=ts,input_tokens=prompt_len",
        "--map",
        "output_tokens=gen_len",
        "--ignore",
        "extra",
        "--label-mix",
        "none",
        "--json",
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["format"] == "generic" and result["rows"] == 2 and result["labelling"]["method"] == "none"


def test_bad_map_syntax_exits_2(capsys, db: Path, tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "import", str(AZURE_CONV), "--map", "arrival")
    assert code == 2 and "FIELD=COLUMN" in err


def test_name_clash_exits_2(capsys, db: Path) -> None:
    run_cli(capsys, "import", str(SAMPLES / "mooncake_trace_head.jsonl"), "--name", "x")
    code, _, err = run_cli(capsys, "import", str(ROUTELLM / "gsm8k_responses.csv"), "--name", "x")
    assert code == 2 and "already exists" in err


def test_defaults_imports_the_embedded_workload_once(capsys, db: Path) -> None:
    code, out, _ = run_cli(capsys, "defaults")
    assert code == 0 and out.count("imported:") == 2
    code, out, _ = run_cli(capsys, "defaults")
    assert out.count("already present") == 2


def test_db_command_reports_migrations_and_counts(capsys, db: Path) -> None:
    run_cli(capsys, "import", str(SAMPLES / "mooncake_trace_head.jsonl"))
    _, out, _ = run_cli(capsys, "db", "--json")
    info = json.loads(out)
    assert info["migrations"] == [m.__name__ for m in store.MIGRATIONS] and info["rows"]["requests"] == 206


def test_models_lists_both_shipped_models(capsys) -> None:
    code, out, _ = run_cli(capsys, "models", "--json")
    models = {m["name"]: m for m in json.loads(out)}
    assert code == 0 and set(models) == {"SmolLM2-135M-Instruct Q4_1", "Gemma 3 270M Q4_K_M"}
    assert all(m["installed"] for m in models.values()), models


def test_dashboard_binds_to_localhost_by_default() -> None:
    from app.cli.admin import dashboard_command
    from app.cli.main import build_parser

    args = build_parser().parse_args(["dashboard"])
    assert args.host == "127.0.0.1"
    command = dashboard_command(args)
    assert command[command.index("--server.address") + 1] == "127.0.0.1"
    assert command[command.index("--server.maxUploadSize") + 1] == "200"  # uploads are capped
    assert command[command.index("--client.toolbarMode") + 1] == "minimal"  # no "Deploy" to a public cloud
    small = dashboard_command(build_parser().parse_args(["dashboard", "--max-upload-mb", "5"]))
    assert small[small.index("--server.maxUploadSize") + 1] == "5"


def test_dashboard_warm_up_starts_once_the_server_answers_and_stores_the_defaults(tmp_path: Path, monkeypatch) -> None:
    import socket

    from app import warmup

    db = tmp_path / "warm.duckdb"
    monkeypatch.setenv("SLMLAB_DB", str(db))
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        port = listening.getsockname()[1]
        assert not warmup._wait_until_serving("127.0.0.1", port, timeout_s=0.3)  # bound but not listening yet
        assert not db.exists()
        listening.listen()
        thread = warmup.warm_when_serving("127.0.0.1", port, defaults=True)
        thread.join(timeout=120)
    assert not thread.is_alive()
    with store.connect(db, read_only=True) as con:  # the first page will find the embedded workload stored
        assert con.execute("SELECT count(*) FROM traces").fetchone()[0] == 2


def test_remove_deletes_a_trace_and_its_outcomes(capsys, db: Path) -> None:
    run_cli(capsys, "import", str(ROUTELLM / "gsm8k_responses.csv"))
    code, out, _ = run_cli(capsys, "remove", "gsm8k_responses")
    assert code == 0 and "1,319 requests" in out
    code, out, _ = run_cli(capsys, "db", "--json")
    assert json.loads(out)["rows"] == dict.fromkeys(
        (
            "traces",
            "requests",
            "outcomes",
            "bench_runs",
            "eval_runs",
            "sim_runs",
            "sim_requests",
            "sim_points",
            "scenarios",
        ),
        0,
    )
    code, _, err = run_cli(capsys, "remove", "gsm8k_responses")
    assert code == 2 and "no trace named" in err


def test_a_file_that_is_not_a_database_exits_3(capsys, tmp_path: Path) -> None:
    bogus = tmp_path / "notes.duckdb"
    bogus.write_text("these are my notes, not a database\n" * 100)
    code, _, err = run_cli(capsys, "--db", str(bogus), "traces")
    assert code == 3 and "cannot open the database" in err and str(bogus) in err
    assert bogus.read_text().startswith("these are my notes")


def test_db_option_works_before_or_after_the_subcommand(capsys, tmp_path: Path) -> None:
    after = tmp_path / "after.duckdb"
    code, _, err = run_cli(capsys, "import", str(SAMPLES / "mooncake_trace_head.jsonl"), "--db", str(after))
    assert code == 0, err
    code, out, _ = run_cli(capsys, "--db", str(after), "traces", "--json")
    assert [t["rows"] for t in json.loads(out)] == [206]


@pytest.mark.model
def test_models_folder_and_metadata(capsys, tmp_path: Path) -> None:
    from slmlab.models import resolve_model

    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "small.gguf").write_bytes(resolve_model("smollm2-135m").read_bytes())
    (folder / "broken.gguf").write_bytes(b"GGUF" + b"\0" * 64)
    code, out, _ = run_cli(capsys, "models", "--folder", str(folder), "--metadata", "--json")
    entries = {Path(e["path"]).name: e for e in json.loads(out) if e["path"]}
    assert code == 0
    assert entries["small.gguf"]["metadata"]["quantization"] == "Q4_1"
    assert "not a readable GGUF file" in entries["broken.gguf"]["metadata_error"]
    assert (tmp_path / "cache" / "gguf-metadata.json").exists()  # parsed once, then read from the cache


def test_the_dashboard_command_line_loads_no_heavy_library() -> None:
    """`slmlab dashboard` builds only its own file's parser, so serving starts without DuckDB, numpy or polars."""
    code = (
        "import sys; from app.cli.main import build_parser, _first_positional; from app.cli import admin; "
        "assert _first_positional(['--db', 'x.duckdb', 'dashboard', '--port', '9']) in admin.COMMANDS; "
        "args = build_parser(('admin',)).parse_args(['--db', 'x.duckdb', 'dashboard', '--port', '9']); "
        "assert args.port == 9 and args.command == 'dashboard'; "
        "print(sorted(m for m in ('duckdb', 'numpy', 'polars') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
    from app.cli import admin

    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert set(admin.COMMANDS) <= set(commands) and "import" in commands


def test_help_renders_for_the_command_and_every_subcommand(capsys) -> None:
    """Every help text is printable (a bare % in one once broke `slmlab --help` for all)."""
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for argv in (["--help"], *([name, "--help"] for name in commands)):
        with pytest.raises(SystemExit) as exit_:
            parser.parse_args(argv)
        assert exit_.value.code == 0
    assert "claim" in capsys.readouterr().out


def test_json_errors_are_json_on_stdout_with_the_exit_code_unchanged(db: Path, capsys) -> None:
    from app.cli.main import main as cli

    assert cli(["simulate", "--trace", "nope", "--json"]) == 2
    captured = capsys.readouterr()
    error = json.loads(captured.out)["error"]
    assert "no trace named 'nope'" in error["message"] and error["exit_code"] == 2
    assert "no trace named 'nope'" in captured.err  # people still read it on stderr
