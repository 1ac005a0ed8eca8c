"""The portfolio a routing replay chooses from: local small models and API models, each with where it runs,
which data it may receive, what it costs and how fast it answers, and where every one of those numbers came from.

API prices and context windows come from the shipped LiteLLM catalogue (its version is recorded with every
result). Local service rates come from this machine's benchmark runs, or from a documented default profile
until one has been run. Deployment rules, API latencies and local defaults are assumptions, written down here
and editable through an overrides file.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from simulators.data import Warehouse
from simulators.results import JsonRecord
from slmlab.paths import DATASETS_DIR
from slmlab.traces.labelling import DATA_CLASSES

CATALOGUE_FILE = DATASETS_DIR / "prices" / "litellm-model-prices-1.110.2.json"
CATALOGUE_VERSION = "litellm 1.110.2"
LOCATIONS = ("on-device", "on-premises", "cloud-eu", "cloud-us", "cloud-other")

# Assumption: the data classes each location may receive (a regulated record never leaves the premises, a
# confidential one may go to an EU cloud region). Override per model with `data_classes`.
DEFAULT_DATA_CLASSES: dict[str, tuple[str, ...]] = {
    "on-device": DATA_CLASSES,
    "on-premises": DATA_CLASSES,
    "cloud-eu": ("public", "internal", "confidential"),
    "cloud-us": ("public", "internal"),
    "cloud-other": ("public",),
}
# Which locations satisfy a request's residency requirement (a fact of the requirement, not an assumption).
RESIDENCY_LOCATIONS: dict[str, tuple[str, ...]] = {
    "any": LOCATIONS,
    "eu-only": ("on-device", "on-premises", "cloud-eu"),
    "on-premises-only": ("on-device", "on-premises"),
}
# Assumption: API latency when nothing better is known (documented, editable per model).
DEFAULT_API_TTFT_MS = 600.0
DEFAULT_API_OUTPUT_TOK_S = 80.0
# Assumption until this machine has a benchmark run of the model: the figures measured on slmlab's 2-core build
# machine (AMD EPYC, CPU build of llama.cpp, 2026-11-27), see README "Benchmarks".
DEFAULT_LOCAL_PROFILES: dict[str, dict[str, float]] = {
    "smollm2-135m": {
        "prefill_tok_s": 285.0,
        "output_tok_s": 113.0,
        "ttft_ms": 226.0,
        "memory_bytes": 193e6,
        "context_window": 8192,
    },
    "gemma3-270m": {
        "prefill_tok_s": 604.0,
        "output_tok_s": 70.6,
        "ttft_ms": 150.0,
        "memory_bytes": 385e6,
        "context_window": 32768,
    },
}
_EU = re.compile(r"(^eu\.|/eu/|^eu/|europe|-eu-|_eu_)", re.I)
_US = re.compile(r"(^us\.|/us/|^us/|-us-|_us_)", re.I)
_OTHER = re.compile(r"(^apac\.|^jp\.|^au\.|/apac/|/jp/|/au/|^ca\.)", re.I)


class CatalogueError(ValueError):
    """A model or an override cannot be placed in the portfolio; the message names it and says why."""


@dataclass(frozen=True)
class Figure:
    """One number with its provenance: measured here, from the price catalogue, or an assumption."""

    value: float | None
    source: str  # 'measured', 'catalogue', 'assumption' or 'override'
    detail: str = ""


@dataclass(frozen=True)
class PortfolioModel:
    """A model the orchestration layer may send requests to."""

    name: str
    kind: str  # 'local' or 'api'
    location: str
    data_classes: tuple[str, ...]
    context_window: int | None
    input_usd_per_mtok: Figure
    output_usd_per_mtok: Figure
    ttft_ms: Figure
    output_tok_s: Figure
    prefill_tok_s: Figure | None = None
    memory_bytes: Figure | None = None
    energy_j_per_token: Figure | None = None  # local: from a benchmark with a readable energy counter (or estimated)
    usd_per_call: Figure | None = None  # a fixed fee per request on top of the per-token prices (override)
    notes: tuple[str, ...] = field(default_factory=tuple)

    def accepts(self, data_class: str | None, residency: str | None) -> bool:
        """May a request of this data class and residency requirement be sent here?"""
        class_ok = data_class is None or data_class in self.data_classes
        return class_ok and self.location in RESIDENCY_LOCATIONS.get(residency or "any", LOCATIONS)

    def cost_usd(self, input_tokens: float, output_tokens: float) -> float:
        """Price of one request at this model's per-token prices (local models: marginal API cost, 0)."""
        per_call = self.usd_per_call.value if self.usd_per_call and self.usd_per_call.value else 0.0
        return (
            input_tokens * (self.input_usd_per_mtok.value or 0.0)
            + output_tokens * (self.output_usd_per_mtok.value or 0.0)
        ) / 1e6 + per_call

    def as_dict(self) -> dict[str, object]:
        """JSON-ready, every figure with its source."""
        return asdict(self)


