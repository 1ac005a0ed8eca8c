"""Plotly figure builders shared by pages: data in, figure out, no Streamlit and no database access."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.express as px
import plotly.graph_objects as go
import polars as pl

from simulators import formatting as fmt
from simulators.claims import Candidate

SYNTHETIC_TAG = " (synthetic labels)"


def arrivals_over_time(requests: pl.DataFrame, bin_s: float = 60.0) -> go.Figure:
    """Requests per time bin, from recorded arrival offsets."""
    binned = (
        requests.filter(pl.col("arrival_s").is_not_null())
        .with_columns(((pl.col("arrival_s") // bin_s) * bin_s / 60.0).alias("minute"))
        .group_by("minute")
        .agg(pl.len().alias("requests"), pl.col("input_tokens").sum().alias("input_tokens"))
        .sort("minute")
    )
    figure = px.bar(
        binned.to_pandas(),
        x="minute",
        y="requests",
        labels={"minute": "minutes since first arrival", "requests": f"requests per {bin_s:g} s"},
    )
    figure.update_layout(title=f"Arrivals over time (recorded), {bin_s:g}-second bins", bargap=0)
    return figure


def token_distribution(requests: pl.DataFrame, column: str, title: str) -> go.Figure:
    """Histogram of one token column (log-scaled counts: token counts are heavy-tailed)."""
    values = requests.select(pl.col(column).drop_nulls()).to_pandas()
    figure = px.histogram(values, x=column, nbins=80, log_y=True, labels={column: title})
    figure.update_layout(title=f"{title} per request (recorded)", yaxis_title="requests (log scale)")
    return figure


def label_mix(requests: pl.DataFrame, column: str, title: str, synthetic: bool) -> go.Figure:
    """Share of requests per label value; the title says when the labels are synthetic."""
    counts = (
        requests.filter(pl.col(column).is_not_null())
        .group_by(column)
        .agg(pl.len().alias("requests"))
        .with_columns((pl.col("requests") / pl.col("requests").sum()).alias("share"))
        .sort("share", descending=True)
    )
    figure = px.bar(counts.to_pandas(), x=column, y="share", text_auto=".0%", labels={column: title})
    figure.update_layout(title=title + (SYNTHETIC_TAG if synthetic else " (recorded)"), yaxis_tickformat=".0%")
    return figure


def throughput_with_intervals(runs: pl.DataFrame, metric: str, title: str) -> go.Figure:
    """Mean per run with its 95% interval as error bars (measured here or imported, as the hover says)."""
    frame = runs.filter(pl.col(metric).is_not_null())
    error = (frame[f"{metric}_high"] - frame[metric]).fill_null(0)
    error_minus = (frame[metric] - frame[f"{metric}_low"]).fill_null(0)
    figure = go.Figure(
        go.Bar(
            x=frame["label"].to_list(),
            y=frame[metric].to_list(),
            error_y={"type": "data", "array": error.to_list(), "arrayminus": error_minus.to_list()},
            hovertext=[f"{m} · {s}" for m, s in zip(frame["machine"].to_list(), frame["source"].to_list())],
        )
    )
    figure.update_layout(title=f"{title} (mean, 95% interval)", yaxis_title=title, xaxis_title="run")
    return figure


def roofline_efficiency(runs: pl.DataFrame) -> go.Figure:
    """Measured decode speed as a share of the memory-bandwidth ceiling."""
    frame = runs.filter(pl.col("roofline_efficiency").is_not_null())
    figure = px.bar(
        frame.to_pandas(),
        x="label",
        y="roofline_efficiency",
        text_auto=".1%",
        hover_data=["decode_tok_s", "ceiling_tok_s", "machine"],
    )
    figure.update_layout(
        title="Decode speed / memory-bandwidth ceiling",
        yaxis_tickformat=".0%",
        yaxis_title="roofline efficiency",
        xaxis_title="run",
    )
    return figure


def latency_distribution(latencies_ms: list[float], title: str) -> go.Figure:
    """Histogram of per-token latencies, recorded token by token."""
    figure = px.histogram(x=latencies_ms, nbins=60, labels={"x": "inter-token latency (ms)"})
    figure.update_layout(title=title, yaxis_title="tokens")
    return figure


def sweep_heatmap(runs: pl.DataFrame, x: str, y: str, metric: str) -> go.Figure:
    """One sweep's grid: metric mean for each pair of axis values."""
    if x == y:  # one varied axis: a single row
        runs = runs.with_columns(pl.lit("all").alias("_row"))
        y = "_row"
    grid = (
        runs.group_by([y, x])
        .agg(pl.col(metric).mean())
        .sort([y, x])
        .to_pandas()
        .pivot(index=y, columns=x, values=metric)
    )
    figure = px.imshow(
        grid,
        text_auto=".1f",
        aspect="auto",
        labels={"color": metric},
        x=[str(c) for c in grid.columns],
        y=[str(i) for i in grid.index],
    )
    figure.update_layout(
        title=f"{metric} by {x}" + ("" if y == "_row" else f" and {y}"),
        xaxis_title=x,
        yaxis_title="" if y == "_row" else y,
    )
    return figure


