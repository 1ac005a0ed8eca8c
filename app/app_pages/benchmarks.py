"""Hardware & benchmarks: this machine's census, a benchmark run with live progress, and every stored run."""

from __future__ import annotations

import streamlit as st

from app import charts, state
from app.widgets import job_status
from bench.jobs import BenchJob
from bench.runner import BenchConfig
from bench.views import CONFIG_AXES
from simulators.deployment import wake_text
from slmlab.models import shipped_models

db = state.database_path()
st.title("Hardware & benchmarks")
st.caption("Every figure here is measured on the machine named with it, or imported from another machine's run.")

census = state.census()
with st.container(border=True):
    st.subheader("This machine")
    left, middle, right = st.columns(3)
    left.metric("CPU", census["cpu_model"])
    left.caption(f"{census['physical_cores']} cores, {census['logical_cores']} hardware threads")
    middle.metric("Memory", f"{census['ram_total_bytes'] / 2**30:,.1f} GiB")
    middle.caption(f"{census['ram_available_bytes'] / 2**30:,.1f} GiB free now")
    right.metric("llama.cpp GPU offload", "yes" if census["llama_gpu_offload"] else "no")
    right.caption(f"llama-cpp-python {census['llama_cpp_version']}; fingerprint {state.census_fingerprint()}")
    st.markdown(
        f"**ISA:** {', '.join(census['isa_flags']) or 'none detected'}  \n"
        f"**GPUs:** {', '.join(g['name'] for g in census['gpus']) or 'none found'}  \n"
        f"**NPUs:** {census['npu_note']}  \n**Energy counters:** {state.energy_note()}"
    )
    st.caption(f"llama.cpp build: {census['llama_system_info']}")

with st.expander("Run a benchmark", expanded=False):
    installed = {m.name: m.key for m in shipped_models() if m.installed}
    left, middle, right = st.columns(3)
    choice = left.selectbox("Model", [*installed, "Other .gguf file"])
    path = left.text_input("Path to a .gguf file", disabled=choice != "Other .gguf file")
    test = middle.selectbox("Test", ["pp64+tg32", "pp512+tg128", "pp512", "tg128"])
    reps = middle.number_input("Repetitions", min_value=1, max_value=20, value=3)
    threads = right.number_input(
        "Threads", min_value=1, max_value=census["logical_cores"], value=census["physical_cores"] or 1
    )
    concurrency = right.number_input("Concurrent workers", min_value=1, max_value=8, value=1)
    job: BenchJob | None = st.session_state.get("bench_job")
    busy = job is not None and not job.finished
    if st.button("Run benchmark", type="primary", disabled=busy):
        model = installed.get(choice) or path
        try:
            config = BenchConfig(test=test, reps=int(reps), threads=int(threads), concurrency=int(concurrency))
        except ValueError as error:
            st.error(str(error))
        else:
            st.session_state["bench_job"] = BenchJob(model, db, config=config).start()


def _stored(job: BenchJob) -> str:
    decode = job.result.as_dict()["metrics"].get("decode_tok_s", {}).get("mean")
    return f"Stored bench run {job.result.run_id}" + (f": decode {decode:,.1f} tok/s." if decode else ".")


job_status(
    "bench_job",
    running=lambda job: f"Benchmarking {job.model}: repetition {job.done_steps} of {job.total_steps}",
    stored=_stored,
    failed=lambda job: f"Benchmark failed: {job.error}. Nothing was stored.",
)


def _batched_curves() -> None:
    """Stored batched service curves (measured here or imported from another machine), drawn against B."""
    curves = state.service_curves(str(db), state.database_version(db))
    if not curves:
        st.info(
            "No batched service curve yet: `slmlab bench --model smollm2-135m --parallel 1,2,4,8` measures B "
            "sequences served together in one llama.cpp context (as llama.cpp's server with parallel slots does)."
        )
    else:
        names = {
            f"{c['curve_id']} {c['model']} PP{c['pp']} TG{c['tg']} t{c['n_threads']}"
            + (f" (imported: machine {c['machine']})" if c.get("source") == "imported" else "")
            + (" (contended)" if c["contended"] else ""): c["curve_id"]
            for c in curves
        }
        chosen = st.selectbox("Curve", list(names))
        curve = state.service_curve(str(db), state.database_version(db), names[chosen])
        fits = curve.fits
        st.plotly_chart(
            charts.service_curve(
                curve.batch[fits].tolist(),
                curve.decode_tok_s[fits].tolist(),
                (curve.itl_s[fits] * 1000).tolist(),
                f"{curve.model}: aggregate decode and per-sequence latency against B",
            ),
            width="stretch",
        )
        if curve.wake:
            st.caption(
                f"Waking from idle, a lone {curve.pp}-token prompt step took {wake_text(curve.wake)} more than one "
                "run straight after another (measured after the curve); the replay charges it to the first step "
                "after an idle gap."
            )
        if curve.contended:
            st.warning("This curve was measured on a busy machine (contended); the replay skips it unless picked.")
        if not fits.all():
            st.caption(f"KV cache ran out past B = {curve.max_batch} ({curve.kv_bytes_per_token:,} bytes a token).")
        if curve.source == "imported":
            st.caption(
                f"Imported from machine '{curve.machine}': this machine's replay does not use it; a hardware profile "
                f"naming that machine does (`slmlab profiles add NAME --machine {curve.machine} ...`, then pick the "
                "profile on Routing replay)."
            )


