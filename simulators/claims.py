"""Check a vendor's claim against your own traffic: "X% cheaper than frontier-only at >= Y% of its quality with
p95 <= Z s". The answer is supported, not supported, or not testable with this data, with the evidence.

Candidates are every deployable policy of a stored replay as configured, plus every point of its sweep (the
oracle knows the answers in advance and is never a candidate). A criterion is testable only when the data can
speak to it: quality needs recorded or measured outcomes (a replay whose quality figures are all assumptions
cannot confirm or refute a quality claim), and latency needs recorded arrival times (without them there is no
queueing). Cost is always testable: catalogue prices x the trace's tokens.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

UNDEPLOYABLE = ("oracle", "small-only (reference)")


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
class Verdict:
    """The answer, the candidate that comes closest (or meets the claim), its margins, and why."""

    verdict: str  # 'supported', 'not supported' or 'not testable'
    claim: str
    run_id: int
    trace: str
    closest: dict[str, object] | None
    reasons: list[str] = field(default_factory=list)
    sources: dict[str, object] = field(default_factory=dict)
    candidates: int = 0
    evaluated: list[dict[str, object]] = field(default_factory=list)  # every candidate: saving, quality share, p95

    def as_dict(self) -> dict[str, object]:
        """JSON-ready."""
        return asdict(self)


def _assumed_confidence(summary: dict[str, object]) -> bool:
    """Did this policy's routing rest on a confidence signal that was assumed rather than measured?"""
    sources = summary.get("confidence_source") or {}
    return bool(sources) and not any(k != "assumption" for k in sources)  # type: ignore[union-attr]


def _candidates(run: dict[str, object], points: list[dict[str, object]]) -> list[dict[str, object]]:
    summaries = run["policies"]  # type: ignore[index]
    rows = [
        {
            "policy": label,
            "parameter": None,
            "value": None,
            "cost_usd": s["cost_usd"],
            "quality": s["quality"],
            "p95_ms": (s.get("latency_ms") or {}).get("p95"),
        }
        for label, s in summaries.items()
        if label not in UNDEPLOYABLE
    ]  # type: ignore[union-attr]
    rows += [dict(p) for p in points if p["policy"] not in UNDEPLOYABLE and p.get("parameter") is not None]
    for row in rows:
        row["assumed_confidence"] = _assumed_confidence(summaries[row["policy"]])  # type: ignore[index]
    return rows


def _quality_testable(run: dict[str, object]) -> tuple[bool, str]:
    counts = run["inputs"]["quality_source"]  # type: ignore[index]
    measured = {m: sum(v for k, v in c.items() if k != "assumption") for m, c in counts.items()}
    total = {m: sum(c.values()) for m, c in counts.items()}
    if not any(measured.values()):
        return False, (
            "quality is not testable with this data: every quality figure in this replay is an assumption "
            f"({', '.join(counts)}); import recorded outcomes or run `slmlab eval` to measure it"
        )
    share = sum(measured.values()) / max(1, sum(total.values()))
    if share >= 1:
        return True, "every (request, model) quality figure is recorded or measured"
    return True, f"{share:.0%} of the (request, model) quality figures are recorded or measured, the rest assumed"