def load_price_catalogue(path: Path = CATALOGUE_FILE) -> dict[str, dict]:
    """The LiteLLM catalogue as {model key: entry}, without its `sample_spec` documentation entry."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CatalogueError(f"{path}: price catalogue missing (it ships in datasets/prices/)") from None
    except json.JSONDecodeError as error:
        raise CatalogueError(f"{path}: not valid JSON ({error})") from None
    return {k: v for k, v in data.items() if k != "sample_spec" and isinstance(v, dict)}


def location_of(key: str, provider: str | None) -> tuple[str, str]:
    """Deployment location of a catalogue key and why: a region prefix in the key, else the provider's default."""
    if _EU.search(key):
        return "cloud-eu", f"region in the key '{key}'"
    if _US.search(key):
        return "cloud-us", f"region in the key '{key}'"
    if _OTHER.search(key):
        return "cloud-other", f"region in the key '{key}'"
    return "cloud-us", f"assumption: no region in the key; {provider or 'the provider'}'s default region taken as US"


def api_model(key: str, catalogue: dict[str, dict] | None = None) -> PortfolioModel:
    """An API model from the price catalogue; a clear error with close matches when the key is unknown."""
    catalogue = catalogue if catalogue is not None else load_price_catalogue()
    entry = catalogue.get(key)
    if entry is None:
        close = [k for k in catalogue if key.lower() in k.lower()][:8]
        raise CatalogueError(
            f"'{key}' is not in the price catalogue ({CATALOGUE_VERSION})"
            + (f"; similar keys: {', '.join(close)}" if close else "")
        )
    if entry.get("input_cost_per_token") is None or entry.get("output_cost_per_token") is None:
        raise CatalogueError(f"'{key}' has no per-token prices in the catalogue (mode {entry.get('mode')})")
    location, why = location_of(key, entry.get("litellm_provider"))
    price = f"{CATALOGUE_VERSION}, key '{key}'"
    window = entry.get("max_input_tokens")
    return PortfolioModel(
        name=key,
        kind="api",
        location=location,
        data_classes=DEFAULT_DATA_CLASSES[location],
        context_window=int(window) if isinstance(window, (int, float)) else None,
        input_usd_per_mtok=Figure(float(entry["input_cost_per_token"]) * 1e6, "catalogue", price),
        output_usd_per_mtok=Figure(float(entry["output_cost_per_token"]) * 1e6, "catalogue", price),
        ttft_ms=Figure(DEFAULT_API_TTFT_MS, "assumption", "default API time to first token"),
        output_tok_s=Figure(DEFAULT_API_OUTPUT_TOK_S, "assumption", "default API output speed"),
        notes=(f"location: {why}", f"data classes: default for {location}"),
    )


@dataclass(frozen=True)
class _MeasuredBench:
    """What a local model's profile takes from its newest measured benchmark run (None: not measured there)."""

    run_id: int
    output_tok_s: float | None
    prefill_tok_s: float | None
    ttft_ms: float | None
    memory_bytes: float | None
    energy: JsonRecord  # the run's energy summary ({} without an energy counter)
    selection: str

    def figure(self, name: str) -> float | None:
        """One speed or memory figure by its profile name."""
        return getattr(self, name, None)