runs = state.bench_runs(str(db), state.database_version(db))
if runs.is_empty():
    st.info("No benchmark runs yet. Run one above, or `slmlab bench --model smollm2-135m --quick`.")
    if state.service_curves(str(db), state.database_version(db)):  # curves imported from another machine
        st.subheader("Batched serving")
        _batched_curves()
    st.stop()

contended = runs.filter(runs["contended"].fill_null(False)) if "contended" in runs.columns else runs.clear()
if not contended.is_empty():
    st.warning(
        f"{contended.height} run(s) were contended (other processes took CPU the run needed, or steal time was "
        f"high): {', '.join(f'#{r}' for r in contended['run_id'].to_list())}. They are stored flagged and never "
        "used as a model's speed unless picked by id; rerun on an idle machine."
    )

speed, roofline, latency, sweeps, batched, machines = st.tabs(
    ["Throughput", "Roofline", "Latency", "Sweeps & capacity", "Batched serving", "Machines"]
)
with speed:
    st.plotly_chart(charts.throughput_with_intervals(runs, "decode_tok_s", "Decode tok/s"), width="stretch")
    st.plotly_chart(charts.throughput_with_intervals(runs, "prefill_tok_s", "Prefill tok/s"), width="stretch")
with roofline:
    if runs["roofline_efficiency"].is_not_null().any():
        st.plotly_chart(charts.roofline_efficiency(runs), width="stretch")
    else:
        st.info("No run with a roofline yet (imported runs carry none).")
with latency:
    labels = dict(zip(runs["label"].to_list(), runs["run_id"].to_list()))
    picked = st.selectbox("Run", list(labels), index=len(labels) - 1)
    row = runs.filter(runs["run_id"] == labels[picked]).row(0, named=True)
    cells = st.columns(6)
    figures = [
        ("TTFT", row.get("ttft_ms"), "{:,.0f} ms"),
        ("Load time", row.get("load_s"), "{:.2f} s"),
        ("Peak RSS", row.get("peak_rss_mb"), "{:,.0f} MB"),
        ("ITL p50", row.get("itl_p50_ms"), "{:.2f} ms"),
        ("ITL p95", row.get("itl_p95_ms"), "{:.2f} ms"),
        ("ITL p99", row.get("itl_p99_ms"), "{:.2f} ms"),
    ]
    for cell, (name, value, shape) in zip(cells, figures):
        cell.metric(name, "-" if value is None else shape.format(value))
    if row.get("contended"):
        st.warning(f"Contended run: {row.get('contention_note')}")
    latencies = state.bench_samples(str(db), state.database_version(db), labels[picked], "inter_token_ms")
    if latencies:
        st.plotly_chart(charts.latency_distribution(latencies, f"Inter-token latency, {picked}"), width="stretch")
    else:
        st.info("This run recorded no per-token latencies (a prefill-only test or an imported run).")
with sweeps:
    sweep_ids = list(runs["sweep_id"].unique().drop_nulls().to_list())
    if sweep_ids:
        sweep = st.selectbox("Sweep", sweep_ids)
        grid = runs.filter(runs["sweep_id"] == sweep)
        varied = [axis for axis in CONFIG_AXES if grid[axis].n_unique() > 1] or ["threads"]
        x = st.selectbox("Across", varied)
        if len(varied) == 1:  # one axis: a line with intervals reads better than a one-row heat map
            st.plotly_chart(charts.sweep_line(grid, x, "decode_tok_s"), width="stretch")
        else:
            y = st.selectbox("Down", varied, index=min(1, len(varied) - 1))
            st.plotly_chart(charts.sweep_heatmap(grid, x, y, "decode_tok_s"), width="stretch")
    else:
        st.info("No sweeps yet: `slmlab bench --model smollm2-135m --quick --sweep threads=1,2`.")
    if runs["concurrency"].n_unique() > 1:
        st.plotly_chart(charts.capacity_curve(runs), width="stretch")
with batched:
    _batched_curves()
with machines:
    table = runs.select(
        [
            "run_id",
            "machine",
            "source",
            "model",
            "test",
            "threads",
            "n_gpu_layers",
            "concurrency",
            "decode_tok_s",
            "decode_tok_s_low",
            "decode_tok_s_high",
            "prefill_tok_s",
            "roofline_efficiency",
            "roofline_bound",
            "contended",
        ]
    )
    st.dataframe(table, hide_index=True)
    st.caption("Runs from other machines arrive with `slmlab bench import FILE` (slmlab JSON or llama-bench -o json).")
