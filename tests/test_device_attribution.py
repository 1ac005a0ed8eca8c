"""Figures belong to the device that did the work: energy counters by device, the roofline ceiling by where the
weights sit (a fake fully offloaded run, as on the H200 of issue 15, never reads over 100%)."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from bench.energy import EnergyMeter
from bench.roofline import (
    Bandwidth,
    DeviceBandwidth,
    RooflineError,
    gpu_spec_bandwidth,
    judge_decode,
    offloaded_fraction,
    split_ceiling,
)
from bench.runner import BenchConfig
from slmlab.models import GGUFMetadata

POWERCAP = Path("sys/class/powercap")


@pytest.fixture
def machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """A fake host with one RAPL package and one NVML GPU whose counters the test advances."""
    zone = tmp_path / POWERCAP / "intel-rapl:0"
    zone.mkdir(parents=True)
    (zone / "name").write_text("package-0\n")
    (zone / "energy_uj").write_text("1000000\n")
    counters = {"gpu_mj": 5_000}

    class NVMLError(Exception):
        pass

    fake = types.SimpleNamespace(
        NVMLError=NVMLError,
        nvmlInit=lambda: None,
        nvmlShutdown=lambda: None,
        nvmlDeviceGetCount=lambda: 1,
        nvmlDeviceGetHandleByIndex=lambda index: index,
        nvmlDeviceGetTotalEnergyConsumption=lambda handle: counters["gpu_mj"],
    )
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    return {"root": tmp_path, "zone": zone, "counters": counters}


def _spend(machine: dict, cpu_j: float, gpu_j: float) -> None:
    (machine["zone"] / "energy_uj").write_text(f"{1_000_000 + int(cpu_j * 1e6)}\n")
    machine["counters"]["gpu_mj"] += int(gpu_j * 1000)


@pytest.mark.parametrize(
    ("n_gpu_layers", "joules", "counters", "covers"),
    [
        (0, 2.0, ("rapl:package-0",), "CPU package"),  # the idle GPU's 364 J are not the work's
        (-1, 30.0, ("nvml:0",), "GPU(s) (NVML)"),
        (10, 32.0, ("rapl:package-0", "nvml:0"), "split between them"),
    ],
)
def test_energy_comes_from_the_device_that_did_the_work(
    machine: dict, n_gpu_layers: int, joules: float, counters: tuple, covers: str
) -> None:
    config = BenchConfig(test="tg8", n_gpu_layers=n_gpu_layers)
    meter = EnergyMeter(machine["root"], devices=config.energy_devices())
    meter.start()
    _spend(machine, cpu_j=2.0, gpu_j=30.0)
    reading = meter.stop()
    assert reading.source == "measured" and reading.counters == counters
    assert reading.joules == pytest.approx(joules)
    assert covers in reading.note and "leaves out" in reading.note


def test_cpu_only_run_without_rapl_uses_the_estimate_not_the_gpu(tmp_path: Path, machine: dict) -> None:
    meter = EnergyMeter(tmp_path / "no-rapl-here", watts_estimate=50.0, devices="cpu", clock=iter([0.0, 2.0]).__next__)
    meter.start()
    _spend(machine, cpu_j=0.0, gpu_j=364.0)
    reading = meter.stop()
    assert (reading.source, reading.joules, reading.counters) == ("estimated", 100.0, ())


def test_gpu_spec_bandwidth_from_bus_width_and_memory_clock() -> None:
    # H200: 6144-bit HBM3e at 2619 MHz -> ~4.0 TB/s peak as NVML reports it (4.8 TB/s marketed)
    assert gpu_spec_bandwidth(6144, 2619) == pytest.approx(4022.8, rel=1e-3)
    assert gpu_spec_bandwidth(384, 10501) == pytest.approx(1008.1, rel=1e-3)  # GDDR6X example
    with pytest.raises(ValueError):
        gpu_spec_bandwidth(0, 1000)


def test_offloaded_fraction_follows_the_layers() -> None:
    assert offloaded_fraction(0, 30) == 0.0
    assert offloaded_fraction(15, 30) == 0.5
    assert offloaded_fraction(-1, 30) == 1.0 and offloaded_fraction(99, 30) == 1.0


CPU = DeviceBandwidth("cpu", 90.0, "measured", "numpy probe")
GPU = DeviceBandwidth("gpu:0", 4022.8, "spec", "NVML")


def test_split_ceiling_adds_each_devices_time() -> None:
    ceiling = split_ceiling(100_000_000, 0.5, CPU, GPU)
    assert ceiling.cpu_bytes == ceiling.gpu_bytes == 50_000_000
    assert ceiling.seconds_per_token == pytest.approx(50e6 / 90e9 + 50e6 / 4022.8e9)
    with pytest.raises(ValueError, match="need the GPU's bandwidth"):
        split_ceiling(100_000_000, 0.5, CPU, None)


def test_a_fake_offloaded_run_never_reads_over_100_percent(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 15: the H200 run of Gemma 3 (843 tok/s) was scored against the CPU's 90 GB/s: efficiency 2.02."""
    from bench.results import roofline_for

    model = GGUFMetadata(
        path="gemma.gguf",
        file_bytes=253_000_000,
        sha256="x",
        architecture="gemma3",
        name="gemma",
        parameters=268_000_000,
        tensor_bytes=240_000_000,
        quantization="Q4_K_M",
        context_length=32768,
        n_layer=18,
        n_embd=640,
        n_head=4,
        n_head_kv=1,
        head_dim_k=256,
        head_dim_v=256,
        chat_template=True,
    )
    bandwidth = Bandwidth(90.0, 60.0, 16, 1, 1, (90.0,), (60.0,), "numpy probe")
    offloaded = BenchConfig(test="pp512+tg128", n_gpu_layers=-1)
    result = roofline_for(model, offloaded, 843.0, bandwidth, gpu=GPU)
    assert result["fraction_on_gpu"] == 1.0 and [d["device"] for d in result["devices"]] == ["gpu:0"]
    assert result["devices"][0]["source"] == "spec" and 0 < result["efficiency"] <= 1.0
    assert result["bound"] == "latency-bound" and result["per_token_ms"] == pytest.approx(1000 / 843)
    # the same figure against the CPU's bandwidth (the old ceiling) is an error, not an efficiency of 2.0
    cpu_only = BenchConfig(test="pp512+tg128", n_gpu_layers=0)
    wrong = roofline_for(model, cpu_only, 843.0, bandwidth)
    assert wrong["efficiency"] is None and "exceeds the memory ceiling" in wrong["error"]
    # offloaded with no way to know the GPU's bandwidth (NVML absent): no ceiling rather than the CPU's
    monkeypatch.setattr("bench.results.nvml_bandwidth", lambda: None)
    unknown = roofline_for(model, offloaded, 843.0, bandwidth)
    assert unknown["ceiling_tok_s"] is None and unknown["efficiency"] is None and "NVML" in unknown["error"]


def test_judge_decode_labels_and_refuses() -> None:
    ceiling = split_ceiling(100_000_000, 0.0, CPU, None)  # 900 tok/s
    assert judge_decode(600.0, ceiling)["bound"] == "memory-bound"
    slow = judge_decode(50.0, ceiling)
    assert slow["bound"] == "latency-bound" and "20.00 ms" in slow["note"]
    with pytest.raises(RooflineError, match="exceeds the memory ceiling"):
        judge_decode(1800.0, ceiling)
