"""Local models served the way they are deployed: N servers of a named hardware profile, each with continuous
batching, a fleet sized to a latency SLO, and what that fleet costs.

The serving model of one local model (Vidur's replica scheduler reduced to what a replay needs):
* slots: each server runs up to B sequences at once. One FIFO queue stands in front of the fleet. A request that
  finds the queue empty goes to the server running the fewest sequences (ties: the lowest); an idle server starts
  it at once, a busy one at its next iteration boundary. Otherwise it waits, and a server that finishes sequences
  admits from the head of the queue while it has a free slot and KV memory.
* KV memory bounds the slots: a sequence reserves (input + output tokens) x the model's KV bytes per token (GGUF
  metadata) when admitted; the budget is the profile's memory less the model's weights. A request larger than
  the whole budget runs alone.
* prefill policy: whole prompts, not chunked, in the next step: the prompts admitted at an iteration boundary are
  processed in one step together with one decode token of every running sequence (as llama.cpp's server and the
  batched benchmark's engine batch them), so that step takes the prompts' time (at the curve's prefill speed
  for that many prompts at once) plus one decode iteration. The
  first token of each new request comes at the end of that step (TTFT), then one decode iteration per output
  token.
* iteration time with b sequences running = b / (aggregate decode tok/s at batch b) from the batched service curve
  (stored `service_curves`, else the profile's documented default), linear in b between measured batch sizes and
  flat above the largest; prompts at the curve's prefill tok/s. Context length does not slow an iteration here.
With one slot this is exactly the FIFO queue of `simulators.queueing.fifo` on the same servers (a test).

Sizing: the smallest number of servers (to within 1% above 100 servers) whose p95 (TTFT or end-to-end, on the
requests the model serves) meets the SLO. When even an unqueued fleet misses it (the prompt alone takes longer),
the fleet is sized to within 10% of that floor and the result says the SLO is unattainable on this profile.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from slmlab.paths import DATASETS_DIR

if TYPE_CHECKING:  # the warehouse's curve, read through `simulators.data.Warehouse`
    from slmlab.service_curves import ServiceCurve as StoredCurve

PROFILES_FILE = DATASETS_DIR / "assumptions" / "serving_profiles.json"
DEFAULT_PROFILE = "this-machine"
DEFAULT_SLO = "ttft_p95=2s"
HOURS_PER_MONTH = 730.5
UNATTAINABLE_MARGIN = 1.10  # an unattainable SLO is replaced by the unqueued floor x this
LATE_SHARE = 0.05  # p95: at most this share may miss


class DeploymentError(ValueError):
    """A deployment cannot be built or sized as asked; the message names the profile, model or setting."""


@dataclass(frozen=True)
class HardwareProfile:
    """A machine local models run on: memory, slots, and what owning and running one costs (assumptions tied to
    this machine, so speed and price describe the same thing)."""

    name: str
    description: str
    memory_bytes: float
    slots: int
    capex_usd: float
    lifetime_months: float
    watts_busy: float
    watts_idle: float
    ops_usd_per_month: float
    tariff_usd_per_kwh: float
    batch_speedup: tuple[tuple[int, float], ...]  # (batch, aggregate decode / single-sequence decode): assumption
    source: str
    machine: str | None = None  # the machine whose stored (imported) curves describe it (None: curves measured here)

    def hourly_usd(self) -> float:
        """Amortised hardware + operations per server-hour (energy is counted from use)."""
        return (self.capex_usd / self.lifetime_months + self.ops_usd_per_month) / HOURS_PER_MONTH

    def as_dict(self) -> dict[str, object]:
        """JSON-ready."""
        return asdict(self)


PROFILE_FIELDS = {  # serving_profiles.json field -> how it is read
    "description": str,
    "memory_bytes": float,
    "slots": int,
    "capex_usd": float,
    "lifetime_months": float,
    "watts_busy": float,
    "watts_idle": float,
    "ops_usd_per_month": float,
    "tariff_usd_per_kwh": float,
    "source": str,
}


def profile_from_entry(name: str, entry: dict, where: str) -> HardwareProfile:
    """One serving_profiles.json entry (or a stored one) as a profile; the error names where it came from and the
    field."""
    try:
        values = {field: kind(entry[field]) for field, kind in PROFILE_FIELDS.items()}
        speedup = tuple((int(b), float(x)) for b, x in entry.get("batch_speedup") or [[1, 1.0]])
    except (KeyError, TypeError, ValueError) as error:
        raise DeploymentError(f"{where}: profile '{name}': missing or bad field ({error})") from None
    bad = [f for f in ("memory_bytes", "slots", "lifetime_months") if not values[f] > 0] + [
        f for f in PROFILE_FIELDS if PROFILE_FIELDS[f] is float and not (math.isfinite(values[f]) and values[f] >= 0)
    ]
    if bad:
        raise DeploymentError(
            f"{where}: profile '{name}': {', '.join(sorted(set(bad)))}: must be finite numbers, above 0 for "
            "memory, slots and lifetime and 0 or more for the rest"
        )
    machine = entry.get("machine")
    machine_name = str(machine) if machine else None
    return HardwareProfile(name=name, batch_speedup=speedup, machine=machine_name, **values)  # type: ignore[arg-type]


def load_profiles(
    path: str | Path = PROFILES_FILE, stored: dict[str, dict] | None = None
) -> dict[str, HardwareProfile]:
    """Every hardware profile: the shipped assumptions file's, then the user's stored ones (`slmlab profiles add`),
    which may not reuse a shipped name; the error names the file or table and the entry."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise DeploymentError(f"{path}: cannot read the hardware profiles ({error})") from None
    profiles = {
        name: profile_from_entry(name, entry, str(path)) for name, entry in (data.get("profiles") or {}).items()
    }
    for name, entry in (stored or {}).items():
        profiles.setdefault(name, profile_from_entry(name, entry, "stored hardware_profiles"))
    return profiles


