"""`slmlab validate`: play a slice of a stored trace in real time through llama.cpp with several sequences in one
context, and through the replay's serving model, and say how far apart their TTFT and latency percentiles are."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import cast


def add_parser(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    p = command("validate", "check the simulator against a real batched engine on a slice of a trace")
    p.add_argument("--trace", default=None, help="stored trace (default: the embedded Azure conversation trace)")
    p.add_argument("--slice", type=int, default=24, help="requests to play (default 24)")
    p.add_argument("--start", type=int, default=0, help="first request of the slice, in arrival order (default 0)")
    p.add_argument(
        "--load", type=float, default=0.5, help="arrival rate as a share of the server's capacity (default 0.5)"
    )
    p.add_argument("--model", default="smollm2-135m", help="shipped model or GGUF path (default smollm2-135m)")
    p.add_argument("--slots", type=int, default=4, help="sequences served at once (default 4)")
    p.add_argument("--threads", type=int, default=1, help="llama.cpp threads (default 1)")
    p.add_argument("--max-input", type=int, default=64, help="cap on prompt tokens (default 64: keeps a run short)")
    p.add_argument("--max-output", type=int, default=32, help="cap on output tokens (default 32)")
    p.add_argument(
        "--tokens",
        choices=("scaled", "capped"),
        default="scaled",
        help="request sizes as played: scaled (prompts and outputs each scaled so the slice's 95th percentile meets "
        "the cap: the trace's spread of sizes kept) or capped (clipped at the caps: nearly every conversation "
        "request becomes the same size, so latencies fall on a few steps and percentiles jump) (default scaled)",
    )
    p.add_argument(
        "--reps",
        type=int,
        default=1,
        help="plays of the slice, each between two curve measurements; errors pooled over the plays and per play "
        "(default 1)",
    )
    p.add_argument(
        "--curve-reps",
        type=int,
        default=3,
        help="repetitions of each batch size when the curve is measured (default 3; more catch more of a "
        "machine's occasional slow steps)",
    )
    p.add_argument(
        "--wake-rounds",
        type=int,
        default=5,
        help="lone prompt steps timed after each idle gap (0.3, 1, 3 s) to measure what waking an idle server "
        "costs its next step (default 5; 0: the simulator charges nothing for waking)",
    )
    p.add_argument("--list", action="store_true", help="list stored validations")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_validate)


def _list(args: argparse.Namespace) -> int:
    from slmlab.validations import errors_text, load_validations, slice_label

    stored = load_validations(db=args.db)
    if args.json:
        print(json.dumps([{k: v for k, v in s.items() if k != "per_request"} for s in stored], indent=2, default=str))
        return 0
    for s in stored:
        errors = cast(dict[str, dict[str, dict[str, float]]], s["errors"])
        plays = int(cast(int, s.get("reps") or 1))
        print(
            f"validation {s['validation_id']}  {s['created_at']:%Y-%m-%d %H:%M}  {s['trace']}  {s['model']}  "
            f"load {s['load']:g}, {slice_label(s)}{f' x {plays} plays' if plays > 1 else ''}: " + errors_text(errors)
        )
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    import numpy as np

    from bench.validation import ValidationConfig, validate
    from slmlab.models import resolve_model
    from slmlab.traces.defaults import DEFAULT_TRACES, ensure_default_trace
    from slmlab.validations import errors_text, save_validation, trace_slice

    if args.list:
        return _list(args)
    trace = args.trace or DEFAULT_TRACES[0].stem
    ensure_default_trace(trace, args.db)
    config = ValidationConfig(
        trace=trace,
        start=args.start,
        count=args.slice,
        load=args.load,
        model=args.model,
        slots=args.slots,
        threads=args.threads,
        max_input=args.max_input,
        max_output=args.max_output,
        tokens=args.tokens,
        reps=args.reps,
        curve_reps=args.curve_reps,
        wake_rounds=args.wake_rounds,
    )
    result = validate(config, trace_slice(trace, args.start, args.slice, db=args.db), resolve_model(args.model))
    record = result.as_dict()
    record["validation_id"] = save_validation(record, db=args.db)
    if args.json:
        print(json.dumps(record, indent=2, default=str))
        return 0
    plays = f" x {config.reps} plays" if config.reps > 1 else ""
    print(
        f"validation {record['validation_id']}: {args.slice} requests{plays} of '{trace}' from {args.start}, "
        f"{args.model}, {args.slots} slots, load {args.load:g} (arrivals x{result.speed:.3g} faster than recorded)"
    )
    how = "scaled to keep the trace's spread" if config.tokens == "scaled" else "capped"
    shown = [
        f"{x.min():.0f}-{x.max():.0f} tokens (median {float(np.median(x)):.0f})"
        for x in (result.tokens_in, result.tokens_out)
    ]
    print(
        f"request sizes ({how}, at most {config.max_input} / {config.max_output}): "
        f"prompts {shown[0]}, outputs {shown[1]}"
    )
    decode = ", ".join(f"B={b} {x:,.1f}" for b, x in zip(result.curve.batch, result.curve.decode_tok_s))
    print(f"curve: {result.curve.source}; aggregate decode tok/s {decode}")
    if result.curve.wake:
        from simulators.deployment import wake_text

        print(f"waking after an idle gap, the first step took (measured just before): {wake_text(result.curve.wake)}")
    per_play = "" if config.reps == 1 else "  per play: error (real ms)"
    print(f"{'':12s} {'simulated':>10s} {'real':>10s} {'error':>7s}{per_play}")
    for metric, by_q in result.errors.items():
        for q, e in by_q.items():
            each = (
                ", ".join(
                    f"{r[metric][q]['error']:+.1%} (real {r[metric][q]['real_ms']:,.0f})" for r in result.errors_by_rep
                )
                if per_play
                else ""
            )
            print(
                f"{metric + ' ' + q:12s} {e['simulated_ms']:>7,.0f} ms {e['real_ms']:>7,.0f} ms {e['error']:>+7.1%}"
                + (f"  {each}" if each else "")
            )
    for rep, check in enumerate(result.steps_by_rep):
        print(
            f"play {rep + 1}: {check['steps']:,} real steps took {float(check['real_over_model_total']):.3f}x the "
            f"model's step costs in total (median step {float(check['real_over_model_median']):.3f}x)"
        )
    if result.errors_at_play_speed:
        speeds = [float(cast(float, c["real_over_model_total"])) for c in result.steps_by_rep if c]
        print(
            f"simulated at the speed each play's steps ran (x{min(speeds):.3f}-x{max(speeds):.3f} the curve; the "
            "serving model apart from the machine's drift): " + errors_text(result.errors_at_play_speed)
        )
        print(
            "a 1% slower machine moves: "
            + ", ".join(f"{m} {q} {v:+.1%}" for m, by_q in result.sensitivity.items() for q, v in by_q.items())
            + " (near saturation the queue multiplies a speed error: a figure moved 5% by 1% needs the machine's "
            "speed to hold within 2% between curve and play to come within 10%)"
        )
    if config.reps > 1:
        spread = result.real_spread()
        print(
            "real engine's own spread between plays of the same arrivals ((largest - smallest) / mean): "
            + ", ".join(f"{m} {q} {v:.0%}" for m, by_q in spread.items() for q, v in by_q.items())
        )
    if result.contention.get("contended"):
        reasons = "; ".join(str(r) for r in list(result.contention.get("reasons") or []))  # type: ignore[call-overload]
        print(f"WARNING: contended: {reasons}. Other processes took CPU during the run; its errors measure that too.")
    return 0
