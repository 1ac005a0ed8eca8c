"""Everything a routing replay needs, as arrays over requests (rows) and portfolio models (columns).

Built once per replay from the DuckDB file, so every policy runs on the same requests, the same realised
answers and the same prices. What is drawn at random is drawn here, from one seeded numpy PCG64 stream per
purpose, so one seed gives one replay:

* correctness: a per-(request, model) probability of an acceptable answer (recorded 0/1 outcome, measured,
  or assumed; see `simulators.quality`) is realised with ONE uniform number per request shared by all models
  (common random numbers): a request that is hard for one model is hard for all, and a model with a higher
  probability is right whenever a weaker one is. Recorded 0/1 outcomes are used exactly as recorded.
* confidence (what a cascade sees after a small model answered): measured per request where an evaluation
  scored this very request; else resampled from the confidences that model gave to right (or wrong) answers
  on the same enterprise task in its evaluation; else an assumption: Beta(3, 2) when right, Beta(2, 3) when
  wrong (editable in the config).
* volume scaling: each request is kept floor(v) times, plus once more with probability frac(v).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from simulators import kernels
from simulators.catalog import (
    DEFAULT_API_MODELS,
    DEFAULT_LOCAL_PROFILES,
    RESIDENCY_LOCATIONS,
    Portfolio,
    PortfolioModel,
    build_portfolio,
    catalogue_key_for,
    load_price_catalogue,
)
from simulators.data import Warehouse
from simulators.deployment import (
    DEFAULT_PROFILE,
    DEFAULT_SLO,
    Deployment,
    DeploymentError,
    Slo,
    build_deployment,
)
from simulators.deployment import (
    profile as hardware_profile,
)
from simulators.metrics import counts_by_name
from simulators.quality import SOURCES, measured_confidences, quality_matrix
from slmlab.paths import DATASETS_DIR
from slmlab.traces.labelling import DATA_CLASSES, RESIDENCIES, TASKS

if TYPE_CHECKING:
    import pyarrow as pa

DEFAULT_ASSUMPTIONS = DATASETS_DIR / "assumptions" / "quality.json"
CONFIDENCE_SOURCES = ("measured", "measured-distribution", "assumption", "recorded")
COST_SOURCES = ("recorded", "catalogue", "override", "assumption", "measured", "imported")
# where an attempt's time came from: recorded (an API call's own end-to-end latency), else the source of the model's
# speed figures (an API's time to first token, a local model's output speed)
LATENCY_SOURCES = ("recorded", "catalogue", "override", "assumption", "measured", "imported")
MONTH_S = 30.4375 * 86400.0  # a budget month: the mean calendar month, counted from the first arrival
STREAMS = {"correct": 1, "confidence": 2, "volume": 3, "policy": 4}


class ReplayError(ValueError):
    """A replay cannot run with these inputs; the message names the trace, model or setting at fault."""


def _help(text: str, **extra: object) -> dict[str, object]:
    return {"help": text, **extra}


@dataclass(frozen=True)
class ReplayConfig:
    """What shapes a replay's inputs (policies have their own parameters); stored with every run."""

    trace: str = field(metadata=_help("stored trace to replay"))
    local_models: tuple[str, ...] | None = field(
        default=None,
        metadata=_help("local small models (default: the shipped ones; none for traces of recorded outcomes)"),
    )
    api_models: tuple[str, ...] | None = field(
        default=None,
        metadata=_help(
            "API models by catalogue key (default: gpt-4o, gpt-4o-mini, azure/eu/gpt-4o; for recorded outcomes the "
            "recorded models)"
        ),
    )
    overrides: str | None = field(default=None, metadata=_help("JSON overrides of portfolio entries"))
    assumptions: str | None = field(
        default=str(DEFAULT_ASSUMPTIONS),
        metadata=_help("quality assumptions file for what nothing recorded or measured covers"),
    )
    servers: int = field(default=1, metadata=_help("servers of each local model when size_to is empty (a fixed fleet)"))
    profile: str = field(
        default=DEFAULT_PROFILE,
        metadata=_help(
            "hardware profile local models are served on: a shipped one (datasets/assumptions/serving_profiles.json) "
            "or one added for a machine whose curves were imported (slmlab profiles add)"
        ),
    )
    slots: int = field(
        default=0, metadata=_help("sequences each server batches at once (continuous batching; 0: the profile's)")
    )
    size_to: str | None = field(
        default=DEFAULT_SLO,
        metadata=_help(
            "latency SLO each local model's fleet is sized to, e.g. ttft_p95=2s or p95=5s (end to end); "
            "empty: a fixed fleet of `servers`"
        ),
    )
    profiles: tuple[str, ...] = field(
        default=(),
        metadata=_help(
            "hardware what-if: MODEL=RUN[,RUN] takes a local model's speeds from those benchmark runs (measured "
            "here or "
            "imported from another machine)"
        ),
    )
    speed: float = field(default=1.0, metadata=_help("replay arrivals k times faster (time scaling)"))
    volume: float = field(default=1.0, metadata=_help("replay v times as many requests (volume scaling)"))
    seed: int = field(default=0, metadata=_help("seed of every random draw of the replay"))
    frontier: str | None = field(
        default=None, metadata=_help("the baseline model (default: the API model with the highest mean quality)")
    )
    small: str | None = field(
        default=None, metadata=_help("the default small model (default: the local model with the highest mean quality)")
    )
    confidence_right: tuple[float, float] = field(
        default=(3.0, 2.0), metadata=_help("assumed Beta(a, b) confidence of right answers where none was measured")
    )
    confidence_wrong: tuple[float, float] = field(
        default=(2.0, 3.0), metadata=_help("assumed Beta(a, b) confidence of wrong answers where none was measured")
    )
    assumed_input_tokens: int = field(
        default=512, metadata=_help("input tokens of a request whose trace records neither tokens nor text")
    )
    assumed_output_tokens: int = field(
        default=256, metadata=_help("output tokens of a request whose trace records neither tokens nor answers")
    )

    def __post_init__(self) -> None:
        if self.servers < 1:
            raise ReplayError("servers must be at least 1")
        if self.slots < 0:
            raise ReplayError("slots must be at least 1 (0: the profile's)")
        if self.size_to:
            try:
                Slo.parse(self.size_to)
            except DeploymentError as error:
                raise ReplayError(str(error)) from None
        if not (self.speed > 0 and math.isfinite(self.speed)) or not (self.volume > 0 and math.isfinite(self.volume)):
            raise ReplayError("speed and volume must be positive numbers")

    def as_dict(self) -> dict[str, object]:
        """JSON-ready."""
        return asdict(self)


