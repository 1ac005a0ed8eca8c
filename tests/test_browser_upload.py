"""The dashboard's upload cap, with a real oversized upload in Chromium: `slmlab dashboard --max-upload-mb 1` and a
2 MB trace dropped on the Workloads page's uploader. The browser refuses it with Streamlit's size message and
nothing reaches the importer (no trace is stored: the server runs with --no-defaults)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from tests.browser_support import (
    APP_VIEW,
    chromium_tab,
    exception_texts,
    require_browser,
    serve_dashboard,
    wait_for_idle,
)

pytestmark = pytest.mark.browser


def test_an_upload_over_the_cap_is_refused_and_imports_nothing(tmp_path: Path) -> None:
    require_browser()
    from playwright.sync_api import expect

    oversized = tmp_path / "oversized.csv"
    row = "2023-11-16 18:15:46.6805900,1000,100\n"
    oversized.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n" + row * (2_100_000 // len(row)))
    assert oversized.stat().st_size > 2_000_000
    served = tmp_path / "served"
    served.mkdir()
    with serve_dashboard(served, extra_args=["--max-upload-mb", "1", "--no-defaults"]) as dashboard:
        with chromium_tab() as page:
            page.goto(dashboard.url + "/workloads")
            page.wait_for_selector(APP_VIEW, timeout=90_000)
            wait_for_idle(page)
            uploader = page.locator('[data-testid="stFileUploader"]').first
            uploader.locator('input[type="file"]').set_input_files(str(oversized))
            expect(uploader).to_contain_text("File must be 1.0MB or smaller", timeout=30_000)
            wait_for_idle(page)
            assert not exception_texts(page)
        log = dashboard.log_tail()
    stored = served / "browser.duckdb"  # the page opens (creates) the warehouse; no trace may be in it
    if stored.exists():
        con = duckdb.connect(str(stored), read_only=True)
        try:
            assert con.execute("SELECT count(*) FROM traces").fetchall() == [(0,)], log
        finally:
            con.close()
