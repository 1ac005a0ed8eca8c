"""Accuracy and calibrated confidence of a small model on a task set, stored as per-request outcomes.

An evaluation is identified by everything that shapes its answers (model file hash, task, split, shots,
constrained or free decoding, seed, prompt version): running the same command again continues where an
interrupted run stopped and never stores a request twice; a larger `--limit` extends the same sample.
The model runs in an isolated worker (a llama.cpp crash ends the run, not the caller); outcomes are committed in
small batches as they arrive, so a crash loses at most the requests in flight.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psutil
import pyarrow as pa

from bench.calibration import confusions, summarise
from bench.runner import check_memory
from bench.tasks import ClassificationTask, Example, Task, TaskError
from bench.tasks.base import LABEL_STYLES
from slmlab import __version__, store
from slmlab.isolation import WorkerFailed, run_workers
from slmlab.jobs import Cancelled
from slmlab.models import gguf_metadata, model_name, resolve_model

PROMPT_VERSION = 1  # bump when prompt wording changes, so old and new answers are never mixed in one run
FLUSH_EVERY = 20


class EvalError(WorkerFailed):
    """The evaluation stopped; what was already answered is stored and the same command resumes it."""


@dataclass(frozen=True)
class EvalConfig:
    """Everything that shapes one evaluation; stored with it so the figures can be reproduced."""

    task: str
    split: str = "test"
    limit: int | None = 200
    shots: int = 0
    constrained: bool = True
    seed: int = 0
    threads: int | None = None
    n_ctx: int = 4096
    max_tokens: int | None = None  # answer length cap; defaults to 24 for labels and 512 for JSON
    label_style: str = "words"  # classification: labels shown and answered as plain words, or as published names
    idle_timeout_s: float = 300.0

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise ValueError("limit must be at least 1")
        if self.shots < 0 or self.shots > 200:
            raise ValueError("shots must be between 0 and 200")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ValueError("max_tokens must be at least 1")
        if self.threads is not None and self.threads < 1:
            raise ValueError("threads must be at least 1")
        if self.label_style not in LABEL_STYLES:
            raise ValueError(f"label style must be one of {', '.join(LABEL_STYLES)}")

    def resolved_threads(self) -> int:
        """Threads actually used: the configured number, else the physical cores."""
        return self.threads or psutil.cpu_count(logical=False) or psutil.cpu_count() or 1

    def answer_tokens(self, task: Task) -> int:
        """The cap on generated tokens for this task."""
        return self.max_tokens or (24 if task.kind == "classification" else 512)

    def variant(self, kind: str = "classification") -> str:
        """Short words for the prompt and decoding variant, as shown in tables."""
        words = f"{self.shots}-shot {'constrained' if self.constrained else 'free'}"
        return words + (f", labels as {self.label_style}" if kind == "classification" else "")


@dataclass(frozen=True)
class EvalResult:
    """One evaluation's stored state after this call: how much was new, and the figures over the sample."""

    run_id: int
    model_name: str
    model_sha256: str
    task: str
    split: str
    config: EvalConfig
    sample_size: int
    already_stored: int
    added: int
    seconds: float
    prompt_format: str
    kind: str = "classification"
    summary: dict[str, object] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        """For `--json`."""
        return {
            "run_id": self.run_id,
            "model": self.model_name,
            "model_sha256": self.model_sha256,
            "task": self.task,
            "split": self.split,
            "variant": self.config.variant(self.kind),
            "config": asdict(self.config),
            "sample_size": self.sample_size,
            "already_stored": self.already_stored,
            "added": self.added,
            "seconds": self.seconds,
            "prompt_format": self.prompt_format,
            "source": "measured",
            **self.summary,
        }


def task_trace_name(task: Task, split: str) -> str:
    """Name of the trace holding a task split's requests."""
    return f"task:{task.name}:{split}"


def _examples_digest(task: Task, split: str, examples: list[Example]) -> str:
    digest = hashlib.sha256(f"{task.name}\0{split}\0".encode())
    for e in examples:
        digest.update(f"{e.example_id}\0{e.text}\0{e.reference}\0".encode())
    return digest.hexdigest()


