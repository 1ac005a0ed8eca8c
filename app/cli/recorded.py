"""`slmlab bill`, `latency`: check an imported gateway or observability log against the catalogue."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from app.cli.common import Command, fmt


def _calls(args: argparse.Namespace):
    from simulators.recorded import RecordedCalls
    from slmlab.traces.records import load_records

    return RecordedCalls(**load_records(args.db, args.name))


def cmd_bill(args: argparse.Namespace) -> int:
    from simulators.catalog import load_price_catalogue
    from simulators.recorded import check_bill

    result = check_bill(_calls(args), load_price_catalogue(), tolerance=args.tolerance / 100)
    if args.json:
        print(json.dumps(result.as_dict(), indent=2, default=str))
        return 0
    print(f"trace '{args.name}': {result.requests:,} requests, {result.requests_with_cost:,} with a logged cost")
    print(
        f"  logged spend ${result.recorded_usd:,.6f}; as recorded (each request priced on its recorded model, "
        f"{result.catalogue_version}): ${result.priced_usd:,.6f} for the ${result.compared_recorded_usd:,.6f} "
        "the catalogue can price"
    )
    if result.difference is not None:
        verdict = "within" if result.within_tolerance else "NOT within"
        print(f"  difference {result.difference:+.2%} ({verdict} {args.tolerance:g}%)")
    for m in result.models:
        diff = "-" if m.difference is None else f"{m.difference:+.2%}"
        print(
            f"  {m.model}: {m.requests:,} requests, logged ${m.recorded_usd:,.6f}, priced ${m.priced_usd:,.6f} "
            f"({diff}; catalogue key {m.catalogue_key or 'none'})" + (f" - {'; '.join(m.reasons)}" if m.reasons else "")
        )
    if result.differing_count:
        print(
            f"  {result.differing_count:,} request(s) differ by more than {args.tolerance:g}%, first "
            f"{len(result.differing_requests)}:"
        )
        for r in result.differing_requests:
            priced = "unpriced" if r["priced_usd"] is None else f"${r['priced_usd']:.6f}"
            print(
                f"    {r['request_id']} ({r['model']}): logged ${r['recorded_usd']:.6f}, priced {priced} - "
                f"{'; '.join(r['reasons'])}"
            )
    for note in result.notes:
        print(f"  note: {note}")
    return 0


def cmd_latency(args: argparse.Namespace) -> int:
    from simulators.catalog import load_price_catalogue, named_api_model
    from simulators.recorded import check_latency

    calls = _calls(args)
    catalogue = load_price_catalogue()
    assumed = {}
    for name in {m for m in calls.model if m is not None}:
        try:
            model = named_api_model(str(name), catalogue)
        except ValueError:
            continue  # not in the catalogue: the default assumption applies
        assumed[str(name)] = (model.ttft_ms.value, model.output_tok_s.value)
    result = check_latency(calls, assumed)
    if args.adopt:
        entries = result.overrides()
        Path(args.adopt).write_text(json.dumps(entries, indent=2) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps({**result.as_dict(), "overrides": result.overrides()}, indent=2, default=str))
        return 0
    print(f"trace '{args.name}': recorded API latency per model (successful calls) vs the catalogue's assumption")
    print(f"  assumption: {result.assumption}")
    for m in result.models:
        ratio = "-" if m.ratio_p50 is None else f"{m.ratio_p50:.2f}x"
        print(
            f"  {m.model}: {m.requests:,} requests; recorded TTFT p50 {fmt(m.ttft_ms_p50)} ms "
            f"(p95 {fmt(m.ttft_ms_p95)}), "
            f"end-to-end p50 {fmt(m.latency_ms_p50)} ms (p95 {fmt(m.latency_ms_p95)}), output "
            f"{fmt(m.output_tok_s_p50, 1)} tok/s; assumed TTFT {m.assumed_ttft_ms:g} ms, "
            f"{m.assumed_output_tok_s:g} tok/s "
            f"-> end-to-end p50 {fmt(m.assumed_latency_ms_p50)} ms; recorded/assumed {ratio}"
        )
    if args.adopt:
        print(
            f"wrote {len(result.overrides())} override(s) with the recorded medians to {args.adopt}; "
            f"use them with `slmlab simulate ... --overrides {args.adopt}`"
        )
    else:
        print("adopt the recorded figures with --adopt FILE (writes a portfolio overrides file)")
    return 0


def add_parser(command: Command) -> None:
    """Register this file's subcommands."""
    p = command("bill", help="reproduce a gateway log's bill: each request priced on its recorded model (as recorded)")
    p.add_argument("name", help="trace name (imported from LiteLLM, OTLP, Langfuse or OpenAI usage logs)")
    p.add_argument("--tolerance", type=float, default=1.0, help="percent difference still counted a match (default 1)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_bill)

    p = command("latency", help="recorded API latency per model against the catalogue's latency assumption")
    p.add_argument("name", help="trace name (imported from a log with start/end times)")
    p.add_argument("--adopt", metavar="FILE", help="write the recorded medians as a portfolio overrides file")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_latency)