def sweep_line(runs: pl.DataFrame, axis: str, metric: str) -> go.Figure:
    """A one-axis sweep: the metric's mean and 95% interval at each value of the axis, as a line."""
    frame = runs.sort(axis).to_pandas()
    low, high = f"{metric}_low", f"{metric}_high"
    figure = px.line(frame, x=axis, y=metric, markers=True, labels={metric: metric, axis: axis})
    if low in frame and frame[low].notna().any():
        figure.update_traces(
            error_y={
                "type": "data",
                "symmetric": False,
                "array": frame[high] - frame[metric],
                "arrayminus": frame[metric] - frame[low],
            }
        )
    figure.update_layout(title=f"{metric} across {axis} (bars: 95% interval)")
    return figure


def service_curve(
    batch: Sequence[int], decode_tok_s: Sequence[float], itl_ms: Sequence[float], title: str
) -> go.Figure:
    """Batched serving: aggregate decode tok/s (left axis) and per-sequence inter-token latency (right) against B."""
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(x=list(batch), y=list(decode_tok_s), mode="lines+markers", name="aggregate decode tok/s")
    )
    figure.add_trace(
        go.Scatter(x=list(batch), y=list(itl_ms), mode="lines+markers", name="per-sequence ITL (ms)", yaxis="y2")
    )
    figure.update_layout(
        title=title,
        xaxis={"title": "sequences served together (B)", "type": "log", "tickvals": list(batch)},
        yaxis={"title": "aggregate decode tok/s", "rangemode": "tozero"},
        yaxis2={
            "title": "inter-token latency per sequence (ms)",
            "overlaying": "y",
            "side": "right",
            "rangemode": "tozero",
        },
        legend={"orientation": "h", "y": -0.25},
    )
    return figure


def capacity_curve(runs: pl.DataFrame) -> go.Figure:
    """Aggregate generation throughput against per-request latency, one point per run, labelled by concurrency."""
    frame = runs.filter(pl.col("aggregate_gen_tok_s").is_not_null() & pl.col("request_latency_ms").is_not_null())
    figure = px.line(
        frame.sort("concurrency").to_pandas(),
        x="request_latency_ms",
        y="aggregate_gen_tok_s",
        color="machine",
        text="concurrency",
        markers=True,
        labels={"request_latency_ms": "per-request latency (ms)", "aggregate_gen_tok_s": "aggregate tok/s"},
    )
    figure.update_traces(textposition="top center")
    figure.update_layout(
        title="Separate processes: throughput against latency (labels: concurrent worker processes, each with its "
        "own context; batched serving is on the Batched serving tab)"
    )
    return figure


