"""JSON documents (one object or array per file, or one per line) as gateway and observability tools export them.

OTLP file exports, Langfuse trace exports, OpenAI usage pages and LiteLLM `/spend/logs` responses are JSON documents,
often pretty-printed over many lines, where slmlab's other formats expect one record per line. This module peeks at
a document for format detection and loads documents into DuckDB as JSON values, one row per document.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from slmlab.traces.errors import TraceInputError
from slmlab.traces.reading import ROW, check_json_lines, sql_quote

PEEK_BYTES = 64 << 20  # a document larger than this is detected from its first line only
DOC = "__doc"


def _first_record(value: object) -> dict | None:
    if isinstance(value, list):
        return value[0] if value and isinstance(value[0], dict) else None
    return value if isinstance(value, dict) else None


def document_keys(path: Path) -> tuple[str, ...] | None:
    """The keys format detection looks at, for a JSON document that is not one object per line: the top-level keys
    (of the first element of an array), and `data.<key>` for the first element of a `data` array. None when the
    file is not one JSON document."""
    if path.stat().st_size > PEEK_BYTES:
        return None
    try:
        value = json.loads(path.read_bytes().decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):  # too deep: load_documents names the limit
        return None
    record = _first_record(value)
    if record is None:
        return None
    keys = list(record)
    data = record.get("data")
    if isinstance(data, list) and data and isinstance(data[0], dict):
        keys += [f"data.{key}" for key in data[0]]
    return tuple(keys)


def load_documents(con: duckdb.DuckDBPyConnection, path: Path, table: str = "docs") -> int:
    """One row per JSON document (`__doc` numbered from 1, `doc` JSON): every line of a JSON Lines file, or the
    whole file when it is one document. Returns how many documents."""
    if not path.exists():
        raise TraceInputError(path, "file not found")
    if path.stat().st_size == 0:
        raise TraceInputError(path, "file is empty")
    with path.open("rb") as handle:
        first = handle.readline(PEEK_BYTES)
    try:
        one_per_line = isinstance(json.loads(first.decode("utf-8-sig")), (dict, list))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        one_per_line = False
    quoted = sql_quote(str(path))
    try:
        if one_per_line:
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT row_number() OVER () AS {DOC}, line AS raw "
                f"FROM read_csv({quoted}, auto_detect=false, header=false, columns={{'line': 'VARCHAR'}}, "
                f"delim=chr(1), quote='', escape='', strict_mode=false, max_line_size={PEEK_BYTES}) "
                f"WHERE trim(line) <> ''"
            )
        else:
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT 1 AS {DOC}, content AS raw FROM read_text({quoted})"
            )
    except duckdb.Error as error:
        raise TraceInputError(path, f"cannot be read as JSON: {str(error).splitlines()[0]}") from error
    bad = con.execute(
        f"SELECT {DOC}, left(raw, 60) FROM {table} WHERE NOT coalesce(json_valid(raw), false) ORDER BY {DOC} LIMIT 5"
    ).fetchall()
    if bad:
        where = "line" if one_per_line else "document"
        raise TraceInputError(
            path,
            f"not valid JSON ({where} {bad[0][0]})",
            offenders=[(row, f"{text!r}") for row, text in bad],
            hint="expected one JSON document, or one JSON object per line",
        )
    check_json_lines(con, path, table, row=DOC, text="raw")  # depth, repeated keys, numbers a double cannot hold
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT {DOC}, CAST(raw AS JSON) AS doc FROM {table}")
    return int(con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])


def records_sql(table: str, path_expr: str | None = None) -> str:
    """A SELECT of one JSON record per row (`record`), numbered in document order (`__row`): the elements of each
    document's array at `path_expr` (e.g. '$.data'), of the document itself when it is an array, or the document."""
    source = f"json_extract(doc, {sql_quote(path_expr)})" if path_expr else "doc"
    return (
        f"SELECT row_number() OVER (ORDER BY {DOC}, idx) AS {ROW}, record FROM ("
        f"SELECT {DOC}, generate_subscripts(items, 1) AS idx, unnest(items) AS record FROM ("
        f"SELECT {DOC}, CASE WHEN json_type({source}) = 'ARRAY' THEN CAST({source} AS JSON[]) "
        f"WHEN {source} IS NULL THEN []::JSON[] ELSE [{source}] END AS items FROM {table}))"
    )
