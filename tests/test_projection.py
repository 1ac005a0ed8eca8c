"""Cost over time, break-even, uncertainty, scenarios, reports and vendor claims: hand-computed cases first, then
the real embedded default through the CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from app.cli.main import main
from app.workflows import compare_scenarios, monte_carlo, save_scenario
from simulators.claims import Claim, check_claim
from simulators.projection import (
    CostAssumptions,
    PolicyReplay,
    ReplayBasis,
    break_even,
    components,
    fitted_price_trend,
    project,
)
from simulators.uncertainty import tornado
from slmlab.replay_store import list_scenarios, load_scenario

GOLDEN = Path(__file__).parent / "golden" / "monte_carlo_seed3.json"


def basis(local_load: float = 0.35, span_s: float | None = 3600.0) -> ReplayBasis:
    """100 requests in an hour; frontier-only pays 20 USD, the hybrid 10 USD plus one local model at `local_load`."""
    return ReplayBasis(
        run_id=0,
        trace="hand",
        requests=100,
        span_s=span_s,
        servers_per_local_model=1,
        policies=(
            PolicyReplay("frontier-only", 20.0, {}, 0.9, 1000.0, 5),
            PolicyReplay("hybrid", 10.0, {"small": local_load}, 0.8, 2000.0, 0),
        ),
    )


FLAT = CostAssumptions(
    months=3,
    growth_per_month=0.0,
    api_price_change_per_year=0.0,
    server_capex_usd=3600.0,
    server_lifetime_months=36,
    server_watts_busy=300.0,
    server_watts_idle=100.0,
    tariff_usd_per_kwh=0.2,
    ops_usd_per_server_month=200.0,
)


def test_monthly_components_by_hand() -> None:
    c = components(basis(), basis().policy("hybrid"), FLAT)
    # the trace's hour repeats 730.5 hours a month: x730.5
    assert c["api"].tolist() == pytest.approx([7305.0] * 3)
    assert c["servers"].tolist() == [1, 1, 1]  # 0.35 busy / 0.7 target -> one server
    assert c["hardware"].tolist() == pytest.approx([100.0] * 3)  # 3,600 over 36 months
    assert c["energy"].tolist() == pytest.approx([(100 + 200 * 0.35) * 730.5 / 1000 * 0.2] * 3)  # 24.837
    assert c["operations"].tolist() == pytest.approx([200.0] * 3)
    frontier = components(basis(), basis().policy("frontier-only"), FLAT)
    assert frontier["api"].tolist() == pytest.approx([14610.0] * 3) and frontier["hardware"].sum() == 0


def test_growth_price_trend_and_fleet_sizing() -> None:
    a = FLAT.with_values(months=13, growth_per_month=0.1, api_price_change_per_year=-0.2)
    c = components(basis(), basis().policy("hybrid"), a)
    assert c["api"][2] == pytest.approx(7305.0 * 1.1**2 * 0.8 ** (2 / 12))
    assert c["api"][12] == pytest.approx(7305.0 * 1.1**12 * 0.8)
    servers = c["servers"]
    assert np.all(np.diff(servers) >= 0) and servers[-1] == np.ceil(0.35 * 1.1**12 / 0.7)  # bought, never sold
    assert np.all(c["utilisation"] <= 0.7 + 1e-9)
    fixed = components(basis(local_load=0.9), basis(local_load=0.9).policy("hybrid"), a.with_values(servers=1))
    assert fixed["servers"].tolist() == [1] * 13 and fixed["utilisation"][1] < 1 < fixed["utilisation"][2]  # 0.99, 1.09
    projection = project(basis(local_load=0.9), a.with_values(servers=1))
    assert projection.get("hybrid").short_of_capacity_from == 3  # flagged from the first month it cannot keep up


def test_break_even_by_hand() -> None:
    assert break_even(np.array([5.0, 10, 15]), np.array([4.0, 9, 16])) == 3
    assert break_even(np.array([1.0, 2, 3]), np.array([2.0, 3, 4])) == 1
    assert break_even(np.array([5.0, 10, 15]), np.array([4.0, 9, 14])) is None
    assert break_even(np.array([1.0, 10, 11]), np.array([2.0, 9, 12])) == 3  # below, above, below again: month 3


def test_projection_reports_break_even_and_totals() -> None:
    result = project(basis(), FLAT).as_dict()
    hybrid = result["policies"]["hybrid"]
    assert hybrid["monthly_usd"] == [round(7305 + 100 + 24.837 + 200, 2)] * 3
    assert hybrid["break_even_month"] == 1 and result["policies"]["frontier-only"]["break_even_month"] == "never"
    dear = project(basis(), FLAT.with_values(server_capex_usd=400_000.0, server_lifetime_months=12)).as_dict()
    assert dear["policies"]["hybrid"]["break_even_month"] == "never"
    assert result["assumption_sources"]["months"] == "assumption (set by the user)"
    assert result["assumption_sources"]["target_utilisation"] == "assumption (default)"


def test_a_trace_without_arrivals_needs_monthly_requests() -> None:
    with pytest.raises(ValueError, match="records no arrival times.*monthly_requests"):
        project(basis(span_s=None), FLAT)
    result = project(basis(span_s=None), FLAT.with_values(monthly_requests=1000.0)).as_dict()
    assert result["policies"]["frontier-only"]["monthly_usd"][0] == pytest.approx(200.0)  # 20 USD per 100 requests


def test_price_trend_is_fitted_only_from_dated_prices(tmp_path: Path) -> None:
    shipped = fitted_price_trend()
    assert shipped["method"] == "not fitted" and "6 models changed price" in shipped["reason"]
    (tmp_path / "v.json").write_text(
        json.dumps(
            {
                "vendor": "v",
                "models": [
                    {
                        "id": "m",
                        "price_history": [
                            {"input": 4, "output": 6, "from_date": "2024-01-01", "to_date": "2024-12-31"},
                            {"input": 2, "output": 3, "from_date": "2025-01-01", "to_date": "2025-12-31"},
                        ],
                    }
                ],
            }
        )
    )
    fitted = fitted_price_trend(tmp_path)
    assert fitted["method"] == "fitted" and fitted["api_price_change_per_year"] == pytest.approx(-0.5, abs=0.01)


def test_tornado_bars_are_the_projection_at_each_end_of_a_range() -> None:
    projection = project(basis(), FLAT)
    bars = tornado(projection, "hybrid")
    widths = [abs(b["saving_high"] - b["saving_low"]) for b in bars]
    assert widths == sorted(widths, reverse=True) and {b["assumption"] for b in bars} == set(CostAssumptions.ranges())
    capex = next(b for b in bars if b["assumption"] == "server_capex_usd")
    high = project(basis(), FLAT.with_values(server_capex_usd=capex["high"]))
    assert capex["saving_high"] == pytest.approx(
        high.get("frontier-only").cumulative[-1] - high.get("hybrid").cumulative[-1]
    )


def test_seeded_monte_carlo_matches_the_golden_file() -> None:
    result = monte_carlo(project(basis(), FLAT.with_values(months=12)), draws=200, seed=3, bootstrap=False)
    assert result["bootstrap"].startswith("none")
    summary = json.loads(json.dumps(result), parse_float=lambda x: float(f"{float(x):.10g}"))
    if os.environ.get("SLMLAB_UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
    assert summary == json.loads(GOLDEN.read_text(), parse_float=lambda x: float(f"{float(x):.10g}"))
    band = result["policies"]["hybrid"]
    assert band["total_p5"] < band["total_p50"] < band["total_p95"] and 0 <= band["break_even_share"] <= 1


def run_dict(quality_source: dict, arrivals: str = "recorded", cascade_confidence: dict | None = None) -> dict:
    """A stored replay as `load_run` returns it, with two policies beside the baseline."""

    def summary(cost: float, quality: float, p95_ms: float, **extra: object) -> dict:
        return {"cost_usd": cost, "quality": quality, "latency_ms": {"p95": p95_ms}, **extra}

    return {
        "run_id": 7,
        "trace": "hand",
        "catalogue_version": "litellm 1.110.2",
        "config": {"frontier_model": "big"},
        "inputs": {"quality_source": quality_source, "arrivals": arrivals, "token_source": {}},
        "policies": {
            "frontier-only": summary(100.0, 0.90, 2000.0),
            "static-map": summary(60.0, 0.87, 2500.0),
            "cascade": summary(30.0, 0.88, 9000.0, confidence_source=cascade_confidence or {"measured": 5}),
            "oracle": summary(5.0, 0.99, 1000.0),
        },
    }


MEASURED = {"small": {"measured": 10}, "big": {"recorded": 10}}


@pytest.mark.parametrize(
    "claim, verdict, closest",
    [
        (Claim(cheaper_pct=35, quality_pct=95), "supported", "cascade"),  # both meet it; cascade with more room
        (Claim(cheaper_pct=65, quality_pct=95, p95_s=10), "supported", "cascade"),
        (Claim(cheaper_pct=65, quality_pct=95, p95_s=3), "not supported", "static-map"),
        (Claim(cheaper_pct=99), "not supported", "cascade"),  # the oracle (95% cheaper) is never a candidate
    ],
)
def test_claims_by_hand(claim: Claim, verdict: str, closest: str) -> None:
    result = check_claim(claim, run_dict(MEASURED), [])
    assert (result.verdict, result.closest.policy) == (verdict, closest), result.reasons


def test_a_claim_that_is_not_supported_says_by_how_much() -> None:
    result = check_claim(Claim(cheaper_pct=65, quality_pct=95, p95_s=3), run_dict(MEASURED), [])
    margins = {m.criterion: m for m in result.margins}  # in the claim's own units
    assert margins["cheaper"].value == pytest.approx(-25.0) and margins["cheaper"].unit == "points"  # 40%, not 65%
    assert margins["cheaper"].text == "25.0 points short" and margins["cheaper"].result == "missed"
    assert margins["p95"].value == pytest.approx(0.5) and margins["p95"].text == "500 ms to spare"  # 2.5 s of 3 s
    assert "misses cheaper (25.0 points short)" in result.reasons[-1]


def test_a_testable_part_missed_by_every_candidate_refutes_the_claim_whatever_the_rest() -> None:
    """Quality cannot be tested (all assumed), but no setting reaches p95 <= 2 s: not supported, not 'not testable'."""
    run = run_dict({"small": {"assumption": 10}, "big": {"assumption": 10}})
    result = check_claim(Claim(cheaper_pct=70, quality_pct=95, p95_s=2), run, [])
    assert result.verdict == "not supported", result.reasons
    margins = {m.criterion: m for m in result.margins}
    assert margins["quality"].result == "not testable" and margins["p95"].result == "missed"
    assert any("would not change this" in r for r in result.reasons)
    # the same claim with a p95 that some candidate meets cannot be decided without quality
    open_claim = check_claim(Claim(cheaper_pct=35, quality_pct=95, p95_s=10), run, [])
    assert open_claim.verdict == "not testable" and open_claim.closest.policy == "static-map"  # most room


@pytest.mark.parametrize(
    "run, why",
    [
        (
            run_dict({"small": {"assumption": 10}, "big": {"assumption": 10}}),
            "every quality figure in this replay is an assumption",
        ),
        (run_dict(MEASURED, arrivals="none recorded"), "records no arrival times"),
        (run_dict(MEASURED, cascade_confidence={"assumption": 10}), "assumed confidence signal"),
    ],
)
def test_claims_the_data_cannot_test(run: dict, why: str) -> None:
    claim = Claim(cheaper_pct=65, quality_pct=95, p95_s=10)
    result = check_claim(claim, run, [])
    assert result.verdict == "not testable" and any(why in r for r in result.reasons), result.reasons


def test_a_claim_needs_a_criterion() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Claim()


def test_done_means_project_json_on_the_embedded_default(db: Path, capsys) -> None:
    assert main(["project", "--json"]) == 0  # replays the embedded default first
    report = json.loads(capsys.readouterr().out)
    assert report["months"] == 36 and report["baseline"] == "frontier-only"
    for policy in report["policies"].values():
        assert len(policy["monthly_usd"]) == 36 and len(policy["cumulative_usd"]) == 36
        assert policy["break_even_month"] == "never" or 1 <= policy["break_even_month"] <= 36
    assert report["policies"]["frontier-only"]["break_even_month"] == "never"
    assert report["price_trend"]["method"] == "assumption" and report["sensitivity"]["bars"]


def test_claim_cli_not_supported_with_the_margin(db: Path, capsys) -> None:
    assert main(["claim", "--cheaper", "70", "--p95", "2", "--json"]) == 0
    verdict = json.loads(capsys.readouterr().out)
    assert verdict["verdict"] == "not supported"
    p95 = next(m for m in verdict["margins"] if m["criterion"] == "p95")
    assert p95["value"] < 0 and p95["unit"] == "s" and p95["text"].endswith(" s over")
    assert verdict["candidates"] > 10  # every policy as configured and every sweep point
    assert main(["claim", "--cheaper", "50", "--quality", "95"]) == 0
    assert "NOT TESTABLE" in capsys.readouterr().out  # quality on the Azure trace is all assumption


def test_scenarios_reports_and_uncertainty_through_the_cli(db: Path, capsys, tmp_path: Path) -> None:
    html, csv = tmp_path / "report.html", tmp_path / "months.csv"
    assert (
        main(
            [
                "project",
                "--months",
                "12",
                "--scenario",
                "base",
                "--uncertainty",
                "50",
                "--html",
                str(html),
                "--csv",
                str(csv),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "saved as scenario 'base'" in out and "breaks even within the horizon" in out
    assert main(["project", "--months", "12", "--set", "growth_per_month=0.05", "--scenario", "fast growth"]) == 0
    capsys.readouterr()
    assert [s["name"] for s in list_scenarios(db)] == ["fast growth", "base"]
    rows = compare_scenarios(["base", "fast growth"], db)
    frontier = {r["scenario"]: r["total_usd"] for r in rows if r["policy"] == "frontier-only"}
    assert frontier["fast growth"] > frontier["base"]
    with pytest.raises(ValueError, match="saved: base, fast growth"):
        load_scenario("nope", db)
    text = html.read_text()
    assert "<svg" in text and "<script" not in text and 'src="http' not in text  # charts as inline SVG: offline, prints
    assert "Sources" in text and "litellm 1.110.2" in text
    assert len(csv.read_text().strip().splitlines()) == 1 + 12 * len(load_scenario("base", db)["policies"])
    assert (
        main(["project", "--set", "growth=1"]) == 2
        and "not name=value with a known assumption" in capsys.readouterr().err
    )


def test_block_bootstrap_of_a_real_replay(db: Path) -> None:
    from app.workflows import run_for
    from simulators.uncertainty import bootstrap_multipliers

    run_id = run_for("azure-llm-inference-2023-code", db=db)
    from slmlab import replay_store

    with replay_store.reader(db) as warehouse:
        costs = warehouse.run_costs(run_id)
    multipliers, requests, how = bootstrap_multipliers(costs, 400, 1)
    assert "5-minute blocks" in how and abs(float(np.mean(requests)) - 1) < 0.05 and np.std(requests) > 0
    assert abs(float(np.mean(multipliers["frontier-only"])) - 1) < 0.05


def test_saved_scenario_round_trip(db: Path) -> None:
    projection = project(basis(), FLAT)
    save_scenario("hand", projection, db=db)
    assert load_scenario("hand", db)["policies"]["hybrid"]["break_even_month"] == 1


def test_ai_pc_preset_changes_the_hardware_assumptions(db: Path, capsys) -> None:
    assert main(["project", "--months", "6", "--hardware", "ai-pc", "--set", "tariff_usd_per_kwh=0.3", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["assumptions"]["server_capex_usd"] == 1800.0 and report["assumptions"]["tariff_usd_per_kwh"] == 0.3
    assert report["assumption_sources"]["server_capex_usd"] == "assumption (set by the user)"


def test_measured_energy_per_token_replaces_the_assumed_busy_power() -> None:
    measured = ReplayBasis(**{**basis().__dict__, "measured_busy_watts": {"small": 40.0}})
    c = components(measured, measured.policy("hybrid"), FLAT)
    assert c["energy"].tolist() == pytest.approx([(100 + (40 - 100) * 0.35) * 730.5 / 1000 * 0.2] * 3)
    assert project(measured, FLAT).as_dict()["energy_source"].startswith("measured: J/token x token/s of small 40 W")
    assert project(basis(), FLAT).as_dict()["energy_source"].startswith("estimated")


@pytest.mark.model
def test_energy_per_token_of_a_benchmark_reaches_the_portfolio_and_the_projection(db: Path) -> None:
    """A stored benchmark run whose counter was readable (as on a machine with RAPL) feeds J/token through."""
    from simulators.catalog import local_model
    from simulators.projection import basis_from_run
    from slmlab import store

    with store.connect(db) as con:
        con.execute(
            "INSERT INTO bench_runs (started_at, source, model_name, model_sha256, model, test, config, "
            "fingerprint, census, versions, summary) VALUES (now(), 'imported', 'x', 'y', '{}', 'tg128', '{}', "
            "'f', ?, '{}', ?)",
            [
                json.dumps({"cpu_model": "EPYC"}),
                json.dumps(
                    {"decode_tok_s": {"mean": 100.0}, "energy": {"joules_per_token": 0.5, "source": "measured"}}
                ),
            ],
        )
    from slmlab import replay_store

    with replay_store.reader(db) as warehouse:
        model = local_model("smollm2-135m", warehouse, bench_runs=(1,))
    assert model.energy_j_per_token.value == 0.5 and model.energy_j_per_token.source == "measured"
    run = {
        "run_id": 1,
        "trace": "t",
        "inputs": {"span_s": 3600.0, "servers_per_local_model": 1},
        "portfolio": [model.as_dict()],
        "policies": {
            "frontier-only": {"cost_usd": 1.0, "quality": 1.0, "requests": 10, "local_load": {}},
            "small-only": {"cost_usd": 0.0, "quality": 0.5, "requests": 10, "local_load": {"smollm2-135m": 0.5}},
        },
    }
    assert basis_from_run(run).measured_busy_watts == {"smollm2-135m": 50.0}  # 0.5 J/token x 100 token/s


def test_monte_carlo_is_centred_on_the_values_in_use() -> None:
    inside = FLAT.with_values(months=24, api_price_change_per_year=-0.2, traffic_hours_per_month=500.0)
    for growth in (0.01, 0.02, 0.04):  # values inside every range: the line stays inside the band
        projection = project(basis(), inside.with_values(growth_per_month=growth))
        band = monte_carlo(projection, draws=400, seed=1, bootstrap=False)["policies"]["frontier-only"]
        assert band["total_p5"] <= projection.get("frontier-only").cumulative[-1] <= band["total_p95"]


def test_monthly_table_round_trips_through_parquet() -> None:
    import io

    import pyarrow.parquet as pq

    from app.report import monthly_rows, parquet_bytes

    projection = project(basis(), FLAT)
    table = pq.read_table(io.BytesIO(parquet_bytes(monthly_rows(projection))))
    assert table.num_rows == 2 * 3 and table.column("cumulative_usd").to_pylist()[-1] == round(
        float(projection.get("hybrid").cumulative[-1]), 2
    )


def test_a_sized_fleet_scales_with_monthly_requests_and_growth() -> None:
    """Issue 16: the sized fleet (13 servers at the replay's rate) follows the request rate, so twice the monthly
    requests needs twice the servers, and growth buys more; it is priced as the hardware profile it was sized on."""
    sized = PolicyReplay("hybrid", 10.0, {"small": 0.7}, 0.8, 2000.0, 0, fleet={"small": (13, 0.7)},
                         fleet_profile="this-machine")  # fmt: skip
    b = ReplayBasis(0, "hand", 100, 3600.0, 1, (PolicyReplay("frontier-only", 20.0, {}, 0.9, 1000.0, 5), sized))
    at_trace = CostAssumptions(months=3, growth_per_month=0.0)
    same = components(b, sized, at_trace)
    assert list(same["servers"]) == [13, 13, 13]
    double = components(b, sized, at_trace.with_values(monthly_requests=2 * 100 * 730.5))
    assert list(double["servers"]) == [26, 26, 26]
    assert double["operations"][0] == pytest.approx(2 * same["operations"][0])
    assert same["operations"][0] == pytest.approx(13 * 56.0)  # the profile's rent, not the $400 server default
    grown = components(b, sized, CostAssumptions(months=3, growth_per_month=0.5))
    assert list(grown["servers"]) == [13, 20, 30]  # ceil(13 x 1.5^m)


def test_done_means_twice_the_monthly_requests_doubles_the_sized_fleet(db: Path, capsys) -> None:
    assert main(["simulate", "--policy", "small-only", "--json"]) == 0
    run = json.loads(capsys.readouterr().out)
    servers = run["policies"]["small-only"]["servers_needed"]
    rate = run["requests"] / run["inputs"]["span_s"]
    fleets = []
    for requests in (rate * 730.5 * 3600, 2 * rate * 730.5 * 3600):
        argv = ["project", "--run", str(run["run_id"]), "--json", "--set", f"monthly_requests={requests}"]
        assert main([*argv, "--set", "growth_per_month=0"]) == 0
        fleets.append(json.loads(capsys.readouterr().out)["policies"]["small-only"]["servers_first_last"][0])
    assert fleets == [servers, 2 * servers]
