"""Speed check for the routing replay: the embedded Azure conversation trace volume-scaled to about 1 million
requests, replayed through every registered policy, against a straightforward per-request Python loop that
implements the cascade policy (small model through a FIFO queue, escalate below the threshold), in the same run.
Goals: all policies over 1M requests in at most 10 s; the vectorised cascade at least 50x the loop; with local
models served by batched deployments (issue 16), one sizing search in at most 30 s and every policy on the sized
fleet in at most 10 s, printed beside the FIFO engine.

    .venv/bin/python perf/replay_speed.py [--requests 1000000] [--servers 1]

It uses a temporary database (the default traces are imported into it), so it never touches results/.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from numba import njit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.workflows import build_inputs
from simulators.catalog import PortfolioModel
from simulators.deployment import DEFAULT_SLO, Slo, size_fleet
from simulators.inputs import ReplayConfig, ReplayInputs
from simulators.policies.cascade import Cascade
from simulators.policies.registry import parse_policies
from simulators.replay import Outcome, replay_policy, run_policies
from slmlab.allocator import keep_freed_memory
from slmlab.traces.defaults import DEFAULT_TRACES, ensure_default_workloads


def request_records(inputs: ReplayInputs) -> list[dict[str, object]]:
    """The trace as a per-request simulator holds it: one record per request (built before the timing starts)."""
    small, big = inputs.small, inputs.frontier
    columns = {
        "arrival_s": inputs.arrival_s,
        "input_tokens": inputs.input_tokens,
        "output_tokens": inputs.output_tokens,
        "confidence": inputs.confidence[:, small],
        "small_correct": inputs.correct[:, small],
        "big_correct": inputs.correct[:, big],
        "small_permitted": inputs.permitted[:, small],
        "big_permitted": inputs.permitted[:, big],
    }
    names = list(columns)
    return [dict(zip(names, values)) for values in zip(*(c.tolist() for c in columns.values()))]


def cascade_loop(
    requests: list[dict[str, object]], small: PortfolioModel, big: PortfolioModel, threshold: float
) -> list[dict[str, object]]:
    """The cascade written the obvious way: one request at a time, prices and speeds from the portfolio entries,
    one FIFO server, and the same per-request result the vectorised engine gives."""
    results = []
    server_free = 0.0
    for r in requests:
        arrival, tokens_in, tokens_out = r["arrival_s"], r["input_tokens"], r["output_tokens"]
        prefill = tokens_in / small.prefill_tok_s.value
        start = max(arrival, server_free)
        server_free = start + prefill + tokens_out / small.output_tok_s.value
        wait = start - arrival
        small_cost = small.cost_usd(tokens_in, tokens_out)
        if r["confidence"] >= threshold:
            results.append(
                {
                    "model": small.name,
                    "cost_usd": small_cost,
                    "queue_wait_s": wait,
                    "ttft_s": wait + prefill,
                    "latency_s": server_free - arrival,
                    "wasted_tokens": 0,
                    "correct": r["small_correct"],
                    "residency_violation": not r["small_permitted"],
                }
            )
        else:
            first_token = big.ttft_ms.value / 1000
            results.append(
                {
                    "model": big.name,
                    "cost_usd": small_cost + big.cost_usd(tokens_in, tokens_out),
                    "queue_wait_s": wait,
                    "ttft_s": server_free + first_token - arrival,
                    "latency_s": server_free + first_token + tokens_out / big.output_tok_s.value - arrival,
                    "wasted_tokens": tokens_in + tokens_out,
                    "correct": r["big_correct"],
                    "residency_violation": not (r["small_permitted"] and r["big_permitted"]),
                }
            )
    return results


def vectorised_cascade(inputs: ReplayInputs, cascade: Cascade) -> Outcome:
    """The same work: route, queue, and price, time and charge every attempt (the engine prices each attempt
    from the model's rates and the request's tokens where it charges it, as the loop does; both read the
    realised answers, confidences and residency verdicts of the replay inputs)."""
    return replay_policy(inputs, cascade)


@njit(cache=True)
def fused_cascade(
    arrival,
    tokens_in,
    tokens_out,
    confidence,
    small_correct,
    big_correct,
    small_permitted,
    big_permitted,
    threshold,
    small_prices,
    big_prices,
    prefill,
    decode,
    big_first_token,
    big_decode,
):  # pragma: no cover - compiled
    """The bound on compiled speed: the same cascade hand-fused into one machine-code pass for exactly this case
    (two models, one server), writing the same per-request results as the loop. No policy, registry or engine."""
    n = arrival.size
    cost, wait, ttft, latency = np.empty(n), np.empty(n), np.empty(n), np.empty(n)
    wasted, model = np.empty(n), np.empty(n, dtype=np.int16)
    correct, violation = np.empty(n, dtype=np.bool_), np.empty(n, dtype=np.bool_)
    free = 0.0
    for i in range(n):
        first = tokens_in[i] / prefill
        start = arrival[i] if arrival[i] > free else free
        free = start + first + tokens_out[i] / decode
        wait[i] = start - arrival[i]
        small_cost = (tokens_in[i] * small_prices[0] + tokens_out[i] * small_prices[1]) / 1e6
        if confidence[i] >= threshold:
            model[i], cost[i], ttft[i], latency[i] = 0, small_cost, wait[i] + first, free - arrival[i]
            wasted[i], correct[i], violation[i] = 0.0, small_correct[i], not small_permitted[i]
        else:
            model[i] = 1
            cost[i] = small_cost + (tokens_in[i] * big_prices[0] + tokens_out[i] * big_prices[1]) / 1e6
            ttft[i] = free + big_first_token - arrival[i]
            latency[i] = free + big_first_token + tokens_out[i] / big_decode - arrival[i]
            wasted[i], correct[i] = tokens_in[i] + tokens_out[i], big_correct[i]
            violation[i] = not (small_permitted[i] and big_permitted[i])
    return model, cost, wait, ttft, latency, wasted, correct, violation


def run_fused(inputs: ReplayInputs, threshold: float) -> tuple[np.ndarray, ...]:
    """`fused_cascade` on the replay inputs, with the prices and speeds of the portfolio entries."""
    small, big = inputs.portfolio.models[inputs.small], inputs.portfolio.models[inputs.frontier]

    def prices(model: PortfolioModel) -> np.ndarray:
        return np.array([model.input_usd_per_mtok.value or 0.0, model.output_usd_per_mtok.value or 0.0])

    s, b = inputs.small, inputs.frontier
    return fused_cascade(
        inputs.arrival_s,
        inputs.input_tokens,
        inputs.output_tokens,
        inputs.confidence[:, s],
        inputs.correct[:, s],
        inputs.correct[:, b],
        inputs.permitted[:, s],
        inputs.permitted[:, b],
        threshold,
        prices(small),
        prices(big),
        small.prefill_tok_s.value,
        small.output_tok_s.value,
        (big.ttft_ms.value or 0.0) / 1000,
        big.output_tok_s.value,
    )


def agree(outcome: Outcome, results: list[dict[str, object]]) -> bool:
    """Both give the same cost, latency, wait, correctness and residency verdict for every request."""

    def column(name: str) -> np.ndarray:
        return np.array([r[name] for r in results])

    return (
        np.allclose(column("cost_usd"), outcome.cost_usd)
        and np.allclose(column("latency_s"), outcome.latency_s)
        and np.allclose(column("queue_wait_s"), outcome.queue_wait_s)
        and np.allclose(column("ttft_s"), outcome.ttft_s)
        and np.array_equal(column("correct"), outcome.correct)
        and np.array_equal(column("residency_violation"), outcome.residency_violation)
        and np.allclose(column("wasted_tokens"), outcome.wasted_tokens)
    )


def batched_checks(inputs: ReplayInputs, policies: list, fifo_s: float) -> None:
    """Issue 16's goals beside the FIFO engine: one sizing search (small-only's local model, every request, to the
    default SLO) in <= 30 s, then every policy with batched deployments of that many servers in <= 10 s."""
    small = inputs.model_names[inputs.small]
    slo = Slo.parse(DEFAULT_SLO)
    deployment = replace(inputs.deployments[small], servers=None, slo=slo)
    started = time.perf_counter()
    sizing, _ = size_fleet(deployment, slo, inputs.arrival_s, inputs.input_tokens, inputs.output_tokens)
    sizing_s = time.perf_counter() - started
    print(
        f"  sizing search, {small} on all {inputs.n:,} requests to {slo}: {sizing_s:.2f} s, {sizing.probes} fleets "
        f"simulated -> {sizing.servers:,} servers of {deployment.slots} slots (goal <= 30 s: "
        f"{'PASS' if sizing_s <= 30 else 'FAIL'})"
    )
    fleets = {m: replace(d, servers=sizing.servers, slo=None) for m, d in inputs.deployments.items()}
    started = time.perf_counter()
    result = run_policies(replace(inputs, deployments=fleets), policies)
    batched_s = time.perf_counter() - started
    overloaded = [label for label, s in result.summaries.items() if s.overloaded]
    print(
        f"  replay of every policy, batched deployments ({sizing.servers:,} servers a local model): {batched_s:.2f} s "
        f"= {batched_s / fifo_s:.1f}x the FIFO engine (goal <= 10 s: {'PASS' if batched_s <= 10 else 'FAIL'}; "
        f"overloaded: {', '.join(overloaded) or 'none'})"
    )


def main() -> int:
    keep_freed_memory()  # as the CLI and the dashboard do at their start
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--servers", type=int, default=1, help="local replicas (the loop models one; compare at 1)")
    parser.add_argument("--repeat", type=int, default=5, help="timed rounds of the cascade comparison (median)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "replay_speed.duckdb"
        ensure_default_workloads(db)
        trace = DEFAULT_TRACES[0].stem
        base_rows = build_inputs(ReplayConfig(trace), db=db).n
        started = time.perf_counter()
        config = ReplayConfig(trace, volume=args.requests / base_rows, servers=args.servers, size_to=None)
        deployed = build_inputs(config, db=db)
        load_s = time.perf_counter() - started
        inputs = replace(deployed, deployments={})  # the FIFO engine: one request at a time per server
        policies = parse_policies("all")
        started = time.perf_counter()
        result = run_policies(inputs, policies)
        replay_s = time.perf_counter() - started
        n = inputs.n
        print(f"trace '{trace}' x{args.requests / base_rows:.2f} volume = {n:,} requests, {len(policies)} policies")
        print(f"  inputs (load from DuckDB, quality, realise, price): {load_s:.2f} s")
        print(
            f"  replay of every policy with metrics, FIFO servers:   {replay_s:.2f} s  "
            f"= {n * len(policies) / replay_s:,.0f} request-policies/s  (goal <= 10 s: "
            f"{'PASS' if replay_s <= 10 else 'FAIL'}; with loading {load_s + replay_s:.2f} s)"
        )
        batched_checks(deployed, policies, replay_s)

        cascade = Cascade()
        records = request_records(inputs)
        small, big = inputs.portfolio.models[inputs.small], inputs.portfolio.models[inputs.frontier]
        vector_times, loop_times, fused_times = [], [], []
        run_fused(inputs, cascade.threshold)  # compile (or load the cached machine code) outside the timings
        for round_ in range(args.repeat):  # alternate rounds, take the median of each
            gc.collect()
            started = time.perf_counter()
            outcome = vectorised_cascade(inputs, cascade)
            vector_times.append(time.perf_counter() - started)
            if round_:
                del results  # noqa: F821 (set by the previous round)  outside the timings: freeing a million records is neither side's work
            gc.collect()
            started = time.perf_counter()
            results = cascade_loop(records, small, big, cascade.threshold)
            loop_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            fused = run_fused(inputs, cascade.threshold)
            fused_times.append(time.perf_counter() - started)
        vector_s, loop_s = statistics.median(vector_times), statistics.median(loop_times)
        same = agree(outcome, results) if args.servers == 1 else True  # the loop models one server
        print(f"  cascade, vectorised: {vector_s:.3f} s = {n / vector_s:,.0f} requests/s")
        print(
            f"  cascade, per-request Python loop: {loop_s:.3f} s = {n / loop_s:,.0f} requests/s "
            f"(same per-request cost, wait, TTFT, latency, correctness, residency: {'yes' if same else 'NO'})"
        )
        print(
            f"  ratio vectorised / loop: {loop_s / vector_s:.1f}x (goal >= 50x: "
            f"{'PASS' if loop_s / vector_s >= 50 else 'FAIL'})"
        )
        fused_s = statistics.median(fused_times)
        fused_same = args.servers > 1 or (
            np.allclose(fused[1], outcome.cost_usd)
            and np.allclose(fused[4], outcome.latency_s)
            and np.array_equal(fused[6], outcome.correct)
        )
        print(
            f"  bound: the cascade hand-fused into one compiled pass for this one case: {fused_s:.3f} s = "
            f"{loop_s / fused_s:.1f}x the loop (same results: {'yes' if fused_same else 'NO'})"
        )
        print(f"  frontier-only cost over {n:,} requests: ${result.summaries['frontier-only'].cost_usd:,.2f}")
        return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
