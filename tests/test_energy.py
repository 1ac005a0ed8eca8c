"""Energy meter: fake powercap trees and a fake pynvml, plus one call on the real machine."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bench.energy import EnergyMeter, EnergyReading, available_counters, per_token

RANGE_UJ = 262_143_328_850
POWERCAP = Path("sys/class/powercap")


@pytest.fixture(autouse=True)
def no_pynvml(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make `import pynvml` fail, so a GPU host gives the same answers as this one."""
    monkeypatch.setitem(sys.modules, "pynvml", None)


def _zone(root: Path, zone: str, name: str, uj: int, range_uj: int | None = RANGE_UJ) -> Path:
    """Write one powercap zone; a sub-zone nests in its parent and, as in sysfs, is also linked flat."""
    parent = root / POWERCAP / zone.rsplit(":", 1)[0] if zone.count(":") == 2 else root / POWERCAP
    path = parent / zone
    path.mkdir(parents=True, exist_ok=True)
    if parent != root / POWERCAP:
        (root / POWERCAP / zone).symlink_to(path)
    (path / "name").write_text(f"{name}\n")
    (path / "energy_uj").write_text(f"{uj}\n")
    if range_uj is not None:
        (path / "max_energy_range_uj").write_text(f"{range_uj}\n")
    return path


def _set(zone: Path, uj: int) -> None:
    """Advance a zone's cumulative counter."""
    (zone / "energy_uj").write_text(f"{uj}\n")


def _clock(*times: float) -> Callable[[], float]:
    """A fake perf_counter that returns the given instants in order."""
    ticks: Iterator[float] = iter(times)
    return lambda: next(ticks)


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, Path]:
    """Two packages plus zones that must never be summed: a core sub-zone, psys and an mmio mirror."""
    return {
        "pkg0": _zone(tmp_path, "intel-rapl:0", "package-0", 10_000_000),
        "core": _zone(tmp_path, "intel-rapl:0:0", "core", 5_000_000),
        "pkg1": _zone(tmp_path, "intel-rapl:1", "package-1", 20_000_000),
        "psys": _zone(tmp_path, "intel-rapl:2", "psys", 1_000_000),
        "mmio": _zone(tmp_path, "intel-rapl-mmio:0", "package-0", 0),
    }


def _advance_all(tree: dict[str, Path]) -> None:
    """+2 J on package-0, +1 J on package-1, and big jumps on every zone that would double count."""
    _set(tree["pkg0"], 12_000_000)
    _set(tree["pkg1"], 21_000_000)
    _set(tree["core"], 905_000_000)
    _set(tree["psys"], 901_000_000)
    _set(tree["mmio"], 777_000_000)


def test_sums_only_top_level_packages(tree: dict[str, Path], tmp_path: Path) -> None:
    meter = EnergyMeter(tmp_path, watts_estimate=45.0, clock=_clock(1.0, 3.5))
    meter.start()
    _advance_all(tree)
    reading = meter.stop()
    assert reading.joules == 3.0
    assert reading.source == "measured"
    assert reading.counters == ("rapl:package-0", "rapl:package-1")
    assert reading.seconds == 2.5
    assert "measured from rapl:package-0 + rapl:package-1" in reading.note
    assert "pynvml not installed" in reading.note


def test_amd_rapl_zone_names_are_accepted(tmp_path: Path) -> None:
    zone = _zone(tmp_path, "amd-rapl:0", "package-0", 100)
    with EnergyMeter(tmp_path) as meter:
        _set(zone, 1_500_100)
    assert meter.reading is not None
    assert (meter.reading.joules, meter.reading.counters) == (1.5, ("rapl:package-0",))


def test_wrap_around_uses_max_energy_range(tree: dict[str, Path], tmp_path: Path) -> None:
    _set(tree["pkg0"], RANGE_UJ - 500_000)
    meter = EnergyMeter(tmp_path)
    meter.start()
    _set(tree["pkg0"], 1_500_000)
    _set(tree["pkg1"], 21_000_000)
    reading = meter.stop()
    assert reading.joules == 3.0
    assert reading.source == "measured"


def test_backwards_counter_without_range_is_excluded_not_negative(tmp_path: Path) -> None:
    pkg0 = _zone(tmp_path, "intel-rapl:0", "package-0", 9_000_000, range_uj=None)
    pkg1 = _zone(tmp_path, "intel-rapl:1", "package-1", 0)
    meter = EnergyMeter(tmp_path)
    meter.start()
    _set(pkg0, 1_000_000)
    _set(pkg1, 4_000_000)
    reading = meter.stop()
    assert (reading.joules, reading.counters) == (4.0, ("rapl:package-1",))
    assert "rapl:package-0 went backwards" in reading.note


def _break(zone: Path) -> None:
    """Make energy_uj unreadable even for root, by turning it into a directory."""
    (zone / "energy_uj").unlink()
    (zone / "energy_uj").mkdir()


