"""Contention: the verdict rule both ways, and a real CPU-burning process marks a run contended."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil

from bench.contention import SLACK_CORES, ContentionMonitor, judge


def test_rule_flags_others_past_the_free_cores_and_steal() -> None:
    assert judge(0.1, 0.0, cpus=2, run_threads=2) == ()
    assert judge(0.9, 0.0, cpus=2, run_threads=1) == ()  # one core was left free for them
    assert judge(1.2, 0.0, cpus=2, run_threads=1)  # more than the free core
    assert judge(SLACK_CORES + 0.01, 0.0, cpus=2, run_threads=2)
    assert "steal" in judge(0.0, 0.08, cpus=2, run_threads=2)[0]
    assert "GPU" in judge(0.0, 0.0, cpus=2, run_threads=2, gpu_other_processes=1)[0]


def _detached_burner() -> psutil.Process:
    """A CPU-burning process outside our process tree (its shell parent exits at once), as another user's job is:
    a child of ours would count as the run's own work."""
    shell = subprocess.run(
        ["sh", "-c", f'"{sys.executable}" -c "while True: pass" >/dev/null 2>&1 & echo $!'],
        capture_output=True,
        text=True,
        check=True,
    )
    burner = psutil.Process(int(shell.stdout.strip()))
    assert burner.pid not in {p.pid for p in psutil.Process().children(recursive=True)}
    return burner


def test_a_busy_process_marks_the_run_contended() -> None:
    burner = _detached_burner()
    try:
        time.sleep(0.3)
        monitor = ContentionMonitor(run_threads=psutil.cpu_count() or 1, interval_s=0.2).start()
        time.sleep(1.5)
        report = monitor.stop()
    finally:
        burner.kill()
    assert report.others_cores_mean > 0.5  # the burner alone keeps a core busy
    assert report.contended and report.warning() and "other processes used" in report.warning()
    assert report.samples >= 3


def test_the_runs_own_workers_count_as_the_run() -> None:
    """A worker process we spawned is part of the run (the tree's CPU time), never 'other processes'."""
    from bench.contention import _tree_cpu_seconds

    before = _tree_cpu_seconds(psutil.Process())
    burn = "import time\nwhile time.process_time() < 0.5: pass\nprint('done', flush=True)\ntime.sleep(30)"
    child = subprocess.Popen([sys.executable, "-c", burn], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "done"  # it has used 0.5 s of CPU, however busy the machine
        alive = _tree_cpu_seconds(psutil.Process())
    finally:
        child.kill()
        child.wait()
    reaped = _tree_cpu_seconds(psutil.Process())  # an exited, waited-for worker still counts
    assert alive - before >= 0.45 and reaped - before >= 0.45  # clock ticks round the 0.5 s down a little
