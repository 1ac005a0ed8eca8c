"""Bad files get a clear error naming the file, column and first rows, and leave the database exactly as it was."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from slmlab.traces.errors import TraceInputError
from slmlab.traces.importer import import_trace
from tests.conftest import AZURE_CODE, SAMPLES, snapshot

HEADER = "TIMESTAMP,ContextTokens,GeneratedTokens"
GOOD_ROWS = AZURE_CODE.read_text().splitlines()[1:40]


def _azure(rows: list[str], header: str = HEADER) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


def _with(row: int, text: str) -> list[str]:
    rows = list(GOOD_ROWS)
    rows[row - 1] = text
    return rows


BAD_FILES = [
    # id, file name, content, fragments the message must contain
    (
        "negative-tokens",
        "t.csv",
        _azure(_with(7, "2023-11-16 18:17:09.1,12,-3")),
        ["t.csv", "column 'GeneratedTokens'", "row 7", "'-3' is negative", "1 row(s)"],
    ),
    (
        "non-numeric-tokens",
        "t.csv",
        _azure(_with(3, "2023-11-16 18:17:05.1,lots,3")[:5] + _with(9, "2023-11-16 18:18:00,x,1")[5:]),
        ["column 'ContextTokens'", "row 3", "'lots' is not a number", "row 9", "2 row(s)"],
    ),
    (
        "fractional-tokens",
        "t.csv",
        _azure(_with(4, "2023-11-16 18:17:05.1,12.5,3")),
        ["column 'ContextTokens'", "row 4", "not a whole number"],
    ),
    (
        "missing-value",
        "t.csv",
        _azure(_with(5, "2023-11-16 18:17:05.1,,3")),
        ["column 'ContextTokens'", "row 5", "missing"],
    ),
    (
        "bad-timestamp",
        "t.csv",
        _azure(_with(2, "16/11/2023 6pm,12,3")),
        ["column 'TIMESTAMP'", "row 2", "'16/11/2023 6pm' is not a date-time"],
    ),
    ("empty-file", "t.csv", b"", ["t.csv", "file is empty"]),
    ("header-only", "t.csv", (HEADER + "\n").encode(), ["t.csv", "no data rows"]),
    (
        "semicolons",
        "t.csv",
        _azure([r.replace(",", ";") for r in GOOD_ROWS], HEADER.replace(",", ";")),
        ["t.csv", "separated by semicolons"],
    ),
    ("utf16", "t.csv", _azure(GOOD_ROWS).decode().encode("utf-16"), ["t.csv", "UTF-16"]),
    ("latin1-bytes", "t.csv", _azure(GOOD_ROWS) + b"2023-11-16 18:20:00,1\xe9,2\n", ["t.csv", "not UTF-8", "row 40"]),
    ("truncated-csv", "t.csv", _azure(GOOD_ROWS)[:-9], ["t.csv", "wrong number of fields", "truncated"]),
    (
        "missing-column",
        "t.csv",
        _azure([r.rsplit(",", 1)[0] for r in GOOD_ROWS], "TIMESTAMP,ContextTokens"),
        ["t.csv", "missing column(s) GeneratedTokens"],
    ),
    (
        "unknown-column",
        "t.csv",
        _azure([r + ",x" for r in GOOD_ROWS], HEADER + ",Tenant"),
        ["t.csv", "unknown column(s) Tenant"],
    ),
    (
        "duplicate-ids",
        "g.csv",
        b"arrival,input_tokens,output_tokens,request_id\n0,1,1,a\n1,2,2,b\n2,3,3,a\n",
        ["g.csv", "column 'request_id'", "duplicate request ids", "row 3", "repeats row 1"],
    ),
    (
        "truncated-jsonl",
        "m.jsonl",
        "".join(SAMPLES.joinpath("mooncake_trace_head.jsonl").read_text().splitlines(keepends=True)[:5]).encode()
        + b'{"timestamp": 9000, "input_len',
        ["m.jsonl", "not JSON objects", "row 6", "truncated"],
    ),
    (
        "jsonl-negative",
        "m.jsonl",
        b'{"timestamp": 0, "input_length": 5, "output_length": 2, "hash_ids": [1]}\n'
        b'{"timestamp": 5, "input_length": -5, "output_length": 2, "hash_ids": [1]}\n',
        ["m.jsonl", "column 'input_length'", "row 2", "negative"],
    ),
    (
        "routellm-not-bool",
        "r.csv",
        b"prompt,weak,strong\nhello,True,False\nbye,maybe,True\n",
        ["r.csv", "column 'weak'", "row 2", "'maybe' is not True/False"],
    ),
    (
        "arrivals-span-centuries",
        "g.csv",
        b"arrival,input_tokens,output_tokens\n0,1,1\n5,2,2\n1e10,3,3\n",
        ["g.csv", "column 'arrival'", "more than 146 years", "row 3"],
    ),
    ("unknown-format", "x.csv", b"a,b\n1,2\n", ["x.csv", "cannot tell the format", "--map"]),
    ("unsupported-type", "x.xlsx", b"PK..", ["x.xlsx", "unsupported file type"]),
]


@pytest.fixture
def seeded(db: Path) -> Path:
    """A database that already holds a real trace, so 'unchanged' is a real claim."""
    import_trace(SAMPLES / "mooncake_trace_head.jsonl", db=db)
    return db


@pytest.mark.parametrize(("name", "content", "fragments"), [pytest.param(*case[1:], id=case[0]) for case in BAD_FILES])
def test_bad_input_is_rejected_clearly_and_loses_nothing(
    seeded: Path, tmp_path: Path, name: str, content: bytes, fragments: list[str]
) -> None:
    source = tmp_path / name
    source.write_bytes(content)
    before = snapshot(seeded)
    with pytest.raises(TraceInputError) as caught:
        import_trace(source, db=seeded)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, message
    assert snapshot(seeded) == before


def test_missing_file_is_a_clear_error(db: Path, tmp_path: Path) -> None:
    with pytest.raises(TraceInputError, match="file not found"):
        import_trace(tmp_path / "nope.csv", db=db)


def test_error_lists_first_five_rows_and_counts_all(db: Path, tmp_path: Path) -> None:
    rows = [f"2023-11-16 18:17:{i:02d}.0,{-i - 1},3" for i in range(12)]
    source = tmp_path / "many.csv"
    source.write_bytes(_azure(rows))
    with pytest.raises(TraceInputError) as caught:
        import_trace(source, db=db)
    error = caught.value
    assert error.total == 12 and [row for row, _ in error.offenders] == [1, 2, 3, 4, 5]
    assert "first 5 of 12 rows" in str(error)


def test_cli_exits_2_names_the_row_and_leaves_the_database(seeded: Path, tmp_path: Path) -> None:
    """The issue's acceptance check: one negative token count in the real Azure trace."""
    lines = AZURE_CODE.read_text().splitlines()
    lines[101] = lines[101].rsplit(",", 1)[0] + ",-7"
    source = tmp_path / "azure-one-negative.csv"
    source.write_text("\n".join(lines) + "\n")
    before = snapshot(seeded)
    run = subprocess.run(
        [sys.executable, "-m", "app.cli", "--db", str(seeded), "import", str(source), "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 2, run.stderr
    assert "row 101" in run.stderr and "GeneratedTokens" in run.stderr and "azure-one-negative.csv" in run.stderr
    error = json.loads(run.stdout)["error"]  # --json: the error as JSON on stdout, where a script reads
    assert error["offending_rows"] == [{"row": 101, "detail": "'-7' is negative"}]
    assert snapshot(seeded) == before


def test_a_json_record_with_an_empty_key_is_named(db: Path, tmp_path: Path) -> None:
    """Found by the fuzzer: an empty key used to reach DuckDB as an empty identifier."""
    source = tmp_path / "m.jsonl"
    source.write_text(
        '{"timestamp": 0, "input_length": 5, "output_length": 2}\n'
        '{"timestamp": 1, "input_length": 5, "output_length": 2, "": 1}\n'
    )
    with pytest.raises(TraceInputError, match=r"empty key .* row 2"):
        import_trace(source, db=db)
