"""The reproductions of issue 19 through the CLI: each ends in exit 2 with the file, row and column named, and
the database as it was; hostile GGUF headers are refused by `models --metadata`, `bench` and `eval` without
hanging the caller; column names are names."""

from __future__ import annotations

import datetime
import json
import struct
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from app.cli.main import main
from slmlab.traces.importer import import_trace
from tests.conftest import SAMPLES, snapshot

AZURE = "TIMESTAMP,ContextTokens,GeneratedTokens\n"
STAMP = "2023-11-16 18:15:46.6805900"


def _parquet(path: Path, table: pa.Table) -> bytes:
    pq.write_table(table, path)
    return path.read_bytes()


CASES = [
    # id, file name, content (or a builder taking the folder), fragments the error must hold
    ("count-1e19", "big.csv", AZURE + f"{STAMP},1e19,44\n", ["column 'ContextTokens'", "row 1", "'1e19' is above"]),
    ("count-1e308", "big.csv", AZURE + f"{STAMP},1e308,44\n", ["column 'ContextTokens'", "row 1", "above"]),
    ("count-2^63", "big.csv", AZURE + f"{STAMP},9223372036854775808,44\n", ["'9223372036854775808' is above"]),
    ("count-2^53+1", "big.csv", AZURE + f"{STAMP},7,9007199254740993\n", ["column 'GeneratedTokens'", "above"]),
    ("count-separator", "sep.csv", AZURE + f"{STAMP},1_000,44\n", ["'1_000' is written with a digit separator"]),
    ("count-underflow", "tiny.csv", AZURE + f"{STAMP},1e-400,44\n", ["'1e-400' is too small to store"]),
    ("count-nan", "nan.csv", AZURE + f"{STAMP},NaN,44\n", ["'NaN' is not finite"]),
    (
        "timestamps-span-centuries",
        "span.csv",
        AZURE + "1700-01-01 00:00:00,1,1\n2260-01-01 00:00:00,2,2\n",
        ["column 'TIMESTAMP'", "span more than 146 years", "row 2"],
    ),
    (
        "timestamp-out-of-range",
        "old.csv",
        AZURE + f"{STAMP},1,1\n1600-01-01 00:00:00,2,2\n",
        ["column 'TIMESTAMP'", "row 2", "outside 1677-09-21"],
    ),
    (
        "timestamp-with-a-line-break",
        "nl.csv",
        AZURE + f'"2023-11-16\n18:15:46.6805900",5,44\n{STAMP},6,4\n',
        ["column 'TIMESTAMP'", "row 1", "line break"],
    ),
    (
        "seconds-span-centuries",
        "g.csv",
        "arrival,input_tokens,output_tokens\n0,1,1\n1e10,3,3\n",
        ["column 'arrival'", "more than 146 years", "row 2"],
    ),
    (
        "json-duplicate-key",
        "dup.jsonl",
        '{"timestamp":0,"input_length":4078,"output_length":3,"input_length":-5}\n',
        ["row 1", "repeat a key", "input_length"],
    ),
    ("json-too-deep", "deep.jsonl", "[" * 100_000 + "\n", ["line 1", "100,000 levels", "at most 64"]),
    (
        "json-too-deep-later",
        "deep.jsonl",
        '{"timestamp":0,"input_length":4,"output_length":3}\n{"timestamp":1,"input_length":4,"output_length":3,'
        '"x":' + "[" * 5_000 + "]" * 5_000 + "}\n",
        ["row 2", "nested 5,001 levels"],
    ),
    (
        "json-count-2^64",
        "mc.jsonl",
        '{"timestamp":0,"input_length":18446744073709551616,"output_length":3}\n',
        ["column 'input_length'", "row 1", "above"],
    ),
    (
        "json-underflow",
        "mc.jsonl",
        '{"timestamp":0,"input_length":1e-400,"output_length":3}\n',
        ["column 'input_length'", "row 1", "1e-400 is too small"],
    ),
    (
        "parquet-uint64",
        "u64.parquet",
        lambda folder: _parquet(
            folder / "u.parquet",
            pa.table(
                {"arrival": [0.0, 1.0], "input_tokens": pa.array([1, 2**64 - 1], pa.uint64()), "output_tokens": [1, 2]}
            ),
        ),
        ["column 'input_tokens'", "row 2", "'18446744073709551615' is above"],
    ),
    (
        "parquet-timestamps-span-centuries",
        "span.parquet",
        lambda folder: _parquet(
            folder / "s.parquet",
            pa.table(
                {
                    "arrival": pa.array(
                        [datetime.datetime(1700, 1, 1), datetime.datetime(2260, 1, 1)], pa.timestamp("us")
                    ),
                    "input_tokens": [1, 2],
                    "output_tokens": [1, 2],
                }
            ),
        ),
        ["column 'arrival'", "span more than 146 years"],
    ),
    (
        "row-with-200003-fields",
        "wide.csv",
        AZURE + f"{STAMP},5,44" + ",1" * 200_000 + "\n",
        ["line 2", "200,003 fields", "at most 1,000"],
    ),
    (
        "header-with-200003-fields",
        "wideh.csv",
        AZURE.strip() + "".join(f",c{i}" for i in range(200_000)) + f"\n{STAMP},5,44\n",
        ["200,003 columns", "at most 1,000"],
    ),
]


