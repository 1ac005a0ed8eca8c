"""Where a figure comes from, worked out from the stored run itself (its input provenance and portfolio), so the
"where these numbers come from" text of every page, the CLI and the reports is generated, never hand-written.

Four kinds, weakest last: measured (on this or an imported machine's benchmark, or `slmlab eval`), recorded (in
the imported traffic), catalogue (a published price or speed), assumption (a default or a value set by the user).
A figure that mixes kinds carries the weakest one.
"""

from __future__ import annotations

from dataclasses import dataclass

from simulators.formatting import Source, counts, source_of
from simulators.results import JsonRecord, PolicySummary

_FIGURE_KIND: dict[str, Source] = {
    "measured": "measured",
    "imported": "measured",
    "recorded": "recorded",
    "catalogue": "catalogue",
    "assumption": "assumption",
    "override": "assumption",
    "estimated from text length": "assumption",
}
_ORDER: tuple[Source, ...] = ("measured", "recorded", "catalogue", "assumption")


def kind_of(source: str | None) -> Source:
    """A stored source name as one of the four kinds (unknown names count as assumptions)."""
    return _FIGURE_KIND.get(str(source), "assumption")


def weakest(*kinds: str) -> Source:
    """The weakest of several kinds (assumption beats catalogue beats recorded beats measured)."""
    present = [kind_of(k) for k in kinds if k]
    return max(present, key=_ORDER.index) if present else "assumption"


@dataclass(frozen=True)
class Provenance:
    """One headline figure's source kind and the sentence that says where it came from."""

    figure: str
    kind: Source
    detail: str


def _portfolio(run: JsonRecord) -> dict[str, JsonRecord]:
    return {str(m["name"]): m for m in run.get("portfolio") or []}


def _figure_kinds(models: dict[str, JsonRecord], names: list[str], keys: tuple[str, ...]) -> list[str]:
    return [
        kind_of((models[n].get(k) or {}).get("source")) for n in names if n in models for k in keys if models[n].get(k)
    ]


def _token_kind(inputs: JsonRecord) -> Source:
    sides = inputs.get("token_source") or {}
    return weakest(*(kind_of(name) for side in sides.values() for name, n in side.items() if n))


def figure_sources(run: JsonRecord, summary: PolicySummary) -> dict[str, Provenance]:
    """The source of each headline figure of one policy in a stored run (`load_run`)."""
    inputs: JsonRecord = run.get("inputs") or {}
    models = _portfolio(run)
    used = [m for m, n in summary.models.items() if n]
    tokens = _token_kind(inputs)
    price_kinds = _figure_kinds(models, used, ("input_usd_per_mtok", "output_usd_per_mtok"))
    speed_kinds = _figure_kinds(models, used, ("ttft_ms", "output_tok_s", "prefill_tok_s"))
    arrivals = "recorded" if inputs.get("arrivals") == "recorded" else "assumption"
    labels = kind_of(str(inputs.get("label_source") or "assumption"))
    token_text = "; ".join(f"{side} {counts(c)}" for side, c in (inputs.get("token_source") or {}).items())
    scaled = _scaled(inputs)
    return {
        "cost": Provenance(
            "cost",
            weakest(tokens, *price_kinds),
            f"token counts ({token_text or 'none stored'}) x per-token prices ("
            + ", ".join(sorted(set(price_kinds)))
            + ")"
            + scaled,
        ),
        "quality": Provenance(
            "quality",
            source_of(summary.quality_source),
            f"requests by the source of their answer's quality: {counts(summary.quality_source)}",
        ),
        "latency": Provenance(
            "latency",
            weakest(arrivals, *speed_kinds),
            f"arrivals {inputs.get('arrivals', 'unknown')}; model speeds "
            + ", ".join(sorted(set(speed_kinds)))
            + scaled,
        ),
        "in_house": Provenance(
            "in-house share",
            weakest("recorded", *((summary.confidence_source and [source_of(summary.confidence_source)]) or [])),
            "the policy's routing of the replayed requests"
            + (f" (its confidence signal: {counts(summary.confidence_source)})" if summary.confidence_source else ""),
        ),
        "residency": Provenance(
            "residency",
            labels,
            "data classes of the requests ("
            + (
                "recorded with the trace"
                if labels == "recorded"
                else "synthetic labels drawn for the trace: an assumption"
            )
            + ") x each model's location",
        ),
        "projection": Provenance(
            "projection",
            "assumption",
            "the replay's figures scaled by the projection's assumptions (hardware, energy, "
            "growth, prices): every one editable on the Projection page",
        ),
    }


def _scaled(inputs: JsonRecord) -> str:
    volume, speed = float(inputs.get("volume") or 1), float(inputs.get("speed") or 1)
    parts = [f"volume x{volume:g}" for _ in [0] if volume != 1] + [f"speed x{speed:g}" for _ in [0] if speed != 1]
    return f"; scaled what-if: {', '.join(parts)}" if parts else ""


def is_scaled(inputs: JsonRecord) -> bool:
    """A what-if replay (more volume or faster arrivals than recorded), to be named as such."""
    return float(inputs.get("volume") or 1) != 1 or float(inputs.get("speed") or 1) != 1


def run_lines(run: JsonRecord) -> list[str]:
    """The sources of a stored run, one sentence each: replay, prices, quality, speeds, arrivals, labels."""
    inputs: JsonRecord = run.get("inputs") or {}
    models = _portfolio(run)
    by_kind: dict[str, list[str]] = {}
    for name, m in models.items():
        for key in ("output_tok_s",):
            figure = m.get(key) or {}
            if figure:
                by_kind.setdefault(kind_of(figure.get("source")), []).append(name)
    quality = "; ".join(f"{m}: {counts(c)}" for m, c in (inputs.get("quality_source") or {}).items())
    return [
        f"Replay run {run.get('run_id')} of '{run.get('trace')}' (seed {run.get('seed')})"
        + (
            ", a scaled what-if (" + _scaled(inputs).removeprefix("; scaled what-if: ") + ")"
            if is_scaled(inputs)
            else ""
        )
        + f"; prices from catalogue {run.get('catalogue_version')}.",
        f"Quality per model (requests by source): {quality or 'none stored'}.",
        "Model speeds: " + "; ".join(f"{k} ({', '.join(v)})" for k, v in by_kind.items()) + ".",
        f"Arrivals: {inputs.get('arrivals', 'unknown')}; "
        + (
            "local models served with continuous batching: "
            + "; ".join(
                f"{m} on {d['profile']} ({d['slots']} slots, {d['fleet']}; speeds: {d['curve']})"
                for m, d in inputs["local_serving"].items()
            )
            if inputs.get("local_serving")
            else f"{inputs.get('servers_per_local_model', 1)} server(s) per local model"
        )
        + ".",
    ]
