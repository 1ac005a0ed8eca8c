"""`slmlab bench`: one benchmark, a sweep, or the exchange of runs with other machines."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from app.cli.common import Command, interval
from slmlab.models import SHIPPED
from slmlab.paths import resolve_db_path

if TYPE_CHECKING:
    from bench.runner import BenchConfig


def _sweep(args: argparse.Namespace, config: BenchConfig) -> int:
    from bench.results import benchmark_sweep
    from bench.runner import parse_sweep, sweep_configs

    axes = parse_sweep(args.sweep)
    configs = sweep_configs(config, axes)

    def progress(index: int, total: int, point: BenchConfig) -> None:
        where = ", ".join(f"{axis}={getattr(point, axis)}" for axis in axes)
        print(f"[{index + 1}/{total}] {where}", file=sys.stderr, flush=True)

    sweep_id, outcomes = benchmark_sweep(
        args.model, configs, db=args.db, quick=args.quick, progress=None if args.json else progress
    )
    rows = []
    for outcome in outcomes:
        row: dict[str, object] = {axis: getattr(outcome.config, axis) for axis in axes}
        if outcome.result:
            metrics = outcome.result.as_dict()["metrics"]
            row |= {
                "run_id": outcome.result.run_id,
                **{
                    name: metrics[name]["mean"]
                    for name in ("decode_tok_s", "prefill_tok_s", "request_latency_ms", "aggregate_gen_tok_s")
                    if name in metrics
                },
            }
        else:
            row["error"] = outcome.error
        rows.append(row)
    if args.json:
        print(json.dumps({"sweep_id": sweep_id, "points": rows}, indent=2, default=str))
    else:
        for row in rows:
            print(
                "  "
                + ", ".join(
                    f"{key}={value:,.1f}" if isinstance(value, float) else f"{key}={value}"
                    for key, value in row.items()
                )
            )
        print(
            f"sweep {sweep_id}: {sum('run_id' in r for r in rows)} of {len(rows)} points stored in "
            f"{resolve_db_path(args.db)}"
        )
    return 0 if all("run_id" in r for r in rows) else 1


def _bench_exchange(args: argparse.Namespace) -> int:
    from bench import exchange

    if args.action in ("export", "import") and not args.path:
        raise ValueError(f"slmlab bench {args.action} needs a FILE")
    if args.action == "export":
        count = exchange.write_export(args.db, args.path, args.run_ids or None)
        print(f"exported {count} run(s) to {args.path}")
    elif args.action == "import":
        return _bench_import(args)
    else:
        rows = exchange.compare(args.db)
        if args.json:
            print(json.dumps(rows, indent=2, default=str))
        for row in rows if not args.json else []:
            decode = f"{row['decode_mean']:,.1f}" if row.get("decode_mean") is not None else "-"
            prefill = f"{row['prefill_mean']:,.1f}" if row.get("prefill_mean") is not None else "-"
            print(
                f"run {row['run_id']:>4} {row['source']:9} {str(row['cpu_model'])[:28]:28} "
                f"{str(row['model_name'])[:28]:28} "
                f"{row['test']:12} threads {row['threads']}  decode {decode} tok/s  prefill {prefill} tok/s"
                + ("  CONTENDED" if row.get("contended") else "")
            )
    return 0


def _bench_import(args: argparse.Namespace) -> int:
    """slmlab's export (runs and curves), llama-bench's JSON, or llama-batched-bench's JSON Lines (a curve)."""
    from bench import curve_import, exchange

    if not Path(args.path).is_file():
        raise ValueError(f"{args.path}: no such file")
    document = exchange.read_json(args.path)
    if isinstance(document, dict) and "pl" in document:  # llama-batched-bench with one batch size: one line
        document = [document]
    if curve_import.is_batched_bench(document):
        if not args.model or not args.machine:
            raise ValueError(
                f"{args.path} is llama-batched-bench output, which names neither model nor machine: pass --model "
                "(the model it ran) and --machine (a name for the machine it ran on, e.g. h200-server)"
            )
        ids = curve_import.import_batched_bench(args.db, args.path, document, model=args.model, machine=args.machine)
        print(
            f"imported {len(ids)} service curve(s) of {args.model} on machine '{args.machine}' from {args.path}"
            + ("" if ids else " (all already stored)")
            + f"; a hardware profile serves from them once it names the machine: slmlab profiles add NAME "
            f"--machine {args.machine} ..."
        )
        return 0
    if isinstance(document, dict):
        ids = exchange.import_runs(args.db, args.path, machine=args.machine)
    else:
        ids = exchange.import_llama_bench(args.db, args.path)
    print(f"imported {len(ids)} run(s) from {args.path}" + ("" if ids else " (all already stored)"))
    return 0


