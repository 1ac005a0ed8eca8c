"""Check the replay's serving model against a real one: a slice of a stored trace played in real time (time-scaled
to a chosen load) through llama.cpp with several sequences in one context (`bench.batched.BatchedServer`, the
engine of the batched benchmark), and through the simulator (`simulators.deployment.serve`) with the same
arrivals, token counts, slots and the service curve measured on the same engine just before and after (their
mean); the errors of p50 and p95 TTFT and latency say how far the simulator is from the real thing.

To keep a run short the token counts are capped (`max_input`, `max_output`; prompts are random tokens, answers
greedy with end-of-text ignored, as llama-batched-bench does), and `load` sets the arrival rate as a share of the
server's capacity at full batch (from the measured curve): 0.3 is light, 0.9 near saturation. The real engine
takes a request into a free slot at its next step and processes its prompt in that step beside the others'
decode tokens; the first token comes from the prompt, then `output tokens` more (the simulator's convention).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import cast

import numpy as np

from bench.batched import BatchedServer, measure_wake
from bench.engine import Engine, EngineConfig
from simulators.deployment import Deployment, HardwareProfile, ServiceCurve, serve

METRICS = ("ttft", "latency")
TOKEN_MODES = ("capped", "scaled")
PERCENTILES = (50, 95)


@dataclass(frozen=True)
class ValidationConfig:
    """A validation run: which requests, how fast they come, and the server they meet."""

    trace: str
    start: int = 0  # first request of the slice (arrival order)
    count: int = 24  # requests in the slice
    load: float = 0.5  # arrival rate / the server's capacity at full batch
    model: str = "smollm2-135m"
    slots: int = 4
    threads: int = 1
    max_input: int = 64
    max_output: int = 32
    seed: int = 1
    reps: int = 1  # plays of the slice, each between two curve measurements (a drifting machine averages out)
    curve_reps: int = 3  # repetitions of each batch size when the curve is measured
    wake_rounds: int = 5  # lone prompt steps timed after each idle gap for the wake cost (0: waking costs nothing)
    tokens: str = "scaled"  # "scaled": the slice's spread of sizes kept; "capped": clipped at the caps (`sizes`)

    def __post_init__(self) -> None:
        if self.tokens not in TOKEN_MODES:
            raise ValueError(f"tokens must be one of {', '.join(TOKEN_MODES)}, not {self.tokens!r}")
        if not 0 < self.load < 2:
            raise ValueError("load must be a share of the server's capacity, between 0 and 2")
        if self.count < 2 or self.slots < 1 or self.threads < 1 or self.max_input < 1 or self.max_output < 1:
            raise ValueError("count must be at least 2; slots, threads and token caps at least 1")
        if not 1 <= self.reps <= 20 or not 1 <= self.curve_reps <= 50 or not 0 <= self.wake_rounds <= 50:
            raise ValueError(
                "reps must be between 1 and 20, curve repetitions between 1 and 50, wake rounds between 0 and 50"
            )


@dataclass(frozen=True)
class Validation:
    """The real and simulated times of every request of the slice, and the errors of their percentiles."""

    config: ValidationConfig
    speed: float  # arrivals replayed this many times faster than recorded
    curve: ServiceCurve
    arrival_s: np.ndarray
    tokens_in: np.ndarray
    tokens_out: np.ndarray
    real_ttft_s: np.ndarray
    real_latency_s: np.ndarray
    sim_ttft_s: np.ndarray
    sim_latency_s: np.ndarray
    errors: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # over every play pooled
    rep: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # which play each row is from
    errors_by_rep: tuple[dict[str, dict[str, dict[str, float]]], ...] = ()
    curves: tuple[ServiceCurve, ...] = ()  # the curve each play was simulated with
    contention: dict[str, object] = field(default_factory=dict)
    steps_by_rep: tuple[dict[str, object], ...] = ()  # each play's step times against the model's step costs
    # the same plays simulated at the speed each one's steps ran (the step check's total): the serving model apart
    # from the machine's drift between curve and play; and how far a 1% slower machine moves each figure
    errors_at_play_speed: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    errors_at_play_speed_by_rep: tuple[dict[str, dict[str, dict[str, float]]], ...] = ()
    sensitivity: dict[str, dict[str, float]] = field(default_factory=dict)

    def real_spread(self) -> dict[str, dict[str, float]]:
        """How far the real engine's own percentiles moved between plays of the same arrivals: (largest - smallest)
        / their mean, per figure (0 with one play). The simulator cannot be checked more closely than this."""
        out: dict[str, dict[str, float]] = {}
        for metric in METRICS:
            out[metric] = {}
            for q in PERCENTILES:
                real = [r[metric][f"p{q}"]["real_ms"] for r in self.errors_by_rep]
                out[metric][f"p{q}"] = (max(real) - min(real)) / float(np.mean(real)) if len(real) > 1 else 0.0
        return out

    def as_dict(self) -> dict[str, object]:
        """JSON-ready: what `slmlab validate --json` prints and the warehouse keeps."""
        c = self.config
        return {
            "trace": c.trace,
            "model": c.model,
            "load": c.load,
            "requests": int(self.arrival_s.size),
            "config": {**asdict(c), "speed": self.speed},
            "curve": self.curve.as_dict(),
            "errors": self.errors,
            "reps": c.reps,
            "errors_by_rep": list(self.errors_by_rep),
            "decode_tok_s_by_rep": [list(k.decode_tok_s) for k in self.curves],
            "real_spread": self.real_spread(),
            "steps_by_rep": list(self.steps_by_rep),
            "errors_at_play_speed": self.errors_at_play_speed,
            "errors_at_play_speed_by_rep": list(self.errors_at_play_speed_by_rep),
            "sensitivity": self.sensitivity,
            "contention": self.contention,
            "per_request": [
                {
                    "arrival_s": a,
                    "input_tokens": i,
                    "output_tokens": o,
                    "real_ttft_s": rt,
                    "real_latency_s": rl,
                    "sim_ttft_s": st,
                    "sim_latency_s": sl,
                    "rep": r,
                }
                for a, i, o, rt, rl, st, sl, r in zip(
                    *(
                        x.tolist()
                        for x in (
                            self.arrival_s,
                            self.tokens_in,
                            self.tokens_out,
                            self.real_ttft_s,
                            self.real_latency_s,
                            self.sim_ttft_s,
                            self.sim_latency_s,
                            self.rep if self.rep.size else np.zeros(self.arrival_s.size, dtype=np.int64),
                        )
                    )
                )
            ],
        }


def percentile_errors(real: dict[str, np.ndarray], simulated: dict[str, np.ndarray]) -> dict[str, dict]:
    """{metric: {p50/p95: {simulated_ms, real_ms, error}}}, error = simulated / real - 1."""
    out: dict[str, dict] = {}
    for metric in METRICS:
        out[metric] = {}
        for q in PERCENTILES:
            r, s = float(np.percentile(real[metric], q)), float(np.percentile(simulated[metric], q))
            out[metric][f"p{q}"] = {"simulated_ms": s * 1000, "real_ms": r * 1000, "error": s / r - 1 if r else 0.0}
    return out


def measured_curve(engine: Engine, slots: int, pp: int, tg: int, seed: int, reps: int = 3) -> ServiceCurve:
    """The engine's service curve right now (batch 1, 2, 4 ... slots), measured through the very loop that serves
    the validation's requests (`BatchedServer.step`, its Python bookkeeping included): per B, B requests of `pp`
    prompt tokens submitted together; the first step prefills them all, the next `tg` steps decode B tokens each.
    Tokens over time of all `reps` repetitions together: a queue runs at the mean step time, slow steps included
    (the mean of each repetition's speed leans toward the fast ones: real steps ran 1.03-1.06x the model in total
    where their median was 0.96-1.0x)."""
    # every batch size up to 8 slots (a busy server spends most steps at B = 3, 5, 6 or 7 as often as at a power
    # of two, and interpolating between measured points was off by 6% at B = 3); powers of two beyond
    batches = sorted({*range(1, min(slots, 8) + 1), *(b for b in (16, 32, 64) if b < slots), slots})
    rng = np.random.default_rng(seed)
    prefill: list[float] = []
    decode: list[float] = []
    for b in batches:
        prompt_s = decode_s = 0.0
        steps = 0
        for _ in range(reps):
            engine.clear()
            server = BatchedServer(engine, slots)
            for _ in range(b):
                server.submit(rng.integers(0, engine.n_vocab, size=pp, dtype=np.int32), tg + 1)
            started = time.perf_counter()
            server.step()  # every prompt, and each sequence's first token
            prefilled = time.perf_counter()
            while server.active:
                server.step()
                steps += 1
            prompt_s += prefilled - started
            decode_s += time.perf_counter() - prefilled
        prefill.append(b * pp * reps / prompt_s)
        decode.append(b * steps / decode_s)
    return ServiceCurve(
        batch=tuple(batches),
        decode_tok_s=tuple(decode),
        prefill_tok_s=prefill[0],
        prefill_by_batch=tuple(prefill),
        kv_bytes_per_token=0.0,
        weights_bytes=0.0,
        source=f"measured just before through the serving loop (pp {pp}, tg {tg}, {engine.config.threads} threads, "
        f"{reps} reps)",
    )


def play(engine: Engine, slots: int, arrival: np.ndarray, prompts: list[np.ndarray], outputs: np.ndarray
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Submit each request when its (scaled) arrival time comes and step the server; TTFT and latency of each, and
    every step's (sequences decoding, prompt tokens, prompts admitted, seconds, seconds the server idled before it)."""
    server = BatchedServer(engine, slots)
    engine.clear()
    sequences = []
    steps: list[tuple[int, int, int, float, float]] = []
    started = time.perf_counter()
    idle_since = started
    i = 0
    while i < len(prompts) or server.waiting or server.active:
        now = time.perf_counter() - started
        while i < len(prompts) and arrival[i] <= now:
            sequences.append(server.submit(prompts[i], int(outputs[i]) + 1))  # first token + `output` more
            i += 1
        if not server.waiting and not server.active:
            time.sleep(max(0.0, arrival[i] - (time.perf_counter() - started)))
            continue
        admitted = list(server.waiting)[: len(server.free)]  # what this step's admission takes in
        decoding = sum(1 for s in server.active if s.prefilled == len(s.prompt) and s.generated)
        before = time.perf_counter()
        idle = before - idle_since if not server.active else 0.0
        server.step()
        after = time.perf_counter()
        steps.append((decoding, sum(len(s.prompt) for s in admitted), len(admitted), after - before, idle))
        idle_since = after
    first = np.array([s.token_times[0] - started for s in sequences])
    last = np.array([s.token_times[-1] - started for s in sequences])
    return first - arrival, last - arrival, np.array(steps, dtype=np.float64).reshape(-1, 5)


