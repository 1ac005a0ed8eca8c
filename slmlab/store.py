"""The one owner of the DuckDB schema: numbered migrations, short-lived connections, lock-aware retries.

DuckDB lets one process write a file at a time (and a writer excludes readers in other processes), so
every caller opens a connection for one unit of work and closes it; a caller that meets a lock waits
with backoff instead of failing, and gets a clear `DatabaseBusy` when the wait runs out.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from slmlab.paths import resolve_db_path

if TYPE_CHECKING:
    import pyarrow as pa


class DatabaseUnavailable(RuntimeError):
    """The warehouse file cannot be opened (not a DuckDB file, unreadable, newer storage version)."""


class DatabaseBusy(DatabaseUnavailable):
    """Another process held the database lock for longer than we were willing to wait."""


def m001_initial(con: duckdb.DuckDBPyConnection) -> None:
    """Traces, their requests, and per-request model outcomes."""
    con.execute("CREATE SEQUENCE trace_id_seq START 1")
    con.execute(
        """
        CREATE TABLE traces (
            trace_id      INTEGER PRIMARY KEY DEFAULT nextval('trace_id_seq'),
            name          VARCHAR NOT NULL UNIQUE,
            source_file   VARCHAR NOT NULL,
            format        VARCHAR NOT NULL,
            content_hash  VARCHAR NOT NULL UNIQUE,   -- hash of the imported file's bytes (m010: 'blake3:<hex>')
            imported_at   TIMESTAMP NOT NULL,
            row_count     BIGINT NOT NULL,
            kind          VARCHAR NOT NULL,          -- 'workload' (arrivals) or 'outcomes' (recorded quality)
            labelling     JSON NOT NULL,             -- where task / data class / residency / SLO came from
            import_report JSON NOT NULL              -- options used, rows re-sorted, slmlab version
        )
        """
    )
    con.execute(
        """
        CREATE TABLE requests (
            trace_id        INTEGER NOT NULL,
            request_id      VARCHAR NOT NULL,
            seq             BIGINT NOT NULL,         -- 0-based position in arrival order
            source_row      BIGINT,                  -- 1-based data row in the source file (header excluded)
            arrival_s       DOUBLE,                  -- seconds after the trace's first arrival
            arrived_at      TIMESTAMP_NS,            -- absolute time, where the trace records one
            input_tokens    BIGINT,
            output_tokens   BIGINT,
            task            VARCHAR,
            data_class      VARCHAR,
            residency       VARCHAR,
            tenant          VARCHAR,
            latency_slo_ms  DOUBLE,
            category        VARCHAR,                 -- the source's own grouping: eval name, MMLU subject
            prompt          VARCHAR,
            reference       VARCHAR
        )
        """
    )
    con.execute(
        """
        CREATE TABLE outcomes (
            trace_id       INTEGER NOT NULL,
            request_id     VARCHAR NOT NULL,
            model          VARCHAR NOT NULL,
            correct        BOOLEAN,
            score          DOUBLE,                   -- 0..1
            confidence     DOUBLE,
            input_tokens   BIGINT,
            output_tokens  BIGINT,
            latency_ms     DOUBLE,
            cost_usd       DOUBLE,
            response       VARCHAR,
            judge          VARCHAR,
            source         VARCHAR NOT NULL CHECK (source IN ('measured', 'recorded', 'assumption')),
            source_detail  VARCHAR                   -- which file, run or assumption produced the numbers
        )
        """
    )


def m002_prefix_hash_ids(con: duckdb.DuckDBPyConnection) -> None:
    """Mooncake traces list the prompt-prefix blocks of each request; keep them to study prefix sharing."""
    con.execute("ALTER TABLE requests ADD COLUMN prefix_hash_ids BIGINT[]")


def m003_bench_runs(con: duckdb.DuckDBPyConnection) -> None:
    """Benchmark runs with everything that produced them, and every raw sample."""
    con.execute("CREATE SEQUENCE bench_run_id_seq START 1")
    con.execute(
        """
        CREATE TABLE bench_runs (
            run_id          INTEGER PRIMARY KEY DEFAULT nextval('bench_run_id_seq'),
            started_at      TIMESTAMP NOT NULL,
            source          VARCHAR NOT NULL CHECK (source IN ('measured', 'imported')),
            model_name      VARCHAR,
            model_path      VARCHAR,
            model_sha256    VARCHAR NOT NULL,
            model           JSON NOT NULL,       -- GGUF metadata: architecture, parameters, quantization, ...
            test            VARCHAR NOT NULL,    -- llama-bench name: pp512, tg128, pp512+tg128
            config          JSON NOT NULL,       -- threads, batch sizes, GPU layers, KV type, depth, reps, seed
            fingerprint     VARCHAR NOT NULL,    -- short hash of the hardware census
            census          JSON NOT NULL,
            versions        JSON NOT NULL,       -- llama-cpp-python, llama.cpp system info, slmlab
            load_s          DOUBLE,
            peak_rss_bytes  BIGINT,
            summary         JSON NOT NULL,       -- per metric: n, mean, sd, 95% interval; ITL percentiles
            roofline        JSON                 -- bandwidth, decode ceiling, efficiency
        )
        """
    )
    con.execute(
        "CREATE TABLE bench_samples (run_id INTEGER NOT NULL, rep INTEGER NOT NULL, metric VARCHAR NOT NULL, "
        "value DOUBLE NOT NULL)"
    )


def m004_bench_sweep_id(con: duckdb.DuckDBPyConnection) -> None:
    """Runs of one `--sweep` share an id, so a grid can be drawn back as a heat map."""
    con.execute("ALTER TABLE bench_runs ADD COLUMN sweep_id VARCHAR")


def m005_eval_runs(con: duckdb.DuckDBPyConnection) -> None:
    """Quality evaluations: one row per (model, task, split, prompt and decoding config), resumable by run_key."""
    con.execute("CREATE SEQUENCE eval_run_id_seq START 1")
    con.execute(
        """
        CREATE TABLE eval_runs (
            run_id        INTEGER PRIMARY KEY DEFAULT nextval('eval_run_id_seq'),
            run_key       VARCHAR NOT NULL UNIQUE,   -- hash of everything that shapes the answers; same key resumes
            started_at    TIMESTAMP NOT NULL,
            updated_at    TIMESTAMP NOT NULL,
            source        VARCHAR NOT NULL CHECK (source IN ('measured', 'assumption')),
            model_name    VARCHAR NOT NULL,
            model_sha256  VARCHAR,
            task          VARCHAR NOT NULL,
            split         VARCHAR NOT NULL,
            trace_id      INTEGER NOT NULL,          -- the task's requests, stored as a trace of kind 'task'
            config        JSON NOT NULL,
            versions      JSON NOT NULL,
            summary       JSON                       -- accuracy, calibration error, validity, confidence statistics
        )
        """
    )
    con.execute("ALTER TABLE outcomes ADD COLUMN eval_run_id INTEGER")
    con.execute("ALTER TABLE outcomes ADD COLUMN details JSON")  # validity, per-field results and confidences
    con.execute("CREATE UNIQUE INDEX outcomes_once_per_eval ON outcomes (eval_run_id, request_id)")


def m006_sim_runs(con: duckdb.DuckDBPyConnection) -> None:
    """Routing replays: each run's full configuration, per-policy summary, per-request results and sweep points."""
    con.execute("CREATE SEQUENCE sim_run_id_seq START 1")
    con.execute(
        """
        CREATE TABLE sim_runs (
            run_id             INTEGER PRIMARY KEY DEFAULT nextval('sim_run_id_seq'),
            created_at         TIMESTAMP NOT NULL,
            trace_id           INTEGER NOT NULL,
            trace_name         VARCHAR NOT NULL,
            trace_hash         VARCHAR NOT NULL,     -- content hash of the replayed trace
            catalogue_version  VARCHAR NOT NULL,     -- the price catalogue the API prices came from
            seed               BIGINT NOT NULL,
            config             JSON NOT NULL,        -- replay inputs config and every policy with its parameters
            portfolio          JSON NOT NULL,        -- every model with each figure's source
            inputs             JSON NOT NULL,        -- where quality, confidence and token counts came from
            summary            JSON NOT NULL,        -- per policy: cost, quality, latency, residency, vs baseline
            versions           JSON NOT NULL,
            seconds            DOUBLE NOT NULL,
            requests_stored    BOOLEAN NOT NULL
        )
        """
    )
    con.execute(
        """
        CREATE TABLE sim_requests (
            run_id INTEGER NOT NULL, policy VARCHAR NOT NULL, seq BIGINT NOT NULL, request_id VARCHAR NOT NULL,
            copy INTEGER NOT NULL, decision VARCHAR, model VARCHAR, attempts VARCHAR, reason VARCHAR, cost_usd DOUBLE,
            queue_wait_ms DOUBLE, ttft_ms DOUBLE, latency_ms DOUBLE, correct BOOLEAN, quality_source VARCHAR,
            residency_violation BOOLEAN, slo_violation BOOLEAN, data_class VARCHAR, task VARCHAR
        )
        """
    )
    con.execute(
        """
        CREATE TABLE sim_points (
            run_id INTEGER NOT NULL, policy VARCHAR NOT NULL, parameter VARCHAR, value DOUBLE,
            cost_usd DOUBLE NOT NULL, quality DOUBLE NOT NULL, frontier_share DOUBLE, p95_ms DOUBLE, pareto BOOLEAN
        )
        """
    )


