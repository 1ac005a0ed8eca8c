"""Model quality: how often each small model is right on each task, and how far its confidence can be trusted."""

from __future__ import annotations

import tempfile
from pathlib import Path

import polars as pl
import streamlit as st

from app import charts, state
from app.widgets import job_status
from bench.assumptions import assume_accuracy
from bench.evaluate import EvalConfig
from bench.jobs import EvalJob
from bench.quality import run_figures
from bench.tasks import TASKS, TaskError, labelled_csv, resolve_task, stored_csv_tasks
from slmlab.models import shipped_models

db = state.database_path()
st.title("Model quality")
st.caption(
    "Accuracy and confidence are **measured here** with the real GGUF models on real task data (banking77) "
    "or on SYNTHETIC generated invoices. Frontier figures cannot be measured here: they are **assumptions** "
    "you set, and are shown as such."
)


def _uploaded_task():
    """A task from an uploaded labelled CSV, once its text and label columns are chosen."""
    upload = st.file_uploader("Or upload a labelled CSV (a text column and a label column)", type=["csv"])
    if upload is None:
        return None
    with tempfile.NamedTemporaryFile(suffix=".csv", delete=False) as handle:
        handle.write(upload.getvalue())
    try:
        columns = labelled_csv.header(handle.name)
        left, right = st.columns(2)
        text_column = left.selectbox("Text column", columns, index=0)
        label_column = right.selectbox("Label column", columns, index=min(1, len(columns) - 1))
        return labelled_csv.load(handle.name, text_column, label_column, origin=upload.name)
    except TaskError as error:
        st.error(str(error))
        return None
    finally:
        Path(handle.name).unlink(missing_ok=True)


with st.expander("Run an evaluation", expanded=False):
    installed = {m.name: m.key for m in shipped_models() if m.installed}
    left, middle, right = st.columns(3)
    choice = left.selectbox("Model", [*installed, "Other .gguf file"])
    path = left.text_input("Path to a .gguf file", disabled=choice != "Other .gguf file")
    task_name = middle.selectbox("Task", [*TASKS, *stored_csv_tasks(db)])
    limit = middle.number_input("Requests (seeded sample)", min_value=1, max_value=5000, value=50)
    shots = right.number_input("Worked examples in the prompt", min_value=0, max_value=50, value=0)
    constrained = right.toggle("Constrained decoding (always a valid label or JSON)", value=True)
    label_style = right.radio(
        "Labels shown as",
        ["words", "names"],
        horizontal=True,
        help="'card arrival' or 'card_arrival'; plain words helped both shipped models",
    )
    uploaded = _uploaded_task()
    job: EvalJob | None = st.session_state.get("eval_job")
    busy = job is not None and not job.finished
    if st.button("Run evaluation", type="primary", disabled=busy):
        try:
            task = uploaded or resolve_task(task_name, db)
            config = EvalConfig(
                task=task.name, limit=int(limit), shots=int(shots), constrained=constrained, label_style=label_style
            )
        except (TaskError, ValueError) as error:
            st.error(str(error))
        else:
            model = installed.get(choice) or path
            st.session_state["eval_job"] = EvalJob(model, db, config=config, task=task).start()


job_status(
    "eval_job",
    running=lambda job: f"Evaluating {job.model}: request {job.done_steps} of {job.total_steps}",
    stored=lambda job: (
        f"Stored eval run {job.result.run_id}: accuracy {job.result.summary['accuracy']:.1%} "
        f"over {job.result.summary['n']} requests."
    ),
    failed=lambda job: f"Evaluation stopped: {job.error}",
)