def ensure_task_trace(con, task: Task, split: str, examples: list[Example]) -> int:
    """The trace of a task split's requests (prompt, reference, enterprise labels), written once."""
    from slmlab.traces.importer import DEFAULT_LABEL_MIX, label_requests
    from slmlab.traces.writing import insert_trace, lay_out

    name, digest = task_trace_name(task, split), _examples_digest(task, split, examples)
    found = con.execute("SELECT trace_id, content_hash FROM traces WHERE name = ?", [name]).fetchall()
    if found:
        if found[0][1] != digest:
            raise TaskError(
                f"a different task '{task.name}' ({split}) is already stored in this database; "
                "give this one another name"
            )
        return int(found[0][0])
    requests = pa.table(
        {
            "request_id": [e.example_id for e in examples],
            "seq": pa.array(range(len(examples)), type=pa.int64()),
            "source_row": pa.array([e.row for e in examples], type=pa.int64()),
            "task": [task.enterprise_task] * len(examples),
            "category": [e.reference if task.kind == "classification" else None for e in examples],
            "prompt": [e.text for e in examples],
            "reference": [e.reference for e in examples],
        }
    )
    requests, labelling = label_requests(requests, DEFAULT_LABEL_MIX)
    return insert_trace(
        con,
        name=name,
        source_file=task.source,
        fmt=task.trace_format,
        digest=digest,
        kind="task",
        requests=lay_out(requests),
        labelling=labelling,
        report={"task": task.describe(), "split": split, "slmlab_version": __version__},
    )


def sample(task: Task, config: EvalConfig, shots: list[Example]) -> list[Example]:
    """The seeded evaluation order of the split, without the few-shot examples, cut to `limit`."""
    shot_ids = {s.example_id for s in shots}
    pool = [e for e in task.examples(config.split) if e.example_id not in shot_ids]
    random.Random(config.seed).shuffle(pool)
    return pool[: config.limit] if config.limit else pool


def run_key(model_sha256: str, task: Task, config: EvalConfig, task_digest: str) -> str:
    """Identity of an evaluation: the same key resumes, any change in what shapes answers starts a new one."""
    shaping = {
        "model": model_sha256,
        "task": task.name,
        "task_digest": task_digest,
        "split": config.split,
        "shots": config.shots,
        "constrained": config.constrained,
        "seed": config.seed,
        "max_tokens": config.answer_tokens(task),
        "prompt_version": PROMPT_VERSION,
        **({"label_style": config.label_style} if task.kind == "classification" else {}),
        **({"schema": task.json_schema()} if task.json_schema() else {}),
    }
    return hashlib.sha256(json.dumps(shaping, sort_keys=True).encode()).hexdigest()[:24]


def _answer_worker(
    send: Callable[[dict], None],
    _barrier,
    model_path: str,
    task: Task,
    todo: list[Example],
    shots: list[Example],
    config: EvalConfig,
) -> dict:
    """Inside the isolated worker: load the model once, answer every request, send each outcome as it is done."""
    import llama_cpp
    from llama_cpp import Llama, LlamaGrammar

    from bench.decoding import ModelSession

    threads = config.resolved_threads()
    llm = Llama(
        model_path=model_path,
        n_ctx=config.n_ctx,
        n_threads=threads,
        n_threads_batch=threads,
        seed=config.seed,
        verbose=False,
    )
    session = ModelSession(llm)
    send(
        {
            "started": {
                "prompt_format": session.template_source,
                "threads": threads,
                "llama_cpp_python": llama_cpp.__version__,
            }
        }
    )
    limit = config.answer_tokens(task)
    labelled = task if isinstance(task, ClassificationTask) else None  # every task of kind 'classification'
    classification = labelled is not None
    trie = session.label_trie(labelled.display_labels(config.label_style)) if labelled and config.constrained else None
    schema = task.json_schema()
    grammar = (
        LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
        if schema is not None and config.constrained
        else None
    )
    for example in todo:
        tokens = session.tokens(task.prompt(example, shots, config.label_style))
        if trie is not None:
            answer = session.classify(tokens, trie)
        else:
            answer = session.generate(
                tokens, limit, grammar=grammar, stop_at_newline=classification, stop_after_json=not classification
            )
        grade = task.grade(answer.text, example)
        label = labelled.label_for(answer.text) if labelled else None  # stored as the canonical label
        send(
            {
                "outcome": {
                    "request_id": example.example_id,
                    "correct": grade.correct,
                    "score": grade.score,
                    "confidence": answer.confidence,
                    "input_tokens": answer.prompt_tokens,
                    "output_tokens": answer.output_tokens,
                    "latency_ms": answer.latency_ms,
                    "response": label or answer.text,
                    "details": {
                        "valid": grade.valid,
                        "raw_answer": answer.text,
                        "fields": grade.fields,
                        "field_confidence": answer.field_confidence,
                        "logprob": answer.logprob,
                        "cached_prompt_tokens": answer.cached_tokens,
                    },
                }
            }
        )
    return {"answered": len(todo)}


