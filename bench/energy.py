"""Energy per benchmark run from hardware counters, labelled with where every joule came from."""

from __future__ import annotations

import contextlib
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

POWERCAP = Path("sys/class/powercap")
TOP_ZONE = re.compile(r"^(?:intel|amd)-rapl:\d+$")
MEASURED, ESTIMATED, UNAVAILABLE = "measured", "estimated", "unavailable"


@dataclass(frozen=True)
class EnergyReading:
    """Joules over one interval plus their provenance, so an estimate is never passed off as a measurement."""

    joules: float | None
    seconds: float
    source: str
    counters: tuple[str, ...]
    note: str


@dataclass(frozen=True)
class _Sample:
    """One cumulative counter value in microjoules and its wrap range, None when unknown."""

    uj: int
    range_uj: int | None


def _read(path: Path) -> tuple[str | None, str | None]:
    """Stripped text of a sysfs file, or why it could not be read; never raises."""
    try:
        return path.read_text().strip(), None
    except PermissionError:
        return None, f"permission denied on {path}"
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"{getattr(exc, 'strerror', None) or type(exc).__name__} on {path}"


def _read_int(path: Path) -> tuple[int | None, str | None]:
    """Integer content of a sysfs file, or why it could not be read or parsed."""
    text, problem = _read(path)
    if text is None:
        return None, problem
    try:
        return int(text), None
    except ValueError:
        return None, f"unparseable value {text[:20]!r} in {path}"


def _read_rapl(root: Path) -> tuple[dict[str, _Sample], list[str]]:
    """Top-level package zones only: sub-zones (core, uncore, dram), psys and mmio mirrors would double count."""
    base = root / POWERCAP
    try:
        zones = sorted(p for p in base.iterdir() if TOP_ZONE.match(p.name))
    except OSError:
        return {}, [f"no RAPL ({base} absent)"]
    samples: dict[str, _Sample] = {}
    problems: list[str] = []
    for zone in zones:
        name, problem = _read(zone / "name")
        if name is not None and not name.startswith("package"):
            continue
        uj, problem = (None, problem) if name is None else _read_int(zone / "energy_uj")
        if uj is None:
            problems.append(problem or f"unreadable {zone}")
            continue
        range_uj, _ = _read_int(zone / "max_energy_range_uj")
        samples.setdefault(f"rapl:{name}", _Sample(uj, range_uj or None))
    if problems:
        return samples, [f"RAPL {'partly' if samples else 'not'} readable ({'; '.join(problems)})"]
    return samples, [] if samples else [f"no RAPL (no package zones under {base})"]


def _read_nvml() -> tuple[dict[str, _Sample], list[str]]:
    """Per-GPU cumulative energy (millijoules, Volta or newer) through pynvml, when it is importable."""
    try:
        import pynvml
    except ImportError:
        return {}, ["no NVML (pynvml not installed)"]
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:  # a missing driver library is an NVMLError subclass too
        return {}, [f"no NVML ({exc})"]
    samples: dict[str, _Sample] = {}
    problems: list[str] = []
    try:
        for index in range(pynvml.nvmlDeviceGetCount()):
            try:
                handle = pynvml.nvmlDeviceGetHandleByIndex(index)
                millijoules = pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
            except pynvml.NVMLError as exc:
                problems.append(f"NVML device {index} has no energy counter ({exc})")
                continue
            samples[f"nvml:{index}"] = _Sample(int(millijoules) * 1000, None)
    except pynvml.NVMLError as exc:
        problems.append(f"NVML device count failed ({exc})")
    finally:
        with contextlib.suppress(pynvml.NVMLError):
            pynvml.nvmlShutdown()
    return samples, problems if samples or problems else ["no NVML devices"]


DEVICES = ("cpu", "gpu", "cpu+gpu", "all")
# What a reading over each device set covers and leaves out, said in the note of every measured figure.
COVERAGE = {
    "cpu": "covers the CPU package(s) (RAPL), where the work ran; leaves out DRAM (unless in the package zone), "
    "GPUs, disks, fans and power-supply losses",
    "gpu": "covers the GPU(s) (NVML), where the offloaded work ran; leaves out the host CPU that fed it, DRAM and "
    "the rest of the machine",
    "cpu+gpu": "covers the CPU package(s) (RAPL) and GPU(s) (NVML), the work being split between them; leaves out "
    "DRAM outside the package, disks, fans and power-supply losses",
    "all": "covers every readable counter (RAPL packages and NVML GPUs)",
}


