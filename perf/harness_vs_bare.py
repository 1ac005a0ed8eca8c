"""Speed check for the benchmark harness: its decode tok/s against a bare llama-cpp-python generation loop on
the same model, prompt length and thread count, in the same run. Goal: the harness at least as fast, within 3%
(it may be faster: it drives llama_decode on a prepared batch with llama-bench's context parameters, see
bench/engine.py; perf/harness_vs_llamabench.py checks it against llama-bench itself).

Both sides run in a freshly spawned process (so both pay the same process setup), load the model with the
same settings, do one discarded warm-up repetition and one measured repetition on fresh random prompt tokens:

  harness  bench.runner.run_isolated(path, BenchConfig(test="pp{N}+tg{M}", reps=1, threads=T)),
           summaries["decode_tok_s"].mean (bench.engine: decode one token, numpy argmax of the logits, repeat)
  bare     for token in llm.generate(prompt_tokens, temp=0.0): ...  (llama.cpp's greedy sampler chain)

Decode tok/s, identical on both sides (it is bench/runner.py's definition): the clock starts when the first
generated token is known (prompt evaluated and first token picked) and stops when the last of n_gen
single-token decode steps has finished; decode tok/s = n_gen / (t_last - t_first). The harness decodes its
n_gen-th token without picking a successor; generate() only yields after picking, so the bare loop takes
n_gen + 1 tokens from generate() (n_gen decode steps) and its interval holds one extra greedy pick (tens of
microseconds, far below 3%).

    .venv/bin/python perf/harness_vs_bare.py [--model smollm2-135m] [--n-gen 128] [--n-prompt 32]
                                                   [--threads N] [--rounds 5]
"""

from __future__ import annotations

import argparse
import multiprocessing
import queue
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.runner import BenchConfig, run_isolated
from slmlab.models import resolve_model

GOAL = 0.03


def bare_worker(model_path: str, n_prompt: int, n_gen: int, threads: int, seed: int, channel, reps: int = 1) -> None:
    """Runs in a spawned process: one warm-up and `reps` measured bare generate() loops; puts mean decode tok/s."""
    try:
        import numpy as np
        from llama_cpp import Llama

        # same context size, batch sizes, thread counts and seed as the harness's BenchConfig gives
        llm = Llama(
            model_path=model_path,
            n_ctx=n_prompt + n_gen + 8,
            n_threads=threads,
            n_threads_batch=threads,
            n_batch=512,
            seed=1,
            verbose=False,
        )
        vocab = llm.n_vocab()
        rng = np.random.default_rng(seed)
        previous_first = None
        rates = []
        for _ in range(1 + reps):  # warm-up, then measured (the harness also discards one warm-up repetition)
            prompt = rng.integers(min(100, vocab - 1), vocab, size=n_prompt).tolist()
            if prompt[0] == previous_first:  # generate() reuses a matching prefix; keep every prompt fresh
                prompt[0] = (prompt[0] + 1 - 100) % (vocab - 100) + 100
            previous_first = prompt[0]
            stamps = []
            for _token in llm.generate(prompt, temp=0.0):
                stamps.append(time.perf_counter())
                if len(stamps) == n_gen + 1:
                    break
            rates.append(n_gen / (stamps[-1] - stamps[0]))
        measured = rates[1:]
        channel.put({"decode_tok_s": sum(measured) / len(measured)})
    except BaseException as error:  # report in words instead of dying silently
        channel.put({"error": f"{type(error).__name__}: {error}"})


def paired_worker(model_path: str, n_prompt: int, n_gen: int, threads: int, pairs: int, channel) -> None:
    """Runs in one spawned process: the harness's decode_steps (bench.engine) and a bare generate() loop on the same
    model file, alternating, so machine noise hits both alike; puts both rate lists."""
    try:
        import numpy as np
        from llama_cpp import Llama

        from bench.runner import BenchConfig, decode_steps

        # flash attention off on both sides (Llama's default), so the check isolates the decode path's overhead
        engine = BenchConfig(test=f"pp{n_prompt}+tg{n_gen}", threads=threads, flash_attn="off").engine_config()
        from bench.engine import Engine

        harness_engine = Engine(model_path, engine)

        llm = Llama(
            model_path=model_path,
            n_ctx=n_prompt + n_gen + 8,
            n_threads=threads,
            n_threads_batch=threads,
            n_batch=512,
            seed=1,
            verbose=False,
        )
        vocab = llm.n_vocab()
        rng = np.random.default_rng(7)
        rates: dict[str, list[float]] = {"harness": [], "bare": []}

        def prompt() -> list[int]:
            return rng.integers(min(100, vocab - 1), vocab, size=n_prompt).tolist()

        def harness() -> float:
            harness_engine.clear()
            harness_engine.prompt(np.asarray(prompt(), dtype=np.int32))
            stamps = decode_steps(harness_engine, harness_engine.greedy(), n_prompt, n_gen)
            return n_gen / (stamps[-1] - stamps[0])

        def bare() -> float:
            llm.reset()
            stamps = []
            for _ in llm.generate(prompt(), temp=0.0, reset=True):
                stamps.append(time.perf_counter())
                if len(stamps) == n_gen + 1:
                    break
            return n_gen / (stamps[-1] - stamps[0])

        harness(), bare()  # warm-up, discarded
        for index in range(pairs):
            order = (("harness", harness), ("bare", bare)) if index % 2 == 0 else (("bare", bare), ("harness", harness))
            for name, run in order:
                rates[name].append(run())
        channel.put(rates)
    except BaseException as error:  # report in words instead of dying silently
        channel.put({"error": f"{type(error).__name__}: {error}"})


