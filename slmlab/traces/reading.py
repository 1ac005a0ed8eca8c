"""Read a trace file into a staging table of raw values with a 1-based `__row`, or fail with a clear error.

Every reader leaves the file's values untyped where the file is text (CSV, JSONL), so the checks in
`checks.py` can name the exact rows that do not parse instead of DuckDB stopping at the first one.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import blake3
import duckdb

from slmlab.traces.errors import TraceInputError

ROW = "__row"
INDEX = "__index"  # the unnamed first column of a CSV written by pandas with its index: read, then ignored
LINE = "__line"
# Limits on input (README, "Limits on input"): each is refused with the file and line named, before it costs much.
MAX_LINE_BYTES = 64 * 1024 * 1024  # one CSV row or JSON line; DuckDB needs a buffer as long as the longest line
MAX_COLUMNS = 1_000  # fields in a CSV header, distinct keys over a JSON Lines file, columns of a Parquet file
MAX_JSON_DEPTH = 64  # nesting of arrays and objects in one JSON line
SUPPORTED_SUFFIXES = {
    ".csv": "csv",
    ".tsv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}


@dataclass(frozen=True)
class FileSample:
    """What format detection may look at: the container kind and the header columns or first record's keys."""

    path: Path
    container: str  # csv | jsonl | parquet
    columns: tuple[str, ...]