def _write(db, run_id: int, trace_id: int, model: str, detail: str, judge: str, rows: list[dict]) -> None:
    """Commit a batch of outcomes; rows already stored for this run are skipped, never duplicated."""
    if not rows:
        return
    table = pa.Table.from_pylist([{**r, "details": json.dumps(r["details"])} for r in rows])
    with store.transaction(db) as con:
        con.register("batch", table)
        con.execute(
            "INSERT INTO outcomes (trace_id, request_id, model, correct, score, confidence, input_tokens, "
            "output_tokens, "
            "latency_ms, cost_usd, response, judge, source, source_detail, eval_run_id, details) "
            f"SELECT {trace_id}, b.request_id, ?, b.correct, b.score, b.confidence, b.input_tokens, b.output_tokens, "
            "b.latency_ms, NULL, b.response, ?, 'measured', ?, ?, CAST(b.details AS JSON) FROM batch b "
            "WHERE NOT EXISTS (SELECT 1 FROM outcomes o WHERE o.eval_run_id = ? AND o.request_id = b.request_id)",
            [model, judge, detail, run_id, run_id],
        )
        con.execute("UPDATE eval_runs SET updated_at = ? WHERE run_id = ?", [_now(), run_id])


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def summary_for(db, run_id: int, request_ids: list[str] | None = None) -> dict[str, object]:
    """Accuracy, calibration, validity and the most confused labels over a run's stored outcomes."""
    with store.connect(db, read_only=True) as con:
        rows = con.execute(
            "SELECT o.request_id, o.correct, o.score, o.confidence, o.response, r.reference, "
            "CAST(json_extract(o.details, '$.valid') AS BOOLEAN), o.output_tokens, o.latency_ms, "
            "json_extract(o.details, '$.fields') FROM outcomes o "
            "JOIN requests r ON r.trace_id = o.trace_id AND r.request_id = o.request_id "
            "WHERE o.eval_run_id = ? ORDER BY o.request_id",
            [run_id],
        ).fetchall()
    if request_ids is not None:
        wanted = set(request_ids)
        rows = [r for r in rows if r[0] in wanted]
    confidence = [r[3] for r in rows]
    correct = [bool(r[1]) for r in rows]
    result = summarise(confidence, correct)
    result["mean_score"] = sum(r[2] for r in rows) / len(rows) if rows else None
    result["validity_rate"] = sum(bool(r[6]) for r in rows) / len(rows) if rows else None
    result["mean_output_tokens"] = sum(r[7] for r in rows) / len(rows) if rows else None
    result["mean_latency_ms"] = sum(r[8] for r in rows) / len(rows) if rows else None
    result["most_confused"] = confusions([r[4] for r in rows], [r[5] for r in rows])
    fields = [json.loads(r[9]) for r in rows if r[9] and r[9] != "{}"]
    if fields:
        result["field_accuracy"] = {name: sum(f[name] for f in fields) / len(fields) for name in fields[0]}
    return result


