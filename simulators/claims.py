"""Check a vendor's claim against your own traffic: "X% cheaper than frontier-only at >= Y% of its quality with
p95 <= Z s". The answer is supported, not supported, or not testable with this data, with the evidence.

Candidates are every deployable policy of a stored replay as configured, plus every point of its sweep (a
reference policy such as the oracle knows the answers in advance and is never a candidate). A criterion is
testable only when the data can speak to it: quality needs recorded or measured outcomes (a replay whose quality
figures are all assumptions cannot confirm or refute a quality claim), and latency needs recorded arrival times
(without them there is no queueing). Cost is always testable: catalogue prices x the trace's tokens.

The claim needs ONE setting that meets every part. So when no candidate meets the testable parts together, the
claim is not supported whatever the untestable parts would show; when one does but a part cannot be tested, it
is not testable; otherwise supported. Margins are in the claim's own units: percentage points of saving and of
frontier-only's quality, seconds of p95.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from simulators.formatting import duration
from simulators.results import BASELINE, JsonRecord, summaries_from_dicts

MET = 1e-12
CRITERIA = ("cheaper", "quality", "p95")


@dataclass(frozen=True)
class Claim:
    """At least `cheaper_pct` % cheaper than frontier-only, at >= `quality_pct` % of its quality, p95 <= `p95_s`."""

    cheaper_pct: float | None = None
    quality_pct: float | None = None
    p95_s: float | None = None

    def __post_init__(self) -> None:
        if self.cheaper_pct is None and self.quality_pct is None and self.p95_s is None:
            raise ValueError("a claim needs at least one of: cheaper by %, quality %, p95 seconds")
        if self.cheaper_pct is not None and not 0 <= self.cheaper_pct < 100:
            raise ValueError("cheaper must be a percentage from 0 to below 100")
        if self.quality_pct is not None and not 0 < self.quality_pct <= 200:
            raise ValueError("quality must be a percentage of frontier-only's, above 0")
        if self.p95_s is not None and not self.p95_s > 0:
            raise ValueError("p95 must be a positive number of seconds")

    def parts(self) -> dict[str, float]:
        """The criteria this claim makes, with their targets."""
        asked = {"cheaper": self.cheaper_pct, "quality": self.quality_pct, "p95": self.p95_s}
        return {k: v for k, v in asked.items() if v is not None}

    def describe(self) -> str:
        """The claim in words."""
        parts = []
        if self.cheaper_pct is not None:
            parts.append(f"at least {self.cheaper_pct:g}% cheaper than frontier-only")
        if self.quality_pct is not None:
            parts.append(f"at >= {self.quality_pct:g}% of its quality")
        if self.p95_s is not None:
            parts.append(f"with p95 latency <= {self.p95_s:g} s")
        return ", ".join(parts)


@dataclass(frozen=True)
class Margin:
    """How far one criterion is from its target, in the claim's units; above 0 met with room to spare."""

    criterion: str
    claimed: str  # '>= 70% saving', '<= 2 s'
    figure: str  # the candidate's figure: '61.3% saving', '6.24 s'
    value: float | None  # in `unit`; None when the criterion cannot be tested
    unit: str  # 'points' or 's'
    testable: bool

    @property
    def met(self) -> bool | None:
        return None if self.value is None or not self.testable else self.value >= -MET

    @property
    def text(self) -> str:
        """'4.24 s over', '8.7 points short', '1.2 points to spare', 'not testable'."""
        if not self.testable or self.value is None:
            return "not testable"
        size = abs(self.value)
        amount = duration(size) if self.unit == "s" else f"{size:,.1f} points"
        if self.value >= -MET:
            return f"{amount} to spare" if size > MET else "met exactly"
        return f"{amount} {'over' if self.unit == 's' else 'short'}"

    @property
    def result(self) -> str:
        return "not testable" if self.met is None else "met" if self.met else "missed"


@dataclass(frozen=True)
class Candidate:
    """One policy setting scored against the claim."""

    policy: str
    parameter: str | None
    value: float | None
    cost_saving: float  # share of frontier-only's cost saved
    quality_share_of_frontier: float
    p95_s: float | None
    assumed_confidence: bool
    meets_testable: bool = False

    @property
    def setting(self) -> str:
        """'cascade at threshold=0.7' or 'cascade as configured'."""
        return self.policy + (
            f" at {self.parameter}={self.value:g}" if self.parameter and self.value is not None else " as configured"
        )


