"""`slmlab project` (cost over months, break-even, uncertainty, scenarios, reports) and `slmlab claim` (test a
vendor's claim against a stored replay of your traffic)."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

from simulators.projection import HARDWARE_PRESETS


def _assumption_values(items: list[str]) -> dict[str, object]:
    """`name=value` strings as typed CostAssumptions values; the error names the bad item."""
    from simulators.projection import CostAssumptions

    kinds = {f.name: f.type for f in fields(CostAssumptions)}
    values: dict[str, object] = {}
    for item in items:
        name, eq, text = item.partition("=")
        if not eq or name not in kinds:
            raise ValueError(f"'{item}' is not name=value with a known assumption ({', '.join(kinds)})")
        try:
            values[name] = int(text) if kinds[name] in (int, "int") else float(text)
        except ValueError:
            raise ValueError(f"assumption {name} must be a number, got '{text}'") from None
    return values


def _trace_option(p: argparse.ArgumentParser) -> None:
    from slmlab.traces.defaults import DEFAULT_TRACES

    p.add_argument(
        "--trace",
        default=DEFAULT_TRACES[0].stem,
        help="the trace whose newest replay to use (default: the embedded default; replayed first if needed)",
    )
    p.add_argument("--run", dest="run_id", type=int, help="a stored replay run id (see `slmlab simulate --history`)")


def add_parser(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """Register `slmlab project` and `slmlab claim`."""
    p = command(
        "project",
        "cost per month over a horizon for every policy of a replay, break-even against "
        "frontier-only, uncertainty, scenarios and reports",
    )
    _trace_option(p)
    p.add_argument("--months", type=int, help="horizon in months (default 36)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="change an assumption, e.g. growth_per_month=0.05 (see --assumptions)",
    )
    p.add_argument(
        "--hardware",
        choices=list(HARDWARE_PRESETS),
        default="server",
        help="what a local server is: a GPU server (default) or an AI PC (capex, power, operations presets; "
        "--set still wins)",
    )
    p.add_argument(
        "--fit-price-trend",
        action="store_true",
        help="use the API price change per year fitted from the shipped price history when it can be fitted",
    )
    p.add_argument(
        "--uncertainty",
        type=int,
        metavar="DRAWS",
        default=0,
        help="Monte Carlo over the assumption ranges and a block bootstrap of the trace (e.g. 1000)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the Monte Carlo and bootstrap draws")
    p.add_argument(
        "--policy",
        default=None,
        help="policy for the sensitivity (tornado) analysis (default: the focus rule, as on Home: the cheapest over "
        "the horizon that answers in-house at >= 95%% of frontier-only's quality)",
    )
    p.add_argument("--scenario", help="save the projection under this name (replaces one of the same name)")
    p.add_argument("--compare", help="compare saved scenarios, comma-separated, instead of projecting")
    p.add_argument("--html", help="write a self-contained HTML report (charts, tables, sources, assumptions)")
    p.add_argument("--csv", help="write the monthly costs per policy as CSV")
    p.add_argument("--assumptions", action="store_true", help="list the assumptions with defaults, ranges and help")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_project)

    p = command(
        "claim",
        "test a vendor's claim (X%% cheaper at >= Y%% quality with p95 <= Z s) on a replay of your "
        "traffic: supported, not supported, or not testable with this data",
    )
    _trace_option(p)
    p.add_argument("--cheaper", type=float, metavar="PCT", help="claimed saving against frontier-only, in percent")
    p.add_argument("--quality", type=float, metavar="PCT", help="claimed quality as a percentage of frontier-only's")
    p.add_argument("--p95", type=float, metavar="SECONDS", help="claimed p95 latency ceiling in seconds")
    p.add_argument("--html", metavar="PATH", help="write the claim report (verdict and key figures first) as HTML")
    p.add_argument("--pdf", metavar="PATH", help="write the claim report as PDF (printed by headless Chromium)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_claim)


def _progress(args: argparse.Namespace):
    from app.cli.common import progress as printer

    return None if args.json else printer(time.perf_counter())


def _list_assumptions() -> int:
    from simulators.projection import CostAssumptions

    for f in fields(CostAssumptions):
        span = f" (range {f.metadata['low']:g} to {f.metadata['high']:g})" if f.metadata.get("low") is not None else ""
        print(f"{f.name} = {f.default!r}{span}: {f.metadata['help']}")
    return 0


def cmd_project(args: argparse.Namespace) -> int:
    from app.report import projection_focus
    from app.workflows import compare_scenarios, monte_carlo, run_for, save_scenario
    from simulators.projection import HARDWARE_PRESETS, CostAssumptions, basis_from_run, fitted_price_trend, project
    from simulators.uncertainty import tornado
    from slmlab.replay_store import load_run

    if args.assumptions:
        return _list_assumptions()
    if args.compare:
        rows = compare_scenarios([n.strip() for n in args.compare.split(",") if n.strip()], args.db)
        if args.json:
            print(json.dumps(rows, indent=2))
        else:
            for row in rows:
                print(
                    f"{row['scenario']:20s} {row['policy']:34s} {row['months']:>3} months  ${row['total_usd']:>14,.0f}"
                    f"  break-even {row['break_even_month']}  servers at the end {row['servers_at_end']}"
                )
        return 0
    values = {**HARDWARE_PRESETS[args.hardware], **_assumption_values(args.set)}
    if args.months is not None:
        values["months"] = args.months
    trend = None
    if args.fit_price_trend:
        trend = fitted_price_trend()
        if trend["method"] == "fitted":
            values["api_price_change_per_year"] = trend["api_price_change_per_year"]
    assumptions = CostAssumptions().with_values(**values)
    run_id = run_for(args.trace, args.run_id, db=args.db, progress=_progress(args))
    run = load_run(run_id, args.db)
    projection = project(basis_from_run(run), assumptions, trend)
    report = projection.as_dict()
    uncertainty = None
    if args.uncertainty:
        uncertainty = monte_carlo(projection, draws=args.uncertainty, seed=args.seed, db=args.db)
        report["uncertainty"] = uncertainty
    focus = args.policy or projection_focus(projection, run)
    report["sensitivity"] = {"policy": focus, "bars": tornado(projection, focus) if focus else []}
    if args.scenario:
        save_scenario(args.scenario, projection, db=args.db)
    if args.csv:
        from app.report import write_csv

        write_csv(projection, args.csv)
    if args.html:
        from app.report import write_html

        write_html(projection, run, args.html, uncertainty=uncertainty, sensitivity=report["sensitivity"])
    if args.json:
        print(json.dumps(report, indent=2, default=str))
        return 0
    a = projection.assumptions
    print(
        f"projection of replay run {run_id} ('{run['trace']}', {projection.basis.requests:,} requests) over "
        f"{a.months} months; x{report['monthly_scale']:,.0f} a month, traffic growth {a.growth_per_month:+.1%}/month, "
        f"API prices {a.api_price_change_per_year:+.0%}/year ({projection.price_trend['method']})"
    )
    from simulators.results import summaries_from_dicts
    from simulators.tables import projection_table

    print("\n" + projection_table(projection, summaries_from_dicts(run["policies"]), a.months, uncertainty).text())
    bars = [b for b in report["sensitivity"]["bars"] if b["saving_low"] != b["saving_high"]][:5]
    if bars:
        print(
            f"\nwhat moves {focus}'s saving over {a.months} months most (low / high end of each range): "
            + "; ".join(f"{b['assumption']} {b['saving_low']:,.0f} / {b['saving_high']:,.0f}" for b in bars)
        )
    if uncertainty:
        for name, band in uncertainty["policies"].items():
            if name != "frontier-only":
                print(
                    f"{name}: total p5/p50/p95 ${band['total_p5']:,.0f} / ${band['total_p50']:,.0f} / "
                    f"${band['total_p95']:,.0f}; breaks even within the horizon in "
                    f"{band['break_even_share']:.0%} of draws"
                )
    print(
        "\nassumptions: "
        + ", ".join(f"{k}={v}" for k, v in assumptions.as_dict().items())
        + "  (`--assumptions` lists them with ranges; `--set NAME=VALUE` changes one)"
    )
    if args.scenario:
        print(f"saved as scenario '{args.scenario}'")
    for path in (args.csv, args.html):
        if path:
            print(f"wrote {path}")
    return 0


def cmd_claim(args: argparse.Namespace) -> int:
    from app.report import MARGIN_COLUMNS, claim_html, margin_rows, pdf_bytes
    from app.workflows import run_for
    from simulators import formatting as fmt
    from simulators.claims import Claim, check_claim
    from simulators.formatting import table
    from slmlab.replay_store import load_points, load_run

    claim = Claim(cheaper_pct=args.cheaper, quality_pct=args.quality, p95_s=args.p95)
    run_id = run_for(args.trace, args.run_id, db=args.db, progress=_progress(args))
    run = load_run(run_id, args.db)
    verdict = check_claim(claim, run, load_points(run_id, args.db).to_pylist())
    if args.html or args.pdf:
        document = claim_html(claim, verdict, run)
        if args.html:
            Path(args.html).write_text(document, encoding="utf-8")
        if args.pdf:
            Path(args.pdf).write_bytes(pdf_bytes(document))
    if args.json:
        print(json.dumps(verdict.as_dict(), indent=2, default=str))
        return 0
    print(f"claim: {verdict.claim}")
    print(
        f"on replay run {verdict.run_id} of '{verdict.trace}' ({verdict.candidates} policy settings tested): "
        f"{verdict.verdict.upper()}"
    )
    for reason in verdict.reasons:
        print(f"  - {reason}")
    if verdict.closest:
        c = verdict.closest
        print(
            f"  closest: {c.setting}: saves {fmt.share(c.cost_saving)}, quality "
            f"{fmt.share(c.quality_share_of_frontier)} of frontier-only's, p95 {fmt.duration(c.p95_s)}"
        )
        print(table(margin_rows(verdict), MARGIN_COLUMNS).text())
    print(
        f"  sources: prices {verdict.sources.get('prices')}, arrivals {verdict.sources.get('arrivals')}, quality "
        + "; ".join(
            f"{m} " + ", ".join(f"{k} {v:,}" for k, v in s.items())
            for m, s in (verdict.sources.get("quality") or {}).items()
        )
    )
    return 0