with st.expander("Set a frontier model's accuracy (an assumption)", expanded=False):
    st.caption(
        "No API is reachable from here. Enter a published or contracted accuracy; it is stored with "
        "source 'assumption' and never shown as measured."
    )
    left, middle, right = st.columns(3)
    frontier = left.text_input("Model name", value="gpt-4o")
    assumed_task = middle.selectbox("Task ", [*TASKS, *stored_csv_tasks(db)], key="assumed_task")
    accuracy = right.slider("Accuracy", 0.0, 1.0, 0.9, 0.01)
    if st.button("Store assumption"):
        run_id, rows = assume_accuracy(frontier.strip() or "frontier", resolve_task(assumed_task, db), accuracy, db=db)
        st.success(f"Stored: {frontier} at {accuracy:.0%} on {rows:,} requests of {assumed_task} (eval run {run_id}).")

version = state.database_version(db)
runs = state.eval_runs(str(db), version)
if runs.is_empty():
    st.info("No evaluations yet. Run one above, or `slmlab eval --model smollm2-135m --task banking77 --limit 200`.")
    st.stop()

st.plotly_chart(charts.accuracy_by_model(runs), width="stretch")
st.dataframe(
    runs.select(
        "run_id",
        "model",
        "task",
        "split",
        "variant",
        "source",
        "n",
        "accuracy",
        "mean_score",
        "calibration_error",
        "validity_rate",
        "updated_at",
    ),
    hide_index=True,
    width="stretch",
    column_config={
        "accuracy": st.column_config.NumberColumn(format="percent"),
        "mean_score": st.column_config.NumberColumn(
            "fields right", format="percent", help="extraction: share of fields right"
        ),
        "validity_rate": st.column_config.NumberColumn(format="percent"),
        "calibration_error": st.column_config.NumberColumn("ECE", format="%.3f"),
    },
)

measured = runs.filter(pl.col("source") == "measured")
if measured.is_empty():
    st.stop()
labels = {
    f"run {r['run_id']}: {r['model']} on {r['task']} ({r['variant']}, {r['n']} requests)": r["run_id"]
    for r in measured.iter_rows(named=True)
}
run_id = labels[st.selectbox("Evaluation", list(labels))]
rows = state.eval_outcomes(str(db), version, run_id)
figures = run_figures(rows)
accuracy_all = rows["correct"].mean() if rows.height else None
reliability_tab, coverage_tab, confused_tab, browser_tab = st.tabs(
    ["Reliability", "Accuracy vs coverage", "Confused labels", "Requests"]
)
with reliability_tab:
    st.plotly_chart(
        charts.reliability_diagram(figures["reliability"], "Reliability diagram (10 confidence bins)"), width="stretch"
    )
    st.caption(
        "Points on the diagonal mean the confidence can be read as a probability of being right; below it, "
        "the model is over-confident."
    )
with coverage_tab:
    st.plotly_chart(
        charts.coverage_curve(
            figures["coverage"], accuracy_all, "Accuracy when only answers above a confidence threshold are kept"
        ),
        width="stretch",
    )
    st.caption("A confidence cascade keeps the left part of this curve local and escalates the rest.")
with confused_tab:
    if figures["confusions"]:
        st.plotly_chart(charts.confused_labels(figures["confusions"]), width="stretch")
    else:
        st.info("No mistakes to show.")
with browser_tab:
    left, right = st.columns(2)
    which = left.radio("Show", ["all", "wrong", "right"], horizontal=True)
    order = right.radio("Order by confidence", ["highest first", "lowest first"], horizontal=True)
    shown = rows if which == "all" else rows.filter(pl.col("correct") == (which == "right"))
    shown = shown.sort("confidence", descending=order == "highest first", nulls_last=True)
    st.dataframe(
        shown.select(
            "request_id",
            "text",
            "reference",
            "answer",
            "correct",
            "confidence",
            "valid",
            "input_tokens",
            "output_tokens",
            "latency_ms",
            "data_class",
        ),
        hide_index=True,
        width="stretch",
        column_config={
            "confidence": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0, format="%.2f"),
            "text": st.column_config.TextColumn(width=360),
            "reference": st.column_config.TextColumn(width=170),
            "answer": st.column_config.TextColumn(width=170),
        },
    )
    st.caption(f"Source of every row: {rows['source_detail'][0] if rows.height else '-'}")