def _snapshot(root: Path, devices: str = "all") -> tuple[dict[str, _Sample], list[str]]:
    """Every readable counter of the devices asked for right now, with a note for each source that is missing.

    A CPU-only run reads no GPU counter (an idle GPU's energy is not the work's) and an offloaded run reads NVML.
    """
    rapl, rapl_problems = _read_rapl(root) if devices != "gpu" else ({}, [])
    nvml, nvml_problems = _read_nvml() if devices != "cpu" else ({}, [])
    return {**rapl, **nvml}, rapl_problems + nvml_problems


def _delta(begin: _Sample, end: _Sample) -> int | None:
    """Microjoules between two reads, unwrapping one overflow; None when it went back with no usable range."""
    if end.uj >= begin.uj:
        return end.uj - begin.uj
    range_uj = end.range_uj or begin.range_uj
    return None if range_uj is None or range_uj < begin.uj else end.uj + range_uj - begin.uj


class EnergyMeter:
    """Brackets a benchmark run with counter reads; use as a context manager or via start()/stop()."""

    def __init__(
        self,
        root: Path = Path("/"),
        watts_estimate: float | None = None,
        *,
        clock: Callable[[], float] = time.perf_counter,
        devices: str = "all",
    ) -> None:
        if watts_estimate is not None and not (math.isfinite(watts_estimate) and watts_estimate > 0):
            raise ValueError(f"watts_estimate must be a positive finite number, got {watts_estimate!r}")
        if devices not in DEVICES:
            raise ValueError(f"devices must be one of {', '.join(DEVICES)}, got {devices!r}")
        self.devices = devices
        self.root = Path(root)
        self.watts_estimate = watts_estimate
        self._clock = clock
        self._begin: tuple[float, dict[str, _Sample]] | None = None
        self.reading: EnergyReading | None = None

    def start(self) -> None:
        """Read every counter, then the clock, so counter latency is not billed to the run."""
        samples, _ = _snapshot(self.root, self.devices)
        self._begin = (self._clock(), samples)

    def stop(self) -> EnergyReading:
        """Read the clock, then every counter, and turn the difference into one labelled reading."""
        if self._begin is None:
            raise RuntimeError("EnergyMeter.stop() called before start()")
        stopped = self._clock()
        end, problems = _snapshot(self.root, self.devices)
        started, begin = self._begin
        self._begin = None
        seconds = stopped - started
        used: list[str] = []
        total_uj = 0
        for name in (n for n in begin if n in end):
            delta = _delta(begin[name], end[name])
            if delta is None:
                problems.append(f"{name} went backwards with no known wrap range, excluded")
                continue
            used.append(name)
            total_uj += delta
        if lost := sorted(begin.keys() ^ end.keys()):
            problems.append(f"{', '.join(lost)} not readable at both start and stop, excluded")
        if used:
            note = f"measured from {' + '.join(used)} ({COVERAGE[self.devices]})"
            self.reading = EnergyReading(total_uj / 1e6, seconds, MEASURED, tuple(used), "; ".join([note, *problems]))
        elif self.watts_estimate is not None:
            note = (
                f"estimated from a user-supplied {self.watts_estimate} W over {seconds:.6g} s (covers whatever "
                "the figure was meant to cover; nothing was measured)"
            )
            joules = self.watts_estimate * seconds
            self.reading = EnergyReading(joules, seconds, ESTIMATED, (), "; ".join([note, *problems]))
        else:
            self.reading = EnergyReading(None, seconds, UNAVAILABLE, (), "; ".join(problems) or "no energy counter")
        return self.reading

    def __enter__(self) -> EnergyMeter:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._begin is not None:
            self.stop()


def per_token(reading: EnergyReading, tokens: int) -> dict[str, Any]:
    """Joules per token and its inverse, carrying the source so an estimate stays labelled as one."""
    joules = reading.joules
    if joules is None or tokens <= 0:
        return {"joules_per_token": None, "tokens_per_joule": None, "source": reading.source}
    return {
        "joules_per_token": joules / tokens,
        "tokens_per_joule": tokens / joules if joules > 0 else None,
        "source": reading.source,
    }


def available_counters(root: Path = Path("/")) -> tuple[str, str]:
    """What a census card should say about energy: the readable counters and why any others are missing."""
    samples, problems = _snapshot(Path(root))
    return ", ".join(samples) or "none", "; ".join(problems) or "every counter found is readable"