@pytest.fixture
def seeded(db: Path) -> Path:
    """A database that already holds a real trace, so 'unchanged' is a real claim."""
    import_trace(SAMPLES / "mooncake_trace_head.jsonl", db=db)
    return db


@pytest.mark.parametrize(("name", "content", "fragments"), [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_each_reproduction_exits_2_naming_the_problem(
    capsys: pytest.CaptureFixture[str], seeded: Path, tmp_path: Path, name: str, content, fragments: list[str]
) -> None:
    source = tmp_path / name
    data = content(tmp_path) if callable(content) else content.encode()
    source.write_bytes(data)
    before = snapshot(seeded)
    code = main(["--db", str(seeded), "import", str(source)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and f"error: {source}: " in err, err
    for fragment in fragments:
        assert fragment in err, err
    assert snapshot(seeded) == before


def test_options_naming_missing_columns_are_refused_before_already_imported(
    capsys: pytest.CaptureFixture[str], db: Path, tmp_path: Path
) -> None:
    source = tmp_path / "again.csv"
    source.write_text(AZURE + f"{STAMP},5,44\n")
    assert main(["import", str(source)]) == 0
    before = snapshot(db)
    for option in (["--map", "arrival=nope"], ["--ignore", "nope"]):
        capsys.readouterr()
        assert main(["import", str(source), *option]) == 2
        err = capsys.readouterr().err
        assert "names column 'nope', which the file does not have" in err and "already imported" not in err
    assert snapshot(db) == before


def test_a_json_key_is_a_name_never_a_path(db: Path, tmp_path: Path) -> None:
    """The issue's case: `--map 'input_tokens=$.input_tokens' --ignore input_tokens` stores 7, not 5."""
    source = tmp_path / "keys.jsonl"
    source.write_text('{"arrival":1,"input_tokens":5,"output_tokens":3,"$.input_tokens":7,"/x":9}\n')
    code = main(
        ["import", str(source), "--map", "input_tokens=$.input_tokens", "--ignore", "input_tokens", "--ignore", "/x"]
    )
    assert code == 0
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert con.execute("SELECT input_tokens FROM requests").fetchall() == [(7,)]
    finally:
        con.close()


# ---------------------------------------------------------------- GGUF


def _gguf(*parts: bytes, version: int = 3, tensors: int = 0, kv: int = 1) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", version, tensors, kv) + b"".join(parts)


def _key(name: bytes) -> bytes:
    return struct.pack("<Q", len(name)) + name


TOKENS = _key(b"tokenizer.ggml.tokens")
HOSTILE_GGUF = {
    # the 169-byte file: a uint8 array that declares 2^40 entries
    "array-2^40.gguf": _gguf(TOKENS + struct.pack("<I", 9) + struct.pack("<IQ", 0, 2**40) + b"x" * 100),
    # a 2^40-byte string
    "string-2^40.gguf": _gguf(TOKENS + struct.pack("<I", 8) + struct.pack("<Q", 2**40) + b"x" * 91),
    "strings-2^40.gguf": _gguf(TOKENS + struct.pack("<I", 9) + struct.pack("<IQ", 8, 2**40) + b"x" * 64),
    "kv-count-2^63.gguf": _gguf(kv=2**63),
    "tensor-count-2^40.gguf": _gguf(tensors=2**40, kv=0),
    "key-length-2^64-1.gguf": _gguf(struct.pack("<Q", 2**64 - 1) + b"k" * 40),
    "nested-arrays.gguf": _gguf(TOKENS + struct.pack("<I", 9) + struct.pack("<IQ", 9, 1) * 40 + b"\0" * 64),
    "random-bytes.gguf": b"GGUF" + bytes(range(256)) * 3,
    "version-1.gguf": _gguf(version=1),
}


@pytest.fixture
def hostile_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "hostile"
    folder.mkdir()
    for name, content in HOSTILE_GGUF.items():
        (folder / name).write_bytes(content)
    return folder


def test_models_metadata_refuses_every_hostile_header(
    capsys: pytest.CaptureFixture[str], db: Path, hostile_folder: Path
) -> None:
    assert main(["models", "--folder", str(hostile_folder), "--metadata", "--json"]) == 0
    entries = {Path(e["path"]).name: e for e in json.loads(capsys.readouterr().out) if e["path"]}
    for name in HOSTILE_GGUF:
        assert "metadata" not in entries[name], name
        assert "not a readable GGUF file" in entries[name]["metadata_error"], entries[name]
    assert "needs 1,099,511,627,776 bytes, but only 100 remain" in entries["array-2^40.gguf"]["metadata_error"]


@pytest.mark.parametrize("command", [["bench", "--quick"], ["eval", "--task", "banking77", "--limit", "2"]])
@pytest.mark.parametrize("name", ["array-2^40.gguf", "string-2^40.gguf"])
def test_bench_and_eval_refuse_a_hostile_header_with_exit_2(
    capsys: pytest.CaptureFixture[str], db: Path, hostile_folder: Path, command: list[str], name: str
) -> None:
    before = snapshot(db)
    code = main([command[0], "--model", str(hostile_folder / name), *command[1:]])
    err = capsys.readouterr().err
    assert code == 2 and "not a readable GGUF file" in err and name in err, err
    assert snapshot(db) == before


def test_the_dashboard_refuses_the_169_byte_header_and_stays_up(db: Path, hostile_folder: Path) -> None:
    """The benchmarks page with the issue's 2^40-entry file: an error on the page, no exception, nothing stored."""
    import time

    from streamlit.testing.v1 import AppTest

    from slmlab.paths import PROJECT_ROOT

    at = AppTest.from_file(str(PROJECT_ROOT / "app" / "main.py"), default_timeout=120)
    at.switch_page("app_pages/benchmarks.py").run()
    [s for s in at.selectbox if s.label == "Model"][0].select("Other .gguf file").run()
    [t for t in at.text_input if t.label == "Path to a .gguf file"][0].input(str(hostile_folder / "array-2^40.gguf"))
    [b for b in at.button if b.label == "Run benchmark"][0].click().run()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not at.error:
        time.sleep(0.5)
        at.run()
    assert not at.exception
    assert "not a readable GGUF file" in at.error[0].value and "Nothing was stored" in at.error[0].value
    assert at.title[0].value == "Hardware & benchmarks"  # the page is still served


POISON_STYLES = ("cycler_popen", "lipsum_popen", "attr_filter")  # attribute, item and |attr-filter escapes


@pytest.fixture(scope="module")
def poisoned_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """The shipped SmolLM2 with each poisoned chat template (tests/test_chat_template_sandbox.py's payloads)."""
    import gguf

    from slmlab.models import resolve_model
    from tests.test_chat_template_sandbox import PAYLOADS, write_with_chat_template

    original = gguf.GGUFReader(resolve_model("smollm2-135m"))
    made = {}
    for style in POISON_STYLES:
        folder = tmp_path_factory.mktemp(f"poisoned-{style}")
        marker = folder / "PWNED"
        write_with_chat_template(original, folder / f"{style}.gguf", PAYLOADS[style](marker))
        made[style] = (folder / f"{style}.gguf", marker)
    return made


@pytest.mark.model
@pytest.mark.slow
@pytest.mark.parametrize("style", POISON_STYLES)
def test_poisoned_chat_templates_stay_inert_in_models_bench_and_eval(
    capsys: pytest.CaptureFixture[str], db: Path, poisoned_models: dict[str, tuple[Path, Path]], style: str
) -> None:
    """models --metadata reports the template, bench and eval run (eval renders with llama.cpp's C template
    matcher, no Jinja): nothing runs the payload, and nothing reaches the user as a traceback."""
    path, marker = poisoned_models[style]
    assert main(["models", "--folder", str(path.parent), "--metadata", "--json"]) == 0
    entry = next(e for e in json.loads(capsys.readouterr().out) if e["path"] == str(path))
    assert entry["metadata"]["chat_template"] is True
    for command in (
        ["bench", "--model", str(path), "--test", "pp16+tg8", "--reps", "1", "--threads", "1"],
        ["eval", "--model", str(path), "--task", "banking77", "--limit", "2", "--threads", "1"],
    ):
        code = main(command)
        err = capsys.readouterr().err
        assert code in (0, 2) and "Traceback" not in err, (command[0], code, err)
        assert not marker.exists(), f"{style}: the chat template ran a shell command during {command[0]}"


def test_a_file_that_needs_more_memory_than_allowed_is_refused(
    monkeypatch: pytest.MonkeyPatch, db: Path, tmp_path: Path
) -> None:
    """DuckDB's memory limit while validating (50% of RAM; 1 MiB here) ends in a clear error, not a swapping box."""
    from slmlab.traces import importer
    from slmlab.traces.errors import TraceInputError

    source = tmp_path / "big-prompts.csv"
    rows = "".join(f"{i},{i},{i}," + "x" * 3000 + "\n" for i in range(3000))
    source.write_text("arrival,input_tokens,output_tokens,prompt\n" + rows)
    monkeypatch.setattr(importer, "_staging_memory_bytes", lambda: 1 << 20)
    with pytest.raises(TraceInputError, match="needs more than .* to validate"):
        import_trace(source, db=db)
    assert not db.exists()


@pytest.mark.parametrize("streamed", [False, True], ids=["in-memory", "streamed"])
def test_a_gateway_log_spanning_centuries_is_refused_on_both_paths(
    monkeypatch: pytest.MonkeyPatch, seeded: Path, tmp_path: Path, streamed: bool
) -> None:
    """The same span check as trace files: a LiteLLM spend log starting in 1700 and 2260 stores nothing."""
    import slmlab.traces.importer as importer
    from slmlab.traces.errors import TraceInputError

    source = tmp_path / "spend.csv"
    source.write_text(
        "request_id,startTime,endTime,model,prompt_tokens,completion_tokens,spend\n"
        "a,1700-01-01 00:00:00,1700-01-01 00:00:01,gpt-4o,10,2,0.001\n"
        "b,2260-01-01 00:00:00,2260-01-01 00:00:01,gpt-4o,10,2,0.001\n"
    )
    if streamed:
        monkeypatch.setattr(importer, "STREAM_BYTES", 0)  # any file is "too large for memory"
    before = snapshot(seeded)
    with pytest.raises(TraceInputError, match=r"column 'startTime': arrival times span more than 146 years"):
        import_trace(source, db=seeded)
    assert snapshot(seeded) == before
    source.write_text(  # an end 560 years after its start: refused, not a negative latency from an int64 wrap
        "request_id,startTime,endTime,model,prompt_tokens,completion_tokens,spend\n"
        "a,1700-01-01 00:00:00,2260-01-01 00:00:01,gpt-4o,10,2,0.001\n"
    )
    with pytest.raises(TraceInputError, match=r"'endTime' is more than 146 years after the request start"):
        import_trace(source, db=seeded)
    assert snapshot(seeded) == before


@pytest.mark.parametrize(
    ("key", "token", "fragment"),
    [
        ("start_time", "-1e300", "'-1e300' is below"),  # was a ConversionException casting to int64 ns
        ("start_time", "9223372037", "'9223372037' is above"),
        ("num_model_requests", "1000000000000", "at most 100,000,000 per bucket"),  # was a 2^32-element list error
    ],
)
def test_an_openai_usage_export_with_hostile_numbers_is_refused(
    db: Path, tmp_path: Path, key: str, token: str, fragment: str
) -> None:
    import re

    from slmlab.traces.errors import TraceInputError

    sample = (SAMPLES / "openai_usage_completions_example.json").read_text()
    source = tmp_path / "usage.json"
    source.write_text(re.sub(f'"{key}": *[0-9]+', f'"{key}": {token}', sample, count=1))
    with pytest.raises(TraceInputError, match=f"column '{key}'") as caught:
        import_trace(source, db=db)
    assert fragment in str(caught.value)


def test_a_gateway_time_with_a_line_break_is_refused(db: Path, tmp_path: Path) -> None:
    from slmlab.traces.errors import TraceInputError

    source = tmp_path / "spend.csv"
    source.write_text(
        "request_id,startTime,endTime,model,prompt_tokens,completion_tokens,spend\n"
        'a,"2025-01-24\n09:20:46",2025-01-24 09:20:47,gpt-4o,10,2,0.001\n'
    )
    with pytest.raises(TraceInputError, match="row 1: .* line break"):
        import_trace(source, db=db)


def test_a_routerbench_long_file_whose_prompts_all_lack_a_model_is_refused(db: Path, tmp_path: Path) -> None:
    """Found by the fuzz suite: one row's model renamed left no prompt with every model, and an empty trace was
    stored; now refused, naming the column."""
    from slmlab.traces.errors import TraceInputError

    source = tmp_path / "long.csv"
    source.write_text(
        "sample_id,model_name,performance\ns1,a,1\ns1,b,0\ns2,a,0\ns2,c,1\n"  # c replaced b on s2's second row
    )
    with pytest.raises(TraceInputError, match="column 'model_name': no prompt has a score for every one of the 3"):
        import_trace(source, db=db, fmt="routerbench-long")
    assert not db.exists()