def accuracy_by_model(runs: pl.DataFrame) -> go.Figure:
    """One bar per evaluation, coloured by task; assumed figures are hatched and say so in the legend."""
    frame = runs.sort(["task", "accuracy"], descending=[False, True])
    figure = go.Figure()
    for (task, source), part in frame.group_by(["task", "source"], maintain_order=True):
        figure.add_bar(
            x=[f"{m} · {v} (run {r})" for m, v, r in zip(part["model"], part["variant"], part["run_id"])],
            y=part["accuracy"].to_list(),
            name=f"{task} ({source})",
            marker_pattern_shape="/" if source == "assumption" else "",
            hovertext=[f"{n} requests, {source}" for n in part["n"].to_list()],
            texttemplate="%{y:.1%}",
            textposition="outside",
        )
    figure.update_layout(
        title="Accuracy of each evaluation (share of requests fully right)",
        yaxis_tickformat=".0%",
        yaxis_title="accuracy",
        yaxis_range=[0, 1.05],
        legend_title="task (source)",
        xaxis_tickangle=-30,
        height=520,
    )
    return figure


def reliability_diagram(bins: list, title: str) -> go.Figure:
    """Accuracy against mean confidence per confidence bin; the diagonal is perfect calibration."""
    filled = [b for b in bins if b.count]
    figure = go.Figure()
    figure.add_scatter(
        x=[0, 1], y=[0, 1], mode="lines", name="perfectly calibrated", line={"dash": "dash", "color": "grey"}
    )
    figure.add_bar(
        x=[(b.low + b.high) / 2 for b in filled],
        y=[b.accuracy for b in filled],
        width=[b.high - b.low for b in filled],
        name="accuracy in bin",
        opacity=0.6,
        hovertext=[f"{b.count} requests, mean confidence {b.mean_confidence:.2f}" for b in filled],
    )
    figure.add_scatter(
        x=[b.mean_confidence for b in filled],
        y=[b.accuracy for b in filled],
        mode="markers",
        name="mean confidence",
        marker={"size": [max(6, min(30, b.count**0.5 * 3)) for b in filled]},
    )
    figure.update_layout(
        title=title, xaxis_title="confidence", yaxis_title="accuracy", xaxis_range=[0, 1], yaxis_range=[0, 1]
    )
    return figure


def coverage_curve(points: list, overall_accuracy: float | None, title: str) -> go.Figure:
    """Selective prediction: accuracy when only requests above a confidence threshold are kept (the cascade's view)."""
    figure = go.Figure()
    figure.add_scatter(
        x=[p.coverage for p in points],
        y=[p.accuracy for p in points],
        mode="lines+markers",
        name="kept by threshold",
        hovertext=[f"threshold {p.threshold:.3f}" for p in points],
    )
    if overall_accuracy is not None:
        figure.add_hline(y=overall_accuracy, line_dash="dot", annotation_text="answer everything")
    figure.update_layout(
        title=title,
        xaxis_title="coverage (share answered locally)",
        yaxis_title="accuracy",
        xaxis_tickformat=".0%",
        yaxis_tickformat=".0%",
        xaxis_range=[0, 1],
        yaxis_range=[0, 1.02],
    )
    return figure


def confused_labels(confusions: list[dict[str, object]]) -> go.Figure:
    """The most frequent reference -> predicted mistakes."""
    labels = [f"{c['reference']} → {c['predicted']}" for c in confusions][::-1]
    figure = go.Figure(go.Bar(x=[c["count"] for c in confusions][::-1], y=labels, orientation="h"))
    figure.update_layout(
        title="Most confused labels (reference → answer)",
        xaxis_title="requests",
        height=max(300, 28 * len(labels) + 120),
    )
    return figure


def policy_colours(policies: list[str]) -> dict[str, str]:
    """One colour per policy label, so every replay chart draws a policy alike."""
    palette = px.colors.qualitative.Plotly + px.colors.qualitative.D3
    return {policy: palette[i % len(palette)] for i, policy in enumerate(policies)}


