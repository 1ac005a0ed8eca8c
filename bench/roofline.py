"""Memory-bandwidth roofline for decode: a token reads every weight and the KV cache once (tok/s <= GB/s / GB read)."""

from __future__ import annotations

import contextlib
import math
import numbers
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import psutil

GB = 1e9
MB = 1_000_000
TRIAD_SCALAR = 3.0
# Bytes per cached K/V element for llama.cpp cache types (q8_0: 32 int8 + f16 scale per block; q4_0: 16 B + f16 scale).
KV_TYPE_BYTES: dict[str, float] = {"f16": 2.0, "q8_0": 34 / 32, "q4_0": 18 / 32, "f32": 4.0}

Chunks = list[np.ndarray]


@dataclass(frozen=True)
class Bandwidth:
    """Best-of-N STREAM-like bandwidth, with every sample kept so noise is visible."""

    read_gb_s: float
    triad_gb_s: float
    threads: int
    array_bytes: int
    repetitions: int
    samples_read_gb_s: tuple[float, ...]
    samples_triad_gb_s: tuple[float, ...]
    method: str

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for JSON / DuckDB rows."""
        return asdict(self)


@dataclass(frozen=True)
class DecodeCeiling:
    """Upper bound on decode tok/s when every token streams weights + KV cache from memory."""

    bytes_per_token: int
    weights_bytes: int
    kv_bytes_per_token_at_depth: int
    depth: int
    bandwidth_gb_s: float
    ceiling_tok_s: float


def _require(ok: bool, message: str) -> None:
    """Raise ValueError with `message` unless `ok`; keeps each check to one line."""
    if not ok:
        raise ValueError(message)


def _require_int(name: str, value: int, minimum: int = 1) -> None:
    """Counts and sizes must be whole (numpy ints allowed) and >= `minimum`; bool is rejected: True == 1 hides bugs."""
    _require(
        isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= minimum,
        f"{name} must be an integer >= {minimum}, got {value!r}",
    )


def _require_finite(name: str, value: float, *, positive: bool) -> None:
    """Rates must be real numbers; NaN/inf would silently poison every ratio downstream."""
    _require(isinstance(value, (int, float)) and math.isfinite(value), f"{name} must be a finite number, got {value!r}")
    if positive:
        _require(value > 0, f"{name} must be > 0, got {value!r}")
    else:
        _require(value >= 0, f"{name} must be >= 0, got {value!r}")


def default_threads() -> int:
    """Physical cores: hyperthreads share a core's load ports, so they add no bandwidth."""
    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


def _split(array: np.ndarray, threads: int) -> Chunks:
    """Contiguous views, one per thread, so each thread streams its own address range."""
    return np.array_split(array, threads)


def _timed_parallel(pool: ThreadPoolExecutor, kernel: Callable[[int], object], threads: int) -> float:
    """Wall-clock seconds for all chunks to finish: bandwidth is limited by the slowest thread."""
    start = time.perf_counter()
    for future in [pool.submit(kernel, i) for i in range(threads)]:
        future.result()
    return max(time.perf_counter() - start, 1e-9)


def _best_of(
    pool: ThreadPoolExecutor, kernel: Callable[[int], object], threads: int, bytes_moved: int, repetitions: int
) -> tuple[float, ...]:
    """Warm once (page faults, thread start-up), then time each repetition as GB/s."""
    _timed_parallel(pool, kernel, threads)
    return tuple(bytes_moved / _timed_parallel(pool, kernel, threads) / GB for _ in range(repetitions))


def _method(threads: int, array_bytes: int, repetitions: int) -> str:
    """Say exactly what was counted so figures can be compared with STREAM results."""
    return (
        f"numpy STREAM-like, {threads} thread(s) over contiguous chunks of {array_bytes / MB:.0f} MB float64 "
        f"arrays, best of {repetitions} after one warm-up. read: np.add.reduce, counts 8 B/element. triad: a = b "
        f"+ s*c as "
        f"np.multiply(c, s, out=tmp); np.add(b, tmp, out=a), counts the STREAM convention 24 B/element "
        f"(real traffic is ~40 B/element from the tmp round trip, more with write-allocate), so triad is a lower bound."
    )


