"""Gateway and observability logs (LiteLLM, OTLP GenAI spans, Langfuse, OpenAI usage): detection, what stays
recorded, label sources, text privacy, and the as-recorded bill and latency checks."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pytest

from simulators.catalog import load_price_catalogue
from simulators.recorded import RecordedCalls, check_bill, check_latency
from slmlab.traces.errors import TraceInputError
from slmlab.traces.importer import detect_format, import_trace, remove_trace
from slmlab.traces.records import load_records
from slmlab.traces.staged import ImportOptions
from slmlab.traces.summary import list_traces
from tests.conftest import SAMPLES

LITELLM = SAMPLES / "litellm_spend_logs_payload.json"
LANGFUSE_AGENTS = SAMPLES / "langfuse_openai-agents-2025-09-30.trace.json"
LANGFUSE_TOOLS = SAMPLES / "langfuse_pydantic-ai-tools-2025-12-04.trace.json"
LANGFUSE_AUTOGEN = SAMPLES / "langfuse_autogen-2025-06-06.trace.json"
OPENAI_USAGE = SAMPLES / "openai_usage_completions_example.json"
OTLP_EXAMPLE = SAMPLES / "otlp_proto_example_trace.json"
OTLP_GENAI = SAMPLES / "otlp_genai_pydantic_ai_retry.json"


@pytest.mark.parametrize(
    ("path", "fmt", "rows"),
    [
        (LITELLM, "litellm_spend", 1),
        (LANGFUSE_AGENTS, "langfuse", 2),
        (LANGFUSE_TOOLS, "langfuse", 4),
        (LANGFUSE_AUTOGEN, "langfuse", 1),
        (OPENAI_USAGE, "openai_usage", 5),
        (OTLP_GENAI, "otlp_json", 1),
    ],
)
def test_shipped_samples_are_detected_and_keep_what_they_recorded(db: Path, path: Path, fmt: str, rows: int) -> None:
    assert detect_format(path).name == fmt
    result = import_trace(path, db=db)
    assert (result.format, result.rows) == (fmt, rows)
    (summary,) = list_traces(db, result.name)
    assert summary.recorded["source"] == "recorded" and summary.recorded["requests"] == rows
    assert summary.label_sources["task"].startswith("synthetic")  # no log here records a task


def test_litellm_sample_keeps_model_cost_latency_and_status(db: Path) -> None:
    import_trace(LITELLM, db=db)
    con = duckdb.connect(str(db), read_only=True)
    row = con.execute(
        "SELECT request_id, input_tokens, output_tokens, model, provider, cost_usd, latency_ms, ttft_ms, "
        "status FROM recorded_calls"
    ).fetchall()
    con.close()
    # startTime 09:20:46.847371, endTime 09:20:46.851954; completionStartTime = endTime: the call did not stream
    assert row == [
        (
            "chatcmpl-2283081b-dc89-41f6-93e6-d4f914774027",
            10,
            20,
            "gpt-4o",
            "openai",
            pytest.approx(0.000225),
            pytest.approx(4.583),
            None,
            "success",
        )
    ]


def test_litellm_sample_bill_is_reproduced_as_recorded(db: Path) -> None:
    result = import_trace(LITELLM, db=db)
    bill = check_bill(RecordedCalls(**load_records(db, result.name)), load_price_catalogue())
    assert bill.recorded_usd == pytest.approx(0.000225)
    assert bill.within_tolerance and abs(bill.difference) <= 0.01
    assert [(m.model, m.catalogue_key) for m in bill.models] == [("gpt-4o", "gpt-4o")]
    assert bill.differing_count == 0


def test_langfuse_costs_match_the_catalogue_and_times_stay_recorded(db: Path) -> None:
    result = import_trace(LANGFUSE_AGENTS, db=db)
    calls = RecordedCalls(**load_records(db, result.name))
    bill = check_bill(calls, load_price_catalogue())
    assert bill.recorded_usd == pytest.approx(0.000402 + 0.00023)
    assert bill.within_tolerance
    # the observation that started first (09:03:59.963) is first in arrival order although it is second in the file
    assert list(calls.request_id) == ["98870087af69bf06", "90d94774e8e3724d"]
    assert calls.latency_ms[0] == pytest.approx(1036.0)


def test_bill_names_the_requests_and_models_that_differ() -> None:
    calls = RecordedCalls(
        request_id=np.array(["a", "b", "c"], dtype=object),
        model=np.array(["gpt-4o", "no-such-model", "gpt-4o"], dtype=object),
        input_tokens=np.array([1000, 10, 1000]),
        output_tokens=np.array([100, 10, 100]),
        cached_tokens=np.array([np.nan, np.nan, 800.0]),
        cost_usd=np.array([0.0035, 0.001, 0.0035]),
        latency_ms=np.full(3, np.nan),
        ttft_ms=np.full(3, np.nan),
        status=np.array(["success", "success", "success"], dtype=object),
    )
    bill = check_bill(calls, load_price_catalogue())
    assert bill.differing_count == 2
    reasons = {r["request_id"]: " ".join(r["reasons"]) for r in bill.differing_requests}
    assert "not in the price catalogue" in reasons["b"] and "cached input tokens" in reasons["c"]
    assert "a" not in reasons  # 1000 x 2.5e-6 + 100 x 1e-5 = 0.0035: priced as logged
    assert any("cannot price" in note for note in bill.notes)


def test_openai_usage_arrivals_are_reconstructed_and_flagged(db: Path) -> None:
    result = import_trace(OPENAI_USAGE, db=db)
    con = duckdb.connect(str(db), read_only=True)
    rows = con.execute(
        "SELECT arrival_s, input_tokens, output_tokens, arrived_at FROM requests ORDER BY seq"
    ).fetchall()
    cached = con.execute("SELECT sum(cached_tokens) FROM request_records").fetchall()[0][0]
    con.close()
    # one bucket of a day (1730419200 .. 1730505600) with 5 requests, 1000 input and 500 output tokens
    assert [r[0] for r in rows] == pytest.approx([0, 17280, 34560, 51840, 69120])
    assert sum(r[1] for r in rows) == 1000 and sum(r[2] for r in rows) == 500 and cached == 400
    assert str(rows[0][3]) == "2024-11-01 02:24:00"  # start + 0.5 x 86400 / 5
    (summary,) = list_traces(db, result.name)
    assert any("reconstructed" in a for a in summary.recorded["assumptions"])


def test_text_is_stored_only_when_asked(db: Path) -> None:
    import_trace(LANGFUSE_AUTOGEN, db=db, name="plain")
    again = import_trace(LANGFUSE_AUTOGEN, db=db, name="with-text", options=ImportOptions(keep_text=True))
    assert again.already_imported  # the same bytes are one trace; remove it to import them with their text
    con = duckdb.connect(str(db), read_only=True)
    stored = con.execute(
        "SELECT t.name, d.prompt IS NOT NULL, c.response IS NOT NULL FROM traces t "
        "JOIN request_records c USING (trace_id) LEFT JOIN request_details d "
        "ON d.trace_id = c.trace_id AND d.seq = c.seq ORDER BY t.name"
    ).fetchall()
    con.close()
    assert stored == [("plain", False, False)]
    remove_trace("plain", db=db)
    import_trace(LANGFUSE_AUTOGEN, db=db, name="with-text", options=ImportOptions(keep_text=True))
    con = duckdb.connect(str(db), read_only=True)
    prompt, response = con.execute(
        "SELECT d.prompt, c.response FROM request_records c JOIN request_details d USING (trace_id, seq)"
    ).fetchall()[0]
    left = con.execute("SELECT count(*) FROM request_records").fetchall()[0][0]
    con.close()
    assert prompt and response and left == 1


def _otlp(spans: list[dict], service: str = "chat-api") -> dict:
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
                "scopeSpans": [{"scope": {"name": "test"}, "spans": spans}],
            }
        ]
    }


def _span(span_id: str, start_s: float, end_s: float, attrs: dict[str, object], code: int = 1) -> dict:
    def value(v: object) -> dict:
        return {"intValue": str(v)} if isinstance(v, int) else {"stringValue": str(v)}

    return {
        "traceId": "0" * 32,
        "spanId": span_id,
        "name": "chat",
        "kind": 3,
        "startTimeUnixNano": str(int(start_s * 1e9)),
        "endTimeUnixNano": str(int(end_s * 1e9)),
        "attributes": [{"key": k, "value": value(v)} for k, v in attrs.items()],
        "status": {"code": code},
    }


def test_otlp_genai_spans_read_old_and_new_attribute_names(db: Path, tmp_path: Path) -> None:
    # a fake export built in the test (fakes belong in unit tests only): new names, old names, an agent span
    # that wraps both calls (skipped: it would count their usage twice) and a failed call
    spans = [
        _span("a1", 100.0, 103.0, {"gen_ai.operation.name": "invoke_agent", "gen_ai.usage.input_tokens": 30}),
        _span(
            "c1",
            100.5,
            101.5,
            {
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.provider.name": "openai",
                "gen_ai.usage.input_tokens": 10,
                "gen_ai.usage.output_tokens": 5,
                "user.id": "u7",
            },
        ),
        _span(
            "c2",
            101.0,
            102.0,
            {
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.system": "openai",
                "gen_ai.usage.prompt_tokens": 20,
                "gen_ai.usage.completion_tokens": 7,
            },
            code=2,
        ),
        _span("h1", 99.0, 104.0, {"http.route": "/chat"}),
    ]
    path = tmp_path / "spans.json"
    path.write_text(json.dumps(_otlp(spans), indent=2))  # pretty-printed over many lines, as a collector dump
    result = import_trace(path, db=db)
    assert (result.format, result.rows) == ("otlp_json", 2)
    assert result.report["spans"] == 4 and result.report["genai_spans"] == 2
    con = duckdb.connect(str(db), read_only=True)
    rows = con.execute(
        "SELECT request_id, model, provider, input_tokens, output_tokens, latency_ms, status, team, "
        "user_id FROM recorded_calls ORDER BY seq"
    ).fetchall()
    con.close()
    assert rows == [
        ("c1", "gpt-4o", "openai", 10, 5, 1000.0, "success", "chat-api", "u7"),
        ("c2", "gpt-4o-mini", "openai", 20, 7, 1000.0, "failure", "chat-api", None),
    ]
    jsonl = tmp_path / "lines.jsonl"  # the file exporter writes one request per line
    jsonl.write_text(json.dumps(_otlp(spans[1:2])) + "\n" + json.dumps(_otlp(spans[2:3])) + "\n")
    assert import_trace(jsonl, db=db).rows == 2


def test_otlp_without_genai_spans_says_why(db: Path) -> None:
    assert detect_format(OTLP_EXAMPLE).name == "otlp_json"
    with pytest.raises(TraceInputError, match="none of its 1 span.*GenAI.*I'm a server span"):
        import_trace(OTLP_EXAMPLE, db=db)
    assert not db.exists()


def test_shipped_otlp_genai_export_keeps_model_tokens_latency_and_cost(db: Path) -> None:
    # LiteLLM's captured pydantic-ai export: 4 spans, of which one GenAI model call (span c00506c043013866,
    # "chat openai/gpt-6-luna"). Read by hand from the file: gen_ai.request.model and gen_ai.response.model
    # "openai/gpt-6-luna", gen_ai.provider.name "litellm", gen_ai.usage.input_tokens "9", output_tokens "4",
    # operation.cost 2.9e-06, status {}, startTimeUnixNano 1791058179633997000, endTimeUnixNano
    # 1791058180819707000 (1185.71 ms). The two gateway.request spans (one a 503, status code 2) carry no
    # gen_ai.* attributes and the invoke_agent span wraps the call (its gen_ai.aggregated_usage is the same 9/4).
    result = import_trace(OTLP_GENAI, db=db)
    assert (result.format, result.rows) == ("otlp_json", 1)
    assert result.report["spans"] == 4 and result.report["genai_spans"] == 1
    con = duckdb.connect(str(db), read_only=True)
    rows = con.execute(
        "SELECT request_id, model, provider, input_tokens, output_tokens, latency_ms, ttft_ms, cost_usd, status, "
        "team, prompt FROM recorded_calls"
    ).fetchall()
    con.close()
    # service.name "unknown_service" is the SDK's default, not a team; the text stays out without --keep-text
    assert rows == [
        ("c00506c043013866", "openai/gpt-6-luna", "litellm", 9, 4, 1185.71, None, 2.9e-06, "success", None, None)
    ]
    (summary,) = list_traces(db, result.name)
    assert summary.recorded["logged_spend_usd"] == pytest.approx(2.9e-06)
    assert summary.recorded["fields"] == {"model": 1, "provider": 1, "latency_ms": 1, "cost_usd": 1, "status": 1}
    assert "team" not in summary.label_sources
    # as recorded, priced from the catalogue (LiteLLM's price list has gpt-6-luna), the logged cost comes back
    bill = check_bill(RecordedCalls(**load_records(db, result.name)), load_price_catalogue())
    assert bill.recorded_usd == pytest.approx(2.9e-06) and bill.within_tolerance and bill.differing_count == 0
    assert [m.model for m in bill.models] == ["openai/gpt-6-luna"]


def test_bad_start_time_names_the_row(db: Path, tmp_path: Path) -> None:
    path = tmp_path / "spend.csv"
    path.write_text(
        "request_id,startTime,endTime,model,prompt_tokens,completion_tokens,spend\n"
        "r1,2025-01-24 09:20:46,2025-01-24 09:20:47,gpt-4o,10,20,0.000225\n"
        "r2,yesterday,2025-01-24 09:20:49,gpt-4o,10,20,0.000225\n"
    )
    with pytest.raises(TraceInputError) as error:
        import_trace(path, db=db)
    assert error.value.column == "start" and error.value.offenders[0][0] == 2
    assert "not a date-time" in str(error.value)


def test_litellm_csv_with_team_and_tags_records_labels(db: Path, tmp_path: Path) -> None:
    path = tmp_path / "spend.csv"
    path.write_text(
        "request_id,startTime,endTime,completionStartTime,model,prompt_tokens,completion_tokens,spend,"
        "team_id,user,request_tags,status\n"
        "r1,2025-01-24T09:20:46Z,2025-01-24T09:20:48Z,2025-01-24T09:20:46.5Z,gpt-4o,10,20,0.000225,"
        'claims,ann,"[""prod"",""eu""]",success\n'
        "r2,2025-01-24T09:20:45Z,2025-01-24T09:20:45.3Z,,gpt-4o,10,0,0,claims,bob,[],failure\n"
    )
    result = import_trace(path, db=db)
    (summary,) = list_traces(db, result.name)
    assert summary.label_sources["tenant"].startswith("recorded") and summary.label_sources["task"].startswith(
        "synthetic"
    )
    assert summary.label_sources["tags"].startswith("recorded")
    con = duckdb.connect(str(db), read_only=True)
    rows = con.execute(
        "SELECT request_id, tenant, ttft_ms, latency_ms, status, user_id, tags FROM recorded_calls ORDER BY seq"
    ).fetchall()
    con.close()
    assert rows == [
        ("r2", "claims", None, pytest.approx(300.0), "failure", "bob", None),
        ("r1", "claims", pytest.approx(500.0), pytest.approx(2000.0), "success", "ann", "prod,eu"),
    ]
    calls = RecordedCalls(**load_records(db, result.name))
    latency = check_latency(calls, {"gpt-4o": (600.0, 80.0)})
    (model,) = latency.models
    assert model.requests == 1 and model.ttft_ms_p50 == pytest.approx(500.0)
    assert model.output_tok_s_p50 == pytest.approx(20 / 1.5)
    assert latency.overrides() == [{"name": "gpt-4o", "ttft_ms": 500.0, "output_tok_s": 13.33}]


@pytest.mark.parametrize(
    ("in_order", "removed"), [(False, False), (True, False), (False, True)], ids=["out-of-order", "in-order", "removed"]
)
def test_streamed_import_stores_the_same_trace(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_order: bool, removed: bool
) -> None:
    """A streamed log keeps its staging table as the trace's own table of calls (`call_tables`); read through the
    `request_records` and `request_details` views it is the trace the in-memory import stores, and removing the
    trace removes that table and its moved ranks."""
    import tempfile

    import slmlab.traces.importer as importer
    import slmlab.traces.streaming as streaming

    lines = [
        "request_id,startTime,endTime,completionStartTime,model,prompt_tokens,completion_tokens,spend,team_id,user"
    ]
    for i in range(300):  # out of order: every 7th row starts before the row above it, so arrival ranks need a sort
        second = i - 2 if i % 7 == 0 and i > 1 and not in_order else i
        lines.append(
            f"r{i},2025-01-24 09:{second // 60:02d}:{second % 60:02d}.5,2025-01-24 10:00:00,"
            f"{'2025-01-24 09:59:59' if i % 2 else ''},{'gpt-4o' if i % 3 else 'gpt-4o-mini'},{10 + i},{i % 50},"
            f"{0.0001 * i:.6f},{'claims' if i % 4 else ''},u{i % 9}"
        )
    path = tmp_path / "spend.csv"
    path.write_text("\n".join(lines) + "\n")
    query = (
        "SELECT seq, request_id, arrival_s, input_tokens, output_tokens, task, data_class, residency, tenant, "
        "latency_slo_ms, model, latency_ms, ttft_ms, cost_usd, status, team, user_id FROM recorded_calls ORDER BY seq"
    )
    in_memory = import_trace(path, db=db, name="memory")
    con = duckdb.connect(str(db), read_only=True)
    expected = con.execute(query).fetchall()
    expected_tables = _stored_rows(con, "memory")
    con.close()
    remove_trace("memory", db=db)
    monkeypatch.setattr(importer, "STREAM_BYTES", 0)  # any file is "too large for memory"
    monkeypatch.setattr(streaming, "BATCH_ROWS", 63)  # 5 batches; row 63 starts one: it arrived before row 62
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    with duckdb.connect(str(db)) as con:  # a staging table a killed import left behind
        con.execute(f"CREATE TABLE {streaming.STAGING_PREFIX}0123456789ab AS SELECT 1 AS start")
    streamed = import_trace(path, db=db, name="streamed")
    assert list(scratch.iterdir()) == []  # nothing staged outside the warehouse
    assert "staging table" in streamed.report["validation"] and "staging" not in in_memory.report["validation"]
    assert streamed.report["rows_out_of_order"] == in_memory.report["rows_out_of_order"]
    assert (streamed.report["rows_out_of_order"] == 0) == in_order
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute(query).fetchall() == expected
    assert _stored_rows(con, "streamed") == expected_tables  # every stored column, not only the view's
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchall() == [(0,)]
    tables = [
        r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE table_name LIKE '%calls%'").fetchall()
    ]
    assert tables == [f"trace_calls_{streamed.trace_id}"]  # the staging table, kept under the trace's id
    leftover = f"SELECT count(*) FROM duckdb_tables() WHERE starts_with(table_name, '{streaming.STAGING_PREFIX}')"
    assert con.execute(leftover).fetchall() == [(0,)]  # the killed import's table is dropped too
    moves = con.execute("SELECT count(*) FROM call_moves").fetchall()[0][0]
    assert (moves == 0) == in_order
    con.close()
    (summary,) = list_traces(db, "streamed")
    assert summary.rows == 300 and summary.label_sources["tenant"].startswith("recorded")
    if removed:
        remove_trace("streamed", db=db)
        con = duckdb.connect(str(db), read_only=True)
        assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE 'trace_calls_%'").fetchall() == [
            (0,)
        ]
        assert con.execute("SELECT count(*) FROM call_moves").fetchall() == [(0,)]
        assert con.execute("SELECT count(*) FROM request_records").fetchall() == [(0,)]
        con.close()
        monkeypatch.undo()  # in memory again: into the tables behind the views
        import_trace(path, db=db, name="memory again")
        con = duckdb.connect(str(db), read_only=True)
        assert con.execute(query).fetchall() == expected
        assert _stored_rows(con, "memory again") == expected_tables
        con.close()


def _stored_rows(con: duckdb.DuckDBPyConnection, name: str) -> dict[str, list[tuple]]:
    """Every row a trace stored, per table, without its trace id (label sets by their values: their numbers may
    differ between the in-memory and the streamed import)."""
    trace = f"trace_id = (SELECT trace_id FROM traces WHERE name = '{name}')"
    return {
        "traces": con.execute(f"SELECT row_count, first_arrival_at, kind, format FROM traces WHERE {trace}").fetchall(),
        "request_rows": con.execute(
            "SELECT r.seq, r.source_row, r.arrival_ns, r.input_tokens, r.output_tokens, l.task, l.data_class, "
            "l.residency, l.tenant, l.latency_slo_ms FROM request_rows r JOIN label_sets l "
            f"ON l.trace_id = r.trace_id AND l.label_set = r.label_set WHERE r.{trace} ORDER BY r.seq"
        ).fetchall(),
        "label_sets": con.execute(
            f"SELECT task, data_class, residency, tenant, latency_slo_ms FROM label_sets WHERE {trace} ORDER BY ALL"
        ).fetchall(),
        "request_records": con.execute(
            f"SELECT * EXCLUDE (trace_id) FROM request_records WHERE {trace} ORDER BY seq"
        ).fetchall(),
        "request_details": con.execute(
            f"SELECT * EXCLUDE (trace_id) FROM request_details WHERE {trace} ORDER BY seq"
        ).fetchall(),
    }


def test_a_streamed_batch_is_released_inside_the_import_transaction() -> None:
    """Each labelled batch is appended without `con.register`: a registered object stays alive until the
    transaction commits (its temporary view is only dropped then), which kept every batch of a 100M-row import in
    memory (8 GB peak RSS)."""
    import gc
    import weakref

    import pyarrow as pa

    from slmlab.traces.streaming import _append

    con = duckdb.connect()
    con.execute("CREATE TABLE request_rows (trace_id INTEGER, seq BIGINT, label_set INTEGER)")
    con.execute("BEGIN TRANSACTION")
    batch = pa.table({"label_set": pa.array([7, 8], pa.int32()), "seq": pa.array([0, 1], pa.int64())})
    alive = weakref.ref(batch)
    _append(con, "request_rows", 3, batch)
    del batch
    gc.collect()
    assert alive() is None
    assert con.execute("SELECT * FROM request_rows ORDER BY seq").fetchall() == [(3, 0, 7), (3, 1, 8)]  # by name
    con.execute("ROLLBACK")
    con.close()


def test_a_streamed_log_with_a_bad_value_names_its_rows_and_creates_no_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The streamed import opens the warehouse before it reads the log: a refused log leaves no new file behind."""
    import slmlab.traces.importer as importer
    from slmlab.traces.errors import TraceInputError

    db = tmp_path / "new.duckdb"
    path = tmp_path / "spend.csv"
    rows = [f"r{i},2025-01-24 09:00:{i:02d},gpt-4o,{'ten' if i in (3, 7) else 10},5,0.001" for i in range(20)]
    path.write_text("request_id,startTime,model,prompt_tokens,completion_tokens,spend\n" + "\n".join(rows) + "\n")
    monkeypatch.setattr(importer, "STREAM_BYTES", 0)  # any file is "too large for memory"
    with pytest.raises(TraceInputError, match="column 'input_tokens': bad input token count in 2 row") as caught:
        import_trace(path, db=db)
    assert "row 4" in str(caught.value) and "row 8" in str(caught.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spend.csv"]


def test_hive_partitioned_parquet_imports_as_one_trace(db: Path, tmp_path: Path) -> None:
    csv = tmp_path / "spend.csv"
    csv.write_text(
        "request_id,startTime,endTime,model,prompt_tokens,completion_tokens,spend,team_id\n"
        + "".join(
            f"r{i},2025-01-2{i % 3 + 1} 09:00:{i:02d},2025-01-2{i % 3 + 1} 09:00:{i:02d}.5,gpt-4o,10,20,0.000225,"
            f"{'claims' if i % 2 else 'sales'}\n"
            for i in range(30)
        )
    )
    folder = tmp_path / "spend_logs"
    con = duckdb.connect()
    con.execute(
        f"COPY (SELECT *, substr(\"startTime\", 1, 10) AS day FROM read_csv('{csv}', all_varchar=true)) "
        f"TO '{folder}' (FORMAT parquet, PARTITION_BY (day))"
    )
    con.close()
    assert len(list(folder.rglob("*.parquet"))) == 3  # day=2025-01-21/..., day=2025-01-22/..., day=2025-01-23/...
    result = import_trace(folder, db=db)
    assert (result.format, result.rows, result.name) == ("litellm_spend", 30, "spend_logs")
    again = import_trace(str(folder / "**" / "*.parquet"), db=db)  # the same files named by a glob
    assert again.already_imported and again.trace_id == result.trace_id
    bill = check_bill(RecordedCalls(**load_records(db, "spend_logs")), load_price_catalogue())
    assert bill.recorded_usd == pytest.approx(30 * 0.000225) and bill.within_tolerance


def test_cli_bill_latency_and_traces_json(db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from app.cli.main import main

    assert main(["import", str(LANGFUSE_TOOLS), "--name", "tools"]) == 0
    assert "recorded per request: model, latency_ms, cost_usd, status, tags" in capsys.readouterr().out
    assert main(["bill", "tools", "--json"]) == 0
    bill = json.loads(capsys.readouterr().out)
    assert bill["within_tolerance"] and bill["recorded_usd"] == pytest.approx(0.00032265)
    overrides = tmp_path / "recorded.json"
    assert main(["latency", "tools", "--adopt", str(overrides)]) == 0
    assert "recorded/assumed" in capsys.readouterr().out
    (entry,) = json.loads(overrides.read_text())
    assert entry["name"] == "gpt-4o-mini-2024-07-18" and entry["ttft_ms"] > 0  # fitted: the calls did not stream
    assert main(["traces", "tools", "--json"]) == 0
    (summary,) = json.loads(capsys.readouterr().out)
    assert summary["label_sources"]["tags"] == "recorded (trace.tags)"
    assert summary["recorded"]["fields"]["cost_usd"] == 4
    assert main(["import", str(SAMPLES / "mooncake_trace_head.jsonl")]) == 0
    capsys.readouterr()
    assert main(["bill", "mooncake_trace_head"]) == 2  # an arrival trace records no model or cost
    assert "has no recorded calls" in capsys.readouterr().err


def _starts(kind: str) -> np.ndarray:
    """Start times (ns) of a log in file order, for `test_arrival_ranks_match_a_full_sort`."""
    rng = np.random.default_rng(7)
    n = 500
    start = np.arange(n, dtype=np.int64) * 20
    if kind == "nearly-in-order":  # like perf/import_100m.py: every 9th row 45 ns early, passing two rows
        start[::9] -= 45
    elif kind == "moved-far":  # the last row first in time, the first row last, one from the middle early
        start[-1], start[0], start[250] = -5, 10 * n * 20, 3
    elif kind == "ties":  # many equal starts, some out of order: ties rank in file order
        start = (np.arange(n) // 4).astype(np.int64)
        start[5::13] -= 2
    elif kind == "reversed":
        start = start[::-1].copy()
    elif kind == "shuffled":
        start = rng.permutation(start) // 40
    elif kind == "all-equal":
        start[:] = 42
    elif kind == "one-row":
        start = start[:1]
    return start


@pytest.mark.parametrize(
    "kind", ["in-order", "nearly-in-order", "moved-far", "ties", "reversed", "shuffled", "all-equal", "one-row"]
)
def test_arrival_ranks_match_a_full_sort(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The streamed import ranks only the rows between cuts of the file (`_arrival_ranks`); every row's seq must be
    its rank by (start, file row), as a sort of the whole log gives it, across block boundaries."""
    import pyarrow as pa

    import slmlab.traces.streaming as streaming

    monkeypatch.setattr(streaming, "RANK_BLOCK", 16)  # runs of moved rows cross blocks
    start = _starts(kind)
    con = duckdb.connect()
    log = pa.table({"start": start})  # noqa: F841 (read by DuckDB's replacement scan)
    con.execute("CREATE TEMP TABLE calls AS SELECT start FROM log")
    block_min = [int(start[i : i + 16].min()) for i in range(0, len(start), 16)]
    ordered = streaming._arrival_ranks(con, "calls", block_min)
    seq = np.array(
        con.execute(
            f"SELECT coalesce(k.seq, c.rowid) AS seq FROM calls c LEFT JOIN {streaming.RANKS} k ON k.r = c.rowid "
            "ORDER BY c.rowid"
        ).fetchnumpy()["seq"]
    )
    expected = np.empty(len(start), dtype=np.int64)
    expected[np.lexsort((np.arange(len(start)), start))] = np.arange(len(start))
    np.testing.assert_array_equal(seq, expected)
    assert ordered == bool(np.all(expected == np.arange(len(start))))
    assert ordered == (kind in ("in-order", "all-equal", "one-row"))
    moved = con.execute(f"SELECT count(*) FROM {streaming.RANKS}").fetchall()[0][0]
    assert moved == int(np.count_nonzero(expected != np.arange(len(start))))  # only rows out of place are kept
    con.close()


def test_streamed_hash_is_the_import_key(tmp_path: Path) -> None:
    from slmlab.traces.reading import content_hash
    from slmlab.traces.streaming import HASH_BLOCK, streamed_hash

    big = tmp_path / "day=1" / "part.parquet"
    big.parent.mkdir()
    big.write_bytes(bytes(range(256)) * (HASH_BLOCK // 256 + 3))  # more than one block
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    for paths, root in (([LITELLM], None), ([big, empty], tmp_path)):
        assert streamed_hash(paths, root) == content_hash(paths, root)


def test_litellm_tags_and_status_shortcuts_match_the_full_parse() -> None:
    """The spend log's tags read without JSON for '[]' and one plain tag, status compared before trimming: both
    give what the full expressions give, for values that take the shortcut and values that must not."""
    from slmlab.traces.formats.litellm_spend import _fields

    exprs, _ = _fields(lambda c: f"CAST({c} AS VARCHAR)", "CAST(NULL AS JSON)", lambda c: True)
    values = ["[]", '["prod"]', '[""]', "[ ]", '["a","b"]', '["a\\"b"]', '["é"]', '["\u0301x"]', '["a]"]', '["~ !"]']
    values += ["[1]", '{"a": 1}', "bad", "", '["prod"] ', '["tab\there"]', "success", "failure", " Failed ", "ERROR"]
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT unnest(?) AS request_tags, unnest(?) AS status", [values, values])
    full_tags = (
        "CASE WHEN json_valid(request_tags) AND json_type(CAST(request_tags AS JSON)) = 'ARRAY' THEN "
        "NULLIF(array_to_string(from_json(request_tags, '[\"VARCHAR\"]'), ','), '') END"
    )
    full_status = (
        "CASE WHEN lower(trim(status)) IN ('failure', 'error', 'failed') THEN 'failure' "
        "WHEN NULLIF(trim(status), '') IS NULL THEN NULL ELSE 'success' END"
    )
    rows = con.execute(
        f"SELECT request_tags, {exprs['tags']}, {full_tags}, {exprs['status']}, {full_status} FROM t"
    ).fetchall()
    assert [(r[0], r[1]) for r in rows] == [(r[0], r[2]) for r in rows]
    assert [(r[0], r[3]) for r in rows] == [(r[0], r[4]) for r in rows]
    tags = {r[0]: r[1] for r in rows}
    assert (tags['["prod"]'], tags['["a","b"]'], tags["[]"]) == ("prod", "a,b", None)


def test_the_offset_prefilter_reads_every_time_as_the_regex_alone_did() -> None:
    """The typed read tries the UTC-offset regex only where an offset can be (`gateway._fast_value`); every text
    reads to the same nanoseconds as with the regex on every value (TIMESTAMPTZ where it matches, else TIMESTAMP_NS)."""
    from slmlab.traces.gateway import OFFSET_PATTERN, _fast_value

    texts = [
        "2025-01-01 10:00:00",
        "2025-01-01 10:00:00.123456789",
        "2025-01-01T10:00:00Z",
        "2025-01-01 10:00:00+02:00",
        "2025-01-01 10:00:00+02",
        "2025-01-01 10:00:00+0200",
        "2025-01-01 10:00:00-05:00",
        "2025-01-01 10:00:00-0530",
        "2025-01-01T10:00:00.5-03",
        "2025-01-01",
        "2025-01-01-05",
        "2025/01/01 10:00:00-05",
        "2025/01/01 10:00:00+05",
        "01-01 10:00:00-05",
        "20250101T100000-0500",
        "2025-0101-05",
        "10:00:00 2025-01-01",
        "2025-01-01 10:00:00 America/New_York",
        "-2025-01-01",
        "2025-01-01 10:00:00-",
        "",
        "not a time",
    ]
    parsed, _, _ = _fast_value("start", "timestamp")
    text = 'CAST("r_start" AS VARCHAR)'
    reference = (
        f"CASE WHEN regexp_matches({text}, '{OFFSET_PATTERN}') THEN epoch_ns(TRY_CAST({text} AS TIMESTAMPTZ)) "
        f"ELSE epoch_ns(TRY_CAST({text} AS TIMESTAMP_NS)) END"
    )
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")

    def read(sql: str, value: str) -> object:
        try:
            return con.execute(f"SELECT {sql} FROM (SELECT ?::VARCHAR AS r_start)", [value]).fetchall()[0][0]
        except duckdb.Error as error:  # DuckDB refuses some out-of-range dates outright: then both must
            return type(error).__name__

    rows = [(t, read(parsed, t), read(reference, t)) for t in texts]
    con.close()
    assert [(t, new) for t, new, _ in rows] == [(t, old) for t, _, old in rows]
    assert sum(isinstance(new, int) for _, new, _ in rows) >= 12  # most of them are times