def m007_scenarios(con: duckdb.DuckDBPyConnection) -> None:
    """Named projection scenarios: the replay run they scale, their assumptions and their result."""
    con.execute(
        """
        CREATE TABLE scenarios (
            name         VARCHAR PRIMARY KEY,
            saved_at     TIMESTAMP NOT NULL,
            run_id       INTEGER NOT NULL,
            assumptions  JSON NOT NULL,
            result       JSON NOT NULL
        )
        """
    )


def m008_request_ids_zstd(con: duckdb.DuckDBPyConnection) -> None:
    """Request ids are mostly unique strings: DuckDB's default string compression spent a quarter of a large
    import's write on them, zstd takes half that for about 2.5 bytes more a row. DuckDB cannot change a column's
    compression in place, so the table is rebuilt with every row and column it has."""
    ddl = con.execute("SELECT sql FROM duckdb_tables() WHERE table_name = 'requests'").fetchall()[0][0]
    column = "request_id VARCHAR NOT NULL"
    if ddl.count(column) != 1 or not ddl.startswith("CREATE TABLE requests("):
        raise RuntimeError(f"m008: unexpected requests table definition: {ddl}")
    con.execute(
        ddl.replace("CREATE TABLE requests(", "CREATE TABLE requests_zstd(", 1).replace(
            column, f"{column} USING COMPRESSION zstd"
        )
    )
    con.execute("INSERT INTO requests_zstd SELECT * FROM requests")
    con.execute("DROP TABLE requests")
    con.execute("ALTER TABLE requests_zstd RENAME TO requests")


