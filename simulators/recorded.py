"""Checks of a recorded log against the catalogue: does pricing each request on its recorded model reproduce the
logged bill, and is the recorded API latency what the catalogue assumes?

Pure computation on arrays read by the warehouse (`slmlab.traces.records.load_records`); nothing here touches the
database.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from simulators.catalog import (
    CATALOGUE_VERSION,
    DEFAULT_API_OUTPUT_TOK_S,
    DEFAULT_API_TTFT_MS,
    catalogue_key_for,
)

TOLERANCE = 0.01  # the bill is reproduced when the priced total is within 1% of the logged one
SHOWN_REQUESTS = 20


@dataclass(frozen=True)
class RecordedCalls:
    """A trace's recorded calls as arrays (one entry per request, in arrival order)."""

    request_id: np.ndarray  # str
    model: np.ndarray  # str or None
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    cached_tokens: np.ndarray  # NaN where not recorded
    cost_usd: np.ndarray  # NaN where not recorded
    latency_ms: np.ndarray  # NaN where not recorded
    ttft_ms: np.ndarray  # NaN where not recorded
    status: np.ndarray  # 'success', 'failure' or None


@dataclass(frozen=True)
class ModelBill:
    """One recorded model's logged and priced spend."""

    model: str
    catalogue_key: str | None
    requests: int
    recorded_usd: float
    priced_usd: float
    difference: float | None  # (priced - recorded) / recorded
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class BillCheck:
    """The logged bill against each request priced from the catalogue on its recorded model ("as recorded")."""

    catalogue_version: str
    requests: int
    requests_with_cost: int
    recorded_usd: float  # all logged spend
    compared_recorded_usd: float  # logged spend on requests the catalogue can price
    priced_usd: float  # those requests priced from the catalogue on their recorded model
    difference: float | None  # (priced - compared recorded) / compared recorded
    within_tolerance: bool
    models: tuple[ModelBill, ...]
    differing_requests: tuple[dict[str, object], ...]
    differing_count: int
    notes: tuple[str, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready."""
        return asdict(self)


def _price(entry: dict | None, tokens_in: np.ndarray, tokens_out: np.ndarray, cached: np.ndarray) -> np.ndarray:
    if entry is None:
        return np.full(len(tokens_in), np.nan)
    per_in, per_out = float(entry["input_cost_per_token"]), float(entry["output_cost_per_token"])
    per_cached = entry.get("cache_read_input_token_cost")
    cached = np.nan_to_num(cached, nan=0.0)
    cached = np.minimum(cached, tokens_in) if per_cached is not None else np.zeros_like(cached)
    return (tokens_in - cached) * per_in + cached * float(per_cached or 0.0) + tokens_out * per_out


def _relative(priced: float, recorded: float) -> float | None:
    return None if recorded == 0 else (priced - recorded) / recorded


def check_bill(calls: RecordedCalls, catalogue: dict[str, dict], tolerance: float = TOLERANCE) -> BillCheck:
    """Price every request on its recorded model and compare with the logged cost, in total and per model; name the
    requests that differ by more than the tolerance and why (unknown model, cached tokens, failed call)."""
    count = len(calls.model)
    tokens_in = calls.input_tokens.astype(float)
    tokens_out = calls.output_tokens.astype(float)
    priced = np.full(count, np.nan)
    keys: dict[str, str | None] = {}
    models = np.array(["(none)" if m is None else str(m) for m in calls.model], dtype=object)
    for name in np.unique(models):
        key = catalogue_key_for(name, catalogue) if name != "(none)" else None
        entry = catalogue.get(key) if key else None
        usable = (
            entry is not None
            and entry.get("input_cost_per_token") is not None
            and entry.get("output_cost_per_token") is not None
        )
        keys[name] = key if usable else None
        rows = models == name
        priced[rows] = _price(entry if usable else None, tokens_in[rows], tokens_out[rows], calls.cached_tokens[rows])
    has_cost = ~np.isnan(calls.cost_usd)
    compared = has_cost & ~np.isnan(priced)
    recorded_total = float(np.sum(calls.cost_usd[has_cost]))
    priced_total = float(np.sum(priced[has_cost & ~np.isnan(priced)]))
    unpriced_cost = float(np.sum(calls.cost_usd[has_cost & np.isnan(priced)]))
    cached = np.nan_to_num(calls.cached_tokens, nan=0.0) > 0
    failed = np.array([s == "failure" for s in calls.status], dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        gap = np.where(
            calls.cost_usd > 0, (priced - calls.cost_usd) / calls.cost_usd, np.where(priced > 0, np.inf, 0.0)
        )
    differs = has_cost & (np.isnan(priced) | (np.abs(np.nan_to_num(gap, nan=np.inf)) > tolerance))

    def reasons_for(rows: np.ndarray, name: str) -> tuple[str, ...]:
        found = []
        if keys[name] is None:
            found.append(f"model '{name}' is not in the price catalogue ({CATALOGUE_VERSION})")
        if np.any(rows & cached & differs):
            found.append("cached input tokens (the log's cache discount differs from the catalogue's cache price)")
        if np.any(rows & failed & differs):
            found.append("failed calls (a provider may bill them differently)")
        if np.any(rows & differs) and not found:
            found.append(f"the logged price differs from {CATALOGUE_VERSION} for this model")
        return tuple(found)

    per_model = []
    for name in np.unique(models):
        rows = models == name
        recorded = float(np.sum(calls.cost_usd[rows & has_cost]))
        priced_model = float(np.nansum(priced[rows & has_cost]))
        per_model.append(
            ModelBill(
                model=name,
                catalogue_key=keys[name],
                requests=int(rows.sum()),
                recorded_usd=recorded,
                priced_usd=priced_model,
                difference=None if keys[name] is None else _relative(priced_model, recorded),
                reasons=reasons_for(rows, name),
            )
        )
    shown = []
    for i in np.flatnonzero(differs)[:SHOWN_REQUESTS]:
        name = models[i]
        why = list(reasons_for(np.arange(count) == i, name))
        shown.append(
            {
                "request_id": str(calls.request_id[i]),
                "model": name,
                "recorded_usd": float(calls.cost_usd[i]),
                "priced_usd": None if np.isnan(priced[i]) else float(priced[i]),
                "reasons": why,
            }
        )
    compared_recorded = float(np.sum(calls.cost_usd[compared]))
    difference = _relative(priced_total, compared_recorded) if compared.any() else None
    notes = []
    if not has_cost.any():
        notes.append("the log records no cost: there is no bill to reproduce (the priced total is shown alone)")
        priced_total = float(np.nansum(priced))
    if unpriced_cost:
        notes.append(
            f"${unpriced_cost:.6f} of the logged ${recorded_total:.6f} is on models the catalogue cannot "
            "price; the comparison covers the rest"
        )
    return BillCheck(
        catalogue_version=CATALOGUE_VERSION,
        requests=count,
        requests_with_cost=int(has_cost.sum()),
        recorded_usd=recorded_total,
        compared_recorded_usd=compared_recorded,
        priced_usd=priced_total,
        difference=difference,
        within_tolerance=difference is not None and abs(difference) <= tolerance,
        models=tuple(per_model),
        differing_requests=tuple(shown),
        differing_count=int(differs.sum()),
        notes=tuple(notes),
    )


@dataclass(frozen=True)
class ModelLatency:
    """One model's recorded latency against the catalogue's assumption."""

    model: str
    requests: int
    ttft_ms_p50: float | None
    ttft_ms_p95: float | None
    latency_ms_p50: float | None
    latency_ms_p95: float | None
    output_tok_s_p50: float | None  # output tokens / (end-to-end - time to first token), streamed calls only
    fitted_ttft_ms_p50: float | None  # without a recorded TTFT: median of (end-to-end - output / assumed speed)
    assumed_ttft_ms: float
    assumed_output_tok_s: float
    assumed_latency_ms_p50: float | None  # the catalogue's figures applied to the recorded token counts
    ratio_p50: float | None  # recorded / assumed end-to-end latency at the median


@dataclass(frozen=True)
class LatencyCheck:
    """Recorded per-model latency distributions next to the catalogue's API latency assumption."""

    models: tuple[ModelLatency, ...]
    assumption: str

    def as_dict(self) -> dict[str, object]:
        """JSON-ready."""
        return asdict(self)

    def overrides(self) -> list[dict[str, object]]:
        """The recorded medians in the portfolio overrides format (`--overrides FILE`), to adopt them: recorded TTFT
        and output speed where the log has first-token times; else a TTFT fitted to the recorded end-to-end median at
        the assumed output speed."""
        entries = []
        for m in self.models:
            entry: dict[str, object] = {"name": m.model}
            if m.ttft_ms_p50 is not None:
                entry["ttft_ms"] = round(m.ttft_ms_p50, 1)
            elif m.fitted_ttft_ms_p50 is not None:  # non-streamed calls: the start-up that explains their latency
                entry["ttft_ms"] = round(m.fitted_ttft_ms_p50, 1)
            if m.output_tok_s_p50 is not None:
                entry["output_tok_s"] = round(m.output_tok_s_p50, 2)
            if len(entry) > 1:
                entries.append(entry)
        return entries


def _quantile(values: np.ndarray, q: float) -> float | None:
    values = values[~np.isnan(values)]
    return float(np.quantile(values, q)) if len(values) else None


def _fitted(startup_ms: np.ndarray) -> float | None:
    value = _quantile(startup_ms, 0.5)
    return None if value is None else max(0.0, value)


def check_latency(calls: RecordedCalls, assumed: dict[str, tuple[float, float]] | None = None) -> LatencyCheck:
    """Per recorded model: time to first token, end-to-end latency and output speed (p50, p95) of successful calls,
    beside the catalogue's assumed figures (`assumed`: model -> (ttft ms, output tok/s); default assumption else)."""
    assumed = assumed or {}
    models = np.array(["(none)" if m is None else str(m) for m in calls.model], dtype=object)
    ok = np.array([s != "failure" for s in calls.status], dtype=bool)
    found = []
    for name in np.unique(models):
        rows = (models == name) & ok
        if not rows.any():
            continue
        ttft, total = calls.ttft_ms[rows], calls.latency_ms[rows]
        out = calls.output_tokens[rows].astype(float)
        decode_s = (total - ttft) / 1000.0
        with np.errstate(divide="ignore", invalid="ignore"):
            speed = np.where((decode_s > 0) & (out > 1), out / decode_s, np.nan)
        assumed_ttft, assumed_speed = assumed.get(name, (DEFAULT_API_TTFT_MS, DEFAULT_API_OUTPUT_TOK_S))
        predicted = assumed_ttft + out / assumed_speed * 1000.0
        p50, predicted_p50 = _quantile(total, 0.5), _quantile(np.where(np.isnan(total), np.nan, predicted), 0.5)
        found.append(
            ModelLatency(
                model=name,
                requests=int(rows.sum()),
                ttft_ms_p50=_quantile(ttft, 0.5),
                ttft_ms_p95=_quantile(ttft, 0.95),
                latency_ms_p50=p50,
                latency_ms_p95=_quantile(total, 0.95),
                output_tok_s_p50=_quantile(speed, 0.5),
                fitted_ttft_ms_p50=_fitted(total - out / assumed_speed * 1000.0),
                assumed_ttft_ms=assumed_ttft,
                assumed_output_tok_s=assumed_speed,
                assumed_latency_ms_p50=predicted_p50,
                ratio_p50=None if p50 is None or not predicted_p50 else p50 / predicted_p50,
            )
        )
    return LatencyCheck(
        models=tuple(found),
        assumption=(
            f"catalogue default for API models: time to first token {DEFAULT_API_TTFT_MS:g} ms, "
            f"{DEFAULT_API_OUTPUT_TOK_S:g} output tokens/s (simulators.catalog), unless overridden"
        ),
    )
