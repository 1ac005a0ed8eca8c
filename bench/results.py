"""Run a benchmark end to end and keep it: model metadata, hardware census, isolated run, roofline, storage.

A run is stored only when it finished: one transaction writes the run and its raw samples, so a crashed or
refused run leaves nothing half-written.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.hardware import take_census
from bench.roofline import (
    KV_TYPE_BYTES,
    Bandwidth,
    DeviceBandwidth,
    RooflineError,
    judge_decode,
    kv_cache_bytes,
    measure_bandwidth,
    nvml_bandwidth,
    offloaded_fraction,
    split_ceiling,
)
from bench.runner import BenchConfig, RawRun, run_isolated
from slmlab import __version__, store
from slmlab.models import GGUFMetadata, gguf_metadata, model_name, resolve_model


@dataclass(frozen=True)
class BenchResult:
    """One stored run: what was measured, on what, with what, and how it compares with the memory roofline."""

    run_id: int
    model: GGUFMetadata
    config: BenchConfig
    census: dict[str, object]
    fingerprint: str
    raw: RawRun
    roofline: dict[str, object] | None

    def as_dict(self) -> dict[str, object]:
        """For `--json`: summaries with intervals, ITL percentiles, memory, roofline, provenance."""
        return {
            "run_id": self.run_id,
            "model": {
                "name": model_name(self.model.path),
                "gguf_name": self.model.name,
                "path": self.model.path,
                "sha256": self.model.sha256,
                "architecture": self.model.architecture,
                "parameters": self.model.parameters,
                "quantization": self.model.quantization,
            },
            "test": self.config.test,
            "config": self.config.as_dict(),
            "load_s": self.raw.load_s,
            "metrics": {name: summary.as_dict() for name, summary in self.raw.summaries.items()},
            "inter_token_latency_ms": self.raw.itl_percentiles_ms,
            "peak_rss_bytes": self.raw.peak_rss_bytes,
            "energy": self.raw.energy,
            "roofline": self.roofline,
            "contention": self.raw.contention,
            "fingerprint": self.fingerprint,
            "versions": self.raw.versions,
            "source": "measured",
        }


def probe_bandwidth(threads: int, quick: bool) -> Bandwidth:
    """The memory-bandwidth probe at a run's thread count (shorter arrays and fewer repetitions when quick)."""
    return measure_bandwidth(threads=threads, array_mb=64 if quick else 256, repetitions=3 if quick else 5)


def roofline_for(
    model: GGUFMetadata,
    config: BenchConfig,
    decode_tok_s: float,
    bandwidth: Bandwidth,
    gpu: DeviceBandwidth | None = None,
) -> dict[str, object]:
    """Decode ceiling from the bandwidth of the memory that holds the weights (CPU measured; GPU from NVML's bus
    width x memory clock, labelled "spec"), split by offloaded layers, at the run's mean decode depth.

    An efficiency over 100% is reported as an error with no efficiency, never as a figure; decode far under the
    ceiling is labelled latency-bound with its per-token time.
    """
    depth = config.depth + config.n_prompt + config.n_gen // 2
    widths = model.kv_width
    kv = (
        kv_cache_bytes(model.n_layer, *widths, depth, KV_TYPE_BYTES.get(config.type_k, 2.0))
        if widths and model.n_layer
        else 0
    )
    bytes_per_token = int(model.tensor_bytes) + kv
    on_gpu = offloaded_fraction(config.n_gpu_layers, model.n_layer or 1) if config.n_gpu_layers else 0.0
    cpu = DeviceBandwidth("cpu", bandwidth.read_gb_s, "measured", bandwidth.method)
    if on_gpu and gpu is None:
        gpu = nvml_bandwidth()
    base: dict[str, object] = {
        "bandwidth": bandwidth.as_dict(),
        "bytes_per_token": bytes_per_token,
        "kv_bytes_per_token": kv,
        "depth": depth,
        "fraction_on_gpu": on_gpu,
        "devices": [asdict(d) for d in (cpu, gpu) if d is not None and ((d is cpu and on_gpu < 1) or d is gpu)],
    }
    if on_gpu and gpu is None:
        return base | {
            "ceiling_tok_s": None,
            "efficiency": None,
            "error": "weights were offloaded to a GPU whose "
            "bandwidth is unknown here (NVML did not answer), so there is no ceiling",
        }
    ceiling = split_ceiling(bytes_per_token, on_gpu, cpu, gpu)
    base |= {
        "ceiling_tok_s": ceiling.ceiling_tok_s,
        "cpu_bytes_per_token": ceiling.cpu_bytes,
        "gpu_bytes_per_token": ceiling.gpu_bytes,
        "note": "ceiling = 1 / (CPU-held bytes / CPU bandwidth + GPU-held bytes / GPU bandwidth), bytes = tensor "
        "bytes + KV cache bytes at the mean decode depth, split by the share of layers offloaded",
    }
    try:
        return base | judge_decode(decode_tok_s, ceiling)
    except RooflineError as error:
        return base | {"efficiency": None, "error": str(error)}


