"""`slmlab simulate`: replay a stored trace through routing policies beside the frontier-only baseline."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import fields

from simulators.deployment import DEFAULT_PROFILE, DEFAULT_SLO


def _names(text: str | None) -> tuple[str, ...] | None:
    return None if text is None else tuple(n.strip() for n in text.split(",") if n.strip())


def add_parser(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """Register `slmlab simulate` and its options."""
    from slmlab.traces.defaults import DEFAULT_TRACES

    default_trace = DEFAULT_TRACES[0].stem
    p = command(
        "simulate", "replay a trace through routing policies: cost, quality, latency and residency beside frontier-only"
    )
    p.add_argument(
        "--trace",
        default=None,
        help=f"stored trace to replay (default: the newest imported trace, else the embedded '{default_trace}', "
        "imported on first use; the output says which)",
    )
    p.add_argument(
        "--policy", default="all", help="'all', or comma-separated policies; compose with '+' (residency-aware+cascade)"
    )
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="POLICY.KEY=VALUE",
        help="a policy parameter, e.g. cascade.threshold=0.7 (repeatable; see --list)",
    )
    p.add_argument(
        "--sweep",
        action="store_true",
        help="also vary each sweepable policy over its grid: Pareto front, APGR, CPT(50%%/80%%), AIQ",
    )
    p.add_argument("--speed", type=float, default=1.0, help="replay arrivals K times faster (default 1)")
    p.add_argument("--volume", type=float, default=1.0, help="replay V times as many requests (default 1)")
    p.add_argument(
        "--servers",
        type=int,
        default=None,
        help="a fixed fleet: N servers per local model (instead of sizing it to the SLO)",
    )
    p.add_argument(
        "--size-to",
        metavar="SLO",
        default=None,
        help="size each local model's fleet to this latency SLO, e.g. ttft_p95=2s or p95=5s (end to end); "
        f"default {DEFAULT_SLO} unless --servers is given",
    )
    p.add_argument(
        "--hardware",
        default=DEFAULT_PROFILE,
        help=f"hardware profile local models are served on (default {DEFAULT_PROFILE}; "
        "datasets/assumptions/serving_profiles.json)",
    )
    p.add_argument("--slots", type=int, default=0, help="sequences a server batches at once (default: the profile's)")
    p.add_argument(
        "--profile",
        action="append",
        default=[],
        metavar="MODEL=RUN[,RUN]",
        help="hardware what-if: a local model's speeds from these benchmark runs, measured here or imported "
        "from another machine (`slmlab bench import`)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of every random draw (default 0)")
    p.add_argument(
        "--local", help="local models, comma-separated (default: the shipped ones; none for recorded outcomes)"
    )
    p.add_argument(
        "--api",
        help="API models by catalogue key, comma-separated (default: gpt-4o, gpt-4o-mini, "
        "azure/eu/gpt-4o; for recorded outcomes the recorded models)",
    )
    p.add_argument("--frontier", help="the baseline model (default: the API model with the best mean quality)")
    p.add_argument("--small", help="the default small model (default: the local model with the best mean quality)")
    p.add_argument("--overrides", help="JSON list of portfolio overrides (see `slmlab portfolio`)")
    p.add_argument("--assumptions", help="quality assumptions file (default: datasets/assumptions/quality.json)")
    p.add_argument(
        "--no-assumptions",
        action="store_true",
        help="use recorded and measured quality only (an error names what is missing)",
    )
    p.add_argument(
        "--requests",
        choices=["auto", "keep", "skip"],
        default="auto",
        help="store per-request results: auto keeps them for traces up to 250,000 requests",
    )
    p.add_argument("--list", action="store_true", help="list the policies and their parameters")
    p.add_argument("--history", action="store_true", help="list stored replays")
    p.add_argument(
        "--scenario",
        metavar="NAME",
        help="replay a scenario saved on the Routing replay page (every assumption set there; see its command)",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_simulate)


def _list_policies() -> int:
    from simulators.policies.registry import POLICIES, sweep_of

    for name, cls in POLICIES.items():
        print(f"{name}: {cls.summary}")
        for f in fields(cls):
            default = f.default.label if hasattr(f.default, "label") else f.default
            print(f"    {name}.{f.name} = {default!r}  {f.metadata.get('help', '')}")
        grid = sweep_of(cls())
        if grid:
            print(f"    --sweep varies {grid[0]} over {len(grid[1])} values from {grid[1][0]} to {grid[1][-1]}")
    return 0


def _history(args: argparse.Namespace) -> int:
    from simulators.runs import clean
    from slmlab.replay_store import stored_runs

    runs = stored_runs(args.db)
    if args.json:
        print(json.dumps(clean(runs), indent=2, default=str))
        return 0
    if not runs:
        print("no stored replays; run `slmlab simulate`")
    for run in runs:
        print(
            f"run {run['run_id']}  {run['created_at']:%Y-%m-%d %H:%M}  trace {run['trace']}  seed {run['seed']}  "
            f"{run['seconds']:.1f} s  policies: {', '.join(run['policies'])}"
        )  # type: ignore[arg-type]
    return 0


def _fleet_lines(label: str, s: dict) -> list[str]:
    """Per local model: servers needed (or fixed), what they give and cost, and why an SLO cannot be met."""
    from simulators.results import LocalFleet

    return [f"  {label}: {LocalFleet.from_dict(m, f).describe()}" for m, f in (s.get("fleet") or {}).items()]


def _point(point: dict) -> str:
    knob = "" if point["value"] is None else f" {point['parameter']}={point['value']:g}"
    return f"{point['policy']}{knob} ${point['cost_usd']:,.2f} q {point['quality']:.3f}"


def _run_scenario(args: argparse.Namespace) -> int:
    """`--scenario NAME`: the saved settings, run as the `slmlab simulate` command they stand for."""
    from app.cli.main import main
    from slmlab.replay_scenarios import load_replay_scenario

    argv = load_replay_scenario(args.scenario, args.db)
    return main([*(["--db", str(args.db)] if args.db else []), *argv, *(["--json"] if args.json else [])])


def cmd_simulate(args: argparse.Namespace) -> int:
    from app.cli.common import progress as _progress
    from app.workflows import simulate
    from simulators.inputs import DEFAULT_ASSUMPTIONS, ReplayConfig
    from simulators.metrics import SWEEP_FIGURES
    from simulators.policies.registry import parse_params, parse_policies
    from simulators.results import summaries_from_dicts
    from simulators.tables import policy_table
    from slmlab.traces.defaults import choose_trace, ensure_default_trace

    if args.list:
        return _list_policies()
    if args.history:
        return _history(args)
    if args.scenario:
        return _run_scenario(args)
    why = "named with --trace"
    if args.trace is None:
        args.trace, why = choose_trace(args.db)
    assumptions = None if args.no_assumptions else (args.assumptions or str(DEFAULT_ASSUMPTIONS))
    config = ReplayConfig(
        trace=args.trace,
        local_models=_names(args.local),
        api_models=_names(args.api),
        overrides=args.overrides,
        assumptions=assumptions,
        servers=args.servers or 1,
        size_to=args.size_to or (None if args.servers else DEFAULT_SLO),
        profile=args.hardware,
        slots=args.slots,
        profiles=tuple(args.profile),
        speed=args.speed,
        volume=args.volume,
        seed=args.seed,
        frontier=args.frontier,
        small=args.small,
    )
    policies = parse_policies(args.policy, parse_params(args.param))
    ensure_default_trace(args.trace, args.db)

    run = simulate(
        config,
        policies,
        sweep=args.sweep,
        db=args.db,
        store_requests={"auto": None, "keep": True, "skip": False}[args.requests],
        progress=None if args.json else _progress(time.perf_counter()),
    )
    if args.json:
        print(json.dumps({**run.as_dict(), "trace_choice": why}, indent=2, default=str))
        return 0
    report = run.as_dict()
    inputs = report["inputs"]
    print(
        f"replay run {run.run_id}: trace '{args.trace}' ({why}; {report['requests']:,} requests), seed {args.seed}, "
        f"{run.seconds:.2f} s; prices {report['catalogue_version']}"
    )
    for role, reason in (inputs.get("roles") or {}).items():
        print(f"{role}: {reason}")
    for figure, rest in (
        ("cost", "other figures priced from the catalogue or overrides"),
        ("latency", "other attempts timed from the models' assumed, overridden or measured speeds"),
    ):
        recorded = {m: c for m, c in (inputs.get(f"{figure}_source") or {}).items() if "recorded" in c}
        if recorded:
            print(
                f"{figure} per request as recorded for: "
                + ", ".join(f"{m} {c['recorded']:,}" for m, c in recorded.items())
                + f"; {rest}"
            )
    print(
        f"baseline frontier-only = {report['frontier_model']}; small model = {report['small_model']}; "
        f"speed x{args.speed:g}, volume x{args.volume:g}; local models on '{config.profile}', "
        + (f"fleets sized to {config.size_to}" if config.size_to else f"{config.servers} server(s) each")
    )
    print(
        f"arrivals: {inputs['arrivals']}; tokens: "
        + "; ".join(
            f"{side} " + ", ".join(f"{k} {v:,}" for k, v in counts.items())
            for side, counts in inputs["token_source"].items()
        )
    )
    print("\n" + policy_table(summaries_from_dicts(report["policies"])).text())
    timed = [
        f"{label} {s['latency_source'].get('recorded', 0):,} of {sum(s['latency_source'].values()):,}"
        for label, s in report["policies"].items()
        if s.get("latency_source")
    ]
    if timed:
        print("answers timed as recorded: " + "; ".join(timed))
    for label, summary in report["policies"].items():
        if summary.get("confidence_note"):
            print(f"{label}: note: {summary['confidence_note']}")
        if summary.get("latency_note"):
            print(f"{label}: note: {summary['latency_note']}")
        sweep = summary.get("sweep")
        if sweep:
            figures = "".join(
                f", {name} {sweep[k]:.3f}" for k, name in SWEEP_FIGURES.items() if sweep.get(k) is not None
            )
            print(f"{label}: sweep over {sweep['parameter']}{figures}")
    fleets = [line for label, s in report["policies"].items() for line in _fleet_lines(label, s)]
    if fleets:
        print(
            "\ncost = API spend + local fleet (amortised hardware, energy, operations) over the trace; servers needed "
            "per local model:"
        )
        print("\n".join(fleets))
    loads = [
        f"{label} " + ", ".join(f"{m} {v:.2f}" for m, v in s["local_load"].items())
        for label, s in report["policies"].items()
        if s.get("local_load") and not s.get("fleet")
    ]
    if loads:
        print(
            "\nlocal load (service time asked / capacity over the trace; above 1 the queue keeps growing): "
            + "; ".join(loads)
        )
    print(
        "\nquality per model from: "
        + "; ".join(
            f"{m} " + ", ".join(f"{k} {v:,}" for k, v in c.items()) for m, c in inputs["quality_source"].items()
        )
    )
    if any(inputs["confidence_source"].values()):
        print(
            "cascade confidence from: "
            + "; ".join(
                f"{m} " + ", ".join(f"{k} {v:,}" for k, v in c.items()) for m, c in inputs["confidence_source"].items()
            )
        )
    if report["points"]:
        front = sorted((p for p in report["points"] if p.get("pareto")), key=lambda p: p["cost_usd"])
        print(f"Pareto front ({len(front)} of {len(report['points'])} points): " + "; ".join(map(_point, front)))
    print(
        f"\nstored as run {run.run_id}"
        + ("" if run.requests_stored else " (summary only; per-request rows skipped)")
        + " in the database; `slmlab simulate --history` lists runs"
    )
    return 0