def replay_pareto(
    points: pl.DataFrame, title: str, colours: dict[str, str] | None = None, references: Sequence[str] = ()
) -> go.Figure:
    """Cost against quality: every point coloured by policy, the Pareto front joined, reference policies (the
    oracle: `PolicySummary.is_reference`) drawn as stars, never on the front."""
    figure, colours = go.Figure(), colours or {}
    others = points.filter(~pl.col("policy").is_in(list(references)))
    for (policy,), part in others.group_by(["policy"], maintain_order=True):
        knob = [
            f"{p}={v:g}" if v is not None else "as configured"
            for p, v in zip(part["parameter"].to_list(), part["value"].to_list())
        ]
        figure.add_scatter(
            x=part["cost_usd"].to_list(),
            y=part["quality"].to_list(),
            mode="markers",
            name=policy,
            hovertext=knob,
            marker={"size": 9, "color": colours.get(policy)},
        )
    if "pareto" in points.columns:
        front = others.filter(pl.col("pareto")).sort("cost_usd")
        figure.add_scatter(
            x=front["cost_usd"].to_list(),
            y=front["quality"].to_list(),
            mode="lines",
            name="Pareto front",
            line={"color": "black", "dash": "dot"},
            hoverinfo="skip",
        )
    for name in references:
        oracle = points.filter(pl.col("policy") == name)
        if not oracle.height:
            continue
        figure.add_scatter(
            x=oracle["cost_usd"].to_list(),
            y=oracle["quality"].to_list(),
            mode="markers",
            name=f"{name} (reference: a bound, not deployable)",
            marker={"symbol": "star", "size": 16, "color": "gold", "line": {"color": "black", "width": 1}},
        )
    figure.update_layout(
        title=title,
        xaxis_title="cost of the replay (USD)",
        yaxis_title="quality (share right)",
        yaxis_tickformat=".0%",
        legend_title="policy",
    )
    return figure


def latency_cdf(requests: pl.DataFrame, colours: dict[str, str] | None = None, levels: int = 200) -> go.Figure:
    """Share of requests answered within a latency, per policy (log x: local queues can reach hours)."""
    figure, colours = go.Figure(), colours or {}
    share = [i / levels for i in range(levels + 1)]
    for (policy,), part in requests.filter(pl.col("latency_ms") > 0).group_by(["policy"], maintain_order=True):
        values = part["latency_ms"].sort()
        picks = values.gather([round(q * (len(values) - 1)) for q in share])
        figure.add_scatter(x=picks.to_list(), y=share, mode="lines", name=policy, line={"color": colours.get(policy)})
    figure.update_layout(
        title="End-to-end latency per request (CDF, answered requests)",
        xaxis_type="log",
        xaxis_title="latency (ms, log scale)",
        yaxis_title="share of requests",
        yaxis_tickformat=".0%",
        legend_title="policy",
    )
    return figure


def cost_by_model(requests: pl.DataFrame) -> go.Figure:
    """Cost of each policy stacked by the model that gave the final answer."""
    totals = (
        requests.with_columns(pl.col("model").fill_null("rejected"))
        .group_by(["policy", "model"])
        .agg(pl.col("cost_usd").sum(), pl.len().alias("requests"))
        .sort(["policy", "model"])
    )
    figure = px.bar(
        totals.to_pandas(),
        x="policy",
        y="cost_usd",
        color="model",
        hover_data=["requests"],
        labels={"cost_usd": "cost (USD)", "model": "final model"},
    )
    figure.update_layout(
        title="Cost per policy by final model (per-request rows)", barmode="stack", xaxis_tickangle=-30
    )
    return figure


def cumulative_cost(projection, uncertainty: dict | None = None) -> go.Figure:
    """Cumulative cost per policy over the horizon (with the Monte Carlo p5-p95 band when there is one)."""
    figure = go.Figure()
    months = list(range(1, projection.assumptions.months + 1))
    colours = policy_colours([p.policy for p in projection.policies])
    for p in projection.policies:
        band = (uncertainty or {}).get("policies", {}).get(p.policy)
        if band:
            figure.add_scatter(
                x=months + months[::-1],
                y=band["cumulative_p95"] + band["cumulative_p5"][::-1],
                fill="toself",
                line={"width": 0},
                fillcolor=colours[p.policy],
                opacity=0.15,
                name=f"{p.policy} p5-p95",
                showlegend=False,
                hoverinfo="skip",
            )
        figure.add_scatter(
            x=months,
            y=p.cumulative.tolist(),
            mode="lines",
            name=p.policy,
            line={"color": colours[p.policy], "width": 3 if p.policy == "frontier-only" else 2},
        )
    figure.update_layout(
        title="Cumulative cost per policy",
        xaxis_title="month",
        yaxis_title="cumulative cost (USD)",
        legend_title="policy",
    )
    return figure