def profile(name: str, path: str | Path = PROFILES_FILE, stored: dict[str, dict] | None = None) -> HardwareProfile:
    """One hardware profile by name; the error lists the known ones."""
    profiles = load_profiles(path, stored)
    if name not in profiles:
        raise DeploymentError(
            f"no hardware profile '{name}'; known: {', '.join(profiles)} ({Path(path).name}, and `slmlab profiles add` "
            "for a machine whose curves you imported)"
        )
    return profiles[name]


def wake_is_valid(wake: tuple[tuple[float, float], ...]) -> bool:
    """Wake costs as (idle s, extra s) pairs: idle times above 0 and rising, extras of at least 0 (the serving loop
    interpolates between them); checked where a curve is built and where one is imported."""
    idle = [w[0] for w in wake]
    return all(i > 0 for i in idle) and idle == sorted(set(idle)) and all(w[1] >= 0 for w in wake)


def wake_text(wake: tuple[tuple[float, float], ...]) -> str:
    """Wake costs as the CLI and the Benchmarks page show them: one wording for the same figures."""
    return ", ".join(f"+{extra * 1000:,.1f} ms after {idle:g} s" for idle, extra in wake)


@dataclass(frozen=True)
class ServiceCurve:
    """How fast one model runs on one profile at each batch size: aggregate decode tok/s per batch, prompt tok/s,
    and the memory it needs; `source` says whether it was measured (and where) or assumed."""

    batch: tuple[int, ...]
    decode_tok_s: tuple[float, ...]  # aggregate over the batch
    prefill_tok_s: float
    kv_bytes_per_token: float
    weights_bytes: float
    source: str
    prefill_by_batch: tuple[float, ...] = ()  # aggregate prompt tok/s with b prompts in one step (empty: constant)
    # (seconds idle, seconds the first step after that idle adds), idle ascending; empty: waking costs nothing
    wake: tuple[tuple[float, float], ...] = ()

    def __post_init__(self) -> None:
        if not self.batch or self.batch[0] != 1 or list(self.batch) != sorted(set(self.batch)):
            raise DeploymentError(f"service curve ({self.source}): batch sizes must start at 1 and rise")
        if len(self.decode_tok_s) != len(self.batch) or min(self.decode_tok_s) <= 0 or self.prefill_tok_s <= 0:
            raise DeploymentError(
                f"service curve ({self.source}): one positive decode speed per batch size and a positive prefill speed"
            )
        if not wake_is_valid(self.wake):
            raise DeploymentError(
                f"service curve ({self.source}): wake costs need rising positive idle times and costs of at least 0"
            )

    def iteration_s(self, slots: int) -> np.ndarray:
        """Seconds of one decode iteration with b = 0..slots sequences running (index 0 unused)."""
        b = np.arange(slots + 1, dtype=np.float64)
        aggregate = np.interp(b, np.array(self.batch, dtype=np.float64), np.array(self.decode_tok_s))
        times = np.zeros(slots + 1)
        times[1:] = b[1:] / aggregate[1:]
        return times

    def beside_prompts_s(self, slots: int) -> np.ndarray:
        """Seconds b = 0..slots running sequences add to a step that also takes in prompts (index 0 unused): each
        sequence's token at the slope of the decode curve between B = 1 and B = slots, without the iteration's
        fixed part, which the prompts' own cost already pays (one llama_decode makes one pass over the weights).
        Measured on this machine: mixed steps ran 0.89-0.99x a prompt step plus a whole iteration."""
        itl = self.iteration_s(slots)
        if slots < 2:
            return itl
        slope = max((itl[slots] - itl[1]) / (slots - 1), 0.0)
        return np.minimum(np.arange(slots + 1) * slope, itl)

    def prompt_s(self, slots: int) -> np.ndarray:
        """Seconds per prompt token when k = 0..slots prompts share one step (index 0 unused): the curve's
        prefill speed at batch k (linear in between, flat above), or its single prefill speed."""
        k = np.maximum(np.arange(slots + 1, dtype=np.float64), 1.0)
        if len(self.prefill_by_batch) != len(self.batch):
            return np.full(slots + 1, 1.0 / self.prefill_tok_s)
        return 1.0 / np.interp(k, np.array(self.batch, dtype=np.float64), np.array(self.prefill_by_batch))

    def wake_s(self) -> tuple[np.ndarray, np.ndarray]:
        """(idle seconds, seconds added to the first step after idling that long), from 0 at no idle: a machine
        that has idled runs its next step slower (measured: a lone 32-token prompt step took 1.21x after 3 s)."""
        idle = np.array([0.0, *(w[0] for w in self.wake)])
        return idle, np.array([0.0, *(w[1] for w in self.wake)])

    def as_dict(self) -> dict[str, object]:
        """JSON-ready."""
        return asdict(self)


