"""Hostile input, property-based: malformed files for every registered trace format and hostile GGUF headers.

Each trace case either imports with every accepted token count equal to the file's value exactly, or is refused
with a TraceInputError (the CLI's exit 2) that names the file; nothing else may escape, no case may run past its
time limit, and a refusal leaves the database's content as it was. Seeds are the real files shipped under
datasets/ (a format added to the registry is fuzzed from the shipped file it recognises; one without such a file
fails `test_every_registered_format_has_a_seed`). The case count is printed at the end of the run.
"""

from __future__ import annotations

import csv
import faulthandler
import io
import json
import math
import re
import struct
import tempfile
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slmlab.models import ModelError, _parse
from slmlab.paths import DATASETS_DIR
from slmlab.traces.checks import MAX_COUNT
from slmlab.traces.errors import TraceInputError
from slmlab.traces.formats import FORMATS
from slmlab.traces.importer import import_trace, stage_files
from slmlab.traces.reading import MAX_COLUMNS, MAX_JSON_DEPTH, SUPPORTED_SUFFIXES, sample
from slmlab.traces.staged import ImportOptions
from tests.conftest import ROUTERBENCH_LONG_HEADER, SAMPLES, routerbench_long_rows, snapshot

MIN_CASES = 1_000  # per run, over every test below
CASE_LIMIT_S = 30.0  # no single case may take longer (a hang fails the run at 4x this, with every thread's stack)
SEED_ROWS = 20
_CANONICAL = {"arrival", "input_tokens", "output_tokens", "request_id", "start", "end"}  # fields a log names
STATS = {"cases": 0, "imported": 0, "refused": 0, "failures": 0, "slowest_s": 0.0}


def _examples(total: int) -> int:
    return max(20, math.ceil(total / len(FORMATS)))


FUZZ = settings(
    max_examples=_examples(900), derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)


# ---------------------------------------------------------------- seeds: real shipped files, cut to a few rows


def _head_csv(path: Path) -> bytes:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = [row for _, row in zip(range(SEED_ROWS + 1), csv.reader(handle))]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode()


def _head_jsonl(path: Path) -> bytes:
    with path.open(encoding="utf-8") as handle:
        return "".join(line for _, line in zip(range(SEED_ROWS), handle)).encode()


def _shipped_files() -> Iterator[Path]:
    for path in sorted(DATASETS_DIR.rglob("*")):
        if path.is_file() and path.suffix.lower() in SUPPORTED_SUFFIXES and "tasks" not in path.parts:
            yield path


def _generic_seed() -> tuple[str, bytes]:
    """The generic format recognises columns named like slmlab's fields: the real Azure rows, header renamed."""
    azure = _head_csv(DATASETS_DIR / "traces" / "azure-llm-inference-2023-code.csv").decode()
    return "generic.csv", ("arrival,input_tokens,output_tokens" + azure[azure.index("\n") :]).encode()


def _routerbench_long_seed() -> tuple[str, bytes]:
    """RouterBench's long layout (the one convert_to_wide_format starts from), built from the shipped wide rows."""
    with (SAMPLES / "routerbench_head.csv").open(encoding="utf-8", newline="") as handle:
        header, *rows = [row for _, row in zip(range(6), csv.reader(handle))]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerows([ROUTERBENCH_LONG_HEADER, *routerbench_long_rows(header, rows)])
    return "routerbench_long.csv", out.getvalue().encode()


def _stages(name: str, content: bytes, fmt: str) -> bool:
    with tempfile.TemporaryDirectory(prefix="slmlab-fuzz-") as folder:
        path = Path(folder) / name
        path.write_bytes(content)
        try:
            stage_files([path], fmt)
        except TraceInputError:
            return False
    return True


def _find_seeds() -> dict[str, tuple[str, bytes]]:
    """For each format, the first shipped file it recognises that imports (else the first it recognises)."""
    seeds: dict[str, tuple[str, bytes]] = {"generic": _generic_seed()}  # formats read from layouts of real rows
    if "routerbench-long" in FORMATS:
        seeds["routerbench-long"] = _routerbench_long_seed()
    importable = set(seeds)
    for path in _shipped_files():
        try:
            peek = sample(path)
        except TraceInputError:
            continue
        for name, fmt in FORMATS.items():
            if name in importable or not fmt.matches(peek):
                continue
            if peek.container == "csv":
                cut = _head_csv(path)
            elif peek.container == "jsonl" and path.suffix.lower() != ".json":
                cut = _head_jsonl(path)
            else:  # Parquet, or one JSON document: the whole (small) shipped file
                cut = path.read_bytes()
            if _stages(path.name, cut, name):
                importable.add(name)
                seeds[name] = (path.name, cut)
            else:
                seeds.setdefault(name, (path.name, cut))
    return seeds