# What the `requests` view gives for each stored request (m009): the same columns, in the same order, as the
# table it replaced. Ids, source rows and arrival times the view derives are exactly what the old table held.
REQUESTS_VIEW = """
CREATE VIEW requests AS
SELECT r.trace_id,
       coalesce(d.request_id, CAST(r.source_row AS VARCHAR)) AS request_id,
       r.seq, r.source_row,
       r.arrival_ns / 1e9 AS arrival_s,
       make_timestamp_ns(epoch_ns(t.first_arrival_at) + r.arrival_ns) AS arrived_at,
       r.input_tokens, r.output_tokens,
       l.task, l.data_class, l.residency, l.tenant, l.latency_slo_ms,
       d.category, d.prompt, d.reference, d.prefix_hash_ids
FROM request_rows r
LEFT JOIN traces t ON t.trace_id = r.trace_id
LEFT JOIN label_sets l ON l.trace_id = r.trace_id AND l.label_set = r.label_set
LEFT JOIN request_details d ON d.trace_id = r.trace_id AND d.seq = r.seq
"""


def m009_narrow_requests(con: duckdb.DuckDBPyConnection) -> None:
    """DuckDB spends about as long writing a column of NULLs or of repeated labels as a column of numbers, so a
    5-million-row import spent most of its time on 17 columns an arrival trace mostly leaves empty or repeats.
    Requests are now stored in three tables and read through a `requests` view with the old columns:
    - `request_rows`, one narrow row per request: the numbers only, arrival as nanoseconds after the trace's
      first arrival (`traces.first_arrival_at`), and a `label_set` code;
    - `label_sets`, each trace's distinct label combinations (task, data class, residency, tenant, SLO);
    - `request_details`, only for requests that carry text or an id of their own: a request id other than its
      source row, category, prompt, reference, prefix hash ids.
    Every row of the old table is moved; the view returns the same values."""
    con.execute("ALTER TABLE traces ADD COLUMN first_arrival_at TIMESTAMP_NS")  # NULL: relative arrivals only
    con.execute(
        """
        CREATE TABLE request_rows (
            trace_id       INTEGER NOT NULL,
            seq            BIGINT NOT NULL,          -- 0-based position in arrival order
            source_row     BIGINT,                   -- 1-based data row in the source file (header excluded)
            arrival_ns     BIGINT,                   -- nanoseconds after the trace's first arrival
            input_tokens   BIGINT,
            output_tokens  BIGINT,
            label_set      INTEGER NOT NULL          -- row of label_sets for this trace
        )
        """
    )
    con.execute(
        """
        CREATE TABLE label_sets (
            trace_id        INTEGER NOT NULL,
            label_set       INTEGER NOT NULL,
            task            VARCHAR,
            data_class      VARCHAR,
            residency       VARCHAR,
            tenant          VARCHAR,
            latency_slo_ms  DOUBLE
        )
        """
    )
    con.execute(
        """
        CREATE TABLE request_details (
            trace_id         INTEGER NOT NULL,
            seq              BIGINT NOT NULL,
            request_id       VARCHAR NOT NULL,
            category         VARCHAR,                -- the source's own grouping: eval name, MMLU subject
            prompt           VARCHAR,
            reference        VARCHAR,
            prefix_hash_ids  BIGINT[]
        )
        """
    )
    con.execute(
        "UPDATE traces SET first_arrival_at = f.first FROM "
        "(SELECT trace_id, min(arrived_at) AS first FROM requests GROUP BY trace_id) f WHERE f.trace_id = "
        "traces.trace_id"
    )
    con.execute(
        """
        INSERT INTO label_sets
        SELECT trace_id,
               CAST(row_number() OVER (PARTITION BY trace_id
                                       ORDER BY task, data_class, residency, tenant, latency_slo_ms) - 1 AS INTEGER),
               task, data_class, residency, tenant, latency_slo_ms
        FROM (SELECT DISTINCT trace_id, task, data_class, residency, tenant, latency_slo_ms FROM requests)
        """
    )
    con.execute(
        """
        INSERT INTO request_rows
        SELECT r.trace_id, r.seq, r.source_row,
               CASE WHEN r.arrived_at IS NOT NULL THEN epoch_ns(r.arrived_at) - epoch_ns(t.first_arrival_at)
                    ELSE CAST(round(r.arrival_s * 1e9) AS BIGINT) END,
               r.input_tokens, r.output_tokens, l.label_set
        FROM requests r
        LEFT JOIN traces t ON t.trace_id = r.trace_id
        JOIN label_sets l ON l.trace_id = r.trace_id AND l.task IS NOT DISTINCT FROM r.task
             AND l.data_class IS NOT DISTINCT FROM r.data_class AND l.residency IS NOT DISTINCT FROM r.residency
             AND l.tenant IS NOT DISTINCT FROM r.tenant AND l.latency_slo_ms IS NOT DISTINCT FROM r.latency_slo_ms
        """
    )
    con.execute(
        """
        INSERT INTO request_details
        SELECT trace_id, seq, request_id, category, prompt, reference, prefix_hash_ids FROM requests
        WHERE request_id IS DISTINCT FROM CAST(source_row AS VARCHAR) OR category IS NOT NULL OR prompt IS NOT NULL
              OR reference IS NOT NULL OR prefix_hash_ids IS NOT NULL
        """
    )
    moved, kept = con.execute("SELECT (SELECT count(*) FROM request_rows), (SELECT count(*) FROM requests)").fetchall()[
        0
    ]
    if moved != kept:
        raise RuntimeError(f"m009: moved {moved} of {kept} requests; the database is left as it was")
    con.execute("DROP TABLE requests")
    con.execute(REQUESTS_VIEW)


