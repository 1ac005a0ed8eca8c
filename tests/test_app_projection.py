"""The Projection and Vendor claims pages through AppTest, on the embedded Azure trace in a real DuckDB file (the
first page view replays it, as `run_for` does for the CLI)."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from slmlab.paths import PROJECT_ROOT
from slmlab.replay_store import list_scenarios, load_run, stored_runs

MAIN = str(PROJECT_ROOT / "app" / "main.py")
TRACE = "azure-llm-inference-2023-conv"


def open_page(page: str) -> AppTest:
    at = AppTest.from_file(MAIN, default_timeout=120)
    # open the page directly: the Home page would replay the default trace first
    at.switch_page(f"app_pages/{page}.py").run()
    assert not at.exception, at.exception
    return at


def totals(at: AppTest) -> dict[str, float]:
    """Each policy's total over the horizon, read back from the formatted table ('$1,234' or '-$12')."""
    table = at.dataframe[0].value
    column = next(c for c in table.columns if c.startswith("total over"))
    return {p: float(v.replace("$", "").replace(",", "")) for p, v in zip(table["policy"], table[column])}


def check(at: AppTest, **criteria: float | None) -> AppTest:
    """Tick exactly the given criteria, set their figures, and press Check claim."""
    for name, key in (("cheaper", "cheaper_pct"), ("quality", "quality_pct"), ("p95", "p95_s")):
        box = at.checkbox(key=f"use_{name}")
        if criteria.get(name) is None:
            box.uncheck()
        else:
            box.check()
            at.number_input(key=key).set_value(float(criteria[name]))  # type: ignore[arg-type]
    [b for b in at.button if b.label == "Check claim"][0].click().run()
    assert not at.exception, at.exception
    return at


def test_projection_tables_every_policy_charts_it_and_follows_the_assumptions(db: Path) -> None:
    at = open_page("projection")
    assert at.title[0].value == "Projection"
    assert not at.error, at.error[0].value
    (run,) = stored_runs(db)  # the page replayed the default trace, every policy with its sweep
    assert run["trace"] == TRACE
    policies = set(load_run(int(run["run_id"]), db)["policies"])  # type: ignore[arg-type]
    before = totals(at)
    assert {p.split(" (reference")[0] for p in before} == policies
    assert at.dataframe[0].value.set_index("policy").loc["frontier-only", "break-even"] == "baseline"
    assert len(at.get("plotly_chart")) >= 3  # cumulative cost, components, tornado
    sources = " ".join(c.value for c in at.caption)
    assert f"run {run['run_id']} of '{TRACE}'" in sources and "catalogue version litellm" in sources
    assert "growth_per_month = 0.02 (default)" in sources

    at.number_input(key="assume_growth_per_month").set_value(0.05).run()
    assert not at.exception and not at.error
    after = totals(at)
    assert after["frontier-only"] > before["frontier-only"]
    assert "growth_per_month = 0.05 (set by you)" in " ".join(c.value for c in at.caption)

    at.toggle(key="fit_price_trend").set_value(True).run()
    assert any("cannot be fitted" in w.value and "no start date" in w.value for w in at.warning)
    at.number_input(key="draws").set_value(100).run()
    assert not at.exception and not at.error
    assert {"total, 5th percentile", "total, 95th percentile", "draws that break even"} <= set(
        at.dataframe[0].value.columns
    )
    assert any("100 Monte Carlo draws" in c.value for c in at.caption)
    at.number_input(key="draws").set_value(5).run()
    assert not at.exception
    assert any("at least 10 draws" in e.value for e in at.error)


def test_saving_and_comparing_scenarios(db: Path) -> None:
    at = open_page("projection")
    assert [b.label for b in at.get("download_button")] == [  # type: ignore[attr-defined]
        "Download HTML report",
        "Download PDF report",
        "Download monthly costs (CSV)",
        "Download monthly costs (Parquet)",
    ]
    [b for b in at.button if b.label == "Save scenario"][0].click().run()
    assert any("needs a name" in e.value for e in at.error)
    assert list_scenarios(db) == []
    at.text_input(key="scenario_name").set_value("base").run()
    [b for b in at.button if b.label == "Save scenario"][0].click().run()
    assert not at.exception and any("Saved scenario 'base'" in s.value for s in at.success)
    at.number_input(key="assume_servers").set_value(4).run()
    at.text_input(key="scenario_name").set_value("four servers").run()
    [b for b in at.button if b.label == "Save scenario"][0].click().run()
    assert [s["name"] for s in list_scenarios(db)] == ["four servers", "base"]
    at.multiselect(key="compare").set_value(["base", "four servers"]).run()
    assert not at.exception
    compared = at.dataframe[-1].value
    assert set(compared["scenario"]) == {"base", "four servers"}
    assert set(compared[compared["scenario"] == "four servers"]["servers at the end"]) <= {"0", "4"}

    at.radio(key="projection_source").set_value("a stored run").run()
    assert not at.exception and not at.error
    assert at.selectbox(key="projection_run").value.startswith(f"run 1: {TRACE}")
    assert len(stored_runs(db)) == 1


def test_claims_not_supported_not_testable_and_a_bad_claim(db: Path) -> None:
    at = open_page("claims")
    assert at.title[0].value == "Vendor claims"
    assert any("not testable" in e.label for e in at.expander)
    assert all(at.checkbox(key=f"use_{name}").value for name in ("cheaper", "quality", "p95"))  # every part on

    check(at)  # nothing ticked: the library's error, shown; nothing replayed
    assert any("needs at least one of" in e.value for e in at.error)
    assert stored_runs(db) == []

    check(at, cheaper=70, p95=2)
    assert any(e.value.startswith("**NOT SUPPORTED**") for e in at.error), [e.value for e in at.error]
    assert any("misses p95" in m.value for m in at.markdown)
    criteria = at.dataframe[0].value
    assert list(criteria["criterion"]) == ["cheaper", "p95"] and "missed" in set(criteria["result"])
    assert any("catalogue litellm" in c.value and "Arrivals: recorded" in c.value for c in at.caption)

    check(at, cheaper=70, quality=95, p95=2)  # quality cannot be tested here, but p95 refutes the claim anyway
    assert any(e.value.startswith("**NOT SUPPORTED**") for e in at.error), [e.value for e in at.error]
    criteria = at.dataframe[0].value.set_index("criterion")
    assert criteria.loc["quality", "result"] == "not testable" and criteria.loc["p95", "result"] == "missed"
    assert criteria.loc["p95", "margin"].endswith(" s over")  # in seconds, not a percentage of 2 s
    assert [b.label for b in at.get("download_button")] == [  # type: ignore[attr-defined]
        "Download claim report (HTML)",
        "Download claim report (PDF)",
    ]

    check(at, quality=95)
    assert any(w.value.startswith("**NOT TESTABLE**") for w in at.warning)
    assert any("every quality figure in this replay is an assumption" in m.value for m in at.markdown)
    assert len(stored_runs(db)) == 1  # the replay the first check made is reused