def _parallel(args: argparse.Namespace) -> int:
    """`--parallel 1,2,4`: a batched service curve (B sequences in one context), stored in service_curves."""
    from bench.batched import CurveConfig, benchmark_curve
    from bench.runner import BenchConfig
    from simulators.deployment import wake_text

    try:
        batches = tuple(int(b) for b in args.parallel.split(",") if b.strip())
    except ValueError:
        raise ValueError(f"--parallel expects batch sizes like 1,2,4,8, got '{args.parallel}'") from None
    config = CurveConfig(
        batches=batches,
        pp=args.pp,
        tg=args.tg,
        threads=BenchConfig(threads=args.threads).resolved_threads(),
        n_gpu_layers=args.n_gpu_layers,
        flash_attn=BenchConfig(flash_attn=args.flash_attn).flash_attn,
        type_k=args.type_k,
        type_v=args.type_k,
        reps=args.reps or 1,
        wake_rounds=args.wake_rounds,
    )

    def progress(message: dict) -> None:
        print(f"[{message['point'] + 1}] B={message['batch']}", file=sys.stderr, flush=True)

    result = benchmark_curve(args.model, config, db=args.db, progress=None if args.json else progress)
    data = result.as_dict()
    if args.json:
        print(json.dumps(data, indent=2, default=str))
    else:
        print(
            f"{result.model}: batched service curve, PP {config.pp} TG {config.tg}, {config.threads} threads "
            f"(B sequences in one llama.cpp context; --concurrency runs separate processes instead)"
        )
        print(f"  {'B':>4} {'prefill tok/s':>14} {'decode tok/s':>13} {'ITL ms':>8} {'ITL p95':>8} {'TTFT s':>8}")
        for p in result.points:
            if p.fits:
                print(
                    f"  {p.batch:>4} {p.prefill_tok_s:>14,.1f} {p.decode_tok_s:>13,.1f} {p.itl_s * 1000:>8.2f} "
                    f"{p.itl_p95_s * 1000:>8.2f} {p.ttft_s:>8.3f}"
                )
            else:
                print(f"  {p.batch:>4} does not fit: {p.reason}")
        largest = data["largest_fitting_batch"]
        print(f"  KV cache {result.kv_bytes_per_token:,} bytes per token; largest B that fit: {largest}")
        if result.wake:
            print(
                f"  waking from idle, a lone {config.pp}-token prompt step took: {wake_text(result.wake)} "
                "(the replay charges it)"
            )
        print(f"stored as service curve {result.curve_id} in {resolve_db_path(args.db)}")
    if result.contention.get("contended"):
        print(
            f"WARNING: contended run: {'; '.join(result.contention['reasons'])}. Stored flagged; the replay and "
            "the portfolio skip it unless it is picked by id.",
            file=sys.stderr,
        )
    return 0 if any(p.fits for p in result.points) else 1


def cmd_bench(args: argparse.Namespace) -> int:
    from bench.results import benchmark
    from bench.runner import BenchConfig

    if args.action:
        return _bench_exchange(args)
    if not args.model:
        raise ValueError("slmlab bench needs --model NAME|PATH (or an action: export, import, compare)")
    if args.parallel:
        return _parallel(args)

    config = BenchConfig(
        test=args.test or ("pp64+tg32" if args.quick else "pp512+tg128"),
        reps=args.reps or (3 if args.quick else 5),
        threads=args.threads,
        n_gpu_layers=args.n_gpu_layers,
        flash_attn=args.flash_attn,
        type_k=args.type_k,
        type_v=args.type_k,
        depth=args.depth,
        timeout_s=args.timeout,
        concurrency=args.concurrency,
        watts_estimate=args.watts,
    )
    if args.sweep:
        return _sweep(args, config)

    def progress(message: dict) -> None:
        label = (
            "warm-up" if message["warmup"] else f"repetition {message['progress'] - int(config.warmup)}/{config.reps}"
        )
        print(f"[{message['progress']}/{message['of']}] {label}", file=sys.stderr, flush=True)

    result = benchmark(args.model, config, db=args.db, quick=args.quick, progress=None if args.json else progress)
    if args.json:
        print(json.dumps(result.as_dict(), indent=2, default=str))
        return 0
    data = result.as_dict()
    metrics = data["metrics"]
    print(
        f"{data['model']['name']} ({result.model.quantization}, {result.model.parameters / 1e6:,.0f}M parameters), "
        f"test {config.test}, {config.resolved_threads()} threads, {config.reps} repetitions after a warm-up"
    )
    for key, label, unit in (
        ("prefill_tok_s", "prefill", "tok/s"),
        ("decode_tok_s", "decode", "tok/s"),
        ("ttft_ms", "time to first token", "ms"),
        ("request_latency_ms", "request latency", "ms"),
    ):
        if key in metrics:
            print(f"  {label:22} {interval(metrics[key])} {unit}")
    if data["inter_token_latency_ms"]:
        p = data["inter_token_latency_ms"]
        print(f"  {'inter-token latency':22} p50 {p['p50']:.2f} / p95 {p['p95']:.2f} / p99 {p['p99']:.2f} ms")
    print(f"  {'load time':22} {data['load_s']:.3f} s;  peak RSS of the worker {data['peak_rss_bytes'] / 1e6:,.0f} MB")
    energy = data["energy"]
    if energy.get("joules_per_token") is not None:
        print(
            f"  {'energy':22} {energy['joules_per_token']:.4f} J/token, {energy['tokens_per_joule']:,.1f} tokens/J "
            f"({energy['source'].upper()}: {energy['note']})"
        )
    else:
        print(f"  {'energy':22} unavailable: {energy.get('note', '')} (pass --watts W for an estimate)")
    if result.roofline:
        r = result.roofline
        if r.get("error"):
            print(f"  {'roofline':22} no efficiency: {r['error']}")
        else:
            where = " + ".join(f"{d['device']} {d['gb_s']:,.1f} GB/s ({d['source']})" for d in r["devices"])
            print(
                f"  {'roofline':22} ceiling {r['ceiling_tok_s']:,.0f} tok/s from {where}; decode reaches "
                f"{r['efficiency']:.1%} of it, {r['bound']} ({r['per_token_ms']:.2f} ms a token)"
            )
    warning = (data.get("contention") or {}).get("contended") and data["contention"].get("reasons")
    if warning:
        print(
            f"WARNING: contended run: {'; '.join(data['contention']['reasons'])}. Its figures describe a busy "
            "machine; it is stored flagged and never used as the model's speed unless picked.",
            file=sys.stderr,
        )
    print(f"stored as bench run {result.run_id} in {resolve_db_path(args.db)} (all numbers measured here)")
    return 0