def assumed_curve(
    prof: HardwareProfile,
    decode_tok_s: float,
    prefill_tok_s: float,
    kv_bytes_per_token: float,
    weights_bytes: float,
    detail: str,
) -> ServiceCurve:
    """A curve from a model's single-sequence speeds and the profile's assumed batch speed-up (until a batched
    benchmark of this model on this profile is stored)."""
    batch = tuple(b for b, _ in prof.batch_speedup)
    return ServiceCurve(
        batch=batch,
        decode_tok_s=tuple(decode_tok_s * x for _, x in prof.batch_speedup),
        prefill_tok_s=prefill_tok_s,
        kv_bytes_per_token=kv_bytes_per_token,
        weights_bytes=weights_bytes,
        source=f"assumption: {detail} x the batch speed-up of profile '{prof.name}' ({prof.source})",
    )


@dataclass(frozen=True)
class Slo:
    """A latency objective: the given percentile of TTFT or end-to-end latency at or under `seconds`."""

    metric: str  # 'ttft' or 'latency'
    percentile: float
    seconds: float

    @classmethod
    def parse(cls, text: str) -> Slo:
        """'ttft_p95=2s' (time to first token) or 'p95=2s' / 'latency_p95=2000ms' (end to end)."""
        found = re.fullmatch(r"\s*(ttft_|latency_)?p(\d{1,2}(?:\.\d+)?)\s*=\s*([0-9.]+)\s*(ms|s)?\s*", text or "")
        if not found:
            raise DeploymentError(
                f"SLO '{text}' is not METRIC=TIME, e.g. ttft_p95=2s (time to first token) or p95=5s (end to end)"
            )
        value = float(found.group(3)) / (1000.0 if found.group(4) == "ms" else 1.0)
        if not 0 < float(found.group(2)) < 100 or value <= 0:
            raise DeploymentError(f"SLO '{text}': the percentile must be in (0, 100) and the time positive")
        return cls("ttft" if found.group(1) == "ttft_" else "latency", float(found.group(2)), value)

    def __str__(self) -> str:
        return f"{'ttft_' if self.metric == 'ttft' else ''}p{self.percentile:g}={self.seconds:g}s"