def _latest_bench(warehouse: Warehouse | None, model_name: str) -> _MeasuredBench | None:
    """Mean prefill/decode/TTFT and peak memory of the newest measured benchmark run of a model, if any."""
    row = warehouse.latest_bench(model_name) if warehouse is not None else None
    if row is None:
        return None

    def mean(metric: str) -> float | None:
        return (row.summary.get(metric) or {}).get("mean")

    return _MeasuredBench(
        run_id=row.run_id,
        output_tok_s=mean("decode_tok_s"),
        prefill_tok_s=mean("prefill_tok_s"),
        ttft_ms=mean("ttft_ms"),
        memory_bytes=row.peak_rss_bytes,
        energy=row.summary.get("energy") or {},
        selection=getattr(row, "selection", "") or "newest run",
    )


def bench_profile(run_ids: tuple[int, ...], warehouse: Warehouse) -> dict[str, Figure]:
    """Service rates from chosen benchmark runs, measured here or imported from another machine (`slmlab bench
    import`, llama-bench JSON): a hardware what-if. Later runs override earlier ones per figure."""
    figures: dict[str, Figure] = {}
    for run_id in run_ids:
        try:
            row = warehouse.bench_run(run_id)
        except ValueError as error:
            raise CatalogueError(str(error)) from None
        where = row.census.get("cpu_model") or "unknown CPU"
        if row.census.get("gpus"):
            where += f", {row.census['gpus']}"
        detail = f"bench run {run_id} ({row.source}; model {row.model_name}; {where})"
        kind = "measured" if row.source == "measured" else "imported"
        for metric, name in (
            ("decode_tok_s", "output_tok_s"),
            ("prefill_tok_s", "prefill_tok_s"),
            ("ttft_ms", "ttft_ms"),
        ):
            value = (row.summary.get(metric) or {}).get("mean")
            if value is not None:
                figures[name] = Figure(float(value), kind, detail)
        if row.peak_rss_bytes:
            figures["memory_bytes"] = Figure(float(row.peak_rss_bytes), kind, detail)
        energy = row.summary.get("energy") or {}
        if energy.get("joules_per_token") is not None:
            figures["energy_j_per_token"] = Figure(float(energy["joules_per_token"]), str(energy.get("source")), detail)
    if "output_tok_s" not in figures:
        raise CatalogueError(
            f"benchmark run(s) {', '.join(map(str, run_ids))} have no decode speed; include a generation test (tg)"
        )
    return figures


def local_model(
    key: str, warehouse: Warehouse | None = None, location: str = "on-premises", bench_runs: tuple[int, ...] = ()
) -> PortfolioModel:
    """A shipped small model with its service rates: this machine's newest benchmark, else the default profile."""
    if key not in DEFAULT_LOCAL_PROFILES:
        raise CatalogueError(
            f"no default profile for '{key}'; shipped local models: {', '.join(DEFAULT_LOCAL_PROFILES)}"
        )
    profile = DEFAULT_LOCAL_PROFILES[key]
    measured = None
    if not bench_runs and warehouse is not None and warehouse.has_measured_runs():
        measured = _latest_bench(warehouse, key)  # runs are stored under the model's one name (`model_name`)

    chosen = bench_profile(bench_runs, warehouse) if bench_runs and warehouse is not None else {}

    def pick(name: str) -> Figure:
        if name in chosen:
            return chosen[name]
        value = measured.figure(name) if measured else None
        if measured and value is not None:
            where = f"bench run {measured.run_id} on this machine: {measured.selection}"
            return Figure(float(value), "measured", where)
        return Figure(profile[name], "assumption", "default profile (slmlab build machine, 2-core CPU)")

    free = Figure(0.0, "assumption", "local: no per-token API price (hardware and power belong to the TCO)")
    energy = chosen.get("energy_j_per_token")
    if energy is None and measured and measured.energy.get("joules_per_token") is not None:
        energy = Figure(
            float(measured.energy["joules_per_token"]),
            str(measured.energy.get("source")),
            f"bench run {measured.run_id} on this machine",
        )
    return PortfolioModel(
        name=key,
        kind="local",
        location=location,
        data_classes=DEFAULT_DATA_CLASSES[location],
        context_window=int(profile["context_window"]),
        input_usd_per_mtok=free,
        output_usd_per_mtok=free,
        ttft_ms=pick("ttft_ms"),
        output_tok_s=pick("output_tok_s"),
        prefill_tok_s=pick("prefill_tok_s"),
        memory_bytes=pick("memory_bytes"),
        energy_j_per_token=energy,
    )