def m010_hash_algorithm_prefix(con: duckdb.DuckDBPyConnection) -> None:
    """Imported files are now keyed by BLAKE3 ('blake3:<hex>'), half the CPU time of sha256 on a large trace.
    The sha256 keys stored before are marked 'sha256:<hex>' (and so are the replays that name them), so
    importing one of those files again is still recognised: the importer also computes sha256 while any such
    key remains. Task traces keep their own key (a hash of the task's examples)."""
    con.execute(
        "UPDATE traces SET content_hash = 'sha256:' || content_hash "
        "WHERE kind IN ('workload', 'outcomes') AND content_hash NOT LIKE '%:%'"
    )
    con.execute(
        "UPDATE sim_runs SET trace_hash = 'sha256:' || trace_hash WHERE trace_hash NOT LIKE '%:%' "
        "AND trace_id IN (SELECT trace_id FROM traces WHERE kind IN ('workload', 'outcomes'))"
    )


def m012_request_records(con: duckdb.DuckDBPyConnection) -> None:
    """Gateway and observability logs (LiteLLM, OTLP GenAI spans, Langfuse, OpenAI usage) record per request what
    was called and what it cost. That stays recorded, beside the request (`seq`), for the bill and latency checks:
    model and provider as logged, end-to-end latency and time to first token (ms, where the log has them), the
    logged cost, cached input tokens, status ('success'/'failure') and error, the team, user and tags of the call,
    and the response text only when the import was asked to keep text. `recorded_calls` joins them to requests."""
    con.execute(
        """
        CREATE TABLE request_records (
            trace_id       INTEGER NOT NULL,
            seq            BIGINT NOT NULL,          -- the request (request_rows.seq)
            model          VARCHAR,                  -- as the log names it
            provider       VARCHAR,
            latency_ms     DOUBLE,                   -- end-to-end, as recorded
            ttft_ms        DOUBLE,                   -- time to first token, streamed calls only
            cost_usd       DOUBLE,                   -- the logged cost
            cached_tokens  BIGINT,                   -- input tokens served from the provider's prompt cache
            status         VARCHAR,                  -- 'success' or 'failure'
            error          VARCHAR,
            team           VARCHAR,
            user_id        VARCHAR,
            tags           VARCHAR,                  -- comma-separated
            response       VARCHAR                   -- only with --keep-text
        )
        """
    )
    con.execute(
        "CREATE VIEW recorded_calls AS SELECT r.*, c.model, c.provider, c.latency_ms, c.ttft_ms, c.cost_usd, "
        "c.cached_tokens, c.status, c.error, c.team, c.user_id, c.tags "
        "FROM requests r JOIN request_records c ON c.trace_id = r.trace_id AND c.seq = r.seq"
    )


