"""Run llama.cpp work in spawned worker processes, so a crash, out-of-memory or hang never takes down the caller.

Workers talk to the parent through one queue of small dicts: progress and partial results as they happen, then
`{"result": ...}` or `{"error": "..."}`. The parent turns a dead worker, an exception in it, or a timeout into
one exception type chosen by the caller, with the reason in words.
"""

from __future__ import annotations

import multiprocessing
import queue
import time
from collections.abc import Callable, Sequence
from typing import Any


class WorkerFailed(RuntimeError):
    """Isolated work produced no result; the message says why in words."""


def _entry(target: Callable[..., Any], args: tuple, channel: multiprocessing.Queue, index: int, barrier) -> None:
    def send(message: dict) -> None:
        channel.put({**message, "worker": index})

    try:
        send({"result": target(send, barrier, *args)})
    except BaseException as error:  # report every failure in words instead of dying silently
        if barrier is not None:
            barrier.abort()  # release the other workers instead of leaving them waiting
        send({"error": f"{type(error).__name__}: {error}"})


def run_workers(
    target: Callable[..., Any],
    worker_args: Sequence[tuple],
    *,
    what: str,
    subject: str,
    error: type[WorkerFailed] = WorkerFailed,
    timeout_s: float | None = None,
    idle_timeout_s: float | None = None,
    on_message: Callable[[dict], None] | None = None,
    start_together: bool = False,
) -> list[Any]:
    """Start one spawned worker per args tuple running `target(send, barrier, *args)`; return their results in order.

    `what` names the work ("benchmark", "evaluation") and `subject` the model file in error messages;
    `timeout_s` bounds the whole run, `idle_timeout_s` the silence between two messages.
    """
    context = multiprocessing.get_context("spawn")
    channel = context.Queue()
    barrier = context.Barrier(len(worker_args)) if start_together and len(worker_args) > 1 else None
    workers = [
        context.Process(target=_entry, args=(target, args, channel, i, barrier), daemon=True)
        for i, args in enumerate(worker_args)
    ]
    for worker in workers:
        worker.start()
    started = last_heard = time.monotonic()
    results: dict[int, Any] = {}
    try:
        while len(results) < len(workers):
            try:
                message = channel.get(timeout=0.2)
            except queue.Empty:
                dead = [w for i, w in enumerate(workers) if not w.is_alive() and i not in results]
                if dead and channel.empty():
                    code = dead[0].exitcode
                    how = f"was killed by signal {-code}" if code and code < 0 else f"exited with code {code}"
                    raise error(
                        f"the {what} worker {how} while running {subject} (llama.cpp crash or out of memory)"
                    ) from None
                now = time.monotonic()
                if timeout_s is not None and now - started > timeout_s:
                    raise error(f"the {what} did not finish within {timeout_s:.0f} s and was stopped") from None
                if idle_timeout_s is not None and now - last_heard > idle_timeout_s:
                    raise error(f"the {what} worker sent nothing for {idle_timeout_s:.0f} s and was stopped") from None
                continue
            last_heard = time.monotonic()
            if "error" in message:
                raise error(f"the {what} failed in the worker: {message['error']}")
            if "result" in message:
                results[message["worker"]] = message["result"]
            elif on_message:
                on_message(message)
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.kill()
            worker.join(timeout=5)
    return [results[i] for i in range(len(workers))]
