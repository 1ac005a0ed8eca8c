"""`slmlab eval`: measure small-model quality and confidence on a task set, or record a frontier assumption."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench.tasks import TASKS
from slmlab.models import SHIPPED


def add_parser(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """Register `slmlab eval` and its options."""
    p = command("eval", "accuracy and calibrated confidence of small models on a task set, stored as outcomes")
    p.add_argument(
        "--model",
        action="append",
        default=[],
        help=f"shipped model ({', '.join(SHIPPED)}) or a .gguf path; repeat for several",
    )
    p.add_argument("--task", help=f"{', '.join(TASKS)}, or a CSV task stored earlier (see --list)")
    p.add_argument("--task-csv", type=Path, help="a labelled CSV file to use as a classification task")
    p.add_argument(
        "--text-column", help="--task-csv: the column with the text (default 'text'; with --no-header its position, 1)"
    )
    p.add_argument(
        "--label-column",
        help="--task-csv: the column with the label (default 'label'; with --no-header its position, 2)",
    )
    p.add_argument(
        "--no-header", action="store_true", help="--task-csv: the file has no header row; columns are numbered from 1"
    )
    p.add_argument("--task-name", help="--task-csv: the name to store the task under (default: from the file name)")
    p.add_argument("--split", default="test", help="task split (default test)")
    p.add_argument("--limit", type=int, default=200, help="requests to evaluate, a seeded sample (default 200; 0: all)")
    p.add_argument("--shots", type=int, default=0, help="worked examples from the training split in the prompt")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--constrained",
        dest="constrained",
        action="store_true",
        default=True,
        help="label- or JSON-schema-constrained decoding (default)",
    )
    mode.add_argument(
        "--free",
        dest="constrained",
        action="store_false",
        help="unconstrained greedy decoding, to measure how often answers are valid",
    )
    p.add_argument(
        "--label-style",
        default="words",
        choices=["words", "names"],
        help="classification: show and answer labels as plain words (default; 'card arrival') or as "
        "published names ('card_arrival')",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the sample order and few-shot choice")
    p.add_argument("--threads", type=int, help="CPU threads (default: physical cores)")
    p.add_argument("--max-tokens", type=int, help="answer length cap (default 24 for labels, 512 for JSON)")
    p.add_argument(
        "--assume-accuracy",
        type=float,
        metavar="P",
        help="do not run anything: store P as the assumed accuracy of --model (e.g. a frontier API) "
        "on every request of the task, labelled as an assumption",
    )
    p.add_argument("--list", action="store_true", help="list tasks and stored evaluations")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_eval)


def _task(args: argparse.Namespace):
    from bench.tasks import resolve_task
    from bench.tasks.labelled_csv import load

    if args.task_csv:
        text = args.text_column or ("1" if args.no_header else "text")
        label = args.label_column or ("2" if args.no_header else "label")
        return load(args.task_csv, text, label, args.task_name, no_header=args.no_header)
    if not args.task:
        raise ValueError(f"name a task with --task ({', '.join(TASKS)}) or bring one with --task-csv FILE")
    return resolve_task(args.task, args.db)


def _bar(label: str) -> Callable[[int, int], None]:
    started, first = time.perf_counter(), None

    def show(done: int, total: int) -> None:
        nonlocal first
        first = done - 1 if first is None else first  # requests stored before this call do not count to the rate
        filled = int(30 * done / total) if total else 30
        rate = (done - first) / (time.perf_counter() - started)
        text = f"{label} [{'#' * filled}{'.' * (30 - filled)}] {done}/{total}  {rate:.1f} req/s"
        if sys.stderr.isatty():
            print(f"\r{text}", end="" if done < total else "\n", file=sys.stderr, flush=True)
        elif done == total or done * 10 // total != (done - 1) * 10 // total:  # a log gets one line per 10%
            print(text, file=sys.stderr, flush=True)

    return show


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _print_result(result) -> None:
    s = result.summary
    conf = s["confidence"]
    print(
        f"{result.model_name} on {result.task}/{result.split} ({result.config.variant(result.kind)}, seed "
        f"{result.config.seed}, "
        f"eval run {result.run_id}; measured here)"
    )
    print(
        f"  requests {s['n']} ({result.added} new, {result.already_stored} already stored)   "
        f"prompt format: {result.prompt_format}"
    )
    print(
        f"  accuracy {_pct(s['accuracy'])}   mean score {_pct(s['mean_score'])}   validity {_pct(s['validity_rate'])}"
    )
    print(
        f"  calibration error (ECE, 10 bins) {_num(s['expected_calibration_error'])}   Brier {_num(s['brier_score'])}"
    )
    print(
        f"  confidence mean {_pct(conf['mean'])}  (right {_pct(conf['when_correct'])}, wrong "
        f"{_pct(conf['when_wrong'])})"
        f"   p10/p50/p90 {_pct(conf.get('p10'))} / {_pct(conf.get('p50'))} / {_pct(conf.get('p90'))}"
    )
    print(
        "  accuracy when answering only the surest "
        + ", ".join(f"{k}: {_pct(v)}" for k, v in s["accuracy_at_coverage"].items())
    )
    if s.get("field_accuracy"):
        print("  field accuracy " + ", ".join(f"{k} {_pct(v)}" for k, v in s["field_accuracy"].items()))
    for c in s["most_confused"][:5]:
        print(f"  confused: {c['reference']} -> {c['predicted']} ({c['count']}x)")


def _list(args: argparse.Namespace) -> int:
    from bench.quality import stored_evaluations
    from bench.tasks import TASKS, get_task

    tasks = [get_task(name).describe() for name in TASKS]
    runs = [r.as_dict() for r in stored_evaluations(args.db)]
    if args.json:
        print(json.dumps({"tasks": tasks, "evaluations": runs}, indent=2, default=str))
        return 0
    for t in tasks:
        print(f"{t['name']}: {t['description']} [{t['licence']}]")
    for r in runs:
        acc = _pct(r["accuracy"])
        print(
            f"  run {r['run_id']}: {r['model']} on {r['task']}/{r['split']} {r['variant']}: {r['n']} requests, "
            f"accuracy {acc} ({r['source']})"
        )
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """Run (or resume) one evaluation per --model and print its figures."""
    from bench.assumptions import assume_accuracy
    from bench.evaluate import EvalConfig, evaluate

    if args.list:
        return _list(args)
    if not args.model:
        raise ValueError(f"name at least one --model ({', '.join(SHIPPED)} or a .gguf path)")
    task = _task(args)
    if args.assume_accuracy is not None:
        for model in args.model:
            run_id, rows = assume_accuracy(model, task, args.assume_accuracy, split=args.split, db=args.db)
            print(
                f"stored the assumption: {model} answers {args.assume_accuracy:.1%} of {task.name}/{args.split} "
                f"correctly ({rows:,} requests, eval run {run_id}, source 'assumption')"
            )
        return 0
    config = EvalConfig(
        task=task.name,
        split=args.split,
        limit=args.limit or None,
        shots=args.shots,
        constrained=args.constrained,
        label_style=args.label_style,
        seed=args.seed,
        threads=args.threads,
        max_tokens=args.max_tokens,
    )
    results = []
    for model in args.model:
        result = evaluate(model, config, task=task, db=args.db, progress=_bar(f"{model} on {task.name}"))
        results.append(result)
        if not args.json:
            _print_result(result)
    if args.json:
        payload = [r.as_dict() for r in results]
        print(json.dumps(payload[0] if len(payload) == 1 else payload, indent=2, default=str))
    return 0
