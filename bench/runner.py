"""One benchmark run in an isolated worker process: a crash, out-of-memory or hang in llama.cpp never takes
down the caller, who gets either the measurements or a clear BenchError.

Tests follow llama-bench's names so figures line up with published tables: `pp512` (prefill 512 tokens),
`tg128` (generate 128 tokens), `pp512+tg128` (both, which also gives time to first token). Every repetition
starts from an empty KV cache and fresh random tokens, so prompt-prefix reuse cannot flatter prefill; a
warm-up repetition is run and discarded.
"""

from __future__ import annotations

import multiprocessing
import queue
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

from bench.stats import Summary, percentile, summarise

_TEST = re.compile(r"^(?:pp(?P<pp>\d+))?(?:\+)?(?:tg(?P<tg>\d+))?$")
KV_TYPES = ("f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "iq4_nl")


class BenchError(RuntimeError):
    """The run could not produce measurements; the message says why in words."""


@dataclass(frozen=True)
class BenchConfig:
    """Everything that shapes one run; stored with the result so it can be reproduced."""

    test: str = "pp512+tg128"
    reps: int = 5
    threads: int | None = None
    n_batch: int = 512
    n_ubatch: int = 512
    n_gpu_layers: int = 0
    flash_attn: bool = False
    type_k: str = "f16"
    type_v: str = "f16"
    depth: int = 0
    seed: int = 1
    warmup: bool = True
    timeout_s: float = 600.0

    def __post_init__(self) -> None:
        parse_test(self.test)
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
        """Context large enough for depth + prompt + generation."""
        return self.depth + self.n_prompt + self.n_gen + 8

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
    peak_rss_bytes: int
    versions: dict[str, str]
    summaries: dict[str, Summary] = field(default_factory=dict)
    itl_percentiles_ms: dict[str, float] = field(default_factory=dict)


def _kv_type(name: str) -> int:
    import llama_cpp

    return int(getattr(llama_cpp, f"GGML_TYPE_{name.upper()}"))


def _measure(model_path: str, config: BenchConfig, report: Callable[[dict], None]) -> dict:
    """Runs inside the worker process."""
    import resource

    import llama_cpp
    import numpy as np
    from llama_cpp import Llama

    started = time.perf_counter()
    llm = Llama(
        model_path=model_path, n_ctx=config.n_ctx, n_batch=config.n_batch, n_ubatch=config.n_ubatch,
        n_threads=config.resolved_threads(), n_threads_batch=config.resolved_threads(),
        n_gpu_layers=config.n_gpu_layers, flash_attn=config.flash_attn, type_k=_kv_type(config.type_k),
        type_v=_kv_type(config.type_v), seed=config.seed, verbose=False,
    )
    load_s = time.perf_counter() - started
    vocab = llm.n_vocab()
    rng = np.random.default_rng(config.seed)

    def random_tokens(count: int) -> list[int]:
        return rng.integers(min(100, vocab - 1), vocab, size=count).tolist()

    def greedy() -> int:
        return int(np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(vocab,)).argmax())

    samples: dict[str, list[float]] = {}
    inter_token_ms: list[float] = []
    perf: list[dict[str, float]] = []
    total = config.reps + int(config.warmup)
    for index in range(total):
        measured = index >= int(config.warmup)
        report({"progress": index + 1, "of": total, "warmup": not measured})
        llm.reset()  # n_tokens = 0; the next eval drops every cached position
        if config.depth:
            llm.eval(random_tokens(config.depth))
        llama_cpp.llama_perf_context_reset(llm._ctx.ctx)
        first = time.perf_counter()
        if config.n_prompt:
            llm.eval(random_tokens(config.n_prompt))
            llama_cpp.llama_synchronize(llm._ctx.ctx)  # GPU backends return early; time the finished work
            prefill_s = time.perf_counter() - first
        else:
            llm.eval(random_tokens(1))  # tg-only: decode from one token, as llama-bench does
        stamps = []
        if config.n_gen:
            token = greedy()
            stamps.append(time.perf_counter())
            for _ in range(config.n_gen - 1):
                llm.eval([token])
                token = greedy()
                stamps.append(time.perf_counter())
            llm.eval([token])
            stamps.append(time.perf_counter())
        counters = llama_cpp.llama_perf_context(llm._ctx.ctx)
        if not measured:
            continue
        rep: dict[str, float] = {}
        if config.n_prompt:
            rep["prefill_tok_s"] = config.n_prompt / prefill_s
        if config.n_gen:
            rep["decode_tok_s"] = config.n_gen / (stamps[-1] - stamps[0])
            inter_token_ms.extend((b - a) * 1000 for a, b in zip(stamps, stamps[1:]))
        if config.n_prompt and config.n_gen:
            rep["ttft_ms"] = (stamps[0] - first) * 1000
        for name, value in rep.items():
            samples.setdefault(name, []).append(value)
        perf.append({"t_p_eval_ms": counters.t_p_eval_ms, "n_p_eval": counters.n_p_eval,
                     "t_eval_ms": counters.t_eval_ms, "n_eval": counters.n_eval, "graphs_reused": counters.n_reused})
    # llama.cpp's own counters, as a cross-check (they book the first generated token under prompt evaluation)
    for metric, tokens, millis in (("llama_prefill_tok_s", "n_p_eval", "t_p_eval_ms"),
                                   ("llama_decode_tok_s", "n_eval", "t_eval_ms")):
        if perf and all(p[tokens] > 0 and p[millis] > 0 for p in perf):
            samples[metric] = [p[tokens] / p[millis] * 1000 for p in perf]
    return {
        "load_s": load_s, "samples": samples, "inter_token_ms": inter_token_ms, "perf": perf,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "versions": {"llama_cpp_python": llama_cpp.__version__,
                     "llama_system_info": llama_cpp.llama_print_system_info().decode(errors="replace").strip()},
    }