def test_unreadable_counters_fall_back_to_the_estimate(tree: dict[str, Path], tmp_path: Path) -> None:
    _break(tree["pkg0"])
    _break(tree["pkg1"])
    meter = EnergyMeter(tmp_path, watts_estimate=45.0, clock=_clock(100.0, 112.3))
    meter.start()
    reading = meter.stop()
    assert reading.source == "estimated"
    assert reading.joules == pytest.approx(45.0 * 12.3)
    assert reading.counters == ()
    assert "estimated from a user-supplied 45.0 W over 12.3 s" in reading.note
    assert "RAPL not readable" in reading.note


def test_unreadable_counters_without_estimate_are_unavailable(tree: dict[str, Path], tmp_path: Path) -> None:
    _break(tree["pkg0"])
    _break(tree["pkg1"])
    meter = EnergyMeter(tmp_path, clock=_clock(0.0, 1.0))
    meter.start()
    result = meter.stop()
    assert (result.source, result.joules, result.counters) == ("unavailable", None, ())
    assert "RAPL not readable" in result.note and "no NVML" in result.note


def test_permission_denied_is_named_in_the_note(
    tree: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_read_text = Path.read_text

    def guarded(self: Path, *args: object, **kwargs: object) -> str:
        if self.name == "energy_uj":
            raise PermissionError(13, "Permission denied", str(self))
        return real_read_text(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "read_text", guarded)
    meter = EnergyMeter(tmp_path, watts_estimate=10.0, clock=_clock(0.0, 2.0))
    meter.start()
    result = meter.stop()
    assert result.source == "estimated" and result.joules == pytest.approx(20.0)
    assert f"permission denied on {tree['pkg0'] / 'energy_uj'}" in result.note
    counters, note = available_counters(tmp_path)
    assert counters == "none" and "permission denied" in note


def test_measured_and_estimated_are_never_mixed(tree: dict[str, Path], tmp_path: Path) -> None:
    _break(tree["pkg1"])
    meter = EnergyMeter(tmp_path, watts_estimate=1000.0, clock=_clock(0.0, 10.0))
    meter.start()
    _set(tree["pkg0"], 12_000_000)
    reading = meter.stop()
    assert (reading.source, reading.joules, reading.counters) == ("measured", 2.0, ("rapl:package-0",))
    assert "RAPL partly readable" in reading.note


def test_counter_lost_between_start_and_stop_is_excluded(tree: dict[str, Path], tmp_path: Path) -> None:
    meter = EnergyMeter(tmp_path, watts_estimate=5.0, clock=_clock(0.0, 1.0))
    meter.start()
    _set(tree["pkg0"], 12_000_000)
    _break(tree["pkg1"])
    reading = meter.stop()
    assert (reading.joules, reading.counters) == (2.0, ("rapl:package-0",))
    assert "rapl:package-1 not readable at both start and stop" in reading.note


def test_fake_nvml_gpus_are_measured_in_millijoules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class NVMLError(Exception):
        pass

    energy_mj = {0: 1_000}

    def total_energy(handle: int) -> int:
        if handle not in energy_mj:
            raise NVMLError("Not Supported")
        return energy_mj[handle]

    fake = types.SimpleNamespace(
        NVMLError=NVMLError,
        nvmlInit=lambda: None,
        nvmlShutdown=lambda: None,
        nvmlDeviceGetCount=lambda: 2,
        nvmlDeviceGetHandleByIndex=lambda index: index,
        nvmlDeviceGetTotalEnergyConsumption=total_energy,
    )
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    meter = EnergyMeter(tmp_path)
    meter.start()
    energy_mj[0] += 1_500
    reading = meter.stop()
    assert (reading.source, reading.joules, reading.counters) == ("measured", 1.5, ("nvml:0",))
    assert "NVML device 1 has no energy counter (Not Supported)" in reading.note


def test_per_token_math() -> None:
    measured = EnergyReading(3.0, 1.0, "measured", ("rapl:package-0",), "")
    assert per_token(measured, 6) == {"joules_per_token": 0.5, "tokens_per_joule": 2.0, "source": "measured"}
    assert per_token(measured, 0) == {"joules_per_token": None, "tokens_per_joule": None, "source": "measured"}
    missing = EnergyReading(None, 1.0, "unavailable", (), "")
    assert per_token(missing, 10) == {"joules_per_token": None, "tokens_per_joule": None, "source": "unavailable"}
    zero = EnergyReading(0.0, 1.0, "measured", ("rapl:package-0",), "")
    assert per_token(zero, 10)["tokens_per_joule"] is None


def test_misuse_is_loud() -> None:
    with pytest.raises(ValueError):
        EnergyMeter(watts_estimate=-5.0)
    with pytest.raises(ValueError):
        EnergyMeter(watts_estimate=float("nan"))
    with pytest.raises(RuntimeError):
        EnergyMeter().stop()


def test_real_machine_never_raises() -> None:
    counters, note = available_counters()
    assert counters and note
    with EnergyMeter() as meter:
        sum(range(10_000))
    reading = meter.reading
    assert reading is not None
    assert reading.source in {"measured", "estimated", "unavailable"}
    assert reading.seconds >= 0
    assert (reading.joules is None) == (reading.source == "unavailable")
    estimated = EnergyMeter(watts_estimate=30.0)
    estimated.start()
    assert estimated.stop().source in {"measured", "estimated"}
