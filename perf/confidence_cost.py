"""Speed check for confidence scoring: what knowing the answer's probability costs over plain greedy generation.

Goal (issue 4): confidence scoring costs at most 1.2x a plain greedy generation of the same answer. For each
banking77 test message (0-shot prompt, 77 labels), in the same process and on the same loaded model:

  scorer  bench.decoding.ModelSession.classify: label-trie constrained greedy walk reading the last position's
          logits in place, softmax over the allowed tokens, probability of the chosen label (logits_all off)
  plain   llama-cpp-python's own Llama.generate(tokens, temp=0.0), taking as many tokens as the scorer's answer
          has (its greedy sampler chain; no confidence, no constraint)
  naive   a second Llama with logits_all=True, create_completion(prompt tokens, max_tokens=same, temperature=0,
          logprobs=1): logits for every prompt position are copied out, which is what costs

The three alternate request by request, so machine noise hits them alike. Two cache regimes are measured:
`cold` (KV cache cleared before every request: the full ~600-token prompt is evaluated) and `warm` (the
shared instructions stay cached, as in an evaluation run: only the message and the answer are evaluated).
Printed: median milliseconds per request, and the ratios scorer/plain (goal <= 1.2) and naive/plain.

    .venv/bin/python perf/confidence_cost.py [--model smollm2-135m] [--requests 30] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.decoding import ModelSession
from bench.tasks import get_task
from slmlab.models import resolve_model

GOAL = 1.2


def _keep_only(llm, keep: int) -> None:
    """Drop the KV cache after the first `keep` positions (0: clear it), so every side starts alike."""
    if keep == 0:
        llm.reset()
        llm._ctx.kv_cache_clear()
    elif llm.n_tokens > keep:
        llm._ctx.kv_cache_seq_rm(-1, keep, -1)
        llm.n_tokens = keep


def measure(model: str, requests: int, threads: int, n_ctx: int = 2048) -> dict[str, dict[str, float]]:
    """Median ms per request of scorer, plain and naive in both cache regimes."""
    from llama_cpp import Llama

    path = str(resolve_model(model))
    llm = Llama(model_path=path, n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads, verbose=False)
    naive_llm = Llama(
        model_path=path, n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads, logits_all=True, verbose=False
    )
    session = ModelSession(llm)
    task = get_task("banking77")
    trie = session.label_trie(task.labels)
    examples = task.examples("test")[:: max(1, 3080 // requests)][:requests]
    times: dict[str, dict[str, list[float]]] = {r: {"scorer": [], "plain": [], "naive": []} for r in ("cold", "warm")}

    def plain(tokens: list[int], n: int) -> None:
        for i, _ in enumerate(llm.generate(tokens, temp=0.0), start=1):
            if i >= n:
                break

    def naive(tokens: list[int], n: int) -> None:
        naive_llm.create_completion(tokens, max_tokens=n, temperature=0.0, logprobs=1)

    prompts = [session.tokens(task.prompt(example, [])) for example in examples]
    shared = next(i for i, (a, b) in enumerate(zip(prompts[0], prompts[1])) if a != b)
    for regime in ("cold", "warm"):
        keep = 0 if regime == "cold" else shared
        for instance in (llm, naive_llm):  # warm: the shared instructions are already in both caches
            _keep_only(instance, 0)
            if keep:
                instance.eval(prompts[0][:keep])
        for index, tokens in enumerate(prompts):
            _keep_only(llm, keep)
            started = time.perf_counter()
            answer = session.classify(tokens, trie)
            times[regime]["scorer"].append(time.perf_counter() - started)
            n = max(1, answer.output_tokens)
            steps = (("plain", lambda t=tokens, k=n: plain(t, k)), ("naive", lambda t=tokens, k=n: naive(t, k)))
            for name, run in steps if index % 2 == 0 else steps[::-1]:
                _keep_only(naive_llm if name == "naive" else llm, keep)
                started = time.perf_counter()
                run()
                times[regime][name].append(time.perf_counter() - started)
    return {
        regime: {name: statistics.median(values) * 1000 for name, values in sides.items()}
        for regime, sides in times.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    figures = measure(args.model, args.requests, args.threads)
    passed = True
    print(f"{args.model}, banking77 0-shot, {args.requests} requests, {args.threads} threads; median ms per request")
    for regime, sides in figures.items():
        ratio, naive_ratio = sides["scorer"] / sides["plain"], sides["naive"] / sides["plain"]
        passed &= ratio <= GOAL
        print(
            f"  {regime:4}  plain {sides['plain']:8.1f}   scorer {sides['scorer']:8.1f}   naive {sides['naive']:8.1f}"
            f"   scorer/plain {ratio:5.2f} (goal <= {GOAL})   naive/plain {naive_ratio:5.2f}"
        )
    print("PASS" if passed else "FAIL")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
