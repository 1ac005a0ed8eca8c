"""Routing replay: replay a stored trace through routing policies beside frontier-only, and read stored runs back."""

from __future__ import annotations

import shlex
import time
from dataclasses import MISSING, asdict, fields
from pathlib import Path

import polars as pl
import streamlit as st

from app import charts, state
from app.jobs import ReplayJob
from app.replay_assumptions import ReplayAssumptions, default_data_rules, parse_overrides, shipped_quality
from app.report import parquet_bytes
from app.widgets import column_help, job_status
from app.workflows import hardware_profile_names
from simulators import formatting as fmt
from simulators.deployment import DEFAULT_PROFILE, DEFAULT_SLO
from simulators.inputs import ReplayConfig
from simulators.policies.registry import POLICIES, parse_params, parse_policies, parse_policy, sweep_of
from simulators.replay import resimulate
from simulators.results import BASELINE, summaries_from_dicts
from simulators.runs import replay_config_of
from simulators.tables import policy_table, residency_table, sweep_table
from slmlab.replay_scenarios import save_replay_scenario
from slmlab.replay_store import load_requests
from slmlab.traces.defaults import DEFAULT_TRACES
from slmlab.traces.labelling import DATA_CLASSES
from slmlab.validations import cdf_points, errors_text, load_validations, newest_by_load, slice_label

db = state.database_path()
st.title("Routing replay")
st.caption(
    "Replays a stored trace through routing policies beside the frontier-only baseline. Every run is stored "
    "with its configuration, seed, trace hash and catalogue version; everything below is read back from the "
    f"database `{db}`, so a run can be reproduced from what is shown."
)

REQUEST_COLUMNS = [
    "seq",
    "request_id",
    "copy",
    "decision",
    "model",
    "attempts",
    "reason",
    "cost_usd",
    "queue_wait_ms",
    "ttft_ms",
    "latency_ms",
    "correct",
    "quality_source",
    "residency_violation",
    "slo_violation",
    "data_class",
    "task",
]
DRILL_DOWN_ROWS = 500
JOB = "replay_job"  # the running or last replay started here, in the session


def _help(name: str) -> str:
    """The library's help text of one ReplayConfig field."""
    return str(next(f.metadata.get("help", "") for f in fields(ReplayConfig) if f.name == name))


def _default(field: object) -> object:
    """A policy parameter's default as shown (a wrapped policy by its label)."""
    value = (
        field.default
        if field.default is not MISSING
        # type: ignore[attr-defined]
        else (field.default_factory() if field.default_factory is not MISSING else None)
    )  # type: ignore[attr-defined]
    return getattr(value, "label", value)


def _policy_guide() -> None:
    """What each registered policy does, its parameters and what a sweep varies (all from the registry)."""
    for name, cls in POLICIES.items():
        params = [
            f"`{name}.{f.name}` = `{_default(f)!r}`: {f.metadata.get('help', '')}"
            for f in fields(cls)
            if f.name != "inner"
        ]
        grid = sweep_of(cls())
        sweep = (
            f" Sweep varies `{grid[0]}` over {len(grid[1])} values ({grid[1][0]:g} to {grid[1][-1]:g})." if grid else ""
        )
        st.markdown(f"**{name}**: {cls.summary}.{sweep}" + "".join(f"\n- {p}" for p in params))