def _worker(model_path: str, config: BenchConfig, channel: multiprocessing.Queue) -> None:
    try:
        channel.put({"result": _measure(model_path, config, channel.put)})
    except BaseException as error:  # report every failure in words instead of dying silently
        channel.put({"error": f"{type(error).__name__}: {error}"})


def check_memory(model_bytes: int, config: BenchConfig) -> None:
    """Refuse before loading when the weights alone would not fit in the memory that is free now."""
    available = psutil.virtual_memory().available
    needed = int(model_bytes * 1.1) + 64 * 1024 * 1024
    if needed > available:
        raise BenchError(
            f"not enough free memory to load the model: it needs about {needed / 1e9:.2f} GB "
            f"(file {model_bytes / 1e9:.2f} GB + 10% + 64 MB), {available / 1e9:.2f} GB are available"
        )


def run_isolated(
    model_path: Path, config: BenchConfig, progress: Callable[[dict], None] | None = None
) -> RawRun:
    """Measure in a spawned worker; a crash, a hang past `timeout_s` or an exception becomes a BenchError."""
    check_memory(Path(model_path).stat().st_size, config)
    context = multiprocessing.get_context("spawn")
    channel = context.Queue()
    worker = context.Process(target=_worker, args=(str(model_path), config, channel), daemon=True)
    worker.start()
    deadline = time.monotonic() + config.timeout_s
    try:
        while True:
            try:
                message = channel.get(timeout=0.2)
            except queue.Empty:
                if not worker.is_alive():
                    code = worker.exitcode
                    how = f"was killed by signal {-code}" if code and code < 0 else f"exited with code {code}"
                    raise BenchError(f"the benchmark worker {how} while running {Path(model_path).name} "
                                     "(llama.cpp crash or out of memory)") from None
                if time.monotonic() > deadline:
                    raise BenchError(f"the benchmark did not finish within {config.timeout_s:.0f} s and was stopped")
                continue
            if "error" in message:
                raise BenchError(f"the benchmark failed in the worker: {message['error']}")
            if "result" in message:
                raw = message["result"]
                break
            if progress:
                progress(message)
    finally:
        if worker.is_alive():
            worker.kill()
        worker.join(timeout=5)
    summaries = {name: summarise(values) for name, values in raw["samples"].items()}
    itl = raw["inter_token_ms"]
    percentiles = {f"p{q}": percentile(itl, q) for q in (50, 95, 99)} if itl else {}
    return RawRun(**raw, summaries=summaries, itl_percentiles_ms=percentiles)