SEEDS = _find_seeds()


def test_every_registered_format_has_a_seed() -> None:
    """A format in the registry is fuzzed only from a real file it recognises under datasets/."""
    assert sorted(SEEDS) == sorted(FORMATS), f"no shipped sample for {sorted(set(FORMATS) - set(SEEDS))}"


# ---------------------------------------------------------------- running one case


def _columns_of(name: str, content: bytes) -> list[str]:
    if name.endswith(".csv"):
        return next(csv.reader(io.StringIO(content.decode("utf-8", "replace"))), [])
    if name.endswith(".parquet"):
        return pq.read_schema(pa.BufferReader(content)).names
    keys: list[str] = []
    for line in content.decode("utf-8", "replace").splitlines():
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            continue
        keys += [k for k in record if k not in keys] if isinstance(record, dict) else []
    return keys


def _exact(text: object) -> Decimal | None:
    try:
        value = Decimal(str(text).strip()) if not isinstance(text, Decimal) else text
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _file_values(name: str, content: bytes, column: str) -> list[Decimal | None]:
    """The column's values as the file writes them, read by Python alone (row order)."""
    if name.endswith(".csv"):
        rows = list(csv.DictReader(io.StringIO(content.decode("utf-8"), newline="")))
        return [_exact(row[column]) for row in rows]
    if name.endswith(".parquet"):
        return [
            _exact(repr(v)) if isinstance(v, float) else _exact(v)
            for v in pq.read_table(pa.BufferReader(content)).column(column).to_pylist()
        ]
    records = [json.loads(line, parse_float=Decimal) for line in content.decode("utf-8").splitlines() if line.strip()]
    return [_exact(record.get(column)) for record in records]


def _check_round_trip(name: str, content: bytes, staged) -> None:
    """Every accepted token count equals the file's value exactly, row by row."""
    if staged.kind != "workload":
        assert staged.requests.num_rows > 0 and staged.outcomes is not None and staged.outcomes.num_rows > 0
        return
    mapping = staged.report.get("mapping") or {}
    flat = name.endswith((".csv", ".jsonl", ".parquet")) and all(
        isinstance(mapping.get(field), str) and mapping[field] in _columns_of(name, content)
        for field in ("input_tokens", "output_tokens")
    )
    if not flat:  # a log format reads nested records: every stored count is a whole number kept exactly
        for field in ("input_tokens", "output_tokens"):
            values = staged.requests.column(field).to_pylist() if field in staged.requests.column_names else []
            assert all(v is None or 0 <= v <= MAX_COUNT for v in values), field
        return
    rows = staged.requests.column("source_row").to_pylist()
    for field in ("input_tokens", "output_tokens"):
        expected = _file_values(name, content, mapping[field])
        stored = staged.requests.column(field).to_pylist()
        assert [expected[row - 1] for row in rows] == [Decimal(v) for v in stored], field


def _run_case(name: str, content: bytes, fmt: str, options: ImportOptions | None = None) -> str:
    """Stage one file as `fmt`: 'imported' (values checked exactly) or 'refused' (a clear TraceInputError)."""
    STATS["cases"] += 1
    started = time.perf_counter()
    faulthandler.dump_traceback_later(CASE_LIMIT_S * 4, exit=True)
    try:
        with tempfile.TemporaryDirectory(prefix="slmlab-fuzz-") as folder:
            path = Path(folder) / name
            path.write_bytes(content)
            try:
                _, staged = stage_files([path], fmt, options or ImportOptions())
            except TraceInputError as error:
                outcome = "refused"
                assert name in str(error) and error.problem
                if error.column is not None and name.endswith((".csv", ".jsonl", ".parquet")):
                    named = [*_columns_of(name, content), *(options or ImportOptions()).mapping.values()]
                    assert error.column in named or error.column in _CANONICAL, error
            else:
                outcome = "imported"
                _check_round_trip(name, content, staged)
    except BaseException:
        STATS["failures"] += 1
        raise
    finally:
        faulthandler.cancel_dump_traceback_later()
        elapsed = time.perf_counter() - started
        STATS["slowest_s"] = max(STATS["slowest_s"], elapsed)
    STATS[outcome] += 1
    assert elapsed < CASE_LIMIT_S, f"{name}: {elapsed:.1f} s"
    return outcome


