"""Batched serving in one llama.cpp context: how servers (llama.cpp's server with parallel slots, vLLM, Ollama)
really run a model, and the service curve that describes it.

`BatchedServer` is a continuous-batching engine: up to `slots` sequences share one context, each with its own
sequence id; a new request is admitted into a free slot, its prompt is prefilled (in n_batch-sized chunks,
alongside the other sequences' decode tokens) and then it decodes one token per step with the others; a finished
sequence's KV cells are freed for the next request. Greedy decoding throughout.

`measure_curve` measures the service curve at each batch size B the way llama-batched-bench does (`-npp PP
-ntg TG -npl B`): B prompts of PP random tokens prefilled together, then TG decode steps of B tokens. Per B:
prefill tok/s (B x PP / prefill time), aggregate decode tok/s (B x TG / decode time), per-sequence inter-token
latency (one decode step), time to first token, and whether B x (PP + TG) KV cells fit in memory at all.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil

from bench.engine import Engine, EngineConfig, EngineError, KVCacheFull


# ---------------------------------------------------------------------------------------------------------------
# continuous batching
@dataclass
class Sequence:
    """One request being served: its slot (sequence id), prompt, generated tokens and timings."""

    request_id: int
    prompt: np.ndarray
    max_new: int
    slot: int = -1
    prefilled: int = 0
    generated: list[int] = field(default_factory=list)
    admitted_at: float = 0.0
    token_times: list[float] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return len(self.generated) >= self.max_new


class BatchedServer:
    """Continuous batching over one Engine whose context was made with n_seq_max = slots."""

    def __init__(self, engine: Engine, slots: int | None = None, stop: Callable[[int], bool] | None = None) -> None:
        self.engine = engine
        self.slots = slots or engine.config.n_seq_max
        if self.slots > engine.config.n_seq_max:
            raise ValueError(f"{self.slots} slots need a context made with n_seq_max >= {self.slots}")
        self.cells_per_slot = engine.n_ctx // self.slots if not engine.config.kv_unified else engine.n_ctx
        self.free: deque[int] = deque(range(self.slots))
        self.waiting: deque[Sequence] = deque()
        self.active: list[Sequence] = []
        self.finished: list[Sequence] = []
        self._next_id = 0
        self.stop = stop  # e.g. end-of-generation tokens; None: always generate max_new tokens

    def submit(self, prompt: list[int] | np.ndarray, max_new: int) -> Sequence:
        """Queue a request; it is admitted as soon as a slot is free."""
        prompt = np.asarray(prompt, dtype=np.int32)
        if len(prompt) == 0 or max_new < 1:
            raise ValueError("a request needs at least one prompt token and max_new >= 1")
        if len(prompt) + max_new > self.cells_per_slot:
            raise ValueError(
                f"a request of {len(prompt)} prompt + {max_new} new tokens does not fit in a slot of "
                f"{self.cells_per_slot} KV cells"
            )
        sequence = Sequence(self._next_id, prompt, max_new)
        self._next_id += 1
        self.waiting.append(sequence)
        return sequence

    def _admit(self) -> None:
        while self.free and self.waiting:
            sequence = self.waiting.popleft()
            sequence.slot = self.free.popleft()
            sequence.admitted_at = time.perf_counter()
            self.engine.drop(sequence.slot)
            self.active.append(sequence)

    def step(self) -> int:
        """Admit waiting requests into free slots, run one llama_decode over every active sequence (decode tokens
        first, then prompt chunks up to n_batch), pick greedy tokens; returns how many tokens were decoded."""
        self._admit()
        if not self.active:
            return 0
        engine, budget = self.engine, self.engine.capacity
        tokens, positions, seqs, wants = [], [], [], []
        owners: list[Sequence | None] = []  # the sequence whose logits a batch row yields (None: prompt rows)
        for sequence in self.active:  # decoding sequences: one token each
            if sequence.prefilled == len(sequence.prompt) and sequence.generated:
                tokens.append(sequence.generated[-1])
                positions.append(len(sequence.prompt) + len(sequence.generated) - 1)
                seqs.append(sequence.slot)
                wants.append(1)
                owners.append(sequence)
        budget -= len(tokens)
        advanced: list[tuple[Sequence, int]] = []
        for sequence in self.active:  # prefilling sequences: as much prompt as the batch has room for
            remaining = len(sequence.prompt) - sequence.prefilled
            if remaining == 0 or budget <= 0:
                continue
            take = min(remaining, budget)
            start = sequence.prefilled
            tokens.extend(sequence.prompt[start : start + take].tolist())
            positions.extend(range(start, start + take))
            seqs.extend([sequence.slot] * take)
            last = start + take == len(sequence.prompt)
            wants.extend([0] * (take - 1) + [int(last)])
            owners.extend([None] * (take - 1) + [sequence if last else None])
            advanced.append((sequence, take))
            budget -= take
        engine.decode(  # a full KV cache raises here, before any sequence's state moves
            np.asarray(tokens, dtype=np.int32),
            np.asarray(positions, dtype=np.int32),
            np.asarray(seqs, dtype=np.int32),
            np.asarray(wants, dtype=np.int8),
        )
        for sequence, take in advanced:
            sequence.prefilled += take
        outputs = [owner for owner, want in zip(owners, wants) if want and owner is not None]  # want => owner
        picked = engine.all_logits(len(outputs)).argmax(axis=1) if outputs else []
        now = time.perf_counter()
        for sequence, token in zip(outputs, picked):
            sequence.generated.append(int(token))
            sequence.token_times.append(now)
            if sequence.done or (self.stop and self.stop(int(token))):
                sequence.max_new = len(sequence.generated)
        for sequence in [s for s in self.active if s.done]:
            self.active.remove(sequence)
            self.engine.drop(sequence.slot)
            self.free.append(sequence.slot)
            self.finished.append(sequence)
        return len(tokens)

    def run(self) -> list[Sequence]:
        """Step until every submitted request has finished; returns them in finishing order."""
        while self.waiting or self.active:
            self.step()
        return self.finished


WAKE_IDLE_S = (0.3, 1.0, 3.0)  # idle gaps a lightly loaded server sees between requests


def lone_prompt_step(engine: Engine, slots: int, pp: int, pause: float, rng: np.random.Generator) -> float:
    """Seconds of one step that takes in a single `pp`-token prompt, `pause` seconds after the engine last ran."""
    engine.clear()
    server = BatchedServer(engine, slots)
    server.submit(rng.integers(0, engine.n_vocab, size=pp, dtype=np.int32), 2)
    time.sleep(pause)
    started = time.perf_counter()
    server.step()
    seconds = time.perf_counter() - started
    server.run()
    return seconds


def measure_wake(
    engine: Engine, slots: int, pp: int, idle: tuple[float, ...] = WAKE_IDLE_S, rounds: int = 5, seed: int = 0
) -> tuple[tuple[float, float], ...]:
    """What idling costs the next step, which a curve measured back to back cannot see: a lone `pp`-token prompt
    step after the engine idled each of `idle` seconds, minus the same step straight after another (medians of
    `rounds`, interleaved so a drifting machine moves them alike; never below 0). Pairs (idle s, extra s)."""
    rng = np.random.default_rng(seed)
    times: dict[float, list[float]] = {pause: [] for pause in (0.0, *idle)}
    for _ in range(rounds):
        for pause, seconds in times.items():
            seconds.append(lone_prompt_step(engine, slots, pp, pause, rng))
    base = float(np.median(times[0.0]))
    return tuple((pause, max(0.0, float(np.median(times[pause])) - base)) for pause in idle)


# ---------------------------------------------------------------------------------------------------------------
# service curves
@dataclass(frozen=True)
class CurveConfig:
    """What a service curve is measured with (llama-batched-bench's PP, TG and B list, and context settings)."""

    batches: tuple[int, ...] = (1, 2, 4, 8, 16)
    pp: int = 128
    tg: int = 128
    threads: int = 1
    n_batch: int = 2048
    n_ubatch: int = 512
    n_gpu_layers: int = 0
    flash_attn: str = "auto"
    type_k: str = "f16"
    type_v: str = "f16"
    reps: int = 1
    greedy: bool = (
        True  # pick each next token by argmax (a served sequence); False: random tokens, as llama-batched-bench
    )
    seed: int = 1
    wake_rounds: int = 0  # lone prompt steps timed after each idle gap (`measure_wake`); 0: wake not measured

    def __post_init__(self) -> None:
        if not self.batches or min(self.batches) < 1:
            raise ValueError("batch sizes must be whole numbers >= 1")
        if self.pp < 1 or self.tg < 1 or self.reps < 1 or self.threads < 1:
            raise ValueError("pp, tg, reps and threads must be at least 1")
        if not 0 <= self.wake_rounds <= 50:
            raise ValueError("wake rounds must be between 0 and 50")

    @property
    def max_batch(self) -> int:
        return max(self.batches)

    def engine_config(self, batch: int) -> EngineConfig:
        """The context for B sequences: B x (PP + TG) cells, one stream per sequence (as llama-batched-bench)."""
        return EngineConfig(
            n_ctx=batch * (self.pp + self.tg),
            threads=self.threads,
            n_batch=self.n_batch,
            n_ubatch=self.n_ubatch,
            n_seq_max=batch,
            n_gpu_layers=self.n_gpu_layers,
            flash_attn=self.flash_attn,
            type_k=self.type_k,
            type_v=self.type_v,
        )


@dataclass(frozen=True)
class CurvePointResult:
    """One B of a curve: measured figures, or fits=False with the reason."""

    batch: int
    n_ctx: int
    fits: bool
    prefill_tok_s: float | None = None
    decode_tok_s: float | None = None
    itl_s: float | None = None
    itl_p95_s: float | None = None
    ttft_s: float | None = None
    reason: str | None = None


KV_BYTES = {
    "f32": 4.0,
    "f16": 2.0,
    "bf16": 2.0,
    "q8_0": 34 / 32,
    "q4_0": 18 / 32,
    "q4_1": 20 / 32,
    "q5_0": 22 / 32,
    "q5_1": 24 / 32,
    "iq4_nl": 18 / 32,
}


def kv_bytes_per_cell(
    n_layer: int, n_embd_k_gqa: int, n_embd_v_gqa: int, type_k: str = "f16", type_v: str = "f16"
) -> int:
    """KV cache bytes one context cell (one token of one sequence) holds over all layers."""
    return math.ceil(n_layer * (n_embd_k_gqa * KV_BYTES[type_k] + n_embd_v_gqa * KV_BYTES[type_v]))


def largest_fitting_batch(kv_per_cell: int, cells_per_sequence: int, free_bytes: int, reserve_bytes: int) -> int:
    """The largest B whose KV cache (B x cells x bytes per cell) fits in `free_bytes` less a reserve."""
    room = free_bytes - reserve_bytes
    if kv_per_cell <= 0 or cells_per_sequence <= 0:
        raise ValueError("bytes per cell and cells per sequence must be positive")
    return max(room // (kv_per_cell * cells_per_sequence), 0)


def measure_point(engine: Engine, config: CurveConfig, batch: int, rng: np.random.Generator) -> CurvePointResult:
    """One B on an engine whose context holds B sequences, as llama-batched-bench times it (mean over reps)."""
    pp, tg, vocab = config.pp, config.tg, engine.n_vocab
    prefill, decode, ttft, steps = [], [], [], []
    seqs = np.repeat(np.arange(batch, dtype=np.int32), pp)
    positions = np.tile(np.arange(pp, dtype=np.int32), batch)
    last = np.zeros(batch * pp, dtype=np.int8)
    last[pp - 1 :: pp] = 1
    step_seqs = np.arange(batch, dtype=np.int32)
    step_logits = np.ones(batch, dtype=np.int8)
    for _ in range(config.reps):
        prompt = rng.integers(0, vocab, size=batch * pp, dtype=np.int32)
        engine.clear()
        started = time.perf_counter()
        n_batch = engine.config.n_batch
        picked = []
        for offset in range(0, batch * pp, n_batch):  # llama-batched-bench's decode_helper: n_batch chunks
            end = min(offset + n_batch, batch * pp)
            engine.decode(prompt[offset:end], positions[offset:end], seqs[offset:end], last[offset:end])
            outputs = int(last[offset:end].sum())
            if config.greedy and outputs:  # a chunk's logits are gone after the next decode: pick now
                picked.append(engine.all_logits(outputs).argmax(axis=1))
        engine.synchronize()
        prefilled = time.perf_counter()
        if config.greedy:
            tokens = np.concatenate(picked).astype(np.int32)
        else:
            tokens = rng.integers(0, vocab, size=batch, dtype=np.int32)
        first = time.perf_counter()
        stamps = [first]
        for i in range(tg):
            engine.decode(tokens, np.full(batch, pp + i, dtype=np.int32), step_seqs, step_logits)
            engine.synchronize()
            if config.greedy:
                tokens = engine.all_logits(batch).argmax(axis=1).astype(np.int32)
            else:
                tokens = rng.integers(0, vocab, size=batch, dtype=np.int32)
            stamps.append(time.perf_counter())
        prefill.append(batch * pp / (prefilled - started))
        decode.append(batch * tg / (stamps[-1] - stamps[0]))
        ttft.append(first - started)
        steps.extend(np.diff(stamps).tolist())
    return CurvePointResult(
        batch,
        engine.n_ctx,
        True,
        float(np.mean(prefill)),
        float(np.mean(decode)),
        float(np.mean(steps)),
        float(np.percentile(steps, 95)),
        float(np.mean(ttft)),
    )


def measure_curve(
    model_path: str | Path,
    config: CurveConfig,
    *,
    kv_per_cell: int,
    weights_bytes: int,
    free_bytes: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[CurvePointResult]:
    """Every B of the curve in one context sized for the largest B that fits (as llama-batched-bench is run with
    `-c` = that size); a B whose KV cells do not fit beside the weights is reported with fits=False, not run."""
    free = psutil.virtual_memory().available if free_bytes is None else free_bytes
    limit = largest_fitting_batch(kv_per_cell, config.pp + config.tg, free, reserve_bytes=weights_bytes + RESERVE)
    batches = sorted(set(config.batches))
    fitting = [b for b in batches if b <= limit]
    results: dict[int, CurvePointResult] = {}
    for batch in batches[len(fitting) :]:
        n_ctx = batch * (config.pp + config.tg)
        results[batch] = CurvePointResult(
            batch,
            n_ctx,
            False,
            reason=(
                f"{n_ctx:,} KV cells x {kv_per_cell:,} B = {n_ctx * kv_per_cell / 1e9:.2f} GB do not fit beside the "
                f"weights in {free / 1e9:.2f} GB free (largest B that fits: {limit})"
            ),
        )
    rng = np.random.default_rng(config.seed)
    while fitting:
        try:
            with Engine(model_path, config.engine_config(max(fitting))) as engine:
                warm = rng.integers(0, engine.n_vocab, size=16, dtype=np.int32)  # llama-batched-bench's warm-up
                engine.decode(warm, np.arange(16, dtype=np.int32), np.zeros(16, np.int32), np.zeros(16, np.int8))
                engine.synchronize()
                for index, batch in enumerate(fitting):
                    if progress:
                        progress(index, batch)
                    try:
                        results[batch] = measure_point(engine, config, batch, rng)
                    except KVCacheFull as error:
                        results[batch] = CurvePointResult(
                            batch, batch * (config.pp + config.tg), False, reason=str(error)
                        )
            break
        except EngineError as error:  # the context itself did not fit: the largest B does not, try without it
            largest = fitting.pop()
            results[largest] = CurvePointResult(largest, largest * (config.pp + config.tg), False, reason=str(error))
    return [results[b] for b in batches]


RESERVE = 256 * 1024 * 1024  # compute buffers and the process itself, beside weights and KV cache


def _curve_worker(
    report: Callable[[dict], None], _barrier, model_path: str, config: CurveConfig, kv_per_cell: int, weights_bytes: int
) -> dict:
    """Runs in a spawned worker: the whole curve, reported point by point, then what waking from idle costs."""
    from dataclasses import asdict

    points = measure_curve(
        model_path,
        config,
        kv_per_cell=kv_per_cell,
        weights_bytes=weights_bytes,
        progress=lambda index, batch: report({"point": index, "batch": batch}),
    )
    wake: tuple[tuple[float, float], ...] = ()
    if config.wake_rounds and any(p.fits for p in points):
        with Engine(model_path, config.engine_config(1)) as engine:
            wake = measure_wake(engine, 1, config.pp, rounds=config.wake_rounds, seed=config.seed)
    return {"points": [asdict(p) for p in points], "wake": [list(w) for w in wake]}


def run_curve_isolated(
    model_path: str | Path,
    config: CurveConfig,
    *,
    kv_per_cell: int | None = None,
    weights_bytes: int | None = None,
    progress: Callable[[dict], None] | None = None,
    timeout_s: float = 1800.0,
) -> tuple[list[CurvePointResult], tuple[tuple[float, float], ...]]:
    """measure_curve (and, with `config.wake_rounds`, measure_wake) in a spawned worker, so a crash or
    out-of-memory in llama.cpp becomes a BenchError: the points, and the wake costs (empty when not measured)."""
    from bench.runner import BenchError
    from slmlab.isolation import run_workers
    from slmlab.models import gguf_metadata

    if kv_per_cell is None or weights_bytes is None:
        meta = gguf_metadata(Path(model_path))
        kv_per_cell = kv_per_cell or model_kv_bytes_per_cell(meta, config.type_k, config.type_v)
        weights_bytes = weights_bytes or int(meta.file_bytes)
    (measured,) = run_workers(
        _curve_worker,
        [(str(model_path), config, kv_per_cell, weights_bytes)],
        what="batched benchmark",
        subject=Path(model_path).name,
        error=BenchError,
        timeout_s=timeout_s,
        on_message=progress,
    )
    wake = tuple((float(idle), float(extra)) for idle, extra in measured["wake"])
    return [CurvePointResult(**p) for p in measured["points"]], wake


def model_kv_bytes_per_cell(meta, type_k: str = "f16", type_v: str = "f16") -> int:
    """KV bytes per context cell from GGUF metadata (layers x K and V widths)."""
    widths = meta.kv_width
    if not widths or not meta.n_layer:
        raise ValueError(
            f"{meta.path}: the GGUF metadata lacks layer count or attention widths, so the KV cache "
            "size per token is unknown"
        )
    return kv_bytes_per_cell(int(meta.n_layer), int(widths[0]), int(widths[1]), type_k, type_v)


# ---------------------------------------------------------------------------------------------------------------
# measure and keep
def canonical_model_name(spec: str) -> str:
    """The name `slmlab models` uses (`slmlab.models.model_name`), after checking the model exists."""
    from slmlab.models import model_name, resolve_model

    resolve_model(spec)
    return model_name(spec)


@dataclass(frozen=True)
class CurveResult:
    """A measured and stored service curve."""

    curve_id: str
    model: str
    machine: str
    config: CurveConfig
    kv_bytes_per_token: int
    points: list[CurvePointResult]
    contention: dict
    wake: tuple[tuple[float, float], ...] = ()  # (idle s, extra s of the first step after it); empty: not measured

    def as_dict(self) -> dict[str, object]:
        """For `--json`."""
        from dataclasses import asdict

        return {
            "curve_id": self.curve_id,
            "model": self.model,
            "machine": self.machine,
            "config": asdict(self.config),
            "kv_bytes_per_token": self.kv_bytes_per_token,
            "mode": "batched: B sequences in one llama.cpp context (continuous batching)",
            "points": [asdict(p) for p in self.points],
            "contention": self.contention,
            "largest_fitting_batch": max((p.batch for p in self.points if p.fits), default=0),
            "wake": [{"idle_s": idle, "extra_s": extra} for idle, extra in self.wake],
        }


def benchmark_curve(
    model_spec: str,
    config: CurveConfig,
    *,
    db: str | Path | None = None,
    progress: Callable[[dict], None] | None = None,
) -> CurveResult:
    """Measure a service curve in an isolated worker while sampling contention, and store it in the warehouse."""
    from dataclasses import asdict

    import llama_cpp

    from bench.contention import ContentionMonitor
    from bench.hardware import take_census
    from slmlab.models import gguf_metadata, resolve_model
    from slmlab.service_curves import CurvePoint, CurveRun, save_service_curve

    meta = gguf_metadata(resolve_model(model_spec))
    kv = model_kv_bytes_per_cell(meta, config.type_k, config.type_v)
    machine = take_census().fingerprint()
    monitor = ContentionMonitor(config.threads, gpu=config.n_gpu_layers != 0).start()
    try:
        points, wake = run_curve_isolated(
            meta.path, config, kv_per_cell=kv, weights_bytes=int(meta.file_bytes), progress=progress
        )
    finally:
        contention = monitor.stop()
    name = canonical_model_name(model_spec)
    run = CurveRun(
        model=name,
        machine=machine,
        n_threads=config.threads,
        n_gpu_layers=config.n_gpu_layers,
        pp=config.pp,
        tg=config.tg,
        kv_bytes_per_token=kv,
        contended=contention.contended,
        model_path=meta.path,
        model_sha256=meta.sha256,
        contention=contention.as_dict(),
        config=asdict(config),
        versions={"llama_cpp_python": llama_cpp.__version__},
        wake=wake,
    )
    stored = [
        CurvePoint(p.batch, p.n_ctx, p.fits, p.prefill_tok_s, p.decode_tok_s, p.itl_s, p.itl_p95_s, p.ttft_s)
        for p in points
    ]
    curve_id = save_service_curve(run, stored, db=db)
    return CurveResult(curve_id, name, machine, config, kv, points, contention.as_dict(), wake)