def _run_form(trace_names: list[str]) -> None:
    """The replay controls; on submit, start the replay as a background job (one at a time) that stores it."""
    with st.popover("What each policy does"):
        _policy_guide()
    with st.form("replay"):
        left, middle, right = st.columns(3)
        default_trace = DEFAULT_TRACES[0].stem
        trace = left.selectbox(
            "Trace",
            trace_names,
            help=_help("trace"),
            index=trace_names.index(default_trace) if default_trace in trace_names else 0,
        )
        chosen = left.multiselect(
            "Policies", list(POLICIES), default=list(POLICIES), help="frontier-only, the baseline, is always included"
        )
        compositions = left.text_input(
            "Compositions (optional)",
            placeholder="residency-aware+cascade, slo-overflow+learned",
            help="comma-separated; wrappers stand in front of the policy they wrap",
        )
        speed = middle.number_input("Speed", min_value=0.01, value=1.0, step=0.5, help=_help("speed"))
        volume = middle.number_input("Volume", min_value=0.01, value=1.0, step=0.5, help=_help("volume"))
        size_to = middle.text_input("Size local fleets to (SLO)", value=DEFAULT_SLO, help=_help("size_to"))
        servers = middle.number_input("Servers per local model", min_value=1, value=1, step=1, help=_help("servers"))
        hardware_names = hardware_profile_names(db)
        hardware = middle.selectbox(
            "Hardware profile",
            hardware_names,
            index=hardware_names.index(DEFAULT_PROFILE) if DEFAULT_PROFILE in hardware_names else 0,
            help=_help("profile")
            + " Add one for another machine with `slmlab bench import` and `slmlab profiles add`.",
        )
        seed = right.number_input("Seed", min_value=0, value=0, step=1, help=_help("seed"))
        sweep = right.checkbox(
            "Sweep",
            value=False,
            help="also vary each sweepable policy over its grid: Pareto front, APGR, CPT(50%/80%), AIQ (slower)",
        )
        params = right.text_area(
            "Policy parameters (optional)",
            placeholder="cascade.threshold=0.7",
            help="one policy.key=value per line; 'What each policy does' lists them",
        )
        st.markdown("**Assumptions** (each one the CLI accepts; the command that reproduces the run is shown below)")
        a_left, a_middle = st.columns(2)
        keep_local = a_left.toggle(
            "Keep confidential data local",
            value=False,
            key="keep_confidential_local",
            help="deployment rule: confidential and regulated requests may go to no API model (on-premises models "
            "only), and every policy but the frontier-only baseline keeps to the rules (residency-aware in front)",
        )
        a_left.caption(
            "Deployment rules: the data classes each cloud location's API models may receive (on-premises models "
            "take every class); the switch above also bars confidential and regulated data from every API"
        )
        rules = a_left.data_editor(
            pl.DataFrame(
                [
                    {"location": location, **{c: c in allowed for c in DATA_CLASSES}}
                    for location, allowed in default_data_rules().items()
                ]
            ),
            hide_index=True,
            disabled=["location"],
            key="data_rules",
        )
        profiles = a_left.text_input(
            "Benchmark runs (optional)",
            placeholder="gemma3-270m=3",
            help="MODEL=RUN[,RUN], comma-separated pairs: a local model's speeds from these stored benchmark runs "
            "(Hardware & benchmarks page) instead of the newest; " + _help("profiles"),
        )
        ttft = a_middle.number_input(
            "API time to first token (ms, 0 = catalogue assumption)",
            min_value=0.0,
            value=0.0,
            step=100.0,
            key="api_ttft_ms",
            help="every API model's time to first token; 0 keeps the documented assumption (600 ms)",
        )
        speed_out = a_middle.number_input(
            "API output speed (tokens/s, 0 = catalogue assumption)",
            min_value=0.0,
            value=0.0,
            step=10.0,
            key="api_output_tok_s",
            help="every API model's generation speed; 0 keeps the documented assumption (80 tokens/s)",
        )
        extra = a_middle.text_area(
            "Portfolio overrides (optional JSON)",
            placeholder='[{"name": "gpt-4o", "input_usd_per_mtok": 2.0, "location": "cloud-eu"}]',
            help="a JSON list of portfolio entries, each with a 'name' (prices, latency, location, data_classes, ...: "
            "`slmlab portfolio` lists what can be overridden); entries here win over the fields above",
            key="portfolio_overrides",
        )
        st.caption(
            "Quality per model and task (share answered acceptably), used where nothing recorded or measured covers "
            "a request; edit a cell to change an assumption."
        )
        quality = st.data_editor(
            pl.DataFrame([{"model": m, **tasks} for m, tasks in shipped_quality().items()]),
            hide_index=True,
            disabled=["model"],
            key="quality_assumptions",
        )
        scenario = st.text_input(
            "Save these settings as scenario (optional)",
            key="replay_scenario_name",
            placeholder="e.g. confidential stays local, 2 servers",
            help="kept in the database; `slmlab simulate --scenario NAME` replays it from the CLI (a name already "
            "saved is replaced)",
        )
        job: ReplayJob | None = st.session_state.get(JOB)
        busy = job is not None and not job.finished
        submitted = st.form_submit_button(
            "Run replay",
            type="primary",
            disabled=busy,
            help="one replay at a time: wait for this one or cancel it" if busy else None,
        )
    if not submitted:
        return
    if busy:  # a second press that got through (Enter in a field): one replay at a time
        st.warning("A replay is running: wait for it to finish or cancel it first.")
        return
    lines = [line.strip() for line in params.splitlines() if line.strip()]
    folder = Path(db).parent / "replay-assumptions"  # the edited files live beside the database
    try:
        settings = ReplayAssumptions(
            trace=trace,
            policies=(*chosen, *(c.strip() for c in compositions.split(",") if c.strip())),
            keep_confidential_local=bool(keep_local),
            data_rules=_rules_of(rules),
            servers=int(servers),
            size_to=size_to.strip(),
            hardware=str(hardware),
            volume=float(volume),
            speed=float(speed),
            seed=int(seed),
            profiles=tuple(p.strip() for p in profiles.replace(";", " ").split() if p.strip()),
            api_ttft_ms=float(ttft) or None,
            api_output_tok_s=float(speed_out) or None,
            quality=_quality_of(quality),
            params=tuple(lines),
            extra_overrides=parse_overrides(extra),
        )
        config = settings.config(folder)
        policies = parse_policies(settings.policy_spec(), parse_params(lines))
    except (ValueError, OSError) as error:
        st.error(f"Replay not started: {error}")
        return
    argv = settings.argv(folder) + (["--sweep"] if sweep else [])
    commands = ["slmlab " + shlex.join(argv)]
    if scenario.strip():
        try:
            save_replay_scenario(scenario, argv, asdict(settings), db=db)
        except ValueError as error:
            st.error(f"Replay not started: {error}")
            return
        commands.insert(0, "slmlab " + shlex.join(["simulate", "--scenario", scenario.strip()]))
    st.session_state["replay_command"] = "\n".join(commands)
    st.session_state[JOB] = ReplayJob.of(config, policies, sweep=sweep, db=db).start()
    st.rerun()  # at once, so the form shows the button disabled while the replay runs


