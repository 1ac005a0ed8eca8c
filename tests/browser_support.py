"""Helpers for the real-browser tests: serve the dashboard on 127.0.0.1, drive Debian's Chromium with Playwright,
wait for Streamlit to finish a run, and save full-page screenshots.

Playwright's own browser download is not reachable in CI, so the browser is always the system Chromium
(`apt-get install chromium`, done by scripts/setup.sh).
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path(os.environ.get("SLMLAB_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu"]
SCREENSHOTS = PROJECT_ROOT / "results" / "screenshots"
SKIP_ENV_VAR = "SLMLAB_SKIP_BROWSER"
VIEWPORT = {"width": 1400, "height": 1000}
MAX_SCREENSHOT_HEIGHT = 12_000  # px; Chromium refuses very tall captures

# Streamlit's frontend marks its root with the script state; "notRunning" once a run (or fragment run) is over.
APP_IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
APP_VIEW = '[data-testid="stAppViewContainer"]'
EXCEPTION = '[data-testid="stException"]'
# A chart counts once it has drawn its data, not an empty frame waiting for it: a Plotly trace or heatmap (the
# component loads lazily after the script run ends), or the marks of Home's Vega-Lite chart.
CHART = (
    '[data-testid="stPlotlyChart"] .js-plotly-plot .main-svg :is(g.trace, g.hm), '
    '[data-testid="stVegaLiteChart"] svg g.mark-symbol path'
)
STALE = '[data-testid="stElementContainer"][data-stale="true"]'  # output of a run in progress, greyed
ACTIVE_NAV = '[data-testid="stSidebarNavLink"][aria-current="page"]'

_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1 never goes through a proxy
SETUP_HINT = "run `bash scripts/setup.sh` (it installs Debian's chromium and the dev extra, which has playwright)"


def browser_problem() -> str | None:
    """Why the browser tests cannot run here, in words with the fix; None when they can."""
    if not CHROMIUM.exists():
        return f"Chromium is not installed at {CHROMIUM}; {SETUP_HINT}"
    if importlib.util.find_spec("playwright") is None:
        return f"the Python package playwright is not installed in this environment; {SETUP_HINT}"
    return None


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Dashboard:
    """A running `slmlab dashboard`: its URL, process and log file."""

    url: str
    process: subprocess.Popen
    log: Path

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def llama_workers(self) -> list[psutil.Process]:
        """Spawned worker processes (benchmarks, evaluations) still alive under the dashboard."""
        try:
            children = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        workers = []
        for child in children:
            try:
                if "spawn_main" in " ".join(child.cmdline()) and child.is_running():
                    workers.append(child)
            except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
                continue
        return workers

    def wait_for_no_llama_worker(self, timeout_s: float = 120.0) -> None:
        """Never run two llama.cpp processes at once: wait until the last background job's worker has exited."""
        deadline = time.monotonic() + timeout_s
        while (workers := self.llama_workers()) and time.monotonic() < deadline:
            time.sleep(0.5)
        if workers:
            raise AssertionError(
                f"a llama.cpp worker is still running after {timeout_s:.0f} s: "
                + "; ".join(" ".join(w.cmdline())[:120] for w in workers)
            )


