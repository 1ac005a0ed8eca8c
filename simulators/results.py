"""The typed result of a replay: one `PolicySummary` per policy (every figure with its unit in its name), the
comparison with frontier-only, and the one rule that picks the policy a page or report puts first.

Stored runs keep the JSON layout of `PolicySummary.as_dict()`; `PolicySummary.from_dict()` reads it back (runs
stored before policies carried a kind are recognised by their label, here and nowhere else).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, cast

PolicyKind = Literal["baseline", "deployable", "reference"]
BASELINE = "frontier-only"
WEAK_REFERENCE = "small-only (reference)"  # small-only replayed for the PGR when it was not asked for
QUALITY_FLOOR = 0.95  # share of frontier-only's quality the focus policy must reach
_LEGACY_REFERENCES = ("oracle", WEAK_REFERENCE)

# A JSON document read back from the warehouse (a stored run, one policy's summary, a fleet): its values are what
# JSON held, converted and checked where they are read (float(...), int(...), dict(...)), hence Any.
JsonRecord = Mapping[str, Any]


@dataclass(frozen=True)
class Percentiles:
    """p50 / p95 / p99 of a duration over answered requests, in milliseconds (None: nothing answered)."""

    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None

    @classmethod
    def from_dict(cls, values: dict[str, float | None] | None) -> Percentiles:
        """From {'p50': ms, 'p95': ms, 'p99': ms}."""
        values = values or {}
        return cls(*(_number(values.get(k)) for k in ("p50", "p95", "p99")))

    def as_dict(self) -> dict[str, float | None]:
        """The stored layout: {'p50': ms, ...}."""
        return {"p50": self.p50_ms, "p95": self.p95_ms, "p99": self.p99_ms}


@dataclass(frozen=True)
class VsBaseline:
    """One policy against frontier-only on the same requests."""

    cost_ratio: float | None  # cost / frontier-only's cost (None when frontier-only cost nothing)
    cost_saved_usd: float
    quality_delta: float  # quality minus frontier-only's (share of requests)
    p95_latency_delta_ms: float | None

    @classmethod
    def of(cls, summary: PolicySummary, base: PolicySummary) -> VsBaseline:
        """The comparison of `summary` with `base`."""
        p95, base_p95 = summary.latency.p95_ms, base.latency.p95_ms
        return cls(
            cost_ratio=summary.cost_usd / base.cost_usd if base.cost_usd else None,
            cost_saved_usd=base.cost_usd - summary.cost_usd,
            quality_delta=summary.quality - base.quality,
            p95_latency_delta_ms=None if p95 is None or base_p95 is None else p95 - base_p95,
        )

    @classmethod
    def from_dict(cls, values: JsonRecord | None) -> VsBaseline | None:
        if not values:
            return None
        return cls(
            cost_ratio=_number(values.get("cost_ratio")),
            cost_saved_usd=float(values.get("cost_saved_usd") or 0),
            quality_delta=float(values.get("quality_delta") or 0),
            p95_latency_delta_ms=_number(values.get("p95_latency_delta_ms")),
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "cost_ratio": self.cost_ratio,
            "cost_saved_usd": self.cost_saved_usd,
            "quality_delta": self.quality_delta,
            "p95_latency_delta_ms": self.p95_latency_delta_ms,
        }


@dataclass(frozen=True)
class CostParts:
    """A policy's cost over the replayed span in its parts: API spend plus its local fleet (amortised hardware,
    energy, operations), the one definition every surface shows."""

    api_usd: float
    hardware_usd: float = 0.0
    energy_usd: float = 0.0
    operations_usd: float = 0.0

    @property
    def fleet_usd(self) -> float:
        return self.hardware_usd + self.energy_usd + self.operations_usd

    @property
    def total_usd(self) -> float:
        return self.api_usd + self.fleet_usd

    @classmethod
    def from_dict(cls, values: dict[str, float] | None) -> CostParts | None:
        if not values:
            return None
        return cls(*(float(values.get(k) or 0.0) for k in ("api", "hardware", "energy", "operations")))

    def as_dict(self) -> dict[str, float]:
        return {
            "api": self.api_usd,
            "hardware": self.hardware_usd,
            "energy": self.energy_usd,
            "operations": self.operations_usd,
        }


@dataclass(frozen=True)
class LocalFleet:
    """One local model's servers in one policy: how many (sized to the SLO or fixed), what they gave, what they
    cost; an overloaded fleet (fixed, too small) reports its backlog growth instead of a latency."""

    model: str
    profile: str
    slots: int
    servers: int
    sized: bool
    requests: int
    ttft_p95_ms: float | None
    latency_p95_ms: float | None
    utilisation: float
    overloaded: bool
    backlog_growth_per_hour: float
    cost_usd: float
    slo: str | None = None
    slo_attainable: bool | None = None
    floor_ms: float | None = None  # the SLO percentile with no queueing at all (what no fleet can beat)
    curve_source: str = ""
    energy_source: str = ""

    @classmethod
    def from_dict(cls, model: str, v: JsonRecord) -> LocalFleet:
        known = {f for f in cls.__dataclass_fields__ if f != "model"}
        return cls(model=model, **{k: x for k, x in v.items() if k in known})

    def as_dict(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "model"}

    def describe(self) -> str:
        """This fleet in words, the same on the CLI and the pages: servers needed, what they give (or that the
        queue keeps growing), why an SLO cannot be met, and what the fleet costs over the trace."""
        how = f"sized to {self.slo}" if self.sized else "fixed"
        if self.overloaded:
            figures = f"OVERLOADED: the backlog grows by {self.backlog_growth_per_hour:,.0f} requests an hour"
        else:
            ttft, latency = (self.ttft_p95_ms or 0) / 1000, (self.latency_p95_ms or 0) / 1000
            figures = f"TTFT p95 {ttft:.2f} s, latency p95 {latency:.2f} s"
        if self.sized and self.slo_attainable is False:
            floor = (self.floor_ms or 0) / 1000
            figures += f" (SLO unattainable on {self.profile}: {floor:.2f} s with no queue at all)"
        return (
            f"{self.model} needs {self.servers:,} x {self.profile} ({self.slots} slots, {how}), busy "
            f"{self.utilisation:.0%}; {figures}; fleet ${self.cost_usd:,.2f}"
        )


@dataclass(frozen=True)
class PolicySummary:
    """The headline figures of one policy over one replay; units are in the names (usd, ms, share = 0..1)."""

    policy: str
    kind: PolicyKind
    requests: int
    rejected: int
    cost_usd: float
    quality: float  # share of requests answered right
    in_house_share: float  # share of requests answered by a local model
    frontier_share: float  # share answered by the frontier model
    latency: Percentiles  # end to end: queue wait + time to first token + generation
    ttft: Percentiles
    queue_wait_p95_ms: float
    slo_violations: int
    escalation_rate: float
    escalation_added_ms_mean: float
    wasted_tokens: int
    residency_violations: int
    residency_violations_by_class: dict[str, int] = field(default_factory=dict)
    quality_source: dict[str, int] = field(default_factory=dict)  # requests by the source of their final answer
    models: dict[str, int] = field(default_factory=dict)  # requests by final model
    local_load: dict[str, float] = field(default_factory=dict)  # local model -> service time asked / capacity
    off_premises_by_class: dict[str, int] = field(default_factory=dict)  # requests some attempt sent off premises
    confidence_source: dict[str, int] = field(default_factory=dict)  # what a cascade's decisions rested on
    # answered requests by where their answering attempt's time came from (recorded or the model's timing source);
    # empty when the trace recorded no latency
    latency_source: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)  # routing reasons the policy recorded
    parameters: dict[str, object] = field(default_factory=dict)
    notes: dict[str, object] = field(default_factory=dict)  # figures a policy adds (e.g. a budget's monthly cap)
    vs_baseline: VsBaseline | None = None
    pgr: float | None = None  # performance gap recovered between the small model and frontier-only
    sweep: dict[str, object] | None = None  # parameter, points, AIQ, APGR, CPT(50%/80%) of a swept policy
    extra: dict[str, object] = field(default_factory=dict)  # figures added by later modules (kept when stored)
    cost_parts: CostParts | None = None  # cost_usd split: API spend + local fleet (None: no fleet was costed)
    fleet: tuple[LocalFleet, ...] = ()  # each local model's servers (batched deployment)

    @property
    def servers_needed(self) -> int | None:
        """Local servers the policy needs (all its local models; None when it uses none)."""
        return sum(f.servers for f in self.fleet) if self.fleet else None

    @property
    def overloaded(self) -> bool:
        """Some local fleet cannot keep up: its queue grows over the trace (latency figures are then withheld)."""
        return any(f.overloaded for f in self.fleet)

    @property
    def cost_per_1k_usd(self) -> float:
        """Cost per 1,000 requests: the one figure every page, the CLI and the reports compare."""
        return self.cost_usd / self.requests * 1000 if self.requests else 0.0

    @property
    def p95_ms(self) -> float | None:
        return self.latency.p95_ms

    @property
    def is_reference(self) -> bool:
        """A bound, not something to deploy (the oracle knows every answer; small-only added for the PGR)."""
        return self.kind == "reference"

    @property
    def is_baseline(self) -> bool:
        return self.kind == "baseline"

    @property
    def deployable(self) -> bool:
        """A policy you could run: frontier-only or any other non-reference policy."""
        return self.kind != "reference"

    def with_(self, **changes: Any) -> PolicySummary:
        """A copy with some fields changed (frozen)."""
        return replace(self, **changes)

    def as_dict(self) -> dict[str, object]:
        """The stored and `--json` layout (the keys slmlab has always stored, plus the kind)."""
        out: dict[str, object] = {
            "parameters": self.parameters,
            "kind": self.kind,
            "requests": self.requests,
            "rejected": self.rejected,
            "cost_usd": self.cost_usd,
            "cost_per_1k_usd": self.cost_per_1k_usd,
            "quality": self.quality,
            "quality_source": self.quality_source,
            "latency_ms": self.latency.as_dict(),
            "ttft_ms": self.ttft.as_dict(),
            "queue_wait_ms_p95": self.queue_wait_p95_ms,
            "slo_violations": self.slo_violations,
            "escalation_rate": self.escalation_rate,
            "wasted_tokens": self.wasted_tokens,
            "escalation_added_ms_mean": self.escalation_added_ms_mean,
            "in_house_share": self.in_house_share,
            "frontier_share": self.frontier_share,
            "residency_violations": self.residency_violations,
            "residency_violations_by_class": self.residency_violations_by_class,
            "models": self.models,
            "local_load": self.local_load,
            "off_premises_by_class": self.off_premises_by_class,
        }
        if self.confidence_source:
            out["confidence_source"] = self.confidence_source
        if self.latency_source:
            out["latency_source"] = self.latency_source
        if self.reasons:
            out["reasons"] = self.reasons
        out.update(self.notes)
        if self.vs_baseline is not None:
            out["vs_baseline"] = self.vs_baseline.as_dict()
        if self.pgr is not None:
            out["pgr"] = self.pgr
        if self.sweep is not None:
            out["sweep"] = self.sweep
        out.update(self.extra)
        if self.cost_parts is not None:
            out["cost_parts_usd"] = self.cost_parts.as_dict()
        if self.fleet:
            out["fleet"] = {f.model: f.as_dict() for f in self.fleet}
            out["servers_needed"] = self.servers_needed
            out["overloaded"] = self.overloaded
        return out

    @classmethod
    def from_dict(cls, label: str, values: JsonRecord) -> PolicySummary:
        """A stored summary (`as_dict`) back; unknown keys are kept in `notes`."""
        known = {
            "parameters",
            "kind",
            "requests",
            "rejected",
            "cost_usd",
            "cost_per_1k_usd",
            "quality",
            "quality_source",
            "latency_ms",
            "ttft_ms",
            "queue_wait_ms_p95",
            "slo_violations",
            "escalation_rate",
            "wasted_tokens",
            "escalation_added_ms_mean",
            "in_house_share",
            "frontier_share",
            "residency_violations",
            "residency_violations_by_class",
            "models",
            "local_load",
            "confidence_source",
            "latency_source",
            "reasons",
            "off_premises_by_class",
            "vs_baseline",
            "pgr",
            "sweep",
            "cost_parts_usd",
            "fleet",
            "servers_needed",
            "overloaded",
        }
        v = values
        return cls(
            policy=label,
            # stored kinds were written by as_dict from a PolicyKind (older runs have none: _legacy_kind)
            kind=cast(PolicyKind, str(v.get("kind") or _legacy_kind(label))),
            requests=int(v.get("requests") or 0),
            rejected=int(v.get("rejected") or 0),
            cost_usd=float(v["cost_usd"]),
            quality=_number(v.get("quality")) or 0.0,
            in_house_share=float(v.get("in_house_share") or 0),
            frontier_share=float(v.get("frontier_share") or 0),
            latency=Percentiles.from_dict(v.get("latency_ms")),
            ttft=Percentiles.from_dict(v.get("ttft_ms")),
            queue_wait_p95_ms=float(v.get("queue_wait_ms_p95") or 0),
            slo_violations=int(v.get("slo_violations") or 0),
            escalation_rate=float(v.get("escalation_rate") or 0),
            escalation_added_ms_mean=float(v.get("escalation_added_ms_mean") or 0),
            wasted_tokens=int(v.get("wasted_tokens") or 0),
            residency_violations=int(v.get("residency_violations") or 0),
            residency_violations_by_class=dict(v.get("residency_violations_by_class") or {}),
            quality_source=dict(v.get("quality_source") or {}),
            models=dict(v.get("models") or {}),
            local_load=dict(v.get("local_load") or {}),
            off_premises_by_class=dict(v.get("off_premises_by_class") or {}),
            confidence_source=dict(v.get("confidence_source") or {}),
            latency_source=dict(v.get("latency_source") or {}),
            reasons=dict(v.get("reasons") or {}),
            parameters=dict(v.get("parameters") or {}),
            notes={k: x for k, x in v.items() if k not in known},
            vs_baseline=VsBaseline.from_dict(v.get("vs_baseline")),
            pgr=_number(v.get("pgr")),
            sweep=v.get("sweep"),
            cost_parts=CostParts.from_dict(v.get("cost_parts_usd")),
            fleet=tuple(LocalFleet.from_dict(m, f) for m, f in (v.get("fleet") or {}).items()),
        )


def _legacy_kind(label: str) -> PolicyKind:
    """The kind of a policy stored before summaries carried one (by its label: the only place that does this)."""
    if label == BASELINE:
        return "baseline"
    return "reference" if label in _LEGACY_REFERENCES else "deployable"


def _number(value: float | None) -> float | None:
    """A float, or None for missing / NaN (stored JSON turns NaN into null)."""
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def summaries_from_dicts(stored: Mapping[str, JsonRecord]) -> dict[str, PolicySummary]:
    """Every policy of a stored run, typed."""
    return {label: PolicySummary.from_dict(label, values) for label, values in stored.items()}


def compare(summaries: dict[str, PolicySummary], weak: str | None) -> dict[str, PolicySummary]:
    """Each policy with its comparison against frontier-only and its PGR against the weak model."""
    from simulators import metrics

    base = summaries[BASELINE]
    low = summaries.get(weak) if weak else None
    out = {}
    for label, s in summaries.items():
        pgr = (
            metrics.pgr(s.quality, low.quality, base.quality)
            if low is not None and low.quality != base.quality
            else s.pgr
        )
        out[label] = replace(s, vs_baseline=VsBaseline.of(s, base), pgr=pgr)
    return out


@dataclass(frozen=True)
class Focus:
    """The policy a page or report puts beside frontier-only, and why it was chosen."""

    policy: str | None
    reached_floor: bool
    rule: str


FOCUS_RULE = (
    f"the cheapest policy that answers some requests in-house, reaches {QUALITY_FLOOR:.0%} of "
    "frontier-only's quality and breaks residency no more often than frontier-only"
)


def focus_policy(summaries: dict[str, PolicySummary], cost: dict[str, float] | None = None) -> Focus:
    """The one rule for the policy to show first: among deployable policies that answer some requests in-house, the
    cheapest (by `cost` when given, e.g. a projection's total, else the replay's cost) reaching the quality floor
    with no more residency violations than frontier-only; when none does, the one with the best quality."""
    base = summaries.get(BASELINE)
    candidates = {
        label: s for label, s in summaries.items() if not s.is_reference and not s.is_baseline and s.in_house_share > 0
    }
    if base is None or not candidates:
        return Focus(None, False, FOCUS_RULE)
    price = cost or {label: s.cost_usd for label, s in summaries.items()}
    good = [
        label
        for label, s in candidates.items()
        if s.quality >= QUALITY_FLOOR * base.quality and s.residency_violations <= base.residency_violations
    ]
    if good:
        return Focus(min(good, key=lambda label: price.get(label, math.inf)), True, FOCUS_RULE)
    return Focus(max(candidates, key=lambda label: candidates[label].quality), False, FOCUS_RULE)


__all__ = [
    "BASELINE",
    "FOCUS_RULE",
    "QUALITY_FLOOR",
    "WEAK_REFERENCE",
    "Focus",
    "Percentiles",
    "PolicyKind",
    "PolicySummary",
    "VsBaseline",
    "compare",
    "focus_policy",
    "summaries_from_dicts",
]