# ---------------------------------------------------------------- hostile values and mutations

HOSTILE_NUMBERS = [
    "1e19",
    "1e308",
    "-1e308",
    "9223372036854775808",
    "18446744073709551616",
    "1e-400",
    "9007199254740993",
    "9007199254740992",
    "9007199254740991",
    "1_000",
    "NaN",
    "nan",
    "inf",
    "-Infinity",
    "-1",
    "-0",
    "1.5",
    "12.0",
    "1e3",
    "1.0000000000000001",
    "0x10",
    "+7",
    " 8 ",
    "",
    "１２",
    "1,5",
    "4e-324",
    "2.5e-308",
    "1" * 400,
]
HOSTILE_TEXT = [
    "1700-01-01 00:00:00",
    "2260-01-01 00:00:00",
    "1600-01-01",
    "2300-01-01",
    "2023-11-16\n18:15:46.6805900",
    "2023-11-16 18:15:46.6805900\r",
    "2023-02-30 00:00:00",
    "\x00",
    "'; DROP TABLE traces; --",
    '"',
    "$.input_tokens",
    "True",
    "maybe",
    "é" * 50,
    "\u202e",
    "x" * 5000,
]
cell_values = st.one_of(
    st.sampled_from(HOSTILE_NUMBERS + HOSTILE_TEXT),
    st.text(max_size=12),
    st.integers(-(2**70), 2**70).map(str),
    st.floats().map(repr),
)


def _set_csv_cell(content: bytes, row: int, column: int, value: str) -> bytes:
    rows = list(csv.reader(io.StringIO(content.decode("utf-8"), newline="")))
    target = rows[1 + row % (len(rows) - 1)]
    target[column % len(target)] = value
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode()


JSON_TOKENS = [
    "1e400",
    "-1e400",
    "1e-400",
    "18446744073709551616",
    "9223372036854775808",
    "9007199254740993",
    "-5",
    "2.5",
    "1e3",
    "null",
    "true",
    '"12"',
    '"1_000"',
    "[]",
    "{}",
    "[1,[2,[3]]]",
    "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1),
    "[" * 5000 + "]" * 5000,
    '"2023-11-16\\n18:15:46"',
    '{"$.x": 1}',
    "1" * 400,
]
json_tokens = st.one_of(
    st.sampled_from(JSON_TOKENS),
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
)
json_keys = st.one_of(
    st.none(),
    st.sampled_from(
        ["$.input_length", "/timestamp", 'a"b', "a\\b", "", "input_length", "timestamp", "score", "model", "turn"]
    ),
    st.text(max_size=8),
)


def _set_json_value(content: bytes, row: int, key: str | None, token: str, duplicate: bool) -> bytes:
    lines = content.decode("utf-8").splitlines()
    at = row % len(lines)
    record = json.loads(lines[at])
    key = key if key is not None else list(record)[row % len(record)]
    if duplicate or (key in record and not duplicate):
        body = json.dumps({k: v for k, v in record.items() if k != key or duplicate})[:-1]
        lines[at] = f"{body}, {json.dumps(key)}: {token}}}" if body != "{" else f"{{{json.dumps(key)}: {token}}}"
    else:
        lines[at] = json.dumps(record)[:-1] + f", {json.dumps(key)}: {token}}}"
    return ("\n".join(lines) + "\n").encode()


_JSON_NUMBER = re.compile(rb"(?<=[:\[,])\s*-?[0-9][0-9.eE+-]*")


def _replace_json_number(content: bytes, which: int, token: str) -> bytes:
    """Any JSON text (one document or one per line): replace one number value with a hostile token."""
    found = list(_JSON_NUMBER.finditer(content))
    if not found:
        return content
    match = found[which % len(found)]
    return content[: match.start()] + b" " + token.encode() + content[match.end() :]


