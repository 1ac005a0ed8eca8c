"""`slmlab import`, `traces`, `remove`, `defaults`: the trace warehouse from the command line."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from app.cli.common import Command, fmt, mix_text, progress
from slmlab.paths import resolve_db_path
from slmlab.traces.formats import FORMATS
from slmlab.traces.labelling import PRESETS as LABEL_MIXES


def cmd_import(args: argparse.Namespace) -> int:
    from slmlab.traces.importer import AUTO_LABELS, import_trace
    from slmlab.traces.labelling import load_label_mix
    from slmlab.traces.staged import ImportOptions, parse_mapping

    options = ImportOptions(
        mapping=parse_mapping(args.map),
        ignore=tuple(args.ignore),
        arrival_unit=args.arrival_unit,
        keep_text=args.keep_text,
    )
    result = import_trace(
        args.file,
        db=args.db,
        fmt=args.format,
        name=args.name,
        label_mix=load_label_mix(args.label_mix) if args.label_mix else AUTO_LABELS,
        options=options,
        progress=None if args.json else progress(time.perf_counter()),
    )
    if args.json:
        print(json.dumps(result.as_dict(), indent=2, default=str))
    elif result.already_imported:
        print(
            f"already imported: {args.file} is trace '{result.name}' (id {result.trace_id}, {result.rows:,} requests); "
            "nothing changed"
        )
    else:
        outcomes = f" and {result.outcomes:,} recorded outcomes" if result.outcomes else ""
        print(
            f"imported {result.rows:,} requests{outcomes} as trace '{result.name}' (id {result.trace_id}, "
            f"format {result.format}) in {result.seconds:.2f} s into {resolve_db_path(args.db)}"
        )
        report = result.report
        if report.get("index_column_ignored"):
            print("note: the unnamed first column (a pandas index) was ignored")
        if report.get("unscored_rows_skipped"):
            by_model = ", ".join(f"{m} {c:,}" for m, c in report.get("unscored_by_model", {}).items())
            print(
                f"note: {report['unscored_rows_skipped']:,} row(s) with a blank score skipped (blank per model: "
                f"{by_model}; first: {', '.join(report.get('unscored_first_ids', []))})"
            )
        if report.get("prompts_dropped_missing_a_model"):
            print(f"note: {report['prompts_dropped_missing_a_model']:,} prompt(s) lacking some model's score dropped")
        moved = result.report.get("rows_out_of_order")
        if moved:
            print(
                f"note: {moved:,} row(s) arrived earlier than the row before them; requests were sorted by arrival time"
            )
        if result.labelling.get("synthetic_fields"):
            print(
                f"labels: {', '.join(result.labelling['synthetic_fields'])} are synthetic "
                f"(mix '{result.labelling['mix_name']}', seed {result.labelling['seed']})"
            )
        if result.report.get("recorded"):
            print(f"recorded per request: {', '.join(result.report['recorded'])}")
        for assumption in result.report.get("assumptions") or []:
            print(f"ASSUMPTION: {assumption}")
    return 0


def cmd_traces(args: argparse.Namespace) -> int:
    from slmlab.traces.summary import labelling_note, list_traces

    summaries = list_traces(args.db, args.name)
    if args.name and not summaries:
        raise ValueError(f"no trace named '{args.name}' in {resolve_db_path(args.db)}")
    if args.json:
        print(json.dumps([s.as_dict() for s in summaries], indent=2, default=str))
        return 0
    if not summaries:
        print(f"no traces in {resolve_db_path(args.db)}; add one with `slmlab import FILE` or `slmlab defaults`")
        return 0
    for s in summaries:
        print(f"{s.name}  (id {s.trace_id}, {s.format}, {s.kind})")
        print(f"  rows {s.rows:,}" + (f", outcomes {s.outcomes:,} for {', '.join(s.models)}" if s.outcomes else ""))
        if s.time_span_s is not None:
            print(f"  span {s.time_span_s:,.1f} s, arrival rate {fmt(s.arrival_rate_per_s, 2)} req/s")
        if s.input_tokens.mean is not None:
            for label, st in (("input tokens", s.input_tokens), ("output tokens", s.output_tokens)):
                print(f"  {label}: mean {fmt(st.mean, 1)}, p50 {fmt(st.p50)}, p95 {fmt(st.p95)}, max {fmt(st.max)}")
        print(f"  task mix: {mix_text(s.task_mix)}")
        print(f"  data-class mix: {mix_text(s.data_class_mix)}")
        print(f"  labels: {labelling_note(s.labelling)}")
        if s.recorded:
            r = s.recorded
            spend = "" if r["logged_spend_usd"] is None else f", logged spend ${r['logged_spend_usd']:,.6f}"
            print(f"  recorded per request: {', '.join(r['fields'])}{spend}; models: {', '.join(r['models']) or '-'}")
            for assumption in r.get("assumptions") or []:
                print(f"  ASSUMPTION: {assumption}")
        if s.label_sources:
            print("  label sources: " + "; ".join(f"{k} {v}" for k, v in s.label_sources.items()))
        print(f"  source: {s.source_file} (imported {s.imported_at} UTC)")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    from slmlab.traces.importer import remove_trace

    removed = remove_trace(args.name, db=args.db)
    print(f"removed trace '{args.name}' ({removed:,} requests and its outcomes)")
    return 0


def cmd_defaults(args: argparse.Namespace) -> int:
    from slmlab.traces.defaults import ensure_default_workloads

    for result in ensure_default_workloads(args.db):
        state = "already present" if result.already_imported else "imported"
        print(f"{state}: {result.name} ({result.rows:,} requests)")
    return 0


def add_parser(command: Command) -> None:
    """Register this file's subcommands."""
    p = command("import", help="import a trace or outcome file (or a folder of them) into the warehouse")
    p.add_argument("file", type=Path)
    p.add_argument("--format", default="auto", help=f"auto (default), {', '.join(FORMATS)}")
    p.add_argument("--name", help="trace name (default: the file name without extension)")
    p.add_argument(
        "--label-mix",
        help=f"enterprise label mix: {', '.join(LABEL_MIXES)} (first: default for workloads), none, or a JSON file; "
        "recorded outcome files (benchmarks) get no synthetic labels unless a mix is given",
    )
    p.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="FIELD=COLUMN[,...]",
        help="generic format: map file columns to fields (arrival, input_tokens, output_tokens, request_id, ...)",
    )
    p.add_argument(
        "--ignore", action="append", default=[], metavar="COLUMN", help="generic format: skip this file column"
    )
    p.add_argument(
        "--arrival-unit",
        default="auto",
        choices=["auto", "timestamp", "s", "ms"],
        help="generic format: how to read the arrival column (auto: numbers are seconds, else date-times)",
    )
    p.add_argument(
        "--keep-text",
        action="store_true",
        help="gateway/observability logs: also store prompt and response text (not stored by default: personal data)",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_import)

    p = command("traces", help="list stored traces with size, time span, arrival rate, tokens and label mix")
    p.add_argument("name", nargs="?")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_traces)

    p = command("remove", help="delete a trace with its requests and outcomes (one transaction)")
    p.add_argument("name")
    p.set_defaults(run=cmd_remove)

    p = command("defaults", help="import the embedded default workload (Azure 2023 traces, default label mix)")
    p.set_defaults(run=cmd_defaults)
