"""Hardware census: the real machine, plus fake sysfs/procfs trees for hardware this host lacks."""

from __future__ import annotations

import dataclasses
import json
import re
import stat
import sys
from pathlib import Path

import pytest

from bench import hardware
from bench.hardware import Census, GpuInfo, NpuInfo, take_census

X86_CPUINFO = """\
processor\t: {n}
vendor_id\t: GenuineIntel
model\t\t: 143
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse4_2 avx avx2 fma f16c avx512f avx512bw amx_tile amx_int8 {extra}

"""


def _write(path: Path, text: str) -> Path:
    """Create a file and its parents in the fake root."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def census() -> Census:
    """One real census of this machine, shared because probing is slowish."""
    return take_census()


def test_real_census_describes_this_machine(census: Census) -> None:
    assert census.cpu_model.strip()
    assert census.logical_cores >= 1
    assert census.physical_cores is None or 1 <= census.physical_cores <= census.logical_cores
    assert census.ram_total_bytes > 0
    assert 0 < census.ram_available_bytes <= census.ram_total_bytes
    assert census.python == sys.version.split()[0]
    assert set(census.isa_flags) <= set(hardware.INTERESTING_FLAGS)


def test_real_census_reads_llama_cpp(census: Census) -> None:
    assert census.llama_cpp_version
    assert census.llama_system_info and "CPU" in census.llama_system_info
    assert isinstance(census.llama_gpu_offload, bool)


def test_real_census_reports_no_npu_honestly(census: Census) -> None:
    assert census.npus == ()
    assert census.npu_note.startswith("none found")
    assert "/sys/class/accel" in census.npu_note


def test_fingerprint_is_stable_and_short(census: Census) -> None:
    again = take_census()
    assert census.fingerprint() == again.fingerprint()
    assert re.fullmatch(r"[0-9a-f]{16}", census.fingerprint())


def test_fingerprint_ignores_volatile_fields_but_not_identity(census: Census) -> None:
    fp = census.fingerprint()
    assert dataclasses.replace(census, ram_available_bytes=1).fingerprint() == fp
    assert dataclasses.replace(census, cpu_model=census.cpu_model + "x").fingerprint() != fp
    assert dataclasses.replace(census, isa_flags=census.isa_flags + ("sve2",)).fingerprint() != fp
    gpu = GpuInfo("NVIDIA", "H100", None, None, "test")
    assert dataclasses.replace(census, gpus=(gpu,)).fingerprint() != fp


def test_as_dict_is_json_ready(census: Census) -> None:
    data = census.as_dict()
    assert json.loads(json.dumps(data)) == data
    assert set(data) == {field.name for field in dataclasses.fields(Census)}
    assert isinstance(data["isa_flags"], list)


def test_isa_flags_from_fake_cpuinfo(tmp_path: Path) -> None:
    _write(
        tmp_path / "proc" / "cpuinfo", X86_CPUINFO.format(n=0, extra="avx512_vnni") + X86_CPUINFO.format(n=1, extra="")
    )
    flags = hardware.isa_flags(tmp_path)
    assert flags == ("avx", "avx2", "avx512f", "avx512bw", "amx_tile", "amx_int8", "fma", "f16c", "sse4_2")
    assert "avx512_vnni" not in flags  # only one core has it
    assert "fpu" not in flags  # not an interesting flag
    assert hardware.cpu_model(tmp_path) == "Intel(R) Xeon(R) Platinum 8480+"


def test_isa_flags_from_fake_arm_cpuinfo(tmp_path: Path) -> None:
    _write(tmp_path / "proc" / "cpuinfo", "processor\t: 0\nFeatures\t: fp asimd asimddp sve sve2 i8mm crc32\n")
    assert hardware.isa_flags(tmp_path) == ("asimd", "sve", "sve2", "asimddp", "i8mm")


def test_missing_cpuinfo_gives_no_flags(tmp_path: Path) -> None:
    assert hardware.isa_flags(tmp_path) == ()
    assert hardware.cpu_model(tmp_path)


def test_amd_gpu_in_fake_drm(tmp_path: Path) -> None:
    drm = tmp_path / "sys" / "class" / "drm"
    _write(drm / "card0" / "device" / "vendor", "0x1002\n")
    _write(drm / "card0" / "device" / "product_name", "Radeon RX 7900 XTX\n")
    _write(drm / "card0" / "device" / "mem_info_vram_total", "25753026560\n")
    (drm / "card0" / "device" / "driver").symlink_to(tmp_path / "sys" / "bus" / "pci" / "drivers" / "amdgpu")
    _write(drm / "card0-DP-1" / "device" / "vendor", "0x1002\n")  # a connector, not a second GPU
    _write(drm / "card1" / "device" / "vendor", "0x8086\n")  # an Intel iGPU, not AMD
    _write(drm / "card2" / "device" / "vendor", "0x1002\n")
    assert hardware.amd_gpus(tmp_path) == (
        GpuInfo("AMD", "Radeon RX 7900 XTX", 25753026560, "amdgpu", "sysfs:card0"),
        GpuInfo("AMD", "AMD GPU", None, None, "sysfs:card2"),
    )


def test_apple_gpu_only_on_apple_silicon() -> None:
    assert hardware.apple_gpus("Darwin", "arm64")[0].name == "Apple GPU (unified memory)"
    assert hardware.apple_gpus("Darwin", "x86_64") == ()
    assert hardware.apple_gpus("Linux", "aarch64") == ()


def test_npu_in_fake_accel(tmp_path: Path) -> None:
    device = tmp_path / "sys" / "devices" / "pci0000:00" / "0000:00:0b.0"
    _write(tmp_path / "sys" / "bus" / "pci" / "drivers" / "intel_vpu" / "bind", "")
    device.mkdir(parents=True)
    (device / "driver").symlink_to(tmp_path / "sys" / "bus" / "pci" / "drivers" / "intel_vpu")
    accel0 = tmp_path / "sys" / "class" / "accel" / "accel0"
    accel0.mkdir(parents=True)
    (accel0 / "device").symlink_to(device)
    _write(tmp_path / "dev" / "accel" / "accel0", "")  # same device: must not be counted twice
    _write(tmp_path / "proc" / "modules", "intel_vpu 331776 0 - Live 0x0000000000000000\nkvm 1 0 - Live 0x0\n")
    found = hardware.npus(tmp_path)
    assert found == (NpuInfo("accel0", "intel_vpu", str(accel0)),)
    note = hardware.npu_note(found, hardware.npu_modules(tmp_path))
    assert note.startswith("found 1: accel0 (intel_vpu)")
    assert "loaded modules: intel_vpu" in note
    census = take_census(tmp_path)
    assert census.npus == found
    assert census.npu_note == note


def test_bare_dev_accel_node_counts_as_npu(tmp_path: Path) -> None:
    _write(tmp_path / "dev" / "accel" / "accel3", "")
    assert hardware.npus(tmp_path) == (NpuInfo("accel3", "unknown", str(tmp_path / "dev" / "accel" / "accel3")),)


def test_no_npu_note_says_what_was_checked(tmp_path: Path) -> None:
    assert hardware.npus(tmp_path) == ()
    assert hardware.npu_modules(tmp_path) is None
    note = hardware.npu_note((), None)
    assert note.startswith("none found (checked /sys/class/accel, /dev/accel")
    assert "driver check impossible" in note
    _write(tmp_path / "proc" / "modules", "kvm 1 0 - Live 0x0\n")
    assert hardware.npu_modules(tmp_path) == ()
    assert "neither module loaded" in hardware.npu_note((), ())


def test_no_nvidia_smi_means_no_nvidia_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # makes `import pynvml` raise ImportError
    monkeypatch.setattr(hardware.shutil, "which", lambda name: None)
    assert hardware.nvidia_gpus() == ()
    assert all(gpu.vendor != "NVIDIA" for gpu in take_census().gpus)


def test_nvidia_smi_output_is_parsed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _write(
        tmp_path / "nvidia-smi",
        "#!/bin/sh\necho 'NVIDIA H100 80GB HBM3, 81559, 550.54.15'\necho 'Tesla T4, [N/A], 535.1'\n",
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setitem(sys.modules, "pynvml", None)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")  # the fake shadows any real nvidia-smi
    assert hardware.nvidia_gpus() == (
        GpuInfo("NVIDIA", "NVIDIA H100 80GB HBM3", 81559 * 1024 * 1024, "550.54.15", "nvidia-smi"),
        GpuInfo("NVIDIA", "Tesla T4", None, "535.1", "nvidia-smi"),
    )


def test_census_survives_an_empty_root(tmp_path: Path) -> None:
    census = take_census(tmp_path)
    assert census.isa_flags == ()
    assert census.npus == ()
    assert census.npu_note.startswith("none found")
    assert "driver check impossible" in census.npu_note
    assert re.fullmatch(r"[0-9a-f]{16}", census.fingerprint())