def m013_service_curves(con: duckdb.DuckDBPyConnection) -> None:
    """Batched service curves: B sequences prefilling and decoding together in one llama.cpp context, one row per
    (curve, B). A B whose KV cache does not fit is stored with fits = false and no speeds; contended curves are
    kept (and flagged) so a user can still pick one, but readers skip them by default. bench_runs gets the same
    contention columns."""
    con.execute(
        """
        CREATE TABLE service_curves (
            curve_id            VARCHAR NOT NULL,
            created_at          TIMESTAMP NOT NULL,
            model               VARCHAR NOT NULL,   -- canonical name (`slmlab models` key, else the file's stem)
            model_path          VARCHAR,
            model_sha256        VARCHAR,
            machine             VARCHAR NOT NULL,   -- hardware census fingerprint, as bench_runs.fingerprint
            n_threads           INTEGER NOT NULL,
            n_gpu_layers        INTEGER NOT NULL,
            n_ctx               INTEGER NOT NULL,   -- context cells this B needed: B x (pp + tg)
            pp                  INTEGER NOT NULL,   -- prompt tokens per sequence
            tg                  INTEGER NOT NULL,   -- generated tokens per sequence
            batch               INTEGER NOT NULL,   -- B: sequences served together
            prefill_tok_s       DOUBLE,             -- B x pp / time to prefill all B prompts
            decode_tok_s        DOUBLE,             -- aggregate: B x tg / time of the tg decode steps
            itl_s               DOUBLE,             -- per-sequence inter-token latency (mean decode step time)
            itl_p95_s           DOUBLE,
            ttft_s              DOUBLE,             -- time to first token when all B arrive together
            kv_bytes_per_token  BIGINT NOT NULL,    -- KV cache bytes one context cell holds (all layers, K+V)
            fits                BOOLEAN NOT NULL,   -- false: B x (pp + tg) cells did not fit in memory
            contended           BOOLEAN NOT NULL,   -- other processes took CPU past the threshold during the run
            contention          JSON,               -- what was sampled: other processes' CPU, load, steal
            config              JSON NOT NULL,      -- flash attention, cache types, batch sizes, reps
            versions            JSON NOT NULL,
            PRIMARY KEY (curve_id, batch)
        )
        """
    )
    # single-sequence runs get the same contention record (NULL: a run stored before sampling existed)
    con.execute("ALTER TABLE bench_runs ADD COLUMN contended BOOLEAN")
    con.execute("ALTER TABLE bench_runs ADD COLUMN contention JSON")