def _rules_of(edited: object) -> dict[str, tuple[str, ...]]:
    """The deployment rules as edited on the page: location -> the data classes ticked for it."""
    frame = edited if isinstance(edited, pl.DataFrame) else pl.from_pandas(edited)  # type: ignore[arg-type]
    return {str(row.pop("location")): tuple(c for c in DATA_CLASSES if row.get(c)) for row in frame.to_dicts()}


def _quality_of(edited: object) -> dict[str, dict[str, float]]:
    """The quality table as edited on the page, model -> task -> share (cells checked to lie in 0..1)."""
    frame = edited if isinstance(edited, pl.DataFrame) else pl.from_pandas(edited)  # type: ignore[arg-type]
    out: dict[str, dict[str, float]] = {}
    for row in frame.to_dicts():
        model = str(row.pop("model"))
        for task, share in row.items():
            if share is None or not 0 <= float(share) <= 1:
                raise ValueError(f"quality of {model} on {task} must be a share from 0 to 1, not {share}")
        out[model] = {task: float(share) for task, share in row.items()}
    return out


def _stored(job: ReplayJob) -> str:
    """The success line of a finished replay job."""
    run = job.result
    assert run is not None
    return (
        f"Stored replay run {run.run_id}: {len(run.result.outcomes)} policies on '{job.trace}' in {run.seconds:.1f} s"
        + ("" if run.requests_stored else " (summary only: the trace is too large for per-request rows)")
        + "."
    )


def _grouped(models: list[dict], key: str) -> str:
    """'assumption, default API output speed: gpt-4o, gpt-4o-mini' for one portfolio figure, grouped by source."""
    groups: dict[str, list[str]] = {}
    for model in models:
        figure = model.get(key) or {}
        if figure:
            detail = str(figure.get("detail") or "").split(", key ")[0]  # the catalogue key is in the portfolio table
            source = str(figure.get("source"))
            joint = " version " if source == "catalogue" else ", "
            groups.setdefault(f"{source}{joint}{detail}" if detail else source, []).append(model["name"])
    return "; ".join(f"{source} ({', '.join(names)})" for source, names in groups.items()) or "-"


