"""Plotly figure builders shared by pages: data in, figure out, no Streamlit and no database access."""

from __future__ import annotations

import plotly.express as px
import plotly.graph_objects as go
import polars as pl

SYNTHETIC_TAG = " (synthetic labels)"


def arrivals_over_time(requests: pl.DataFrame, bin_s: float = 60.0) -> go.Figure:
    """Requests per time bin, from recorded arrival offsets."""
    binned = (
        requests.filter(pl.col("arrival_s").is_not_null())
        .with_columns(((pl.col("arrival_s") // bin_s) * bin_s / 60.0).alias("minute"))
        .group_by("minute").agg(pl.len().alias("requests"), pl.col("input_tokens").sum().alias("input_tokens"))
        .sort("minute")
    )
    figure = px.bar(binned.to_pandas(), x="minute", y="requests",
                    labels={"minute": "minutes since first arrival", "requests": f"requests per {bin_s:g} s"})
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
        requests.filter(pl.col(column).is_not_null()).group_by(column).agg(pl.len().alias("requests"))
        .with_columns((pl.col("requests") / pl.col("requests").sum()).alias("share")).sort("share", descending=True)
    )
    figure = px.bar(counts.to_pandas(), x=column, y="share", text_auto=".0%", labels={column: title})
    figure.update_layout(title=title + (SYNTHETIC_TAG if synthetic else " (recorded)"), yaxis_tickformat=".0%")
    return figure