@dataclass(frozen=True)
class Verdict:
    """The answer, the candidate that comes closest (or meets the claim), its margins, and why."""

    verdict: str  # 'supported', 'not supported' or 'not testable'
    claim: str
    run_id: int
    trace: str
    closest: Candidate | None
    margins: tuple[Margin, ...] = ()
    reasons: tuple[str, ...] = ()
    sources: dict[str, object] = field(default_factory=dict)
    candidates: int = 0
    evaluated: tuple[Candidate, ...] = ()  # every candidate scored, closest to the claim first

    def as_dict(self) -> dict[str, object]:
        """JSON-ready, with each margin's text."""
        out = asdict(self)
        out["margins"] = [{**asdict(m), "text": m.text, "result": m.result} for m in self.margins]
        return out


def _assumed_confidence(sources: dict[str, int]) -> bool:
    """Did this policy's routing rest on a confidence signal that was assumed rather than measured?"""
    return bool(sources) and not any(k != "assumption" for k in sources)


def _candidates(run: JsonRecord, points: Sequence[JsonRecord]) -> list[Candidate]:
    summaries = summaries_from_dicts(run["policies"])
    base = summaries[BASELINE]
    rows: list[tuple[str, str | None, float | None, float, float, float | None]] = [
        (s.policy, None, None, s.cost_usd, s.quality, s.p95_ms) for s in summaries.values() if not s.is_reference
    ]
    rows += [
        (
            str(p["policy"]),
            str(p["parameter"]),
            float(p["value"]),
            float(p["cost_usd"]),
            float(p["quality"]),
            None if p.get("p95_ms") is None else float(p["p95_ms"]),
        )
        for p in points
        if p["policy"] in summaries and not summaries[str(p["policy"])].is_reference and p.get("parameter") is not None
    ]
    return [
        Candidate(
            policy,
            parameter,
            value,
            1 - cost / base.cost_usd if base.cost_usd else 0.0,
            quality / base.quality if base.quality else 0.0,
            None if p95 is None else p95 / 1000,
            _assumed_confidence(summaries[policy].confidence_source),
        )
        for policy, parameter, value, cost, quality, p95 in rows
    ]


def _quality_testable(run: JsonRecord) -> tuple[bool, str]:
    counts = run["inputs"]["quality_source"]
    measured = {m: sum(v for k, v in c.items() if k != "assumption") for m, c in counts.items()}
    total = {m: sum(c.values()) for m, c in counts.items()}
    if not any(measured.values()):
        return False, (
            "quality cannot be tested with this data: every quality figure in this replay is an assumption "
            f"({', '.join(counts)}); import recorded outcomes or run `slmlab eval` to measure it"
        )
    share = sum(measured.values()) / max(1, sum(total.values()))
    if share >= 1:
        return True, "every (request, model) quality figure is recorded or measured"
    return True, f"{share:.0%} of the (request, model) quality figures are recorded or measured, the rest assumed"


def _margins(claim: Claim, c: Candidate, testable: dict[str, bool]) -> tuple[Margin, ...]:
    """Each criterion of the claim for one candidate, in the claim's units."""
    out = []
    if claim.cheaper_pct is not None:
        out.append(
            Margin(
                "cheaper",
                f">= {claim.cheaper_pct:g}% saving",
                f"{c.cost_saving:.1%} saving",
                c.cost_saving * 100 - claim.cheaper_pct,
                "points",
                True,
            )
        )
    if claim.quality_pct is not None:
        out.append(
            Margin(
                "quality",
                f">= {claim.quality_pct:g}% of frontier-only's",
                f"{c.quality_share_of_frontier:.1%} of frontier-only's" + ("" if testable["quality"] else " (assumed)"),
                c.quality_share_of_frontier * 100 - claim.quality_pct,
                "points",
                testable["quality"],
            )
        )
    if claim.p95_s is not None:
        out.append(
            Margin(
                "p95",
                f"<= {duration(claim.p95_s)}",
                duration(c.p95_s),
                None if c.p95_s is None else claim.p95_s - c.p95_s,
                "s",
                testable["p95"] and c.p95_s is not None,
            )
        )
    return tuple(out)