def _sources_caption(run: dict) -> str:
    """Where the headline numbers come from, from the run's stored portfolio and input provenance."""
    inputs, portfolio, config = run["inputs"], run["portfolio"], run["config"]
    api = [m for m in portfolio if m["kind"] != "local"]
    local = [m for m in portfolio if m["kind"] == "local"]
    tokens = "; ".join(f"{side} {fmt.counts(c)}" for side, c in inputs.get("token_source", {}).items())
    roles = inputs.get("roles") or {}
    recorded = {m: c["recorded"] for m, c in (inputs.get("cost_source") or {}).items() if c.get("recorded")}
    timed = {m: c["recorded"] for m, c in (inputs.get("latency_source") or {}).items() if c.get("recorded")}
    serving = inputs.get("local_serving") or {}
    lines = [
        *(f"Roles: {'; '.join(f'{k} = {v}' for k, v in roles.items())}." for _ in [0] if roles),
        *(
            "**Cost as recorded** per request (the outcome file's own figures, not prices): "
            + ", ".join(f"{m} {n:,}" for m, n in recorded.items())
            + "."
            for _ in [0]
            if recorded
        ),
        f"Baseline frontier-only = **{config.get('frontier_model')}**, small model = **{config.get('small_model')}**; "
        f"seed {run['seed']}, speed x{inputs.get('speed')}, volume x{inputs.get('volume')}; "
        + (
            "local serving: "
            + "; ".join(
                f"{m} on {s['profile']} ({s['slots']} slots, fleet {s['fleet']}; "
                + (
                    "speed assumed: single-sequence speed x the profile's batch speed-up)"
                    if str(s["curve"]).startswith("assumption")
                    else f"curve {str(s['curve']).split(';')[0]})"
                )
                for m, s in serving.items()
            )
            if serving
            else f"{inputs.get('servers_per_local_model')} server(s) per local model"
        )
        + ".",
        f"**Cost** = token counts ({tokens}) x per-token prices: {_grouped(api, 'input_usd_per_mtok')}"
        + (f"; {_grouped(local, 'input_usd_per_mtok')}" if local else "")
        + ".",
        "**Quality**: each request counts its final model's source (recorded outcome, measured here, or assumption "
        f"from `{inputs.get('assumptions_file')}`); per model: "
        + "; ".join(f"{m} {fmt.counts(c)}" for m, c in inputs.get("quality_source", {}).items())
        + ".",
        f"**Latency**: API time to first token: {_grouped(api, 'ttft_ms')}; API output speed: "
        f"{_grouped(api, 'output_tok_s')}"
        + (
            f"; local models' single-sequence speed: {_grouped(local, 'output_tok_s')}, "
            + (
                f"batched on their fleets over the arrivals ({inputs.get('arrivals')})"
                if serving
                else f"no queueing ({inputs.get('arrivals')})"
            )
            if local
            else ""
        )
        + ".",
        *(
            "**Latency as recorded** per request (the log's or outcome file's own end-to-end time of the API call; "
            "the speeds above time the rest): " + ", ".join(f"{m} {n:,}" for m, n in timed.items()) + "."
            for _ in [0]
            if timed
        ),
    ]
    if any(inputs.get("confidence_source", {}).values()):
        lines.append(
            "**Cascade confidence**: "
            + "; ".join(f"{m} {fmt.counts(c)}" for m, c in inputs["confidence_source"].items())
            + "."
        )
    return "  \n".join(lines)