def run_paired(model_path: Path, n_prompt: int, n_gen: int, threads: int, pairs: int) -> dict[str, list[float]]:
    """The same-process comparison (the default): both loops, same model instance, alternating."""
    context = multiprocessing.get_context("spawn")
    channel = context.Queue()
    worker = context.Process(target=paired_worker, args=(str(model_path), n_prompt, n_gen, threads, pairs, channel))
    worker.start()
    try:
        message = channel.get(timeout=1200)
    finally:
        worker.join(timeout=10)
    if "error" in message:
        raise RuntimeError(f"paired worker failed: {message['error']}")
    return message


def run_bare(model_path: Path, n_prompt: int, n_gen: int, threads: int, seed: int, reps: int = 1) -> float:
    context = multiprocessing.get_context("spawn")
    channel = context.Queue()
    worker = context.Process(target=bare_worker, args=(str(model_path), n_prompt, n_gen, threads, seed, channel, reps))
    worker.start()
    deadline = time.monotonic() + 600
    try:
        while True:
            try:
                message = channel.get(timeout=0.5)
                break
            except queue.Empty:
                if not worker.is_alive() or time.monotonic() > deadline:
                    raise RuntimeError(f"bare loop worker died or hung (exit code {worker.exitcode})") from None
    finally:
        worker.join(timeout=30)
        if worker.is_alive():
            worker.kill()
    if "error" in message:
        raise RuntimeError(f"bare loop failed: {message['error']}")
    return message["decode_tok_s"]


def run_harness(model_path: Path, n_prompt: int, n_gen: int, threads: int, seed: int, reps: int = 1) -> float:
    raw = run_isolated(model_path, BenchConfig(test=f"pp{n_prompt}+tg{n_gen}", reps=reps, threads=threads, seed=seed))
    return raw.summaries["decode_tok_s"].mean


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--n-gen", type=int, default=128)
    parser.add_argument("--n-prompt", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None, help="default: physical cores")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--reps", type=int, default=5, help="measured repetitions per side per round (mean)")
    parser.add_argument(
        "--mode",
        choices=["same-process", "separate-processes"],
        default="same-process",
        help="same-process (default): both loops alternate on one loaded model, the precise check; "
        "separate-processes: run_isolated against a bare loop in its own process",
    )
    parser.add_argument("--pairs", type=int, default=20, help="same-process mode: alternating harness/bare pairs")
    args = parser.parse_args()
    if args.n_gen < 2 or args.n_prompt < 1 or args.rounds < 1:
        parser.error("--n-gen must be >= 2, --n-prompt >= 1, --rounds >= 1")
    path = resolve_model(args.model)
    threads = BenchConfig(threads=args.threads).resolved_threads()
    if args.mode == "same-process":
        report_paired(path, args, threads)
        return
    print(
        f"model: {path.name}; pp{args.n_prompt}+tg{args.n_gen}, {threads} threads, {args.rounds} rounds; "
        f"each side: spawned process, 1 warm-up + {args.reps} measured repetitions (mean)",
        flush=True,
    )
    print(
        "decode tok/s = n_gen single-token decode steps / time from first generated token known to last step "
        "done (bench/runner.py's definition, used for both)",
        flush=True,
    )
    harness, bare = [], []
    for index in range(args.rounds):
        seed = 1000 + index
        order = (("harness", run_harness, harness), ("bare", run_bare, bare))
        if index % 2:  # alternate which side goes first, so drift does not favour one
            order = order[::-1]
        for _, run, values in order:
            values.append(run(path, args.n_prompt, args.n_gen, threads, seed, args.reps))
        print(
            f"  round {index + 1} ({order[0][0]} first): harness {harness[-1]:7.1f} tok/s, "
            f"bare generate() {bare[-1]:7.1f} tok/s, ratio {harness[-1] / bare[-1]:.3f}",
            flush=True,
        )
    harness_median, bare_median = statistics.median(harness), statistics.median(bare)
    ratio = harness_median / bare_median
    verdict = f"PASS (>= 1 - {GOAL:.0%})" if ratio >= 1 - GOAL else f"MISS (slower by more than {GOAL:.0%})"
    print(f"median harness decode:          {harness_median:7.1f} tok/s")
    print(f"median bare generate() decode:  {bare_median:7.1f} tok/s")
    print(f"ratio harness/bare: {ratio:.3f}  {verdict}")


def report_paired(path: Path, args: argparse.Namespace, threads: int) -> None:
    """Print the same-process comparison: median of each side and the median of per-pair ratios."""
    print(
        f"model: {path.name}; pp{args.n_prompt}+tg{args.n_gen}, {threads} threads; same process, "
        f"{args.pairs} alternating pairs after a warm-up",
        flush=True,
    )
    print(
        "decode tok/s = n_gen decode steps / time from first generated token known to last step done "
        "(bench/runner.py's decode_steps for the harness; llm.generate() for the bare loop)",
        flush=True,
    )
    rates = run_paired(path, args.n_prompt, args.n_gen, threads, args.pairs)
    ratios = [h / b for h, b in zip(rates["harness"], rates["bare"])]
    ratio = statistics.median(ratios)
    verdict = f"PASS (>= 1 - {GOAL:.0%})" if ratio >= 1 - GOAL else f"MISS (slower by more than {GOAL:.0%})"
    print(f"median harness decode:          {statistics.median(rates['harness']):7.1f} tok/s")
    print(f"median bare generate() decode:  {statistics.median(rates['bare']):7.1f} tok/s")
    print(f"per-pair ratio harness/bare: median {ratio:.3f} (min {min(ratios):.3f}, max {max(ratios):.3f})  {verdict}")


if __name__ == "__main__":
    main()