OVERRIDABLE = (
    "location",
    "data_classes",
    "context_window",
    "input_usd_per_mtok",
    "output_usd_per_mtok",
    "usd_per_call",
    "ttft_ms",
    "output_tok_s",
)


def apply_override(model: PortfolioModel, override: JsonRecord, origin: str) -> PortfolioModel:
    """Replace fields of one model with a user's values, each marked 'override' with where it came from."""
    unknown = sorted(set(override) - set(OVERRIDABLE) - {"name", "kind"})
    if unknown:
        raise CatalogueError(
            f"{origin}: model '{model.name}': cannot override {', '.join(unknown)}; "
            f"overridable: {', '.join(OVERRIDABLE)}"
        )
    changes: dict[str, Any] = {}  # field -> value, each checked below against what the field holds
    location = str(override.get("location", model.location))
    if location not in LOCATIONS:
        raise CatalogueError(f"{origin}: model '{model.name}': location must be one of {', '.join(LOCATIONS)}")
    if "location" in override:
        changes["location"] = location
        changes["data_classes"] = DEFAULT_DATA_CLASSES[location]
    if "data_classes" in override:
        classes = override["data_classes"]
        if not isinstance(classes, list) or not set(classes) <= set(DATA_CLASSES):
            raise CatalogueError(
                f"{origin}: model '{model.name}': data_classes must be a list from {', '.join(DATA_CLASSES)}"
            )
        changes["data_classes"] = tuple(classes)
    if "context_window" in override:
        changes["context_window"] = int(override["context_window"])
    for name in ("input_usd_per_mtok", "output_usd_per_mtok", "usd_per_call", "ttft_ms", "output_tok_s"):
        if name in override:
            value = override[name]
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise CatalogueError(f"{origin}: model '{model.name}': {name} must be a number >= 0")
            changes[name] = Figure(float(value), "override", origin)
    return replace(model, **changes)


@dataclass(frozen=True)
class Portfolio:
    """The models a replay may route to, with the catalogue version their prices came from."""

    models: tuple[PortfolioModel, ...]
    catalogue_version: str = CATALOGUE_VERSION

    def get(self, name: str) -> PortfolioModel:
        """One model by name; the error lists the portfolio."""
        for model in self.models:
            if model.name == name:
                return model
        raise CatalogueError(f"'{name}' is not in the portfolio ({', '.join(m.name for m in self.models)})")


DEFAULT_API_MODELS = ("gpt-4o", "gpt-4o-mini", "azure/eu/gpt-4o")


def catalogue_key_for(name: str, catalogue: dict[str, dict]) -> str:
    """The catalogue key that prices a model named as a recorded file names it: the key itself, else the cheapest
    provider key ending in '/<name>' (case-insensitive)."""
    if name in catalogue:
        return name
    suffix = "/" + name.lower()
    matches = [
        k
        for k, v in catalogue.items()
        if k.lower().endswith(suffix)
        and v.get("input_cost_per_token") is not None
        and v.get("output_cost_per_token") is not None
    ]
    if not matches:
        return name  # api_model() then says it is unknown and lists close keys
    return min(matches, key=lambda k: (catalogue[k]["input_cost_per_token"] + catalogue[k]["output_cost_per_token"], k))


def named_api_model(name: str, catalogue: dict[str, dict]) -> PortfolioModel:
    """An API model under the name a recorded file uses, priced from the matching catalogue key."""
    key = catalogue_key_for(name, catalogue)
    model = api_model(key, catalogue)
    return model if key == name else replace(model, name=name, notes=(*model.notes, f"priced as catalogue key '{key}'"))