def check_claim(claim: Claim, run: dict[str, object], points: list[dict[str, object]]) -> Verdict:
    """Test a claim on a stored replay (`simulators.runs.load_run`) and its sweep points."""
    base = run["policies"]["frontier-only"]  # type: ignore[index]
    inputs = run["inputs"]  # type: ignore[index]
    reasons: list[str] = []
    testable = {"cheaper": claim.cheaper_pct is not None, "quality": False, "p95": False}
    if claim.quality_pct is not None:
        testable["quality"], why = _quality_testable(run)
        reasons.append(why)
    if claim.p95_s is not None:
        testable["p95"] = inputs.get("arrivals") == "recorded"
        if not testable["p95"]:
            reasons.append(
                "p95 latency is not testable with this data: the trace records no arrival times, so there "
                "is no queueing to measure"
            )
    candidates = _candidates(run, points)

    def gaps(c: dict[str, object]) -> dict[str, float]:
        """How far each criterion is from being met (<= 0: met), as a share of its target."""
        out = {}
        if claim.cheaper_pct is not None:
            saving = 1 - float(c["cost_usd"]) / float(base["cost_usd"])
            out["cheaper"] = claim.cheaper_pct / 100 - saving
        if claim.quality_pct is not None and testable["quality"]:
            out["quality"] = claim.quality_pct / 100 - float(c["quality"]) / float(base["quality"])
        if claim.p95_s is not None and testable["p95"]:
            p95 = c.get("p95_ms")
            out["p95"] = math.inf if p95 is None else (float(p95) / 1000 - claim.p95_s) / claim.p95_s
        return out

    # closest first: the smallest worst shortfall, then the smallest total shortfall
    scored = [((max(g.values()), sum(max(v, 0.0) for v in g.values())), c, g) for c in candidates if (g := gaps(c))]
    sources = {
        "quality": inputs.get("quality_source"),
        "tokens": inputs.get("token_source"),
        "arrivals": inputs.get("arrivals"),
        "prices": run.get("catalogue_version"),
        "baseline_model": run["config"].get("frontier_model"),
    }  # type: ignore[union-attr]
    if not scored:
        return Verdict("not testable", claim.describe(), int(run["run_id"]), str(run["trace"]), None, reasons, sources)
    meeting = [item for item in scored if item[0][0] <= 1e-12]
    measured_meeting = [item for item in meeting if not item[1]["assumed_confidence"]]
    (worst, _), best, best_gaps = min(measured_meeting or meeting or scored, key=lambda item: item[0])
    closest = {
        "policy": best["policy"],
        "parameter": best.get("parameter"),
        "value": best.get("value"),
        "cost_saving": 1 - float(best["cost_usd"]) / float(base["cost_usd"]),
        "quality_share_of_frontier": float(best["quality"]) / float(base["quality"]),
        "p95_s": None if best.get("p95_ms") is None else float(best["p95_ms"]) / 1000,  # type: ignore[arg-type]
        "margins": {k: -v for k, v in best_gaps.items()},  # > 0: met with room to spare; < 0: missed by that much
        "assumed_confidence": best["assumed_confidence"],
    }
    untestable = [
        k
        for k, asked in (("quality", claim.quality_pct), ("p95", claim.p95_s))
        if asked is not None and not testable[k]
    ]
    if untestable:
        verdict = "not testable"
        reasons.append(
            f"the testable part ({', '.join(best_gaps)}) is {'met' if worst <= 0 else 'not met'} by the "
            f"closest candidate, {best['policy']}"
        )
    elif worst <= 1e-12 and best["assumed_confidence"]:
        verdict = "not testable"
        reasons.append(
            f"only settings whose routing rests on an assumed confidence signal meet it (closest: "
            f"{best['policy']}); measure the small model's confidence (`slmlab eval`) to test it"
        )
    elif worst <= 1e-12:
        verdict = "supported"
        reasons.append(
            f"{best['policy']}"
            + (f" at {best['parameter']}={best['value']:g}" if best.get("parameter") else "")
            + " meets every part of the claim on this traffic"
        )
    else:
        verdict = "not supported"
        missed = ", ".join(f"{k} by {v:.1%}" for k, v in best_gaps.items() if v > 0)
        reasons.append(
            f"no policy or sweep point meets it; the closest, {best['policy']}"
            + (f" at {best['parameter']}={best['value']:g}" if best.get("parameter") else "")
            + f", misses {missed}"
        )
    evaluated = [
        {
            "policy": c["policy"],
            "parameter": c.get("parameter"),
            "value": c.get("value"),
            "cost_saving": 1 - float(c["cost_usd"]) / float(base["cost_usd"]),
            "quality_share_of_frontier": float(c["quality"]) / float(base["quality"]),
            "p95_s": None if c.get("p95_ms") is None else float(c["p95_ms"]) / 1000,  # type: ignore[arg-type]
            "meets": key[0] <= 1e-12,
        }
        for key, c, _ in scored
    ]
    return Verdict(
        verdict,
        claim.describe(),
        int(run["run_id"]),
        str(run["trace"]),
        closest,
        reasons,
        sources,
        candidates=len(scored),
        evaluated=evaluated,
    )
