"""One benchmark run in an isolated worker process: a crash, out-of-memory or hang in llama.cpp never takes
down the caller, who gets either the measurements or a clear BenchError.

Tests follow llama-bench's names so figures line up with published tables: `pp512` (prefill 512 tokens),
`tg128` (generate 128 tokens), `pp512+tg128` (both, which also gives time to first token). Every repetition
starts from an empty KV cache and fresh random tokens, so prompt-prefix reuse cannot flatter prefill; a
warm-up repetition is run and discarded (as llama-bench: the whole prompt and one generated token).

Decoding goes through `bench.engine` (llama_decode on a prepared batch, llama-bench's context parameters), so
the figures match llama-bench's (perf/harness_vs_llamabench.py checks it). Defaults follow llama-bench:
n_batch 2048, n_ubatch 512, flash attention `auto`. `tg128` decodes from an empty cache, as llama-bench's does;
`pp512+tg128` also gives `total_tok_s`, llama-bench's `-pg 512,128` figure.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from bench.contention import ContentionMonitor
from bench.energy import EnergyMeter, EnergyReading, per_token
from bench.engine import FLASH_ATTN, EngineConfig
from bench.stats import Summary, percentile, summarise
from slmlab.isolation import WorkerFailed, run_workers

if TYPE_CHECKING:
    from bench.engine import Engine

_TEST = re.compile(r"^(?:pp(?P<pp>\d+))?(?:\+)?(?:tg(?P<tg>\d+))?$")
KV_TYPES = ("f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "iq4_nl")


class BenchError(WorkerFailed):
    """The run could not produce measurements; the message says why in words."""


@dataclass(frozen=True)
class BenchConfig:
    """Everything that shapes one run; stored with the result so it can be reproduced."""

    test: str = "pp512+tg128"
    reps: int = 5
    threads: int | None = None
    n_batch: int = 2048
    n_ubatch: int = 512
    n_gpu_layers: int = 0
    flash_attn: str = "auto"  # llama-bench's default; on, off (True/False are read as on/off)
    type_k: str = "f16"
    type_v: str = "f16"
    depth: int = 0
    seed: int = 1
    warmup: bool = True
    timeout_s: float = 600.0
    concurrency: int = 1  # workers running the same test at once, each with `threads` threads
    watts_estimate: float | None = None  # used only where no energy counter is readable, and labelled estimated

    def __post_init__(self) -> None:
        parse_test(self.test)
        flash = str(self.flash_attn).lower()
        flash = {"true": "on", "1": "on", "false": "off", "0": "off"}.get(flash, flash)
        if flash not in FLASH_ATTN:
            raise ValueError(f"flash_attn must be one of {', '.join(FLASH_ATTN)}, got {self.flash_attn!r}")
        object.__setattr__(self, "flash_attn", flash)
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self.watts_estimate is not None and not 0 < self.watts_estimate < 100_000:
            raise ValueError("the watts estimate must be a positive number of watts")
        if self.reps < 1:
            raise ValueError("reps must be at least 1")
        if self.threads is not None and self.threads < 1:
            raise ValueError("threads must be at least 1")
        for name in ("type_k", "type_v"):
            if getattr(self, name) not in KV_TYPES:
                raise ValueError(f"{name} must be one of {', '.join(KV_TYPES)}")
        if min(self.n_batch, self.n_ubatch) < 1 or self.depth < 0 or self.n_gpu_layers < -1:
            raise ValueError("n_batch and n_ubatch must be >= 1, depth >= 0, n_gpu_layers >= -1")

    @property
    def n_prompt(self) -> int:
        """Prompt tokens per repetition."""
        return parse_test(self.test)[0]

    @property
    def n_gen(self) -> int:
        """Generated tokens per repetition."""
        return parse_test(self.test)[1]

    @property
    def n_ctx(self) -> int:
        """Context for depth + prompt + generation, as llama-bench sizes it."""
        return self.depth + self.n_prompt + self.n_gen

    def engine_config(self) -> EngineConfig:
        """The llama.cpp context this run uses."""
        threads = self.resolved_threads()
        return EngineConfig(
            n_ctx=self.n_ctx,
            threads=threads,
            n_batch=self.n_batch,
            n_ubatch=self.n_ubatch,
            n_gpu_layers=self.n_gpu_layers,
            flash_attn=self.flash_attn,
            type_k=self.type_k,
            type_v=self.type_v,
        )

    def energy_devices(self) -> str:
        """Which device's energy counters cover this run's work: the CPU, the GPU, or both when split."""
        return "cpu" if self.n_gpu_layers == 0 else "gpu" if self.n_gpu_layers < 0 else "cpu+gpu"

    def resolved_threads(self) -> int:
        """Threads actually used: the configured number, else the physical cores."""
        return self.threads or psutil.cpu_count(logical=False) or psutil.cpu_count() or 1

    def as_dict(self) -> dict[str, object]:
        """JSON-ready, with the thread count actually used."""
        return {**asdict(self), "threads": self.resolved_threads()}


def parse_test(test: str) -> tuple[int, int]:
    """'pp512+tg128' -> (512, 128); 'pp512' -> (512, 0); 'tg128' -> (0, 128)."""
    match = _TEST.match(test.strip())
    if not match or not (match["pp"] or match["tg"]) or ("+" in test and not (match["pp"] and match["tg"])):
        raise ValueError(f"test '{test}' is not like pp512, tg128 or pp512+tg128")
    return int(match["pp"] or 0), int(match["tg"] or 0)


@dataclass(frozen=True)
class RawRun:
    """What the worker measured: per-repetition samples and per-token decode latencies."""

    load_s: float
    samples: dict[str, list[float]]
    inter_token_ms: list[float]
    perf: list[dict[str, float]]
    peak_rss_bytes: int  # the largest worker's peak resident set
    versions: dict[str, str]
    summaries: dict[str, Summary] = field(default_factory=dict)
    itl_percentiles_ms: dict[str, float] = field(default_factory=dict)
    energy: dict[str, object] = field(default_factory=dict)  # J/token and its source: measured, estimated, unavailable
    contention: dict[str, object] = field(default_factory=dict)  # bench.contention.Contention.as_dict()


def decode_steps(engine: Engine, token: int, position: int, n_gen: int) -> list[float]:
    """The harness's generation loop: decode the token, wait for it, pick the greedy next one; n_gen times.

    Returns n_gen + 1 timestamps: just before the first decode, then after each step's pick; decode tok/s is
    n_gen / (last - first), llama-bench's tg definition plus the greedy pick a real generation needs.
    """
    stamps = [time.perf_counter()]
    for step in range(n_gen):
        engine.step(token, position + step)
        engine.synchronize()
        token = engine.greedy()
        stamps.append(time.perf_counter())
    return stamps


def _measure(report: Callable[[dict], None], start_together, model_path: str, config: BenchConfig) -> dict:
    """Runs inside the worker process; with concurrency, all workers start measuring at the same moment."""
    import resource

    import llama_cpp
    import numpy as np

    from bench.engine import Engine

    started = time.perf_counter()
    engine = Engine(model_path, config.engine_config())
    load_s = time.perf_counter() - started
    vocab = engine.n_vocab
    rng = np.random.default_rng(config.seed)

    def random_tokens(count: int) -> np.ndarray:
        return rng.integers(min(100, vocab - 1), vocab, size=count, dtype=np.int32)

    samples: dict[str, list[float]] = {}
    inter_token_ms: list[float] = []
    perf: list[dict[str, float]] = []
    total = config.reps + int(config.warmup)
    phase_start = None
    meter = EnergyMeter(watts_estimate=config.watts_estimate, devices=config.energy_devices())
    for index in range(total):
        measured = index >= int(config.warmup)
        report({"progress": index + 1, "of": total, "warmup": not measured})
        if measured and phase_start is None:
            if start_together is not None:
                start_together.wait()
            phase_start = time.monotonic()
            meter.start()
        engine.clear()  # every repetition starts from an empty KV cache
        if config.depth:
            engine.prompt(random_tokens(config.depth))
            engine.synchronize()
        engine.perf_reset()
        # llama-bench's warm-up is the whole prompt and one generated token
        n_gen = config.n_gen if measured else min(config.n_gen, 1)
        first = time.perf_counter()
        if config.n_prompt:
            engine.prompt(random_tokens(config.n_prompt), start=config.depth)
            engine.synchronize()  # GPU backends return early; time the finished work
            prefill_s = time.perf_counter() - first
        token = engine.greedy() if config.n_prompt else int(random_tokens(1)[0])  # tg-only: as llama-bench
        stamps = decode_steps(engine, token, config.depth + config.n_prompt, n_gen) if n_gen else []
        counters = engine.perf()
        if not measured:
            continue
        rep: dict[str, float] = {}
        if config.n_prompt:
            rep["prefill_tok_s"] = config.n_prompt / prefill_s
        if config.n_gen:
            rep["decode_tok_s"] = config.n_gen / (stamps[-1] - stamps[0])
            inter_token_ms.extend((b - a) * 1000 for a, b in zip(stamps, stamps[1:]))
        end = stamps[-1] if stamps else first + prefill_s
        if config.n_prompt and config.n_gen:
            rep["ttft_ms"] = (stamps[0] - first) * 1000
            rep["total_tok_s"] = (config.n_prompt + config.n_gen) / (end - first)  # llama-bench's -pg figure
        rep["request_latency_ms"] = (end - first) * 1000
        for name, value in rep.items():
            samples.setdefault(name, []).append(value)
        perf.append(counters)
    # llama.cpp's own counters, as a cross-check (they book the first generated token under prompt evaluation)
    for metric, tokens, millis in (
        ("llama_prefill_tok_s", "n_p_eval", "t_p_eval_ms"),
        ("llama_decode_tok_s", "n_eval", "t_eval_ms"),
    ):
        if perf and all(p[tokens] > 0 and p[millis] > 0 for p in perf):
            samples[metric] = [p[tokens] / p[millis] * 1000 for p in perf]
    energy = asdict(meter.stop())
    engine.close()
    return {
        "load_s": load_s,
        "samples": samples,
        "inter_token_ms": inter_token_ms,
        "perf": perf,
        "phase": (phase_start, time.monotonic()),
        "energy": energy,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "versions": {
            "llama_cpp_python": llama_cpp.__version__,
            "llama_system_info": llama_cpp.llama_print_system_info().decode(errors="replace").strip(),
            "driver": "bench.engine (llama_decode on a prepared batch, llama-bench's context parameters)",
        },
    }


def check_memory(model_bytes: int) -> None:
    """Refuse before loading when the weights alone would not fit in the memory that is free now."""
    available = psutil.virtual_memory().available
    needed = int(model_bytes * 1.1) + 64 * 1024 * 1024
    if needed > available:
        raise BenchError(
            f"not enough free memory to load the model: it needs about {needed / 1e9:.2f} GB "
            f"(file {model_bytes / 1e9:.2f} GB + 10% + 64 MB), {available / 1e9:.2f} GB are available"
        )


def run_isolated(model_path: Path, config: BenchConfig, progress: Callable[[dict], None] | None = None) -> RawRun:
    """Measure in spawned workers; a crash, a hang past `timeout_s` or an exception becomes a BenchError."""
    check_memory(Path(model_path).stat().st_size * config.concurrency)

    def first_worker_progress(message: dict) -> None:
        if progress and message["worker"] == 0:
            progress(message)

    monitor = ContentionMonitor(config.resolved_threads() * config.concurrency, gpu=config.n_gpu_layers != 0).start()
    try:
        results = run_workers(
            _measure,
            [(str(model_path), config)] * config.concurrency,
            what="benchmark",
            subject=Path(model_path).name,
            error=BenchError,
            timeout_s=config.timeout_s,
            on_message=first_worker_progress,
            start_together=True,
        )
    finally:
        contention = monitor.stop()
    return replace(_combine(results, config), contention=contention.as_dict())


def _combine(results: list[dict], config: BenchConfig) -> RawRun:
    """One worker's figures as they are; several workers' as per-request samples plus aggregate throughput."""
    samples: dict[str, list[float]] = {}
    for result in results:
        for name, values in result["samples"].items():
            samples.setdefault(name, []).extend(values)
    wall = max(r["phase"][1] for r in results) - min(r["phase"][0] for r in results)
    generated = config.n_gen * config.reps * len(results)
    processed = (config.n_prompt + config.n_gen) * config.reps * len(results)
    aggregate = {"aggregate_gen_tok_s": generated / wall, "aggregate_total_tok_s": processed / wall} if wall > 0 else {}
    samples.update({name: [value] for name, value in aggregate.items() if value})
    itl = [ms for r in results for ms in r["inter_token_ms"]]
    # Counters cover the whole package, so one worker's reading over the shared phase covers every worker's tokens.
    reading = EnergyReading(**{**results[0]["energy"], "counters": tuple(results[0]["energy"]["counters"])})
    energy = {**results[0]["energy"], **per_token(reading, processed)}
    return RawRun(
        load_s=max(r["load_s"] for r in results),
        samples=samples,
        inter_token_ms=itl,
        perf=[p for r in results for p in r["perf"]],
        peak_rss_bytes=max(r["peak_rss_bytes"] for r in results),
        versions=results[0]["versions"],
        summaries={name: summarise(values) for name, values in samples.items()},
        itl_percentiles_ms={f"p{q}": percentile(itl, q) for q in (50, 95, 99)} if itl else {},
        energy=energy,
    )


SWEEP_AXES = ("threads", "n_batch", "n_ubatch", "depth", "n_gpu_layers", "flash_attn", "type_k", "test", "concurrency")


def sweep_configs(base: BenchConfig, axes: dict[str, list[str]]) -> list[BenchConfig]:
    """Every combination of the axes' values (`type_k` sets the V cache type too); a clear error for bad axes."""
    import itertools
    from dataclasses import fields, replace

    unknown = sorted(set(axes) - set(SWEEP_AXES))
    if unknown:
        raise ValueError(f"cannot sweep {', '.join(unknown)}; sweepable: {', '.join(SWEEP_AXES)}")
    kinds = {f.name: f.type for f in fields(BenchConfig)}

    def typed(axis: str, text: str) -> object:
        kind = str(kinds[axis])
        if "bool" in kind:
            if text.lower() not in ("0", "1", "true", "false", "on", "off"):
                raise ValueError(f"sweep {axis}: '{text}' is not a boolean")
            return text.lower() in ("1", "true", "on")
        if "int" in kind:
            try:
                return int(text)
            except ValueError:
                raise ValueError(f"sweep {axis}: '{text}' is not a whole number") from None
        return text

    names = list(axes)
    configs = []
    for values in itertools.product(*(axes[name] for name in names)):
        # Any: typed() converts each value to its own field's type (bool, int or str), which no one static type says
        changes: dict[str, Any] = {name: typed(name, value) for name, value in zip(names, values)}
        if "type_k" in changes:
            changes["type_v"] = changes["type_k"]
        configs.append(replace(base, **changes))
    return configs


def parse_sweep(specs: list[str]) -> dict[str, list[str]]:
    """`--sweep threads=1,2 --sweep test=pp128,pp512` as {axis: values}."""
    axes: dict[str, list[str]] = {}
    for spec in specs:
        axis, sep, values = spec.partition("=")
        items = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not axis.strip() or not items:
            raise ValueError(f"--sweep expects AXIS=V1,V2,..., got '{spec}'")
        axes[axis.strip()] = items
    return axes