@st.fragment
def _what_if(run: dict, summaries: dict[str, dict]) -> None:
    """Move one policy's main setting and see the result at once, on this run's inputs kept in memory (not stored)."""
    sweepable = [label for label in summaries if label in POLICIES and POLICIES[label].sweep is not None]
    if not sweepable:
        return
    left, right = st.columns([1, 2])
    label = left.selectbox(
        "What-if policy",
        sweepable,
        key="what_if_policy",
        index=sweepable.index("cascade") if "cascade" in sweepable else 0,
    )
    key, grid = POLICIES[label].sweep  # type: ignore[misc]
    current = float(summaries[label]["parameters"].get(key, grid[0]))  # type: ignore[union-attr]
    value = right.slider(
        f"{label}: {key}",
        float(min(grid)),
        float(max(grid)),
        current,
        step=float(grid[1] - grid[0]),
        key="what_if_value",
        help="re-runs this one policy on the run's requests in memory",
    )
    try:
        inputs = state.replay_inputs(str(db), state.database_version(db), replay_config_of(run))
        started = time.perf_counter()
        result = resimulate(inputs, parse_policy(label), key, value)
        took = time.perf_counter() - started
    except ValueError as error:
        st.error(str(error))
        return
    base = summaries_from_dicts(summaries)[BASELINE]
    cols = st.columns(5)
    cols[0].metric(
        "cost per 1,000 requests",
        fmt.money(result.cost_per_1k_usd),
        f"{result.cost_usd / base.cost_usd - 1:+.0%} vs frontier-only" if base.cost_usd else None,
        delta_color="inverse",
    )
    cols[1].metric("quality", fmt.share(result.quality), fmt.points(result.quality - base.quality))
    cols[2].metric("p95 latency", fmt.duration_ms(result.p95_ms))
    cols[3].metric("answered in-house", fmt.share(result.in_house_share))
    cols[4].metric("residency violations", fmt.count(result.residency_violations))
    st.caption(
        f"{label} with {key} = {value:g}, re-simulated over {inputs.n:,} requests in {took * 1000:.0f} ms from the "
        f"inputs of run {run['run_id']} (same seed, prices and quality sources). Not stored: run a replay above "
        "(or tick Sweep) to keep it."
    )


summaries_of_traces = state.traces(str(db), state.database_version(db))
trace_names = [s.name for s in summaries_of_traces if s.kind != "task"]
runs = state.replay_runs(str(db), state.database_version(db))
with st.expander("Run a replay", expanded=not runs):
    if trace_names:
        _run_form(trace_names)
    else:
        st.info("No traces stored. Import one on the Workloads page, or run `slmlab defaults`.")
job_status(
    JOB,
    running=lambda job: f"Replaying '{job.trace}': {job.stage} (step {job.done_steps} of {job.total_steps or '?'})",
    stored=_stored,
    failed=lambda job: job.error if job.cancelled else f"Replay failed; nothing was stored: {job.error}",
)
if command := st.session_state.get("replay_command"):
    st.markdown(
        "The same replay from the CLI, with every assumption set above (one command"
        + (": the saved scenario, or in full" if command.count("\n") else "")
        + "):"
    )
    st.code(command, language="bash")

version = state.database_version(db)
runs = state.replay_runs(str(db), version)
if not runs:
    st.info(
        "No replays stored yet. Press **Run replay** above, or run `slmlab simulate` (add `--sweep` for the "
        "Pareto curves)."
    )
    st.stop()

by_label = {
    f"run {r['run_id']}: {r['trace']}, seed {r['seed']}, {r['created_at']:%Y-%m-%d %H:%M} UTC, "
    f"{len(r['policies'])} policies": r
    for r in runs
}  # type: ignore[arg-type, index]
chosen_run = by_label[st.selectbox("Stored run", list(by_label), help="newest first; read back from the database")]
run_id = int(chosen_run["run_id"])  # type: ignore[arg-type]
try:
    run = state.replay_run(str(db), version, run_id)
    points = state.replay_points(str(db), version, run_id)
except ValueError as error:
    st.error(str(error))
    st.stop()
summaries: dict[str, dict] = run["policies"]  # type: ignore[assignment]
swept = bool(run["config"].get("sweep"))
colours = charts.policy_colours(list(summaries))

st.subheader("Every policy beside frontier-only")
typed = summaries_from_dicts(summaries)
headline = policy_table(typed)
st.dataframe(headline.formatted(), hide_index=True, width="stretch", column_config=column_help(headline))
for label, note in ((label, s.get("confidence_note")) for label, s in summaries.items()):
    if note:  # next to the figure it qualifies: the assumption, not recorded data, decides this policy's rank
        st.warning(f"**{label}**: {note}.")
