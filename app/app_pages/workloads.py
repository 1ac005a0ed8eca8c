"""Workloads: pick a stored trace, see its arrivals, token shapes and label mix, or import a new one."""

from __future__ import annotations

import streamlit as st

from app import charts, state
from slmlab.traces.errors import TraceInputError
from slmlab.traces.formats import FORMATS
from slmlab.traces.importer import import_upload
from slmlab.traces.labelling import PRESETS, load_label_mix
from slmlab.traces.preview import preview_upload
from slmlab.traces.staged import ImportOptions, parse_mapping
from slmlab.traces.summary import labelling_note

db = state.database_path()
st.title("Workloads")
st.caption(f"Database: `{db}`. Every figure below is computed from the requests stored there.")

# The page's own field names for the CLI flags the importer's messages name (the same checks serve both).
PAGE_WORDS = (
    ("pass --format", "choose a **Format**"),
    ("or --map FIELD=COLUMN", "or fill **Column mapping** (FIELD=COLUMN pairs)"),
    ("--map FIELD=COLUMN", "**Column mapping** (FIELD=COLUMN pairs)"),
    ("--ignore COLUMN", "**Ignore columns**"),
    ("--arrival-unit", "**Arrival unit**"),
    ("--format", "**Format**"),
    ("--map", "**Column mapping**"),
    ("--ignore", "**Ignore columns**"),
    ("--name", "**Name**"),
    ("--keep-text", "**Keep prompt and response text**"),
)
OUTCOME = "import_outcome"  # the last import's result: stays on the page until the next import


def in_page_words(message: str) -> str:
    """An importer message with its CLI flags replaced by the names of this page's fields."""
    for flag, field in PAGE_WORDS:
        message = message.replace(flag, field)
    return message


def _columns(text: str) -> tuple[str, ...]:
    return tuple(c.strip() for c in text.split(",") if c.strip())


def _import(upload, fmt: str, name: str, mix_name: str, options: ImportOptions) -> None:  # type: ignore[no-untyped-def]
    """Import the upload; keep what happened in the session so it stays visible, and show the new trace."""
    lines: list[tuple[str, str]] = []
    with st.status(f"Importing {upload.name}...", expanded=True) as status:
        try:
            result = import_upload(
                upload.name,
                upload.getvalue(),
                db=db,
                fmt=fmt,
                name=name or None,
                label_mix=load_label_mix(mix_name),
                options=options,
                progress=status.write,
            )
        except (TraceInputError, ValueError) as error:
            status.update(label="Import failed; the database is unchanged", state="error")
            lines.append(("error", in_page_words(str(error))))
        else:
            if result.already_imported:
                status.update(label="Already imported; nothing changed", state="complete")
                lines.append(
                    ("info", f"This file is already stored as trace '{result.name}' ({result.rows:,} requests).")
                )
            else:
                status.update(label="Imported", state="complete")
                lines.append(("success", f"Imported {result.rows:,} requests as trace '{result.name}'."))
                if result.labelling.get("synthetic_fields"):
                    lines.append(
                        (
                            "caption",
                            f"labels: {', '.join(result.labelling['synthetic_fields'])} are synthetic "
                            f"(mix '{result.labelling['mix_name']}', seed {result.labelling['seed']})",
                        )
                    )
                if result.report.get("recorded"):
                    lines.append(("caption", "recorded per request: " + ", ".join(result.report["recorded"])))
                for assumption in result.report.get("assumptions") or []:
                    lines.append(("warning", f"ASSUMPTION: {in_page_words(str(assumption))}"))
                if moved := result.report.get("rows_out_of_order"):
                    lines.append(
                        (
                            "info",
                            f"{moved:,} row(s) arrived earlier than the row before them; "
                            "requests were sorted by arrival time.",
                        )
                    )
            st.session_state["show_trace"] = result.name  # the page switches to the trace just imported
    st.session_state[OUTCOME] = lines