@dataclass(frozen=True)
class ReplayInputs:
    """The trace, the portfolio and every per-(request, model) figure the policies and the engine use."""

    config: ReplayConfig
    trace_id: int
    trace_hash: str
    trace_kind: str
    portfolio: Portfolio
    frontier: int  # column of the baseline model
    small: int  # column of the default small model
    request_ids: np.ndarray  # object
    copy: np.ndarray  # int32: 0, or which extra copy a volume-scaled request is
    has_arrivals: bool
    arrival_s: np.ndarray  # float64, time-scaled; zeros when the trace records no arrivals
    month: np.ndarray  # int32 budget month of each request
    input_tokens: np.ndarray  # float64
    output_tokens: np.ndarray  # float64
    task: np.ndarray  # int8 index into TASKS, -1 unknown
    data_class: np.ndarray  # int8 index into DATA_CLASSES, -1 unknown
    residency: np.ndarray  # int8 index into RESIDENCIES, -1 unknown
    category: np.ndarray  # int32 code of the source's own grouping (MMLU subject), -1 none
    slo_ms: np.ndarray  # float64, NaN where the request has no SLO
    p_correct: np.ndarray  # (n, m) float64
    quality_source: np.ndarray  # (n, m) int8 index into SOURCES
    correct: np.ndarray  # (n, m) bool, realised
    confidence: np.ndarray  # (n, m) float64
    confidence_source: np.ndarray  # (n, m) int8 index into CONFIDENCE_SOURCES
    rates: np.ndarray  # (m, 5) float64: prices and speeds of each model, columns as in `kernels` (see `model_rates`)
    is_local: np.ndarray  # (m,) bool
    permitted: np.ndarray  # (n, m) bool: the request's data class and residency allow this model
    token_sources: dict[str, dict[str, int]]  # input / output: how many requests' token counts came from where
    ranking: tuple[int, ...] = ()  # model columns from the highest mean quality down (ties: cheaper first)
    deployments: dict[str, Deployment] = field(default_factory=dict)  # local model -> how it is served (batched)
    # recorded figures win: (n, m) cost an outcome file recorded for the request on the model (NaN: none), and a
    # per-call fee per model (overrides) added where the cost is priced, not recorded
    recorded_cost: np.ndarray | None = None
    per_call_usd: np.ndarray | None = None
    roles: dict[str, str] = field(default_factory=dict)  # frontier / small: which model and why
    # (n, m) end-to-end seconds an outcome file or a gateway log recorded for the request on an API model (NaN: none;
    # local columns always NaN: a local model's time is this machine's serving model, not a recorded call)
    recorded_latency: np.ndarray | None = None

    @property
    def n(self) -> int:
        return len(self.request_ids)

    @property
    def model_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.portfolio.models)

    @cached_property
    def _priced(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return kernels.price_matrices(self.rates, self.input_tokens, self.output_tokens)

    @cached_property
    def _cost(self) -> np.ndarray:
        priced = self._priced[0]
        if self.per_call_usd is not None and self.per_call_usd.any():
            priced = np.asfortranarray(priced + self.per_call_usd[None, :])
        if self.recorded_cost is None:
            return priced
        return np.asfortranarray(np.where(np.isnan(self.recorded_cost), priced, self.recorded_cost))

    @property
    def cost_usd(self) -> np.ndarray:
        """(n, m) cost in USD of each request on each model: as recorded where an outcome file recorded it, else
        priced from the model's per-token prices plus its per-call fee (local models: their API price, usually 0)."""
        return self._cost

    @cached_property
    def cost_adjustment(self) -> np.ndarray | None:
        """(n, m) what to add to the engine's per-token price of an attempt to charge the cost above (None: nothing)."""
        if self.recorded_cost is None and (self.per_call_usd is None or not self.per_call_usd.any()):
            return None
        return np.asfortranarray(self._cost - self._priced[0])

    @cached_property
    def cost_source(self) -> np.ndarray:
        """(n, m) int8 index into COST_SOURCES: recorded, or the source of the model's per-token prices."""
        priced = np.array(
            [
                COST_SOURCES.index(m.input_usd_per_mtok.source) if m.input_usd_per_mtok.source in COST_SOURCES else 1
                for m in self.portfolio.models
            ],
            dtype=np.int8,
        )
        source = np.broadcast_to(priced, (self.n, len(priced))).copy(order="F")
        if self.recorded_cost is not None:
            source[~np.isnan(self.recorded_cost)] = COST_SOURCES.index("recorded")
        return source

    @property
    def first_token_s(self) -> np.ndarray:
        """(n, m) API time to first token, local prefill time (queueing excluded)."""
        return self._priced[1]

    @property
    def service_s(self) -> np.ndarray:
        """(n, m) API end-to-end latency, local service time (queueing excluded)."""
        return self._priced[2]

    @cached_property
    def _as_recorded(self) -> tuple[np.ndarray, np.ndarray]:
        if self.recorded_latency is None:
            return self.first_token_s, self.service_s
        here = ~np.isnan(self.recorded_latency)
        first = np.where(here, np.minimum(self.first_token_s, self.recorded_latency), self.first_token_s)
        service = np.where(here, self.recorded_latency, self.service_s)
        return np.asfortranarray(first), np.asfortranarray(service)

    @property
    def first_token_as_recorded_s(self) -> np.ndarray:
        """(n, m) `first_token_s`, but no later than an API call's recorded end-to-end latency where one was recorded
        (a call cannot give its first token after it finished)."""
        return self._as_recorded[0]

    @property
    def service_as_recorded_s(self) -> np.ndarray:
        """(n, m) `service_s` with an API call's recorded end-to-end latency where one was recorded."""
        return self._as_recorded[1]

    @cached_property
    def model_latency_source(self) -> np.ndarray:
        """(m,) int8 index into LATENCY_SOURCES of each model's own timing: an API's time to first token, a local
        model's output speed (what times an attempt where nothing was recorded)."""
        figures = [m.ttft_ms if m.kind != "local" else m.output_tok_s for m in self.portfolio.models]
        return np.array(
            [
                LATENCY_SOURCES.index(f.source) if f.source in LATENCY_SOURCES else LATENCY_SOURCES.index("assumption")
                for f in figures
            ],
            dtype=np.int8,
        )

    @cached_property
    def latency_source(self) -> np.ndarray:
        """(n, m) int8 index into LATENCY_SOURCES: recorded where a latency was recorded, else the model's own."""
        source = np.broadcast_to(self.model_latency_source, (self.n, len(self.model_latency_source))).copy(order="F")
        if self.recorded_latency is not None:
            source[~np.isnan(self.recorded_latency)] = LATENCY_SOURCES.index("recorded")
        return source

    def __post_init__(self) -> None:
        if not self.ranking:  # the fallback order every policy uses when its first choice is barred
            order = np.lexsort((self.cost_usd.mean(axis=0), -self.p_correct.mean(axis=0)))
            object.__setattr__(self, "ranking", tuple(int(j) for j in order))


def parse_profiles(items: tuple[str, ...]) -> dict[str, tuple[int, ...]]:
    """'smollm2-135m=3,4' items as {model: (3, 4)}; the error names the bad item."""
    profiles: dict[str, tuple[int, ...]] = {}
    for item in items:
        model, eq, runs = item.partition("=")
        try:
            ids = tuple(int(r) for r in runs.split(",") if r.strip())
        except ValueError:
            ids = ()
        if not eq or not model or not ids:
            raise ReplayError(f"profile '{item}' is not MODEL=RUN[,RUN] (benchmark run ids)")
        profiles[model] = ids
    return profiles


def load_assumptions(path: str | Path | None) -> dict[str, float | dict[str, float]]:
    """The `models` mapping of a quality assumptions file; an error names the file and what is wrong."""
    if path is None:
        return {}
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ReplayError(f"{path}: cannot read the quality assumptions ({error})") from None
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, dict) or not all(
        isinstance(v, (int, float)) or (isinstance(v, dict) and all(isinstance(x, (int, float)) for x in v.values()))
        for v in models.values()
    ):
        raise ReplayError(f'{path}: expected {{"models": {{model: accuracy or {{task: accuracy}}}}}}')
    return models