st.caption(_sources_caption(run))
with st.expander("Portfolio as replayed (every figure with its source)"):
    st.dataframe(
        pl.DataFrame(
            [
                {
                    "model": m["name"],
                    "kind": m["kind"],
                    "location": m["location"],
                    "data classes": ", ".join(m.get("data_classes") or []),
                    **{
                        f"{key} ({(m.get(key) or {}).get('source', '-')})": (m.get(key) or {}).get("value")
                        for key in (
                            "input_usd_per_mtok",
                            "output_usd_per_mtok",
                            "ttft_ms",
                            "output_tok_s",
                            "prefill_tok_s",
                        )
                    },
                    "details": "; ".join(
                        dict.fromkeys(
                            str((m.get(k) or {}).get("detail")) for k in ("input_usd_per_mtok", "ttft_ms") if m.get(k)
                        )
                    ),
                    "notes": "; ".join(m.get("notes") or []),
                }
                for m in run["portfolio"]
            ],
            infer_schema_length=None,
        ),
        hide_index=True,
        width="stretch",
    )  # type: ignore[union-attr]
sweeps = sweep_table(typed)
if sweeps.rows:
    st.dataframe(sweeps.formatted(), hide_index=True, width="stretch", column_config=column_help(sweeps))
    st.caption(
        "Sweep figures as stored by the replay: AIQ (RouterBench code) = area under the non-decreasing convex hull, "
        "extended flat to the largest cost of the policies swept together, divided by that cost; AIQ (paper "
        "formula) = mean height of that hull over the policy's own cost range; APGR = average "
        "performance gap recovered between the small model and frontier-only, CPT(50%/80%) = share of "
        "requests sent to the frontier model to recover 50% / 80% of that gap."
    )

st.subheader("Quick what-if")
_what_if(run, summaries)

st.subheader("Cost against quality")
references = [label for label, s in typed.items() if s.is_reference]
if not points.is_empty():
    st.plotly_chart(
        charts.replay_pareto(
            points, "Cost against quality: every sweep point, Pareto front joined", colours, references
        ),
        width="stretch",
    )
    st.caption(
        "Points and the Pareto flag are stored with the run's sweep. The oracle knows every answer in advance: "
        "a reference bound, not a deployable policy."
    )
else:
    single = pl.DataFrame(
        [
            {
                "policy": label,
                "parameter": None,
                "value": None,
                "cost_usd": s.get("cost_usd"),
                "quality": s.get("quality"),
            }
            for label, s in summaries.items()
        ],
        schema={
            "policy": pl.String,
            "parameter": pl.String,
            "value": pl.Float64,
            "cost_usd": pl.Float64,
            "quality": pl.Float64,
        },
    )
    st.plotly_chart(
        charts.replay_pareto(single, "Cost against quality: one point per policy as configured", colours, references),
        width="stretch",
    )
    st.info(
        "This run has no sweep: one point per policy. Tick **Sweep** for the full curves."
        if not swept
        else "The sweep stored no points for these policies."
    )

if not chosen_run.get("requests_stored"):
    st.info(
        f"Run {run_id} stored summaries only (per-request rows were skipped for a large trace), so the latency "
        "CDFs, the cost breakdown and the request drill-down are not available. Replay a smaller trace, or use "
        "`slmlab simulate --requests keep`."
    )
else:
    requests = state.replay_requests(str(db), version, run_id)
    if requests.is_empty():
        st.info(f"Run {run_id} has no per-request rows stored.")
    else:
        latency_tab, cost_tab = st.tabs(["Latency", "Cost by model"])
        with latency_tab:
            st.plotly_chart(charts.latency_cdf(requests.select("policy", "latency_ms"), colours), width="stretch")
            st.caption(
                "From each request's stored latency (queue wait + time to first token + generation). Local "
                "models are served by their fleets over the recorded arrivals (continuous batching, each fleet "
                "sized to the SLO unless fixed; see servers needed); rejected requests have no latency and are "
                "left out."
            )
        with cost_tab:
            st.plotly_chart(charts.cost_by_model(requests.select("policy", "model", "cost_usd")), width="stretch")
            st.caption(
                "Summed from each request's stored cost; an escalated request's cost (every attempt) counts "
                "under the model that answered last. Local models carry no per-token price."
            )