def monthly_cost_components(projection, policy: str) -> go.Figure:
    """One policy's monthly cost split into API, hardware, energy and operations."""
    p = projection.get(policy)
    months = list(range(1, projection.assumptions.months + 1))
    figure = go.Figure()
    for name in ("api", "hardware", "energy", "operations"):
        figure.add_bar(x=months, y=getattr(p, name).tolist(), name=name)
    figure.update_layout(
        barmode="stack",
        title=f"Monthly cost of {policy} by component",
        xaxis_title="month",
        yaxis_title="USD per month",
    )
    return figure


def tornado(bars: list[dict], policy: str) -> go.Figure:
    """Saving against frontier-only with each assumption at the low and the high end of its range."""
    names = [b["assumption"] for b in bars][::-1]
    base = bars[0]["base_saving"] if bars else 0.0
    figure = go.Figure()
    figure.add_bar(
        y=names,
        x=[b["saving_low"] - base for b in bars][::-1],
        base=base,
        orientation="h",
        name="low end of range",
        hovertext=[f"{b['assumption']} = {b['low']:g}" for b in bars][::-1],
    )
    figure.add_bar(
        y=names,
        x=[b["saving_high"] - base for b in bars][::-1],
        base=base,
        orientation="h",
        name="high end of range",
        hovertext=[f"{b['assumption']} = {b['high']:g}" for b in bars][::-1],
    )
    figure.add_vline(x=base, line_dash="dot")
    figure.update_layout(
        barmode="overlay",
        title=f"What moves the saving of {policy} over the horizon",
        xaxis_title="saving against frontier-only (USD)",
        height=120 + 32 * len(names),
    )
    return figure


def claim_candidates(
    evaluated: Sequence[Candidate], cheaper_pct: float | None, quality_pct: float | None, closest: Candidate | None
) -> go.Figure:
    """Every candidate setting's saving against its quality share of frontier-only, with the claimed thresholds."""
    figure = go.Figure()
    for meets, name, colour in ((True, "meets every tested part", "#2ca02c"), (False, "misses a part", "#7f7f7f")):
        rows = [e for e in evaluated if e.meets_testable == meets]
        if rows:
            figure.add_scatter(
                x=[e.cost_saving for e in rows],
                y=[e.quality_share_of_frontier for e in rows],
                mode="markers",
                name=name,
                marker={"color": colour, "size": 8},
                hovertext=[f"{e.setting}, p95 {fmt.duration(e.p95_s)}" for e in rows],
            )
    if closest:
        figure.add_scatter(
            x=[closest.cost_saving],
            y=[closest.quality_share_of_frontier],
            mode="markers",
            name=f"closest: {closest.policy}",
            marker={"symbol": "circle-open", "size": 18, "color": "black", "line": {"width": 2}},
        )
    if cheaper_pct is not None:
        figure.add_vline(x=cheaper_pct / 100, line_dash="dash", annotation_text=f"claimed saving {cheaper_pct:g}%")
    if quality_pct is not None:
        figure.add_hline(y=quality_pct / 100, line_dash="dash", annotation_text=f"claimed quality {quality_pct:g}%")
    figure.update_layout(
        title="Every candidate setting of the replay against the claim",
        xaxis_title="saving against frontier-only",
        yaxis_title="quality as a share of frontier-only's",
        xaxis_tickformat=".0%",
        yaxis_tickformat=".0%",
    )
    return figure
