"""One run, one figure: the cost per 1,000 requests of a stored replay reads the same in the CLI's JSON, on Home, on
Routing replay, on Projection and in the projection report (every one renders the typed summary through the same
formatting)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.cli.main import main
from simulators import formatting as fmt
from slmlab.paths import PROJECT_ROOT
from slmlab.replay_store import stored_runs

MAIN = str(PROJECT_ROOT / "app" / "main.py")


@pytest.mark.slow
def test_cost_per_1000_requests_is_the_same_in_the_cli_and_on_every_page(db: Path, capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert main(["simulate", "--sweep", "--json"]) == 0  # every policy on the embedded default, stored
    report = json.loads(capsys.readouterr().out)
    (run,) = stored_runs(db)
    assert report["run_id"] == run["run_id"]
    cli = {label: fmt.money(s["cost_per_1k_usd"]) for label, s in report["policies"].items()}

    home = AppTest.from_file(MAIN, default_timeout=120)
    home.run()
    assert not home.exception, home.exception
    chosen = next(
        c.value.split("**")[1]
        for c in home.caption
        if c.value.startswith("policy: **") and "frontier-only" not in c.value
    )
    on_home = [m.value for m in home.metric if m.label == "cost per 1,000 requests"]
    assert on_home == [cli["frontier-only"], cli[chosen]]

    routing = AppTest.from_file(MAIN, default_timeout=120)
    routing.switch_page("app_pages/routing.py").run()
    assert not routing.exception, routing.exception
    table = next(d.value for d in routing.dataframe if "cost per 1,000 requests" in d.value.columns)
    assert dict(zip(table["policy"], table["cost per 1,000 requests"])) == cli

    projection = AppTest.from_file(MAIN, default_timeout=120)
    projection.switch_page("app_pages/projection.py").run()
    assert not projection.exception, projection.exception
    table = next(d.value for d in projection.dataframe if "cost per 1,000 requests (replay)" in d.value.columns)
    shown = {p.split(" (reference")[0]: v for p, v in zip(table["policy"], table["cost per 1,000 requests (replay)"])}
    assert shown == {p: c for p, c in cli.items() if p in shown} and {"frontier-only", chosen} <= set(shown)
    report_file = tmp_path / "projection.html"
    assert main(["project", "--html", str(report_file)]) == 0  # the CFO's report of the same run
    key_figures = report_file.read_text().split("<h2>Key figures</h2>")[1].split("</table>")[0]
    assert all(f">{cli[p]}<" in key_figures for p in ("frontier-only", chosen))
    assert len(stored_runs(db)) == 1  # every page and the report read the same stored run