def step_costs(steps: np.ndarray, curve: ServiceCurve, slots: int) -> np.ndarray:
    """The serving model's seconds for each logged step of `play` (the same costs `simulators/serving.py` charges):
    a decode iteration of the running sequences, or the prompts at the curve's prefill speed for that many plus
    what the running sequences add beside them plus the wake cost after the server idled."""
    decoding, tokens, admitted, _, idle = steps.T
    iteration, beside, prompt = curve.iteration_s(slots), curve.beside_prompts_s(slots), curve.prompt_s(slots)
    running = decoding.astype(int)
    wake = np.interp(idle, *curve.wake_s())
    return np.where(admitted > 0, tokens * prompt[admitted.astype(int)] + beside[running] + wake, iteration[running])


def scaled_arrivals(
    recorded: np.ndarray, tokens_in: np.ndarray, tokens_out: np.ndarray, curve: ServiceCurve, slots: int, load: float
) -> tuple[np.ndarray, float]:
    """Recorded arrival times rescaled so requests come at `load` x the server's capacity at full batch (from the
    curve), from 0; and the speed-up over the recording."""
    itl = curve.iteration_s(slots)
    per_request = float(np.mean(tokens_in / curve.prefill_tok_s + tokens_out * itl[slots] / slots))
    span = float(recorded[-1] - recorded[0]) or 1.0
    speed = load / per_request / ((recorded.size - 1) / span)  # recorded rate -> load x capacity
    return (recorded - recorded[0]) / speed, speed


