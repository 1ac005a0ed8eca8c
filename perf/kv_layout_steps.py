"""Speed check behind `slmlab validate`'s engine: decode steps of the same sequences with their slots in order (0, 1,
... as a benchmark's are) or scattered (as a serving engine's become once requests come and go), with one KV cache per
slot (llama.cpp's default for a context of several sequences) and with one cache shared by the slots (llama-server's
default slots). With a cache per slot llama.cpp computes a step in one piece per run of consecutive slot ids in the
batch, so scattered slots cost a step up to one extra pass over the weights; a shared cache computes it in one.

Prints, for each layout, the median step time in order and scattered, and their ratio (measured interleaved in one
run, so a drifting machine moves both alike). The validation uses the shared cache.

    .venv/bin/python perf/kv_layout_steps.py [--rounds 5] [--model smollm2-135m]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import deque
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.batched import BatchedServer
from bench.engine import Engine, EngineConfig
from slmlab.models import resolve_model

SLOTS = 4
CELLS = 50  # per slot: 32 prompt tokens + 17 generated, as in `slmlab validate`'s default caps


def step_ms(engine: Engine, slots: list[int], rng: np.random.Generator, steps: int = 16) -> list[float]:
    """Decode step times (ms) of len(slots) sequences placed in these slots, batch order as admitted."""
    engine.clear()
    server = BatchedServer(engine, SLOTS)
    server.free = deque([*slots, *(s for s in range(SLOTS) if s not in slots)])
    for _ in slots:
        server.submit(rng.integers(0, engine.n_vocab, size=32, dtype=np.int32), steps + 1)
    server.step()  # prompts
    times = []
    while server.active:
        started = time.perf_counter()
        server.step()
        times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--model", default="smollm2-135m")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    shapes = {"2 sequences": ([0, 1], [0, 2]), "4 sequences": ([0, 1, 2, 3], [2, 0, 3, 1])}
    for unified, name in ((False, "one KV cache per slot"), (True, "one KV cache shared by the slots")):
        config = EngineConfig(n_ctx=SLOTS * CELLS, threads=1, n_seq_max=SLOTS, kv_unified=unified)
        with Engine(resolve_model(args.model), config) as engine:
            for shape, (in_order, scattered) in shapes.items():
                a, b = [], []
                for _ in range(args.rounds):
                    a += step_ms(engine, in_order, rng)
                    b += step_ms(engine, scattered, rng)
                ordered, spread = float(np.median(a)), float(np.median(b))
                print(
                    f"{name:34s} {shape}: slots {in_order} {ordered:6.2f} ms, slots {scattered} {spread:6.2f} ms, "
                    f"ratio {spread / ordered:.2f} ({len(a)} steps each)",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