byte_mutations = st.one_of(
    st.tuples(st.just("replace"), st.integers(0, 10_000), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("delete"), st.integers(0, 10_000), st.integers(1, 50)),
    st.tuples(st.just("truncate"), st.integers(0, 10_000), st.just(0)),
    st.tuples(
        st.just("insert"),
        st.integers(0, 10_000),
        st.sampled_from([b'"', b",", b"\n", b"\r", b"\x00", b"\xff", b"{", b"[" * 100, b",x" * 1200, b"_"]),
    ),
)


def _mutate_bytes(content: bytes, mutation: tuple[str, int, object]) -> bytes:
    kind, where, what = mutation
    at = where % max(len(content), 1)
    if kind == "replace":
        return content[:at] + what + content[at + len(what) :]
    if kind == "delete":
        return content[:at] + content[at + what :]
    if kind == "truncate":
        return content[:at]
    return content[:at] + what + content[at:]


# ---------------------------------------------------------------- trace tests


@pytest.mark.parametrize("fmt", sorted(SEEDS))
def test_every_seed_imports_exactly(fmt: str) -> None:
    name, content = SEEDS[fmt]
    if not _stages(name, content, fmt):  # then its fuzzing reaches the refusals only: say so in the output
        pytest.skip(f"no shipped file that the {fmt} format imports ({name} is refused): only refusals are fuzzed")
    assert _run_case(name, content, fmt) == "imported"


@pytest.mark.parametrize("fmt", sorted(SEEDS))
@FUZZ
@given(data=st.data())
def test_hostile_values_are_refused_clearly_or_kept_exactly(fmt: str, data: st.DataObject) -> None:
    name, content = SEEDS[fmt]
    row = data.draw(st.integers(0, SEED_ROWS * 3), label="row")
    if name.endswith(".csv"):
        mutated = _set_csv_cell(content, row, data.draw(st.integers(0, 50), label="column"), data.draw(cell_values))
    elif name.endswith(".jsonl") and data.draw(st.booleans(), label="by key"):
        mutated = _set_json_value(
            content,
            row,
            data.draw(json_keys, label="key"),
            data.draw(json_tokens),
            data.draw(st.booleans(), label="duplicate"),
        )
    elif name.endswith((".json", ".jsonl")):
        mutated = _replace_json_number(content, row, data.draw(json_tokens))
    else:
        mutated = _mutate_bytes(content, data.draw(byte_mutations))
    _run_case(name, mutated, fmt)


@pytest.mark.parametrize("fmt", sorted(SEEDS))
@settings(FUZZ, max_examples=_examples(300))
@given(mutation=byte_mutations)
def test_mutated_bytes_are_refused_clearly_or_kept_exactly(fmt: str, mutation: tuple[str, int, object]) -> None:
    name, content = SEEDS[fmt]
    _run_case(name, _mutate_bytes(content, mutation), fmt)


PARQUET_COLUMNS = {
    "uint64": pa.array([0, 1, 2**64 - 1], pa.uint64()),
    "int64": pa.array([0, -1, 2**63 - 1], pa.int64()),
    "double": pa.array([0.0, float("nan"), float("inf")]),
    "tiny": pa.array([0.0, 5e-324, 1e308]),
    "whole": pa.array([1.0, 2.0, 9007199254740992.0]),
    "text": pa.array(["1", "1_000", "1e-400"]),
    "stamps": pa.array([-(2**63) + 1, 0, 2**63 - 1], pa.timestamp("ns")),
    "dates": pa.array([0, 100_000, -100_000], pa.date32()),
    "nulls": pa.nulls(3, pa.int64()),
}


@settings(FUZZ, max_examples=120)
@given(
    arrival=st.sampled_from(sorted(PARQUET_COLUMNS)),
    tokens=st.sampled_from(sorted(PARQUET_COLUMNS)),
    offset=st.integers(0, 2),
)
def test_hostile_parquet_columns_are_refused_clearly_or_kept_exactly(arrival: str, tokens: str, offset: int) -> None:
    good = pa.array([0.0, 1.5, 3.0])
    table = pa.table(
        {
            "arrival": PARQUET_COLUMNS[arrival] if offset else good,
            "input_tokens": PARQUET_COLUMNS[tokens],
            "output_tokens": pa.array([1, 2, 3]),
        }
    )
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    _run_case("hostile.parquet", sink.getvalue().to_pybytes(), "generic")