def measure_bandwidth(threads: int | None = None, array_mb: int = 256, repetitions: int = 5) -> Bandwidth:
    """Measure sustained DRAM bandwidth; arrays far exceed caches so the cache cannot flatter the result."""
    threads = default_threads() if threads is None else threads
    for name, value in (("threads", threads), ("array_mb", array_mb), ("repetitions", repetitions)):
        _require_int(name, value)
    n = array_mb * MB // 8
    _require(n >= threads, f"array_mb={array_mb} gives {n} elements, fewer than threads={threads}")
    a, b, c, tmp = (np.full(n, value) for value in (0.0, 1.0, 2.0, 0.0))  # np.full writes, so pages are touched
    a_, b_, c_, tmp_ = (_split(x, threads) for x in (a, b, c, tmp))

    def read(i: int) -> object:
        return np.add.reduce(b_[i])

    def triad(i: int) -> None:
        np.multiply(c_[i], TRIAD_SCALAR, out=tmp_[i])
        np.add(b_[i], tmp_[i], out=a_[i])

    with ThreadPoolExecutor(max_workers=threads) as pool:
        read_samples = _best_of(pool, read, threads, b.nbytes, repetitions)
        triad_samples = _best_of(pool, triad, threads, 3 * a.nbytes, repetitions)
    return Bandwidth(
        max(read_samples),
        max(triad_samples),
        threads,
        int(a.nbytes),
        repetitions,
        read_samples,
        triad_samples,
        _method(threads, int(a.nbytes), repetitions),
    )


def kv_cache_bytes(
    n_layer: int, n_embd_k_gqa: int, n_embd_v_gqa: int, depth: int, bytes_per_element: float = 2.0
) -> int:
    """K and V bytes one decode step reads at context `depth`: attention reads every cached position of every layer."""
    _require_int("n_layer", n_layer)
    _require_int("n_embd_k_gqa", n_embd_k_gqa)
    _require_int("n_embd_v_gqa", n_embd_v_gqa)
    _require_int("depth (tokens already in context)", depth, minimum=0)
    _require_finite("bytes_per_element", bytes_per_element, positive=True)
    return round(int(n_layer) * int(depth) * int(n_embd_k_gqa + n_embd_v_gqa) * float(bytes_per_element))


def decode_ceiling(weights_bytes: int, bandwidth_gb_s: float, kv_bytes: int = 0, depth: int = 0) -> DecodeCeiling:
    """Roofline for decode: no kernel beats bandwidth / bytes read a token (`depth` labels where kv_bytes came from)."""
    _require_int("weights_bytes", weights_bytes)
    _require_finite("bandwidth_gb_s", bandwidth_gb_s, positive=True)
    _require_int("kv_bytes", kv_bytes, minimum=0)
    _require_int("depth", depth, minimum=0)
    per_token = int(weights_bytes) + int(kv_bytes)
    return DecodeCeiling(
        per_token, int(weights_bytes), int(kv_bytes), int(depth), float(bandwidth_gb_s), bandwidth_gb_s * GB / per_token
    )


def efficiency(measured_tok_s: float, ceiling: DecodeCeiling) -> float:
    """Fraction of the roofline achieved: how much headroom an engine or quant change could still win."""
    _require_finite("measured_tok_s", measured_tok_s, positive=False)
    _require(ceiling.ceiling_tok_s > 0, f"ceiling.ceiling_tok_s must be > 0, got {ceiling.ceiling_tok_s!r}")
    return measured_tok_s / ceiling.ceiling_tok_s


# --- device-correct ceilings ---------------------------------------------------------------------------------------
LATENCY_BOUND_BELOW = 0.25  # decode under a quarter of the memory ceiling is limited by per-token latency, not bytes


class RooflineError(ValueError):
    """A measured speed above its memory ceiling: the ceiling (or the measurement) is wrong, never the figure."""


@dataclass(frozen=True)
class DeviceBandwidth:
    """Read bandwidth of one memory that holds weights, and how it was obtained."""

    device: str  # "cpu" or "gpu:<index>"
    gb_s: float
    source: str  # "measured" (a probe ran) or "spec" (from the device's reported bus width and memory clock)
    note: str


def gpu_spec_bandwidth(bus_width_bits: int, memory_clock_mhz: float, *, transfers_per_clock: int = 2) -> float:
    """GB/s from the memory bus width and memory clock NVML reports (double data rate: two transfers a clock)."""
    _require_int("bus_width_bits", bus_width_bits)
    _require_finite("memory_clock_mhz", memory_clock_mhz, positive=True)
    return bus_width_bits / 8 * memory_clock_mhz * 1e6 * transfers_per_clock / GB