def recorded_model(name: str, detail: str) -> PortfolioModel:
    """An API model known only from an outcome file that recorded its cost for every request: those costs are
    its price (no per-token price is needed or invented); location and latency are the usual assumptions."""
    recorded = Figure(None, "recorded", f"per-request cost as recorded in {detail}; no per-token price")
    location, why = location_of(name, None)
    return PortfolioModel(
        name=name,
        kind="api",
        location=location,
        data_classes=DEFAULT_DATA_CLASSES[location],
        context_window=None,
        input_usd_per_mtok=recorded,
        output_usd_per_mtok=recorded,
        ttft_ms=Figure(DEFAULT_API_TTFT_MS, "assumption", "default API time to first token"),
        output_tok_s=Figure(DEFAULT_API_OUTPUT_TOK_S, "assumption", "default API output speed"),
        notes=(f"location: {why}", "not in the price catalogue: priced from its recorded costs"),
    )


PRICE_FIELDS = ("input_usd_per_mtok", "output_usd_per_mtok")


def _read_overrides(path: Path) -> list[dict]:
    try:
        entries = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise CatalogueError(f"{path}: cannot read the overrides ({error})") from None
    if not isinstance(entries, list) or not all(isinstance(e, dict) and "name" in e for e in entries):
        raise CatalogueError(f"{path}: expected a JSON list of objects, each with a 'name'")
    return entries


def _priced_api_model(
    name: str, catalogue: dict[str, dict], override: dict | None, recorded: dict[str, str]
) -> PortfolioModel:
    """An API model priced, in this order, by an override giving both per-token prices (no catalogue look-up),
    the catalogue, or the costs an outcome file recorded for every request; else an error saying how to add it."""
    if override is not None and all(f in override for f in PRICE_FIELDS):
        return replace(
            recorded_model(name, "no file"),
            input_usd_per_mtok=Figure(0.0, "override"),
            output_usd_per_mtok=Figure(0.0, "override"),
            notes=("priced by an override",),
        )
    try:
        return named_api_model(name, catalogue)
    except CatalogueError as error:
        if name in recorded:
            return recorded_model(name, recorded[name])
        raise CatalogueError(
            f'{error}. Price it with an overrides entry: {{"name": "{name}", "input_usd_per_mtok": ..., '
            f'"output_usd_per_mtok": ..., "usd_per_call": ...}} (per-call fee optional)'
        ) from None


def build_portfolio(
    local: tuple[str, ...] = tuple(DEFAULT_LOCAL_PROFILES),
    api: tuple[str, ...] = DEFAULT_API_MODELS,
    *,
    warehouse: Warehouse | None = None,
    overrides: Path | None = None,
    bench_runs: dict[str, tuple[int, ...]] | None = None,
    recorded: dict[str, str] | None = None,
) -> Portfolio:
    """Local models (measured or default profile, or the chosen benchmark runs) plus API models, then the user's
    overrides. The overrides are read first, so a model they price fully never needs the catalogue; an API model
    neither the overrides nor the catalogue price is priced from its recorded costs (`recorded`: model -> file,
    the models an outcome file recorded a cost for on every request).

    An API name that is not a catalogue key is priced from the cheapest provider key ending in '/<name>'."""
    catalogue = load_price_catalogue()
    bench_runs = bench_runs or {}
    recorded = recorded or {}
    unknown = sorted(set(bench_runs) - set(local))
    if unknown:
        raise CatalogueError(
            f"benchmark profile for {', '.join(unknown)}, which is not a local model of the portfolio "
            f"({', '.join(local) or 'none'})"
        )
    entries = _read_overrides(overrides) if overrides is not None else []
    by_name = {str(e["name"]): e for e in entries}
    models = {
        m.name: m
        for m in [
            *(local_model(k, warehouse, bench_runs=bench_runs.get(k, ())) for k in local),
            *(_priced_api_model(k, catalogue, by_name.get(k), recorded) for k in api),
        ]
    }
    for index, entry in enumerate(entries, start=1):
        name = str(entry["name"])
        if name not in models:
            models[name] = (
                _priced_api_model(name, catalogue, entry, recorded)
                if entry.get("kind", "api") == "api"
                else local_model(name, warehouse)
            )
        models[name] = apply_override(models[name], entry, f"{overrides} entry {index}")
    return Portfolio(tuple(models.values()))