@settings(FUZZ, max_examples=60)
@given(
    columns=st.sampled_from([MAX_COLUMNS + 1, 5_000, 200_003]),
    where=st.sampled_from(["header", "row"]),
    fmt=st.sampled_from(sorted(f for f in SEEDS if SEEDS[f][0].endswith(".csv"))),
)
def test_rows_with_too_many_fields_are_refused_quickly(columns: int, where: str, fmt: str) -> None:
    name, content = SEEDS[fmt]
    rows = list(csv.reader(io.StringIO(content.decode("utf-8"), newline="")))
    rows[0 if where == "header" else 1] += [f"c{i}" for i in range(columns)]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    assert _run_case(name, out.getvalue().encode(), fmt) == "refused"


@settings(FUZZ, max_examples=40)
@given(
    mapping=st.dictionaries(
        st.sampled_from(["arrival", "input_tokens", "output_tokens", "request_id"]),
        st.sampled_from(["arrival", "input_tokens", "$.input_tokens", "/input_tokens", "x", "output_tokens", 'a"b']),
        min_size=1,
    ),
    ignore=st.lists(st.sampled_from(["input_tokens", "$.input_tokens", "nope", 'a"b']), max_size=2, unique=True),
)
def test_map_targets_are_names_never_paths(mapping: dict[str, str], ignore: list[str]) -> None:
    """The issue's case: `--map input_tokens=$.input_tokens` reads the key named '$.input_tokens', nothing else."""
    record = {"arrival": 1, "input_tokens": 5, "output_tokens": 3, "$.input_tokens": 7, "/input_tokens": 9, 'a"b': 11}
    content = (json.dumps(record) + "\n" + json.dumps({**record, "arrival": 2}) + "\n").encode()
    options = ImportOptions(mapping=mapping, ignore=tuple(ignore))
    _run_case("keys.jsonl", content, "generic", options)


# ---------------------------------------------------------------- the database is untouched by a refusal


@pytest.fixture
def seeded(db: Path) -> Path:
    import_trace(SAMPLES / "mooncake_trace_head.jsonl", db=db)
    return db


@settings(FUZZ, max_examples=60)
@given(data=st.data())
def test_a_refused_import_leaves_the_database_unchanged(seeded: Path, data: st.DataObject) -> None:
    fmt = data.draw(st.sampled_from(sorted(SEEDS)), label="format")
    name, content = SEEDS[fmt]
    mutated = (
        _mutate_bytes(content, data.draw(byte_mutations))
        if data.draw(st.booleans(), label="bytes")
        else (
            _set_csv_cell(
                content,
                data.draw(st.integers(0, 60)),
                data.draw(st.integers(0, 50)),
                data.draw(st.sampled_from(HOSTILE_NUMBERS + HOSTILE_TEXT)),
            )
            if name.endswith(".csv")
            else _set_json_value(
                content, data.draw(st.integers(0, 60)), None, data.draw(st.sampled_from(JSON_TOKENS)), False
            )
            if name.endswith(".jsonl")
            else content
        )
    )
    before = snapshot(seeded)
    STATS["cases"] += 1
    with tempfile.TemporaryDirectory(prefix="slmlab-fuzz-") as folder:
        path = Path(folder) / name
        path.write_bytes(mutated)
        try:
            import_trace(path, db=seeded, fmt=fmt, name=f"fuzz-{uuid.uuid4().hex[:8]}", label_mix=None)
        except TraceInputError as error:
            assert name in str(error)
            assert snapshot(seeded) == before
            STATS["refused"] += 1
        else:
            STATS["imported"] += 1


# ---------------------------------------------------------------- GGUF headers

GGUF_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
huge = st.sampled_from([2**31, 2**32 - 1, 2**40, 2**63, 2**64 - 1])
counts = st.one_of(st.integers(0, 4), huge)


