"""The warehouse: migrations upgrade old files in place, readers and a writer share the file, kills lose nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from perf.import_speed import generate_trace
from slmlab import store
from tests.conftest import AZURE_CODE, AZURE_CONV, SAMPLES


def test_fresh_database_records_every_migration(db: Path) -> None:
    with store.connect(db, read_only=True) as con:
        names = [row[0] for row in con.execute("SELECT name FROM _migrations ORDER BY name").fetchall()]
    assert names == [m.__name__ for m in store.MIGRATIONS]


def test_old_database_upgrades_in_place_without_losing_rows(tmp_path: Path) -> None:
    old = tmp_path / "old.duckdb"
    con = duckdb.connect(str(old))
    store.migrate(con, store.MIGRATIONS[:1])  # a database written before m002 existed
    con.execute(
        "INSERT INTO traces (name, source_file, format, content_hash, imported_at, row_count, kind, labelling, "
        "import_report) "
        "VALUES ('legacy', 'x.csv', 'azure', 'abc', now(), 2, 'workload', '{}', '{}')"
    )
    con.execute(
        "INSERT INTO requests (trace_id, request_id, seq, input_tokens, output_tokens) VALUES (1, '1', 0, 5, 6), "
        "(1, '2', 1, 7, 8)"
    )
    con.execute(
        "INSERT INTO outcomes (trace_id, request_id, model, correct, source) VALUES (1, '1', 'weak', true, 'recorded')"
    )
    columns = [row[0] for row in con.execute("DESCRIBE requests").fetchall()]
    con.close()
    assert "prefix_hash_ids" not in columns

    with store.connect(old) as con:
        applied = [row[0] for row in con.execute("SELECT name FROM _migrations ORDER BY name").fetchall()]
        rows = con.execute(
            "SELECT request_id, input_tokens, output_tokens, prefix_hash_ids FROM requests ORDER BY seq"
        ).fetchall()
        next_id = con.execute("SELECT nextval('trace_id_seq')").fetchall()[0][0]
        outcomes = con.execute("SELECT request_id, model, correct, eval_run_id, details FROM outcomes").fetchall()
    assert applied == sorted(m.__name__ for m in store.MIGRATIONS)
    assert rows == [("1", 5, 6, None), ("2", 7, 8, None)]
    assert outcomes == [("1", "weak", True, None, None)]
    assert next_id == 2


def test_a_failed_upgrade_applies_nothing(tmp_path: Path) -> None:
    """Pending migrations run in one transaction: one that fails leaves the file as it was."""
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    store.migrate(con, store.MIGRATIONS[:1])

    def m999_broken(con: duckdb.DuckDBPyConnection) -> None:
        con.execute("CREATE TABLE half_done (x INTEGER)")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        store.migrate(con, [*store.MIGRATIONS[:3], m999_broken])
    tables = {row[0] for row in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert store.applied_migrations(con) == ["m001_initial"]
    assert "bench_runs" not in tables and "half_done" not in tables
    con.close()


def test_migrate_twice_applies_nothing_new(db: Path) -> None:
    con = duckdb.connect(str(db))
    assert store.migrate(con) == [m.__name__ for m in store.MIGRATIONS]
    assert store.migrate(con) == []
    con.close()


# trace, id, seq, source row, arrival s, arrived at, tokens, labels, category, prompt, reference, prefixes
OLD_REQUESTS = [
    (
        1,
        "2",
        0,
        2,
        0.0,
        "2023-11-16 18:15:46.1234567",
        10,
        2,
        "open-ended",
        "public",
        "any",
        "insurance",
        20000.0,
        None,
        None,
        None,
        None,
    ),
    (
        1,
        "1",
        1,
        1,
        0.0000001,
        "2023-11-16 18:15:46.1234568",
        11,
        3,
        "open-ended",
        "public",
        "any",
        "insurance",
        20000.0,
        None,
        None,
        None,
        None,
    ),
    (
        1,
        "3",
        2,
        3,
        3600.5,
        "2023-11-16 19:15:46.6234567",
        12,
        4,
        "ticket-classification",
        "internal",
        "eu-only",
        "retail-banking",
        1500.0,
        None,
        None,
        None,
        None,
    ),
    (
        2,
        "mmlu_anatomy/1",
        0,
        1,
        None,
        None,
        None,
        None,
        "open-ended",
        None,
        None,
        None,
        None,
        "mmlu_anatomy",
        "What is...",
        "B",
        None,
    ),
    (2, "mmlu_anatomy/2", 1, 2, None, None, None, None, None, None, None, None, None, None, "Which...", "C", None),
    (3, "1", 0, 1, 0.0, None, 100, 5, None, None, None, None, None, None, None, None, [7, 8]),
    (3, "2", 1, 2, 1.25, None, 100, 5, None, None, None, None, None, None, None, None, None),
]
AS_TEXT = "SELECT * REPLACE (CAST(arrived_at AS VARCHAR) AS arrived_at) FROM requests ORDER BY trace_id, seq"


def test_narrow_request_tables_keep_every_value_of_the_old_table(tmp_path: Path) -> None:
    """m009 moves requests into three tables behind a view: every column of every row reads back as it was."""
    old = tmp_path / "m008.duckdb"
    con = duckdb.connect(str(old))
    store.migrate(con, store.MIGRATIONS[:8])
    for trace_id in (1, 2, 3):
        con.execute(
            "INSERT INTO traces (name, source_file, format, content_hash, imported_at, row_count, kind, labelling, "
            "import_report) VALUES (?, 'x', 'azure', ?, now(), 1, 'workload', '{}', '{}')",
            [f"t{trace_id}", f"h{trace_id}"],
        )
    con.executemany(f"INSERT INTO requests VALUES ({', '.join(['?'] * 17)})", OLD_REQUESTS)
    before = con.execute(AS_TEXT).fetchall()
    con.close()

    with store.connect(old, read_only=True) as con:
        after = con.execute(AS_TEXT).fetchall()
        stored = {
            table: con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
            for table in ("request_rows", "label_sets", "request_details")
        }
    assert after == before
    assert before[0][5] == "2023-11-16 18:15:46.1234567" and before[1][4] == 0.0000001
    assert stored == {"request_rows": 7, "label_sets": 5, "request_details": 3}  # own ids or text: trace 2; prefixes


def test_files_imported_before_blake3_keys_are_still_recognised(tmp_path: Path) -> None:
    """m010 marks the old sha256 keys; importing such a file again says so instead of storing it twice."""
    import hashlib

    from slmlab.traces.importer import import_trace

    old = tmp_path / "m009.duckdb"
    con = duckdb.connect(str(old))
    store.migrate(con, store.MIGRATIONS[:9])
    con.execute(
        "INSERT INTO traces (name, source_file, format, content_hash, imported_at, row_count, kind, labelling, "
        "import_report) VALUES ('code', 'x.csv', 'azure', ?, now(), 8819, 'workload', '{}', '{}')",
        [hashlib.sha256(AZURE_CODE.read_bytes()).hexdigest()],
    )
    con.close()
    again = import_trace(AZURE_CODE, db=old, name="code-again")
    fresh = import_trace(AZURE_CONV, db=old)
    with store.connect(old, read_only=True) as con:
        keys = dict(con.execute("SELECT name, content_hash FROM traces").fetchall())
    assert again.already_imported and again.name == "code"
    assert keys["code"].startswith("sha256:") and keys[fresh.name].startswith("blake3:")
    assert set(keys) == {"code", fresh.name}


def test_benchmark_runs_stored_under_the_gguf_header_name_take_the_one_model_name(tmp_path: Path) -> None:
    """m016: a run named by the header's free text ('Smollm2 135M 8k Lc100K Mix1 Ep2', as stored before) is renamed
    to the shipped key when its file is a shipped model, else to the file name; imported runs keep theirs."""
    from slmlab.models import resolve_model

    old = tmp_path / "m015.duckdb"
    con = duckdb.connect(str(old))
    store.migrate(con, store.MIGRATIONS[:14])
    assert store.MIGRATIONS[14].__name__ == "m016_one_model_name"
    for source, name, path in (
        ("measured", "Smollm2 135M 8k Lc100K Mix1 Ep2", str(resolve_model("smollm2-135m"))),
        ("measured", "Qwen2.5 0.5B Instruct", "/models/Qwen2.5-0.5B-Instruct-Q4_K_M.GGUF"),
        ("imported", "rtx-box-model", "C:\\models\\phi.gguf"),
    ):
        con.execute(
            "INSERT INTO bench_runs (started_at, source, model_name, model_path, model_sha256, model, test, config, "
            "fingerprint, census, versions, summary) VALUES (now(), ?, ?, ?, 's', '{}', 'tg16', '{}', 'f', '{}', "
            "'{}', '{}')",
            [source, name, path],
        )
    store.migrate(con)
    names = [name for (name,) in con.execute("SELECT model_name FROM bench_runs ORDER BY run_id").fetchall()]
    con.close()
    assert names == ["smollm2-135m", "Qwen2.5-0.5B-Instruct-Q4_K_M", "rtx-box-model"]


def test_recorded_calls_move_behind_views_with_every_row(tmp_path: Path) -> None:
    """m020: `request_records` and `request_details` become views over the tables they were (`*_base`) and the trace
    tables of streamed logs; rows stored before read back unchanged through them."""
    old = tmp_path / "m019.duckdb"
    con = duckdb.connect(str(old))
    upto = [m.__name__ for m in store.MIGRATIONS].index("m020_trace_call_tables")
    store.migrate(con, store.MIGRATIONS[:upto])
    con.execute("INSERT INTO request_records (trace_id, seq, model, cost_usd, tags) VALUES (3, 0, 'gpt-4o', 0.5, 'a')")
    con.execute("INSERT INTO request_details (trace_id, seq, request_id, prefix_hash_ids) VALUES (3, 0, 'r0', [1, 2])")
    before = {t: con.execute(f"SELECT * FROM {t}").fetchall() for t in ("request_records", "request_details")}
    assert store.migrate(con) == ["m020_trace_call_tables", *[m.__name__ for m in store.MIGRATIONS[upto + 1 :]]]
    views = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    after = {t: con.execute(f"SELECT * FROM {t}").fetchall() for t in before}
    base = con.execute(f"SELECT count(*) FROM {store.RECORDS_BASE}").fetchall()[0][0]
    con.close()
    assert after == before and base == 1
    assert {"request_records", "request_details"} <= views and not {"request_records", "request_details"} & tables
    assert {store.RECORDS_BASE, store.DETAILS_BASE, "call_moves"} <= tables


def test_an_arrival_trace_stores_numbers_only(db: Path) -> None:
    """A production trace writes one narrow row per request; its few label combinations are stored once."""
    from slmlab.traces.importer import import_trace

    import_trace(AZURE_CODE, db=db)
    with store.connect(db, read_only=True) as con:
        counts = con.execute(
            "SELECT (SELECT count(*) FROM request_rows), (SELECT count(*) FROM request_details), "
            "(SELECT count(*) FROM label_sets), (SELECT count(*) FROM (SELECT DISTINCT task, data_class, residency, "
            "tenant, latency_slo_ms FROM requests))"
        ).fetchall()[0]
        first = con.execute(
            "SELECT request_id, source_row, arrival_s, CAST(arrived_at AS VARCHAR) FROM requests WHERE seq = 0"
        ).fetchall()[0]
    rows, details, label_sets, combinations = counts
    assert rows == 8_819 and details == 0
    assert label_sets == combinations and 10 < label_sets <= 5 * 4 * 3 * 4
    assert first == ("1", 1, 0.0, "2023-11-16 18:17:03.97996")


def test_db_flag_beats_environment_beats_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from slmlab.paths import PROJECT_ROOT, resolve_db_path

    monkeypatch.setenv("SLMLAB_DB", str(tmp_path / "env.duckdb"))
    assert resolve_db_path(tmp_path / "flag.duckdb") == tmp_path / "flag.duckdb"
    assert resolve_db_path() == tmp_path / "env.duckdb"
    monkeypatch.delenv("SLMLAB_DB")
    assert resolve_db_path() == PROJECT_ROOT / "results" / "slmlab.duckdb"


READER = """
import sys, time, json, pathlib
from slmlab.traces.summary import list_traces
db, stop = sys.argv[1], pathlib.Path(sys.argv[2])
seen, errors, reads = set(), [], 0
end = time.monotonic() + 300
while time.monotonic() < end:
    done = stop.exists()  # read once more after the writers finished
    try:
        seen.update(s.name for s in list_traces(db))
        reads += 1
    except Exception as error:
        errors.append(repr(error))
    if done:
        break
    time.sleep(0.01)