st.subheader("Data residency")
residency = residency_table(typed, DATA_CLASSES)
st.dataframe(residency.formatted(), hide_index=True, width="stretch", column_config=column_help(residency))
st.caption(
    "Violations: requests with an attempt sent to a model whose location or permitted data classes do not allow the "
    "request's data class or residency requirement (labels from the trace: see the Workloads page for whether "
    "they are synthetic). Reasons are recorded by the policies, e.g. kept-local or moved-region."
)

validations = load_validations(db=db, trace=str(run["trace"]))
if validations:  # `slmlab validate`: the serving model against a real batched engine on a slice of this trace
    checked = validations[0]
    st.subheader("Simulator against a real batched engine")
    cdf = pl.DataFrame(cdf_points(checked))
    left, right = st.columns(2)
    for column, metric in ((left, "ttft"), (right, "latency")):
        part = cdf.filter(pl.col("metric") == metric)
        column.line_chart(part, x="seconds", y="share", color="series")
    errors = checked["errors"]
    plays = int(checked.get("reps") or 1)
    st.caption(
        f"Validation {checked['validation_id']} (the CDFs above): {slice_label(checked)} of this "
        f"trace{f' x {plays} plays' if plays > 1 else ''} played in real time at load {checked['load']:g} through "
        f"llama.cpp ({checked['model']}, {checked['config']['slots']} slots) and through the simulator with the same "
        "arrivals and the curve measured on the same engine around each play; error of the simulated percentile: "
        + errors_text(errors)
        + " (`slmlab validate --list`)."
        + (
            " Simulated at the speed each play's steps ran (the serving model apart from the machine's drift "
            f"between curve and play): {errors_text(checked['errors_at_play_speed'])}."
            if checked.get("errors_at_play_speed")
            else ""
        )
    )
    errors_pct = {f"{m} {q}" for m in ("ttft", "latency") for q in ("p50", "p95")}
    st.dataframe(
        [{k: 100 * v if k in errors_pct else v for k, v in row.items()} for row in newest_by_load(validations)],
        hide_index=True,
        width="stretch",
        column_config={
            "load": st.column_config.NumberColumn(format="%.1f", help="arrival rate / the server's capacity"),
            **{
                name: st.column_config.NumberColumn(format="%+.1f%%", help="simulated / real - 1")
                for name in errors_pct
            },
        },
    )

if chosen_run.get("requests_stored"):
    st.subheader("Requests")
    stored_policies = [str(p["policy"]) for p in run["config"]["policies"]]  # the replayed ones have request rows
    policy = st.selectbox("Policy", stored_policies)
    rows = state.replay_requests(str(db), version, run_id, policy=policy, limit=DRILL_DOWN_ROWS)
    rows = rows.with_columns(pl.col(pl.Utf8).fill_null("-"))  # a request with no reason shows '-', not None
    st.dataframe(
        rows.select([c for c in REQUEST_COLUMNS if c in rows.columns]),
        hide_index=True,
        width="stretch",
        column_config={
            "cost_usd": st.column_config.NumberColumn("cost (USD)", format="$%.6f"),
            "queue_wait_ms": st.column_config.NumberColumn(format="%.0f"),
            "ttft_ms": st.column_config.NumberColumn(format="%.0f"),
            "latency_ms": st.column_config.NumberColumn(format="%.0f"),
        },
    )
    st.caption(
        f"The first {DRILL_DOWN_ROWS} requests of '{policy}' in arrival order, as stored with run {run_id}; "
        "quality source says where each request's correctness came from."
    )
    left, right = st.columns(2)
    left.download_button(
        "Download every request of every policy (Parquet)",
        lambda: parquet_bytes(load_requests(run_id, db)),
        file_name=f"replay-run{run_id}-requests.parquet",
        mime="application/octet-stream",
        on_click="ignore",
        help="the stored per-request results of this run, typed, for a notebook or a warehouse",
    )
    right.download_button(
        "Download the policy table (CSV)",
        headline.csv().encode(),
        file_name=f"replay-run{run_id}-policies.csv",
        mime="text/csv",
        on_click="ignore",
    )