@st.composite
def gguf_files(draw: st.DrawFn) -> bytes:
    """A GGUF header with declared counts and lengths that may exceed what follows."""

    def string(text: bytes) -> bytes:
        declared = draw(st.one_of(st.just(len(text)), huge), label="string length")
        return struct.pack("<Q", declared) + text

    kv = []
    for index in range(draw(st.integers(0, 4))):
        key = string(
            draw(
                st.sampled_from(
                    [
                        b"general.architecture",
                        b"tokenizer.ggml.tokens",
                        b"general.alignment",
                        b"tokenizer.chat_template",
                        b"k%d" % index,
                    ]
                )
            )
        )
        kind = draw(st.sampled_from([*GGUF_SCALARS, 8, 9, 13, 2**32 - 1]))
        if kind in GGUF_SCALARS:
            value = struct.pack(GGUF_SCALARS[kind], 1)
        elif kind == 8:
            value = string(b"llama")
        elif kind == 9:
            item = draw(st.sampled_from([0, 8, 9, 6, 99]))
            value = struct.pack("<IQ", item, draw(counts)) + draw(st.binary(max_size=64))
        else:
            value = b""
        kv.append(key + struct.pack("<I", kind) + value)
    tensors = []
    for index in range(draw(st.integers(0, 3))):
        dims = draw(st.sampled_from([1, 2, 4, 5, 2**32 - 1]))
        shape = b"".join(struct.pack("<Q", draw(st.one_of(st.integers(1, 64), huge))) for _ in range(min(dims, 4)))
        tensors.append(
            string(b"t%d" % index)
            + struct.pack("<I", dims)
            + shape
            + struct.pack("<IQ", draw(st.sampled_from([0, 1, 2, 8, 99])), draw(st.sampled_from([0, 32, 2**40])))
        )
    head = b"GGUF" + struct.pack("<I", draw(st.sampled_from([3, 2, 1, 99])))
    head += struct.pack("<QQ", draw(st.one_of(st.just(len(tensors)), huge)), draw(st.one_of(st.just(len(kv)), huge)))
    body = head + b"".join(kv) + b"".join(tensors) + draw(st.binary(max_size=256))
    return body[: draw(st.integers(0, len(body)))] if draw(st.booleans()) else body


@settings(FUZZ, max_examples=300)
@given(content=st.one_of(gguf_files(), st.binary(max_size=512), st.binary(max_size=64).map(lambda b: b"GGUF" + b)))
def test_hostile_gguf_headers_are_refused_quickly(content: bytes) -> None:
    """The bounded reader refuses a header that declares more than the file holds, before reading it."""
    STATS["cases"] += 1
    started = time.perf_counter()
    faulthandler.dump_traceback_later(CASE_LIMIT_S * 4, exit=True)
    with tempfile.TemporaryDirectory(prefix="slmlab-fuzz-") as folder:
        path = Path(folder) / "hostile.gguf"
        path.write_bytes(content)
        try:
            meta = _parse(str(path), len(content))
        except ModelError as error:
            assert str(path) in str(error)
            STATS["refused"] += 1
        else:
            assert meta.parameters > 0 and meta.tensor_bytes <= len(content)
            STATS["imported"] += 1
        finally:
            faulthandler.cancel_dump_traceback_later()
    assert time.perf_counter() - started < CASE_LIMIT_S


# ---------------------------------------------------------------- the count, printed at the end of the run


class _Summary:
    """Prints the case count in pytest's terminal summary (registered once, by the fixture below)."""

    def pytest_terminal_summary(self, terminalreporter) -> None:
        terminalreporter.section("hostile-input fuzz")
        terminalreporter.write_line(
            f"{STATS['cases']:,} cases, {STATS['failures']} failures ({STATS['refused']:,} refused clearly, "
            f"{STATS['imported']:,} accepted with exact values; slowest case {STATS['slowest_s']:.2f} s)"
        )


@pytest.fixture(scope="module", autouse=True)
def case_summary(request: pytest.FixtureRequest) -> Iterator[None]:
    if not request.config.pluginmanager.has_plugin("slmlab-fuzz-summary"):
        request.config.pluginmanager.register(_Summary(), "slmlab-fuzz-summary")
    yield


def test_zz_at_least_the_promised_number_of_cases_ran(request: pytest.FixtureRequest) -> None:
    """Runs last in this file: the suite as a whole generated at least MIN_CASES cases (skipped on a partial run)."""
    tests = {name for name in vars(request.module) if name.startswith("test_")}
    ran = {item.originalname for item in request.session.items if item.module is request.module}
    if ran != tests:
        pytest.skip("only part of the fuzz suite was selected")
    assert STATS["cases"] >= MIN_CASES and STATS["failures"] == 0, STATS