def nvml_bandwidth(index: int = 0) -> DeviceBandwidth | None:
    """The GPU's spec bandwidth from NVML (bus width x max memory clock x 2), or None without NVML."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # no library, no driver
        return None
    try:
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        width = int(pynvml.nvmlDeviceGetMemoryBusWidth(handle))
        clock = float(pynvml.nvmlDeviceGetMaxClockInfo(handle, pynvml.NVML_CLOCK_MEM))
        gb_s = gpu_spec_bandwidth(width, clock)
        return DeviceBandwidth(
            f"gpu:{index}",
            gb_s,
            "spec",
            f"NVML: {width}-bit bus x {clock:.0f} MHz max memory clock x 2 transfers/clock",
        )
    except Exception:
        return None
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()


def offloaded_fraction(n_gpu_layers: int, n_layer: int) -> float:
    """Share of the repeating layers (and so of the weight bytes) on the GPU: -1 or >= n_layer means all."""
    _require_int("n_layer", n_layer)
    if n_gpu_layers < 0 or n_gpu_layers >= n_layer:
        return 1.0
    return n_gpu_layers / n_layer


@dataclass(frozen=True)
class SplitCeiling:
    """Decode ceiling when weights (and their KV cache) sit partly in CPU memory and partly on a GPU: each token
    streams the CPU share at CPU bandwidth, then the GPU share at GPU bandwidth, one after the other."""

    bytes_per_token: int
    cpu_bytes: int
    gpu_bytes: int
    cpu: DeviceBandwidth
    gpu: DeviceBandwidth | None
    ceiling_tok_s: float
    seconds_per_token: float


def split_ceiling(
    bytes_per_token: int, fraction_on_gpu: float, cpu: DeviceBandwidth, gpu: DeviceBandwidth | None
) -> SplitCeiling:
    """Per-token time = CPU bytes / CPU bandwidth + GPU bytes / GPU bandwidth."""
    _require_int("bytes_per_token", bytes_per_token)
    _require(0.0 <= fraction_on_gpu <= 1.0, f"fraction_on_gpu must be within 0..1, got {fraction_on_gpu!r}")
    _require(fraction_on_gpu == 0.0 or gpu is not None, "weights on a GPU need the GPU's bandwidth")
    gpu_bytes = round(bytes_per_token * fraction_on_gpu)
    cpu_bytes = bytes_per_token - gpu_bytes
    # gpu_bytes > 0 only when fraction_on_gpu > 0, which _require above allows only with a GPU bandwidth
    seconds = cpu_bytes / (cpu.gb_s * GB) + (gpu_bytes / (gpu.gb_s * GB) if gpu is not None and gpu_bytes else 0.0)
    return SplitCeiling(bytes_per_token, cpu_bytes, gpu_bytes, cpu, gpu, 1.0 / seconds, seconds)


def judge_decode(measured_tok_s: float, ceiling: SplitCeiling) -> dict[str, Any]:
    """Efficiency against the device-correct ceiling; over 100% raises, far under it is labelled latency-bound."""
    _require_finite("measured_tok_s", measured_tok_s, positive=True)
    share = measured_tok_s / ceiling.ceiling_tok_s
    if share > 1.0:
        devices = " + ".join(
            d.device + f" {d.gb_s:,.0f} GB/s ({d.source})" for d in (ceiling.cpu, ceiling.gpu) if d is not None
        )
        raise RooflineError(
            f"decode {measured_tok_s:,.1f} tok/s exceeds the memory ceiling "
            f"{ceiling.ceiling_tok_s:,.1f} tok/s ({devices}): the bandwidth is under-estimated or "
            f"the weights are not where the run says"
        )
    per_token_ms = 1000.0 / measured_tok_s
    bound = "latency-bound" if share < LATENCY_BOUND_BELOW else "memory-bound"
    note = (
        f"{share:.0%} of the memory ceiling; each token takes {per_token_ms:.2f} ms where streaming its bytes "
        f"would take {ceiling.seconds_per_token * 1000:.3f} ms"
    )
    if bound == "latency-bound":
        note += (
            f" (under {LATENCY_BOUND_BELOW:.0%}: per-token overheads such as kernel launches, synchronisation "
            "and thread wake-ups dominate, not memory traffic)"
        )
    return {"efficiency": share, "bound": bound, "per_token_ms": per_token_ms, "note": note}


if __name__ == "__main__":
    import json

    print(json.dumps(measure_bandwidth().as_dict(), indent=2))