def save_run(
    db: str | Path | None,
    model: GGUFMetadata,
    config: BenchConfig,
    census: dict[str, object],
    fingerprint: str,
    raw: RawRun,
    roofline: dict[str, object] | None,
    sweep_id: str | None = None,
) -> int:
    """Store the run, its per-repetition samples and every inter-token latency in one transaction."""
    summary = {name: s.as_dict() for name, s in raw.summaries.items()} | {
        "inter_token_latency_ms": raw.itl_percentiles_ms,
        "energy": raw.energy,
    }
    with store.transaction(db) as con:
        run_id = con.execute(
            "INSERT INTO bench_runs (started_at, source, model_name, model_path, model_sha256, model, test, "
            "config, fingerprint, census, versions, load_s, peak_rss_bytes, summary, roofline, sweep_id, contended, "
            "contention) "
            "VALUES (?, 'measured', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING run_id",
            [
                datetime.now(UTC).replace(tzinfo=None),
                model_name(model.path),
                model.path,
                model.sha256,
                json.dumps(model.as_dict()),
                config.test,
                json.dumps(config.as_dict()),
                fingerprint,
                json.dumps(census),
                json.dumps({**raw.versions, "slmlab": __version__}),
                raw.load_s,
                raw.peak_rss_bytes,
                json.dumps(summary),
                json.dumps(roofline) if roofline else None,
                sweep_id,
                bool(raw.contention.get("contended")) if raw.contention else None,
                json.dumps(raw.contention) if raw.contention else None,
            ],
        ).fetchall()[0][0]
        series = {**raw.samples, "inter_token_ms": raw.inter_token_ms}
        rows = [(run_id, rep, metric, value) for metric, values in series.items() for rep, value in enumerate(values)]
        if rows:
            con.executemany("INSERT INTO bench_samples VALUES (?, ?, ?, ?)", rows)
    return int(run_id)


def benchmark(
    model_spec: str,
    config: BenchConfig,
    *,
    db: str | Path | None = None,
    quick: bool = False,
    progress: Callable[[dict], None] | None = None,
    sweep_id: str | None = None,
    bandwidth: Bandwidth | None = None,
) -> BenchResult:
    """Measure a model (shipped key or .gguf path) in an isolated worker and store the run.

    `bandwidth` lets a sweep reuse one probe per thread count instead of repeating it for every grid point.
    """
    model = gguf_metadata(resolve_model(model_spec))
    census = take_census()
    raw = run_isolated(Path(model.path), config, progress)
    decode = raw.summaries.get("decode_tok_s")
    roofline = None
    if decode:
        roofline = roofline_for(
            model, config, decode.mean, bandwidth or probe_bandwidth(config.resolved_threads(), quick)
        )
    census_dict, fingerprint = census.as_dict(), census.fingerprint()
    run_id = save_run(db, model, config, census_dict, fingerprint, raw, roofline, sweep_id)
    return BenchResult(run_id, model, config, census_dict, fingerprint, raw, roofline)


@dataclass(frozen=True)
class SweepOutcome:
    """One grid point of a sweep: its stored result, or why it failed (nothing stored for it)."""

    config: BenchConfig
    result: BenchResult | None
    error: str | None


def benchmark_sweep(
    model_spec: str,
    configs: list[BenchConfig],
    *,
    db: str | Path | None = None,
    quick: bool = False,
    progress: Callable[[int, int, BenchConfig], None] | None = None,
) -> tuple[str, list[SweepOutcome]]:
    """Run every grid point; a point that crashes or is refused is reported and the sweep goes on."""
    import uuid

    from bench.runner import BenchError
    from slmlab.models import ModelError

    resolve_model(model_spec)  # a bad model fails the whole sweep at once, before any run
    sweep_id = uuid.uuid4().hex[:12]
    outcomes = []
    bandwidths: dict[int, Bandwidth] = {}
    for index, config in enumerate(configs):
        if progress:
            progress(index, len(configs), config)
        threads = config.resolved_threads()
        if threads not in bandwidths:
            bandwidths[threads] = probe_bandwidth(threads, quick)
        try:
            result = benchmark(model_spec, config, db=db, quick=quick, sweep_id=sweep_id, bandwidth=bandwidths[threads])
            outcomes.append(SweepOutcome(config, result, None))
        except (BenchError, ModelError) as error:
            outcomes.append(SweepOutcome(config, None, str(error)))
    return sweep_id, outcomes