def m014_validations(con: duckdb.DuckDBPyConnection) -> None:
    """Replays checked against a real batched engine (`slmlab validate`): a slice of a trace played in real time
    through llama.cpp and through the simulator with the same curve, slots and arrivals; p50/p95 errors and the
    per-request times of both (for the CDF overlay)."""
    con.execute(
        """
        CREATE TABLE validations (
            validation_id  INTEGER PRIMARY KEY,
            created_at     TIMESTAMP NOT NULL,
            trace          VARCHAR NOT NULL,
            model          VARCHAR NOT NULL,
            load           DOUBLE NOT NULL,
            requests       INTEGER NOT NULL,
            config         JSON NOT NULL,   -- slice, slots, threads, token caps, speed factor
            curve          JSON NOT NULL,   -- the service curve the simulator used (measured just before)
            errors         JSON NOT NULL,   -- {ttft|latency: {p50|p95: {simulated_ms, real_ms, error}}}
            per_request    JSON NOT NULL    -- arrival, tokens, real and simulated TTFT and latency of each request
        )
        """
    )


def m015_replay_scenarios(con: duckdb.DuckDBPyConnection) -> None:
    """Named replay scenarios: every assumption set on the Routing replay page, kept as the `slmlab simulate`
    arguments that reproduce it (`slmlab simulate --scenario NAME`) beside the settings as the page shows them."""
    con.execute(
        """
        CREATE TABLE replay_scenarios (
            name      VARCHAR PRIMARY KEY,
            saved_at  TIMESTAMP NOT NULL,
            argv      JSON NOT NULL,
            settings  JSON NOT NULL
        )
        """
    )