with st.expander("Import a trace", expanded=OUTCOME in st.session_state):
    upload = st.file_uploader("Trace or outcome file", type=["csv", "jsonl", "ndjson", "json", "parquet"])
    left, middle, right = st.columns(3)
    fmt = left.selectbox("Format", ["auto", *FORMATS], help="auto detects the format from the header")
    name = middle.text_input("Name (optional)", help="defaults to the file name")
    mix_name = right.selectbox(
        "Label mix", [*PRESETS, "none"], help="synthetic enterprise labels for unlabelled traces"
    )
    left, middle, right = st.columns([2, 2, 1])
    mapping = left.text_input(
        "Column mapping",
        placeholder="arrival=ts,input_tokens=prompt_len",
        help="FIELD=COLUMN pairs, comma-separated: which file column holds each slmlab field (generic format)",
    )
    ignore = middle.text_input(
        "Ignore columns",
        placeholder="user_id,cache_hit",
        help="comma-separated file columns to skip (e.g. the extra fields of an OpenAI or LiteLLM usage export)",
    )
    arrival_unit = right.selectbox(
        "Arrival unit", ["auto", "timestamp", "s", "ms"], help="how the arrival column counts time (auto detects it)"
    )
    keep_text = st.checkbox(
        "Keep prompt and response text",
        value=False,
        help="gateway/observability logs: prompts and responses can hold personal data and are not stored unless asked",
    )
    try:
        options = ImportOptions(
            mapping=parse_mapping([mapping]), ignore=_columns(ignore), arrival_unit=arrival_unit, keep_text=keep_text
        )
    except ValueError as error:
        st.error(in_page_words(str(error)))
        options = None
    if upload is not None and options is not None:
        try:
            # a mapping reads the file as generic, as the import does with 'auto'
            shown = "generic" if fmt == "auto" and options.mapping else fmt
            preview = preview_upload(upload.name, upload.getvalue(), shown, options)
        except (TraceInputError, ValueError) as error:
            st.error(in_page_words(str(error)))
        else:
            st.caption(f"Format: **{preview.format}**: {in_page_words(preview.summary)}")
            if preview.mapping:
                st.dataframe(
                    [{"slmlab field": field, "read from the log": source} for field, source in preview.mapping.items()],
                    hide_index=True,
                )
            for assumption in preview.assumptions:
                st.warning(f"ASSUMPTION: {in_page_words(assumption)}")
            for note in preview.notes:
                st.caption(in_page_words(note))
    if st.button("Import", disabled=upload is None or options is None, type="primary"):
        _import(upload, fmt, name, mix_name, options)  # type: ignore[arg-type]
    for kind, text in st.session_state.get(OUTCOME, []):
        {"error": st.error, "info": st.info, "success": st.success, "warning": st.warning}.get(kind, st.caption)(text)

summaries = state.traces(str(db), state.database_version(db))
if not summaries:
    st.info("No traces yet. Import one above, or run `slmlab defaults` for the shipped Azure traces.")
    st.stop()

by_label = {f"{s.name} ({s.rows:,} requests, {s.kind})": s for s in summaries}
if shown := st.session_state.pop("show_trace", None):  # just imported: show it
    for label, s in by_label.items():
        if s.name == shown:
            st.session_state["workload_trace"] = label
summary = by_label[st.selectbox("Trace", list(by_label), key="workload_trace")]
frame = state.requests(str(db), state.database_version(db), summary.trace_id)
synthetic = bool(summary.labelling.get("synthetic_fields"))

columns = st.columns(5)
columns[0].metric("Requests", f"{summary.rows:,}")
columns[1].metric("Time span", f"{summary.time_span_s / 60:,.1f} min" if summary.time_span_s else "n/a")
columns[2].metric("Arrival rate", f"{summary.arrival_rate_per_s:,.2f} req/s" if summary.arrival_rate_per_s else "n/a")
columns[3].metric(
    "Mean input tokens", f"{summary.input_tokens.mean:,.0f}" if summary.input_tokens.mean is not None else "n/a"
)
columns[4].metric(
    "Mean output tokens", f"{summary.output_tokens.mean:,.0f}" if summary.output_tokens.mean is not None else "n/a"
)
st.caption(
    f"Source: `{summary.source_file}` ({summary.format}), imported {summary.imported_at} UTC. "
    "Counts, times and tokens are recorded in the trace."
)
(st.warning if synthetic else st.caption)(f"Labels: {labelling_note(summary.labelling)}")

arrivals, tokens, labels = st.tabs(["Arrivals", "Tokens", "Task and data class"])
with arrivals:
    if summary.time_span_s:
        bin_s = st.select_slider("Bin width (seconds)", [1, 5, 10, 30, 60, 300], value=60)
        st.plotly_chart(charts.arrivals_over_time(frame, bin_s), width="stretch")
    else:
        st.info("This trace records no arrival times (it is a set of recorded outcomes).")
with tokens:
    if summary.input_tokens.mean is not None:
        left, right = st.columns(2)
        left.plotly_chart(charts.token_distribution(frame, "input_tokens", "Input tokens"), width="stretch")
        right.plotly_chart(charts.token_distribution(frame, "output_tokens", "Output tokens"), width="stretch")
    else:
        st.info("This trace records no token counts.")
with labels:
    if summary.task_mix:
        left, middle, right = st.columns(3)
        left.plotly_chart(charts.label_mix(frame, "task", "Task", synthetic), width="stretch")
        middle.plotly_chart(charts.label_mix(frame, "data_class", "Data class", synthetic), width="stretch")
        right.plotly_chart(charts.label_mix(frame, "residency", "Residency requirement", synthetic), width="stretch")
    else:
        st.info("This trace has no task or data-class labels; import it with a label mix to add synthetic ones.")