def step_check(steps: np.ndarray, curve: ServiceCurve, slots: int) -> dict[str, object]:
    """Each real step's time against the serving model's cost of that step (a decode iteration of the running
    sequences; or prompt tokens at the curve's prefill speed for that many prompts plus what the running sequences
    add beside them, plus the wake cost after the server idled): the model's building block,
    checked without the queue that amplifies a drifting machine near saturation."""
    if not len(steps):
        return {}
    admitted, seconds = steps[:, 2], steps[:, 3]
    model = step_costs(steps, curve, slots)
    ratio = seconds / np.maximum(model, 1e-12)
    kinds = {"decode only": admitted == 0, "with prompts": admitted > 0}
    return {
        "steps": len(steps),
        "real_over_model_total": float(seconds.sum() / model.sum()),
        "real_over_model_median": float(np.median(ratio)),
        **{
            f"real_over_model_median_{name.replace(' ', '_')}": float(np.median(ratio[mask]))
            for name, mask in kinds.items()
            if mask.any()
        },
    }


def slower(curve: ServiceCurve, factor: float) -> ServiceCurve:
    """The curve of a machine `factor` times slower (every step takes `factor` x the time; the wake cost too)."""
    return replace(
        curve,
        decode_tok_s=tuple(x / factor for x in curve.decode_tok_s),
        prefill_tok_s=curve.prefill_tok_s / factor,
        prefill_by_batch=tuple(x / factor for x in curve.prefill_by_batch),
        wake=tuple((idle, extra * factor) for idle, extra in curve.wake),
    )