def m016_one_model_name(con: duckdb.DuckDBPyConnection) -> None:
    """Benchmark runs named the way curves, evaluations and the portfolio name a model (shipped key, else the file
    name without .gguf) instead of the GGUF header's free-text `general.name`; the header's name stays in `model`."""
    from slmlab.models import shipped_models

    shipped_now = shipped_models()
    for shipped in shipped_now:
        if shipped.path is not None:
            paths = sorted({str(shipped.path), str(shipped.path.resolve())})
            con.execute(
                f"UPDATE bench_runs SET model_name = ? WHERE model_path IN ({', '.join('?' * len(paths))})",
                [shipped.key, *paths],
            )
    keys = [m.key for m in shipped_now]
    con.execute(
        "UPDATE bench_runs SET model_name = regexp_replace(regexp_extract(model_path, '[^/\\\\]+$'), "
        f"'(?i)\\.gguf$', '') WHERE source = 'measured' AND model_path IS NOT NULL "
        f"AND model_name NOT IN ({', '.join('?' * len(keys))})",
        keys,
    )


def m017_hardware_profiles(con: duckdb.DuckDBPyConnection) -> None:
    """Service curves imported from other machines (`slmlab bench import`, e.g. llama-batched-bench on a GPU
    server) are marked `source = 'imported'` and keep the machine name given on import, so this machine's replay
    never mistakes them for its own; `hardware_profiles` holds the user's profiles of such machines (capex, power,
    memory, slots: `slmlab profiles add`), beside the shipped ones in datasets/assumptions/serving_profiles.json."""
    con.execute("ALTER TABLE service_curves ADD COLUMN source VARCHAR DEFAULT 'measured'")
    con.execute("UPDATE service_curves SET source = 'measured'")
    con.execute(
        """
        CREATE TABLE hardware_profiles (
            name        VARCHAR PRIMARY KEY,
            created_at  TIMESTAMP NOT NULL,
            profile     JSON NOT NULL   -- the fields of a serving_profiles.json entry
        )
        """
    )


def m018_validation_plays(con: duckdb.DuckDBPyConnection) -> None:
    """A validation may play its slice several times, each between two curve measurements (`slmlab validate
    --reps`): the errors of each play, the decode speeds measured around them and the contention sampled during
    the whole run are kept beside the pooled errors (NULL: one play, stored before this)."""
    con.execute("ALTER TABLE validations ADD COLUMN plays JSON")


def m019_curve_wake(con: duckdb.DuckDBPyConnection) -> None:
    """What waking an idle server costs its next step, measured with a curve (`slmlab bench --parallel`): a JSON
    list of [idle seconds, extra seconds], the same on every row of the curve (NULL: not measured, costs nothing)."""
    con.execute("ALTER TABLE service_curves ADD COLUMN wake JSON")


RECORDS_BASE, DETAILS_BASE = "request_records_base", "request_details_base"  # the tables behind the m020 views


def m020_trace_call_tables(con: duckdb.DuckDBPyConnection) -> None:
    """A log streamed into the warehouse (100M requests) keeps its typed staging table as the trace's own table of
    calls (`trace_calls_<trace_id>`, file order) instead of copying its recorded columns into `request_records` and
    `request_details`: DuckDB's write cost is per column, and the copy wrote them a second time (70 of 264 s at 100M
    rows). `request_records` and `request_details` become views over the tables they were (renamed `*_base`) and
    those trace tables (`traces.call_tables.refresh_views`); `call_moves` holds the arrival rank of each call that is
    not at its own file row (logs slightly out of order)."""
    con.execute(f"ALTER TABLE request_records RENAME TO {RECORDS_BASE}")
    con.execute(f"ALTER TABLE request_details RENAME TO {DETAILS_BASE}")
    con.execute("CREATE TABLE call_moves (trace_id INTEGER NOT NULL, file_row BIGINT NOT NULL, seq BIGINT NOT NULL)")
    con.execute(f"CREATE VIEW request_records AS SELECT * FROM {RECORDS_BASE}")
    con.execute(f"CREATE VIEW request_details AS SELECT * FROM {DETAILS_BASE}")


MIGRATIONS: list[Callable[[duckdb.DuckDBPyConnection], None]] = [
    m001_initial,
    m002_prefix_hash_ids,
    m003_bench_runs,
    m004_bench_sweep_id,
    m005_eval_runs,
    m006_sim_runs,
    m007_scenarios,
    m008_request_ids_zstd,
    m009_narrow_requests,
    m010_hash_algorithm_prefix,
    m012_request_records,
    m013_service_curves,
    m014_validations,
    m015_replay_scenarios,
    m016_one_model_name,
    m017_hardware_profiles,
    m018_validation_plays,
    m019_curve_wake,
    m020_trace_call_tables,
]


