"""Hardware census: what a benchmark ran on, so results from different machines are never silently compared."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
D = TypeVar("D")  # a fallback may be narrower than what the probe returns, e.g. () for a tuple of GPUs
ROOT = Path("/")
INTERESTING_FLAGS = (
    "avx",
    "avx2",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "avx_vnni",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
    "fma",
    "f16c",
    "sse4_2",
    "neon",
    "asimd",
    "sve",
    "sve2",
    "dotprod",
    "asimddp",
    "i8mm",
)
CPU_MODEL_KEYS = ("model name", "hardware", "model", "cpu model")
NPU_MODULES = ("intel_vpu", "amdxdna")
AMD_VENDOR = "0x1002"
MIB = 1024 * 1024


@dataclass(frozen=True)
class GpuInfo:
    """One GPU and which probe saw it, since probes differ in what they can tell."""

    vendor: str
    name: str
    memory_total_bytes: int | None
    driver: str | None
    source: str


@dataclass(frozen=True)
class NpuInfo:
    """One neural accelerator device node and the kernel driver bound to it."""

    name: str
    driver: str
    path: str


@dataclass(frozen=True)
class Census:
    """Everything about the host that can change a benchmark number."""

    cpu_model: str
    physical_cores: int | None
    logical_cores: int
    isa_flags: tuple[str, ...]
    ram_total_bytes: int
    ram_available_bytes: int
    gpus: tuple[GpuInfo, ...]
    npus: tuple[NpuInfo, ...]
    npu_note: str
    os: str
    python: str
    llama_cpp_version: str | None
    llama_system_info: str | None
    llama_gpu_offload: bool | None

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict, for storing next to benchmark results."""
        return json.loads(json.dumps(asdict(self)))

    def fingerprint(self) -> str:
        """Short stable id over the fields that identify a machine, never the volatile ones."""
        identity = [
            self.cpu_model,
            self.physical_cores,
            self.logical_cores,
            list(self.isa_flags),
            self.ram_total_bytes,
            [gpu.name for gpu in self.gpus],
            self.llama_system_info,
        ]
        blob = json.dumps(identity).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def _safe(probe: Callable[[], T], default: D) -> T | D:
    """Run one probe; a missing source must cost one field, not the whole census."""
    try:
        return probe()
    except Exception:
        return default


def _read(path: Path) -> str | None:
    """File text or None, because sysfs entries vanish and deny reads routinely."""
    return _safe(lambda: path.read_text(errors="replace").strip(), None)


def _link_name(path: Path) -> str | None:
    """Last component of a symlink target, which is how sysfs names drivers."""
    return _safe(lambda: path.readlink().name, None)


def _decode(value: bytes | str) -> str:
    """Text from libraries that return bytes in some versions and str in others."""
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _run(argv: list[str]) -> str | None:
    """Stdout of a helper binary, or None if it is absent, slow or failing."""
    if shutil.which(argv[0]) is None:
        return None
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def _cpuinfo(root: Path) -> list[tuple[str, str]]:
    """(key, value) pairs of /proc/cpuinfo, keys lower-cased, so callers need not re-parse."""
    text = _read(root / "proc" / "cpuinfo") or ""
    pairs = (line.split(":", 1) for line in text.splitlines() if ":" in line)
    return [(key.strip().lower(), value.strip()) for key, value in pairs]


def cpu_model(root: Path = ROOT) -> str:
    """Marketing name of the CPU, falling back through what ARM and macOS offer."""
    found = {key: value for key, value in reversed(_cpuinfo(root)) if value}
    for key in CPU_MODEL_KEYS:
        if key in found:
            return found[key]
    if platform.system() == "Darwin":
        brand = (_run(["sysctl", "-n", "machdep.cpu.brand_string"]) or "").strip()
        if brand:
            return brand
    return platform.processor() or platform.machine() or "unknown"


def isa_flags(root: Path = ROOT) -> tuple[str, ...]:
    """Interesting SIMD/matrix extensions that every core reports, in a fixed order."""
    per_core = [set(value.split()) for key, value in _cpuinfo(root) if key in ("flags", "features")]
    common = set.intersection(*per_core) if per_core else set()
    return tuple(flag for flag in INTERESTING_FLAGS if flag in common)


def _nvml_gpus() -> tuple[GpuInfo, ...]:
    """NVIDIA GPUs via NVML, the most precise source when its library is present."""
    import pynvml

    pynvml.nvmlInit()
    try:
        driver = _decode(pynvml.nvmlSystemGetDriverVersion())
        handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
        return tuple(
            GpuInfo(
                "NVIDIA",
                _decode(pynvml.nvmlDeviceGetName(h)),
                int(pynvml.nvmlDeviceGetMemoryInfo(h).total),
                driver,
                "pynvml",
            )
            for h in handles
        )
    finally:
        pynvml.nvmlShutdown()


def _smi_gpus() -> tuple[GpuInfo, ...]:
    """NVIDIA GPUs via nvidia-smi, for hosts with the driver but without nvidia-ml-py."""
    query = ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader,nounits"]
    found = []
    for line in (_run(query) or "").splitlines():
        fields = [field.strip() for field in line.rsplit(",", 2)]  # rsplit: a name may hold commas
        if len(fields) != 3 or not fields[0]:
            continue
        name, memory, driver = fields
        mem_bytes = int(float(memory) * MIB) if re.fullmatch(r"\d+(\.\d+)?", memory) else None
        found.append(GpuInfo("NVIDIA", name, mem_bytes, driver or None, "nvidia-smi"))
    return tuple(found)


