"""`slmlab` subcommands: thin wrappers over library calls, human output by default and `--json` for scripts."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from slmlab.paths import DB_ENV_VAR, NO_DEFAULTS_ENV_VAR, PROJECT_ROOT, resolve_db_path

EXIT_BAD_INPUT = 2
EXIT_DATABASE = 3


def _progress(start: float):
    def say(stage: str) -> None:
        print(f"[{time.perf_counter() - start:6.1f}s] {stage}", file=sys.stderr, flush=True)

    return say


def cmd_import(args: argparse.Namespace) -> int:
    from simulators.traces.importer import import_trace
    from simulators.traces.labelling import load_label_mix
    from simulators.traces.staged import ImportOptions, parse_mapping

    options = ImportOptions(mapping=parse_mapping(args.map), ignore=tuple(args.ignore), arrival_unit=args.arrival_unit)
    result = import_trace(
        args.file, db=args.db, fmt=args.format, name=args.name, label_mix=load_label_mix(args.label_mix),
        options=options, progress=None if args.json else _progress(time.perf_counter()),
    )
    if args.json:
        print(json.dumps(result.as_dict(), indent=2, default=str))
    elif result.already_imported:
        print(f"already imported: {args.file} is trace '{result.name}' (id {result.trace_id}, {result.rows:,} requests); "
              "nothing changed")
    else:
        outcomes = f" and {result.outcomes:,} recorded outcomes" if result.outcomes else ""
        print(f"imported {result.rows:,} requests{outcomes} as trace '{result.name}' (id {result.trace_id}, "
              f"format {result.format}) in {result.seconds:.2f} s into {resolve_db_path(args.db)}")
        moved = result.report.get("rows_out_of_order")
        if moved:
            print(f"note: {moved:,} row(s) arrived earlier than the row before them; requests were sorted by arrival time")
        if result.labelling.get("synthetic_fields"):
            print(f"labels: {', '.join(result.labelling['synthetic_fields'])} are synthetic "
                  f"(mix '{result.labelling['mix_name']}', seed {result.labelling['seed']})")
    return 0


def _fmt(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _mix_text(mix: dict[str, float]) -> str:
    return ", ".join(f"{label} {share:.0%}" for label, share in mix.items()) or "-"


def cmd_traces(args: argparse.Namespace) -> int:
    from simulators.traces.summary import labelling_note, list_traces

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
            print(f"  span {s.time_span_s:,.1f} s, arrival rate {_fmt(s.arrival_rate_per_s, 2)} req/s")
        if s.input_tokens.mean is not None:
            for label, st in (("input tokens", s.input_tokens), ("output tokens", s.output_tokens)):
                print(f"  {label}: mean {_fmt(st.mean, 1)}, p50 {_fmt(st.p50)}, p95 {_fmt(st.p95)}, max {_fmt(st.max)}")
        print(f"  task mix: {_mix_text(s.task_mix)}")
        print(f"  data-class mix: {_mix_text(s.data_class_mix)}")
        print(f"  labels: {labelling_note(s.labelling)}")
        print(f"  source: {s.source_file} (imported {s.imported_at} UTC)")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    from simulators.traces.importer import remove_trace

    removed = remove_trace(args.name, db=args.db)
    print(f"removed trace '{args.name}' ({removed:,} requests and its outcomes)")
    return 0


def cmd_defaults(args: argparse.Namespace) -> int:
    from simulators.traces.defaults import ensure_default_workloads

    for result in ensure_default_workloads(args.db):
        state = "already present" if result.already_imported else "imported"
        print(f"{state}: {result.name} ({result.rows:,} requests)")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from bench.models import find_gguf, gguf_metadata, install_shipped_models, shipped_models

    models = install_shipped_models() if args.install else shipped_models()
    entries = [{"key": m.key, "name": m.name, "source": m.package, "path": m.path, "note": m.note} for m in models]
    for folder in args.folder:
        if not Path(folder).is_dir():
            raise ValueError(f"--folder {folder}: not a folder")
        entries += [{"key": str(p), "name": p.name, "source": f"folder {folder}", "path": p, "note": "found by --folder"}
                    for p in find_gguf(Path(folder))]
    for entry in entries:
        path = entry["path"]
        entry["installed"] = bool(path and Path(path).is_file())
        entry["path"] = str(path) if path else None
        if entry["installed"] and args.metadata:
            try:
                entry["metadata"] = gguf_metadata(Path(path)).as_dict()
            except ValueError as error:
                entry["metadata_error"] = str(error)
    if args.json:
        print(json.dumps(entries, indent=2))
        return 0
    for entry in entries:
        size = f"{Path(entry['path']).stat().st_size / 1e6:.1f} MB" if entry["installed"] else "missing"
        print(f"{entry['key']:16} {entry['name']:30} {size:>10}  {entry['path'] or '-'}  ({entry['source']}: {entry['note']})")
        meta = entry.get("metadata")
        if meta:
            print(f"{'':16} {meta['architecture']}, {meta['parameters'] / 1e6:,.0f}M parameters, {meta['quantization']}, "
                  f"context {meta['context_length']}, chat template {'yes' if meta['chat_template'] else 'no'}, "
                  f"sha256 {meta['sha256'][:16]}...")
        elif entry.get("metadata_error"):
            print(f"{'':16} {entry['metadata_error']}")
    return 0 if all(m.installed for m in models) or not args.install else 1


def _interval(summary: dict[str, object], digits: int = 1) -> str:
    text = f"{summary['mean']:,.{digits}f}"
    if summary.get("ci95_low") is not None:
        text += f"  (95% interval {summary['ci95_low']:,.{digits}f} to {summary['ci95_high']:,.{digits}f}, n={summary['n']})"
    return text


def _sweep(args: argparse.Namespace, config: "BenchConfig") -> int:
    from bench.results import benchmark_sweep
    from bench.runner import parse_sweep, sweep_configs

    axes = parse_sweep(args.sweep)
    configs = sweep_configs(config, axes)

    def progress(index: int, total: int, point: "BenchConfig") -> None:
        where = ", ".join(f"{axis}={getattr(point, axis)}" for axis in axes)
        print(f"[{index + 1}/{total}] {where}", file=sys.stderr, flush=True)

    sweep_id, outcomes = benchmark_sweep(args.model, configs, db=args.db, quick=args.quick,
                                         progress=None if args.json else progress)
    rows = []
    for outcome in outcomes:
        row: dict[str, object] = {axis: getattr(outcome.config, axis) for axis in axes}
        if outcome.result:
            metrics = outcome.result.as_dict()["metrics"]
            row |= {"run_id": outcome.result.run_id,
                    **{name: metrics[name]["mean"] for name in ("decode_tok_s", "prefill_tok_s",
                       "request_latency_ms", "aggregate_gen_tok_s") if name in metrics}}
        else:
            row["error"] = outcome.error
        rows.append(row)
    if args.json:
        print(json.dumps({"sweep_id": sweep_id, "points": rows}, indent=2, default=str))
    else:
        for row in rows:
            print("  " + ", ".join(f"{key}={value:,.1f}" if isinstance(value, float) else f"{key}={value}"
                                   for key, value in row.items()))
        print(f"sweep {sweep_id}: {sum('run_id' in r for r in rows)} of {len(rows)} points stored in {resolve_db_path(args.db)}")
    return 0 if all("run_id" in r for r in rows) else 1


def _bench_exchange(args: argparse.Namespace) -> int:
    from bench import exchange

    if args.action in ("export", "import") and not args.path:
        raise ValueError(f"slmlab bench {args.action} needs a FILE")
    if args.action == "export":
        count = exchange.write_export(args.db, args.path, args.run_ids or None)
        print(f"exported {count} run(s) to {args.path}")
    elif args.action == "import":
        text = Path(args.path).read_text(encoding="utf-8", errors="replace").lstrip() if Path(args.path).is_file() else ""
        reader = exchange.import_runs if text.startswith("{") else exchange.import_llama_bench
        ids = reader(args.db, args.path)
        print(f"imported {len(ids)} run(s) from {args.path}" + ("" if ids else " (all already stored)"))
    else:
        rows = exchange.compare(args.db)
        if args.json:
            print(json.dumps(rows, indent=2, default=str))
        for row in rows if not args.json else []:
            decode = f"{row['decode_mean']:,.1f}" if row.get("decode_mean") is not None else "-"
            prefill = f"{row['prefill_mean']:,.1f}" if row.get("prefill_mean") is not None else "-"
            print(f"run {row['run_id']:>4} {row['source']:9} {str(row['cpu_model'])[:28]:28} {str(row['model_name'])[:28]:28} "
                  f"{row['test']:12} threads {row['threads']}  decode {decode} tok/s  prefill {prefill} tok/s")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from bench.results import benchmark
    from bench.runner import BenchConfig

    if args.action:
        return _bench_exchange(args)
    if not args.model:
        raise ValueError("slmlab bench needs --model NAME|PATH (or an action: export, import, compare)")

    config = BenchConfig(
        test=args.test or ("pp64+tg32" if args.quick else "pp512+tg128"), reps=args.reps or (3 if args.quick else 5),
        threads=args.threads, n_gpu_layers=args.n_gpu_layers, flash_attn=args.flash_attn, type_k=args.type_k,
        type_v=args.type_k, depth=args.depth, timeout_s=args.timeout, concurrency=args.concurrency,
        watts_estimate=args.watts,
    )
    if args.sweep:
        return _sweep(args, config)

    def progress(message: dict) -> None:
        label = "warm-up" if message["warmup"] else f"repetition {message['progress'] - int(config.warmup)}/{config.reps}"
        print(f"[{message['progress']}/{message['of']}] {label}", file=sys.stderr, flush=True)

    result = benchmark(args.model, config, db=args.db, quick=args.quick, progress=None if args.json else progress)
    if args.json:
        print(json.dumps(result.as_dict(), indent=2, default=str))
        return 0
    data = result.as_dict()
    metrics = data["metrics"]
    print(f"{result.model.name} ({result.model.quantization}, {result.model.parameters / 1e6:,.0f}M parameters), "
          f"test {config.test}, {config.resolved_threads()} threads, {config.reps} repetitions after a warm-up")
    for key, label, unit in (("prefill_tok_s", "prefill", "tok/s"), ("decode_tok_s", "decode", "tok/s"),
                             ("ttft_ms", "time to first token", "ms"), ("request_latency_ms", "request latency", "ms")):
        if key in metrics:
            print(f"  {label:22} {_interval(metrics[key])} {unit}")
    if data["inter_token_latency_ms"]:
        p = data["inter_token_latency_ms"]
        print(f"  {'inter-token latency':22} p50 {p['p50']:.2f} / p95 {p['p95']:.2f} / p99 {p['p99']:.2f} ms")
    print(f"  {'load time':22} {data['load_s']:.3f} s;  peak RSS of the worker {data['peak_rss_bytes'] / 1e6:,.0f} MB")
    energy = data["energy"]
    if energy.get("joules_per_token") is not None:
        print(f"  {'energy':22} {energy['joules_per_token']:.4f} J/token, {energy['tokens_per_joule']:,.1f} tokens/J "
              f"({energy['source'].upper()}: {energy['note']})")
    else:
        print(f"  {'energy':22} unavailable: {energy.get('note', '')} (pass --watts W for an estimate)")
    if result.roofline:
        r = result.roofline
        print(f"  {'roofline':22} ceiling {r['ceiling_tok_s']:,.0f} tok/s at {r['bandwidth']['read_gb_s']:.1f} GB/s "
              f"measured read bandwidth; decode reaches {r['efficiency']:.1%} of it")
    print(f"stored as bench run {result.run_id} in {resolve_db_path(args.db)} (all numbers measured here)")
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    path = resolve_db_path(args.db)
    from slmlab import store

    with store.connect(path, read_only=True) as con:
        info = {
            "path": str(path.resolve()),
            "migrations": [r[0] for r in con.execute("SELECT name FROM _migrations ORDER BY applied_at, name").fetchall()],
            "rows": {t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in (
                "traces", "requests", "outcomes", "bench_runs", "eval_runs", "sim_runs", "sim_requests", "sim_points", "scenarios")},
        }
    print(json.dumps(info, indent=2) if args.json else "\n".join(f"{k}: {v}" for k, v in info.items()))
    return 0


def dashboard_command(args: argparse.Namespace) -> list[str]:
    """The Streamlit command line: bound to the chosen address, no usage statistics, uploads capped."""
    return [
        "run", str(PROJECT_ROOT / "app" / "main.py"),
        "--server.address", args.host, "--server.port", str(args.port), "--browser.gatherUsageStats", "false",
        "--server.headless", "true", "--server.maxUploadSize", str(args.max_upload_mb),
        "--server.fileWatcherType", "none",  # no hot reload to watch for: starts faster
        "--client.toolbarMode", "minimal",  # no "Deploy" button: traces can be confidential
    ]


def cmd_dashboard(args: argparse.Namespace) -> int:
    db = resolve_db_path(args.db).resolve()
    # the app imports the embedded default workload itself on its first page (once per process)
    os.environ.update({DB_ENV_VAR: str(db), **({NO_DEFAULTS_ENV_VAR: "1"} if args.no_defaults else {})})
    print(f"slmlab dashboard on http://{args.host}:{args.port}  (database {db}, uploads up to {args.max_upload_mb} MB)",
          file=sys.stderr)
    from streamlit.web import cli as streamlit_cli

    from app.warmup import warm_when_serving

    warm_when_serving(args.host, args.port, defaults=not args.no_defaults)  # while the browser loads Streamlit
    # Streamlit runs in this process (one process to stop, none orphaned, no second interpreter start-up)
    streamlit_cli.main(args=dashboard_command(args), prog_name="streamlit")
    return 0


def cmd_portfolio(args: argparse.Namespace) -> int:
    from simulators.catalog import DEFAULT_API_MODELS, build_portfolio

    portfolio = build_portfolio(api=tuple(args.api) or DEFAULT_API_MODELS, db=args.db, overrides=args.overrides)
    if args.json:
        print(json.dumps({"catalogue_version": portfolio.catalogue_version,
                          "models": [m.as_dict() for m in portfolio.models]}, indent=2))
        return 0
    print(f"prices: {portfolio.catalogue_version}")
    for m in portfolio.models:
        print(f"{m.name}  ({m.kind}, {m.location}; data classes {', '.join(m.data_classes)})")
        print(f"  $/Mtok in {m.input_usd_per_mtok.value:g} out {m.output_usd_per_mtok.value:g} "
              f"[{m.input_usd_per_mtok.source}]   TTFT {m.ttft_ms.value:,.0f} ms, {m.output_tok_s.value:,.1f} tok/s "
              f"[{m.output_tok_s.source}: {m.output_tok_s.detail}]")
    return 0


def build_parser() -> argparse.ArgumentParser:
    db_help = f"DuckDB file (default: ${DB_ENV_VAR} or results/slmlab.duckdb)"
    parser = argparse.ArgumentParser(prog="slmlab", description=__doc__)
    parser.add_argument("--db", help=db_help)
    common = argparse.ArgumentParser(add_help=False)  # so `--db` also works after the subcommand
    common.add_argument("--db", help=db_help, default=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, parents=[common])

    p = command("import", help="import a trace or outcome file (or a folder of them) into the warehouse")
    p.add_argument("file", type=Path)
    p.add_argument("--format", default="auto", help="auto (default), azure, mooncake, routellm, mtbench, routerbench, generic")
    p.add_argument("--name", help="trace name (default: the file name without extension)")
    p.add_argument("--label-mix", help="enterprise label mix: enterprise-default (default), regulated-heavy, none, or a JSON file")
    p.add_argument("--map", action="append", default=[], metavar="FIELD=COLUMN[,...]",
                   help="generic format: map file columns to fields (arrival, input_tokens, output_tokens, request_id, ...)")
    p.add_argument("--ignore", action="append", default=[], metavar="COLUMN", help="generic format: skip this file column")
    p.add_argument("--arrival-unit", default="auto", choices=["auto", "timestamp", "s", "ms"],
                   help="generic format: how to read the arrival column (auto: numbers are seconds, else date-times)")
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

    p = command("models", help="list the shipped small models (and assemble them with --install)")
    p.add_argument("--install", action="store_true")
    p.add_argument("--folder", action="append", default=[], help="also list the .gguf files under this folder")
    p.add_argument("--metadata", action="store_true", help="read GGUF metadata and sha256 (cached after the first time)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_models)

    p = command("bench", help="benchmark a GGUF model on this machine in an isolated worker and store the run")
    p.add_argument("action", nargs="?", choices=["export", "import", "compare"],
                   help="export runs to JSON, import JSON (slmlab's or llama-bench -o json), or compare machines")
    p.add_argument("path", nargs="?", help="the JSON file for export/import")
    p.add_argument("--run", dest="run_ids", type=int, action="append", default=[], help="export only these run ids")
    p.add_argument("--model", help="shipped model (smollm2-135m, gemma3-270m) or a .gguf path")
    p.add_argument("--quick", action="store_true", help="pp64+tg32, 3 repetitions, short bandwidth probe")
    p.add_argument("--test", help="llama-bench test: pp512, tg128 or pp512+tg128 (default)")
    p.add_argument("--reps", type=int, help="measured repetitions after one warm-up (default 5, quick 3)")
    p.add_argument("--threads", type=int, help="CPU threads (default: physical cores)")
    p.add_argument("--n-gpu-layers", type=int, default=0, help="layers to offload to a GPU (-1: all)")
    p.add_argument("--flash-attn", action="store_true")
    p.add_argument("--type-k", default="f16", help="KV cache type for K and V (f16, q8_0, q4_0, ...)")
    p.add_argument("--depth", type=int, default=0, help="context tokens already in the KV cache before the test")
    p.add_argument("--timeout", type=float, default=600.0, help="stop the worker after this many seconds")
    p.add_argument("--concurrency", type=int, default=1, help="workers running the test at once (capacity curve)")
    p.add_argument("--watts", type=float, help="machine power draw to estimate energy where no counter is readable "
                                               "(results are labelled 'estimated')")
    p.add_argument("--sweep", action="append", default=[], metavar="AXIS=V1,V2",
                   help="grid over threads, n_batch, n_ubatch, depth, n_gpu_layers, flash_attn, type_k, test, concurrency")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_bench)

    p = command("portfolio", help="the models a routing replay can use: location, allowed data, prices, speed, sources")
    p.add_argument("--api", action="append", default=[], metavar="KEY",
                   help="API model key from the LiteLLM price catalogue (repeatable; default gpt-4o, gpt-4o-mini, "
                        "azure/eu/gpt-4o)")
    p.add_argument("--overrides", type=Path, help="JSON list of {name, location, data_classes, prices, latency} edits")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_portfolio)

    from slmlab import cli_eval

    cli_eval.add_parser(lambda name, help: command(name, help=help))

    from slmlab import cli_simulate

    cli_simulate.add_parser(lambda name, help: command(name, help=help))

    from slmlab import cli_project

    cli_project.add_parser(lambda name, help: command(name, help=help))

    p = command("db", help="show the database path, applied migrations and row counts")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_db)

    p = command("dashboard", help="launch the Streamlit dashboard (binds to 127.0.0.1 by default)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: traces can be confidential)")
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--no-defaults", action="store_true", help="do not import the embedded default workload first")
    p.add_argument("--max-upload-mb", type=int, default=200,
                   help="largest file the dashboard accepts for upload, in MB (default 200); import bigger files "
                        "with `slmlab import`")
    p.set_defaults(run=cmd_dashboard)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `slmlab` console script; exit 2 on bad input, 3 when the database cannot be opened."""
    args = build_parser().parse_args(argv)
    if args.run is cmd_dashboard:  # start serving at once: the libraries below load while the browser connects
        return cmd_dashboard(args)
    from bench.isolation import WorkerFailed
    from bench.models import ModelError
    from simulators.traces.errors import TraceInputError
    from slmlab import store

    try:
        return args.run(args)
    except TraceInputError as error:
        if getattr(args, "json", False):
            print(json.dumps({"error": error.as_dict()}, indent=2), file=sys.stderr)
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (ModelError, WorkerFailed) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except store.DatabaseUnavailable as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_DATABASE


if __name__ == "__main__":
    sys.exit(main())