def applied_migrations(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Names of the migrations this database has recorded, oldest first."""
    con.execute("CREATE TABLE IF NOT EXISTS _migrations (name VARCHAR PRIMARY KEY, applied_at TIMESTAMP NOT NULL)")
    return [row[0] for row in con.execute("SELECT name FROM _migrations ORDER BY applied_at, name").fetchall()]


def migrate(
    con: duckdb.DuckDBPyConnection,
    migrations: list[Callable[[duckdb.DuckDBPyConnection], None]] | None = None,
) -> list[str]:
    """Apply the migrations not yet recorded, all in one transaction (an upgrade happens entirely or not at all,
    and a new file is ready in one commit); returns the names applied now."""
    done = set(applied_migrations(con))
    pending = [m for m in (MIGRATIONS if migrations is None else migrations) if m.__name__ not in done]
    if not pending:
        return []
    con.execute("BEGIN TRANSACTION")
    try:
        for migration in pending:
            migration(con)
            con.execute("INSERT INTO _migrations VALUES (?, now())", [migration.__name__])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return [m.__name__ for m in pending]


def _is_lock_error(error: Exception) -> bool:
    """Another process holds the file, or this process has it open read-only while we want to write (or the
    reverse): both clear as soon as the other short-lived connection closes."""
    message = str(error).lower()
    in_process = "different configuration than existing connections" in message
    return in_process or ("lock" in message and ("conflicting" in message or "could not set" in message))


def _open_with_retry(path: Path, read_only: bool, wait_s: float) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + wait_s
    delay = 0.02
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.Error as error:
            if not _is_lock_error(error):
                raise DatabaseUnavailable(f"cannot open the database {path}: {str(error).splitlines()[0]}") from error
            if time.monotonic() >= deadline:
                raise DatabaseBusy(
                    f"{path} is locked by another process for more than {wait_s:.0f} s "
                    f"(DuckDB allows one writing process at a time): {error}"
                ) from error
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


_migrated: set[Path] = set()
_migrated_guard = threading.Lock()


def _open_migrated(path: Path, read_only: bool, wait_s: float) -> duckdb.DuckDBPyConnection:
    """A connection to an up-to-date warehouse. The first in a process migrates the file (creating it if need
    be) and, when it is to write anyway, goes on with the same connection."""
    with _migrated_guard:
        if path not in _migrated:
            path.parent.mkdir(parents=True, exist_ok=True)
            con = _open_with_retry(path, read_only=False, wait_s=wait_s)
            try:
                migrate(con)
            except BaseException:
                con.close()
                raise
            _migrated.add(path)
            if not read_only:
                return con
            con.close()
    return _open_with_retry(path, read_only=read_only, wait_s=wait_s)


@contextmanager
def connect(
    db: str | Path | None = None, *, read_only: bool = False, wait_s: float = 60.0
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short-lived connection to an up-to-date warehouse; close it as soon as the unit of work is done."""
    con = _open_migrated(resolve_db_path(db).resolve(), read_only, wait_s)
    try:
        yield con
    finally:
        con.close()


@contextmanager
def transaction(db: str | Path | None = None, *, wait_s: float = 60.0) -> Iterator[duckdb.DuckDBPyConnection]:
    """All-or-nothing writes: commit when the block ends, roll back on any exception."""
    with connect(db, wait_s=wait_s) as con:
        con.execute("BEGIN TRANSACTION")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")


def query_arrow(con: duckdb.DuckDBPyConnection, sql: str) -> pa.Table:
    """A query's result as an Arrow table (`to_arrow_table` in DuckDB 2, `arrow` in 1.x)."""
    relation = con.sql(sql)
    fetch = getattr(relation, "to_arrow_table", None) or relation.arrow
    return fetch()
