"""Is the machine busy with someone else's work while we measure? A contended run's speed is the machine's
load, not the model's, so it is sampled, stored and flagged.

During a run a thread samples, every `interval_s`: the CPU time every process used (system-wide busy time from
/proc/stat through psutil) minus the CPU time of our own process tree (the caller and its workers), the 1-minute
load average, the hypervisor's steal time, and, where NVML answers, other processes holding the GPU.

A run is *contended* (CONTENTION_RULE) when, averaged over the run,
  - other processes used more CPU than the run left free: others' cores > max(0.25, logical CPUs - run threads), or
  - steal time exceeded 5% of CPU time (the hypervisor gave our cores to other guests), or
  - another process held the GPU that did the work (only when layers were offloaded).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import asdict, dataclass, field

import psutil

SLACK_CORES = 0.25
STEAL_LIMIT = 0.05
CONTENTION_RULE = (
    f"contended when, averaged over the run, other processes used more than max({SLACK_CORES}, "
    f"logical CPUs - run threads) cores, or steal time exceeded {STEAL_LIMIT:.0%}, or another "
    "process held the GPU the run offloaded to"
)


@dataclass(frozen=True)
class Contention:
    """What other work the machine did during a run, and the verdict."""

    samples: int
    seconds: float
    cpus: int
    run_threads: int
    others_cores_mean: float
    others_cores_max: float
    load1_max: float
    steal_fraction: float
    gpu_other_processes: int
    contended: bool
    reasons: tuple[str, ...] = field(default_factory=tuple)
    rule: str = CONTENTION_RULE

    def as_dict(self) -> dict[str, object]:
        """JSON-ready."""
        return asdict(self)

    def warning(self) -> str | None:
        """One line for the CLI and the page, or None when the run was not contended."""
        if not self.contended:
            return None
        return (
            "contended run: " + "; ".join(self.reasons) + ". Its figures describe a busy machine; rerun when it "
            "is idle (a contended run is never used as a model's speed unless picked by id)."
        )


def judge(
    others_cores: float, steal_fraction: float, cpus: int, run_threads: int, gpu_other_processes: int = 0
) -> tuple[str, ...]:
    """Reasons a run counts as contended under CONTENTION_RULE (empty: not contended)."""
    reasons = []
    free = max(SLACK_CORES, cpus - run_threads)
    if others_cores > free:
        reasons.append(
            f"other processes used {others_cores:.2f} cores on average, more than the {free:.2f} the run "
            f"left free ({run_threads} threads on {cpus} logical CPUs)"
        )
    if steal_fraction > STEAL_LIMIT:
        reasons.append(f"steal time was {steal_fraction:.1%} of CPU time (over {STEAL_LIMIT:.0%})")
    if gpu_other_processes:
        reasons.append(f"{gpu_other_processes} other process(es) held the GPU")
    return tuple(reasons)


def _busy_and_steal() -> tuple[float, float, float]:
    """System-wide busy CPU seconds, steal seconds and total seconds so far (all logical CPUs)."""
    times = psutil.cpu_times()
    total = sum(times)
    idle = times.idle + getattr(times, "iowait", 0.0)
    steal = getattr(times, "steal", 0.0)
    return total - idle - steal, steal, total


def _tree_cpu_seconds(root: psutil.Process) -> float:
    """CPU seconds used so far by a process and its descendants: living ones, plus (for this process) the
    children that already exited and were waited for, so a finished worker's time does not vanish."""
    total = 0.0
    if root.pid == os.getpid():
        finished = os.times()
        total += finished.children_user + finished.children_system
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total


def _gpu_other_processes() -> int:
    """Compute processes on any NVIDIA GPU that are not ours (0 where NVML is absent)."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # no library or no driver: nothing to see
        return 0
    try:
        ours = {p.pid for p in [psutil.Process(), *psutil.Process().children(recursive=True)]}
        count = 0
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            count += sum(1 for p in pynvml.nvmlDeviceGetComputeRunningProcesses(handle) if p.pid not in ours)
        return count
    except Exception:
        return 0
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()


class ContentionMonitor:
    """Samples the machine in a background thread between start() and stop()."""

    def __init__(
        self, run_threads: int, *, interval_s: float = 0.5, gpu: bool = False, root_pid: int | None = None
    ) -> None:
        self.run_threads = run_threads
        self.interval_s = interval_s
        self.gpu = gpu
        self.root = psutil.Process(root_pid or os.getpid())
        self.cpus = psutil.cpu_count() or 1
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._others: list[float] = []
        self._loads: list[float] = []
        self._gpu_others = 0
        self._start = (0.0, 0.0, 0.0, 0.0, 0.0)
        self._last = (0.0, 0.0, 0.0, 0.0, 0.0)

    def _reading(self) -> tuple[float, float, float, float, float]:
        busy, steal, total = _busy_and_steal()
        return time.monotonic(), busy, steal, total, _tree_cpu_seconds(self.root)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            now = self._reading()
            seconds = now[0] - self._last[0]
            if seconds > 0:
                others = max(0.0, (now[1] - self._last[1]) - (now[4] - self._last[4])) / seconds
                self._others.append(others)
            self._loads.append(os.getloadavg()[0])
            if self.gpu:
                self._gpu_others = max(self._gpu_others, _gpu_other_processes())
            self._last = now

    def start(self) -> ContentionMonitor:
        self._start = self._last = self._reading()
        self._thread = threading.Thread(target=self._loop, name="contention-monitor", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> Contention:
        """End sampling and judge the whole run."""
        self._stop.set()
        if self._thread:
            self._thread.join()
        end = self._reading()
        seconds = max(end[0] - self._start[0], 1e-9)
        others_mean = max(0.0, (end[1] - self._start[1]) - (end[4] - self._start[4])) / seconds
        total = end[3] - self._start[3]
        steal = (end[2] - self._start[2]) / total if total > 0 else 0.0
        reasons = judge(others_mean, steal, self.cpus, self.run_threads, self._gpu_others)
        return Contention(
            samples=len(self._others) + 1,
            seconds=seconds,
            cpus=self.cpus,
            run_threads=self.run_threads,
            others_cores_mean=others_mean,
            others_cores_max=max(self._others, default=others_mean),
            load1_max=max(self._loads, default=os.getloadavg()[0]),
            steal_fraction=steal,
            gpu_other_processes=self._gpu_others,
            contended=bool(reasons),
            reasons=reasons,
        )

    def __enter__(self) -> ContentionMonitor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if not self._stop.is_set():
            self._stop.set()
