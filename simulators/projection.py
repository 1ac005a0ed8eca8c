"""Cost over time: turn one replay (an hour or a file of traffic) into monthly costs per policy over a horizon,
with the break-even month against frontier-only.

Per policy and month m (0-based), with traffic growth g per month and API price change p per year:
* API: the replay's API cost x (monthly requests / replayed requests) x (1 + g)^m x (1 + p)^(m / 12);
* local servers of a fleet the replay sized to its SLO (`simulators.deployment`): the sized servers x (the
  monthly request rate / the replay's rate) x (1 + g)^m, rounded up, bought as they are needed and never sold,
  priced as the hardware profile they were sized on (unless the user sets the server figures);
* local servers of older runs (no sized fleet): the replay's busy server-time, grown by (1 + g)^m,
  needs busy / target utilisation servers; the fleet is bought as that number grows and never sold (or fixed
  by the user, in which case a month whose utilisation passes 1 is flagged as short of capacity);
* hardware: servers x capex / lifetime (straight-line amortisation, replaced at the same price at end of life);
* energy: servers x (idle W + (busy W - idle W) x utilisation) x hours in a month / 1000 x tariff, where busy W
  is the measured J/token x token/s when every local model's benchmark read an energy counter (the counter's
  power while serving), else the assumed busy W (labelled estimated);
* operations: servers x hosting and operations per server and month.
Latency is the replay's: rerun it with `--servers N` to see the queue a fleet of N gives.
Every input is a named assumption with its default and help text (`CostAssumptions`), except the replay's own
figures (API cost, local load, requests), which are read from the stored run. The math is numpy throughout, so
the Monte Carlo in `simulators.uncertainty` evaluates thousands of assumption draws at once.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from simulators.results import JsonRecord, summaries_from_dicts
from slmlab.paths import DATASETS_DIR

HOURS_PER_MONTH = 730.5  # 365.25 x 24 / 12
PRICE_HISTORY_DIR = DATASETS_DIR / "prices" / "llm-prices-history"

# A figure the Monte Carlo (`simulators.uncertainty`) replaces by an array of draws of shape (draws, 1); the math
# below is numpy throughout, so a float and an array go through the same code.
Drawn = float | np.ndarray

_T = TypeVar("_T")


def _assumption(default: _T, help_text: str, low: float | None = None, high: float | None = None) -> _T:
    """A projection input with its help text and the range the sensitivity and Monte Carlo analyses use."""
    return field(default=default, metadata={"help": help_text, "low": low, "high": high})


@dataclass(frozen=True)
class CostAssumptions:
    """Everything a projection assumes beyond the replay; each has a default, a help text and a range."""

    months: int = _assumption(36, "horizon in months")
    traffic_hours_per_month: Drawn = _assumption(
        HOURS_PER_MONTH, "hours a month with traffic like the replayed trace (730.5: around the clock)", 300.0, 730.5
    )
    monthly_requests: float = _assumption(
        0.0, "requests a month; 0: the trace's request rate x traffic hours (needs recorded arrivals)"
    )
    growth_per_month: Drawn = _assumption(0.02, "traffic growth per month (0.02: +2%)", 0.0, 0.05)
    api_price_change_per_year: Drawn = _assumption(
        -0.2, "API price change per year (-0.2: 20% cheaper each year); see `fitted_price_trend`", -0.5, 0.0
    )
    server_capex_usd: Drawn = _assumption(15000.0, "purchase price of one local inference server", 8000.0, 30000.0)
    server_lifetime_months: Drawn = _assumption(36.0, "months over which a server is amortised", 24.0, 60.0)
    servers: int = _assumption(0, "local servers, fixed; 0: bought as traffic needs them (see target_utilisation)")
    target_utilisation: Drawn = _assumption(
        0.7, "busy share a sized fleet is bought for (servers are added when traffic would pass it)", 0.5, 0.9
    )
    server_watts_busy: Drawn = _assumption(450.0, "server power when serving (W)", 250.0, 800.0)
    server_watts_idle: Drawn = _assumption(120.0, "server power when idle (W)", 60.0, 200.0)
    tariff_usd_per_kwh: Drawn = _assumption(0.20, "electricity price (USD per kWh)", 0.10, 0.35)
    ops_usd_per_server_month: Drawn = _assumption(
        400.0, "hosting, support and operations per server and month", 150.0, 1000.0
    )

    def as_dict(self) -> dict[str, object]:
        """JSON-ready."""
        return asdict(self)

    @classmethod
    def ranges(cls) -> dict[str, tuple[float, float]]:
        """The low-high range of every assumption that has one (for sensitivity and Monte Carlo)."""
        return {
            f.name: (f.metadata["low"], f.metadata["high"]) for f in fields(cls) if f.metadata.get("low") is not None
        }

    def with_values(self, **values: Any) -> CostAssumptions:
        """A copy with some assumptions changed (names checked; a value is a number, or draws for the Monte Carlo)."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"unknown projection assumption(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        return replace(self, **values)


# What a local "server" is: a rack server with a GPU, or an AI PC on a desk (assumptions, like the defaults).
HARDWARE_PRESETS: dict[str, dict[str, float]] = {
    "server": {},
    "ai-pc": {
        "server_capex_usd": 1800.0,
        "server_lifetime_months": 36.0,
        "server_watts_busy": 65.0,
        "server_watts_idle": 8.0,
        "ops_usd_per_server_month": 15.0,
    },
}


@dataclass(frozen=True)
class PolicyReplay:
    """What a projection needs of one policy in a stored replay."""

    policy: str
    api_cost_usd: Drawn  # over the replayed requests
    local_load: dict[str, Drawn]  # local model -> service time asked / capacity over the trace
    quality: float
    p95_ms: float
    residency_violations: int
    fleet: dict[str, tuple[int, float]] = field(default_factory=dict)  # local model -> (servers sized, busy share)
    fleet_profile: str | None = None  # the hardware profile the fleet was sized on
    fleet_profile_figures: dict[str, object] | None = None  # its figures when the replay ran (None: older runs)


# CostAssumptions field <- HardwareProfile field: a sized fleet is priced as the profile it was sized on, unless
# the user set the assumption
_PROFILE_FIGURES = {
    "server_capex_usd": "capex_usd",
    "server_lifetime_months": "lifetime_months",
    "server_watts_busy": "watts_busy",
    "server_watts_idle": "watts_idle",
    "ops_usd_per_server_month": "ops_usd_per_month",
    "tariff_usd_per_kwh": "tariff_usd_per_kwh",
}


def _priced_as(a: CostAssumptions, profile_name: str | None, figures: dict[str, object] | None) -> CostAssumptions:
    """The assumptions with the server figures of the fleet's hardware profile (as the replay recorded them, else
    the shipped profile of that name) wherever the user left the default."""
    if profile_name is None:
        return a
    if figures is None:
        from simulators.deployment import DeploymentError, profile

        try:
            figures = profile(profile_name).as_dict()
        except DeploymentError:
            return a
    defaults = {f.name: f.default for f in fields(CostAssumptions)}
    changes: dict[str, Any] = {
        name: figures[figure]
        for name, figure in _PROFILE_FIGURES.items()
        if isinstance(getattr(a, name), (int, float)) and getattr(a, name) == defaults[name]
    }
    return replace(a, **changes)


@dataclass(frozen=True)
class ReplayBasis:
    """The stored replay a projection scales: its requests, time span, servers and per-policy figures."""

    run_id: int
    trace: str
    requests: int
    span_s: float | None  # None when the trace records no arrivals
    servers_per_local_model: int
    policies: tuple[PolicyReplay, ...]
    measured_busy_watts: dict[str, float] = field(default_factory=dict)  # local model -> W from measured J/token

    def policy(self, name: str) -> PolicyReplay:
        """One policy's figures; the error lists the run's policies."""
        for p in self.policies:
            if p.policy == name:
                return p
        raise ValueError(
            f"run {self.run_id} has no policy '{name}'; it has {', '.join(p.policy for p in self.policies)}"
        )


def basis_from_run(run: JsonRecord) -> ReplayBasis:
    """The projection basis of a stored run (`simulators.runs.load_run`)."""
    inputs = run["inputs"]
    summaries = run["policies"]
    # Projected: every policy the user asked to replay (the oracle too, shown as a bound) and every deployable one;
    # not a reference the replay added on its own (small-only, replayed only for the PGR).
    asked = {str(p.get("policy")) for p in (run.get("config") or {}).get("policies") or []}
    projected = {label for label, s in summaries_from_dicts(summaries).items() if s.deployable or label in asked}
    policies = tuple(
        PolicyReplay(
            policy=label,
            api_cost_usd=float((s.get("cost_parts_usd") or {}).get("api", s["cost_usd"])),
            local_load=dict(s.get("local_load") or {}),
            fleet={
                m: (int(f["servers"]), float(f.get("utilisation") or 0.0))
                for m, f in (s.get("fleet") or {}).items()
                if f.get("sized")
            },
            fleet_profile=next((f.get("profile") for f in (s.get("fleet") or {}).values()), None),
            fleet_profile_figures=next(
                (
                    serving["priced_as"]
                    for serving in ((run.get("inputs") or {}).get("local_serving") or {}).values()
                    if "priced_as" in serving
                ),
                None,
            ),
            quality=float(s["quality"]),
            p95_ms=float((s.get("latency_ms") or {}).get("p95") or math.nan),
            residency_violations=int(s.get("residency_violations", 0)),
        )
        for label, s in summaries.items()
        if label in projected
    )
    first = next(iter(summaries.values()))
    watts = {}
    for model in run.get("portfolio") or []:
        energy, speed = model.get("energy_j_per_token") or {}, model.get("output_tok_s") or {}
        if (
            model.get("kind") == "local"
            and energy.get("source") == "measured"
            and energy.get("value")
            and speed.get("value")
        ):
            watts[model["name"]] = float(energy["value"]) * float(speed["value"])  # J/token x token/s = W while busy
    return ReplayBasis(
        run_id=int(run["run_id"]),
        trace=str(run["trace"]),
        requests=int(first["requests"]),
        span_s=inputs.get("span_s"),
        servers_per_local_model=int(inputs.get("servers_per_local_model", 1)),
        policies=policies,
        measured_busy_watts=watts,
    )


@dataclass(frozen=True)
class PolicyProjection:
    """Monthly costs of one policy by component, the cumulative total, and when it breaks even."""

    policy: str
    api: np.ndarray
    hardware: np.ndarray
    energy: np.ndarray
    operations: np.ndarray
    servers: np.ndarray  # local servers owned each month
    utilisation: np.ndarray  # busy share of the local fleet per month (above 1: short of capacity)
    break_even_month: int | None  # 1-based month its cumulative cost first stays at or below frontier-only's

    @property
    def monthly(self) -> np.ndarray:
        return self.api + self.hardware + self.energy + self.operations

    @property
    def cumulative(self) -> np.ndarray:
        return np.cumsum(self.monthly)

    @property
    def short_of_capacity_from(self) -> int | None:
        """The first month (1-based) in which the local fleet cannot keep up, if any."""
        over = np.flatnonzero(self.utilisation > 1.0)
        return int(over[0]) + 1 if over.size else None

    def as_dict(self) -> dict[str, object]:
        """JSON-ready, monthly figures rounded to cents."""
        return {
            "policy": self.policy,
            "servers_first_last": [int(self.servers[0]), int(self.servers[-1])],
            "monthly_usd": [round(float(v), 2) for v in self.monthly],
            "cumulative_usd": [round(float(v), 2) for v in self.cumulative],
            "components_total_usd": {
                k: round(float(getattr(self, k).sum()), 2) for k in ("api", "hardware", "energy", "operations")
            },
            "total_usd": round(float(self.cumulative[-1]), 2),
            "break_even_month": self.break_even_month if self.break_even_month is not None else "never",
            "local_utilisation_first_last": [
                round(float(self.utilisation[0]), 4),
                round(float(self.utilisation[-1]), 4),
            ],
            "short_of_capacity_from_month": self.short_of_capacity_from,
        }


def monthly_scale(basis: ReplayBasis, a: CostAssumptions) -> Drawn:
    """Requests a month over requests replayed."""
    if a.monthly_requests > 0:
        return a.monthly_requests / basis.requests
    if not basis.span_s:
        raise ValueError(
            f"trace '{basis.trace}' records no arrival times, so its request rate is unknown: set "
            "monthly_requests (`--set monthly_requests=...`)"
        )
    return (basis.requests / basis.span_s) * a.traffic_hours_per_month * 3600.0 / basis.requests


def components(
    basis: ReplayBasis, p: PolicyReplay, a: CostAssumptions, months: int | None = None
) -> dict[str, np.ndarray]:
    """The monthly cost components of one policy; assumptions may be numpy arrays of shape (draws, 1)."""
    m = np.arange(months or a.months, dtype=np.float64)
    growth = (1.0 + np.asarray(a.growth_per_month)) ** m
    prices = (1.0 + np.asarray(a.api_price_change_per_year)) ** (m / 12.0)
    scale = monthly_scale(basis, a)
    api = p.api_cost_usd * scale * growth * prices
    if p.fleet and basis.span_s:
        return _sized_components(basis, p, a, m, growth, api)
    used = [load for load in p.local_load.values() if np.any(np.asarray(load) > 0)]
    if not used:
        zero = np.zeros_like(api)
        return {
            "api": api,
            "hardware": zero,
            "energy": zero,
            "operations": zero,
            "servers": np.zeros_like(api),
            "utilisation": zero,
        }
    traffic_share = np.asarray(a.traffic_hours_per_month) / HOURS_PER_MONTH
    # busy server-time a month, in servers: the replay's (every server may host every local model), grown
    busy = sum(used) * basis.servers_per_local_model * traffic_share * growth
    if a.servers:
        servers = np.full_like(api, float(a.servers))
    else:  # buy servers when traffic needs them, never sell: enough to stay at or under the target utilisation
        servers = np.maximum.accumulate(np.ceil(busy / np.asarray(a.target_utilisation) - 1e-9), axis=-1)
        servers = np.maximum(servers, 1.0)
    utilisation = busy / servers
    busy_watts = np.asarray(a.server_watts_busy)
    measured = [
        basis.measured_busy_watts[m]
        for m, load in p.local_load.items()
        if np.any(np.asarray(load) > 0) and m in basis.measured_busy_watts
    ]
    if measured and len(measured) == len(used):  # every local model's energy was measured: use it over the assumption
        busy_watts = np.asarray(float(np.mean(measured)))
    watts = np.asarray(a.server_watts_idle) + (busy_watts - np.asarray(a.server_watts_idle)) * np.minimum(
        utilisation, 1.0
    )
    energy = servers * watts * HOURS_PER_MONTH / 1000.0 * np.asarray(a.tariff_usd_per_kwh)
    hardware = servers * np.asarray(a.server_capex_usd) / np.asarray(a.server_lifetime_months)
    operations = servers * np.asarray(a.ops_usd_per_server_month)
    return {
        "api": api,
        "hardware": hardware,
        "energy": energy,
        "operations": operations,
        "servers": servers,
        "utilisation": utilisation,
    }


def _sized_components(
    basis: ReplayBasis, p: PolicyReplay, a: CostAssumptions, m: np.ndarray, growth: np.ndarray, api: np.ndarray
) -> dict[str, np.ndarray]:
    """Components of a policy whose local fleet was sized to the SLO in the replay: the fleet scales with the
    request rate (monthly requests / traffic hours over the replay's rate) and growth, and is bought as it grows,
    never sold; each server priced as the hardware profile it was sized on unless the user set the figure. (A
    linear re-sizing: batching and pooling make a larger fleet slightly more efficient, so this errs high.)"""
    a = _priced_as(a, p.fleet_profile, p.fleet_profile_figures)
    ratio = monthly_scale(basis, a) * float(basis.span_s or 0) / (np.asarray(a.traffic_hours_per_month) * 3600.0)
    need = sum(n for n, _ in p.fleet.values()) * ratio * growth
    busy = sum(n * u for n, u in p.fleet.values()) * ratio * growth
    if a.servers:
        servers = np.full_like(api, float(a.servers)) * np.ones_like(need)
    else:
        servers = np.maximum(np.maximum.accumulate(np.ceil(need - 1e-9), axis=-1), 1.0)
    utilisation = busy / servers
    watts = np.asarray(a.server_watts_idle) + (
        np.asarray(a.server_watts_busy) - np.asarray(a.server_watts_idle)
    ) * np.minimum(utilisation, 1.0)
    return {
        "api": api,
        "hardware": servers * np.asarray(a.server_capex_usd) / np.asarray(a.server_lifetime_months),
        "energy": servers * watts * HOURS_PER_MONTH / 1000.0 * np.asarray(a.tariff_usd_per_kwh),
        "operations": servers * np.asarray(a.ops_usd_per_server_month),
        "servers": servers,
        "utilisation": utilisation,
    }


def break_even(cumulative: np.ndarray, baseline: np.ndarray) -> int | None:
    """First month (1-based) from which the cumulative cost stays at or below the baseline's; None if never."""
    below = cumulative <= baseline + 1e-9
    if not below[-1]:
        return None
    above = np.flatnonzero(~below)
    return int(above[-1]) + 2 if above.size else 1


@dataclass(frozen=True)
class Projection:
    """A projection of every policy of one replay, with the assumptions and price trend it used."""

    basis: ReplayBasis
    assumptions: CostAssumptions
    policies: tuple[PolicyProjection, ...]
    price_trend: dict[str, object]

    def get(self, policy: str) -> PolicyProjection:
        for p in self.policies:
            if p.policy == policy:
                return p
        raise ValueError(f"no policy '{policy}' in this projection")

    def as_dict(self) -> dict[str, object]:
        """What `slmlab project --json` prints."""
        return {
            "run_id": self.basis.run_id,
            "trace": self.basis.trace,
            "baseline": "frontier-only",
            "months": self.assumptions.months,
            "assumptions": self.assumptions.as_dict(),
            "assumption_sources": {
                f.name: "assumption (default)"
                if getattr(self.assumptions, f.name) == f.default
                else "assumption (set by the user)"
                for f in fields(CostAssumptions)
            },
            "price_trend": self.price_trend,
            "monthly_scale": monthly_scale(self.basis, self.assumptions),
            "energy_source": (
                "measured: J/token x token/s of "
                + ", ".join(f"{m} {w:.0f} W" for m, w in self.basis.measured_busy_watts.items())
            )
            if self.basis.measured_busy_watts
            else "estimated: assumed busy and idle watts (no benchmark here read an energy counter)",
            "policies": {p.policy: p.as_dict() for p in self.policies},
        }


def project(
    basis: ReplayBasis, assumptions: CostAssumptions | None = None, price_trend: dict[str, object] | None = None
) -> Projection:
    """Monthly and cumulative costs of every policy, and each one's break-even month against frontier-only."""
    a = assumptions or CostAssumptions()
    if a.months < 1:
        raise ValueError("months must be at least 1")
    parts = {p.policy: components(basis, p, a) for p in basis.policies}
    base = parts.get("frontier-only")
    if base is None:
        raise ValueError(f"run {basis.run_id} has no frontier-only baseline")
    baseline = np.cumsum(base["api"] + base["hardware"] + base["energy"] + base["operations"])
    projections = []
    for name, c in parts.items():
        total = np.cumsum(c["api"] + c["hardware"] + c["energy"] + c["operations"])
        projections.append(
            PolicyProjection(
                policy=name,
                api=c["api"],
                hardware=c["hardware"],
                energy=c["energy"],
                operations=c["operations"],
                servers=c["servers"],
                utilisation=c["utilisation"],
                break_even_month=None if name == "frontier-only" else break_even(total, baseline),
            )
        )
    trend = price_trend or {"method": "assumption", "api_price_change_per_year": a.api_price_change_per_year}
    return Projection(basis=basis, assumptions=a, policies=tuple(projections), price_trend=trend)


def _parse_date(text: str | None) -> date | None:
    return date.fromisoformat(text[:10]) if text else None


def fitted_price_trend(folder: Path = PRICE_HISTORY_DIR) -> dict[str, object]:
    """The annual API price change fitted from the shipped price history (simonw/llm-prices): for every model
    with two prices whose periods are both dated, the change in (input + output) price per year between the
    middles of the two periods; the median over those models. When no model qualifies the result says so and
    the projection keeps the assumption."""
    changes, models, undated = [], [], 0
    for path in sorted(Path(folder).glob("*.json")):
        vendor = json.loads(path.read_text(encoding="utf-8"))
        for model in vendor.get("models", []):
            dated = []
            for price in model.get("price_history", []):
                start, end = _parse_date(price.get("from_date")), _parse_date(price.get("to_date"))
                if start and end and price.get("input") is not None and price.get("output") is not None:
                    dated.append((start + (end - start) / 2, float(price["input"]) + float(price["output"])))
            if len(model.get("price_history", [])) > 1 and len(dated) < 2:
                undated += 1
            if len(dated) >= 2:
                dated.sort()
                (t0, p0), (t1, p1) = dated[0], dated[-1]
                years = (t1 - t0).days / 365.25
                if years > 0 and p0 > 0:
                    changes.append((p1 / p0) ** (1 / years) - 1)
                    models.append(f"{vendor.get('vendor')}/{model.get('id')}")
    if not changes:
        return {
            "method": "not fitted",
            "models_used": 0,
            "reason": f"no model in {Path(folder).name} has two prices with dated periods ({undated} models changed "
            "price, but the earlier price has no start date), so no rate per year can be measured",
        }
    return {
        "method": "fitted",
        "models_used": len(changes),
        "models": models,
        "api_price_change_per_year": float(np.median(changes)),
    }