@dataclass(frozen=True)
class Deployment:
    """How one local model is served: profile, curve, slots, and a fixed fleet or one sized to the SLO."""

    model: str
    profile: HardwareProfile
    curve: ServiceCurve
    slots: int
    servers: int | None = None  # None: sized to `slo`
    slo: Slo | None = None

    @property
    def kv_budget_bytes(self) -> float:
        return max(self.profile.memory_bytes - self.curve.weights_bytes, 0.0)

    def describe(self) -> dict[str, object]:
        """JSON-ready, for the stored run."""
        return {
            "model": self.model,
            "profile": self.profile.name,
            "slots": self.slots,
            "servers": self.servers if self.servers is not None else f"sized to {self.slo}",
            "curve": self.curve.as_dict(),
            "kv_budget_bytes": self.kv_budget_bytes,
        }


@dataclass(frozen=True)
class Served:
    """One model's requests through one fleet: per request (in the order given) start, first token and finish,
    and what the fleet went through."""

    servers: int
    start: np.ndarray
    first: np.ndarray
    finish: np.ndarray
    backlog_end: int  # requests still waiting when the last one arrived
    busy_s: float  # server-seconds with a sequence running
    span_s: float
    complete: bool = True  # False: stopped early once the SLO was certainly missed (a sizing probe)

    @property
    def overloaded(self) -> bool:
        """The queue grows without bound over the trace: more waiting at the end than the fleet's slots and 1% of
        the requests (a stable fleet drains what a burst left)."""
        return self.backlog_end > max(self.servers, 0.01 * self.start.size)

    @property
    def backlog_growth_per_hour(self) -> float:
        return self.backlog_end / (self.span_s / 3600.0) if self.span_s > 0 else 0.0


def serve(
    deployment: Deployment,
    servers: int,
    ready: np.ndarray,
    tokens_in: np.ndarray,
    tokens_out: np.ndarray,
    slo: Slo | None = None,
) -> Served:
    """Requests (sorted by the time they reach the model) through `servers` servers of the deployment; with an
    SLO, stop as soon as more than 5% (100 - percentile) of them are certainly late."""
    slots = deployment.slots
    itl = deployment.curve.iteration_s(slots)
    n = ready.size
    limit, on_ttft, allowed = math.inf, True, n
    if slo is not None:
        limit, on_ttft = slo.seconds, slo.metric == "ttft"
        allowed = math.floor((100.0 - slo.percentile) / 100.0 * n)
    from simulators import serving  # numba compiles (or loads) the kernel only when a fleet is served

    start, first, finish, stats = serving.serve(
        ready,
        tokens_in,
        tokens_out,
        int(servers),
        int(slots),
        itl,
        deployment.curve.beside_prompts_s(slots),
        deployment.curve.prompt_s(slots),
        *deployment.curve.wake_s(),
        (tokens_in + tokens_out) * deployment.curve.kv_bytes_per_token,
        deployment.kv_budget_bytes,
        limit,
        on_ttft,
        allowed,
    )
    backlog_end, _, _, busy, stopped = stats
    span = float(ready[-1] - ready[0]) if n > 1 else 0.0
    return Served(
        servers=int(servers),
        start=start,
        first=first,
        finish=finish,
        backlog_end=int(backlog_end),
        busy_s=float(busy),
        span_s=span,
        complete=not stopped,
    )


def percentile_of(served: Served, ready: np.ndarray, metric: str, q: float) -> float:
    """The q-th percentile (seconds) of TTFT or end-to-end latency of the served requests."""
    values = (served.first if metric == "ttft" else served.finish) - ready
    return float(np.percentile(values, q)) if values.size else 0.0


@dataclass(frozen=True)
class Sizing:
    """The fleet a model needs for an SLO, and what it gives."""

    servers: int
    slo: Slo
    target_s: float  # the SLO's time, or the unqueued floor x 1.1 when the SLO is unattainable
    floor_s: float  # the percentile with no queueing at all
    attainable: bool
    probes: int  # fleets simulated


