"""Reports a CFO can read: the projection and the claim report rendered by Chromium must open with the answer, show
charts as images, fit a few printed pages, and never show a raw Python value."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.report import claim_html, pdf_bytes, projection_focus, projection_html
from app.workflows import monte_carlo, run_for
from simulators.claims import Claim, check_claim
from simulators.formatting import duration, money, share
from simulators.projection import CostAssumptions, basis_from_run, project
from simulators.uncertainty import tornado
from slmlab.replay_store import load_points, load_run
from slmlab.traces.defaults import DEFAULT_TRACES
from tests.browser_support import CHROMIUM, CHROMIUM_ARGS, browser_problem

RAW = {
    "None": re.compile(r"\bNone\b"),
    "a dict": re.compile(r"\{'|\{\""),
    "a list repr": re.compile(r"\['"),
    "NaN or inf": re.compile(r"\b(nan|NaN|inf)\b"),
    "a float with more than 6 decimals": re.compile(r"\d\.\d{7,}"),
    "a Python bool": re.compile(r"\b(True|False)\b"),
}


def raw_values(text: str) -> list[str]:
    """Every raw Python value in a rendered text, by kind, with its context."""
    found = []
    for kind, pattern in RAW.items():
        for match in pattern.finditer(text):
            found.append(f"{kind}: ...{text[max(0, match.start() - 40) : match.end() + 40]!r}...")
    return found


def test_the_raw_value_check_can_fail() -> None:
    assert raw_values("total {'api': 5345890.48}, quality 0.8979138696684912, margin None")
    assert not raw_values("total $5,345,890, quality 89.8%, margin 4.24 s over")


def test_figures_are_written_for_people() -> None:
    assert [duration(s) for s in (0.0864, 4.24, 6.24, 725.0, 86_340.748)] == [
        "86 ms",
        "4.24 s",
        "6.24 s",
        "12.1 min",
        "24.0 h",
    ]
    assert [money(v) for v in (5.3, 1234.5, -726_599.2, None)] == ["$5.30", "$1,234", "-$726,599", "n/a"]
    assert share(0.8979138696684912) == "89.8%"


@pytest.mark.browser
def test_both_reports_render_in_chromium_summary_first_without_raw_values(db: Path, tmp_path: Path) -> None:
    if problem := browser_problem():
        pytest.fail(f"the browser tests cannot run: {problem}", pytrace=False)
    from playwright.sync_api import sync_playwright

    run_id = run_for(DEFAULT_TRACES[0].stem, db=db)
    run, points = load_run(run_id, db), load_points(run_id, db).to_pylist()
    projection = project(basis_from_run(run), CostAssumptions())
    focus = projection_focus(projection, run)
    assert focus is not None
    documents = {
        "projection": projection_html(
            projection,
            run,
            uncertainty=monte_carlo(projection, draws=100, seed=0, db=db),
            sensitivity={"policy": focus, "bars": tornado(projection, focus)},
        ),
        "claim": claim_html(claim := Claim(70, 95, 2), check_claim(claim, run, points), run),
    }
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 1200})
            for name, document in documents.items():
                path = tmp_path / f"{name}.html"
                path.write_text(document, encoding="utf-8")
                page.goto(path.as_uri())
                text = page.inner_text("body")
                assert not raw_values(text), f"{name} report:\n" + "\n".join(raw_values(text))
                first = page.locator("div.answer").first
                assert first.is_visible() and first.bounding_box()["y"] < 200, f"{name}: the answer does not come first"
                assert page.locator("svg").count() >= 1 and not page.locator("script").count()
                pages = len(re.findall(rb"/Type\s*/Page[^s]", page.pdf(format="A4")))
                assert 1 <= pages <= 6, f"{name} report prints on {pages} pages"
        finally:
            browser.close()
    assert "NOT SUPPORTED" in documents["claim"] and " s over" in documents["claim"]
    assert pdf_bytes(documents["claim"]).startswith(b"%PDF")  # the page's PDF download, printed the same way