def add_parser(command: Command) -> None:
    """Register this file's subcommands."""
    p = command("bench", help="benchmark a GGUF model on this machine in an isolated worker and store the run")
    p.add_argument(
        "action",
        nargs="?",
        choices=["export", "import", "compare"],
        help="export runs and curves to JSON, import JSON (slmlab's, llama-bench -o json, or llama-batched-bench "
        "--output-format jsonl with --model and --machine), or compare machines",
    )
    p.add_argument(
        "--machine",
        help="import: the name of the machine the file was measured on (required for llama-batched-bench output; "
        "for an slmlab export it renames the exporting machine's curves); a hardware profile refers to it",
    )
    p.add_argument("path", nargs="?", help="the JSON file for export/import")
    p.add_argument("--run", dest="run_ids", type=int, action="append", default=[], help="export only these run ids")
    p.add_argument("--model", help=f"shipped model ({', '.join(SHIPPED)}) or a .gguf path")
    p.add_argument("--quick", action="store_true", help="pp64+tg32, 3 repetitions, short bandwidth probe")
    p.add_argument("--test", help="llama-bench test: pp512, tg128 or pp512+tg128 (default)")
    p.add_argument("--reps", type=int, help="measured repetitions after one warm-up (default 5, quick 3)")
    p.add_argument("--threads", type=int, help="CPU threads (default: physical cores)")
    p.add_argument("--n-gpu-layers", type=int, default=0, help="layers to offload to a GPU (-1: all)")
    p.add_argument(
        "--flash-attn",
        nargs="?",
        const="on",
        default="auto",
        choices=["auto", "on", "off"],
        help="flash attention: auto (llama-bench's default), on (also plain --flash-attn) or off",
    )
    p.add_argument("--type-k", default="f16", help="KV cache type for K and V (f16, q8_0, q4_0, ...)")
    p.add_argument("--depth", type=int, default=0, help="context tokens already in the KV cache before the test")
    p.add_argument("--timeout", type=float, default=600.0, help="stop the worker after this many seconds")
    p.add_argument(
        "--concurrency",
        type=int,
        default=1,
        help="separate processes running the test at once, each with its own context (not how servers batch; "
        "see --parallel)",
    )
    p.add_argument(
        "--parallel",
        metavar="B1,B2,...",
        help="batched service curve: B sequences prefilling and decoding together in one context, per B "
        "(stored in service_curves; compare llama-batched-bench -npl)",
    )
    p.add_argument("--pp", type=int, default=128, help="--parallel: prompt tokens per sequence (default 128)")
    p.add_argument("--tg", type=int, default=128, help="--parallel: generated tokens per sequence (default 128)")
    p.add_argument(
        "--wake-rounds",
        type=int,
        default=5,
        help="--parallel: lone prompt steps timed after each idle gap (0.3, 1, 3 s) to measure what waking an idle "
        "server costs its next step, which the replay charges (default 5, about 25 s; 0: not measured, free)",
    )
    p.add_argument(
        "--watts",
        type=float,
        help="machine power draw to estimate energy where no counter is readable (results are labelled 'estimated')",
    )
    p.add_argument(
        "--sweep",
        action="append",
        default=[],
        metavar="AXIS=V1,V2",
        help="grid over threads, n_batch, n_ubatch, depth, n_gpu_layers, flash_attn, type_k, test, concurrency",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_bench)