def nvidia_gpus() -> tuple[GpuInfo, ...]:
    """NVIDIA GPUs from NVML if it answers, else from nvidia-smi, else none."""
    return _safe(_nvml_gpus, ()) or _safe(_smi_gpus, ())


def amd_gpus(root: Path = ROOT) -> tuple[GpuInfo, ...]:
    """AMD GPUs from DRM sysfs, where amdgpu also exposes VRAM size."""
    found = []
    for card in sorted((root / "sys" / "class" / "drm").glob("card*")):
        device = card / "device"
        if not re.fullmatch(r"card\d+", card.name) or _read(device / "vendor") != AMD_VENDOR:
            continue
        vram = _read(device / "mem_info_vram_total")
        found.append(
            GpuInfo(
                "AMD",
                _read(device / "product_name") or "AMD GPU",
                int(vram) if vram and vram.isdigit() else None,
                _link_name(device / "driver"),
                f"sysfs:{card.name}",
            )
        )
    return tuple(found)


def apple_gpus(system: str | None = None, machine: str | None = None) -> tuple[GpuInfo, ...]:
    """The Apple Silicon GPU, which shares RAM with the CPU so has no own memory size."""
    system, machine = system or platform.system(), machine or platform.machine()
    if system == "Darwin" and machine == "arm64":
        return (GpuInfo("Apple", "Apple GPU (unified memory)", None, None, "platform"),)
    return ()


def gpus(root: Path = ROOT) -> tuple[GpuInfo, ...]:
    """Every GPU any probe found; each probe fails alone."""
    return nvidia_gpus() + _safe(lambda: amd_gpus(root), ()) + _safe(apple_gpus, ())


def npus(root: Path = ROOT) -> tuple[NpuInfo, ...]:
    """Accel-subsystem devices (Intel NPU, AMD XDNA, ...) from sysfs, plus bare /dev nodes."""
    found = {
        entry.name: NpuInfo(entry.name, _link_name(entry / "device" / "driver") or "unknown", str(entry))
        for entry in sorted((root / "sys" / "class" / "accel").glob("*"))
    }
    dev = root / "dev"
    for node in sorted([*dev.glob("accel/*"), *dev.glob("accel?*")]):
        found.setdefault(node.name, NpuInfo(node.name, "unknown", str(node)))
    return tuple(found.values())


def npu_modules(root: Path = ROOT) -> tuple[str, ...] | None:
    """NPU kernel drivers loaded (a hint even before a device node appears); None if we cannot tell."""
    listing, sys_module = _read(root / "proc" / "modules"), root / "sys" / "module"
    if listing is None and not sys_module.is_dir():
        return None
    loaded = {line.split()[0] for line in (listing or "").splitlines() if line.strip()}
    return tuple(module for module in NPU_MODULES if module in loaded or (sys_module / module).is_dir())


def npu_note(found: tuple[NpuInfo, ...], modules: tuple[str, ...] | None) -> str:
    """Say plainly what was looked at, so 'no NPU' is a finding and not a guess."""
    if modules is None:
        drivers = "; driver check impossible: no /proc/modules or /sys/module"
    else:
        drivers = f"; loaded modules: {', '.join(modules)}" if modules else "; neither module loaded"
    if found:
        return f"found {len(found)}: " + ", ".join(f"{n.name} ({n.driver})" for n in found) + drivers
    return f"none found (checked /sys/class/accel, /dev/accel, intel_vpu and amdxdna drivers{drivers})"


def llama_info() -> tuple[str | None, str | None, bool | None]:
    """(version, system info, GPU offload) of llama-cpp-python, imported only when asked."""
    try:
        import llama_cpp
    except Exception:
        return None, None, None
    version = _safe(lambda: str(llama_cpp.__version__), None)
    system_info = _safe(lambda: _decode(llama_cpp.llama_print_system_info()).strip(), None)
    offload = _safe(lambda: bool(llama_cpp.llama_supports_gpu_offload()), None)
    return version, system_info, offload


def _psutil_counts() -> tuple[int | None, int, int, int]:
    """(physical cores, logical cores, total RAM, available RAM); physical is unknowable on some VMs."""
    import psutil

    memory = psutil.virtual_memory()
    logical = psutil.cpu_count() or os.cpu_count() or 1
    return psutil.cpu_count(logical=False), logical, int(memory.total), int(memory.available)


def take_census(root: Path = ROOT) -> Census:
    """Probe the host once; any source that is missing leaves its field empty instead of raising."""
    physical, logical, ram_total, ram_available = _safe(_psutil_counts, (None, os.cpu_count() or 1, 0, 0))
    found_npus = _safe(lambda: npus(root), ())
    version, system_info, offload = _safe(llama_info, (None, None, None))
    return Census(
        cpu_model=_safe(lambda: cpu_model(root), "unknown"),
        physical_cores=physical,
        logical_cores=logical,
        isa_flags=_safe(lambda: isa_flags(root), ()),
        ram_total_bytes=ram_total,
        ram_available_bytes=ram_available,
        gpus=_safe(lambda: gpus(root), ()),
        npus=found_npus,
        npu_note=npu_note(found_npus, _safe(lambda: npu_modules(root), None)),
        os=platform.platform(),
        python=sys.version.split()[0],
        llama_cpp_version=version,
        llama_system_info=system_info,
        llama_gpu_offload=offload,
    )


if __name__ == "__main__":
    census = take_census()
    print(json.dumps({**census.as_dict(), "fingerprint": census.fingerprint()}, indent=2))
