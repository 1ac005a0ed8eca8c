"""Diagnostic behind `slmlab validate`'s step check: one play of a slice of the embedded conversation trace through
the validation's engine (SmolLM2, 4 slots, shared KV cache, 1 thread) with the curve measured just before it, and
every real step's time against the serving model's cost of that step, by kind of step: how far the machine's
speed drifts between the curve and the play, and how heavy the tail of slow steps is.

    .venv/bin/python perf/play_steps.py [--slice 160] [--load 0.3]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.engine import Engine, EngineConfig
from bench.validation import measured_curve, play, scaled_arrivals, step_costs
from slmlab.models import resolve_model
from slmlab.traces.defaults import DEFAULT_TRACES, ensure_default_trace
from slmlab.validations import trace_slice

SLOTS, MAX_IN, MAX_OUT = 4, 32, 16


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slice", type=int, default=160)
    parser.add_argument("--load", type=float, default=0.3)
    parser.add_argument("--db", default=None)
    args = parser.parse_args()
    trace = DEFAULT_TRACES[0].stem
    ensure_default_trace(trace, args.db)
    rows = trace_slice(trace, 0, args.slice, db=args.db)
    recorded = np.array([r[0] for r in rows])
    tokens_in = np.clip(np.array([r[1] for r in rows], dtype=np.float64), 1, MAX_IN)
    tokens_out = np.clip(np.array([r[2] for r in rows], dtype=np.float64), 1, MAX_OUT)
    config = EngineConfig(n_ctx=SLOTS * (MAX_IN + MAX_OUT + 2), threads=1, n_seq_max=SLOTS, kv_unified=True)
    rng = np.random.default_rng(1)
    with Engine(resolve_model("smollm2-135m"), config) as engine:
        curve = measured_curve(engine, SLOTS, MAX_IN, MAX_OUT, seed=1)
        arrival, _ = scaled_arrivals(recorded, tokens_in, tokens_out, curve, SLOTS, args.load)
        prompts = [rng.integers(0, engine.n_vocab, size=int(n), dtype=np.int32) for n in tokens_in]
        _, _, steps = play(engine, SLOTS, arrival, prompts, tokens_out)
    decoding, _, admitted, seconds, idle = steps.T
    running = decoding.astype(int)
    ratio = seconds / step_costs(steps, curve, SLOTS)
    print(f"{args.slice} requests at load {args.load:g}: {len(steps):,} steps; real step / model cost:")
    kinds = {
        "prompts after an idle gap > 0.2 s": (admitted > 0) & (idle > 0.2),
        "prompts on a busy server": (admitted > 0) & (idle == 0),
        "decode, 1 sequence": (admitted == 0) & (running == 1),
        "decode, 2 sequences": (admitted == 0) & (running == 2),
        "decode, 3+ sequences": (admitted == 0) & (running >= 3),
    }
    for name, mask in kinds.items():
        if mask.any():
            r = ratio[mask]
            print(f"  {name:36s} n {mask.sum():5,d}  median {np.median(r):.3f}  mean {r.mean():.3f}  "
                  f"p90 {np.percentile(r, 90):.2f}  max {r.max():.2f}")  # fmt: skip
    print(f"  all steps: total {seconds.sum() / (seconds / ratio).sum():.3f}, median {np.median(ratio):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
