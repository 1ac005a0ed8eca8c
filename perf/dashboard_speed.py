"""Speed check for the dashboard: cold start to the first chart on the embedded default, and re-simulating a
100k-request trace after a slider change. Goals: at most 3 s and at most 300 ms.

    .venv/bin/python perf/dashboard_speed.py [--repeat 3]

Cold start: Chromium (Debian's, headless) is already open, as a user's browser would be; the clock starts when
`slmlab dashboard` is launched and stops when the Home page's chart has its data drawn. Measured
twice: on a database that already holds the embedded traces and a replay (every later start), and on an empty one
(the very first start, which imports the traces and replays every policy first).
Re-simulation: the what-if slider's path,
`simulators.replay.resimulate` on inputs kept in memory, for the Azure conversation trace volume-scaled to 100,000
requests; and the whole Routing replay page rerun after a slider move (AppTest, server side, default trace).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.workflows import (
    build_inputs,
    simulate,
)
from simulators.inputs import ReplayConfig
from simulators.policies.registry import parse_policies, parse_policy
from simulators.replay import resimulate
from slmlab.paths import PROJECT_ROOT
from slmlab.traces.defaults import DEFAULT_TRACES, ensure_default_workloads

TRACE = DEFAULT_TRACES[0].stem
# Home's chart (Vega-Lite, see app/vega.py) with its points drawn, not the empty frame shown while it reads the run
FIRST_CHART = '[data-testid="stVegaLiteChart"] svg g.mark-symbol path'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cold_start(browser, db: Path) -> dict[str, float]:
    """Seconds from launching `slmlab dashboard` to: the server answering, the browser's page loaded, Vega's
    JavaScript received (Streamlit fetches it with the first chart), and the Home page's chart drawn."""
    port = free_port()
    env = {**os.environ, "SLMLAB_DB": str(db)}
    started = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "dashboard", "--port", str(port)],
        env=env,
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    marks: dict[str, float] = {}
    try:
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.05).close()
                break
            except OSError:
                if server.poll() is not None:
                    raise RuntimeError("the dashboard exited before serving") from None
                time.sleep(0.02)
        marks["server answers"] = time.perf_counter() - started
        page = browser.new_page()  # a fresh browser context: nothing cached from an earlier start
        page.on(
            "response",
            lambda response: (
                marks.setdefault("chart code received", time.perf_counter() - started)
                if "embed." in response.url
                else None
            ),
        )
        page.goto(f"http://127.0.0.1:{port}/")
        marks["page loaded"] = time.perf_counter() - started
        page.wait_for_selector(FIRST_CHART, timeout=120_000)
        marks["first chart"] = time.perf_counter() - started
        page.close()
        return marks
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the whole group, should anything have been spawned under it
        server.wait(timeout=30)


def page_rerun_after_slider(db: Path, repeat: int) -> list[float]:
    """Seconds the Routing replay page takes to rerun after the what-if slider moves (AppTest, server side)."""
    from streamlit.testing.v1 import AppTest

    os.environ["SLMLAB_DB"] = str(db)
    at = AppTest.from_file(str(PROJECT_ROOT / "app" / "main.py"), default_timeout=120)
    at.switch_page("app_pages/routing.py").run()
    times = []
    for i in range(repeat):
        slider = at.slider(key="what_if_value")
        started = time.perf_counter()
        slider.set_value(0.3 + 0.1 * (i % 5)).run()
        times.append(time.perf_counter() - started)
        assert not at.exception, at.exception
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as folder:
        ready = Path(folder) / "ready.duckdb"
        ensure_default_workloads(ready)
        simulate(ReplayConfig(TRACE), parse_policies("all"), sweep=True, db=ready)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"]
            )
            warm = [cold_start(browser, ready) for _ in range(args.repeat)]
            first = cold_start(browser, Path(folder) / "empty.duckdb")
            browser.close()
        totals = [marks["first chart"] for marks in warm]
        median = statistics.median(totals)
        print(
            f"cold start to the first chart, database ready (every later start): median {median:.2f} s "
            f"of {', '.join(f'{t:.2f}' for t in totals)}  (goal <= 3 s: {'PASS' if median <= 3 else 'FAIL'})"
        )
        for mark in ("server answers", "page loaded", "chart code received", "first chart"):
            print(
                f"  {mark + ':':24} median {statistics.median(m[mark] for m in warm if mark in m):.2f} s after launch"
            )
        print(
            f"cold start to the first chart, empty database (the very first start: imports the traces and replays "
            f"every policy with its sweep): {first['first chart']:.2f} s"
        )

        inputs = build_inputs(ReplayConfig(TRACE, volume=100_000 / 19_366), db=ready)
        cascade = parse_policy("cascade")
        resimulate(inputs, cascade, "threshold", 0.5)  # the page keeps inputs in memory; the first call compiles
        times = []
        for i in range(max(5, args.repeat)):
            started = time.perf_counter()
            resimulate(inputs, cascade, "threshold", 0.2 + 0.1 * i)
            times.append(time.perf_counter() - started)
        median = statistics.median(times) * 1000
        print(
            f"re-simulating {inputs.n:,} requests after a slider change (cascade threshold): median {median:.0f} ms "
            f"(goal <= 300 ms: {'PASS' if median <= 300 else 'FAIL'})"
        )
        reruns = page_rerun_after_slider(ready, max(5, args.repeat))
        print(
            f"the whole Routing replay page rerun after the slider moves ({19_366:,} requests, server side): median "
            f"{statistics.median(reruns) * 1000:.0f} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