def size_fleet(
    deployment: Deployment, slo: Slo, ready: np.ndarray, tokens_in: np.ndarray, tokens_out: np.ndarray
) -> tuple[Sizing, Served]:
    """The smallest fleet meeting the SLO on these requests (sorted by ready time), and its run."""
    n = ready.size
    prefill = tokens_in / deployment.curve.prefill_tok_s
    alone = prefill if slo.metric == "ttft" else prefill + tokens_out * deployment.curve.iteration_s(1)[1]
    floor = float(np.percentile(alone, slo.percentile)) if n else 0.0
    attainable = floor <= slo.seconds
    target = slo.seconds if attainable else floor * UNATTAINABLE_MARGIN
    probe_slo = Slo(slo.metric, slo.percentile, target)
    span = float(ready[-1] - ready[0]) if n > 1 else 0.0
    itl = deployment.curve.iteration_s(deployment.slots)
    work = float(prefill.sum() + tokens_out.sum() * itl[deployment.slots] / deployment.slots)
    low = max(1, math.ceil(work / span)) if span > 0 else 1  # fewer servers cannot keep up even fully batched
    probes = 0
    runs: dict[int, Served] = {}

    def meets(servers: int) -> bool:
        nonlocal probes
        probes += 1
        run = serve(deployment, servers, ready, tokens_in, tokens_out, probe_slo)
        runs[servers] = run
        return run.complete and percentile_of(run, ready, slo.metric, slo.percentile) <= target + 1e-9

    bad, good = low - 1, low
    while not meets(good):
        bad, good = good, max(good + 1, math.ceil(good * 1.25))
        if good >= n:  # every request its own server: no queueing at all
            good = max(n, 1)
            meets(good)
            break
    while good - bad > max(1, good // 100):  # the smallest fleet, to within 1% when it is large
        middle = (bad + good) // 2
        if meets(middle):
            good = middle
        else:
            bad = middle
    final = runs[good]
    if not final.complete:
        final = serve(deployment, good, ready, tokens_in, tokens_out)
    return Sizing(servers=good, slo=slo, target_s=target, floor_s=floor, attainable=attainable, probes=probes), final


@dataclass(frozen=True)
class FleetCost:
    """What a local fleet costs over the replayed span: amortised hardware, energy and operations."""

    servers: int
    hours: float
    hardware_usd: float
    energy_usd: float
    operations_usd: float
    energy_source: str

    @property
    def total_usd(self) -> float:
        return self.hardware_usd + self.energy_usd + self.operations_usd


def fleet_cost(
    prof: HardwareProfile,
    servers: int,
    span_s: float,
    busy_s: float,
    tokens: float = 0.0,
    joules_per_token: float | None = None,
) -> FleetCost:
    """Cost of `servers` servers over `span_s` seconds: capex / lifetime and operations per server-hour; energy at
    busy power while serving (or measured J/token x tokens) and idle power for the rest, at the profile's tariff."""
    hours = span_s / 3600.0
    hardware = servers * hours * prof.capex_usd / prof.lifetime_months / HOURS_PER_MONTH
    operations = servers * hours * prof.ops_usd_per_month / HOURS_PER_MONTH
    idle_kwh = max(servers * span_s - busy_s, 0.0) * prof.watts_idle / 3.6e6
    if joules_per_token is not None:
        busy_kwh = tokens * joules_per_token / 3.6e6
        source = f"measured J/token x tokens served, idle W of profile '{prof.name}' while idle"
    else:
        busy_kwh = busy_s * prof.watts_busy / 3.6e6
        source = f"power of profile '{prof.name}' (assumption): busy W while serving, idle W otherwise"
    return FleetCost(
        servers=servers,
        hours=hours,
        hardware_usd=hardware,
        energy_usd=(idle_kwh + busy_kwh) * prof.tariff_usd_per_kwh,
        operations_usd=operations,
        energy_source=source,
    )


# KV bytes per token and weight bytes of the shipped models, read from their GGUF metadata (f16 KV cache:
# layers x (K + V width) x 2 bytes); used when the GGUF file cannot be read here.
SHIPPED_MEMORY: dict[str, tuple[float, float]] = {
    "smollm2-135m": (30 * 384 * 2.0, 96_576_768.0),
    "gemma3-270m": (18 * 512 * 2.0, 246_587_904.0),
}


def model_memory(key: str) -> tuple[float, float, str]:
    """(KV bytes per token, weight bytes, where from) of a local model: its GGUF metadata, else the shipped
    figures above."""
    from slmlab.models import gguf_metadata, resolve_model

    try:
        meta = gguf_metadata(resolve_model(key))
        if meta.kv_width and meta.n_layer:
            kv = float(meta.n_layer * sum(meta.kv_width) * 2)
            return kv, float(meta.tensor_bytes), f"GGUF metadata of {Path(meta.path).name} (f16 KV cache)"
    except Exception:  # a missing model file must not stop a replay: fall back to the shipped figures
        pass
    if key in SHIPPED_MEMORY:
        kv, weights = SHIPPED_MEMORY[key]
        return kv, weights, "GGUF metadata of the shipped model, as recorded in simulators/deployment.py"
    raise DeploymentError(f"model '{key}': no GGUF metadata to size its KV cache (install it or name a shipped model)")


def stored_curve(stored: StoredCurve, weights_bytes: float) -> ServiceCurve | None:
    """A measured curve from the warehouse (`slmlab.service_curves.ServiceCurve`: arrays by batch size) in the
    form the replay uses; None when it has no usable batch-1 point."""
    batch = np.asarray(stored.batch)
    fits = np.asarray(stored.fits, dtype=np.bool_) & np.isfinite(np.asarray(stored.decode_tok_s, dtype=np.float64))
    if not fits.any() or int(batch[fits][0]) != 1:
        return None
    prefill = np.asarray(stored.prefill_tok_s, dtype=np.float64)[fits]
    if not np.isfinite(prefill).all():
        return None
    return ServiceCurve(
        batch=tuple(int(b) for b in batch[fits]),
        decode_tok_s=tuple(float(x) for x in np.asarray(stored.decode_tok_s)[fits]),
        prefill_tok_s=float(prefill[0]),
        prefill_by_batch=tuple(float(x) for x in prefill),
        kv_bytes_per_token=float(stored.kv_bytes_per_token),
        weights_bytes=weights_bytes,
        source=f"{stored.source}: service curve {stored.curve_id} on {stored.machine} "
        f"({stored.n_threads} threads, pp {stored.pp}, tg {stored.tg})",
        wake=tuple(stored.wake),
    )


def build_deployment(
    key: str,
    decode_tok_s: float,
    prefill_tok_s: float,
    speeds_from: str,
    prof: HardwareProfile,
    *,
    slots: int = 0,
    servers: int | None = None,
    slo: Slo | None = None,
    stored: StoredCurve | None = None,
) -> Deployment:
    """One local model's deployment on a profile: the stored batched curve when there is one, else (only for a
    profile of this machine) its single-sequence speeds x the profile's assumed batch speed-up."""
    kv, weights, memory_from = model_memory(key)
    curve = stored_curve(stored, weights) if stored is not None else None
    if curve is None and prof.machine is not None:  # never this machine's speed priced as another machine
        raise DeploymentError(
            f"hardware profile '{prof.name}' is machine '{prof.machine}', where no uncontended service curve of "
            f"'{key}' with a batch-1 point is stored: measure one there (`slmlab bench --model {key} --parallel "
            f"1,2,4,8`, then `slmlab bench export FILE`) or run llama-batched-bench --output-format jsonl, and "
            f"`slmlab bench import FILE --model {key} --machine {prof.machine}` here"
        )
    if curve is None:
        detail = f"{speeds_from}; KV {kv:,.0f} B/token from {memory_from}"
        curve = assumed_curve(prof, decode_tok_s, prefill_tok_s, kv, weights, detail)
    if curve.kv_bytes_per_token <= 0:
        curve = ServiceCurve(**{**asdict(curve), "kv_bytes_per_token": kv})
    slots = slots or prof.slots
    if slots < 1:
        raise DeploymentError("slots must be at least 1")
    if servers is None and slo is None:
        raise DeploymentError("a deployment needs a fixed number of servers or an SLO to size them to")
    return Deployment(model=key, profile=prof, curve=curve, slots=slots, servers=servers, slo=slo)