def evaluate(
    model_spec: str,
    config: EvalConfig,
    *,
    task: Task | None = None,
    db: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> EvalResult:
    """Evaluate a model (shipped key or .gguf path) on a task, resuming any stored part of the same run."""
    from bench.tasks import resolve_task

    started = time.perf_counter()
    task = task or resolve_task(config.task, db)
    if config.split not in task.splits():
        raise TaskError(f"task '{task.name}' has the splits {', '.join(task.splits())}, not '{config.split}'")
    path = resolve_model(model_spec)
    model = gguf_metadata(path)
    name = model_name(path)  # the shipped key for a shipped model's file, else the file name
    examples = task.examples(config.split)
    shots = task.few_shot(config.shots, config.seed)
    chosen = sample(task, config, shots)
    key = run_key(model.sha256, task, config, _examples_digest(task, config.split, examples))
    with store.transaction(db) as con:
        trace_id = ensure_task_trace(con, task, config.split, examples)
        found = con.execute("SELECT run_id FROM eval_runs WHERE run_key = ?", [key]).fetchall()
        if found:
            run_id = int(found[0][0])
        else:
            run_id = int(
                con.execute(
                    "INSERT INTO eval_runs (run_key, started_at, updated_at, source, model_name, model_sha256, "
                    "task, split, "
                    "trace_id, config, versions) VALUES (?, ?, ?, 'measured', ?, ?, ?, ?, ?, ?, ?) RETURNING run_id",
                    [
                        key,
                        _now(),
                        _now(),
                        name,
                        model.sha256,
                        task.name,
                        config.split,
                        trace_id,
                        json.dumps(
                            {
                                **asdict(config),
                                "task": task.name,
                                "variant": config.variant(task.kind),
                                "prompt_version": PROMPT_VERSION,
                                "shot_ids": [s.example_id for s in shots],
                            }
                        ),
                        json.dumps({"slmlab": __version__}),
                    ],
                ).fetchall()[0][0]
            )
        done = {r[0] for r in con.execute("SELECT request_id FROM outcomes WHERE eval_run_id = ?", [run_id]).fetchall()}
    todo = [e for e in chosen if e.example_id not in done]
    detail = (
        f"eval run {run_id}: {name} on {task.name}/{config.split}, {config.variant(task.kind)}, seed {config.seed}"
        + (" (synthetic task)" if task.synthetic else "")
    )
    judge = "exact label match" if task.kind == "classification" else "field match against generator gold"
    pending: list[dict] = []
    info: dict[str, object] = {}
    answered = 0

    def on_message(message: dict) -> None:
        nonlocal answered
        if "started" in message:
            info.update(message["started"])
        elif "outcome" in message:
            pending.append(message["outcome"])
            answered += 1
            if len(pending) >= FLUSH_EVERY:
                _write(db, run_id, trace_id, name, detail, judge, pending)
                pending.clear()
            if progress:
                progress(len(chosen) - len(todo) + answered, len(chosen))

    if todo:
        check_memory(path.stat().st_size)
        try:
            run_workers(
                _answer_worker,
                [(str(path), task, todo, shots, config)],
                what="evaluation",
                subject=path.name,
                error=EvalError,
                idle_timeout_s=config.idle_timeout_s,
                on_message=on_message,
            )
        except (EvalError, Cancelled) as error:
            _write(db, run_id, trace_id, name, detail, judge, pending)
            stored = len(done) + answered
            raise type(error)(
                f"{error}; {stored} of {len(chosen)} requests are stored, run the same command again to continue"
            ) from None
        _write(db, run_id, trace_id, name, detail, judge, pending)
    summary = summary_for(db, run_id, [e.example_id for e in chosen])
    with store.transaction(db) as con:
        versions = {"slmlab": __version__, **({"llama_cpp_python": info["llama_cpp_python"]} if info else {})}
        con.execute(
            "UPDATE eval_runs SET summary = ?, updated_at = ?, versions = ? WHERE run_id = ?",
            [json.dumps(summary), _now(), json.dumps(versions), run_id],
        )
    return EvalResult(
        run_id,
        name,
        model.sha256,
        task.name,
        config.split,
        config,
        len(chosen),
        len(done),
        answered,
        time.perf_counter() - started,
        str(info.get("prompt_format", "(no new answers)")),
        task.kind,
        summary,
    )
