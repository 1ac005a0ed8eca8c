"""Every import format on the real shipped files: detection, counts, canonical columns, idempotency."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from slmlab.traces import importer, workload
from slmlab.traces.importer import detect_format, import_trace
from tests.conftest import AZURE_CODE, AZURE_CONV, ROUTELLM, SAMPLES

REAL_FILES = [
    # path, format, requests, outcomes
    pytest.param(AZURE_CONV, "azure", 19_366, 0, id="azure-conv"),
    pytest.param(AZURE_CODE, "azure", 8_819, 0, id="azure-code"),
    pytest.param(SAMPLES / "mooncake_trace_head.jsonl", "mooncake", 206, 0, id="mooncake"),
    pytest.param(ROUTELLM / "gsm8k_responses.csv", "routellm", 1_319, 2 * 1_319, id="routellm-gsm8k"),
    pytest.param(ROUTELLM / "mmlu" / "mmlu_anatomy.csv", "routellm", 135, 270, id="routellm-mmlu"),
    pytest.param(ROUTELLM / "mt_bench_judgements.jsonl", "mtbench", 160, 320, id="mtbench"),
    pytest.param(SAMPLES / "routerbench_head.csv", "routerbench", 23, 23 * 11, id="routerbench"),
]


def _count(db: Path, sql: str) -> int:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()[0][0]
    finally:
        con.close()


@pytest.mark.parametrize(("path", "fmt", "rows", "outcomes"), REAL_FILES)
def test_detects_the_format_of_real_files(path: Path, fmt: str, rows: int, outcomes: int) -> None:
    assert detect_format(path).name == fmt


@pytest.mark.parametrize("explicit", [False, True], ids=["auto", "explicit"])
@pytest.mark.parametrize(("path", "fmt", "rows", "outcomes"), REAL_FILES)
def test_imports_real_files(db: Path, path: Path, fmt: str, rows: int, outcomes: int, explicit: bool) -> None:
    result = import_trace(path, db=db, fmt=fmt if explicit else "auto")
    assert (result.format, result.rows, result.outcomes, result.already_imported) == (fmt, rows, outcomes, False)
    assert _count(db, "SELECT count(*) FROM requests") == rows
    assert _count(db, "SELECT count(*) FROM outcomes") == outcomes
    assert _count(db, "SELECT count(DISTINCT request_id) FROM requests") == rows
    assert _count(db, "SELECT count(*) FROM requests WHERE seq IS NULL OR source_row IS NULL") == 0
    if outcomes:
        orphans = _count(db, "SELECT count(*) FROM outcomes o ANTI JOIN requests r USING (trace_id, request_id)")
        assert orphans == 0
        assert _count(db, "SELECT count(*) FROM outcomes WHERE source <> 'recorded'") == 0


# How a repeat is noticed: a small file is hashed before it is read; so is a large one from a path imported
# before; a large copy elsewhere is hashed beside the labelling, and the write finds it stored.
REPEATS = [
    pytest.param(64 << 20, False, id="small-file"),
    pytest.param(0, False, id="large-file-same-path"),
    pytest.param(0, True, id="large-file-copied"),
]


def _repeat_of(path: Path, tmp_path: Path, copied: bool) -> Path:
    if not copied:
        return path
    copy = tmp_path / "elsewhere" / path.name
    copy.parent.mkdir()
    copy.write_bytes(path.read_bytes())
    return copy


@pytest.mark.parametrize(("hash_first_bytes", "copied"), REPEATS)
def test_reimport_says_so_and_changes_nothing(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hash_first_bytes: int, copied: bool
) -> None:
    monkeypatch.setattr(importer, "HASH_FIRST_BYTES", hash_first_bytes)
    first = import_trace(AZURE_CONV, db=db)
    again = import_trace(_repeat_of(AZURE_CONV, tmp_path, copied), db=db, name="another-name")
    assert again.already_imported and again.trace_id == first.trace_id and again.name == first.name
    assert _count(db, "SELECT count(*) FROM traces") == 1
    assert _count(db, "SELECT count(*) FROM requests") == 19_366


def test_azure_keeps_100ns_timestamps_and_arrival_offsets(db: Path) -> None:
    import_trace(AZURE_CONV, db=db)
    con = duckdb.connect(str(db), read_only=True)
    first, last, span, start = con.execute(
        "SELECT min(arrived_at), max(arrived_at), max(arrival_s), min(arrival_s) FROM requests"
    ).fetchall()[0]
    row = con.execute(
        "SELECT CAST(arrived_at AS VARCHAR), input_tokens, output_tokens FROM requests WHERE source_row = 2"
    ).fetchall()[0]
    con.close()
    assert row == ("2023-11-16 18:15:50.995169", 396, 109)  # file line 3: 18:15:50.9951690,396,109
    assert start == 0.0 and span == pytest.approx((last - first).total_seconds(), abs=1e-6)


def test_mooncake_keeps_prefix_hash_ids_and_ms_offsets(db: Path) -> None:
    import_trace(SAMPLES / "mooncake_trace_head.jsonl", db=db)
    con = duckdb.connect(str(db), read_only=True)
    ids, arrival = con.execute("SELECT prefix_hash_ids, arrival_s FROM requests WHERE source_row = 2").fetchall()[0]
    shared = con.execute(
        "SELECT count(*) FROM (SELECT unnest(prefix_hash_ids) AS block FROM requests) GROUP BY block HAVING "
        "count(*) > 1"
    ).fetchall()
    con.close()
    assert ids[:3] == [0, 14, 15] and arrival == 0.0
    assert len(shared) > 1  # prefix blocks shared across requests survive the import


def test_routellm_folder_imports_every_subject_as_one_trace(db: Path) -> None:
    result = import_trace(ROUTELLM / "mmlu", db=db)
    assert (result.rows, result.outcomes) == (14_042, 28_084)
    assert _count(db, "SELECT count(DISTINCT category) FROM requests") == 57
    assert _count(db, "SELECT count(*) FROM requests WHERE request_id = 'mmlu_anatomy/1'") == 1


def test_gsm8k_keeps_model_answers(db: Path) -> None:
    import_trace(ROUTELLM / "gsm8k_responses.csv", db=db)
    con = duckdb.connect(str(db), read_only=True)
    correct, answered = con.execute(
        "SELECT count_if(correct), count_if(response IS NOT NULL) FROM outcomes WHERE model = 'gpt-4-1106-preview'"
    ).fetchall()[0]
    con.close()
    assert correct == 747 + 383 and answered == 1_319  # both-correct plus strong-only, counted from the file


def test_mtbench_scores_are_ratings_over_ten_with_judge(db: Path) -> None:
    import_trace(ROUTELLM / "mt_bench_judgements.jsonl", db=db)
    con = duckdb.connect(str(db), read_only=True)
    low, high, judges = con.execute("SELECT min(score), max(score), count(DISTINCT judge) FROM outcomes").fetchall()[0]
    con.close()
    assert (low, high, judges) == (0.1, 1.0, 4)


def test_routerbench_keeps_fractional_scores_and_costs(db: Path) -> None:
    import_trace(SAMPLES / "routerbench_head.csv", db=db)
    con = duckdb.connect(str(db), read_only=True)
    fractional, costed = con.execute(
        "SELECT count_if(score NOT IN (0, 1)), count_if(cost_usd > 0) FROM outcomes"
    ).fetchall()[0]
    con.close()
    assert fractional > 0 and costed > 0


@pytest.mark.parametrize("container", ["csv", "parquet", "jsonl"])
def test_generic_formats_with_a_column_map(db: Path, tmp_path: Path, container: str) -> None:
    from slmlab.traces.staged import ImportOptions

    source = tmp_path / f"custom.{container}"
    query = (
        "SELECT (i * 0.25)::DOUBLE AS ts, 100 + i AS prompt_len, 10 + i % 7 AS gen_len, 'req-' || i AS rid "
        "FROM range(50) t(i)"
    )
    option = {"csv": "(HEADER)", "parquet": "(FORMAT PARQUET)", "jsonl": "(FORMAT JSON)"}[container]
    duckdb.sql(f"COPY ({query}) TO '{source}' {option}")
    mapping = {"arrival": "ts", "input_tokens": "prompt_len", "output_tokens": "gen_len", "request_id": "rid"}
    result = import_trace(source, db=db, fmt="generic", options=ImportOptions(mapping=mapping))
    assert result.rows == 50 and result.report["arrival_unit"] == "s"
    assert _count(db, "SELECT max(arrival_s) * 4 FROM requests") == 49
    assert _count(db, "SELECT count(*) FROM requests WHERE request_id LIKE 'req-%'") == 50


def test_out_of_order_arrivals_are_sorted_and_reported(db: Path, tmp_path: Path) -> None:
    lines = AZURE_CODE.read_text().splitlines()
    header, body = lines[0], lines[1:]
    body[10], body[11] = body[11], body[10]
    source = tmp_path / "shuffled.csv"
    source.write_text("\n".join([header, *body]) + "\n")
    result = import_trace(source, db=db)
    assert result.report["rows_out_of_order"] == 1
    con = duckdb.connect(str(db), read_only=True)
    seq_rows = con.execute("SELECT source_row FROM requests WHERE seq IN (10, 11) ORDER BY seq").fetchall()
    unsorted = con.execute(
        "SELECT count(*) FROM (SELECT arrival_s < lag(arrival_s) OVER (ORDER BY seq) AS early FROM requests) "
        "WHERE early"
    ).fetchall()[0][0]
    con.close()
    assert seq_rows == [(12,), (11,)] and unsorted == 0


def test_fast_and_row_by_row_paths_store_identical_requests(db: Path, tmp_path: Path, monkeypatch) -> None:
    from slmlab.traces.formats import FORMATS
    from slmlab.traces.importer import _stage_all
    from slmlab.traces.staged import ImportOptions

    fast = _stage_all(FORMATS["azure"], [AZURE_CONV], ImportOptions())
    monkeypatch.setattr(workload, "use_fast_path", False)
    slow = _stage_all(FORMATS["azure"], [AZURE_CONV], ImportOptions())
    assert fast.report["validation"] == "typed read" and slow.report["validation"] == "row-by-row checks"
    columns = sorted(fast.requests.column_names)
    assert columns == sorted(slow.requests.column_names)
    assert fast.requests.select(columns).equals(slow.requests.select(columns))


def test_a_line_longer_than_the_typed_read_allows_is_still_imported(db: Path, tmp_path: Path) -> None:
    """The typed read keeps DuckDB's 2 MB line limit for speed; a longer line takes the checked path (up to 64 MB)."""
    from slmlab.traces.staged import ImportOptions

    source = tmp_path / "long.csv"
    source.write_text("ts,in,out,notes\n0.5,10,2,short\n1.0,11,3," + "x" * 3_000_000 + "\n")
    mapping = {"arrival": "ts", "input_tokens": "in", "output_tokens": "out"}
    options = ImportOptions(mapping=mapping, ignore=("notes",), arrival_unit="s")  # a known unit tries the typed read
    result = import_trace(source, db=db, fmt="generic", options=options)
    assert result.rows == 2 and result.report["validation"] == "row-by-row checks"


@pytest.mark.parametrize(("hash_first_bytes", "copied"), REPEATS)
def test_stored_bytes_are_reported_even_when_read_another_way(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hash_first_bytes: int, copied: bool
) -> None:
    """A file already stored is reported as such, even if the options of the second import cannot read it."""
    monkeypatch.setattr(importer, "HASH_FIRST_BYTES", hash_first_bytes)
    import_trace(AZURE_CODE, db=db)
    again = import_trace(_repeat_of(AZURE_CODE, tmp_path, copied), db=db, fmt="mooncake")
    assert again.already_imported and again.rows == 8_819