def _shortfall(claim: Claim, margins: tuple[Margin, ...]) -> tuple[float, float]:
    """The closeness order over the testable criteria, as shares of their targets: the worst signed gap (below 0:
    met with that much room), then the total shortfall."""
    target = {
        "cheaper": max(claim.cheaper_pct or 1.0, 1.0),
        "quality": claim.quality_pct or 1.0,
        "p95": claim.p95_s or 1.0,
    }
    gaps = [-(m.value if m.value is not None else -math.inf) / target[m.criterion] for m in margins if m.testable]
    return (max(gaps, default=0.0), sum(max(g, 0.0) for g in gaps))


def check_claim(claim: Claim, run: JsonRecord, points: Sequence[JsonRecord]) -> Verdict:
    """Test a claim on a stored replay (`load_run`) and its sweep points."""
    inputs = run["inputs"]
    reasons: list[str] = []
    testable = {"cheaper": True, "quality": False, "p95": False}
    if claim.quality_pct is not None:
        testable["quality"], why = _quality_testable(run)
        reasons.append(why)
    if claim.p95_s is not None:
        testable["p95"] = inputs.get("arrivals") == "recorded"
        if not testable["p95"]:
            reasons.append(
                "p95 latency cannot be tested with this data: the trace records no arrival times, so there "
                "is no queueing to measure"
            )
    untestable = [k for k in claim.parts() if not testable[k]]
    sources = {
        "quality": inputs.get("quality_source"),
        "tokens": inputs.get("token_source"),
        "arrivals": inputs.get("arrivals"),
        "prices": run.get("catalogue_version"),
        "baseline_model": run["config"].get("frontier_model"),
    }
    scored = []
    for c in _candidates(run, points):
        margins = _margins(claim, c, testable)
        meets = all(m.met for m in margins if m.met is not None)
        scored.append((_shortfall(claim, margins), Candidate(**{**asdict(c), "meets_testable": meets}), margins))
    evaluated = tuple(c for _, c, _ in sorted(scored, key=lambda item: item[0]))  # closest to the claim first
    if not scored or len(untestable) == len(claim.parts()):
        if len(untestable) == len(claim.parts()):
            reasons.append("no part of this claim can be tested on this replay")
        return Verdict(
            "not testable",
            claim.describe(),
            int(run["run_id"]),
            str(run["trace"]),
            None,
            (),
            tuple(reasons),
            sources,
            len(scored),
            evaluated,
        )
    meeting = [item for item in scored if item[1].meets_testable]
    measured = [item for item in meeting if not item[1].assumed_confidence]
    _, best, margins = min(measured or meeting or scored, key=lambda item: item[0])
    tested = ", ".join(k for k in claim.parts() if testable[k])
    if not meeting:
        verdict = "not supported"
        missed = "; ".join(f"{m.criterion} ({m.text})" for m in margins if m.met is False)
        always = [
            k
            for k in claim.parts()
            if testable[k] and all(any(m.criterion == k and m.met is False for m in ms) for _, _, ms in scored)
        ]
        reasons.append(
            f"no policy or sweep point meets the testable part ({tested}) of the claim"
            + (f"; every one of the {len(scored)} candidates misses {' and '.join(always)}" if always else "")
            + f". The closest, {best.setting}, misses {missed}"
            + (". What cannot be tested here would not change this." if untestable else ".")
        )
    elif untestable:
        verdict = "not testable"
        reasons.append(
            f"{best.setting} meets the testable part ({tested}), but {', '.join(untestable)} cannot be "
            "tested with this data"
        )
    elif best.assumed_confidence:
        verdict = "not testable"
        reasons.append(
            f"only settings whose routing rests on an assumed confidence signal meet it (closest: "
            f"{best.setting}); measure the small model's confidence (`slmlab eval`) to test it"
        )
    else:
        verdict = "supported"
        reasons.append(f"{best.setting} meets every part of the claim on this traffic")
    return Verdict(
        verdict,
        claim.describe(),
        int(run["run_id"]),
        str(run["trace"]),
        best,
        margins,
        tuple(reasons),
        sources,
        len(scored),
        evaluated,
    )