@contextmanager
def serve_dashboard(
    workdir: Path, startup_timeout_s: float = 120.0, extra_args: Sequence[str] = ()
) -> Iterator[Dashboard]:
    """Start `slmlab dashboard --port <free port> [extra_args]` with its own database and cache; stop it (and its
    children)."""
    port = free_port()
    log = workdir / "dashboard.log"
    env = {
        **os.environ,
        "SLMLAB_DB": str(workdir / "browser.duckdb"),
        "SLMLAB_CACHE_DIR": str(workdir / "cache"),
        # no reruns when a source file changes while the test runs (`slmlab dashboard` also asks for none)
        "STREAMLIT_SERVER_FILE_WATCHER_TYPE": "none",
        "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
    }
    slmlab = Path(sys.executable).with_name("slmlab")
    command = [str(slmlab)] if slmlab.exists() else [sys.executable, "-m", "app.cli"]
    with log.open("wb") as out:
        # its own session, so the Streamlit child and any benchmark worker are stopped with it
        process = subprocess.Popen(
            [*command, "dashboard", "--port", str(port), *extra_args],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    dashboard = Dashboard(f"http://127.0.0.1:{port}", process, log)
    try:
        deadline = time.monotonic() + startup_timeout_s
        while True:
            if process.poll() is not None:
                raise AssertionError(f"slmlab dashboard exited with {process.returncode}:\n{dashboard.log_tail()}")
            try:
                with _DIRECT.open(f"{dashboard.url}/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"slmlab dashboard did not answer on port {port} within {startup_timeout_s:.0f} s:"
                    f"\n{dashboard.log_tail()}"
                )
            time.sleep(0.25)
        yield dashboard
    finally:
        _stop(process)


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM the dashboard's process group, then SIGKILL what is left after 10 s."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # the group may outlive its leader (Streamlit, workers)
    process.wait(timeout=10)


def wait_for_idle(page, timeout_ms: float = 120_000) -> None:  # type: ignore[no-untyped-def]
    """Wait until Streamlit has no script run in progress, twice a moment apart (a rerun may just be starting)."""
    for _ in range(2):
        page.wait_for_selector(APP_IDLE, state="attached", timeout=timeout_ms)
        page.wait_for_timeout(300)
    page.wait_for_selector(APP_IDLE, state="attached", timeout=timeout_ms)


def exception_texts(page) -> list[str]:  # type: ignore[no-untyped-def]
    """The text of every Streamlit exception block on the page."""
    return page.locator(EXCEPTION).all_inner_texts()


def save_full_page(page, path: Path) -> Path:  # type: ignore[no-untyped-def]
    """Screenshot the whole page: Streamlit scrolls inside its main container, so grow the viewport to fit it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    height = page.evaluate("""() => {
        const main = document.querySelector('[data-testid="stMain"]');
        return Math.max(main ? main.scrollHeight : 0, document.documentElement.scrollHeight);
    }""")
    page.set_viewport_size(
        {"width": VIEWPORT["width"], "height": int(min(max(height, VIEWPORT["height"]), MAX_SCREENSHOT_HEIGHT))}
    )
    try:
        page.mouse.move(VIEWPORT["width"] // 2, 5)  # no hover effects (heading links, sidebar, charts) in the picture
        page.wait_for_timeout(800)  # let Plotly re-lay out its charts for the new size
        # A job's status fragment reruns every second and greys its output while it runs: take the picture between
        # two of its runs (a few tries), so it shows what stays on the page.
        for _ in range(5):
            page.wait_for_selector(APP_IDLE, state="attached", timeout=10_000)
            page.wait_for_function(f"!document.querySelector('{STALE}')", timeout=10_000)
            page.screenshot(path=str(path), full_page=True, animations="disabled")
            if page.evaluate(f"!document.querySelector('{STALE}')"):
                break
    finally:
        page.set_viewport_size(VIEWPORT)
    return path


def require_browser() -> None:
    """Skip when asked (SLMLAB_SKIP_BROWSER=1); otherwise fail, naming the fix, where Chromium or playwright is
    missing (a browser test that silently skipped would hide a broken setup)."""
    if os.environ.get(SKIP_ENV_VAR) == "1":
        pytest.skip(f"{SKIP_ENV_VAR}=1")
    if problem := browser_problem():
        pytest.fail(f"the browser tests cannot run: {problem}, or set {SKIP_ENV_VAR}=1 to skip them.", pytrace=False)


@contextmanager
def chromium_tab(**options: object) -> Iterator:  # type: ignore[type-arg]
    """A headless tab of the system Chromium at the tests' viewport, 60 s default timeout; closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            tab = browser.new_page(viewport=VIEWPORT, **options)
            tab.set_default_timeout(60_000)
            yield tab
        finally:
            browser.close()