def sql_quote(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def ident(name: str) -> str:
    """A SQL identifier, whatever characters the file's column name holds."""
    return '"' + name.replace('"', '""') + '"'


def container_of(path: Path) -> str:
    """csv, jsonl or parquet, from the file name; a clear error for anything else."""
    kind = SUPPORTED_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise TraceInputError(
            path,
            f"unsupported file type '{path.suffix or '(none)'}'",
            hint="slmlab reads .csv, .jsonl/.ndjson and .parquet files",
        )
    return kind


HASH_PREFIX, LEGACY_HASH_PREFIX = "blake3:", "sha256:"


def content_hash(paths: list[Path], root: Path | None = None) -> str:
    """BLAKE3 over the files' bytes (and relative names when importing a folder), prefixed 'blake3:': the
    idempotency key. Half the CPU time of sha256 on a large trace, which the import waits for."""
    digest = blake3.blake3()
    for path in paths:
        if root is not None:
            digest.update(str(path.relative_to(root)).encode() + b"\0")
        if path.stat().st_size:
            digest.update_mmap(str(path))
    return HASH_PREFIX + digest.hexdigest()


def legacy_content_hash(paths: list[Path], root: Path | None = None) -> str:
    """The key of traces imported before BLAKE3 (sha256 of the same bytes), to recognise them on re-import."""
    digest = hashlib.sha256()
    for path in paths:
        if root is not None:
            digest.update(str(path.relative_to(root)).encode() + b"\0")
        with path.open("rb") as handle:
            while block := handle.read(4 * 1024 * 1024):
                digest.update(block)
    return LEGACY_HASH_PREFIX + digest.hexdigest()


def _first_line(path: Path) -> str:
    with path.open("rb") as handle:
        head = handle.readline(MAX_LINE_BYTES)
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise TraceInputError(path, "file is UTF-16 encoded", hint="save it as UTF-8 and import again")
    try:
        return head.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise TraceInputError(
            path,
            f"line 1 is not valid UTF-8 (byte {error.start})",
            hint="save the file as UTF-8 and import again",
        ) from error


def _require_content(path: Path) -> str:
    if not path.exists():
        raise TraceInputError(path, "file not found")
    if path.is_dir():
        raise TraceInputError(path, "is a folder, not a file")
    if path.stat().st_size == 0:
        raise TraceInputError(path, "file is empty")
    return _first_line(path)


def csv_header(path: Path) -> tuple[str, ...]:
    """The header row's column names; a clear error for an empty file or a non-comma delimiter."""
    first = _require_content(path)
    if not first.strip():
        raise TraceInputError(path, "the first line (the header) is blank")
    if first.count(",") >= MAX_COLUMNS and len(fields := _csv_fields(first)) > MAX_COLUMNS:
        raise TraceInputError(path, f"the header has {len(fields):,} columns; slmlab reads at most {MAX_COLUMNS:,}")
    try:
        columns = tuple(next(csv.reader(io.StringIO(first))))
    except csv.Error as error:
        raise TraceInputError(path, f"the header line cannot be read as CSV ({error})") from error
    if len(columns) == 1:
        for delimiter, label in ((";", "semicolons"), ("\t", "tabs"), ("|", "pipes")):
            if delimiter in first:
                raise TraceInputError(
                    path,
                    f"the header is separated by {label}, not commas",
                    hint="slmlab reads comma-separated files; re-export the file with ',' as the delimiter",
                )
    if columns and not columns[0].strip() and len(columns) > 1:  # pandas' `to_csv` writes its index unnamed, first
        columns = (INDEX, *columns[1:])
    blank = [str(i + 1) for i, name in enumerate(columns) if not name.strip()]
    if blank:
        raise TraceInputError(path, f"header has unnamed column(s) at position {', '.join(blank)}")
    duplicates = sorted({name for name in columns if columns.count(name) > 1})
    if duplicates:
        raise TraceInputError(path, f"header repeats column(s) {', '.join(duplicates)}")
    return columns


def _csv_fields(line: str) -> list[str]:
    csv.field_size_limit(MAX_LINE_BYTES)
    try:
        return next(csv.reader(io.StringIO(line)), [])
    except csv.Error:
        return []


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(r"[\[\]{}]")


def json_depth(text: str) -> int:
    """How deeply arrays and objects nest in one JSON text, without recursion (strings are skipped)."""
    depth = deepest = 0
    for match in _BRACKETS.finditer(_STRING.sub("", text)):
        depth += 1 if match.group() in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _too_deep(path: Path, line: int, text: str) -> TraceInputError | None:
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH or (depth := json_depth(text)) <= MAX_JSON_DEPTH:
        return None
    return TraceInputError(
        path,
        f"line {line} nests JSON {depth:,} levels deep; slmlab reads at most {MAX_JSON_DEPTH}",
        offenders=[(line, f"nested {depth:,} levels")],
    )


def jsonl_keys(path: Path) -> tuple[str, ...]:
    """The keys of the first record, for format detection."""
    first = _require_content(path)
    if error := _too_deep(path, 1, first):
        raise error
    try:
        record = json.loads(first)
    except RecursionError as error:
        raise TraceInputError(path, f"line 1 nests JSON deeper than {MAX_JSON_DEPTH} levels") from error
    except json.JSONDecodeError as error:
        raise TraceInputError(path, f"line 1 is not valid JSON ({error.msg})") from error
    if not isinstance(record, dict):
        raise TraceInputError(path, "line 1 is not a JSON object", hint="expected one JSON object per line")
    return tuple(record)


def sample(path: Path) -> FileSample:
    """Peek at a file cheaply for format detection."""
    container = container_of(path)
    if container == "csv":
        return FileSample(path, container, csv_header(path))
    if container == "jsonl":
        if path.suffix.lower() == ".json" and path.is_file():  # one JSON document, perhaps over many lines
            from slmlab.traces.documents import document_keys

            if (keys := document_keys(path)) is not None:
                return FileSample(path, "json", keys)
        return FileSample(path, container, jsonl_keys(path))
    if not path.exists():
        raise TraceInputError(path, "file not found")
    try:
        described = f"DESCRIBE SELECT * FROM read_parquet({sql_quote(str(path))})"
        # duckdb's stubs type sql() as Optional (None for statements without a result); DESCRIBE has one
        names = duckdb.sql(described).fetchall()  # type: ignore[union-attr]
    except duckdb.Error as error:
        raise TraceInputError(path, f"not a readable Parquet file ({error.__class__.__name__}: {error})") from error
    if len(names) > MAX_COLUMNS:
        raise TraceInputError(path, f"has {len(names):,} columns; slmlab reads at most {MAX_COLUMNS:,}")
    return FileSample(path, container, tuple(row[0] for row in names))


def csv_options(
    columns: tuple[str, ...],
    spec: str | None = None,
    max_line_bytes: int = MAX_LINE_BYTES,
    buffer_bytes: int | None = None,
) -> str:
    """read_csv options for slmlab's dialect (comma, double quotes, header, strict); all VARCHAR unless `spec`.

    DuckDB's read buffers must hold the longest line, so a large `max_line_bytes` leaves a big file with few
    buffers to share between threads: the typed fast path asks for less and falls back when a line is longer.
    `buffer_bytes` (more than `max_line_bytes`) sets the buffer instead of DuckDB's 16 longest lines.
    """
    spec = spec or "{" + ", ".join(f"{sql_quote(name)}: 'VARCHAR'" for name in columns) + "}"
    buffer = f", buffer_size={buffer_bytes}" if buffer_bytes else ""
    return (
        f"auto_detect=false, header=true, columns={spec}, delim=',', quote='\"', escape='\"', "
        f"strict_mode=true, max_line_size={max_line_bytes}{buffer}"
    )


def _invalid_utf8_lines(path: Path) -> list[int]:
    bad = []
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                bad.append(number)
    return bad


def _raise_if_not_utf8(path: Path, cause: Exception, header_lines: int) -> None:
    if "unicode" in str(cause).lower():
        lines = _invalid_utf8_lines(path)
        raise TraceInputError(
            path,
            "is not UTF-8 encoded",
            offenders=[(line - header_lines, f"line {line}: invalid UTF-8 bytes") for line in lines],
            total=len(lines),
            hint="save the file as UTF-8 and import again",
        ) from cause


def _field_count_offenders(path: Path, expected: int) -> tuple[list[tuple[int, str]], int]:
    """Rows whose field count differs from the header's, found by Python's csv module: linear in the file, where
    DuckDB's reject table grows with the square of a row's extra fields (200,000 fields: minutes, gigabytes)."""
    csv.field_size_limit(MAX_LINE_BYTES)
    offenders: list[tuple[int, str]] = []
    total = 0
    with path.open(encoding="utf-8", errors="replace", newline="") as handle:
        reader = csv.reader(handle, strict=True)
        try:
            next(reader, None)
            line = reader.line_num + 1
            for row in reader:
                if row and len(row) != expected:
                    total += 1
                    if len(offenders) < 5:
                        over = f" (at most {MAX_COLUMNS:,} are read)" if len(row) > MAX_COLUMNS else ""
                        count = f"{len(row):,} fields{over}"
                        offenders.append((line - 1, f"line {line}: {count}, the header has {expected}"))
                line = reader.line_num + 1
        except csv.Error as error:
            total += 1
            if len(offenders) < 5:
                offenders.append(
                    (
                        line - 1,
                        f"line {line}: {error} (a quote that never closes, or a field longer than "
                        f"{MAX_LINE_BYTES // 2**20} MiB)",
                    )
                )
    return offenders, total


def _raise_malformed_csv(path: Path, options: str, cause: Exception) -> None:
    _raise_if_not_utf8(path, cause, header_lines=1)
    too_long = re.search(r"CSV Error on Line: (\d+).*Maximum line size", str(cause), re.S)
    if too_long:
        line = int(too_long.group(1))
        raise TraceInputError(
            path,
            f"line {line} is longer than {MAX_LINE_BYTES // 2**20} MiB, the longest line slmlab reads",
            offenders=[(line - 1, f"line {line}: too long")],
        ) from cause
    offenders, total = _field_count_offenders(path, len(csv_header(path)))
    if offenders:
        last_line = offenders[-1][0] + 1
        truncated = total == 1 and _is_last_line(path, last_line)
        hint = "the file looks truncated: its last line is incomplete" if truncated else None
        raise TraceInputError(
            path, "malformed rows (wrong number of fields)", offenders=offenders, total=total, hint=hint
        ) from cause
    scan = duckdb.connect()  # a fresh connection: the failed read may have left `con` mid-result
    try:
        scan.execute(
            f"SELECT count(*) FROM read_csv({sql_quote(str(path))}, {options}, ignore_errors=true, store_rejects=true)"
        ).fetchall()
        rejects = scan.execute(
            "SELECT line, min(error_message) FROM reject_errors GROUP BY line ORDER BY line"
        ).fetchall()
    except duckdb.Error:
        rejects = []
    finally:
        scan.close()
    if not rejects:
        raise TraceInputError(path, f"cannot be read as CSV: {str(cause).splitlines()[0]}") from cause
    last_line = max(int(r[0]) for r in rejects)
    hint = (
        "the file looks truncated: its last line is incomplete"
        if len(rejects) == 1 and _is_last_line(path, last_line)
        else None
    )
    raise TraceInputError(
        path,
        "malformed rows (wrong number of fields)",
        offenders=[(int(line) - 1, f"line {line}: {message}") for line, message in rejects],
        total=len(rejects),
        hint=hint,
    ) from cause


def _is_last_line(path: Path, line: int) -> bool:
    with path.open("rb") as handle:
        count = sum(block.count(b"\n") for block in iter(lambda: handle.read(4 * 1024 * 1024), b""))
        handle.seek(max(0, path.stat().st_size - 1))
        ends_with_newline = handle.read(1) == b"\n"
    return line == (count if ends_with_newline else count + 1)


def _create_numbered(con: duckdb.DuckDBPyConnection, table: str, source_sql: str) -> None:
    """A staging table of the source's rows with their 1-based position in the file as `__row`."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT row_number() OVER () AS {ROW}, * FROM {source_sql}")


def read_csv_raw(con: duckdb.DuckDBPyConnection, path: Path, table: str = "raw") -> tuple[str, ...]:
    """Load a CSV (header row, comma-delimited, UTF-8) as VARCHAR columns plus `__row`."""
    columns = csv_header(path)
    options = csv_options(columns)
    try:
        _create_numbered(con, table, f"read_csv({sql_quote(str(path))}, {options})")
    except duckdb.InvalidInputException as error:
        _raise_malformed_csv(path, options, error)
    _require_rows(con, path, table)
    return columns


def read_jsonl_raw(con: duckdb.DuckDBPyConnection, path: Path, table: str = "raw") -> tuple[str, ...]:
    """Load JSON Lines: every key of every record becomes a VARCHAR column; `__line` keeps the raw JSON."""
    _require_content(path)
    try:
        _create_numbered(
            con,
            f"{table}_lines",
            f"read_csv({sql_quote(str(path))}, auto_detect=false, header=false, columns={{'{LINE}': 'VARCHAR'}}, "
            f"delim=chr(1), quote='', escape='', strict_mode=false, max_line_size={MAX_LINE_BYTES})",
        )
    except duckdb.Error as error:
        _raise_if_not_utf8(path, error, header_lines=0)
        too_long = re.search(r"CSV Error on Line: (\d+).*Maximum line size", str(error), re.S)
        if too_long:
            line = int(too_long.group(1))
            raise TraceInputError(
                path,
                f"line {line} is longer than {MAX_LINE_BYTES // 2**20} MiB, the longest line slmlab reads",
                offenders=[(line, "too long")],
            ) from error
        raise TraceInputError(path, f"cannot be read as JSON Lines: {str(error).splitlines()[0]}") from error
    con.execute(f"DELETE FROM {table}_lines WHERE trim({LINE}) = ''")
    bad = con.execute(
        f"SELECT {ROW}, left({LINE}, 60) FROM {table}_lines "
        f"WHERE NOT coalesce(json_valid({LINE}), false) OR json_type({LINE}) <> 'OBJECT' ORDER BY {ROW}"
    ).fetchall()
    if bad:
        last = con.execute(f"SELECT max({ROW}) FROM {table}_lines").fetchall()[0][0]
        truncated = len(bad) == 1 and bad[0][0] == last
        raise TraceInputError(
            path,
            "lines that are not JSON objects",
            offenders=[(row, f"{text!r}") for row, text in bad],
            total=len(bad),
            hint="the file looks truncated: its last line is incomplete"
            if truncated
            else "expected one JSON object per line",
        )
    check_json_lines(con, path, f"{table}_lines")
    keys = tuple(
        row[0]
        for row in con.execute(
            f"SELECT key FROM (SELECT unnest(json_keys({LINE})) AS key, {ROW} FROM {table}_lines) "
            f"GROUP BY key ORDER BY min({ROW}), key LIMIT {MAX_COLUMNS + 1}"
        ).fetchall()
    )
    if len(keys) > MAX_COLUMNS:
        raise TraceInputError(
            path, f"its records hold more than {MAX_COLUMNS:,} different keys; slmlab reads at most {MAX_COLUMNS:,}"
        )
    if "" in keys:
        rows = con.execute(
            f"SELECT {ROW} FROM {table}_lines WHERE list_contains(json_keys({LINE}), '') ORDER BY {ROW}"
        ).fetchall()
        raise TraceInputError(
            path, 'records with an empty key ("")', offenders=[(row, "empty key") for (row,) in rows], total=len(rows)
        )
    projections = ", ".join(f"{LINE}->>{sql_quote(json_key_path(key))} AS {ident(key)}" for key in keys)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT {ROW}, {LINE}{', ' + projections if projections else ''} "
        f"FROM {table}_lines"
    )
    con.execute(f"DROP TABLE {table}_lines")
    _require_rows(con, path, table)
    return keys


def json_key_path(key: str) -> str:
    """The JSON path of one top-level key, quoted: a key is a name, never a path ('$.a', '/a') or a pattern."""
    return '$."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


# JSON numbers DuckDB reads without a trace of the change: 1e-400 as 0.0, 1e400 as infinity. Only lines with an
# exponent of three digits or a run of 300 zeros can hold one; Python reads those few lines again to check.
_EXTREME_NUMBER = r"[eE][+-]?[0-9]{3}|0{300}"


class _Unstorable(float):
    """A JSON number DuckDB would store as something else; keeps the literal for the message."""

    literal: str
    problem: str


def _json_number_problems(text: str) -> list[tuple[str, str]]:
    """(key, problem) for each top-level key whose value holds a number that overflows or underflows a double."""

    def parse_float(literal: str) -> float:
        value = float(literal)
        mantissa = re.split("[eE]", literal)[0]
        if value in (float("inf"), float("-inf")) or (value == 0 and re.search("[1-9]", mantissa)):
            marked = _Unstorable(value)
            marked.literal = literal[:30]
            marked.problem = (
                "is beyond the range of a double" if value else "is too small to store (it would read as 0)"
            )
            return marked
        return value

    def unstorable(value: object, key: str | None) -> tuple[str | None, _Unstorable] | None:
        if isinstance(value, _Unstorable):
            return key, value
        items: Iterable[tuple[str | None, object]]
        if isinstance(value, dict):
            items = value.items()
        else:
            items = ((key, item) for item in value) if isinstance(value, list) else ()
        return next((found for inner, item in items if (found := unstorable(item, inner)) is not None), None)

    try:
        record = json.loads(text, parse_float=parse_float)
    except (ValueError, RecursionError):
        return []  # DuckDB judges validity; depth is checked before this
    # a record's problem is named by its top-level key (the column); a document's by the innermost key
    found = (
        [unstorable(value, key) for key, value in record.items()]
        if isinstance(record, dict)
        else [unstorable(record, None)]
    )
    top = isinstance(record, dict)
    return [
        (str(key if top else inner), f"{marked.literal} {marked.problem}")
        for key, hit in zip(record if top else [None], found)
        if hit is not None
        for inner, marked in [hit]
    ]


def check_json_lines(
    con: duckdb.DuckDBPyConnection, path: Path, lines: str, *, row: str = ROW, text: str = LINE, keys: bool = True
) -> None:
    """Refuse lines nested too deeply, records that repeat a key, and numbers that would change when stored.
    `row` and `text` name the table's number and JSON columns; `keys` checks top-level keys for repeats."""
    candidates = con.execute(
        f"SELECT {row}, {text} FROM {lines} WHERE length({text}) - length(translate({text}, '[{{', '')) > "
        f"{MAX_JSON_DEPTH} ORDER BY {row}"
    ).fetchall()
    depths = [(number, json_depth(line)) for number, line in candidates]
    deep = [(number, f"nested {depth:,} levels") for number, depth in depths if depth > MAX_JSON_DEPTH]
    if deep:
        raise TraceInputError(
            path, f"lines nest JSON more than {MAX_JSON_DEPTH} levels deep", offenders=deep, total=len(deep)
        )
    repeats = f"SELECT {row}, {text} FROM {lines} WHERE len(json_keys({text})) <> len(list_distinct(json_keys({text})))"
    total = con.execute(f"SELECT count(*) FROM ({repeats})").fetchall()[0][0] if keys else 0
    if total:
        repeated = con.execute(
            f"SELECT {row}, string_agg(DISTINCT key, ', ' ORDER BY key) FROM (SELECT {row}, key FROM (SELECT {row}, "
            f"unnest(json_keys({text})) AS key FROM ({repeats} ORDER BY {row} LIMIT 5)) GROUP BY {row}, key "
            f"HAVING count(*) > 1) GROUP BY {row} ORDER BY {row}"
        ).fetchall()
        raise TraceInputError(
            path,
            "records repeat a key (which value counts would be a guess)",
            offenders=[(number, f"repeats {names}") for number, names in repeated],
            total=int(total),
        )
    extreme = con.execute(
        f"SELECT {row}, {text} FROM {lines} WHERE regexp_matches({text}, '{_EXTREME_NUMBER}') ORDER BY {row}"
    ).fetchall()
    bad = [(number, key, problem) for number, line in extreme for key, problem in _json_number_problems(line)]
    if bad:
        column = bad[0][1]
        raise TraceInputError(
            path,
            "numbers that cannot be stored as written",
            column=column,
            offenders=[(number, problem) for number, key, problem in bad if key == column],
            total=sum(key == column for _, key, _ in bad),
        )


def read_parquet_raw(con: duckdb.DuckDBPyConnection, path: Path, table: str = "raw") -> tuple[str, ...]:
    """Load a Parquet file with its own types plus `__row`."""
    sample(path)
    try:
        _create_numbered(con, table, f"read_parquet({sql_quote(str(path))})")
    except duckdb.Error as error:
        raise TraceInputError(path, f"not a readable Parquet file: {str(error).splitlines()[0]}") from error
    _require_rows(con, path, table)
    return tuple(name for name in table_columns(con, table) if name != ROW)


def read_raw(con: duckdb.DuckDBPyConnection, path: Path, table: str = "raw") -> tuple[str, ...]:
    """Load any supported container; returns the file's column names."""
    readers = {"csv": read_csv_raw, "jsonl": read_jsonl_raw, "parquet": read_parquet_raw}
    return readers[container_of(path)](con, path, table)


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    """Column names of a staging table, in order."""
    return [row[0] for row in con.execute(f"DESCRIBE {table}").fetchall()]


def _require_rows(con: duckdb.DuckDBPyConnection, path: Path, table: str) -> None:
    if con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0] == 0:
        raise TraceInputError(path, "has no data rows (only a header or blank lines)")
