"""Property-based fuzzing of every importer: valid generated files import exactly; mutated files either import
or fail with a TraceInputError, never another exception, and a failure leaves the database unchanged."""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slmlab.traces.errors import TraceInputError
from slmlab.traces.importer import import_trace
from tests.conftest import snapshot

DEEP = "SLMLAB_FUZZ_EXAMPLES" in os.environ  # a deeper, randomised run on request; CI replays a fixed sequence
FUZZ = settings(
    max_examples=int(os.environ.get("SLMLAB_FUZZ_EXAMPLES", "30")),
    derandomize=not DEEP,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
counts = st.integers(min_value=0, max_value=200_000)
offsets = st.floats(min_value=0, max_value=86_400, allow_nan=False, allow_infinity=False)
requests = st.lists(st.tuples(offsets, counts, counts), min_size=1, max_size=40)


def _azure_time(seconds: float) -> str:
    ticks = round(seconds * 10_000_000)  # Azure timestamps carry 100 ns digits
    whole, fraction = divmod(ticks, 10_000_000)
    return f"2023-11-16 {whole // 3600 % 24:02d}:{whole // 60 % 60:02d}:{whole % 60:02d}.{fraction:07d}"


def azure(rows: list[tuple[float, int, int]]) -> tuple[str, bytes]:
    body = [f"{_azure_time(t)},{i},{o}" for t, i, o in rows]
    return "azure.csv", ("TIMESTAMP,ContextTokens,GeneratedTokens\n" + "\n".join(body) + "\n").encode()


def mooncake(rows: list[tuple[float, int, int]]) -> tuple[str, bytes]:
    lines = [
        json.dumps({"timestamp": int(t * 1000), "input_length": i, "output_length": o, "hash_ids": list(range(i % 5))})
        for t, i, o in rows
    ]
    return "mooncake.jsonl", ("\n".join(lines) + "\n").encode()


def generic(rows: list[tuple[float, int, int]]) -> tuple[str, bytes]:
    body = [f"{t!r},{i},{o},r{n}" for n, (t, i, o) in enumerate(rows)]
    return "generic.csv", ("arrival,input_tokens,output_tokens,request_id\n" + "\n".join(body) + "\n").encode()


def routellm(rows: list[tuple[float, int, int]]) -> tuple[str, bytes]:
    body = [f'"prompt {n}, with comma",{i % 2 == 0},{o % 3 == 0}' for n, (_, i, o) in enumerate(rows)]
    return "routellm.csv", ("prompt,weak/model,strong-model\n" + "\n".join(body) + "\n").encode()


def mtbench(rows: list[tuple[float, int, int]]) -> tuple[str, bytes]:
    lines = [
        json.dumps(
            {
                "question_id": n,
                "model": model,
                "judge": ["gpt-4", "single-v1"],
                "score": 1 + (i + k) % 10,
                "turn": 1 + o % 2,
            }
        )
        for n, (_, i, o) in enumerate(rows)
        for k, model in enumerate(("a", "b"))
    ]
    return "judgements.jsonl", ("\n".join(lines) + "\n").encode()


def routerbench(rows: list[tuple[float, int, int]]) -> tuple[str, bytes]:
    header = (
        "sample_id,prompt,eval_name,m1,m2,m1|model_response,m2|model_response,m1|total_cost,m2|total_cost,"
        "oracle_model_to_route_to"
    )
    body = [
        f"s{n},\"['q {n}']\",ev,{(i % 5) / 4},{(o % 3) / 2},a,b,{i / 1e6},{o / 1e6},m1"
        for n, (_, i, o) in enumerate(rows)
    ]
    return "routerbench.csv", (header + "\n" + "\n".join(body) + "\n").encode()


BUILDERS = {
    "azure": azure,
    "mooncake": mooncake,
    "generic": generic,
    "routellm": routellm,
    "mtbench": mtbench,
    "routerbench": routerbench,
}
EXPECTED_ROWS = {"mtbench": lambda rows: len(rows)}  # one request per (question, turn); ids here are unique per row


def _import(content: tuple[str, bytes], fmt: str, db: Path) -> object:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / content[0]
        path.write_bytes(content[1])
        return import_trace(path, db=db, fmt=fmt, name=f"t-{uuid.uuid4().hex[:8]}")


@pytest.mark.parametrize("fmt", list(BUILDERS))
@FUZZ
@given(rows=requests)
def test_valid_generated_files_import_exactly(db: Path, fmt: str, rows: list[tuple[float, int, int]]) -> None:
    result = _import(BUILDERS[fmt](rows), fmt, db)
    assert result.rows == EXPECTED_ROWS.get(fmt, len)(rows)
    if fmt in ("azure", "mooncake", "generic"):
        con = duckdb.connect(str(db), read_only=True)
        stored = con.execute(
            "SELECT sum(input_tokens), sum(output_tokens), min(arrival_s) FROM requests WHERE trace_id = ?",
            [result.trace_id],
        ).fetchall()[0]
        unsorted = con.execute(
            "SELECT count(*) FROM (SELECT arrival_s < lag(arrival_s) OVER (ORDER BY seq) AS early FROM requests "
            "WHERE trace_id = ?) WHERE early",
            [result.trace_id],
        ).fetchall()[0][0]
        con.close()
        assert stored == (sum(r[1] for r in rows), sum(r[2] for r in rows), 0.0)
        assert unsorted == 0


mutations = st.one_of(
    st.tuples(st.just("replace"), st.integers(0, 10_000), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("delete"), st.integers(0, 10_000), st.integers(1, 50)),
    st.tuples(st.just("truncate"), st.integers(0, 10_000), st.just(0)),
    st.tuples(st.just("text"), st.integers(0, 10_000), st.text(min_size=1, max_size=6)),
)


def _mutate(content: bytes, mutation: tuple[str, int, object]) -> bytes:
    kind, where, what = mutation
    at = where % max(len(content), 1)
    if kind == "replace":
        return content[:at] + what + content[at + len(what) :]
    if kind == "delete":
        return content[:at] + content[at + what :]
    if kind == "truncate":
        return content[:at]
    return content[:at] + what.encode("utf-8") + content[at:]


@pytest.mark.parametrize("fmt", list(BUILDERS))
@FUZZ
@given(rows=requests, mutation=mutations)
def test_mutated_files_fail_cleanly_or_import(db: Path, fmt: str, rows, mutation) -> None:
    name, content = BUILDERS[fmt](rows)
    before = snapshot(db)
    try:
        _import((name, _mutate(content, mutation)), fmt, db)
    except TraceInputError as error:
        assert name in str(error)
        assert snapshot(db) == before