def _codes(values: list[str | None], vocabulary: tuple[str, ...]) -> np.ndarray:
    index: dict[str | None, int] = {name: i for i, name in enumerate(vocabulary)}
    return np.array([index.get(v, -1) for v in values], dtype=np.int8)


TOKEN_SOURCES = ("recorded", "estimated from text length", "assumption")
CHARS_PER_TOKEN = 4.0  # assumption for traces that keep text but no token counts (English, BPE tokenizers)


def _load_requests(warehouse: Warehouse, trace_id: int, config: ReplayConfig) -> dict[str, np.ndarray]:
    table = warehouse.requests(
        trace_id,
        chars_per_token=CHARS_PER_TOKEN,
        input_tokens=config.assumed_input_tokens,
        output_tokens=config.assumed_output_tokens,
    )
    columns = {name: table.column(name) for name in table.column_names}

    def numbers(name: str) -> np.ndarray:
        return columns[name].to_numpy(zero_copy_only=False).astype(np.float64)

    categories = columns["category"].to_pylist()
    names = sorted({c for c in categories if c is not None})
    code = {c: i for i, c in enumerate(names)}
    return {
        "request_ids": np.array(columns["request_id"].to_pylist(), dtype=object),
        "arrival_s": numbers("arrival_s"),
        "input_tokens": numbers("input_tokens"),
        "output_tokens": numbers("output_tokens"),
        "slo_ms": numbers("latency_slo_ms"),
        "task": _codes(columns["task"].to_pylist(), TASKS),
        "data_class": _codes(columns["data_class"].to_pylist(), DATA_CLASSES),
        "residency": _codes(columns["residency"].to_pylist(), RESIDENCIES),
        "category": np.array([code.get(c, -1) for c in categories], dtype=np.int32),
        "input_source": numbers("input_source").astype(np.int8),
        "output_source": numbers("output_source").astype(np.int8),
    }