def sensitivity(simulated: dict[str, np.ndarray], slower_1pct: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Per figure, the relative change a 1% slower machine makes (0.05: 5%): near saturation the queue multiplies
    a small speed error, so this is how closely the machine's speed must be known for a figure to be within 10%."""
    moved = percentile_errors(simulated, slower_1pct)
    return {m: {q: float(moved[m][q]["error"]) for q in moved[m]} for m in moved}


def _mean_curve(measured: list[ServiceCurve], source: str, wake: tuple[tuple[float, float], ...]) -> ServiceCurve:
    """The mean of curves measured on the same engine (around one play, or all of them: a shared machine drifts):
    speeds averaged as times (harmonic mean), as a queue adds them up."""

    def mean(values: list[tuple[float, ...]]) -> tuple[float, ...]:
        return tuple(float(x) for x in 1.0 / np.mean(1.0 / np.array(values), axis=0))

    return ServiceCurve(
        batch=measured[0].batch,
        decode_tok_s=mean([c.decode_tok_s for c in measured]),
        prefill_tok_s=mean([(c.prefill_tok_s,) for c in measured])[0],
        prefill_by_batch=mean([c.prefill_by_batch for c in measured]),
        kv_bytes_per_token=0.0,
        weights_bytes=0.0,
        source=source,
        wake=wake,
    )


def sizes(requests: list[tuple[float, int, int]], config: ValidationConfig) -> tuple[np.ndarray, np.ndarray]:
    """Prompt and output tokens of each request as played. "capped": clipped at the caps, which makes nearly every
    request of a conversation trace the same size, so latencies fall on a few steps and a percentile that sits
    between two of them jumps; "scaled": each multiplied by one factor (prompts, outputs) that puts the slice's
    95th percentile on the cap, so the trace's spread of sizes is kept in a run as short (larger ones clipped)."""
    played = []
    for column, cap in ((1, config.max_input), (2, config.max_output)):
        recorded = np.array([r[column] for r in requests], dtype=np.float64)
        if config.tokens == "scaled":
            recorded = np.rint(recorded * cap / max(float(np.percentile(recorded, 95)), 1.0))
        played.append(np.clip(recorded, 1, cap))
    return played[0], played[1]


def validate(config: ValidationConfig, requests: list[tuple[float, int, int]], model_path: str | Path) -> Validation:
    """Measure the curve, then `reps` times: play the slice for real at the chosen load and measure the curve
    again; simulate each play with the mean of the curves around it; compare (pooled over the plays, and each)."""
    from bench.contention import ContentionMonitor

    recorded = np.array([r[0] for r in requests])
    tokens_in, tokens_out = sizes(requests, config)
    cells = config.max_input + config.max_output + 2
    # one KV cache shared by the slots, as llama-server's default 4 slots have: with a cache per slot, llama.cpp
    # splits a step into one compute per run of consecutive slot ids (and per prompt length), which only a server
    # whose busy slots are always 0..B-1 escapes; a real play's are not, the curve's are (steps 1.5-8.5% slower)
    engine_config = EngineConfig(
        n_ctx=config.slots * cells, threads=config.threads, n_seq_max=config.slots, kv_unified=True
    )
    rng = np.random.default_rng(config.seed)
    measured: list[ServiceCurve] = []
    plays: list[tuple[np.ndarray, np.ndarray]] = []
    step_logs: list[np.ndarray] = []
    monitor = ContentionMonitor(config.threads).start()
    try:
        with Engine(model_path, engine_config) as engine:
            pp = round(float(np.mean(tokens_in)))
            tg = min(config.max_output, cells - pp - 1)
            measured.append(measured_curve(engine, config.slots, pp, tg, config.seed, config.curve_reps))
            wake = measure_wake(engine, config.slots, pp, rounds=config.wake_rounds) if config.wake_rounds else ()
            arrival, speed = scaled_arrivals(recorded, tokens_in, tokens_out, measured[0], config.slots, config.load)
            prompts = [rng.integers(0, engine.n_vocab, size=int(n), dtype=np.int32) for n in tokens_in]
            for rep in range(config.reps):
                real_ttft, real_latency, steps = play(engine, config.slots, arrival, prompts, tokens_out)
                plays.append((real_ttft, real_latency))
                step_logs.append(steps)
                measured.append(measured_curve(engine, config.slots, pp, tg, config.seed + 1 + rep, config.curve_reps))
    finally:
        contention = monitor.stop()
    source = measured[0].source.replace(
        "measured just before",
        "measured just before and after the run (mean)"
        if config.reps == 1
        else f"measured before, between and after {config.reps} plays (each play: the mean of the two around it)",
    )
    curves = tuple(_mean_curve(measured[r : r + 2], source, wake) for r in range(config.reps))
    machine = HardwareProfile(
        name="validation", description="this machine, as measured just before", memory_bytes=float("inf"),
        slots=config.slots, capex_usd=0.0, lifetime_months=1.0, watts_busy=0.0, watts_idle=0.0,
        ops_usd_per_month=0.0, tariff_usd_per_kwh=0.0, batch_speedup=((1, 1.0),), source="measured",
    )  # fmt: skip

    def simulate(curve: ServiceCurve) -> tuple[np.ndarray, np.ndarray]:
        served = serve(Deployment(config.model, machine, curve, config.slots, 1), 1, arrival, tokens_in, tokens_out)
        return served.first - arrival, served.finish - arrival

    checks = tuple(step_check(log, curve, config.slots) for log, curve in zip(step_logs, curves))
    simulated_plays = [simulate(curve) for curve in curves]
    at_play_speed = [
        simulate(slower(curve, float(cast(float, check.get("real_over_model_total", 1.0)))))
        for curve, check in zip(curves, checks)
    ]
    one_pct_slower = [simulate(slower(curve, 1.01)) for curve in curves]

    def pool(runs: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, np.ndarray]:
        return {name: np.concatenate([p[i] for p in runs]) for i, name in enumerate(METRICS)}

    def each(simulated: list[tuple[np.ndarray, np.ndarray]]) -> tuple[dict[str, dict[str, dict[str, float]]], ...]:
        return tuple(percentile_errors(pool([real]), pool([sim])) for real, sim in zip(plays, simulated))

    pooled, pooled_sim = pool(plays), pool(simulated_plays)
    n = config.reps
    return Validation(
        config=config, speed=speed, curve=_mean_curve(measured, source, wake) if n > 1 else curves[0],
        arrival_s=np.tile(arrival, n), tokens_in=np.tile(tokens_in, n), tokens_out=np.tile(tokens_out, n),
        real_ttft_s=pooled["ttft"], real_latency_s=pooled["latency"], sim_ttft_s=pooled_sim["ttft"],
        sim_latency_s=pooled_sim["latency"], errors=percentile_errors(pooled, pooled_sim),
        rep=np.repeat(np.arange(n), arrival.size), errors_by_rep=each(simulated_plays), curves=curves,
        contention=contention.as_dict(), steps_by_rep=checks,
        errors_at_play_speed=percentile_errors(pooled, pool(at_play_speed)),
        errors_at_play_speed_by_rep=each(at_play_speed),
        sensitivity=sensitivity(pooled_sim, pool(one_pct_slower)),
    )  # fmt: skip