print(json.dumps({"seen": sorted(seen), "errors": errors, "reads": reads}))
"""


@pytest.mark.slow
def test_dashboard_reads_while_the_cli_imports(db: Path, tmp_path: Path) -> None:
    """A reader process (the dashboard's code path) polls while CLI processes write; nobody fails."""
    import json

    big = tmp_path / "big.csv"
    generate_trace(big, 400_000)
    store.connect(db).__enter__()  # create the file first so the reader can open it read-only
    stop = tmp_path / "writers-done"
    reader = subprocess.Popen([sys.executable, "-c", READER, str(db), str(stop)], stdout=subprocess.PIPE, text=True)
    time.sleep(1.0)
    for source in (AZURE_CONV, big, AZURE_CODE):
        run = subprocess.run(
            [sys.executable, "-m", "app.cli", "--db", str(db), "import", str(source)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert run.returncode == 0, run.stderr
    stop.touch()
    out, _ = reader.communicate(timeout=120)
    report = json.loads(out)
    assert report["errors"] == []
    assert report["reads"] > 20
    assert {"azure-llm-inference-2023-conv", "big", "azure-llm-inference-2023-code"} <= set(report["seen"])


@pytest.mark.parametrize("stage", ["reading and validating", "writing"])
def test_killed_import_leaves_a_consistent_file(db: Path, tmp_path: Path, stage: str) -> None:
    """SIGKILL during an import: the committed trace survives, the killed one is absent or complete."""
    from slmlab.traces.importer import import_trace

    import_trace(SAMPLES / "mooncake_trace_head.jsonl", db=db)
    big = tmp_path / "big.csv"
    generate_trace(big, 2_000_000)
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "--db", str(db), "import", str(big)],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    for line in process.stderr:
        if stage in line:
            break
    time.sleep(0.15)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)

    con = duckdb.connect(str(db))
    traces = dict(con.execute("SELECT name, row_count FROM traces").fetchall())
    stored = dict(
        con.execute(
            "SELECT t.name, count(r.seq) FROM traces t LEFT JOIN requests r USING (trace_id) GROUP BY 1"
        ).fetchall()
    )
    orphans = con.execute("SELECT count(*) FROM requests ANTI JOIN traces USING (trace_id)").fetchall()[0][0]
    con.close()
    assert traces.get("mooncake_trace_head") == 206
    assert stored == traces and orphans == 0
    assert set(traces) <= {"mooncake_trace_head", "big"}