def _stream(seed: int, purpose: str) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64([int(seed), STREAMS[purpose]]))


def _confidence(
    config: ReplayConfig,
    models: tuple[str, ...],
    task: np.ndarray,
    correct: np.ndarray,
    measured: np.ndarray,
    pools: dict[tuple[str, str, bool], np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    rng = _stream(config.seed, "confidence")
    n, m = correct.shape
    pick, assumed = rng.random((n, m)), np.empty((n, m))
    for right, (a, b) in ((True, config.confidence_right), (False, config.confidence_wrong)):
        assumed[correct == right] = rng.beta(a, b, size=int(np.sum(correct == right)))
    confidence = assumed
    source = np.full((n, m), CONFIDENCE_SOURCES.index("assumption"), dtype=np.int8)
    for (model, task_name, right), pool in pools.items():
        if model not in models or task_name not in TASKS or pool.size == 0:
            continue
        j = models.index(model)
        rows = (task == TASKS.index(task_name)) & (correct[:, j] == right)
        confidence[rows, j] = pool[np.minimum((pick[rows, j] * pool.size).astype(np.int64), pool.size - 1)]
        source[rows, j] = CONFIDENCE_SOURCES.index("measured-distribution")
    here = ~np.isnan(measured)
    confidence[here], source[here] = measured[here], CONFIDENCE_SOURCES.index("measured")
    return confidence, source


def _pick_model(name: str | None, role: str, names: tuple[str, ...], candidates: np.ndarray, p: np.ndarray) -> int:
    if name is not None:
        if name not in names:
            raise ReplayError(f"{role} model '{name}' is not in the portfolio ({', '.join(names)})")
        return names.index(name)
    if not candidates.any():
        raise ReplayError(f"no {role} model: the portfolio ({', '.join(names)}) has none to choose from")
    means = np.where(candidates, p.mean(axis=0), -np.inf)
    return int(np.argmax(means))


def _roles(
    config: ReplayConfig,
    names: tuple[str, ...],
    is_local: np.ndarray,
    p: np.ndarray,
    mean_cost: np.ndarray,
    *,
    by_price: bool,
) -> tuple[int, int, dict[str, str]]:
    """The frontier and small models and why, declared. On recorded outcomes (benchmark data) roles go by price:
    the frontier is the dearest API model per request, the small one the cheapest other model (a local one
    first), so a tie on quality never decides them. On workloads the frontier is the API model with the highest
    mean quality; without a local model the cheapest other model plays the small one."""
    roles: dict[str, str] = {}

    def per_1k(j: int) -> str:
        return f"${mean_cost[j] * 1000:,.4g} per 1,000 requests"

    if config.frontier is not None:
        frontier = _pick_model(config.frontier, "frontier", names, ~is_local, p)
        roles["frontier"] = f"{names[frontier]}: chosen (--frontier)"
    elif by_price:
        api = [int(j) for j in np.flatnonzero(~is_local)]
        if not api:
            raise ReplayError(f"no frontier model: the portfolio ({', '.join(names)}) has no API model")
        frontier = max(api, key=lambda j: (mean_cost[j], -j))
        roles["frontier"] = f"{names[frontier]}: the dearest API model ({per_1k(frontier)}), by price"
    else:
        frontier = _pick_model(None, "frontier", names, ~is_local, p)
        roles["frontier"] = f"{names[frontier]}: the API model with the highest mean quality"
    if len(names) == 1:
        return frontier, frontier, {**roles, "small": f"{names[frontier]}: the only model"}
    if config.small is not None:
        small = _pick_model(config.small, "small", names, np.ones(len(names), dtype=bool), p)
        roles["small"] = f"{names[small]}: chosen (--small)"
    elif is_local.any():
        small = _pick_model(None, "small", names, is_local, p)
        roles["small"] = f"{names[small]}: the local model with the highest mean quality"
    else:
        others = [j for j in range(len(names)) if j != frontier]
        small = min(others, key=lambda j: (mean_cost[j], j))
        roles["small"] = f"{names[small]}: the cheapest other model ({per_1k(small)}), by price"
    return frontier, small, roles


class RecordedFigures:
    """Cost, confidence and latency (ms) an outcome file recorded per (request, model), as read from the warehouse."""

    def __init__(
        self,
        cells: dict[tuple[int, str], tuple[float | None, float | None]] | None = None,
        n: int = 0,
        latency_ms: dict[tuple[int, str], float] | None = None,
    ) -> None:
        self.cells = cells or {}
        self.n = n
        self.latency_ms = latency_ms or {}

    @classmethod
    def read(cls, warehouse: Warehouse, trace_id: int, request_ids: np.ndarray) -> RecordedFigures:
        reader = getattr(warehouse, "recorded_figures", None)
        if reader is None:
            return cls()
        row = {rid: i for i, rid in enumerate(request_ids.tolist())}
        rows = [r for r in reader(trace_id) if r[0] in row]
        cells = {(row[rid], model): (cost, confidence) for rid, model, cost, _, confidence in rows}
        latency = {(row[rid], model): float(ms) for rid, model, _, ms, _ in rows if ms is not None}
        return cls(cells, len(row), latency)

    def fully_costed(self, detail: str) -> dict[str, str]:
        """Models with a recorded cost on every request: priced from those costs if nothing else prices them."""
        counts: dict[str, int] = {}
        for (_, model), (cost, _) in self.cells.items():
            if cost is not None:
                counts[model] = counts.get(model, 0) + 1
        return {model: detail for model, count in counts.items() if count == self.n and self.n}

    def matrices(self, names: tuple[str, ...], keep: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(n, m) recorded cost and confidence, NaN where none (None when nothing was recorded), rows as `keep`."""
        if not self.cells:
            return None, None
        column = {name: j for j, name in enumerate(names)}
        cost, confidence = np.full((self.n, len(names)), np.nan), np.full((self.n, len(names)), np.nan)
        for (i, model), (c, k) in self.cells.items():
            j = column.get(model)
            if j is not None:
                cost[i, j] = np.nan if c is None else c
                confidence[i, j] = np.nan if k is None else k
        cost, confidence = cost[keep], confidence[keep]
        return (
            np.asfortranarray(cost) if not np.isnan(cost).all() else None,
            np.asfortranarray(confidence) if not np.isnan(confidence).all() else None,
        )


def _logged_columns(logged: list[str], portfolio: Portfolio) -> dict[str, list[int]]:
    """The API columns each model named in a gateway log was recorded on: the column of that very name, else those
    priced as the same catalogue key, matched as the bill check matches a logged model (`catalogue_key_for`)."""
    names = [m.name for m in portfolio.models]
    api = [j for j, m in enumerate(portfolio.models) if m.kind != "local"]
    catalogue = load_price_catalogue()
    keys = {j: catalogue_key_for(names[j], catalogue) for j in api}
    columns = {}
    for model in logged:
        key = catalogue_key_for(model, catalogue)
        columns[model] = [j for j in api if names[j] == model] or [j for j in api if keys[j] == key]
    return columns


def recorded_latency_matrix(
    figures: RecordedFigures,
    calls: pa.Table | None,
    request_ids: np.ndarray,
    portfolio: Portfolio,
    keep: np.ndarray,
) -> np.ndarray | None:
    """(n, m) end-to-end seconds recorded for a request on an API model, rows as `keep`, NaN where none (None: nothing
    recorded). An outcome file's latency goes to the model it names; a gateway log's (`calls`: request_id, model as
    logged, latency_ms of its successful calls) to the API model the log's model is priced as. Local columns stay
    NaN: a local model's time is this machine's serving model, not a call in a log."""
    column = {m.name: j for j, m in enumerate(portfolio.models) if m.kind != "local"}
    seconds = np.full((len(request_ids), len(portfolio.models)), np.nan)
    for (i, model), ms in figures.latency_ms.items():
        if model in column:
            seconds[i, column[model]] = ms / 1000.0
    if calls is not None and calls.num_rows:
        row = {rid: i for i, rid in enumerate(request_ids.tolist())}
        index = np.array([row.get(rid, -1) for rid in calls.column("request_id").to_pylist()], dtype=np.int64)
        logged = np.array(calls.column("model").to_pylist(), dtype=object)
        ms = calls.column("latency_ms").to_numpy(zero_copy_only=False).astype(np.float64)
        found = (index >= 0) & ~np.isnan(ms)
        for model, columns in _logged_columns(sorted(set(logged[found].tolist())), portfolio).items():
            pick = np.flatnonzero(found & (logged == model))
            for j in columns:
                free = pick[np.isnan(seconds[index[pick], j])]  # an outcome file's own figure is kept
                seconds[index[free], j] = ms[free] / 1000.0
    seconds = seconds[keep]
    if np.isnan(seconds).all():
        return None
    return np.asfortranarray(seconds)


def model_rates(model: PortfolioModel) -> np.ndarray:
    """A model's row of the rate table: prices per million tokens, prefill speed (0 for an API, whose time to
    first token is fixed), time to first token in seconds, output speed."""
    decode = model.output_tok_s.value or 0.0
    if decode <= 0:
        raise ReplayError(f"model '{model.name}': output tok/s must be positive")
    prefill = 0.0
    if model.kind == "local":
        prefill = model.prefill_tok_s.value if model.prefill_tok_s and model.prefill_tok_s.value else decode
    rates = np.zeros(5)
    rates[[kernels.INPUT_PRICE, kernels.OUTPUT_PRICE, kernels.PREFILL, kernels.FIRST_TOKEN, kernels.DECODE]] = (
        model.input_usd_per_mtok.value or 0.0,
        model.output_usd_per_mtok.value or 0.0,
        prefill,
        (model.ttft_ms.value or 0.0) / 1000.0,
        decode,
    )
    return rates


def permitted_for(model: PortfolioModel, data_class: np.ndarray, residency: np.ndarray) -> np.ndarray:
    """Which requests may be sent to this model: data class allowed there and location within the residency."""
    class_ok = np.isin(data_class, [DATA_CLASSES.index(c) for c in model.data_classes]) | (data_class == -1)
    residency_ok = np.array([model.location in RESIDENCY_LOCATIONS[r] for r in RESIDENCIES])
    return class_ok & np.where(residency >= 0, residency_ok[np.maximum(residency, 0)], True)


def _deployments(config: ReplayConfig, portfolio: Portfolio, warehouse: Warehouse) -> dict[str, Deployment]:
    """How each local model is served: the profile's stored batched curve for it when the warehouse has one, else
    its single-sequence speeds x the profile's assumed batch speed-up; a fleet sized to the SLO unless fixed."""
    try:
        stored_profiles = getattr(warehouse, "hardware_profiles", None)
        prof = hardware_profile(config.profile, stored=stored_profiles() if stored_profiles is not None else None)
        slo = Slo.parse(config.size_to) if config.size_to else None
        found: dict[str, Deployment] = {}
        for model in portfolio.models:
            if model.kind != "local":
                continue
            reader = getattr(warehouse, "service_curve", None)
            stored = reader(model.name, prof.machine) if reader is not None else None
            decode = float(model.output_tok_s.value or 0.0)
            prefill = float(model.prefill_tok_s.value if model.prefill_tok_s and model.prefill_tok_s.value else decode)
            found[model.name] = build_deployment(
                model.name,
                decode,
                prefill,
                f"single-sequence speeds: {model.output_tok_s.source} ({model.output_tok_s.detail})",
                prof,
                slots=config.slots,
                servers=None if slo else config.servers,
                slo=slo,
                stored=stored,
            )
        return found
    except DeploymentError as error:
        raise ReplayError(str(error)) from None


def build_inputs(config: ReplayConfig, *, warehouse: Warehouse) -> ReplayInputs:
    """Load the trace, build the portfolio, realise quality and confidence, price and time every cell."""
    try:
        trace = warehouse.trace(config.trace)
    except ValueError as error:
        raise ReplayError(str(error)) from None
    trace_id, trace_hash, kind = trace.trace_id, trace.content_hash, trace.kind
    recorded = list(warehouse.recorded_models(trace_id))
    requests = _load_requests(warehouse, trace_id, config)
    figures = RecordedFigures.read(warehouse, trace_id, requests["request_ids"]) if recorded else RecordedFigures()
    local = (
        config.local_models if config.local_models is not None else (() if recorded else tuple(DEFAULT_LOCAL_PROFILES))
    )
    api = config.api_models if config.api_models is not None else (tuple(recorded) or DEFAULT_API_MODELS)
    portfolio = build_portfolio(
        local,
        api,
        warehouse=warehouse,
        overrides=Path(config.overrides) if config.overrides else None,
        bench_runs=parse_profiles(config.profiles),
        recorded=figures.fully_costed(f"trace '{config.trace}'"),
    )
    names = tuple(m.name for m in portfolio.models)
    if not names:
        raise ReplayError("the portfolio is empty: name at least one local or API model")
    quality = quality_matrix(
        config.trace, list(names), warehouse=warehouse, assumed=load_assumptions(config.assumptions)
    )

    n0 = len(requests["request_ids"])
    keep = np.arange(n0)
    copy = np.zeros(n0, dtype=np.int32)
    if config.volume != 1.0:
        whole, extra = divmod(config.volume, 1.0)
        counts = np.full(n0, int(whole)) + (_stream(config.seed, "volume").random(n0) < extra)
        keep = np.repeat(np.arange(n0), counts)
        starts = np.cumsum(counts) - counts
        copy = (np.arange(len(keep)) - np.repeat(starts, counts)).astype(np.int32)
    req = {name: values[keep] for name, values in requests.items()}
    p, q_source, measured = quality.p_correct[keep], quality.source[keep], quality.confidence[keep]
    n: int  # numpy types shape entries Any, which picks Generator.random's scalar overload below
    m: int
    n, m = p.shape

    has_arrivals = bool(n) and not np.isnan(req["arrival_s"]).any()
    arrival = req["arrival_s"] / config.speed if has_arrivals else np.zeros(n)
    p, q_source, measured = np.asfortranarray(p), np.asfortranarray(q_source), np.asfortranarray(measured)
    correct = np.asfortranarray(_stream(config.seed, "correct").random(n)[:, None] < p)
    pools = measured_confidences(warehouse)
    confidence, c_source = map(np.asfortranarray, _confidence(config, names, req["task"], correct, measured, pools))
    recorded_cost, recorded_confidence = figures.matrices(names, keep)
    calls = getattr(warehouse, "recorded_latencies", None)
    recorded_latency = recorded_latency_matrix(
        figures, calls(trace_id) if calls is not None else None, requests["request_ids"], portfolio, keep
    )
    if recorded_confidence is not None:  # a confidence recorded with the outcome is used as recorded
        here = ~np.isnan(recorded_confidence)
        confidence[here], c_source[here] = recorded_confidence[here], CONFIDENCE_SOURCES.index("recorded")
    per_call = np.array([mdl.usd_per_call.value or 0.0 if mdl.usd_per_call else 0.0 for mdl in portfolio.models])

    is_local = np.array([mdl.kind == "local" for mdl in portfolio.models])
    # (request, model) matrices are stored model-major (Fortran order): policies and the engine read one model's
    # column at a time, which is then contiguous
    permitted = np.empty((n, m), dtype=bool, order="F")
    tokens_in = np.ascontiguousarray(req["input_tokens"], dtype=np.float64)
    tokens_out = np.ascontiguousarray(req["output_tokens"], dtype=np.float64)
    for j, model in enumerate(portfolio.models):
        permitted[:, j] = permitted_for(model, req["data_class"], req["residency"])
    rates = np.stack([model_rates(model) for model in portfolio.models])

    cost = kernels.price_matrices(rates, tokens_in, tokens_out)[0] + per_call[None, :]
    if recorded_cost is not None:
        cost = np.where(np.isnan(recorded_cost), cost, recorded_cost)
    mean_cost = cost.mean(axis=0) if n else np.zeros(m)
    frontier, small, roles = _roles(config, names, is_local, p, mean_cost, by_price=bool(recorded))
    deployments = _deployments(config, portfolio, warehouse) if has_arrivals else {}
    return ReplayInputs(
        deployments=deployments,
        config=config,
        trace_id=trace_id,
        trace_hash=trace_hash,
        trace_kind=kind,
        portfolio=portfolio,
        frontier=frontier,
        small=small,
        request_ids=req["request_ids"],
        copy=copy,
        has_arrivals=has_arrivals,
        arrival_s=arrival,
        month=np.floor(arrival / MONTH_S).astype(np.int32),
        input_tokens=tokens_in,
        output_tokens=tokens_out,
        task=req["task"],
        data_class=req["data_class"],
        residency=req["residency"],
        category=req["category"],
        slo_ms=req["slo_ms"],
        p_correct=p,
        quality_source=q_source,
        correct=correct,
        confidence=confidence,
        confidence_source=c_source,
        rates=rates,
        is_local=is_local,
        permitted=permitted,
        token_sources={side: counts_by_name(req[f"{side}_source"], TOKEN_SOURCES) for side in ("input", "output")},
        recorded_cost=recorded_cost,
        per_call_usd=per_call,
        roles=roles,
        recorded_latency=recorded_latency,
    )


__all__ = [
    "CONFIDENCE_SOURCES",
    "DEFAULT_ASSUMPTIONS",
    "LATENCY_SOURCES",
    "SOURCES",
    "ReplayConfig",
    "ReplayError",
    "ReplayInputs",
    "build_inputs",
    "load_assumptions",
]
