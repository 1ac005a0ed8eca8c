"""Vega-Lite charts, for the page every start waits for.

Home's one chart is drawn with Vega-Lite, which Streamlit ships built in, instead of Plotly like every other page:
the browser needs about 1.3 s to evaluate Plotly's 4.7 MB of JavaScript and draw on this 2-core machine, and
about 0.4 s for Vega's (`perf/dashboard_speed.py`: the cold start to Home's chart went from 3.3 to 2.4 s).
The specs ask for SVG so tests (and screen readers) can see the drawn marks.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

SVG = {"embedOptions": {"renderer": "svg"}}
STAR = "M0,-1L0.24,-0.33L0.95,-0.31L0.38,0.12L0.59,0.81L0,0.4L-0.59,0.81L-0.38,0.12L-0.95,-0.31L-0.24,-0.33Z"
BOUND = "oracle: knows every answer (a bound)"


def placeholder(title: str) -> dict[str, object]:
    """An empty chart frame with a title, shown while the page reads what it will draw (the browser loads Vega's
    code meanwhile)."""
    return {
        "title": title,
        "data": {"values": []},
        "mark": "point",
        "usermeta": SVG,
        "encoding": {
            "x": {"field": "x", "type": "quantitative", "axis": None},
            "y": {"field": "y", "type": "quantitative", "axis": None},
        },
    }


def policy_scatter(points: pl.DataFrame, title: str, references: Sequence[str] = ()) -> dict[str, object]:
    """Cost against quality, one point per policy (columns policy, cost_usd, quality); reference policies (the
    oracle) drawn as a star."""
    rows = [
        {
            "policy": r["policy"],
            "cost_usd": r["cost_usd"],
            "quality": r["quality"],
            "kind": BOUND if r["policy"] in references else "policy",
        }
        for r in points.iter_rows(named=True)
    ]
    return {
        "title": title,
        "data": {"values": rows},
        "mark": {"type": "point", "filled": True, "size": 110, "stroke": "black", "strokeWidth": 0.5},
        "encoding": {
            "x": {
                "field": "cost_usd",
                "type": "quantitative",
                "title": "cost of the replay (USD)",
                "axis": {"format": "$,.0f"},
            },
            "y": {
                "field": "quality",
                "type": "quantitative",
                "title": "quality (share right)",
                "axis": {"format": ".0%"},
                "scale": {"zero": False},
            },
            "color": {
                "field": "policy",
                "type": "nominal",
                "title": "policy",
                "legend": {"orient": "bottom", "columns": 4, "labelLimit": 260},
            },
            "shape": {
                "field": "kind",
                "type": "nominal",
                "title": None,
                "legend": {"orient": "bottom", "labelLimit": 300},
                "scale": {"domain": ["policy", BOUND], "range": ["circle", STAR]},
            },
            "tooltip": [
                {"field": "policy"},
                {"field": "cost_usd", "title": "cost (USD)", "format": "$,.2f"},
                {"field": "quality", "format": ".1%"},
            ],
        },
        "usermeta": SVG,
    }
