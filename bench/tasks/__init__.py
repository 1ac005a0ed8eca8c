"""Task sets, one file each; add a task by writing its module and one line in TASKS."""

from __future__ import annotations

from collections.abc import Callable

from bench.tasks import banking77, invoices
from bench.tasks.base import ClassificationTask, Example, Grade, Task, TaskError

TASKS: dict[str, Callable[[], Task]] = {
    "banking77": banking77.load,
    "invoices": invoices.load,
}

__all__ = ["TASKS", "ClassificationTask", "Example", "Grade", "Task", "TaskError", "get_task"]


def get_task(name: str) -> Task:
    """A shipped task by name; the error lists the known ones."""
    if name not in TASKS:
        raise TaskError(f"unknown task '{name}'; shipped tasks: {', '.join(TASKS)} "
                        "(or bring a labelled CSV with --task-csv FILE)")
    return TASKS[name]()
