"""Speed check behind `slmlab validate`'s light-load gap: a lone prompt step (32 tokens, SmolLM2, the validation's
engine) run straight after the previous step, or after the server has idled for a pause, as a lightly loaded server
does between requests. The service curve is measured back to back, so it cannot see what idling costs.

Prints the median and mean step time after each pause and their ratio to no pause (measured interleaved in one run,
rounds of 8 steps each, so a drifting machine moves them alike).

    .venv/bin/python perf/idle_step.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.batched import lone_prompt_step
from bench.engine import Engine, EngineConfig
from slmlab.models import resolve_model

SLOTS = 4
PAUSES = (0.0, 0.05, 0.3, 1.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", default="smollm2-135m")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    config = EngineConfig(n_ctx=SLOTS * 50, threads=1, n_seq_max=SLOTS, kv_unified=True)  # as `slmlab validate`
    times: dict[float, list[float]] = {p: [] for p in PAUSES}
    with Engine(resolve_model(args.model), config) as engine:
        for _ in range(args.rounds):
            for pause in PAUSES:
                times[pause] += [lone_prompt_step(engine, SLOTS, 32, pause, rng) for _ in range(8)]
    base = float(np.median(times[0.0]))
    for pause, seconds in times.items():
        median, mean = float(np.median(seconds)) * 1000, float(np.mean(seconds)) * 1000
        print(f"after {pause:4.2f} s idle: median {median:6.1f} ms, mean {mean:6.1f} ms, median / no pause "
              f"{median / base / 1000:.3f} ({len(seconds)} steps)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
